package arrowipc

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
)

// Open reads the footer of an Arrow IPC file.
func (Format) Open(r io.ReaderAt, size int64) (rd formats.Reader, err error) {
	defer recoverCorrupt(&err)
	fr, err := ipc.NewFileReader(io.NewSectionReader(r, 0, size), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("arrow: %w", err)
	}
	rdr := &reader{fr: fr}
	for i := range fr.NumRecords() {
		// Footer blocks give each batch's row count only in the batch itself.
		rec, err := fr.RecordBatch(i)
		if err != nil {
			return nil, fmt.Errorf("arrow: batch %d: %w", i, err)
		}
		rdr.rows += rec.NumRows()
	}
	return rdr, nil
}

// recoverCorrupt turns a panic of arrow-go's reader on a damaged file (its
// flatbuffers and buffer offsets are trusted) into an error.
func recoverCorrupt(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("arrow: corrupt IPC file: %v; rebuild the asset or pull it again", p)
	}
}

type reader struct {
	fr   *ipc.FileReader
	rows int64
}

func (r *reader) Rows() int64 { return r.rows }

func (r *reader) Describe() map[string]any {
	cols := []map[string]any{}
	for _, f := range r.fr.Schema().Fields() {
		cols = append(cols, map[string]any{"name": f.Name, "type": f.Type.String(), "nullable": f.Nullable})
	}
	return map[string]any{
		"rows":    r.rows,
		"batches": r.fr.NumRecords(),
		"schema":  r.fr.Schema().String(),
		"columns": cols, // the schema's top-level columns, for JSON readers
	}
}

// Query returns the first limit rows; arrow assets take no lookup arguments.
func (r *reader) Query(ctx context.Context, args []string, limit int) (res *formats.Result, err error) {
	defer recoverCorrupt(&err)
	if len(args) > 0 {
		return nil, fmt.Errorf("%w: arrow assets take no query arguments; `query` shows the first rows", formats.ErrBadQuery)
	}
	schema := r.fr.Schema()
	res = &formats.Result{}
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
func (r *reader) Check(ctx context.Context) (err error) {
	defer recoverCorrupt(&err)
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
