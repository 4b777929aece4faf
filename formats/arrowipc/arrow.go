// Package arrowipc is the `arrow` format: an Arrow IPC file, columnar and
// memory-mappable, read by pyarrow, Arrow C++, Arrow Java and Arrow Go.
//
// Columns can be selected, renamed and sorted; the output is re-chunked so
// that every record batch but the last holds exactly batch_rows rows,
// whatever the input's batching, which keeps the bytes deterministic.
package arrowipc

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
)

// Format is the `arrow` format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Name:      "arrow",
		Version:   "ipc-file/v5", // Arrow IPC metadata version V5
		MediaType: "application/vnd.apache.arrow.file",
		Ext:       ".arrow",
	}
}

const defaultBatchRows = 65536

type config struct {
	compression string
	columns     []string
	rename      map[string]string // input name -> output name
	batchRows   int64
	sortBy      []string // output names
	sortBuffer  int64
	share       int64 // the build's share of memory for this asset, when sortBuffer is 0
	tempDir     string
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("arrow", opts)
	c := &config{
		compression: o.String("compression", "none", "none", "lz4", "zstd"),
		columns:     o.Strings("columns"),
		rename:      o.StringMap("rename"),
		batchRows:   o.Int("batch_rows", defaultBatchRows, 1, 1<<30),
		sortBy:      o.Columns("sort_by"),
		sortBuffer:  o.Size("sort_buffer", 0, 64<<10, 1<<50),
		tempDir:     o.String("temp_dir", ""),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	if len(c.sortBy) == 0 && (o.Has("sort_buffer") || o.Has("temp_dir")) {
		return nil, fmt.Errorf("%w: arrow sort_buffer and temp_dir apply only with sort_by; set sort_by or remove them", formats.ErrBadOption)
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{"compression": c.compression, "batch_rows": c.batchRows}
	if c.columns != nil {
		m["columns"] = c.columns
	}
	if c.rename != nil {
		m["rename"] = c.rename
	}
	if c.sortBy != nil {
		m["sort_by"] = c.sortBy
		m["sort_buffer"] = "auto"
		if c.sortBuffer > 0 {
			m["sort_buffer"] = c.sortBuffer
		}
	}
	return m
}

var _ formats.SortingConfig = (*config)(nil)

func (c *config) SortMemory() (bool, int64) { return len(c.sortBy) > 0, c.sortBuffer }

// SortShare is the memory WithSortMemory gave this copy.
func (c *config) SortShare() int64 { return c.share }

func (c *config) WithSortMemory(n int64) formats.Config {
	cp := *c
	cp.share = n
	return &cp
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	idx, out, err := project(schema, c.columns, c.rename)
	if err != nil {
		return nil, err
	}
	opts := []ipc.Option{ipc.WithSchema(out), ipc.WithAllocator(memory.DefaultAllocator)}
	switch c.compression {
	case "lz4":
		opts = append(opts, ipc.WithLZ4())
	case "zstd":
		opts = append(opts, ipc.WithZstd())
	}
	var sorted *rowSorter
	if len(c.sortBy) > 0 {
		budget := c.sortBuffer
		if budget == 0 {
			budget = c.share // 0: the sorter's default
		}
		sorted, err = newRowSorter(out, c.sortBy, budget, c.tempDir)
		if err != nil {
			return nil, err
		}
	}
	fw, err := ipc.NewFileWriter(w, opts...)
	if err != nil {
		return nil, err
	}
	return &writer{fw: fw, idx: idx, schema: out, batchRows: c.batchRows, sorted: sorted}, nil
}

// project selects columns by name, in the order given (all when columns is
// nil), and renames them.
func project(schema *arrow.Schema, columns []string, rename map[string]string) ([]int, *arrow.Schema, error) {
	names := make([]string, 0, schema.NumFields())
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	if columns == nil {
		columns = names
	}
	idx := make([]int, 0, len(columns))
	fields := make([]arrow.Field, 0, len(columns))
	for _, name := range columns {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return nil, nil, fmt.Errorf("%w: arrow: no column %q in the input (columns: %v)", formats.ErrBadInput, name, names)
		}
		if slices.Contains(idx, is[0]) {
			return nil, nil, fmt.Errorf("%w: arrow: column %q selected twice", formats.ErrBadInput, name)
		}
		idx = append(idx, is[0])
		f := schema.Field(is[0])
		if to, ok := rename[name]; ok {
			f.Name = to
		}
		fields = append(fields, f)
	}
	for _, from := range sortedKeys(rename) {
		if !slices.Contains(columns, from) {
			return nil, nil, fmt.Errorf("%w: arrow rename: no column %q among the columns written (%v)", formats.ErrBadInput, from, columns)
		}
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			return nil, nil, fmt.Errorf("%w: arrow: two output columns are named %q; change rename or columns", formats.ErrBadInput, f.Name)
		}
		seen[f.Name] = true
	}
	return idx, arrow.NewSchema(fields, nil), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type writer struct {
	fw        *ipc.FileWriter
	idx       []int
	schema    *arrow.Schema
	batchRows int64
	sorted    *rowSorter // nil without sort_by

	pending []arrow.RecordBatch // slices waiting to fill a batch
	npend   int64
}

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cols := make([]arrow.Array, len(w.idx))
	for i, j := range w.idx {
		cols[i] = rec.Column(j)
	}
	rec = array.NewRecordBatch(w.schema, cols, rec.NumRows())
	defer rec.Release()
	if w.sorted != nil {
		return w.sorted.add(ctx, rec)
	}
	return w.rechunk(rec)
}

// rechunk writes rec in batches of exactly batchRows rows, holding back the
// remainder until more rows arrive or Close.
func (w *writer) rechunk(rec arrow.RecordBatch) error {
	for off := int64(0); off < rec.NumRows(); {
		n := min(w.batchRows-w.npend, rec.NumRows()-off)
		w.pending = append(w.pending, rec.NewSlice(off, off+n))
		w.npend += n
		off += n
		if w.npend == w.batchRows {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) flush() error {
	if w.npend == 0 {
		return nil
	}
	defer w.release()
	// Concatenate even a single slice: it copies the values into fresh,
	// unsliced buffers, so the bytes do not depend on the input's batching.
	cols := make([]arrow.Array, w.schema.NumFields())
	for c := range cols {
		parts := make([]arrow.Array, len(w.pending))
		for i, p := range w.pending {
			parts[i] = p.Column(c)
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return fmt.Errorf("arrow: column %q: %w", w.schema.Field(c).Name, err)
		}
		defer a.Release()
		cols[c] = a
	}
	rec := array.NewRecordBatch(w.schema, cols, w.npend)
	defer rec.Release()
	return w.fw.Write(rec)
}

func (w *writer) release() {
	for _, p := range w.pending {
		p.Release()
	}
	w.pending, w.npend = nil, 0
}

func (w *writer) Close(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.sorted != nil {
		if err := w.sorted.finish(ctx, w.schema, w.batchRows, w.fw.Write); err != nil {
			return err
		}
	} else if err := w.flush(); err != nil {
		return err
	}
	return w.fw.Close()
}

func (w *writer) Abort() {
	w.release()
	if w.sorted != nil {
		w.sorted.sort.Close()
	}
	_ = w.fw.Close()
}
