package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/kv"
)

var conformance = formatstest.Case{
	Format:       kv.Format{},
	Options:      map[string]any{"key": "id", "compression": "zstd", "sort_buffer": "1MiB"},
	SpillOptions: map[string]any{"sort_buffer": "1MiB"},
	Checksummed:  true,
}

func TestConformance(t *testing.T) { formatstest.Run(t, conformance) }

func TestGolden(t *testing.T) { formatstest.Golden(t, conformance) }

func TestLookup(t *testing.T) {
	for _, enc := range []string{"json", "msgpack"} {
		for _, comp := range []string{"none", "snappy", "zstd"} {
			data := formatstest.Write(t, kv.Format{}, map[string]any{
				"key": "id", "value": enc, "compression": comp, "value_columns": []any{"name", "tags", "info"},
			}, formatstest.Shuffled(3000), 500)
			r := formatstest.Open(t, kv.Format{}, data)
			if r.Rows() != 3000 {
				t.Fatalf("%d rows", r.Rows())
			}
			res, err := r.Query(context.Background(), []string{"11"}, 5)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != 1 || res.Rows[0][0] != int64(11) {
				t.Fatalf("%s/%s: get 11: %v", enc, comp, res.Rows)
			}
			v := res.Rows[0][1].(map[string]any)
			if v["name"] != "Zürich 11" || len(v["tags"].([]any)) != 2 || v["info"].(map[string]any)["b"] != "b" {
				t.Fatalf("%s/%s: value of 11: %#v", enc, comp, v)
			}
			res, _ = r.Query(context.Background(), []string{"10"}, 5)
			if v := res.Rows[0][1].(map[string]any); v["name"] != nil || v["info"].(map[string]any)["b"] != nil {
				t.Fatalf("%s/%s: nulls of 10: %#v", enc, comp, v)
			}
			if res, _ := r.Query(context.Background(), []string{"3001"}, 5); len(res.Rows) != 0 {
				t.Fatalf("missing key found: %v", res.Rows)
			}
		}
	}
}

func TestKeyOrderAndPrefix(t *testing.T) {
	// Negative ids must sort before positive ones: the sign bit is flipped.
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "country", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32},
		{Name: "v", Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	rows := []struct {
		c string
		n int32
	}{{"DE", 5}, {"CH", -3}, {"DE", -70000}, {"D", 1}, {"CH", 2}, {"DE\x00x", 0}}
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.c)
		b.Field(1).(*array.Int32Builder).Append(r.n)
		b.Field(2).(*array.BinaryBuilder).Append([]byte(r.c))
	}
	rec := b.NewRecordBatch()
	cfg, err := kv.Format{}.Configure(map[string]any{"key": []any{"country", "n"}, "value": "raw", "value_columns": "v", "key_prefix": "pl/"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := cfg.NewWriter(&buf, schema)
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := formatstest.Open(t, kv.Format{}, buf.Bytes())
	res, err := r.Query(context.Background(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range res.Rows {
		got = append(got, strings.ReplaceAll(row[0].(string), "\x00", "0")+":"+formatInt(row[1]))
	}
	if want := "CH:-3 CH:2 D:1 DE:-70000 DE:5 DE0x:0"; strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
	res, _ = r.Query(context.Background(), []string{"prefix:DE"}, 10)
	if len(res.Rows) != 3 {
		t.Fatalf("prefix:DE gave %v", res.Rows)
	}
	res, _ = r.Query(context.Background(), []string{"DE", "-70000"}, 10)
	if len(res.Rows) != 1 || res.Rows[0][2] != "DE" {
		t.Fatalf("get DE -70000 gave %v", res.Rows)
	}
}

func formatInt(v any) string { return strconv.FormatInt(v.(int64), 10) }

func TestDuplicates(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "v", Type: arrow.BinaryTypes.String}}, nil)
	rows := []struct {
		id int64
		v  string
	}{{5, "a"}, {1, "b"}, {5, "c"}, {2, "d"}, {5, "e"}}
	write := func(policy string, buffer string, files bool) ([]byte, error) {
		cfg, err := kv.Format{}.Configure(map[string]any{"key": "id", "duplicates": policy, "value": "raw", "value_columns": "v", "sort_buffer": buffer})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, _ := cfg.NewWriter(&buf, schema)
		defer w.Abort()
		for i, r := range rows {
			if files && i%2 == 0 {
				w.(formats.FileStarter).StartFile(fmt.Sprintf("file:///in/part-%d.parquet", i/2))
			}
			b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
			b.Field(0).(*array.Int64Builder).Append(r.id)
			b.Field(1).(*array.StringBuilder).Append(r.v)
			rec := b.NewRecordBatch()
			err := w.Write(context.Background(), rec)
			rec.Release()
			if err != nil {
				return nil, err
			}
		}
		err = w.Close(context.Background())
		return buf.Bytes(), err
	}
	for _, buffer := range []string{"1GiB", "1MiB"} {
		_, err := write("error", buffer, true)
		if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "duplicate key id=5 in record 0 of file:///in/part-0.parquet and record 0 of file:///in/part-1.parquet") {
			t.Fatalf("duplicate error: %v", err)
		}
	}
	for policy, want := range map[string]string{"first": "a", "last": "e"} {
		data, err := write(policy, "1MiB", false)
		if err != nil {
			t.Fatal(err)
		}
		r := formatstest.Open(t, kv.Format{}, data)
		res, _ := r.Query(context.Background(), []string{"5"}, 1)
		if r.Rows() != 3 || res.Rows[0][1] != want {
			t.Fatalf("%s: %d rows, %v", policy, r.Rows(), res.Rows)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{}, "kv needs option key"},
		{map[string]any{"key": "id", "compression": "lz4"}, "must be one of none, snappy, zstd"},
		{map[string]any{"key": "id", "sort_buffer": "lots"}, `"sort_buffer" must be a size`},
		{map[string]any{"key": "id", "value": "raw"}, "raw needs value_columns"},
		{map[string]any{"key": "id", "duplicates": "keep"}, "must be one of error, first, last"},
	} {
		_, err := kv.Format{}.Configure(c.opts)
		if !errors.Is(err, formats.ErrBadOption) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.opts, err, c.want)
		}
	}
	cfg, _ := kv.Format{}.Configure(map[string]any{"key": "tags"})
	if _, err := cfg.NewWriter(&bytes.Buffer{}, formatstest.Schema); !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), `"tags"`) {
		t.Fatalf("list key: %v", err)
	}
}

func TestHostileFile(t *testing.T) {
	data := formatstest.Write(t, kv.Format{}, map[string]any{"key": "id"}, formatstest.Shuffled(2000), 500)
	for _, bad := range [][]byte{nil, data[:len(data)/2], data[:60], append(bytes.Clone(data[:len(data)-100]), make([]byte, 100)...)} {
		if r, err := (kv.Format{}).Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
			if err := r.Check(context.Background()); err == nil {
				t.Errorf("a broken file of %d bytes opened and checked clean", len(bad))
			}
		}
	}
	flipped := bytes.Clone(data)
	flipped[100] ^= 0xFF
	r, err := (kv.Format{}).Open(bytes.NewReader(flipped), int64(len(flipped)))
	if err == nil && r.Check(context.Background()) == nil {
		t.Error("a flipped byte in a data block went unnoticed")
	}
}

// TestSortedStreams: input declared sorted streams straight into the table —
// byte for byte what a sort would write, with no spill folder even with the
// smallest buffer — and input that is not sorted is refused, naming both
// keys and their files.
func TestSortedStreams(t *testing.T) {
	ids := make([]int64, 20000)
	for i := range ids {
		ids[i] = int64(i)
	}
	tmp := t.TempDir()
	opts := map[string]any{"key": "id", "compression": "zstd", "sort_buffer": "64KiB", "temp_dir": tmp}
	sorted := map[string]any{"key": "id", "compression": "zstd", "sort_buffer": "64KiB", "temp_dir": tmp, "sorted": true}
	a := formatstest.Write(t, kv.Format{}, opts, ids, 1000)
	b := formatstest.Write(t, kv.Format{}, sorted, ids, 1000)
	if !bytes.Equal(a, b) {
		t.Fatal("a streamed table differs from a sorted one")
	}
	if r := formatstest.Open(t, kv.Format{}, b); r.Rows() != 20000 {
		t.Fatalf("%d rows", r.Rows())
	}
	cfg, _ := kv.Format{}.Configure(sorted)
	w, _ := cfg.NewWriter(&bytes.Buffer{}, formatstest.Schema)
	defer w.Abort()
	w.(formats.FileStarter).StartFile("file:///in/part-0.parquet")
	rec := formatstest.Batch([]int64{1, 2, 3})
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	w.(formats.FileStarter).StartFile("file:///in/part-1.parquet")
	rec = formatstest.Batch([]int64{2})
	err := w.Write(context.Background(), rec)
	rec.Release()
	if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "id=2 in record 0 of file:///in/part-1.parquet comes after id=3 in record 2 of file:///in/part-0.parquet") {
		t.Fatalf("unsorted input declared sorted: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("streaming left or made spill folders: %v", ents)
	}
	if _, err := (kv.Format{}).Configure(map[string]any{"key": "id", "sorted": true, "shards": 2}); !errors.Is(err, formats.ErrBadOption) {
		t.Fatalf("sorted with shards: %v", err)
	}
}
