// Package fst is the `fst` format: a finite-state transducer written by
// vellum (github.com/blevesearch/vellum), mapping each string key to a
// uint64, for exact, prefix and fuzzy (Levenshtein) lookups.
//
// The value is a column (an unsigned or non-negative integer), or the row's
// ordinal in the canonical input order. Keys go through the shared sorter
// and duplicate policy, as in `kv`. vellum's format is its own: only vellum
// reads it.
package fst

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/blevesearch/vellum"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/inputs"
	"github.com/lockstep-data/lockstep/formats/internal/sorter"
)

// Format is the `fst` format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Keyed:     true,
		Name:      "fst",
		Version:   "vellum/1", // vellum's FST encoding version 1
		MediaType: "application/vnd.lockstep.vellum-fst",
		Ext:       ".fst",
	}
}

// Ordinal is the value option that maps each key to its row's ordinal.
const Ordinal = "ordinal"

type config struct {
	key, value string
	dups       string
	sortBuffer int64
	share      int64 // the build's share of memory for this asset, when sortBuffer is 0
	tempDir    string
	sorted     bool
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("fst", opts)
	c := &config{
		key:        o.String("key", ""),
		value:      o.String("value", Ordinal),
		dups:       o.String("duplicates", "error", sorter.Policies...),
		sortBuffer: o.Size("sort_buffer", 0, 64<<10, 1<<50),
		tempDir:    o.String("temp_dir", ""),
		sorted:     o.Bool("sorted", false),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	if c.key == "" {
		return nil, fmt.Errorf("%w: fst needs option key: the string column to look up", formats.ErrBadOption)
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{"key": c.key, "value": c.value, "duplicates": c.dups, "sort_buffer": "auto"}
	if c.sortBuffer > 0 {
		m["sort_buffer"] = c.sortBuffer
	}
	if c.sorted {
		m["sorted"] = true
	}
	return m
}

var _ formats.SortingConfig = (*config)(nil)

func (c *config) SortMemory() (bool, int64) { return !c.sorted, c.sortBuffer }

// SortShare is the memory WithSortMemory gave this copy.
func (c *config) SortShare() int64 { return c.share }

func (c *config) WithSortMemory(n int64) formats.Config {
	cp := *c
	cp.share = n
	return &cp
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	wr := &writer{out: w, valCol: -1}
	is := schema.FieldIndices(c.key)
	if len(is) == 0 {
		return nil, fmt.Errorf("%w: fst: no key column %q in the input", formats.ErrBadInput, c.key)
	}
	switch t := schema.Field(is[0]).Type; t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
	default:
		return nil, fmt.Errorf("%w: fst: key column %q is %s; it must be a string", formats.ErrBadInput, c.key, t)
	}
	wr.keyCol = is[0]
	if c.value != Ordinal {
		is := schema.FieldIndices(c.value)
		if len(is) == 0 {
			return nil, fmt.Errorf("%w: fst: no value column %q in the input (or use value: ordinal)", formats.ErrBadInput, c.value)
		}
		switch t := schema.Field(is[0]).Type; t.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		default:
			return nil, fmt.Errorf("%w: fst: value column %q is %s; it must be an integer", formats.ErrBadInput, c.value, t)
		}
		wr.valCol = is[0]
	}
	budget := c.sortBuffer
	if budget == 0 {
		budget = c.share // 0: the sorter's default
	}
	policy, _ := sorter.ParsePolicy(c.dups)
	wr.sort = sorter.New(sorter.Config{Budget: budget, TempDir: c.tempDir, Policy: policy})
	wr.keyName, wr.valName = c.key, c.value
	if c.sorted {
		// Declared sorted: stream every key straight into the FST.
		b, err := vellum.New(wr.out, nil)
		if err != nil {
			return nil, fmt.Errorf("fst: %w", err)
		}
		wr.builder = b
		wr.sort.Stream(func(key, val []byte) error { wr.keys++; return b.Insert(key, binary.BigEndian.Uint64(val)) })
	}
	return wr, nil
}

type writer struct {
	out              io.Writer
	keyCol, valCol   int
	keyName, valName string
	sort             *sorter.Sorter
	builder          *vellum.Builder // made up front when the input is declared sorted
	files            inputs.Files
	rows             int64
	keys             int64 // written to the FST
}

func (w *writer) StartFile(path string) { w.files.Start(w.rows, path) }

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	keys, vals := rec.Column(w.keyCol), arrow.Array(nil)
	if w.valCol >= 0 {
		vals = rec.Column(w.valCol)
	}
	var vbuf [8]byte
	for i := range int(rec.NumRows()) {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if keys.IsNull(i) {
			return fmt.Errorf("%w: fst: key column %q is null at %s", formats.ErrBadInput, w.keyName, w.files.Name(w.rows))
		}
		v := uint64(w.rows)
		if vals != nil {
			var err error
			if v, err = uintAt(vals, i); err != nil {
				return fmt.Errorf("%w: fst: value column %q at %s: %v", formats.ErrBadInput, w.valName, w.files.Name(w.rows), err)
			}
		}
		binary.BigEndian.PutUint64(vbuf[:], v)
		if err := w.sort.Add(ctx, keyBytes(keys, i), vbuf[:]); err != nil {
			return w.sortError(err)
		}
		w.rows++
	}
	return nil
}

func keyBytes(a arrow.Array, i int) []byte {
	switch k := a.(type) {
	case *array.String:
		return []byte(k.Value(i))
	case *array.LargeString:
		return []byte(k.Value(i))
	case *array.Binary:
		return k.Value(i)
	case *array.LargeBinary:
		return k.Value(i)
	}
	return nil
}

func uintAt(a arrow.Array, i int) (uint64, error) {
	if a.IsNull(i) {
		return 0, errors.New("null")
	}
	var n int64
	switch v := a.(type) {
	case *array.Uint8:
		return uint64(v.Value(i)), nil
	case *array.Uint16:
		return uint64(v.Value(i)), nil
	case *array.Uint32:
		return uint64(v.Value(i)), nil
	case *array.Uint64:
		return v.Value(i), nil
	case *array.Int8:
		n = int64(v.Value(i))
	case *array.Int16:
		n = int64(v.Value(i))
	case *array.Int32:
		n = int64(v.Value(i))
	case *array.Int64:
		n = v.Value(i)
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative; an FST maps keys to unsigned integers", n)
	}
	return uint64(n), nil
}

func (w *writer) Close(ctx context.Context) error {
	b := w.builder
	if b == nil {
		var err error
		if b, err = vellum.New(w.out, nil); err != nil {
			return fmt.Errorf("fst: %w", err)
		}
	}
	err := w.sort.Finish(ctx, func(key, val []byte) error {
		w.keys++
		return b.Insert(key, binary.BigEndian.Uint64(val))
	})
	if err != nil {
		return w.sortError(err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("fst: %w", err)
	}
	return nil
}

// sortError names the key and the files of a duplicate or out-of-order key.
func (w *writer) sortError(err error) error {
	switch e := err.(type) {
	case *sorter.DuplicateError:
		_, first := w.Duplicates()
		return first
	case *sorter.OrderError:
		return w.files.OutOfOrder("fst", fmt.Sprintf("%s=%s", w.keyName, inputs.Quote(e.Key)), inputs.Quote(e.Prev), e.Ord, e.PrevOrd)
	case nil:
		return nil
	}
	return fmt.Errorf("fst: %w", err)
}

func (w *writer) Abort() { w.sort.Close() }

// Rows is the number of keys written, after the duplicate policy.
func (w *writer) Rows() int64 { return w.keys }

// Duplicates reports the records the duplicate policy met (see
// formats.DuplicateCounter).
func (w *writer) Duplicates() (int64, *formats.DuplicateKeyError) {
	d := w.sort.Duplicates()
	if d.First == nil {
		return d.N, nil
	}
	return d.N, w.files.Duplicate("fst", fmt.Sprintf("%s=%s", w.keyName, inputs.Quote(d.First.Key)), d.First.Ord1, d.First.Ord2)
}
