// Package formatstest is the conformance suite every format passes: empty
// input, nulls, nested columns, a large batch, cancellation midway leaving
// no temp files, byte-for-byte determinism, option validation, and a golden
// file (testdata/golden/NAME.EXT, rewritten with -update).
//
// Every format's test calls Run with options that fit Schema.
package formatstest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// Schema is the input every conformance case writes. Rows are given in a
// shuffled id order; `key` and `network` are unique per id.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "network", Type: arrow.BinaryTypes.String}, // an IPv4 /24, or an IPv6 /48 for odd ids
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "count", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "info", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
	), Nullable: true},
}, nil)

// Key is the unique string key of id.
func Key(id int64) string { return fmt.Sprintf("k%07d", id) }

// Network is the unique network of id: 20.x.y.0/24 for even ids,
// 2001:db8:x::/48 style for odd ones (outside reserved ranges).
func Network(id int64) string {
	if id%2 == 0 {
		return fmt.Sprintf("20.%d.%d.0/24", (id>>9)&0xFF, (id>>1)&0xFF)
	}
	return fmt.Sprintf("2a00:%x:%x::/48", (id>>17)&0xFFFF, (id>>1)&0xFFFF)
}

// Shuffled is a permutation of 0..n-1 that is fixed for each n.
func Shuffled(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	x := uint64(0x9E3779B97F4A7C15)
	for i := n - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Batch builds a record of Schema with the given ids. Rows have nulls in
// every nullable column at fixed ids.
func Batch(ids []int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, Schema)
	defer b.Release()
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.StringBuilder).Append(Key(id))
		b.Field(2).(*array.StringBuilder).Append(Network(id))
		if id%7 == 3 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("Zürich %d", id))
		}
		if id%5 == 1 {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(float64(id) / 4)
		}
		if id%6 == 2 {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.Uint32Builder).Append(uint32(id * 3))
		}
		lb := b.Field(6).(*array.ListBuilder)
		switch id % 4 {
		case 0:
			lb.AppendNull()
		case 1:
			lb.Append(true) // empty list
		default:
			lb.Append(true)
			lb.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"port", "river"}, nil)
		}
		sb := b.Field(7).(*array.StructBuilder)
		if id%9 == 4 {
			sb.AppendNull()
		} else {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(-id))
			if id%2 == 0 {
				sb.FieldBuilder(1).AppendNull()
			} else {
				sb.FieldBuilder(1).(*array.StringBuilder).Append("b")
			}
		}
	}
	return b.NewRecordBatch()
}

// Case is one format under test.
type Case struct {
	Format  formats.Format
	Options map[string]any // options that fit Schema
	// SpillOptions are added for the cancellation case, to make the writer
	// use temp files (a tiny sort buffer); nil if it never makes any.
	SpillOptions map[string]any
	// Checksummed says that every byte of the file is covered by a checksum
	// or structure, so that Open or Check finds any flipped bit.
	Checksummed bool
	// Input, when set, builds the records instead of Batch, for a format
	// whose input needs columns Schema lacks (geo's geometry); InputSchema
	// is their schema.
	Input       func(ids []int64) arrow.RecordBatch
	InputSchema *arrow.Schema
}

func (c Case) batch(ids []int64) arrow.RecordBatch {
	if c.Input != nil {
		return c.Input(ids)
	}
	return Batch(ids)
}

func (c Case) schema() *arrow.Schema {
	if c.InputSchema != nil {
		return c.InputSchema
	}
	return Schema
}

func (c Case) write(t testing.TB, opts map[string]any, ids []int64, batch int) []byte {
	return write(t, c.Format, opts, c.schema(), c.batch, ids, batch)
}

func (c Case) options(extra map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range c.Options {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// Write writes the ids, in batches of batch rows, and returns the file.
func Write(t testing.TB, f formats.Format, opts map[string]any, ids []int64, batch int) []byte {
	t.Helper()
	return write(t, f, opts, Schema, Batch, ids, batch)
}

func write(t testing.TB, f formats.Format, opts map[string]any, schema *arrow.Schema, mk func([]int64) arrow.RecordBatch, ids []int64, batch int) []byte {
	t.Helper()
	cfg, err := f.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(ids); i += batch {
		rec := mk(ids[i:min(i+batch, len(ids))])
		err := w.Write(context.Background(), rec)
		rec.Release()
		if err != nil {
			w.Abort()
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Open opens data and checks it.
func Open(t testing.TB, f formats.Format, data []byte) formats.Reader {
	t.Helper()
	r, err := f.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	return r
}

// Run runs the conformance suite.
func Run(t *testing.T, c Case) {
	info := c.Format.Info()
	t.Run("Info", func(t *testing.T) {
		if info.Name == "" || info.Version == "" || info.MediaType == "" || !strings.HasPrefix(info.Ext, ".") {
			t.Fatalf("incomplete info %+v", info)
		}
		cfg, err := c.Format.Configure(c.Options)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Options()) == 0 {
			t.Fatal("Options() is empty: the manifest should record the defaults")
		}
	})
	t.Run("UnknownOption", func(t *testing.T) {
		_, err := c.Format.Configure(c.options(map[string]any{"no_such_option": 1}))
		if !errors.Is(err, formats.ErrBadOption) || !strings.Contains(err.Error(), `"no_such_option" (valid: `) {
			t.Fatalf("got %v, want an ErrBadOption listing the valid options", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		r := Open(t, c.Format, c.write(t, c.Options, nil, 1))
		if r.Rows() != 0 {
			t.Fatalf("%d rows in an empty asset", r.Rows())
		}
		res, err := r.Query(context.Background(), nil, 10)
		if err != nil || len(res.Rows) != 0 {
			t.Fatalf("query of an empty asset: %v, %v", res, err)
		}
	})
	t.Run("NullsAndNested", func(t *testing.T) {
		r := Open(t, c.Format, c.write(t, c.Options, Shuffled(100), 30))
		if r.Rows() < 100 {
			t.Fatalf("%d rows, want at least 100", r.Rows())
		}
		res, err := r.Query(context.Background(), nil, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 5 {
			t.Fatalf("first rows: %v", res.Rows)
		}
	})
	t.Run("LargeBatch", func(t *testing.T) {
		ids := Shuffled(60000)
		r := Open(t, c.Format, c.write(t, c.Options, ids, len(ids)))
		if r.Rows() < int64(len(ids)) {
			t.Fatalf("%d rows, want at least %d", r.Rows(), len(ids))
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		ids := Shuffled(5000)
		a := c.write(t, c.Options, ids, 700)
		b := c.write(t, c.Options, ids, 700)
		if !bytes.Equal(a, b) {
			t.Fatalf("two writes of the same input differ (%d and %d bytes)", len(a), len(b))
		}
	})
	t.Run("Cancel", func(t *testing.T) { cancel(t, c) })
	t.Run("Damaged", func(t *testing.T) { damaged(t, c) })
}

// damaged truncates and bit-flips an asset: a truncated file must give an
// error from Open or Check, and no damage may panic.
func damaged(t *testing.T, c Case) {
	data := c.write(t, c.Options, Shuffled(2000), 500)
	try := func(what string, bad []byte) (err error) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("%s: panic: %v", what, p)
			}
		}()
		r, err := c.Format.Open(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			return err
		}
		defer r.Close()
		err = r.Check(context.Background())
		r.Rows()
		r.Describe()
		r.Query(context.Background(), nil, 3)
		return err
	}
	if err := try("intact", data); err != nil {
		t.Fatalf("the intact file fails: %v", err)
	}
	for _, n := range []int{0, 1, len(data) / 3, len(data) / 2, len(data) - 16, len(data) - 1} {
		if err := try(fmt.Sprintf("truncated to %d of %d bytes", n, len(data)), data[:n]); err == nil {
			t.Errorf("a file truncated to %d of %d bytes opened and checked clean", n, len(data))
		}
	}
	missed := 0
	step := max(1, len(data)/300)
	for i := 0; i < len(data); i += step {
		bad := bytes.Clone(data)
		bad[i] ^= 1 << (i % 8)
		if try(fmt.Sprintf("bit %d flipped at byte %d of %d", i%8, i, len(data)), bad) == nil {
			missed++
			if c.Checksummed {
				t.Errorf("bit %d flipped at byte %d of %d: opened and checked clean", i%8, i, len(data))
			}
		}
	}
	t.Logf("%d of %d bit flips checked clean (a value changed within the format's rules)", missed, (len(data)+step-1)/step)
}

// Golden compares the asset written from 40 fixed rows with
// testdata/golden/NAME.EXT; with -update it rewrites the file first. Call it
// from a test named TestGolden, which `make golden` runs.
func Golden(t *testing.T, c Case) {
	info := c.Format.Info()
	got := c.write(t, c.Options, Shuffled(40), 16)
	path := filepath.Join("testdata", "golden", info.Name+info.Ext)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make golden` to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the output (%d bytes, want %d); if the change is meant, run `make golden`", path, len(got), len(want))
	}
}

// cancel cancels a write midway and checks that Abort leaves no temp files.
func cancel(t *testing.T, c Case) {
	tmp := t.TempDir()
	opts := c.options(c.SpillOptions)
	if c.SpillOptions != nil {
		opts["temp_dir"] = tmp
	}
	t.Setenv("TMPDIR", tmp)
	cfg, err := c.Format.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cfg.NewWriter(&bytes.Buffer{}, c.schema())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ids := Shuffled(40000)
	var werr error
	for i := 0; i < len(ids) && werr == nil; i += 5000 {
		if i == 20000 {
			if c.SpillOptions != nil {
				if ents, _ := os.ReadDir(tmp); len(ents) == 0 {
					t.Errorf("no temp files after 20000 rows with %v: the case does not exercise spilling", c.SpillOptions)
				}
			}
			stop()
		}
		rec := c.batch(ids[i : i+5000])
		werr = w.Write(ctx, rec)
		rec.Release()
	}
	if werr == nil {
		werr = w.Close(ctx)
	}
	if !errors.Is(werr, context.Canceled) {
		t.Fatalf("write after cancel: %v, want context.Canceled", werr)
	}
	w.Abort()
	ents, _ := os.ReadDir(tmp)
	if len(ents) != 0 {
		t.Fatalf("Abort left %d temp files in %s, such as %s", len(ents), tmp, ents[0].Name())
	}
}
