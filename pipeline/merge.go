package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// mergeSchemas unions the schemas of part files by column name, the way
// Spark's mergeSchema does, with the widenings Spark applies: small ints and
// int32 to int64, float to double, and decimals to the precision and scale
// that hold both. Any other difference is a conflict naming both files.
// Columns keep the order in which they first appear.
type schemaMerger struct {
	fields []arrow.Field
	from   []string // the file each field's current type came from
	index  map[string]int
	seen   []int // how many files have each field
	files  int
}

func newSchemaMerger() *schemaMerger { return &schemaMerger{index: map[string]int{}} }

func (m *schemaMerger) add(file string, s *arrow.Schema) error {
	m.files++
	for _, f := range s.Fields() {
		i, ok := m.index[f.Name]
		if !ok {
			m.index[f.Name] = len(m.fields)
			m.fields = append(m.fields, f)
			m.from = append(m.from, file)
			m.seen = append(m.seen, 1)
			continue
		}
		m.seen[i]++
		cur := m.fields[i]
		typ, ok := widen(cur.Type, f.Type)
		if !ok {
			return fmt.Errorf("column %q is %s in %s but %s in %s; Spark cannot merge these either: rewrite one of them", f.Name, cur.Type, m.from[i], f.Type, file)
		}
		if !arrow.TypeEqual(typ, cur.Type) {
			m.from[i] = file
		}
		m.fields[i] = arrow.Field{Name: f.Name, Type: typ, Nullable: cur.Nullable || f.Nullable, Metadata: cur.Metadata}
	}
	return nil
}

// merged is the union: a field is nullable if it is in any file, or
// missing from any (a row of that file has no value for it), as Spark's
// mergeSchema makes it.
func (m *schemaMerger) merged() []arrow.Field {
	out := make([]arrow.Field, len(m.fields))
	for i, f := range m.fields {
		if m.seen[i] < m.files {
			f.Nullable = true
		}
		out[i] = f
	}
	return out
}

// widen returns the type that holds values of both a and b.
func widen(a, b arrow.DataType) (arrow.DataType, bool) {
	if arrow.TypeEqual(a, b) {
		return a, true
	}
	rank := func(t arrow.DataType) int {
		switch t.ID() {
		case arrow.INT8:
			return 1
		case arrow.INT16:
			return 2
		case arrow.INT32:
			return 3
		case arrow.INT64:
			return 4
		}
		return 0
	}
	if ra, rb := rank(a), rank(b); ra > 0 && rb > 0 {
		if ra > rb {
			return a, true
		}
		return b, true
	}
	if (a.ID() == arrow.FLOAT32 && b.ID() == arrow.FLOAT64) || (a.ID() == arrow.FLOAT64 && b.ID() == arrow.FLOAT32) {
		return arrow.PrimitiveTypes.Float64, true
	}
	da, okA := a.(*arrow.Decimal128Type)
	db, okB := b.(*arrow.Decimal128Type)
	if okA && okB {
		scale := max(da.Scale, db.Scale)
		digits := max(da.Precision-da.Scale, db.Precision-db.Scale)
		if digits+scale <= 38 {
			return &arrow.Decimal128Type{Precision: digits + scale, Scale: scale}, true
		}
	}
	return nil, false
}

var errConform = errors.New("cannot conform a record to the merged schema")

// conformer returns the function that turns a record of file i (schema
// have) into one of the merged schema want.
func (s *Source) conformer(have, want *arrow.Schema, i int) (func(context.Context, arrow.RecordBatch) (arrow.RecordBatch, error), error) {
	if have.Equal(want) && len(s.Partitions) == 0 {
		return func(_ context.Context, r arrow.RecordBatch) (arrow.RecordBatch, error) { r.Retain(); return r, nil }, nil
	}
	partAt := s.partAt
	if partAt == nil { // a schema not from Schema: partitions last
		partAt = make([]int, want.NumFields())
		for j := range partAt {
			partAt[j] = j - (want.NumFields() - len(s.Partitions))
		}
	}
	src := make([]int, want.NumFields())
	for j, f := range want.Fields() {
		idx := have.FieldIndices(f.Name)
		src[j] = -1
		if len(idx) == 1 && partAt[j] < 0 {
			src[j] = idx[0]
		}
	}
	return func(ctx context.Context, r arrow.RecordBatch) (arrow.RecordBatch, error) {
		n := int(r.NumRows())
		cols := make([]arrow.Array, 0, want.NumFields())
		defer func() {
			for _, c := range cols {
				c.Release()
			}
		}()
		for j, f := range want.Fields() {
			var a arrow.Array
			var err error
			switch {
			case partAt[j] >= 0:
				a, err = constantColumn(memory.DefaultAllocator, f.Type, s.parts[i][partAt[j]], n)
			case src[j] < 0:
				a = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, n)
			case arrow.TypeEqual(r.Column(src[j]).DataType(), f.Type):
				a = r.Column(src[j])
				a.Retain()
			default:
				a, err = widenArray(r.Column(src[j]), f.Type)
			}
			if err != nil {
				return nil, fmt.Errorf("column %q: %v", f.Name, err)
			}
			cols = append(cols, a)
		}
		return array.NewRecordBatch(want, cols, int64(n)), nil
	}, nil
}

// widenArray casts a column to the wider type widen chose for it.
func widenArray(a arrow.Array, to arrow.DataType) (arrow.Array, error) {
	b := array.NewBuilder(memory.DefaultAllocator, to)
	defer b.Release()
	b.Reserve(a.Len())
	var get func(i int) error
	switch bb := b.(type) {
	case *array.Int64Builder:
		get = func(i int) error {
			switch a := a.(type) {
			case *array.Int8:
				bb.Append(int64(a.Value(i)))
			case *array.Int16:
				bb.Append(int64(a.Value(i)))
			case *array.Int32:
				bb.Append(int64(a.Value(i)))
			default:
				return fmt.Errorf("cannot widen %s to int64", a.DataType())
			}
			return nil
		}
	case *array.Int32Builder:
		get = func(i int) error {
			switch a := a.(type) {
			case *array.Int8:
				bb.Append(int32(a.Value(i)))
			case *array.Int16:
				bb.Append(int32(a.Value(i)))
			default:
				return fmt.Errorf("cannot widen %s to int32", a.DataType())
			}
			return nil
		}
	case *array.Int16Builder:
		get = func(i int) error {
			x, ok := a.(*array.Int8)
			if !ok {
				return fmt.Errorf("cannot widen %s to int16", a.DataType())
			}
			bb.Append(int16(x.Value(i)))
			return nil
		}
	case *array.Float64Builder:
		get = func(i int) error {
			x, ok := a.(*array.Float32)
			if !ok {
				return fmt.Errorf("cannot widen %s to double", a.DataType())
			}
			bb.Append(float64(x.Value(i)))
			return nil
		}
	case *array.Decimal128Builder:
		x, ok := a.(*array.Decimal128)
		if !ok {
			return nil, fmt.Errorf("cannot widen %s to %s", a.DataType(), to)
		}
		up := to.(*arrow.Decimal128Type).Scale - x.DataType().(*arrow.Decimal128Type).Scale
		get = func(i int) error {
			v := x.Value(i)
			if up > 0 {
				v = v.Mul(decimal128.GetScaleMultiplier(int(up)))
			}
			bb.Append(v)
			return nil
		}
	default:
		return nil, fmt.Errorf("cannot widen %s to %s", a.DataType(), to)
	}
	for i := range a.Len() {
		if a.IsNull(i) {
			b.AppendNull()
			continue
		}
		if err := get(i); err != nil {
			return nil, err
		}
	}
	return b.NewArray(), nil
}
