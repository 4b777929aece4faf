package pipeline

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// Delta column mapping (PROTOCOL.md, "Column Mapping"). With mode name or
// id, a table's schema gives each field, nested ones included, a logical
// name, a physical name and a field id. Data files name their columns by
// the physical names and carry the ids as Parquet field ids; partition
// values in the log are keyed by physical name. RENAME COLUMN changes only
// the logical name and DROP COLUMN only removes the field from the schema,
// so a file may hold columns the table no longer has. Reading a file maps
// it to the logical schema: each field of the table schema is found in the
// file by field id (id mode, where the file has one) or physical name, and
// renamed; file columns the schema does not name are dropped.

// deltaField is one field of a Delta schema (PROTOCOL.md, "Schema
// Serialization Format").
type deltaField struct {
	Name     string                     `json:"name"`
	Type     deltaType                  `json:"type"`
	Nullable bool                       `json:"nullable"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

// deltaType is a primitive type name, or a struct, array or map.
type deltaType struct {
	Primitive string
	Fields    []*deltaField // struct
	Element   *deltaType    // array
	Key       *deltaType    // map
	Value     *deltaType    // map
	// ContainsNull: an array's elements or a map's values may be null.
	ContainsNull bool
}

func (t *deltaType) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Primitive)
	}
	var c struct {
		Type              string        `json:"type"`
		Fields            []*deltaField `json:"fields"`
		ElementType       *deltaType    `json:"elementType"`
		KeyType           *deltaType    `json:"keyType"`
		ValueType         *deltaType    `json:"valueType"`
		ContainsNull      bool          `json:"containsNull"`
		ValueContainsNull bool          `json:"valueContainsNull"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	switch c.Type {
	case "struct":
		t.Fields = c.Fields
	case "array":
		if c.ElementType == nil {
			return fmt.Errorf("array type without elementType")
		}
		t.Element, t.ContainsNull = c.ElementType, c.ContainsNull
	case "map":
		if c.KeyType == nil || c.ValueType == nil {
			return fmt.Errorf("map type without keyType or valueType")
		}
		t.Key, t.Value, t.ContainsNull = c.KeyType, c.ValueType, c.ValueContainsNull
	default:
		return fmt.Errorf("unknown complex type %q", c.Type)
	}
	return nil
}

// parseDeltaSchema reads a metaData.schemaString.
func parseDeltaSchema(schemaString string) ([]*deltaField, error) {
	var s deltaType
	if err := json.Unmarshal([]byte(schemaString), &s); err != nil {
		return nil, fmt.Errorf("metaData.schemaString: %v", err)
	}
	return s.Fields, nil
}

var decimalRe = regexp.MustCompile(`^decimal\((\d+),\s*(\d+)\)$`)

// arrowType is the Arrow type lockstep's Parquet reader gives a column of
// Delta type t, for a column the table has but no file holds (read as all
// nulls, as Spark reads it); ok is false for a type it cannot name.
func (t *deltaType) arrowType() (arrow.DataType, bool) {
	switch {
	case t.Fields != nil:
		fields := make([]arrow.Field, 0, len(t.Fields))
		for _, f := range t.Fields {
			ft, ok := f.Type.arrowType()
			if !ok {
				return nil, false
			}
			fields = append(fields, arrow.Field{Name: f.Name, Type: ft, Nullable: f.Nullable})
		}
		return arrow.StructOf(fields...), true
	case t.Element != nil:
		et, ok := t.Element.arrowType()
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: t.ContainsNull}), ok
	case t.Key != nil:
		kt, ok1 := t.Key.arrowType()
		vt, ok2 := t.Value.arrowType()
		if !ok1 || !ok2 {
			return nil, false
		}
		mt := arrow.MapOfWithMetadata(kt, arrow.Metadata{}, vt, arrow.Metadata{})
		mt.SetItemNullable(t.ContainsNull)
		return mt, true
	}
	switch t.Primitive {
	case "string":
		return arrow.BinaryTypes.String, true
	case "binary":
		return arrow.BinaryTypes.Binary, true
	case "boolean":
		return arrow.FixedWidthTypes.Boolean, true
	case "byte":
		return arrow.PrimitiveTypes.Int8, true
	case "short":
		return arrow.PrimitiveTypes.Int16, true
	case "integer":
		return arrow.PrimitiveTypes.Int32, true
	case "long":
		return arrow.PrimitiveTypes.Int64, true
	case "float":
		return arrow.PrimitiveTypes.Float32, true
	case "double":
		return arrow.PrimitiveTypes.Float64, true
	case "date":
		return arrow.FixedWidthTypes.Date32, true
	case "timestamp":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, true
	case "timestamp_ntz":
		return &arrow.TimestampType{Unit: arrow.Microsecond}, true
	}
	if m := decimalRe.FindStringSubmatch(t.Primitive); m != nil {
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if p >= 1 && p <= 38 && s <= p {
			return &arrow.Decimal128Type{Precision: int32(p), Scale: int32(s)}, true
		}
	}
	return nil, false
}

// physicalName is the field's name in data files: its
// delta.columnMapping.physicalName, or its name when it has none.
func (f *deltaField) physicalName() string {
	var s string
	if raw, ok := f.Metadata["delta.columnMapping.physicalName"]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	return f.Name
}

// fieldID is the field's delta.columnMapping.id, or 0.
func (f *deltaField) fieldID() int32 {
	var id int32
	if raw, ok := f.Metadata["delta.columnMapping.id"]; ok {
		_ = json.Unmarshal(raw, &id)
	}
	return id
}

// columnMapping maps data files' columns to a column-mapped table's
// logical schema.
type columnMapping struct {
	mode   string // "name" or "id"
	fields []*deltaField
}

// newColumnMapping is the mapping of mode ("name" or "id") over the table
// schema's fields.
func newColumnMapping(mode string, fields []*deltaField) *columnMapping {
	return &columnMapping{mode: mode, fields: fields}
}

// physical is the physical name of top-level column name (a partition
// column's key in partitionValues).
func (m *columnMapping) physical(name string) string {
	for _, f := range m.fields {
		if f.Name == name {
			return f.physicalName()
		}
	}
	return name
}

// find is the index of the file field that holds table field want: the
// one with its field id in id mode, else the one with its physical name.
func (m *columnMapping) find(want *deltaField, names []string, ids []reader.FieldID) int {
	if id := want.fieldID(); m.mode == "id" && id != 0 {
		for k, fid := range ids {
			if fid.ID == id {
				return k
			}
		}
	}
	phys := want.physicalName()
	for k, n := range names {
		if n == phys && (m.mode != "id" || k >= len(ids) || ids[k].ID == 0 || ids[k].ID == want.fieldID()) {
			return k
		}
	}
	return -1
}

// dataMap rebuilds one array's data for a mapped type; it returns new data
// the caller releases.
type dataMap func(arrow.ArrayData) arrow.ArrayData

// project maps a data file's schema (with its field ids) to the logical
// one, and returns the function that maps its records; fn is nil when the
// file's records need no change.
func (m *columnMapping) project(have *arrow.Schema, ids []reader.FieldID) (*arrow.Schema, func(arrow.RecordBatch) arrow.RecordBatch, error) {
	names := make([]string, have.NumFields())
	for k, f := range have.Fields() {
		names[k] = f.Name
	}
	var fields []arrow.Field
	var src []int
	var maps []dataMap
	for _, lf := range m.fields {
		k := m.find(lf, names, ids)
		if k < 0 {
			continue // added after this file was written: the conformer fills nulls
		}
		var fid reader.FieldID
		if k < len(ids) {
			fid = ids[k]
		}
		f := have.Field(k)
		typ, dm, err := m.mapType(lf.Name, &lf.Type, f.Type, fid)
		if err != nil {
			return nil, nil, err
		}
		fields = append(fields, arrow.Field{Name: lf.Name, Type: typ, Nullable: f.Nullable})
		src, maps = append(src, k), append(maps, dm)
	}
	out := arrow.NewSchema(fields, nil)
	same := out.NumFields() == have.NumFields()
	for j := range src {
		same = same && src[j] == j && maps[j] == nil && fields[j].Name == names[j]
	}
	if same {
		return out, nil, nil
	}
	return out, func(rec arrow.RecordBatch) arrow.RecordBatch {
		cols := make([]arrow.Array, len(src))
		for j, k := range src {
			c := rec.Column(k)
			if maps[j] == nil {
				c.Retain()
				cols[j] = c
				continue
			}
			d := maps[j](c.Data())
			cols[j] = array.MakeFromData(d)
			d.Release()
		}
		r := array.NewRecordBatch(out, cols, rec.NumRows())
		for _, c := range cols {
			c.Release()
		}
		return r
	}, nil
}

// mapType maps the file's type t of column path to the logical type dt
// describes: struct fields found, renamed and put in the table's order.
func (m *columnMapping) mapType(path string, dt *deltaType, t arrow.DataType, ids reader.FieldID) (arrow.DataType, dataMap, error) {
	switch {
	case dt.Fields != nil:
		st, ok := t.(*arrow.StructType)
		if !ok {
			return nil, nil, fmt.Errorf("column %s is a struct in the table schema but %s in the file", path, t)
		}
		names := make([]string, st.NumFields())
		for k, f := range st.Fields() {
			names[k] = f.Name
		}
		var fields []arrow.Field
		var src []int
		var maps []dataMap
		changed := false
		for _, lf := range dt.Fields {
			k := m.find(lf, names, ids.Children)
			if k < 0 {
				changed = true
				continue
			}
			var fid reader.FieldID
			if k < len(ids.Children) {
				fid = ids.Children[k]
			}
			f := st.Field(k)
			typ, dm, err := m.mapType(path+"."+lf.Name, &lf.Type, f.Type, fid)
			if err != nil {
				return nil, nil, err
			}
			changed = changed || dm != nil || lf.Name != f.Name || k != len(src)
			fields = append(fields, arrow.Field{Name: lf.Name, Type: typ, Nullable: f.Nullable})
			src, maps = append(src, k), append(maps, dm)
		}
		changed = changed || len(src) != st.NumFields()
		if !changed {
			return t, nil, nil
		}
		out := arrow.StructOf(fields...)
		return out, func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, out, func(children []arrow.ArrayData) []arrow.ArrayData {
				kids := make([]arrow.ArrayData, len(src))
				for j, k := range src {
					kids[j] = apply(maps[j], children[k])
				}
				return kids
			})
		}, nil
	case dt.Element != nil:
		lt, ok := t.(*arrow.ListType)
		if !ok {
			return nil, nil, fmt.Errorf("column %s is an array in the table schema but %s in the file", path, t)
		}
		var fid reader.FieldID
		if len(ids.Children) > 0 {
			fid = ids.Children[0]
		}
		el := lt.ElemField()
		typ, dm, err := m.mapType(path+".element", dt.Element, el.Type, fid)
		if err != nil || dm == nil {
			return t, nil, err
		}
		out := arrow.ListOfField(arrow.Field{Name: el.Name, Type: typ, Nullable: el.Nullable})
		return out, func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, out, func(c []arrow.ArrayData) []arrow.ArrayData {
				return []arrow.ArrayData{apply(dm, c[0])}
			})
		}, nil
	case dt.Key != nil:
		mt, ok := t.(*arrow.MapType)
		if !ok {
			return nil, nil, fmt.Errorf("column %s is a map in the table schema but %s in the file", path, t)
		}
		var kid, vid reader.FieldID
		if len(ids.Children) == 2 {
			kid, vid = ids.Children[0], ids.Children[1]
		}
		kt, km, err := m.mapType(path+".key", dt.Key, mt.KeyType(), kid)
		if err != nil {
			return nil, nil, err
		}
		vt, vm, err := m.mapType(path+".value", dt.Value, mt.ItemType(), vid)
		if err != nil {
			return nil, nil, err
		}
		if km == nil && vm == nil {
			return t, nil, nil
		}
		out := arrow.MapOfWithMetadata(kt, arrow.Metadata{}, vt, arrow.Metadata{})
		out.SetItemNullable(mt.ItemField().Nullable)
		out.KeysSorted = mt.KeysSorted
		return out, func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, out, func(c []arrow.ArrayData) []arrow.ArrayData {
				entries := rebuild(c[0], out.Elem(), func(kv []arrow.ArrayData) []arrow.ArrayData {
					return []arrow.ArrayData{apply(km, kv[0]), apply(vm, kv[1])}
				})
				return []arrow.ArrayData{entries}
			})
		}, nil
	}
	return t, nil, nil
}

// rebuild is d with type typ and the children kids returns (which it
// releases once the new data holds them).
func rebuild(d arrow.ArrayData, typ arrow.DataType, kids func([]arrow.ArrayData) []arrow.ArrayData) arrow.ArrayData {
	children := kids(d.Children())
	out := array.NewData(typ, d.Len(), d.Buffers(), children, d.NullN(), d.Offset())
	for _, c := range children {
		c.Release()
	}
	return out
}

// apply is dm(d), or d retained when there is nothing to map.
func apply(dm dataMap, d arrow.ArrayData) arrow.ArrayData {
	if dm == nil {
		d.Retain()
		return d
	}
	return dm(d)
}
