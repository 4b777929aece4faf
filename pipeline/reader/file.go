// Package reader reads one Parquet file into Arrow record batches, streaming
// row group by row group, through parquet-go's column pages.
//
// Files are untrusted: every size taken from a footer is checked before it is
// allocated, and a panic inside the Parquet library becomes ErrCorrupt naming
// the file.
package reader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/encoding/thrift"
)

var (
	ErrNotParquet  = errors.New("not a parquet file")
	ErrEncrypted   = errors.New("encrypted parquet is not supported")
	ErrCorrupt     = errors.New("corrupt parquet")
	ErrUnsupported = errors.New("unsupported parquet")
	// ErrLimit is a file that is valid but larger than Limits allow.
	ErrLimit = errors.New("parquet file exceeds a reader limit")
)

// Limits bound what a file may make the reader allocate. A footer is
// untrusted: every size in it is checked against these before it is used.
type Limits struct {
	MaxFooter      int64 // bytes of footer metadata
	MaxRows        int64 // rows in one row group
	MaxColumnChunk int64 // uncompressed bytes of one column chunk
	// BatchBytes cuts a record batch early when one column's values reach
	// it, so memory stays O(batch) whatever the rows hold. It must stay
	// below 2 GiB, where Arrow's int32 offsets overflow.
	BatchBytes int64
	// MaxFileMemory is the file's memory budget: its decoded footer and
	// the pages its columns hold at once (budget.go).
	MaxFileMemory int64
}

// DefaultLimits are generous for real Spark output and small for attacks.
var DefaultLimits = Limits{MaxFooter: 64 << 20, MaxRows: 1 << 31, MaxColumnChunk: 512 << 20, BatchBytes: 64 << 20, MaxFileMemory: 256 << 20}

// DefaultBatchRows is how many rows one record batch holds at most.
const DefaultBatchRows = 64 * 1024

// File is one opened Parquet file.
type File struct {
	name   string
	pf     *parquet.File
	tree   *schemaTree
	mem    memory.Allocator
	limits Limits
	budget *budget
	cols   []*columnReader // one per leaf, reused by each row group in turn
}

// Open reads and checks the footer of the Parquet file r of the given size.
// name is used in errors.
func Open(r io.ReaderAt, size int64, name string) (*File, error) {
	return OpenLimits(r, size, name, DefaultLimits)
}

// OpenLimits is Open with explicit limits.
func OpenLimits(r io.ReaderAt, size int64, name string, lim Limits) (f *File, err error) {
	defer recoverTo(&err, name)
	if lim.BatchBytes <= 0 || lim.BatchBytes > 1<<30 {
		lim.BatchBytes = DefaultLimits.BatchBytes
	}
	if lim.MaxFileMemory <= 0 {
		lim.MaxFileMemory = DefaultLimits.MaxFileMemory
	}
	bud := &budget{limit: lim.MaxFileMemory}
	if size < 12 {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrNotParquet, size)
	}
	var head, tail [8]byte
	if _, err := r.ReadAt(head[:4], 0); err != nil {
		return nil, fmt.Errorf("%s: read header: %w", name, err)
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("%s: read footer: %w", name, err)
	}
	if string(head[:4]) == "PARE" || string(tail[4:]) == "PARE" {
		return nil, fmt.Errorf("%s: %w", name, ErrEncrypted)
	}
	if string(head[:4]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("%s: %w: no PAR1 magic", name, ErrNotParquet)
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer > size-12 {
		return nil, fmt.Errorf("%s: %w: footer of %d bytes in a file of %d", name, ErrCorrupt, footer, size)
	}
	if footer > lim.MaxFooter {
		return nil, fmt.Errorf("%s: %w: footer of %d bytes (limit %d)", name, ErrLimit, footer, lim.MaxFooter)
	}
	if err := bud.reserve(footerCost(footer), func() string { return fmt.Sprintf("the footer of %d bytes", footer) }); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	open := func(r io.ReaderAt, size int64) (*parquet.File, error) {
		return openCounted(bud, func() (*parquet.File, error) {
			return parquet.OpenFile(r, size,
				parquet.SkipMagicBytes(true), // checked above
				parquet.SkipPageIndex(true),
				parquet.SkipBloomFilters(true),
				parquet.ReadBufferSize(1<<20),
			)
		})
	}
	// The footer's declared lengths are checked against its bytes before
	// parquet-go sees them (it allocates what they declare).
	raw := make([]byte, footer)
	if _, err := r.ReadAt(raw, size-8-footer); err != nil {
		return nil, fmt.Errorf("%s: read footer: %w", name, err)
	}
	if err := checkFooter(raw); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	// The footer already read is served from memory, so opening does no I/O.
	pf, err := open(newPatchedFile(r, size-8-footer, raw), size)
	var missing *thrift.MissingField
	if errors.As(err, &missing) {
		// A KeyValue without its value: valid Parquet that parquet-go's
		// decoder refuses (see footer.go). Fill it in and try again.
		if patched, n, perr := patchFooter(raw); perr == nil && n > 0 {
			pf2 := newPatchedFile(r, size-8-footer, patched)
			if f2, err2 := open(pf2, pf2.size()); err2 == nil {
				pf, err = f2, nil
			}
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "DecryptionConfig") {
			return nil, fmt.Errorf("%s: %w (the footer is signed or encrypted)", name, ErrEncrypted)
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	md := pf.Metadata()
	tree, err := newSchemaTree(md.Schema)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > lim.MaxRows {
			return nil, fmt.Errorf("%s: %w: row group %d claims %d rows", name, ErrCorrupt, i, rg.NumRows)
		}
		if len(rg.Columns) != len(tree.leaves) {
			return nil, fmt.Errorf("%s: %w: row group %d has %d columns, schema has %d", name, ErrCorrupt, i, len(rg.Columns), len(tree.leaves))
		}
		for j, c := range rg.Columns {
			if u := c.MetaData.TotalUncompressedSize; u < 0 || u > lim.MaxColumnChunk {
				return nil, fmt.Errorf("%s: %w: row group %d, column %q holds %d bytes uncompressed (limit %d); rewrite it with smaller row groups",
					name, ErrLimit, i, tree.path(j), u, lim.MaxColumnChunk)
			}
		}
	}
	return &File{name: name, pf: pf, tree: tree, mem: memory.DefaultAllocator, limits: lim, budget: bud}, nil
}

// Schema is the file's schema in Arrow terms.
func (f *File) Schema() *arrow.Schema { return f.tree.schema }

// FieldIDs are the Parquet field ids of Schema's fields, in its order.
func (f *File) FieldIDs() []FieldID {
	out := make([]FieldID, len(f.tree.fields))
	for i, n := range f.tree.fields {
		out[i] = fieldIDs(n)
	}
	return out
}

// NumRows is the row count the footer states.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// KeyValue returns footer metadata, such as Spark's
// org.apache.spark.sql.parquet.row.metadata and org.apache.spark.version.
func (f *File) KeyValue(key string) (string, bool) { return f.pf.Lookup(key) }

// CreatedBy is the writer named in the footer.
func (f *File) CreatedBy() string { return f.pf.Metadata().CreatedBy }

// Records streams the file's rows in order as record batches of at most
// batchRows rows (fewer where a column's values reach Limits.BatchBytes).
// fn owns the record only for the call.
func (f *File) Records(ctx context.Context, batchRows int, fn func(arrow.RecordBatch) error) error {
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	var groups []parquet.RowGroup
	if err := f.safe(func() error { groups = f.pf.RowGroups(); return nil }); err != nil {
		return err
	}
	for gi, rg := range groups {
		if err := f.rowGroup(ctx, gi, rg, batchRows, fn); err != nil {
			return err
		}
	}
	return nil
}

// safe runs a call into the Parquet library or the assembler, turning a
// panic into ErrCorrupt naming the file. The consumer's callback never runs
// under it, so a panic there stays a panic.
func (f *File) safe(call func() error) (err error) {
	defer recoverTo(&err, f.name)
	return call()
}

func (f *File) rowGroup(ctx context.Context, gi int, rg parquet.RowGroup, batchRows int, fn func(arrow.RecordBatch) error) error {
	if f.cols == nil {
		f.cols = make([]*columnReader, len(f.tree.leaves))
		for i, leaf := range f.tree.leaves {
			f.cols[i] = &columnReader{budget: f.budget}
			if f.tree.isFlat(leaf) {
				f.cols[i].flat = newFlatReader(leaf)
			}
		}
	}
	cols := make([]*columnReader, len(f.tree.leaves))
	err := f.safe(func() error {
		chunks := rg.ColumnChunks()
		for i := range cols {
			// Each row group reuses the last one's buffers.
			cols[i] = f.cols[i]
			cols[i].reset(chunks[i].Pages(), f.tree.leafRepeated(i))
		}
		return nil
	})
	defer func() {
		for _, c := range cols {
			if c != nil {
				_ = f.safe(func() error { c.close(); return nil })
			}
		}
	}()
	if err != nil {
		return err
	}
	remaining := rg.NumRows()
	asm := &assembler{mem: f.mem, vals: make([][]parquet.Value, len(cols)), flat: make([]*flatReader, len(cols))}
	for remaining > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(batchRows), remaining))
		var rec arrow.RecordBatch
		err := f.safe(func() error {
			got, err := f.readBatch(gi, cols, asm, n)
			if err != nil {
				return err
			}
			n = got
			rec, err = f.assemble(asm, n)
			if err != nil {
				return fmt.Errorf("%s: row group %d: %w", f.name, gi, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
		remaining -= int64(n)
	}
	// A chunk holding more rows than the footer states is corrupt; reading
	// only what the footer says would drop rows silently.
	return f.safe(func() error {
		for i, c := range cols {
			more, err := c.more()
			if err != nil {
				return fmt.Errorf("%s: row group %d, column %q: %w", f.name, gi, f.tree.path(i), err)
			}
			if more {
				return fmt.Errorf("%s: row group %d, column %q: %w: more rows than the footer's %d", f.name, gi, f.tree.path(i), ErrCorrupt, rg.NumRows())
			}
		}
		return nil
	})
}

// readBatch reads up to n rows of every column into asm and returns how
// many it read: fewer than n where the columns' values together reach
// BatchBytes. The bound is on the whole batch, not each column: a row of
// one list can hold any number of values, and a dictionary can make each
// of many columns' rows large, from a small file.
func (f *File) readBatch(gi int, cols []*columnReader, asm *assembler, n int) (int, error) {
	// The batch also draws on the file's memory budget: what the pages
	// being read leave of it.
	left := min(f.limits.BatchBytes, f.budget.limit-f.budget.used.Load())
	for i, c := range cols {
		var vals []parquet.Value
		var got int
		var used int64
		var err error
		if c.flat != nil {
			got, err = c.flat.readRows(c, n, left)
			used = c.flat.batch.bytes()
		} else {
			vals, got, used, err = c.readRows(n, left)
		}
		left -= used
		if err != nil {
			return 0, fmt.Errorf("%s: row group %d, column %q: %w", f.name, gi, f.tree.path(i), err)
		}
		if got == 0 {
			return 0, fmt.Errorf("%s: row group %d, column %q: %w: no rows left where the footer says %d more", f.name, gi, f.tree.path(i), ErrCorrupt, n)
		}
		if got < n {
			// Cut the batch here: give back the rows other columns read beyond it.
			for _, p := range cols[:i] {
				if p.flat != nil {
					p.flat.unread(got)
				} else {
					p.unread(got)
				}
			}
			n = got
		}
		asm.vals[i] = vals
	}
	for i, c := range cols {
		if c.flat != nil {
			c.flat.unread(n)
			asm.flat[i] = c.flat
			continue
		}
		asm.vals[i] = c.rows(n)
	}
	return n, nil
}

func (f *File) assemble(asm *assembler, n int) (arrow.RecordBatch, error) {
	arrs := make([]arrow.Array, 0, len(f.tree.fields))
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	for _, fld := range f.tree.fields {
		var slots [][]int32
		if fld.kind != kindLeaf && f.tree.anyRepeated(fld) {
			slots = identity(fld.numLeafs, asm, fld.firstLf)
		}
		a, err := asm.build(fld, slots, n)
		if err != nil {
			return nil, err
		}
		arrs = append(arrs, a)
	}
	return array.NewRecordBatch(f.tree.schema, arrs, int64(n)), nil
}

// identity gives each leaf under a top-level field the index of the first
// value of every row (values at repetition level 0).
func identity(numLeafs int, asm *assembler, first int) [][]int32 {
	out := make([][]int32, numLeafs)
	for k := range numLeafs {
		vals := asm.vals[first+k]
		s := make([]int32, 0, len(vals))
		for j, v := range vals {
			if v.RepetitionLevel() == 0 {
				s = append(s, int32(j))
			}
		}
		out[k] = s
	}
	return out
}

func (t *schemaTree) anyRepeated(n *node) bool {
	for i := n.firstLf; i < n.firstLf+n.numLeafs; i++ {
		if t.leafRepeated(i) {
			return true
		}
	}
	return false
}

// leafRepeated reports whether leaf i sits under a list or map.
func (t *schemaTree) leafRepeated(i int) bool {
	var walk func(ns []*node, inList bool) bool
	walk = func(ns []*node, inList bool) bool {
		for _, n := range ns {
			if i < n.firstLf || i >= n.firstLf+n.numLeafs {
				continue
			}
			if n.kind == kindLeaf {
				return inList
			}
			return walk(n.children, inList || n.kind == kindList || n.kind == kindMap)
		}
		return false
	}
	return walk(t.fields, false)
}

// columnReader hands out the values of a column chunk a whole number of rows
// at a time, across page boundaries.
type columnReader struct {
	pages    parquet.Pages
	page     parquet.Page
	values   parquet.ValueReader
	buf      []parquet.Value // read from the page, not yet handed out
	pos      int
	eof      bool
	repeated bool
	out      []parquet.Value // the current batch
	starts   []int           // index in out of each row's first value
	carry    []parquet.Value // rows read but given back by unread
	arena    []byte          // holds byte-array values copied out of pages
	flat     *flatReader     // reads a flat column instead (see flat.go)

	budget   *budget            // the file's; see readPage
	dict     parquet.Dictionary // the chunk's dictionary, once read
	pageHeld int64              // budget held by the current page
	dictHeld int64              // and by the dictionary, until the chunk ends
}

// reset points the reader at a new column chunk, keeping its buffers.
func (c *columnReader) reset(pages parquet.Pages, repeated bool) {
	flat := c.flat
	c.budget.release(c.pageHeld + c.dictHeld)
	*c = columnReader{pages: pages, repeated: repeated, buf: c.buf[:0], out: c.out[:0],
		starts: c.starts[:0], carry: c.carry[:0], arena: c.arena, flat: flat, budget: c.budget}
	if flat != nil {
		flat.reset()
	}
}

// arenaBlock is the size of the blocks that byte-array values are copied
// into. A block is never reused: values handed out keep theirs alive, and
// the garbage collector frees it after the batch is built.
const arenaBlock = 1 << 20

// keep copies a byte-array value out of its page, into the arena.
func (c *columnReader) keep(v parquet.Value) parquet.Value {
	b := v.ByteArray()
	if cap(c.arena)-len(c.arena) < len(b) {
		c.arena = make([]byte, 0, max(len(b), arenaBlock))
	}
	start := len(c.arena)
	c.arena = append(c.arena, b...)
	kept := c.arena[start:len(c.arena):len(c.arena)]
	var nv parquet.Value
	if v.Kind() == parquet.FixedLenByteArray {
		nv = parquet.FixedLenByteArrayValue(kept)
	} else {
		nv = parquet.ByteArrayValue(kept)
	}
	nv.SetRepetitionLevel(v.RepetitionLevel())
	nv.SetDefinitionLevel(v.DefinitionLevel())
	nv.SetColumnIndex(v.Column())
	return nv
}

// readRows reads the values of the next n rows (fewer at the end of the
// chunk, or once they hold budget bytes). Byte-array values are copied, so
// they outlive the page. It returns the values and the rows read.
func (c *columnReader) readRows(n int, budget int64) ([]parquet.Value, int, int64, error) {
	if cap(c.out) < n {
		c.out = make([]parquet.Value, 0, n) // one value a row at least
	}
	c.out = append(c.out[:0], c.carry...)
	c.carry = c.carry[:0]
	c.starts = c.starts[:0]
	// Each value costs its parquet.Value and its Arrow slot, and a byte
	// array its bytes.
	var bytes int64
	for i, v := range c.out {
		if v.RepetitionLevel() == 0 {
			c.starts = append(c.starts, i)
		}
		bytes += valueCost
		if k := v.Kind(); (k == parquet.ByteArray || k == parquet.FixedLenByteArray) && !v.IsNull() {
			bytes += int64(len(v.ByteArray()))
		}
	}
	if len(c.starts) > n {
		c.unread(n)
		return c.out, n, bytes, nil
	}
	for {
		if c.pos == len(c.buf) {
			if err := c.fill(); err != nil {
				return nil, 0, 0, err
			}
			if c.pos == len(c.buf) {
				return c.out, len(c.starts), bytes, nil // end of chunk
			}
		}
		v := c.buf[c.pos]
		if v.RepetitionLevel() == 0 {
			if len(c.starts) == n || (bytes >= budget && len(c.starts) > 0) {
				return c.out, len(c.starts), bytes, nil
			}
			c.starts = append(c.starts, len(c.out))
		} else if len(c.starts) == 0 {
			return nil, 0, 0, fmt.Errorf("%w: first value of a row has repetition level %d", ErrCorrupt, v.RepetitionLevel())
		}
		bytes += valueCost
		switch v.Kind() {
		case parquet.ByteArray, parquet.FixedLenByteArray:
			if !v.IsNull() {
				v = c.keep(v)
				bytes += int64(len(v.ByteArray()))
			}
		}
		c.out = append(c.out, v)
		c.pos++
	}
}

// valueCost is what one value of the general path holds in a batch: its
// parquet.Value and its slot in the Arrow array built from it.
const valueCost = int64(unsafe.Sizeof(parquet.Value{})) + 8

// unread gives back every row of the current batch from row k on; the
// next readRows starts with them.
func (c *columnReader) unread(k int) {
	if k >= len(c.starts) {
		return
	}
	cut := c.starts[k]
	// Rows given back earlier in this batch (when two columns cut it)
	// come after these.
	if tail := c.out[cut:]; len(c.carry) == 0 {
		c.carry = append(c.carry, tail...)
	} else {
		c.carry = append(append(make([]parquet.Value, 0, len(tail)+len(c.carry)), tail...), c.carry...)
	}
	c.out = c.out[:cut]
	c.starts = c.starts[:k]
}

// rows returns the values of the current batch's first k rows.
func (c *columnReader) rows(k int) []parquet.Value {
	c.unread(k)
	return c.out
}

// more reports whether the chunk holds values beyond those handed out.
func (c *columnReader) more() (bool, error) {
	if c.flat != nil {
		return c.flat.more(c)
	}
	if len(c.carry) > 0 || c.pos < len(c.buf) {
		return true, nil
	}
	if err := c.fill(); err != nil {
		return false, err
	}
	return c.pos < len(c.buf), nil
}

const valueChunk = 4096

func (c *columnReader) fill() error {
	c.buf, c.pos = c.buf[:0], 0
	for !c.eof {
		if c.values == nil {
			p, held, err := c.readPage()
			if err == io.EOF {
				c.eof = true
				return nil
			}
			if err != nil {
				return pageError(err)
			}
			c.hold(p, held)
			if err := checkPage(p); err != nil {
				return err
			}
			c.values = p.Values()
		}
		if cap(c.buf) < valueChunk {
			c.buf = make([]parquet.Value, 0, valueChunk)
		}
		n, err := c.values.ReadValues(c.buf[:valueChunk])
		c.buf = c.buf[:n]
		if err == io.EOF {
			c.values = nil
		} else if err != nil {
			return pageError(err)
		}
		if n > 0 {
			return nil
		}
	}
	return nil
}

// pageError keeps ErrLimit visible and calls anything else corrupt.
func pageError(err error) error {
	if errors.Is(err, ErrLimit) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

// checkPage catches pages that parquet-go decoded inconsistently instead of
// handing out wrong values: a byte-array page whose offsets do not cover
// its data exactly (parquet-go v0.32 logs "byte array page has N offsets
// but numValues is M" and then reads every value as "").
func checkPage(p parquet.Page) error {
	if p.Dictionary() != nil {
		return nil
	}
	d := p.Data()
	if d.Kind() != encoding.ByteArray {
		return nil
	}
	data, offs := d.Data()
	want := p.NumValues() - p.NumNulls()
	if int64(len(offs)) != want+1 && !(want == 0 && len(offs) == 0) {
		return fmt.Errorf("%w: byte-array page of %d values decoded to %d offsets", ErrCorrupt, want, len(offs))
	}
	prev := uint32(0)
	for _, o := range offs {
		if o < prev {
			return fmt.Errorf("%w: byte-array page offsets go backwards", ErrCorrupt)
		}
		prev = o
	}
	if len(offs) > 0 && (offs[0] != 0 || int(prev) != len(data)) {
		return fmt.Errorf("%w: byte-array page offsets cover %d of its %d bytes", ErrCorrupt, int(prev)-int(offs[0]), len(data))
	}
	return nil
}

func (c *columnReader) releasePage() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	c.budget.release(c.pageHeld)
	c.pageHeld = 0
}

func (c *columnReader) close() {
	c.releasePage()
	c.budget.release(c.dictHeld)
	c.dictHeld, c.dict = 0, nil
	c.pages.Close()
}

// recoverTo turns a panic in the Parquet library into ErrCorrupt naming the file.
func recoverTo(err *error, name string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: the parquet library panicked: %v", name, ErrCorrupt, r)
	}
}
