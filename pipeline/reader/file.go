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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

var (
	ErrNotParquet  = errors.New("not a parquet file")
	ErrEncrypted   = errors.New("encrypted parquet is not supported")
	ErrCorrupt     = errors.New("corrupt parquet")
	ErrUnsupported = errors.New("unsupported parquet")
)

// Limits bound what a file may make the reader allocate.
type Limits struct {
	MaxFooter int64 // bytes of footer metadata
	MaxRows   int64 // rows in one row group
}

// DefaultLimits are generous for real Spark output and small for attacks.
var DefaultLimits = Limits{MaxFooter: 64 << 20, MaxRows: 1 << 31}

// DefaultBatchRows is how many rows one record batch holds at most.
const DefaultBatchRows = 64 * 1024

// File is one opened Parquet file.
type File struct {
	name   string
	pf     *parquet.File
	tree   *schemaTree
	mem    memory.Allocator
	limits Limits
}

// Open reads and checks the footer of the Parquet file r of the given size.
// name is used in errors.
func Open(r io.ReaderAt, size int64, name string) (f *File, err error) {
	defer recoverTo(&err, name)
	lim := DefaultLimits
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
	if footer > size-12 || footer > lim.MaxFooter {
		return nil, fmt.Errorf("%s: %w: footer of %d bytes in a file of %d (limit %d)", name, ErrCorrupt, footer, size, lim.MaxFooter)
	}
	pf, err := parquet.OpenFile(r, size,
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(1<<20),
	)
	if err != nil {
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
	}
	return &File{name: name, pf: pf, tree: tree, mem: memory.DefaultAllocator, limits: lim}, nil
}

// Schema is the file's schema in Arrow terms.
func (f *File) Schema() *arrow.Schema { return f.tree.schema }

// NumRows is the row count the footer states.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// KeyValue returns footer metadata, such as Spark's
// org.apache.spark.sql.parquet.row.metadata and org.apache.spark.version.
func (f *File) KeyValue(key string) (string, bool) { return f.pf.Lookup(key) }

// CreatedBy is the writer named in the footer.
func (f *File) CreatedBy() string { return f.pf.Metadata().CreatedBy }

// Records streams the file's rows in order as record batches of at most
// batchRows rows. fn owns the record only for the call.
func (f *File) Records(ctx context.Context, batchRows int, fn func(arrow.RecordBatch) error) (err error) {
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	for gi, rg := range f.pf.RowGroups() {
		if err := f.rowGroup(ctx, gi, rg, batchRows, fn); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) rowGroup(ctx context.Context, gi int, rg parquet.RowGroup, batchRows int, fn func(arrow.RecordBatch) error) (err error) {
	defer recoverTo(&err, f.name)
	chunks := rg.ColumnChunks()
	cols := make([]*columnReader, len(f.tree.leaves))
	for i := range cols {
		cols[i] = &columnReader{pages: chunks[i].Pages(), repeated: f.tree.leafRepeated(i)}
		defer cols[i].close()
	}
	remaining := rg.NumRows()
	asm := &assembler{mem: f.mem, vals: make([][]parquet.Value, len(cols))}
	for remaining > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(batchRows), remaining))
		for i, c := range cols {
			vals, got, err := c.readRows(n)
			if err != nil {
				return fmt.Errorf("%s: row group %d, column %q: %w", f.name, gi, f.tree.path(i), err)
			}
			if got != n {
				return fmt.Errorf("%s: row group %d, column %q: %w: %d rows where the footer says %d", f.name, gi, f.tree.path(i), ErrCorrupt, got, n)
			}
			asm.vals[i] = vals
		}
		rec, err := f.assemble(asm, n)
		if err != nil {
			return fmt.Errorf("%s: row group %d: %w", f.name, gi, err)
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
		remaining -= int64(n)
	}
	return nil
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
	out      []parquet.Value
}

// readRows returns the values of the next n rows (fewer at the end of the
// chunk). Byte-array values are copied, so they outlive the page.
func (c *columnReader) readRows(n int) ([]parquet.Value, int, error) {
	c.out = c.out[:0]
	rows := 0
	for {
		if c.pos == len(c.buf) {
			if err := c.fill(); err != nil {
				return nil, 0, err
			}
			if c.pos == len(c.buf) {
				return c.out, rows, nil // end of chunk
			}
		}
		v := c.buf[c.pos]
		if v.RepetitionLevel() == 0 {
			if rows == n {
				return c.out, rows, nil
			}
			rows++
		} else if rows == 0 {
			return nil, 0, fmt.Errorf("%w: first value of a row has repetition level %d", ErrCorrupt, v.RepetitionLevel())
		}
		switch v.Kind() {
		case parquet.ByteArray, parquet.FixedLenByteArray:
			if !v.IsNull() {
				v = v.Clone()
			}
		}
		c.out = append(c.out, v)
		c.pos++
	}
}

const valueChunk = 4096

func (c *columnReader) fill() error {
	c.buf, c.pos = c.buf[:0], 0
	for !c.eof {
		if c.values == nil {
			p, err := c.pages.ReadPage()
			if err == io.EOF {
				c.eof = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			c.releasePage()
			c.page, c.values = p, p.Values()
		}
		if cap(c.buf) < valueChunk {
			c.buf = make([]parquet.Value, 0, valueChunk)
		}
		n, err := c.values.ReadValues(c.buf[:valueChunk])
		c.buf = c.buf[:n]
		if err == io.EOF {
			c.values = nil
		} else if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if n > 0 {
			return nil
		}
	}
	return nil
}

func (c *columnReader) releasePage() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
}

func (c *columnReader) close() {
	c.releasePage()
	c.pages.Close()
}

// recoverTo turns a panic in the Parquet library into ErrCorrupt naming the file.
func recoverTo(err *error, name string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: the parquet library panicked: %v", name, ErrCorrupt, r)
	}
}
