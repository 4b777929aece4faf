package mmdb_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/mmdb"
)

// writeNetworks writes n distinct IPv6 /48s (2a00:XXXX:YYYY::/48, in hashed
// order) with a small record each, as a database built from Spark's IP
// ranges would have.
func writeNetworks(b testing.TB, n int) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "network", Type: arrow.BinaryTypes.String},
		{Name: "city", Type: arrow.BinaryTypes.String},
		{Name: "population", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	cfg, err := mmdb.Format{}.Configure(map[string]any{"network": "network", "build_epoch": 1700000000})
	if err != nil {
		b.Fatal(err)
	}
	w, err := cfg.NewWriter(io.Discard, schema)
	if err != nil {
		b.Fatal(err)
	}
	for from := 0; from < n; from += 65536 {
		bl := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := from; i < min(from+65536, n); i++ {
			h := uint32(i) * 2654435761
			bl.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("2a00:%x:%x::/48", h>>16, h&0xFFFF))
			bl.Field(1).(*array.StringBuilder).Append("city-" + strconv.Itoa(i%5000))
			bl.Field(2).(*array.Int64Builder).Append(int64(i % 100000))
		}
		rec := bl.NewRecordBatch()
		if err := w.Write(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
		bl.Release()
	}
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPeakRSS reports mmdbwriter's peak RSS for 1M and 5M networks
// (docs/formats.md has the numbers): it builds its tree in memory.
func BenchmarkPeakRSS(b *testing.B) {
	if c := os.Getenv(formatstest.ChildEnv); c != "" {
		n, _ := strconv.Atoi(c)
		writeNetworks(b, n)
		formatstest.PrintPeakRSS()
		return
	}
	for _, n := range []int{1_000_000, 5_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				_, peak := formatstest.PeakRSS(b, "^BenchmarkPeakRSS$", strconv.Itoa(n))
				b.ReportMetric(float64(peak>>20), "peak-MB")
				b.ReportMetric(float64(peak)/float64(n), "bytes/network")
			}
		})
	}
}
