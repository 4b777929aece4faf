package arrowipc_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/arrowipc"
	"github.com/lockstep-data/lockstep/formats/formatstest"
)

var conformance = formatstest.Case{
	Format:       arrowipc.Format{},
	Options:      map[string]any{"compression": "zstd", "sort_by": []any{"key"}, "batch_rows": 1000, "sort_buffer": "1MiB"},
	SpillOptions: map[string]any{"sort_buffer": "1MiB"},
}

func TestConformance(t *testing.T) { formatstest.Run(t, conformance) }

func TestGolden(t *testing.T) { formatstest.Golden(t, conformance) }

// records reads every batch of an IPC file with arrow-go's reader.
func records(t *testing.T, data []byte) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatal(err)
	}
	var out []arrow.RecordBatch
	for i := range fr.NumRecords() {
		rec, err := fr.RecordBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		rec.Retain()
		out = append(out, rec)
	}
	return fr.Schema(), out
}

func TestRenameAndBatchRows(t *testing.T) {
	opts := map[string]any{"columns": []any{"key", "id", "info"}, "rename": map[string]any{"key": "k", "info": "detail"}, "batch_rows": 128}
	ids := formatstest.Shuffled(1000)
	a := formatstest.Write(t, arrowipc.Format{}, opts, ids, 333)
	b := formatstest.Write(t, arrowipc.Format{}, opts, ids, 1000)
	if !bytes.Equal(a, b) {
		t.Fatal("the output depends on the input's batching")
	}
	schema, recs := records(t, a)
	var names []string
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "k,id,detail" {
		t.Fatalf("columns %s, want k,id,detail", got)
	}
	if len(recs) != 8 {
		t.Fatalf("%d batches of 1000 rows at batch_rows 128, want 8", len(recs))
	}
	var row int
	for i, rec := range recs {
		if want := min(128, 1000-i*128); rec.NumRows() != int64(want) {
			t.Fatalf("batch %d has %d rows, want %d", i, rec.NumRows(), want)
		}
		for r := range int(rec.NumRows()) {
			id := rec.Column(1).(*array.Int64).Value(r)
			if id != ids[row] || rec.Column(0).(*array.String).Value(r) != formatstest.Key(id) {
				t.Fatalf("row %d: id %d key %q, want id %d", row, id, rec.Column(0).ValueStr(r), ids[row])
			}
			row++
		}
	}
	for opts, want := range map[*map[string]any]string{
		{"rename": map[string]any{"nope": "x"}}:                `rename: no column "nope"`,
		{"rename": map[string]any{"id": "key"}}:                `two output columns are named "key"`,
		{"sort_by": "info"}:                                    `column "info" has type struct`,
		{"sort_by": "id", "rename": map[string]any{"id": "n"}}: `no column "id" in the output`,
	} {
		cfg, err := arrowipc.Format{}.Configure(*opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.NewWriter(&bytes.Buffer{}, formatstest.Schema); !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", *opts, err, want)
		}
	}
	if _, err := (arrowipc.Format{}).Configure(map[string]any{"rename": []any{"a:b"}}); !errors.Is(err, formats.ErrBadOption) {
		t.Errorf("rename as a list: %v", err)
	}
	if _, err := (arrowipc.Format{}).Configure(map[string]any{"sort_buffer": "1MiB"}); !errors.Is(err, formats.ErrBadOption) || !strings.Contains(err.Error(), "only with sort_by") {
		t.Errorf("sort_buffer without sort_by: %v", err)
	}
}

// TestSortBy sorts 20,000 rows by a nullable column then id, spilling, and
// checks order, nulls first, and that nested values travel with their row.
func TestSortBy(t *testing.T) {
	tmp := t.TempDir()
	opts := map[string]any{"sort_by": []any{"score", "id"}, "sort_buffer": "64KiB", "temp_dir": tmp, "batch_rows": 4096}
	ids := formatstest.Shuffled(20000)
	data := formatstest.Write(t, arrowipc.Format{}, opts, ids, 3000)
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("%d temp files left", len(ents))
	}
	_, recs := records(t, data)
	want := formatstest.Batch(ids) // the same rows, to compare nested values by id
	defer want.Release()
	pos := map[int64]int{}
	for i, id := range ids {
		pos[id] = i
	}
	var n int
	prevNull, prevScore, prevID := true, math.Inf(-1), int64(-1)
	for _, rec := range recs {
		for r := range int(rec.NumRows()) {
			id := rec.Column(0).(*array.Int64).Value(r)
			null := rec.Column(4).IsNull(r)
			score := 0.0
			if !null {
				score = rec.Column(4).(*array.Float64).Value(r)
			}
			switch {
			case null && !prevNull:
				t.Fatalf("row %d (id %d): a null score after non-null ones; nulls sort first", n, id)
			case !null && !prevNull && (score < prevScore || score == prevScore && id <= prevID):
				t.Fatalf("row %d: (%v, %d) after (%v, %d)", n, score, id, prevScore, prevID)
			}
			prevNull, prevScore, prevID = null, score, id
			for c := range int(rec.NumCols()) {
				got, exp := rec.Column(c).ValueStr(r), want.Column(c).ValueStr(pos[id])
				if got != exp {
					t.Fatalf("id %d column %s: %s, want %s", id, rec.ColumnName(c), got, exp)
				}
			}
			n++
		}
	}
	if n != len(ids) {
		t.Fatalf("%d rows, want %d", n, len(ids))
	}
}

// TestSortCarriesTypes sends less common types through the sort and
// compares them with array.Equal.
func TestSortCarriesTypes(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int32},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ts_local", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 20, Scale: 4}, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "ll", Type: arrow.ListOf(arrow.StructOf(arrow.Field{Name: "t", Type: arrow.FixedWidthTypes.Timestamp_ms, Nullable: true})), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e-300, 0.1}
	const rows = 60
	for i := range rows {
		b.Field(0).(*array.Int32Builder).Append(int32(rows - i))
		if i%3 == 0 {
			for c := 1; c < len(schema.Fields()); c++ {
				b.Field(c).AppendNull()
			}
			continue
		}
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(1700000000123456 + int64(i)))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC).UnixNano() + int64(i)))
		b.Field(3).(*array.Date32Builder).Append(arrow.Date32(-1000 + i))
		b.Field(4).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i) * -12345))
		b.Field(5).(*array.Float64Builder).Append(floats[i%len(floats)])
		b.Field(6).(*array.Float32Builder).Append(float32(floats[i%len(floats)]))
		b.Field(7).(*array.BinaryBuilder).Append([]byte{0, 0xFF, byte(i)})
		mb := b.Field(8).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("z")
		mb.ItemBuilder().(*array.Int64Builder).Append(int64(i))
		mb.KeyBuilder().(*array.StringBuilder).Append("a")
		mb.ItemBuilder().(*array.Int64Builder).Append(-1)
		lb := b.Field(9).(*array.ListBuilder)
		lb.Append(true)
		sb := lb.ValueBuilder().(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.TimestampBuilder).Append(arrow.Timestamp(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	cfg, err := arrowipc.Format{}.Configure(map[string]any{"sort_by": "n", "sort_buffer": "64KiB"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, recs := records(t, buf.Bytes())
	if len(recs) != 1 || recs[0].NumRows() != rows {
		t.Fatalf("%d batches", len(recs))
	}
	got := recs[0]
	for c := range schema.Fields() {
		for r := range rows {
			// Sorted by n descending input: output row r is input row rows-1-r.
			g := array.NewSlice(got.Column(c), int64(r), int64(r+1))
			e := array.NewSlice(rec.Column(c), int64(rows-1-r), int64(rows-r))
			if !array.ApproxEqual(g, e, array.WithNaNsEqual(true)) {
				t.Fatalf("column %s row %d: %v, want %v", schema.Field(c).Name, r, g, e)
			}
			g.Release()
			e.Release()
		}
	}
}
