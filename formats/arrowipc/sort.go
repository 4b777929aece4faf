package arrowipc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
	"github.com/lockstep-data/lockstep/formats/internal/sorter"
)

// rowSorter sorts whole rows with the shared sorter, so that sort_by is
// bounded by sort_buffer and spills like kv.
//
// The sort key is, per sort column, 0x00 for a null (nulls first) or 0x01
// and keyenc's order-preserving encoding, followed by the row's ordinal, so
// that keys are unique and equal sort values keep the canonical order. The
// value is the row, each column's value as length-prefixed JSON, written
// and read back by arrow-go's own JSON codec (GetOneForMarshal, and
// Builder.UnmarshalJSON over a whole batch's values of a column), which
// keeps nested columns, nulls, NaN and infinities.
type rowSorter struct {
	sort *sorter.Sorter
	cols []int // output column index of each sort column
	ord  uint64
	key  []byte
	val  []byte
}

func newRowSorter(schema *arrow.Schema, sortBy []string, budget int64, tempDir string) (*rowSorter, error) {
	s := &rowSorter{}
	for _, name := range sortBy {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return nil, fmt.Errorf("%w: arrow sort_by: no column %q in the output (sort_by names columns after rename)", formats.ErrBadInput, name)
		}
		if t := schema.Field(is[0]).Type; !keyenc.Supported(t) {
			return nil, fmt.Errorf("%w: arrow sort_by: column %q has type %s, which cannot be sorted; sort by ints, floats, bools, strings, binary or dates", formats.ErrBadInput, name, t)
		}
		s.cols = append(s.cols, is[0])
	}
	for _, f := range schema.Fields() {
		if !roundTrips(f.Type) {
			return nil, fmt.Errorf("%w: arrow sort_by: column %q has type %s, which the sort cannot carry; leave it out of columns or drop sort_by", formats.ErrBadInput, f.Name, f.Type)
		}
	}
	s.sort = sorter.New(sorter.Config{Budget: budget, TempDir: tempDir, Policy: sorter.PolicyError})
	return s, nil
}

// roundTrips says whether arrow-go's JSON codec gives back the same values
// for type t (checked by TestSortCarriesTypes).
func roundTrips(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.DictionaryType, *arrow.ExtensionBase, *arrow.RunEndEncodedType,
		*arrow.DenseUnionType, *arrow.SparseUnionType, *arrow.StringViewType,
		*arrow.BinaryViewType, *arrow.ListViewType, *arrow.LargeListViewType:
		return false
	case arrow.NestedType:
		for _, f := range t.Fields() {
			if !roundTrips(f.Type) {
				return false
			}
		}
	}
	return true
}

func (s *rowSorter) add(ctx context.Context, rec arrow.RecordBatch) error {
	for i := range int(rec.NumRows()) {
		s.key = s.key[:0]
		for _, c := range s.cols {
			col := rec.Column(c)
			if col.IsNull(i) {
				s.key = append(s.key, 0)
				continue
			}
			s.key = keyenc.AppendValue(append(s.key, 1), col, i, false)
		}
		s.key = binary.BigEndian.AppendUint64(s.key, s.ord)
		s.ord++
		s.val = s.val[:0]
		for c := range rec.NumCols() {
			js, err := json.Marshal(rec.Column(int(c)).GetOneForMarshal(i))
			if err != nil {
				return fmt.Errorf("arrow sort_by: record %d, column %q: %w", s.ord-1, rec.ColumnName(int(c)), err)
			}
			s.val = binary.AppendUvarint(s.val, uint64(len(js)))
			s.val = append(s.val, js...)
		}
		if err := s.sort.Add(ctx, s.key, s.val); err != nil {
			return err
		}
	}
	return nil
}

// finish emits the rows in key order as batches of batchRows rows.
func (s *rowSorter) finish(ctx context.Context, schema *arrow.Schema, batchRows int64, write func(arrow.RecordBatch) error) error {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	cols := make([][]byte, schema.NumFields()) // per column: a JSON array being filled
	var n int64
	flush := func() error {
		for c, fb := range b.Fields() {
			if err := fb.UnmarshalJSON(append(cols[c], ']')); err != nil {
				return fmt.Errorf("arrow sort_by: decode the sorted values of column %q: %w", schema.Field(c).Name, err)
			}
			cols[c] = cols[c][:0]
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		n = 0
		return write(rec)
	}
	err := s.sort.Finish(ctx, func(key, val []byte) error {
		for c := range cols {
			l, k := binary.Uvarint(val)
			if k <= 0 || uint64(len(val)-k) < l {
				return fmt.Errorf("arrow sort_by: a sorted row is truncated at column %q", schema.Field(c).Name)
			}
			if n == 0 {
				cols[c] = append(cols[c], '[')
			} else {
				cols[c] = append(cols[c], ',')
			}
			cols[c] = append(cols[c], val[k:k+int(l)]...)
			val = val[k+int(l):]
		}
		if n++; n == batchRows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return flush()
	}
	return nil
}
