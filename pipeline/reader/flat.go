package reader

import (
	"fmt"
	"io"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// A flat column is a top-level leaf outside any list, map or struct, of a
// type whose Parquet values are Arrow's values as they are (ints, floats,
// dates, times, timestamps, strings, binary). It is the common case of
// Spark output, and it is read without parquet.Value: each page's
// definition levels and decoded values (or dictionary indexes) are copied
// a batch at a time into buffers in Arrow's layout, and the batch's array
// is made from those buffers in one copy. Other columns take the general
// path through parquet.Value and the assembler.

// flatPhys is the physical type a flat column's conversion reads.
func flatPhys(c convKind) (format.Type, bool) {
	switch c {
	case convInt8, convInt16, convInt32, convUint8, convUint16, convUint32, convDate32, convTime32:
		return format.Int32, true
	case convInt64, convUint64, convTime64, convTimestamp:
		return format.Int64, true
	case convFloat32:
		return format.Float, true
	case convFloat64:
		return format.Double, true
	case convString, convBinary:
		return format.ByteArray, true
	}
	return 0, false
}

// flatColumns turns the fast path on; tests turn it off to compare.
var flatColumns = true

// isFlat reports whether leaf n can be read as a flat column.
func (t *schemaTree) isFlat(n *node) bool {
	if !flatColumns {
		return false
	}
	top := false
	for _, f := range t.fields {
		top = top || f == n
	}
	phys, ok := flatPhys(n.conv)
	return top && ok && n.kind == kindLeaf && n.phys == phys && n.def <= 1 && !n.nullKeyErr
}

// flatBatch holds rows of a flat column: validity and values, with nulls
// taking a zero value (fixed width) or an empty one (byte arrays).
type flatBatch struct {
	rows  int
	nulls int
	valid []bool
	fixed []byte  // little-endian values of width bytes each
	data  []byte  // byte arrays
	offs  []int32 // byte arrays: rows+1 offsets once rows > 0
}

// bytes is what the batch's values hold.
func (b *flatBatch) bytes() int64 {
	return int64(len(b.fixed) + len(b.data) + 4*len(b.offs) + len(b.valid))
}

func (b *flatBatch) reset() {
	b.rows, b.nulls = 0, 0
	b.valid, b.fixed, b.data, b.offs = b.valid[:0], b.fixed[:0], b.data[:0], b.offs[:0]
}

// moveTail moves rows [k, rows) of b to the front of dst, cutting b at k.
func (b *flatBatch) moveTail(k, width int, byteArrays bool, dst *flatBatch) {
	if k >= b.rows {
		return
	}
	if dst.rows > 0 {
		// Rows carried already follow these: put them after.
		var rest flatBatch
		rest, *dst = *dst, flatBatch{}
		b.moveTail(k, width, byteArrays, dst)
		dst.appendBatch(&rest, width, byteArrays)
		return
	}
	dst.reset()
	for _, v := range b.valid[k:] {
		dst.valid = append(dst.valid, v)
		if !v {
			dst.nulls++
			b.nulls--
		}
	}
	dst.rows = b.rows - k
	if byteArrays {
		start := b.offs[k]
		dst.data = append(dst.data, b.data[start:]...)
		dst.offs = append(dst.offs, 0)
		for _, o := range b.offs[k+1:] {
			dst.offs = append(dst.offs, o-start)
		}
		b.data, b.offs = b.data[:start], b.offs[:k+1]
	} else {
		dst.fixed = append(dst.fixed, b.fixed[k*width:]...)
		b.fixed = b.fixed[:k*width]
	}
	b.valid = b.valid[:k]
	b.rows = k
}

// appendBatch appends the rows of o.
func (b *flatBatch) appendBatch(o *flatBatch, width int, byteArrays bool) {
	b.valid = append(b.valid, o.valid...)
	b.nulls += o.nulls
	if byteArrays {
		if len(b.offs) == 0 {
			b.offs = append(b.offs, 0)
		}
		base := int32(len(b.data))
		b.data = append(b.data, o.data...)
		for _, off := range o.offs[1:] {
			b.offs = append(b.offs, base+off)
		}
	} else {
		b.fixed = append(b.fixed, o.fixed...)
	}
	b.rows += o.rows
}

// flatReader reads one flat column chunk.
type flatReader struct {
	n      *node
	width  int // bytes per value; 0 for byte arrays
	maxDef byte
	batch  flatBatch
	carry  flatBatch // rows given back by unread
	page   parquet.Page
	defs   []byte // the page's definition levels; nil when it has no nulls
	row    int    // next row of the page
	val    int    // next value (non-null) of the page
	nvals  int    // non-null values in the page
	fixed  []byte // the page's values, or its dictionary's
	idx    []int32
	data   []byte // byte-array values, or the dictionary's
	offs   []uint32
}

// reset starts a new column chunk.
func (r *flatReader) reset() {
	r.batch.reset()
	r.carry.reset()
	r.page, r.defs, r.fixed, r.idx, r.data, r.offs = nil, nil, nil, nil, nil, nil
	r.row, r.val, r.nvals = 0, 0, 0
}

func newFlatReader(n *node) *flatReader {
	r := &flatReader{n: n, maxDef: byte(n.def)}
	switch n.phys {
	case format.Int32, format.Float:
		r.width = 4
	case format.Int64, format.Double:
		r.width = 8
	}
	return r
}

// readRows reads the next n rows into the batch, after any carried rows;
// fewer at the end of the chunk, or once byte-array values reach budget
// bytes. It returns the rows read.
func (r *flatReader) readRows(c *columnReader, n int, budget int64) (int, error) {
	r.batch.reset()
	r.carry, r.batch = r.batch, r.carry // carried rows (if any) become the batch
	r.carry.reset()
	if r.batch.rows > n {
		r.unread(n)
		return n, nil
	}
	for r.batch.rows < n {
		if r.page == nil || r.row == int(r.page.NumRows()) {
			if err := r.nextPage(c); err == io.EOF {
				break
			} else if err != nil {
				return 0, err
			}
			continue
		}
		if r.width == 0 && int64(len(r.batch.data)) >= budget && r.batch.rows > 0 {
			break
		}
		k := min(n-r.batch.rows, int(r.page.NumRows())-r.row)
		if r.width == 0 {
			// Byte arrays stop at the budget, as the general path does; the
			// check above then ends the batch.
			r.takeBytes(k, budget)
		} else {
			r.takeFixed(k)
		}
	}
	return r.batch.rows, nil
}

// nextPage loads the chunk's next page and checks that its levels and
// values agree; io.EOF at the end of the chunk.
func (r *flatReader) nextPage(c *columnReader) error {
	c.releasePage()
	r.page = nil
	p, held, err := c.readPage()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return pageError(err)
	}
	c.hold(p, held)
	if err := checkPage(p); err != nil {
		return err
	}
	rows := int(p.NumRows())
	r.defs = p.DefinitionLevels()
	if r.defs != nil && len(r.defs) != rows {
		return fmt.Errorf("%w: page of %d rows has %d definition levels", ErrCorrupt, rows, len(r.defs))
	}
	r.nvals = rows
	if r.defs != nil {
		r.nvals = 0
		for _, d := range r.defs {
			switch {
			case d == r.maxDef:
				r.nvals++
			case d > r.maxDef:
				return fmt.Errorf("%w: definition level %d above the column's %d", ErrCorrupt, d, r.maxDef)
			}
		}
	}
	r.idx, r.fixed, r.data, r.offs = nil, nil, nil, nil
	values, dict := p.Data(), p.Dictionary()
	if dict != nil {
		if values.Kind() != encoding.Int32 {
			return fmt.Errorf("%w: dictionary page indexes are not int32", ErrCorrupt)
		}
		r.idx = values.Int32()
		if len(r.idx) != r.nvals {
			return fmt.Errorf("%w: page has %d dictionary indexes for %d values", ErrCorrupt, len(r.idx), r.nvals)
		}
		values = dict.Page().Data()
	}
	have, err := r.setValues(values)
	if err != nil {
		return err
	}
	if dict == nil && have != r.nvals {
		return fmt.Errorf("%w: page holds %d values for %d non-null rows", ErrCorrupt, have, r.nvals)
	}
	for _, i := range r.idx {
		if i < 0 || int(i) >= have {
			return fmt.Errorf("%w: dictionary index %d out of %d entries", ErrCorrupt, i, have)
		}
	}
	r.page, r.row, r.val = p, 0, 0
	return nil
}

// setValues points the reader at the page's (or dictionary's) values and
// returns how many there are.
func (r *flatReader) setValues(v encoding.Values) (int, error) {
	want := map[format.Type]encoding.Kind{format.Int32: encoding.Int32, format.Int64: encoding.Int64,
		format.Float: encoding.Float, format.Double: encoding.Double, format.ByteArray: encoding.ByteArray}[r.n.phys]
	if v.Kind() != want {
		return 0, fmt.Errorf("%w: page values of another type than the column's %s", ErrCorrupt, r.n.phys)
	}
	switch want {
	case encoding.Int32:
		r.fixed = unsafeBytes(v.Int32())
	case encoding.Int64:
		r.fixed = unsafeBytes(v.Int64())
	case encoding.Float:
		r.fixed = unsafeBytes(v.Float())
	case encoding.Double:
		r.fixed = unsafeBytes(v.Double())
	case encoding.ByteArray:
		r.data, r.offs = v.ByteArray()
		prev := uint32(0)
		for _, o := range r.offs {
			if o < prev || int(o) > len(r.data) {
				return 0, fmt.Errorf("%w: byte-array offsets out of order or past the data", ErrCorrupt)
			}
			prev = o
		}
		return max(len(r.offs)-1, 0), nil
	}
	return len(r.fixed) / r.width, nil
}

// present reports whether row i of the page holds a value.
func (r *flatReader) present(i int) bool { return r.defs == nil || r.defs[i] == r.maxDef }

func (r *flatReader) takeFixed(k int) {
	b := &r.batch
	w := r.width
	for i := r.row; i < r.row+k; i++ {
		if !r.present(i) {
			b.valid = append(b.valid, false)
			b.nulls++
			b.fixed = append(b.fixed, zeros[:w]...)
			continue
		}
		b.valid = append(b.valid, true)
		j := r.val
		if r.idx != nil {
			j = int(r.idx[j])
		}
		b.fixed = append(b.fixed, r.fixed[j*w:j*w+w]...)
		r.val++
	}
	b.rows += k
	r.row += k
}

var zeros [8]byte

// takeBytes takes up to k rows of byte arrays, stopping once the batch
// holds budget bytes, and returns how many it took.
func (r *flatReader) takeBytes(k int, budget int64) int {
	b := &r.batch
	if len(b.offs) == 0 {
		b.offs = append(b.offs, 0)
	}
	taken := 0
	for i := r.row; i < r.row+k; i++ {
		if taken > 0 && int64(len(b.data)) >= budget {
			break
		}
		if r.present(i) {
			j := r.val
			if r.idx != nil {
				j = int(r.idx[j])
			}
			b.data = append(b.data, r.data[r.offs[j]:r.offs[j+1]]...)
			b.valid = append(b.valid, true)
			r.val++
		} else {
			b.valid = append(b.valid, false)
			b.nulls++
		}
		b.offs = append(b.offs, int32(len(b.data)))
		taken++
	}
	b.rows += taken
	r.row += taken
	return taken
}

// unread gives back the batch's rows from k on; the next readRows starts
// with them.
func (r *flatReader) unread(k int) {
	r.batch.moveTail(k, r.width, r.width == 0, &r.carry)
}

// more reports whether the chunk holds rows beyond those handed out.
func (r *flatReader) more(c *columnReader) (bool, error) {
	if r.carry.rows > 0 || (r.page != nil && r.row < int(r.page.NumRows())) {
		return true, nil
	}
	for {
		err := r.nextPage(c)
		if err == io.EOF {
			return false, nil
		} else if err != nil {
			return false, err
		}
		if r.page.NumRows() > 0 {
			return true, nil
		}
	}
}

// array makes the batch's Arrow array of type n.typ, copying the buffers
// into memory the array owns.
func (r *flatReader) array(mem memory.Allocator) arrow.Array {
	b := &r.batch
	n := r.n
	var bufs []*memory.Buffer
	valid := (*memory.Buffer)(nil)
	if b.nulls > 0 {
		valid = bitmap(mem, b.valid, b.nulls)
	}
	bufs = append(bufs, valid)
	if r.width == 0 {
		offs := memory.NewResizableBuffer(mem)
		offs.Resize(4 * (b.rows + 1))
		if b.rows > 0 {
			copy(offs.Bytes(), unsafeBytes(b.offs))
		} else {
			clear(offs.Bytes())
		}
		// As Arrow's builder does: an empty data buffer is an empty slice,
		// not nil, or an empty value would read as null.
		data := memory.NewBufferBytes([]byte{})
		if len(b.data) > 0 {
			rb := memory.NewResizableBuffer(mem)
			rb.Resize(len(b.data))
			copy(rb.Bytes(), b.data)
			data = rb
		}
		bufs = append(bufs, offs, data)
	} else {
		bufs = append(bufs, narrow(mem, n.conv, b.fixed, b.rows))
	}
	d := array.NewData(n.typ, b.rows, bufs, nil, b.nulls, 0)
	for _, buf := range bufs {
		if buf != nil {
			buf.Release()
		}
	}
	defer d.Release()
	return array.MakeFromData(d)
}

// narrow copies 4- or 8-byte physical values into the Arrow type's width:
// int8, int16 and their unsigned kin are stored as INT32 in Parquet.
func narrow(mem memory.Allocator, c convKind, fixed []byte, rows int) *memory.Buffer {
	buf := memory.NewResizableBuffer(mem)
	src := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(fixed))), len(fixed)/4)
	switch c {
	case convInt8, convUint8:
		buf.Resize(rows)
		out := buf.Bytes()
		for i := range rows {
			out[i] = byte(src[i])
		}
	case convInt16, convUint16:
		buf.Resize(2 * rows)
		out := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(buf.Bytes()))), rows)
		for i := range rows {
			out[i] = int16(src[i])
		}
	default:
		buf.Resize(len(fixed))
		copy(buf.Bytes(), fixed)
	}
	return buf
}

// unsafeBytes views a slice of fixed-size numbers as its bytes (little
// endian on every platform Go and Arrow run this on).
func unsafeBytes[T int32 | int64 | float32 | float64 | uint32](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}
