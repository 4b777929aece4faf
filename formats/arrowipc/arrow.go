// Package arrowipc is the `arrow` format: an Arrow IPC file, columnar and
// memory-mappable, read by pyarrow, Arrow C++, Arrow Java and Arrow Go.
package arrowipc

import (
	"context"
	"fmt"
	"io"
	"slices"

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

type config struct {
	compression string
	columns     []string
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("arrow", opts)
	c := &config{
		compression: o.String("compression", "none", "none", "lz4", "zstd"),
		columns:     o.Strings("columns"),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{"compression": c.compression}
	if c.columns != nil {
		m["columns"] = c.columns
	}
	return m
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	idx, out, err := project(schema, c.columns)
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
	fw, err := ipc.NewFileWriter(w, opts...)
	if err != nil {
		return nil, err
	}
	return &writer{fw: fw, idx: idx, schema: out}, nil
}

// project selects columns by name, in the order given.
func project(schema *arrow.Schema, columns []string) ([]int, *arrow.Schema, error) {
	if columns == nil {
		return nil, schema, nil
	}
	idx := make([]int, 0, len(columns))
	fields := make([]arrow.Field, 0, len(columns))
	for _, name := range columns {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			names := make([]string, 0, schema.NumFields())
			for _, f := range schema.Fields() {
				names = append(names, f.Name)
			}
			return nil, nil, fmt.Errorf("%w: arrow: no column %q in the input (columns: %v)", formats.ErrBadInput, name, names)
		}
		if slices.Contains(idx, is[0]) {
			return nil, nil, fmt.Errorf("%w: arrow: column %q selected twice", formats.ErrBadInput, name)
		}
		idx = append(idx, is[0])
		fields = append(fields, schema.Field(is[0]))
	}
	return idx, arrow.NewSchema(fields, nil), nil
}

type writer struct {
	fw     *ipc.FileWriter
	idx    []int
	schema *arrow.Schema
}

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.idx != nil {
		cols := make([]arrow.Array, len(w.idx))
		for i, j := range w.idx {
			cols[i] = rec.Column(j)
		}
		rec = array.NewRecordBatch(w.schema, cols, rec.NumRows())
		defer rec.Release()
	}
	return w.fw.Write(rec)
}

func (w *writer) Close(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.fw.Close()
}

func (w *writer) Abort() { _ = w.fw.Close() }

// Open reads the footer of an Arrow IPC file.
func (Format) Open(r io.ReaderAt, size int64) (formats.Reader, error) {
	fr, err := ipc.NewFileReader(io.NewSectionReader(r, 0, size), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("arrow: %w", err)
	}
	rd := &reader{fr: fr}
	for i := range fr.NumRecords() {
		// Footer blocks give each batch's row count only in the batch itself.
		rec, err := fr.RecordBatch(i)
		if err != nil {
			return nil, fmt.Errorf("arrow: batch %d: %w", i, err)
		}
		rd.rows += rec.NumRows()
	}
	return rd, nil
}

type reader struct {
	fr   *ipc.FileReader
	rows int64
}

func (r *reader) Rows() int64 { return r.rows }

func (r *reader) Describe() map[string]any {
	return map[string]any{
		"rows":    r.rows,
		"batches": r.fr.NumRecords(),
		"schema":  r.fr.Schema().String(),
	}
}

// Query returns the first limit rows; arrow assets take no lookup arguments.
func (r *reader) Query(ctx context.Context, args []string, limit int) (*formats.Result, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("%w: arrow assets take no query arguments; `query` shows the first rows", formats.ErrBadOption)
	}
	schema := r.fr.Schema()
	res := &formats.Result{}
	for _, f := range schema.Fields() {
		res.Columns = append(res.Columns, f.Name)
	}
	for i := 0; i < r.fr.NumRecords() && len(res.Rows) < limit; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := r.fr.RecordBatch(i)
		if err != nil {
			return nil, fmt.Errorf("arrow: batch %d: %w", i, err)
		}
		for row := 0; row < int(rec.NumRows()) && len(res.Rows) < limit; row++ {
			vals := make([]any, rec.NumCols())
			for c := range vals {
				vals[c] = rec.Column(c).GetOneForMarshal(row)
			}
			res.Rows = append(res.Rows, vals)
		}
	}
	return res, nil
}

// Check reads every batch, which validates buffers and offsets.
func (r *reader) Check(ctx context.Context) error {
	for i := range r.fr.NumRecords() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := r.fr.RecordBatch(i)
		if err != nil {
			return fmt.Errorf("arrow: batch %d: %w", i, err)
		}
		for c, col := range rec.Columns() {
			v, ok := col.(interface{ ValidateFull() error })
			if !ok {
				continue
			}
			if err := v.ValidateFull(); err != nil {
				return fmt.Errorf("arrow: batch %d, column %q: %w", i, rec.ColumnName(c), err)
			}
		}
	}
	return nil
}

func (r *reader) Close() error { return r.fr.Close() }
