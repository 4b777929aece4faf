// Package keyenc encodes one or more Arrow columns into byte strings whose
// bytewise order equals the order of the values, for the sorted formats
// (kv, fst, arrow's sort).
//
// The encoding, per column, in the order the columns are named:
//
//   - signed ints (int8..int64, date32, date64, timestamp, time, duration):
//     big-endian at the column's width with the sign bit flipped;
//   - unsigned ints: big-endian at the column's width;
//   - floats: the IEEE 754 bits big-endian; negative numbers have every bit
//     inverted, the others only the sign bit, so -Inf < -1 < 0 < 1 < +Inf < NaN.
//     -0 is written as +0 and every NaN as the one canonical quiet NaN, so
//     values that compare equal get equal keys (and collide as duplicates);
//   - bool: one byte, 0 or 1;
//   - strings and binary: the bytes as they are (UTF-8 for strings) when the
//     column is the last one of the key; in any other position each 0x00 is
//     written 0x00 0xFF and the value ends with 0x00 0x01, so that a shorter
//     value sorts first and no value can run into the next column.
//
// A null in a key column is an error: a key must name one record.
package keyenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ErrNullKey is a null value in a key column.
var ErrNullKey = errors.New("null key")

// Encoder encodes the key columns of records with one schema.
type Encoder struct {
	idx   []int
	names []string
}

// New checks that every named column exists and has a type that can be a
// key, and returns an encoder for records with this schema.
func New(schema *arrow.Schema, columns []string) (*Encoder, error) {
	if len(columns) == 0 {
		return nil, errors.New("no key columns named")
	}
	e := &Encoder{names: columns}
	for _, name := range columns {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return nil, fmt.Errorf("no column %q in the input (columns: %v)", name, fieldNames(schema))
		}
		if !Supported(schema.Field(is[0]).Type) {
			return nil, fmt.Errorf("column %q has type %s, which cannot be a key (use ints, uints, floats, bool, string, binary, dates or timestamps)", name, schema.Field(is[0]).Type)
		}
		e.idx = append(e.idx, is[0])
	}
	return e, nil
}

func fieldNames(s *arrow.Schema) []string {
	out := make([]string, 0, s.NumFields())
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return out
}

// Supported says whether a column of type t can be part of a key.
func Supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION:
		return true
	}
	return false
}

// Append appends the key of row i of rec to dst.
func (e *Encoder) Append(dst []byte, rec arrow.RecordBatch, i int) ([]byte, error) {
	for k, c := range e.idx {
		col := rec.Column(c)
		if col.IsNull(i) {
			return dst, fmt.Errorf("%w: key column %q is null", ErrNullKey, e.names[k])
		}
		dst = AppendValue(dst, col, i, k == len(e.idx)-1)
	}
	return dst, nil
}

// AppendValue appends the encoding of the non-null value col[i]; last says
// whether it is the last column of the key.
func AppendValue(dst []byte, col arrow.Array, i int, last bool) []byte {
	switch a := col.(type) {
	case *array.Int8:
		return append(dst, byte(a.Value(i))^0x80)
	case *array.Int16:
		return binary.BigEndian.AppendUint16(dst, uint16(a.Value(i))^1<<15)
	case *array.Int32:
		return binary.BigEndian.AppendUint32(dst, uint32(a.Value(i))^1<<31)
	case *array.Int64:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))^1<<63)
	case *array.Date32:
		return binary.BigEndian.AppendUint32(dst, uint32(a.Value(i))^1<<31)
	case *array.Time32:
		return binary.BigEndian.AppendUint32(dst, uint32(a.Value(i))^1<<31)
	case *array.Date64:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))^1<<63)
	case *array.Timestamp:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))^1<<63)
	case *array.Time64:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))^1<<63)
	case *array.Duration:
		return binary.BigEndian.AppendUint64(dst, uint64(a.Value(i))^1<<63)
	case *array.Uint8:
		return append(dst, a.Value(i))
	case *array.Uint16:
		return binary.BigEndian.AppendUint16(dst, a.Value(i))
	case *array.Uint32:
		return binary.BigEndian.AppendUint32(dst, a.Value(i))
	case *array.Uint64:
		return binary.BigEndian.AppendUint64(dst, a.Value(i))
	case *array.Float32:
		return AppendFloat32(dst, a.Value(i))
	case *array.Float64:
		return AppendFloat64(dst, a.Value(i))
	case *array.Boolean:
		if a.Value(i) {
			return append(dst, 1)
		}
		return append(dst, 0)
	case *array.String:
		return appendBytes(dst, a.Value(i), last)
	case *array.LargeString:
		return appendBytes(dst, a.Value(i), last)
	case *array.Binary:
		return appendBytes(dst, string(a.Value(i)), last)
	case *array.LargeBinary:
		return appendBytes(dst, string(a.Value(i)), last)
	}
	panic("keyenc: unsupported type " + col.DataType().String()) // New refuses these
}

// AppendFloat32 appends the order-preserving encoding of f, with -0 as +0
// and every NaN as the positive quiet NaN.
func AppendFloat32(dst []byte, f float32) []byte {
	switch {
	case f == 0:
		f = 0
	case f != f:
		f = float32(math.NaN())
	}
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return binary.BigEndian.AppendUint32(dst, b)
}

// AppendFloat64 appends the order-preserving encoding of f, with -0 as +0
// and every NaN as the positive quiet NaN.
func AppendFloat64(dst []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0
	case f != f:
		f = math.NaN()
	}
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

func appendBytes(dst []byte, s string, last bool) []byte {
	if last {
		return append(dst, s...)
	}
	for j := 0; j < len(s); j++ {
		if s[j] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, s[j])
		}
	}
	return append(dst, 0, 1)
}
