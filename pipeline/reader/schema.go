package reader

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// nodeKind says how a schema node becomes an Arrow array.
type nodeKind int

const (
	kindLeaf nodeKind = iota
	kindStruct
	kindList
	kindMap
)

// node is one field of the Arrow schema, with the Parquet levels needed to
// rebuild it from the leaf columns under it (Dremel record assembly).
type node struct {
	name     string
	kind     nodeKind
	typ      arrow.DataType
	nullable bool
	id       int32   // the Parquet field id; 0 when the writer set none
	children []*node // struct fields; for lists and maps, the single element

	// def is the definition level at which this node is non-null; for a
	// list or map, elemDef is the level at which it has an element and rep
	// the repetition level of its elements.
	def, elemDef, rep int

	leaf       int  // index of the leaf column (kindLeaf only)
	nullKeyErr bool // an optional map key: a null is an error, not a null
	firstLf    int  // first leaf column index under this node
	numLeafs   int

	// leaf conversion
	phys  format.Type
	conv  convKind
	scale int32
}

// schemaTree is the Arrow view of one Parquet file's schema.
type schemaTree struct {
	fields []*node
	leaves []*node
	schema *arrow.Schema
}

// elem is a Parquet SchemaElement seen as a tree.
type elem struct {
	se       *format.SchemaElement
	children []*elem
}

func (e *elem) repetition() format.FieldRepetitionType {
	if r, ok := e.se.RepetitionType.Get(); ok {
		return r
	}
	return format.Required
}

func (e *elem) converted() (deprecated.ConvertedType, bool) {
	return e.se.ConvertedType.Get()
}

const maxSchemaDepth = 64

// buildTree turns the flat, depth-first list of schema elements into a tree.
func buildTree(ses []format.SchemaElement) (*elem, error) {
	if len(ses) == 0 {
		return nil, fmt.Errorf("%w: empty schema", ErrCorrupt)
	}
	pos := 0
	var walk func(depth int) (*elem, error)
	walk = func(depth int) (*elem, error) {
		if pos >= len(ses) {
			return nil, fmt.Errorf("%w: schema ends early", ErrCorrupt)
		}
		if depth > maxSchemaDepth {
			return nil, fmt.Errorf("%w: schema nested deeper than %d", ErrCorrupt, maxSchemaDepth)
		}
		e := &elem{se: &ses[pos]}
		pos++
		n, _ := e.se.NumChildren.Get()
		if n < 0 || int(n) > len(ses)-pos {
			return nil, fmt.Errorf("%w: schema element %q claims %d children", ErrCorrupt, e.se.Name, n)
		}
		if !e.se.Type.Valid && n == 0 && depth > 0 {
			// A group without children: Spark never writes one; refuse rather than guess.
			return nil, fmt.Errorf("%w: group %q has no fields", ErrUnsupported, e.se.Name)
		}
		for range n {
			c, err := walk(depth + 1)
			if err != nil {
				return nil, err
			}
			e.children = append(e.children, c)
		}
		return e, nil
	}
	root, err := walk(0)
	if err != nil {
		return nil, err
	}
	if pos != len(ses) {
		return nil, fmt.Errorf("%w: %d schema elements after the root's children", ErrCorrupt, len(ses)-pos)
	}
	return root, nil
}

// newSchemaTree maps a Parquet schema to Arrow, following the
// backward-compatibility rules of the Parquet LogicalTypes spec for lists and maps.
func newSchemaTree(ses []format.SchemaElement) (*schemaTree, error) {
	root, err := buildTree(ses)
	if err != nil {
		return nil, err
	}
	t := &schemaTree{}
	fields := make([]arrow.Field, 0, len(root.children))
	for _, c := range root.children {
		n, err := t.mapField(c, 0, 0)
		if err != nil {
			return nil, err
		}
		t.fields = append(t.fields, n)
		fields = append(fields, arrow.Field{Name: n.name, Type: n.typ, Nullable: n.nullable})
	}
	t.schema = arrow.NewSchema(fields, nil)
	return t, nil
}

// mapField maps element e whose parent is defined at level def and repeated at level rep.
func (t *schemaTree) mapField(e *elem, def, rep int) (*node, error) {
	n, err := t.mapRepeated(e, def, rep)
	if err == nil {
		n.id = e.se.FieldID
	}
	return n, err
}

func (t *schemaTree) mapRepeated(e *elem, def, rep int) (*node, error) {
	switch e.repetition() {
	case format.Optional:
		n, err := t.mapValue(e, def+1, rep)
		if err != nil {
			return nil, err
		}
		n.nullable = true
		return n, nil
	case format.Repeated:
		// A repeated field outside a LIST or MAP annotation is a required list
		// of required elements.
		elemNode, err := t.mapValue(e, def+1, rep+1)
		if err != nil {
			return nil, err
		}
		return t.listNode(e.se.Name, elemNode, def, def+1, rep+1, kindList), nil
	default:
		return t.mapValue(e, def, rep)
	}
}

// mapValue maps e as defined at level def, ignoring its own repetition.
func (t *schemaTree) mapValue(e *elem, def, rep int) (*node, error) {
	if e.se.Type.Valid {
		return t.mapLeaf(e, def)
	}
	ct, hasCT := e.converted()
	lt := e.se.LogicalType.Value
	switch {
	case isList(lt, ct, hasCT):
		return t.mapList(e, def, rep)
	case isMap(lt, ct, hasCT):
		return t.mapMap(e, def, rep)
	}
	return t.mapStruct(e, def, rep)
}

func isList(lt format.LogicalTypeValue, ct deprecated.ConvertedType, hasCT bool) bool {
	if _, ok := lt.(*format.ListType); ok {
		return true
	}
	return hasCT && ct == deprecated.List
}

func isMap(lt format.LogicalTypeValue, ct deprecated.ConvertedType, hasCT bool) bool {
	if _, ok := lt.(*format.MapType); ok {
		return true
	}
	return hasCT && (ct == deprecated.Map || ct == deprecated.MapKeyValue)
}

func (t *schemaTree) mapStruct(e *elem, def, rep int) (*node, error) {
	n := &node{name: e.se.Name, kind: kindStruct, def: def, rep: rep, firstLf: len(t.leaves)}
	fields := make([]arrow.Field, 0, len(e.children))
	for _, c := range e.children {
		cn, err := t.mapField(c, def, rep)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, cn)
		fields = append(fields, arrow.Field{Name: cn.name, Type: cn.typ, Nullable: cn.nullable})
	}
	n.numLeafs = len(t.leaves) - n.firstLf
	n.typ = arrow.StructOf(fields...)
	return n, nil
}

// mapList handles a LIST-annotated group: one repeated child, which is either
// the 3-level `list` group or one of the legacy 2-level forms.
func (t *schemaTree) mapList(e *elem, def, rep int) (*node, error) {
	if len(e.children) != 1 || e.children[0].repetition() != format.Repeated {
		return nil, fmt.Errorf("%w: LIST %q must have exactly one repeated child", ErrUnsupported, e.se.Name)
	}
	r := e.children[0]
	first := len(t.leaves)
	var elemNode *node
	var err error
	if r.se.Type.Valid || len(r.children) > 1 || r.se.Name == "array" || r.se.Name == e.se.Name+"_tuple" {
		// Legacy 2-level list: the repeated field is the element itself.
		elemNode, err = t.mapValue(r, def+1, rep+1)
		if err == nil {
			elemNode.name = "element"
		}
	} else {
		elemNode, err = t.mapField(r.children[0], def+1, rep+1)
	}
	if err != nil {
		return nil, err
	}
	n := t.listNode(e.se.Name, elemNode, def, def+1, rep+1, kindList)
	n.firstLf = first
	return n, nil
}

func (t *schemaTree) mapMap(e *elem, def, rep int) (*node, error) {
	if len(e.children) == 1 && e.children[0].repetition() == format.Repeated && len(e.children[0].children) == 1 {
		// A MAP of keys without values (parquet-testing's map_no_value) is
		// a list of its keys, as Arrow C++ and pyarrow read it.
		first := len(t.leaves)
		key, err := t.mapField(e.children[0].children[0], def+1, rep+1)
		if err != nil {
			return nil, err
		}
		n := t.listNode(e.se.Name, key, def, def+1, rep+1, kindList)
		n.firstLf = first
		return n, nil
	}
	if len(e.children) != 1 || e.children[0].repetition() != format.Repeated || len(e.children[0].children) != 2 {
		return nil, fmt.Errorf("%w: MAP %q must have one repeated key_value group of two fields", ErrUnsupported, e.se.Name)
	}
	kv := e.children[0]
	first := len(t.leaves)
	key, err := t.mapField(kv.children[0], def+1, rep+1)
	if err != nil {
		return nil, err
	}
	if key.nullable {
		// Arrow map keys are never null. Some writers declare the key
		// optional anyway (parquet-testing's incorrect_map_schema); read
		// it as required and refuse a null key where one actually occurs.
		if key.kind != kindLeaf {
			return nil, fmt.Errorf("%w: MAP %q has an optional nested key, which Arrow cannot hold", ErrUnsupported, e.se.Name)
		}
		key.nullable, key.nullKeyErr = false, true
	}
	val, err := t.mapField(kv.children[1], def+1, rep+1)
	if err != nil {
		return nil, err
	}
	key.name, val.name = "key", "value"
	entries := &node{
		name: "entries", kind: kindStruct, def: def + 1, rep: rep + 1,
		children: []*node{key, val}, firstLf: first, numLeafs: len(t.leaves) - first,
	}
	mt := arrow.MapOfWithMetadata(key.typ, arrow.Metadata{}, val.typ, arrow.Metadata{})
	mt.SetItemNullable(val.nullable)
	entries.typ = mt.Elem()
	n := t.listNode(e.se.Name, entries, def, def+1, rep+1, kindMap)
	n.typ = mt
	n.firstLf = first
	return n, nil
}

func (t *schemaTree) listNode(name string, el *node, def, elemDef, rep int, kind nodeKind) *node {
	n := &node{name: name, kind: kind, def: def, elemDef: elemDef, rep: rep, children: []*node{el}}
	n.firstLf = el.firstLf
	n.numLeafs = len(t.leaves) - n.firstLf
	n.typ = arrow.ListOfField(arrow.Field{Name: "element", Type: el.typ, Nullable: el.nullable})
	return n
}

func (t *schemaTree) mapLeaf(e *elem, def int) (*node, error) {
	typ, conv, err := leafType(e)
	if err != nil {
		return nil, err
	}
	n := &node{
		name: e.se.Name, kind: kindLeaf, typ: typ, def: def,
		leaf: len(t.leaves), firstLf: len(t.leaves), numLeafs: 1,
		phys: e.se.Type.V, conv: conv,
	}
	n.scale, _ = e.se.Scale.Get()
	t.leaves = append(t.leaves, n)
	return n, nil
}

// convKind names how a Parquet value becomes an Arrow value.
type convKind int

const (
	convBool convKind = iota
	convInt8
	convInt16
	convInt32
	convInt64
	convUint8
	convUint16
	convUint32
	convUint64
	convFloat32
	convFloat64
	convDate32
	convTime32
	convTime64
	convTimestamp
	convInt96
	convString
	convBinary
	convFixed
	convDecimal128
	convDecimal256
	convFloat16
)

// leafType maps a primitive column to Arrow. The table is documented in
// docs/types.md; keep the two in step.
func leafType(e *elem) (arrow.DataType, convKind, error) {
	se := e.se
	pt := se.Type.V
	ct, hasCT := e.converted()
	lt := se.LogicalType.Value
	precision, _ := se.Precision.Get()
	scale, _ := se.Scale.Get()
	if d, ok := lt.(*format.DecimalType); ok {
		precision, scale = d.Precision, d.Scale
	}
	isDecimal := hasCT && ct == deprecated.Decimal
	if _, ok := lt.(*format.DecimalType); ok {
		isDecimal = true
	}
	if isDecimal && pt != format.Boolean && pt != format.Float && pt != format.Double && pt != format.Int96 {
		if precision <= 0 || scale < 0 || scale > precision {
			return nil, 0, fmt.Errorf("%w: column %q has decimal(%d,%d)", ErrCorrupt, se.Name, precision, scale)
		}
		if precision <= 38 {
			return &arrow.Decimal128Type{Precision: precision, Scale: scale}, convDecimal128, nil
		}
		if precision <= 76 {
			return &arrow.Decimal256Type{Precision: precision, Scale: scale}, convDecimal256, nil
		}
		return nil, 0, fmt.Errorf("%w: column %q has decimal precision %d (max 76)", ErrUnsupported, se.Name, precision)
	}
	switch pt {
	case format.Boolean:
		return arrow.FixedWidthTypes.Boolean, convBool, nil
	case format.Int32:
		if it, ok := lt.(*format.IntType); ok {
			if it.BitWidth > 32 {
				return nil, 0, fmt.Errorf("%w: column %q is INT32 annotated INT(%d); it cannot hold that width", ErrCorrupt, se.Name, it.BitWidth)
			}
			return intType(it.BitWidth, it.IsSigned, se.Name)
		}
		if _, ok := lt.(*format.DateType); ok || (hasCT && ct == deprecated.Date) {
			return arrow.FixedWidthTypes.Date32, convDate32, nil
		}
		if _, ok := lt.(*format.TimeType); ok || (hasCT && ct == deprecated.TimeMillis) {
			return arrow.FixedWidthTypes.Time32ms, convTime32, nil
		}
		if hasCT {
			switch ct {
			case deprecated.Int8:
				return intType(8, true, se.Name)
			case deprecated.Int16:
				return intType(16, true, se.Name)
			case deprecated.Uint8:
				return intType(8, false, se.Name)
			case deprecated.Uint16:
				return intType(16, false, se.Name)
			case deprecated.Uint32:
				return intType(32, false, se.Name)
			}
		}
		return arrow.PrimitiveTypes.Int32, convInt32, nil
	case format.Int64:
		if it, ok := lt.(*format.IntType); ok {
			if it.BitWidth != 64 {
				// Arrow C++ refuses this too: narrower ints belong in INT32.
				return nil, 0, fmt.Errorf("%w: column %q is INT64 annotated INT(%d); write it as INT32", ErrCorrupt, se.Name, it.BitWidth)
			}
			return intType(it.BitWidth, it.IsSigned, se.Name)
		}
		if ts, ok := lt.(*format.TimestampType); ok {
			tz := ""
			if ts.IsAdjustedToUTC {
				tz = "UTC"
			}
			return &arrow.TimestampType{Unit: timeUnit(ts.Unit), TimeZone: tz}, convTimestamp, nil
		}
		if tt, ok := lt.(*format.TimeType); ok {
			return &arrow.Time64Type{Unit: timeUnit(tt.Unit)}, convTime64, nil
		}
		if hasCT {
			switch ct {
			case deprecated.TimestampMillis:
				return &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, convTimestamp, nil
			case deprecated.TimestampMicros:
				return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, convTimestamp, nil
			case deprecated.TimeMicros:
				return arrow.FixedWidthTypes.Time64us, convTime64, nil
			case deprecated.Uint64:
				return intType(64, false, se.Name)
			}
		}
		return arrow.PrimitiveTypes.Int64, convInt64, nil
	case format.Int96:
		// Spark's default timestamp. Microseconds hold Spark's whole range
		// (0001-01-01 to 9999-12-31); int64 nanoseconds do not.
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, convInt96, nil
	case format.Float:
		return arrow.PrimitiveTypes.Float32, convFloat32, nil
	case format.Double:
		return arrow.PrimitiveTypes.Float64, convFloat64, nil
	case format.ByteArray:
		switch lt.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return arrow.BinaryTypes.String, convString, nil
		}
		if hasCT && (ct == deprecated.UTF8 || ct == deprecated.Enum || ct == deprecated.Json) {
			return arrow.BinaryTypes.String, convString, nil
		}
		return arrow.BinaryTypes.Binary, convBinary, nil
	case format.FixedLenByteArray:
		n, _ := se.TypeLength.Get()
		if n < 0 || n > 1<<20 {
			return nil, 0, fmt.Errorf("%w: column %q has fixed length %d", ErrCorrupt, se.Name, n)
		}
		if _, ok := lt.(*format.Float16Type); ok && n == 2 {
			return arrow.FixedWidthTypes.Float16, convFloat16, nil
		}
		return &arrow.FixedSizeBinaryType{ByteWidth: int(n)}, convFixed, nil
	}
	return nil, 0, fmt.Errorf("%w: column %q has physical type %d", ErrUnsupported, se.Name, pt)
}

func intType(bits int8, signed bool, name string) (arrow.DataType, convKind, error) {
	switch {
	case bits == 8 && signed:
		return arrow.PrimitiveTypes.Int8, convInt8, nil
	case bits == 16 && signed:
		return arrow.PrimitiveTypes.Int16, convInt16, nil
	case bits == 32 && signed:
		return arrow.PrimitiveTypes.Int32, convInt32, nil
	case bits == 64 && signed:
		return arrow.PrimitiveTypes.Int64, convInt64, nil
	case bits == 8:
		return arrow.PrimitiveTypes.Uint8, convUint8, nil
	case bits == 16:
		return arrow.PrimitiveTypes.Uint16, convUint16, nil
	case bits == 32:
		return arrow.PrimitiveTypes.Uint32, convUint32, nil
	case bits == 64:
		return arrow.PrimitiveTypes.Uint64, convUint64, nil
	}
	return nil, 0, fmt.Errorf("%w: column %q has INT(%d)", ErrCorrupt, name, bits)
}

func timeUnit(u format.TimeUnit) arrow.TimeUnit {
	switch u.Value.(type) {
	case *format.MilliSeconds:
		return arrow.Millisecond
	case *format.NanoSeconds:
		return arrow.Nanosecond
	}
	return arrow.Microsecond
}

// path returns the dotted column path of leaf i, for error messages.
func (t *schemaTree) path(i int) string {
	var parts []string
	var find func(ns []*node) bool
	find = func(ns []*node) bool {
		for _, n := range ns {
			if i < n.firstLf || i >= n.firstLf+n.numLeafs {
				continue
			}
			parts = append(parts, n.name)
			if n.kind == kindLeaf {
				return true
			}
			return find(n.children)
		}
		return false
	}
	find(t.fields)
	return strings.Join(parts, ".")
}

// FieldID is a field's Parquet field id (0 when the writer set none) and
// those of the fields under it, in the shape of its Arrow type: a struct's
// fields, a list's element, a map's key and value. Table formats that
// resolve columns by id (Delta's column mapping in id mode, Iceberg) read
// these.
type FieldID struct {
	ID       int32
	Children []FieldID
}

func fieldIDs(n *node) FieldID {
	out := FieldID{ID: n.id}
	kids := n.children
	if n.kind == kindMap && len(kids) == 1 {
		kids = kids[0].children // the entries group: key, value
	}
	for _, c := range kids {
		out.Children = append(out.Children, fieldIDs(c))
	}
	return out
}
