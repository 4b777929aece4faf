package reader

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// assembler rebuilds Arrow arrays from the (repetition, definition, value)
// triples of leaf columns. Each call covers a whole number of rows.
//
// A slot is one position of a node's Arrow array. For every leaf under the
// node, slots[k] holds the index of the leaf value at which that slot begins;
// nil slots mean the identity (slot i begins at value i), which is the case
// for every column outside a list.
type assembler struct {
	mem  memory.Allocator
	vals [][]parquet.Value
	flat []*flatReader // per leaf: the batch of a flat column, read without vals
}

func (a *assembler) build(n *node, slots [][]int32, count int) (arrow.Array, error) {
	switch n.kind {
	case kindLeaf:
		return a.leaf(n, slotsOf(slots, 0), count)
	case kindStruct:
		return a.structArray(n, slots, count)
	default:
		return a.listArray(n, slots, count)
	}
}

func slotsOf(slots [][]int32, k int) []int32 {
	if slots == nil {
		return nil
	}
	return slots[k]
}

func at(s []int32, i int) int {
	if s == nil {
		return i
	}
	return int(s[i])
}

func (a *assembler) structArray(n *node, slots [][]int32, count int) (arrow.Array, error) {
	first := a.vals[n.firstLf]
	fs := slotsOf(slots, 0)
	valid := make([]bool, count)
	nulls := 0
	for i := range count {
		valid[i] = first[at(fs, i)].DefinitionLevel() >= n.def
		if !valid[i] {
			nulls++
		}
	}
	children := make([]arrow.ArrayData, len(n.children))
	for ci, c := range n.children {
		var cs [][]int32
		if slots != nil {
			off := c.firstLf - n.firstLf
			cs = slots[off : off+c.numLeafs]
		}
		arr, err := a.build(c, cs, count)
		if err != nil {
			return nil, err
		}
		children[ci] = arr.Data()
		defer arr.Release()
	}
	data := array.NewData(n.typ, count, []*memory.Buffer{bitmap(a.mem, valid, nulls)}, children, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// listArray builds a list or map. Offsets come from the first leaf; every
// leaf under the node gets its own element slots, found by scanning its
// repetition levels: a value at level n.rep starts a new element, a value at
// a deeper level continues the current one.
func (a *assembler) listArray(n *node, slots [][]int32, count int) (arrow.Array, error) {
	elemSlots := make([][]int32, n.numLeafs)
	offsets := make([]int32, count+1)
	valid := make([]bool, count)
	nulls := 0
	for k := range n.numLeafs {
		vals := a.vals[n.firstLf+k]
		ss := slotsOf(slots, k)
		var es []int32
		for i := range count {
			s := at(ss, i)
			if s >= len(vals) {
				return nil, fmt.Errorf("%w: column %q has fewer values than rows", ErrCorrupt, n.name)
			}
			d := vals[s].DefinitionLevel()
			if k == 0 {
				valid[i] = d >= n.def
				if !valid[i] {
					nulls++
				}
			}
			if d >= n.elemDef {
				es = append(es, int32(s))
				for j := s + 1; j < len(vals) && vals[j].RepetitionLevel() >= n.rep; j++ {
					if vals[j].RepetitionLevel() == n.rep {
						es = append(es, int32(j))
					}
				}
			}
			if k == 0 {
				offsets[i+1] = int32(len(es))
			}
		}
		if k > 0 && len(es) != len(elemSlots[0]) {
			return nil, fmt.Errorf("%w: columns under %q disagree on element count", ErrCorrupt, n.name)
		}
		elemSlots[k] = es
	}
	nelem := len(elemSlots[0])
	child, err := a.build(n.children[0], elemSlots, nelem)
	if err != nil {
		return nil, err
	}
	defer child.Release()
	offBuf := memory.NewResizableBuffer(a.mem)
	offBuf.Resize(4 * (count + 1))
	for i, o := range offsets {
		binary.LittleEndian.PutUint32(offBuf.Bytes()[4*i:], uint32(o))
	}
	data := array.NewData(n.typ, count, []*memory.Buffer{bitmap(a.mem, valid, nulls), offBuf}, []arrow.ArrayData{child.Data()}, nulls, 0)
	offBuf.Release()
	defer data.Release()
	return array.MakeFromData(data), nil
}

func bitmap(mem memory.Allocator, valid []bool, nulls int) *memory.Buffer {
	if nulls == 0 {
		return nil
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(len(valid)))))
	b := buf.Bytes()
	clear(b)
	for i, v := range valid {
		if v {
			bitutil.SetBit(b, i)
		}
	}
	return buf
}

// leaf appends the value of every slot, or null where the slot's definition
// level is below the leaf's.
func (a *assembler) leaf(n *node, ss []int32, count int) (arrow.Array, error) {
	if f := a.flat[n.leaf]; f != nil {
		if f.batch.rows != count {
			return nil, fmt.Errorf("%w: column %q has %d rows where the batch has %d", ErrCorrupt, n.name, f.batch.rows, count)
		}
		return f.array(a.mem), nil
	}
	vals := a.vals[n.leaf]
	b := array.NewBuilder(a.mem, n.typ)
	defer b.Release()
	b.Reserve(count)
	add, err := appender(n, b)
	if err != nil {
		return nil, err
	}
	for i := range count {
		s := at(ss, i)
		if s >= len(vals) {
			return nil, fmt.Errorf("%w: column %q has fewer values than rows", ErrCorrupt, n.name)
		}
		v := vals[s]
		if v.DefinitionLevel() < n.def || v.IsNull() {
			if n.nullKeyErr {
				return nil, fmt.Errorf("%w: column %q holds a null map key", ErrCorrupt, n.name)
			}
			b.AppendNull()
			continue
		}
		if err := add(v); err != nil {
			return nil, fmt.Errorf("column %q: %w", n.name, err)
		}
	}
	return b.NewArray(), nil
}

// appender returns the function that converts one non-null Parquet value.
func appender(n *node, b array.Builder) (func(parquet.Value) error, error) {
	ok := func(f func(parquet.Value)) (func(parquet.Value) error, error) {
		return func(v parquet.Value) error { f(v); return nil }, nil
	}
	switch n.conv {
	case convBool:
		bb := b.(*array.BooleanBuilder)
		return ok(func(v parquet.Value) { bb.Append(v.Boolean()) })
	case convInt8:
		bb := b.(*array.Int8Builder)
		return ok(func(v parquet.Value) { bb.Append(int8(v.Int32())) })
	case convInt16:
		bb := b.(*array.Int16Builder)
		return ok(func(v parquet.Value) { bb.Append(int16(v.Int32())) })
	case convInt32:
		bb := b.(*array.Int32Builder)
		return ok(func(v parquet.Value) { bb.Append(v.Int32()) })
	case convInt64:
		bb := b.(*array.Int64Builder)
		return ok(func(v parquet.Value) { bb.Append(v.Int64()) })
	case convUint8:
		bb := b.(*array.Uint8Builder)
		return ok(func(v parquet.Value) { bb.Append(uint8(v.Int32())) })
	case convUint16:
		bb := b.(*array.Uint16Builder)
		return ok(func(v parquet.Value) { bb.Append(uint16(v.Int32())) })
	case convUint32:
		bb := b.(*array.Uint32Builder)
		return ok(func(v parquet.Value) { bb.Append(uint32(v.Int32())) })
	case convUint64:
		bb := b.(*array.Uint64Builder)
		return ok(func(v parquet.Value) { bb.Append(uint64(v.Int64())) })
	case convFloat32:
		bb := b.(*array.Float32Builder)
		return ok(func(v parquet.Value) { bb.Append(v.Float()) })
	case convFloat64:
		bb := b.(*array.Float64Builder)
		return ok(func(v parquet.Value) { bb.Append(v.Double()) })
	case convFloat16:
		bb := b.(*array.Float16Builder)
		return ok(func(v parquet.Value) {
			bb.Append(float16.FromBits(binary.LittleEndian.Uint16(v.ByteArray())))
		})
	case convDate32:
		bb := b.(*array.Date32Builder)
		return ok(func(v parquet.Value) { bb.Append(arrow.Date32(v.Int32())) })
	case convTime32:
		bb := b.(*array.Time32Builder)
		return ok(func(v parquet.Value) { bb.Append(arrow.Time32(v.Int32())) })
	case convTime64:
		bb := b.(*array.Time64Builder)
		return ok(func(v parquet.Value) { bb.Append(arrow.Time64(v.Int64())) })
	case convTimestamp:
		bb := b.(*array.TimestampBuilder)
		return ok(func(v parquet.Value) { bb.Append(arrow.Timestamp(v.Int64())) })
	case convInt96:
		bb := b.(*array.TimestampBuilder)
		return func(v parquet.Value) error {
			us, err := int96Micros(v)
			if err != nil {
				return err
			}
			bb.Append(arrow.Timestamp(us))
			return nil
		}, nil
	case convString:
		bb := b.(*array.StringBuilder)
		return ok(func(v parquet.Value) { bb.BinaryBuilder.Append(v.ByteArray()) })
	case convBinary:
		bb := b.(*array.BinaryBuilder)
		return ok(func(v parquet.Value) { bb.Append(v.ByteArray()) })
	case convFixed:
		bb := b.(*array.FixedSizeBinaryBuilder)
		width := n.typ.(*arrow.FixedSizeBinaryType).ByteWidth
		return func(v parquet.Value) error {
			if len(v.ByteArray()) != width {
				return fmt.Errorf("%w: value of %d bytes in a %d-byte column", ErrCorrupt, len(v.ByteArray()), width)
			}
			bb.Append(v.ByteArray())
			return nil
		}, nil
	case convDecimal128:
		bb := b.(*array.Decimal128Builder)
		return func(v parquet.Value) error {
			x, err := unscaled(v, 16)
			if err != nil {
				return err
			}
			bb.Append(decimal128.FromBigInt(x))
			return nil
		}, nil
	case convDecimal256:
		bb := b.(*array.Decimal256Builder)
		return func(v parquet.Value) error {
			x, err := unscaled(v, 32)
			if err != nil {
				return err
			}
			bb.Append(decimal256.FromBigInt(x))
			return nil
		}, nil
	}
	return nil, fmt.Errorf("%w: no conversion for column %q", ErrUnsupported, n.name)
}

const julianUnixEpoch = 2440588

const microsPerDay = 86_400_000_000

// int96Micros converts Spark's INT96 timestamp (nanoseconds of the day, then
// the Julian day) to microseconds since the Unix epoch. A value int64
// microseconds cannot hold (beyond ±292,000 years, past anything Spark
// writes) is refused, as Spark refuses it, rather than wrapped.
func int96Micros(v parquet.Value) (int64, error) {
	x := v.Int96()
	// Spark reads the nanoseconds as a signed long: timestamps before the
	// Julian epoch carry a negative remainder.
	nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
	day := int64(int32(x[2]))
	if nanos >= 86_400*1_000_000_000 || nanos <= -86_400*1_000_000_000 {
		return 0, fmt.Errorf("%w: INT96 timestamp with %d nanoseconds in a day", ErrCorrupt, nanos)
	}
	d := day - julianUnixEpoch
	if d > math.MaxInt64/microsPerDay-1 || d < math.MinInt64/microsPerDay+1 {
		return 0, fmt.Errorf("%w: INT96 timestamp on Julian day %d is outside what int64 microseconds hold (about ±292,000 years)", ErrCorrupt, day)
	}
	return d*microsPerDay + nanos/1000, nil
}

// unscaled reads a decimal's unscaled integer from any of its physical types.
func unscaled(v parquet.Value, maxBytes int) (*big.Int, error) {
	switch v.Kind() {
	case parquet.Int32:
		return big.NewInt(int64(v.Int32())), nil
	case parquet.Int64:
		return big.NewInt(v.Int64()), nil
	}
	b := v.ByteArray()
	if len(b) > maxBytes {
		// Leading sign-extension bytes are harmless; anything else overflows.
		for len(b) > maxBytes && (b[0] == 0 || b[0] == 0xff) && (b[0]&0x80 == b[1]&0x80) {
			b = b[1:]
		}
		if len(b) > maxBytes {
			return nil, fmt.Errorf("%w: decimal of %d bytes", ErrCorrupt, len(v.ByteArray()))
		}
	}
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x, nil
}
