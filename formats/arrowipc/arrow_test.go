package arrowipc_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/arrowipc"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}, nil)

func batch(t *testing.T, from, n int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%5 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(strings.Repeat("x", i%7))
		}
		lb := b.Field(2).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("t")
	}
	return b.NewRecordBatch()
}

func write(t *testing.T, opts map[string]any, batches int) []byte {
	t.Helper()
	cfg, err := arrowipc.Format{}.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batches {
		rec := batch(t, i*1000, 1000)
		if err := w.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(t *testing.T, data []byte) formats.Reader {
	t.Helper()
	r, err := arrowipc.Format{}.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []string{"none", "lz4", "zstd"} {
		data := write(t, map[string]any{"compression": c}, 3)
		r := open(t, data)
		if r.Rows() != 3000 {
			t.Fatalf("%s: %d rows", c, r.Rows())
		}
		if err := r.Check(context.Background()); err != nil {
			t.Fatalf("%s: check: %v", c, err)
		}
		res, err := r.Query(context.Background(), nil, 6)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 6 || res.Rows[5][0] != int64(5) || res.Rows[5][1] != nil || res.Rows[1][1] != "x" {
			t.Fatalf("%s: first rows %v", c, res.Rows)
		}
	}
}

func TestEmptyInput(t *testing.T) {
	r := open(t, write(t, nil, 0))
	if r.Rows() != 0 {
		t.Fatalf("%d rows", r.Rows())
	}
}

func TestDeterministic(t *testing.T) {
	for _, c := range []string{"none", "zstd"} {
		a := write(t, map[string]any{"compression": c}, 4)
		b := write(t, map[string]any{"compression": c}, 4)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: two writes differ", c)
		}
	}
}

func TestColumns(t *testing.T) {
	r := open(t, write(t, map[string]any{"columns": []any{"name", "id"}}, 1))
	res, _ := r.Query(context.Background(), nil, 2)
	if strings.Join(res.Columns, ",") != "name,id" {
		t.Fatalf("columns %v", res.Columns)
	}
	cfg, _ := arrowipc.Format{}.Configure(map[string]any{"columns": []any{"nope"}})
	if _, err := cfg.NewWriter(&bytes.Buffer{}, schema); !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing column: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for opts, want := range map[*map[string]any]string{
		{"compresion": "zstd"}:  `no option "compresion" (valid: batch_rows, columns, compression, rename, sort_buffer, sort_by, temp_dir)`,
		{"compression": "gzip"}: `must be one of none, lz4, zstd`,
		{"columns": "id"}:       `must be a list of strings`,
	} {
		_, err := arrowipc.Format{}.Configure(*opts)
		if !errors.Is(err, formats.ErrBadOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", *opts, err, want)
		}
	}
}

func TestCancel(t *testing.T) {
	cfg, _ := arrowipc.Format{}.Configure(nil)
	w, _ := cfg.NewWriter(&bytes.Buffer{}, schema)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := batch(t, 0, 10)
	defer rec.Release()
	if err := w.Write(ctx, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after cancel: %v", err)
	}
	w.Abort()
}

func TestHostileFile(t *testing.T) {
	data := write(t, nil, 2)
	for _, bad := range [][]byte{nil, data[:len(data)/2], data[:10], []byte("ARROW1\x00\x00garbage")} {
		if r, err := (arrowipc.Format{}).Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
			if err := r.Check(context.Background()); err == nil {
				t.Errorf("a broken file of %d bytes opened and checked clean", len(bad))
			}
		}
	}
}
