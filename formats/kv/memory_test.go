package kv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/kv"
)

var memSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
}, nil)

// writeUnsorted writes rows unsorted ids (a multiplicative hash of the row
// number) through kv with the given sort buffer into a file, and checks
// the result with the reader: complete, strictly increasing.
func writeUnsorted(t testing.TB, rows int, buffer string) {
	dir := t.TempDir()
	cfg, err := kv.Format{}.Configure(map[string]any{"key": "id", "value": "raw", "value_columns": "name", "sort_buffer": buffer, "temp_dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out.sst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cfg.NewWriter(f, memSchema)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 65536
	for from := 0; from < rows; from += batch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, memSchema)
		for n := from; n < min(from+batch, rows); n++ {
			b.Field(0).(*array.Int64Builder).Append(int64(n) * 48271 % 2147483647)
			b.Field(1).(*array.StringBuilder).Append("place-" + strconv.Itoa(n))
		}
		rec := b.NewRecordBatch()
		if err := w.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	in, _ := os.Open(path)
	defer in.Close()
	st, _ := in.Stat()
	r, err := kv.Format{}.Open(in, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Rows() != int64(rows) {
		t.Fatalf("%d rows, want %d", r.Rows(), rows)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

// TestExternalSortMemory: kv from 5M unsorted rows with a 64 MiB sort
// buffer stays under 400 MB peak RSS, and the table is complete and sorted.
// It runs in a child process, so that the peak is this write's alone.
func TestExternalSortMemory(t *testing.T) {
	if os.Getenv(formatstest.ChildEnv) == "kv-sort" {
		writeUnsorted(t, 5_000_000, "64MiB")
		formatstest.PrintPeakRSS()
		return
	}
	if testing.Short() {
		t.Skip("5M rows: not in -short")
	}
	_, peak := formatstest.PeakRSS(t, "^TestExternalSortMemory$", "kv-sort")
	t.Logf("peak RSS %d MB", peak>>20)
	if peak > 400_000_000 {
		t.Fatalf("peak RSS %d MB, want under 400 MB", peak>>20)
	}
}

// BenchmarkExternalSort reports rows per second and the peak RSS of kv on
// 5M unsorted rows with a 64 MiB sort buffer.
func BenchmarkExternalSort(b *testing.B) {
	if os.Getenv(formatstest.ChildEnv) == "kv-bench" {
		for range b.N {
			writeUnsorted(b, 5_000_000, "64MiB")
		}
		formatstest.PrintPeakRSS()
		return
	}
	for range b.N {
		_, peak := formatstest.PeakRSS(b, "^BenchmarkExternalSort$", "kv-bench")
		b.ReportMetric(float64(peak>>20), "peak-MB")
	}
	b.ReportMetric(5_000_000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	fmt.Fprint(os.Stderr)
}
