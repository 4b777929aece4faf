package all_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
)

// placesBatches makes n rows like the bench's places (id, name, country,
// lat, lon, population, tags), in batches of 65536, ids in random order or
// ascending.
func placesBatches(n int, sorted bool) []arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "country", Type: arrow.BinaryTypes.String},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64},
		{Name: "lon", Type: arrow.PrimitiveTypes.Float64},
		{Name: "population", Type: arrow.PrimitiveTypes.Int64},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: "network", Type: arrow.BinaryTypes.String},
	}, nil)
	r := rand.New(rand.NewPCG(1, 2))
	ids := r.Perm(n)
	if sorted {
		for i := range ids {
			ids[i] = i
		}
	}
	var out []arrow.RecordBatch
	for from := 0; from < n; from += 65536 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := from; i < min(n, from+65536); i++ {
			id := ids[i]
			b.Field(0).(*array.Int64Builder).Append(int64(id))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("place-%08x-%d", r.Uint32(), id))
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("C%03d", r.IntN(200)))
			b.Field(3).(*array.Float64Builder).Append(r.Float64()*180 - 90)
			b.Field(4).(*array.Float64Builder).Append(r.Float64()*360 - 180)
			b.Field(5).(*array.Int64Builder).Append(r.Int64N(10_000_000))
			lb := b.Field(6).(*array.ListBuilder)
			lb.Append(true)
			for range r.IntN(4) {
				lb.ValueBuilder().(*array.StringBuilder).Append("tag")
			}
			b.Field(7).(*array.StringBuilder).Append(fmt.Sprintf("2a00:%x:%x::/48", uint32(id)>>16, uint32(id)&0xFFFF))
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

// BenchmarkWriters runs each format's writer over 200,000 places rows,
// reporting rows/s; the input is built once, outside the timing.
func BenchmarkWriters(b *testing.B) {
	const n = 200_000
	unsorted, sorted := placesBatches(n, false), placesBatches(n, true)
	cases := []struct {
		name, format string
		opts         map[string]any
		in           []arrow.RecordBatch
	}{
		{"arrow", "arrow", map[string]any{}, unsorted},
		{"kv/unsorted", "kv", map[string]any{"key": "id", "value_columns": []any{"name", "country", "lat", "lon", "population", "tags"}}, unsorted},
		{"kv/unsorted-spill", "kv", map[string]any{"key": "id", "sort_buffer": "8MiB", "value_columns": []any{"name", "country", "lat", "lon", "population", "tags"}}, unsorted},
		{"kv/sorted", "kv", map[string]any{"key": "id", "sorted": true, "value_columns": []any{"name", "country", "lat", "lon", "population", "tags"}}, sorted},
		{"kv/msgpack", "kv", map[string]any{"key": "id", "value": "msgpack", "value_columns": []any{"name", "country", "lat", "lon", "population", "tags"}}, unsorted},
		{"fst", "fst", map[string]any{"key": "name"}, unsorted},
		{"mmdb", "mmdb", map[string]any{"network": "network", "record_columns": []any{"country", "population"}, "build_epoch": 1700000000}, unsorted},
	}
	reg := all.Registry()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f, err := reg.Lookup(c.format)
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := f.Configure(c.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				w, err := cfg.NewWriter(io.Discard, c.in[0].Schema())
				if err != nil {
					b.Fatal(err)
				}
				for _, rec := range c.in {
					if err := w.Write(context.Background(), rec); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkKeyEncoding encodes int64 and string keys, row by row, as kv does.
func BenchmarkKeyEncoding(b *testing.B) {
	in := placesBatches(65536, false)[0]
	for _, cols := range [][]string{{"id"}, {"name"}, {"country", "id"}} {
		b.Run(fmt.Sprint(cols), func(b *testing.B) {
			enc, err := keyenc.New(in.Schema(), cols)
			if err != nil {
				b.Fatal(err)
			}
			var key []byte
			b.ReportAllocs()
			for b.Loop() {
				for i := range int(in.NumRows()) {
					if key, err = enc.Append(key[:0], in, i); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(in.NumRows())*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
