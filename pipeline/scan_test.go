package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

// layoutRow is a Spark-like row: a key, a random (incompressible) string,
// numbers, a low-cardinality tag and a timestamp.
type layoutRow struct {
	ID    int64   `parquet:"id"`
	Key   string  `parquet:"key"`
	Score float64 `parquet:"score"`
	Count int32   `parquet:"count"`
	Tag   string  `parquet:"tag,dict"`
	TS    int64   `parquet:"ts,timestamp(microsecond)"`
}

// writeSparkLayout writes files part-NNNNN-<uuid>-c000.snappy.parquet and
// _SUCCESS under dir, as Spark lays them out: rowsPerFile rows each, in row
// groups of groupRows, with ids increasing across files in path order.
// It returns the bytes written.
func writeSparkLayout(tb testing.TB, dir string, files, rowsPerFile, groupRows int) int64 {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	const hex = "0123456789abcdef"
	tags := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
	var total int64
	rows := make([]layoutRow, 0, 8192)
	key := make([]byte, 48)
	for f := 0; f < files; f++ {
		p := filepath.Join(dir, fmt.Sprintf("part-%05d-5f1c0d2e-6a4b-4c1e-9f00-000000000000-c000.snappy.parquet", f))
		out, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		w := parquet.NewGenericWriter[layoutRow](out, parquet.Compression(&snappy.Codec{}), parquet.MaxRowsPerRowGroup(int64(groupRows)))
		rng := rand.New(rand.NewPCG(uint64(f), 7))
		for r := 0; r < rowsPerFile; r++ {
			id := int64(f*rowsPerFile + r)
			for i := 0; i < len(key); i += 16 {
				u := rng.Uint64()
				for j := 0; j < 16; j++ {
					key[i+j] = hex[u>>(4*j)&15]
				}
			}
			rows = append(rows, layoutRow{ID: id, Key: string(key), Score: rng.Float64(), Count: int32(rng.IntN(1000)),
				Tag: tags[id%5], TS: 1_700_000_000_000_000 + id})
			if len(rows) == cap(rows) || r == rowsPerFile-1 {
				if _, err := w.Write(rows); err != nil {
					tb.Fatal(err)
				}
				rows = rows[:0]
			}
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		st, _ := out.Stat()
		total += st.Size()
		out.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return total
}

// scanIDs reads dir with the given parallelism and returns the ids in the
// order Scan gave them.
func scanIDs(tb testing.TB, dir string, parallel int) []int64 {
	tb.Helper()
	ctx := context.Background()
	src, _, err := Discover(ctx, "t", "file://"+dir, true)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	src.Parallelism = parallel
	schema, err := src.Schema(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int64
	if _, _, err := src.Scan(ctx, schema, func(rec arrow.RecordBatch) error {
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// TestScanParallelOrder: many small files with several row groups each,
// read with 1, 3 and 8 readers, give the same rows in the same order:
// files by path, then row group, then row.
func TestScanParallelOrder(t *testing.T) {
	dir := t.TempDir()
	writeSparkLayout(t, dir, 40, 2500, 700)
	seq := scanIDs(t, dir, 1)
	if len(seq) != 100_000 {
		t.Fatalf("sequential read gave %d rows, want 100000", len(seq))
	}
	for i, id := range seq {
		if id != int64(i) {
			t.Fatalf("sequential: row %d has id %d", i, id)
		}
	}
	defer func(old int64) { readAheadBytes = old }(readAheadBytes)
	// No read-ahead (one batch per file), some, and all of it.
	for _, ahead := range []int64{0, 100 << 10, 1 << 40} {
		readAheadBytes = ahead
		for _, n := range []int{3, 8} {
			par := scanIDs(t, dir, n)
			if len(par) != len(seq) {
				t.Fatalf("read-ahead %d, parallel %d: %d rows, sequential %d", ahead, n, len(par), len(seq))
			}
			for i := range seq {
				if par[i] != seq[i] {
					t.Fatalf("read-ahead %d, parallel %d: row %d has id %d, sequential %d", ahead, n, i, par[i], seq[i])
				}
			}
		}
	}
}

// TestScanCancel: a consumer error and a cancelled context end a parallel
// scan promptly with that error, leaving no reader behind.
func TestScanCancel(t *testing.T) {
	dir := t.TempDir()
	writeSparkLayout(t, dir, 12, 3000, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, _, err := Discover(ctx, "t", "file://"+dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Parallelism = 4
	schema, _ := src.Schema(ctx)
	stop := fmt.Errorf("consumer stops")
	calls := 0
	_, _, err = src.Scan(ctx, schema, func(arrow.RecordBatch) error {
		if calls++; calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("want the consumer's error back, got %v", err)
	}
	calls = 0
	_, _, err = src.Scan(ctx, schema, func(arrow.RecordBatch) error {
		if calls++; calls == 2 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

// BenchmarkScanParallel reads the same Spark-layout input sequentially and
// with one reader per core, several times each, and reports the ratio of the
// medians as speedup.
func BenchmarkScanParallel(b *testing.B) {
	dir := b.TempDir()
	writeSparkLayout(b, dir, 16, 100_000, 50_000)
	median := func(parallel int) time.Duration {
		var ds []time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			if n := len(scanIDs(b, dir, parallel)); n != 1_600_000 {
				b.Fatalf("%d rows", n)
			}
			ds = append(ds, time.Since(t0))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	for i := 0; i < b.N; i++ {
		seq, par := median(1), median(0)
		b.ReportMetric(float64(seq)/float64(par), "speedup")
		b.ReportMetric(1.6e6/par.Seconds(), "rows/s")
	}
}
