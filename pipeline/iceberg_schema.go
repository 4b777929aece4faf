package pipeline

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// An Iceberg table's files are read into the table's schema by field id
// (the spec's "Column Projection"): each field of the schema, nested ones
// too, is found in a file by its Parquet field id, or by name in a file
// written without ids; it takes the schema's name, so renames hold; a
// field the file lacks (added since) is null; a file column the schema no
// longer has (dropped) is not read; and a value of a promoted type (int to
// long, float to double, a wider decimal) is widened. Every file so reads
// as exactly the schema, in its order.

// icebergArrowType is the Arrow type lockstep reads Iceberg type t as: the
// type its Parquet reader gives the column Iceberg's writers write.
func icebergArrowType(t iceberg.Type) (arrow.DataType, error) {
	switch t := t.(type) {
	case iceberg.BooleanType:
		return arrow.FixedWidthTypes.Boolean, nil
	case iceberg.Int32Type:
		return arrow.PrimitiveTypes.Int32, nil
	case iceberg.Int64Type:
		return arrow.PrimitiveTypes.Int64, nil
	case iceberg.Float32Type:
		return arrow.PrimitiveTypes.Float32, nil
	case iceberg.Float64Type:
		return arrow.PrimitiveTypes.Float64, nil
	case iceberg.DecimalType:
		if t.Precision() < 1 || t.Precision() > 38 {
			return nil, fmt.Errorf("%w: %s (lockstep reads decimals of precision 1 to 38)", ErrIcebergFeature, t)
		}
		return &arrow.Decimal128Type{Precision: int32(t.Precision()), Scale: int32(t.Scale())}, nil
	case iceberg.DateType:
		return arrow.FixedWidthTypes.Date32, nil
	case iceberg.TimeType:
		return arrow.FixedWidthTypes.Time64us, nil
	case iceberg.TimestampType:
		return &arrow.TimestampType{Unit: arrow.Microsecond}, nil
	case iceberg.TimestampTzType:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, nil
	case iceberg.TimestampNsType:
		return &arrow.TimestampType{Unit: arrow.Nanosecond}, nil
	case iceberg.TimestampTzNsType:
		return &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, nil
	case iceberg.StringType:
		return arrow.BinaryTypes.String, nil
	case iceberg.BinaryType:
		return arrow.BinaryTypes.Binary, nil
	case iceberg.UUIDType:
		return &arrow.FixedSizeBinaryType{ByteWidth: 16}, nil
	case iceberg.FixedType:
		return &arrow.FixedSizeBinaryType{ByteWidth: t.Len()}, nil
	case *iceberg.StructType:
		fields := make([]arrow.Field, len(t.FieldList))
		for i, f := range t.FieldList {
			ft, err := icebergArrowType(f.Type)
			if err != nil {
				return nil, err
			}
			fields[i] = arrow.Field{Name: f.Name, Type: ft, Nullable: !f.Required}
		}
		return arrow.StructOf(fields...), nil
	case *iceberg.ListType:
		et, err := icebergArrowType(t.Element)
		if err != nil {
			return nil, err
		}
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: !t.ElementRequired}), nil
	case *iceberg.MapType:
		kt, err := icebergArrowType(t.KeyType)
		if err != nil {
			return nil, err
		}
		vt, err := icebergArrowType(t.ValueType)
		if err != nil {
			return nil, err
		}
		mt := arrow.MapOfWithMetadata(kt, arrow.Metadata{}, vt, arrow.Metadata{})
		mt.SetItemNullable(!t.ValueRequired)
		return mt, nil
	}
	return nil, fmt.Errorf("%w: type %s; read a snapshot without it, or cast the column in Spark", ErrIcebergFeature, t)
}

// icebergArrowSchema is the table schema as lockstep reads it.
func icebergArrowSchema(s *iceberg.Schema) (*arrow.Schema, error) {
	fields := make([]arrow.Field, 0, len(s.Fields()))
	for _, f := range s.Fields() {
		t, err := icebergArrowType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		fields = append(fields, arrow.Field{Name: f.Name, Type: t, Nullable: !f.Required})
	}
	return arrow.NewSchema(fields, nil), nil
}

// icebergProject maps a data file (its Arrow schema and Parquet field ids)
// to the table schema want (out), and returns the function that maps its
// records.
//
// A column the file lacks is, as the spec says, its identity partition
// value from the manifest (consts, by field id) where it has one, else
// null. A file without field ids is matched through the table's name
// mapping (schema.name-mapping.default) where it has one, else by name.
func icebergProject(sc *iceberg.Schema, out *arrow.Schema, have *arrow.Schema, ids []reader.FieldID, consts map[int]any, names iceberg.NameMapping) (func(arrow.RecordBatch) arrow.RecordBatch, error) {
	fileNames := make([]string, have.NumFields())
	for k, f := range have.Fields() {
		fileNames[k] = f.Name
	}
	tf := sc.Fields()
	src := make([]int, len(tf))
	maps := make([]dataMap, len(tf))
	for j, f := range tf {
		k := findIcebergField(f, fileNames, ids, names)
		src[j] = k
		if k < 0 {
			if v, ok := consts[f.ID]; ok {
				if _, err := icebergConstant(out.Field(j).Type, v, 0); err != nil {
					return nil, fmt.Errorf("column %s: identity partition value %v: %v", f.Name, v, err)
				}
			}
			continue
		}
		var fid reader.FieldID
		if k < len(ids) {
			fid = ids[k]
		}
		dm, err := icebergMapType(f.Name, f.Type, out.Field(j).Type, have.Field(k).Type, fid)
		if err != nil {
			return nil, err
		}
		maps[j] = dm
	}
	return func(rec arrow.RecordBatch) arrow.RecordBatch {
		n := rec.NumRows()
		cols := make([]arrow.Array, len(tf))
		for j, k := range src {
			v, isConst := consts[tf[j].ID]
			switch {
			case k < 0 && isConst:
				cols[j], _ = icebergConstant(out.Field(j).Type, v, int(n)) // checked above
			case k < 0:
				cols[j] = array.MakeArrayOfNull(memory.DefaultAllocator, out.Field(j).Type, int(n))
			default:
				d := apply(maps[j], rec.Column(k).Data())
				cols[j] = array.MakeFromData(d)
				d.Release()
			}
		}
		r := array.NewRecordBatch(out, cols, n)
		for _, c := range cols {
			c.Release()
		}
		return r
	}, nil
}

// findIcebergField is the index of the file field that holds table field
// want: the one with its field id, or, in a file without ids, the one with
// its name; -1 when the file has none.
func findIcebergField(want iceberg.NestedField, names []string, ids []reader.FieldID, mapping []iceberg.MappedField) int {
	anyID := false
	for k, fid := range ids {
		if fid.ID == int32(want.ID) {
			return k
		}
		anyID = anyID || fid.ID != 0
	}
	if anyID {
		return -1
	}
	if mapping != nil {
		for _, mf := range mapping {
			if mf.FieldID == nil || *mf.FieldID != want.ID {
				continue
			}
			for k, n := range names {
				if slices.Contains(mf.Names, n) {
					return k
				}
			}
			return -1
		}
		return -1
	}
	for k, n := range names {
		if n == want.Name {
			return k
		}
	}
	return -1
}

// icebergConstant is a column of n copies of an identity partition value
// v, as iceberg-go decodes it from a manifest, of Arrow type t.
func icebergConstant(t arrow.DataType, v any, n int) (arrow.Array, error) {
	b := array.NewBuilder(memory.DefaultAllocator, t)
	defer b.Release()
	if v == nil {
		b.AppendNulls(n)
		return b.NewArray(), nil
	}
	var add func()
	switch bb := b.(type) {
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			add = func() { bb.Append(s) }
		}
	case *array.BinaryBuilder:
		if s, ok := v.([]byte); ok {
			add = func() { bb.Append(s) }
		}
	case *array.BooleanBuilder:
		if s, ok := v.(bool); ok {
			add = func() { bb.Append(s) }
		}
	case *array.Int32Builder:
		if s, ok := v.(int32); ok {
			add = func() { bb.Append(s) }
		}
	case *array.Int64Builder:
		switch s := v.(type) {
		case int64:
			add = func() { bb.Append(s) }
		case int32:
			add = func() { bb.Append(int64(s)) }
		}
	case *array.Float32Builder:
		if s, ok := v.(float32); ok {
			add = func() { bb.Append(s) }
		}
	case *array.Float64Builder:
		switch s := v.(type) {
		case float64:
			add = func() { bb.Append(s) }
		case float32:
			add = func() { bb.Append(float64(s)) }
		}
	case *array.Date32Builder:
		if s, ok := v.(iceberg.Date); ok {
			add = func() { bb.Append(arrow.Date32(s)) }
		}
	case *array.TimestampBuilder:
		if s, ok := v.(iceberg.Timestamp); ok {
			add = func() { bb.Append(arrow.Timestamp(s)) }
		}
	}
	if add == nil {
		return nil, fmt.Errorf("%w: an identity partition value of %T for a %s column that the file lacks", ErrIcebergFeature, v, t)
	}
	for range n {
		add()
	}
	return b.NewArray(), nil
}

// icebergMapType returns the function that maps a file's column (Arrow
// type have, Parquet ids fid) of table type t to the table's Arrow type
// want.
func icebergMapType(path string, t iceberg.Type, want, have arrow.DataType, fid reader.FieldID) (dataMap, error) {
	switch t := t.(type) {
	case *iceberg.StructType:
		st, ok := have.(*arrow.StructType)
		if !ok {
			return nil, fmt.Errorf("column %s is a struct in the table schema but %s in the file", path, have)
		}
		names := make([]string, st.NumFields())
		for k, f := range st.Fields() {
			names[k] = f.Name
		}
		wt := want.(*arrow.StructType)
		src := make([]int, len(t.FieldList))
		maps := make([]dataMap, len(t.FieldList))
		for j, f := range t.FieldList {
			k := findIcebergField(f, names, fid.Children, nil)
			src[j] = k
			if k < 0 {
				continue
			}
			var cid reader.FieldID
			if k < len(fid.Children) {
				cid = fid.Children[k]
			}
			dm, err := icebergMapType(path+"."+f.Name, f.Type, wt.Field(j).Type, st.Field(k).Type, cid)
			if err != nil {
				return nil, err
			}
			maps[j] = dm
		}
		return func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, want, func(children []arrow.ArrayData) []arrow.ArrayData {
				kids := make([]arrow.ArrayData, len(src))
				for j, k := range src {
					if k < 0 {
						a := array.MakeArrayOfNull(memory.DefaultAllocator, wt.Field(j).Type, d.Offset()+d.Len())
						kids[j] = a.Data()
						kids[j].Retain()
						a.Release()
						continue
					}
					kids[j] = apply(maps[j], children[k])
				}
				return kids
			})
		}, nil
	case *iceberg.ListType:
		lt, ok := have.(*arrow.ListType)
		if !ok {
			return nil, fmt.Errorf("column %s is a list in the table schema but %s in the file", path, have)
		}
		var cid reader.FieldID
		if len(fid.Children) > 0 {
			cid = fid.Children[0]
		}
		dm, err := icebergMapType(path+".element", t.Element, want.(*arrow.ListType).Elem(), lt.Elem(), cid)
		if err != nil {
			return nil, err
		}
		return func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, want, func(c []arrow.ArrayData) []arrow.ArrayData {
				return []arrow.ArrayData{apply(dm, c[0])}
			})
		}, nil
	case *iceberg.MapType:
		mt, ok := have.(*arrow.MapType)
		if !ok {
			return nil, fmt.Errorf("column %s is a map in the table schema but %s in the file", path, have)
		}
		var kid, vid reader.FieldID
		if len(fid.Children) == 2 {
			kid, vid = fid.Children[0], fid.Children[1]
		}
		wm := want.(*arrow.MapType)
		km, err := icebergMapType(path+".key", t.KeyType, wm.KeyType(), mt.KeyType(), kid)
		if err != nil {
			return nil, err
		}
		vm, err := icebergMapType(path+".value", t.ValueType, wm.ItemType(), mt.ItemType(), vid)
		if err != nil {
			return nil, err
		}
		return func(d arrow.ArrayData) arrow.ArrayData {
			return rebuild(d, want, func(c []arrow.ArrayData) []arrow.ArrayData {
				entries := rebuild(c[0], wm.Elem(), func(kv []arrow.ArrayData) []arrow.ArrayData {
					return []arrow.ArrayData{apply(km, kv[0]), apply(vm, kv[1])}
				})
				return []arrow.ArrayData{entries}
			})
		}, nil
	}
	if arrow.TypeEqual(have, want) {
		return nil, nil
	}
	if !icebergPromotes(have, want) {
		return nil, fmt.Errorf("column %s is %s in the file but %s in the table schema, which Iceberg cannot promote it to", path, have, want)
	}
	return func(d arrow.ArrayData) arrow.ArrayData {
		a := array.MakeFromData(d)
		defer a.Release()
		w, err := widenArray(a, want)
		if err != nil {
			panic(fmt.Sprintf("column %s: %v", path, err)) // icebergPromotes said it could
		}
		out := w.Data()
		out.Retain()
		w.Release()
		return out
	}, nil
}

// icebergPromotes says whether a file's Arrow type have may be read as the
// table's want, by Iceberg's promotions: int to long, float to double, a
// decimal to one of more precision and the same scale.
func icebergPromotes(have, want arrow.DataType) bool {
	switch w := want.(type) {
	case *arrow.Int64Type:
		return have.ID() == arrow.INT32
	case *arrow.Float64Type:
		return have.ID() == arrow.FLOAT32
	case *arrow.Decimal128Type:
		h, ok := have.(*arrow.Decimal128Type)
		return ok && h.Scale == w.Scale && h.Precision <= w.Precision
	}
	return false
}
