package reader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
)

type flatRow struct {
	I8   int8       `parquet:"i8"`
	OI8  *int8      `parquet:"oi8,optional"`
	I16  int16      `parquet:"i16"`
	U8   uint8      `parquet:"u8"`
	U16  uint16     `parquet:"u16"`
	U32  uint32     `parquet:"u32"`
	U64  uint64     `parquet:"u64"`
	I32  int32      `parquet:"i32"`
	OI32 *int32     `parquet:"oi32,optional"`
	DI32 int32      `parquet:"di32,dict"`
	I64  int64      `parquet:"i64"`
	OI64 *int64     `parquet:"oi64,optional,dict"`
	F32  float32    `parquet:"f32"`
	F64  *float64   `parquet:"f64,optional"`
	S    string     `parquet:"s"`
	OS   *string    `parquet:"os,optional"`
	DS   string     `parquet:"ds,dict"`
	ODS  *string    `parquet:"ods,optional,dict"`
	B    []byte     `parquet:"b"`
	OB   []byte     `parquet:"ob,optional"`
	D    int32      `parquet:"d,date"`
	TS   time.Time  `parquet:"ts,timestamp(microsecond)"`
	OTS  *time.Time `parquet:"ots,optional,timestamp(millisecond)"`
	Tags []string   `parquet:"tags,list"` // not flat: the general path beside the fast one
}

func randFlatRows(r *rand.Rand, n int) []flatRow {
	words := []string{"", "a", "zürich", "日本", "a much longer value that takes more bytes than the others"}
	ptr := func() bool { return r.IntN(4) != 0 }
	rows := make([]flatRow, n)
	for i := range rows {
		x := &rows[i]
		x.I8, x.I16, x.U8, x.U16 = int8(r.Int()), int16(r.Int()), uint8(r.Int()), uint16(r.Int())
		x.U32, x.U64, x.I32, x.I64 = r.Uint32(), r.Uint64(), int32(r.Uint32()), int64(r.Uint64())
		x.DI32 = int32(r.IntN(5)) - 2
		x.F32 = float32(r.NormFloat64())
		x.S, x.DS = fmt.Sprint(r.Uint64()), words[r.IntN(len(words))]
		x.B = []byte(words[r.IntN(len(words))])
		x.D = int32(r.IntN(40000))
		x.TS = time.UnixMicro(r.Int64N(4e15)).UTC()
		if ptr() {
			v := int8(r.Int())
			x.OI8 = &v
		}
		if ptr() {
			v := int32(r.Int())
			x.OI32 = &v
		}
		if ptr() {
			v := int64(r.IntN(3))
			x.OI64 = &v
		}
		if ptr() {
			v := r.Float64()
			x.F64 = &v
		}
		if ptr() {
			v := words[r.IntN(len(words))]
			x.OS = &v
		}
		if ptr() {
			v := words[r.IntN(len(words))]
			x.ODS = &v
		}
		if ptr() {
			x.OB = []byte(words[r.IntN(len(words))])
		}
		if ptr() {
			v := time.UnixMilli(r.Int64N(4e12)).UTC()
			x.OTS = &v
		}
		for range r.IntN(3) {
			x.Tags = append(x.Tags, words[r.IntN(len(words))])
		}
	}
	return rows
}

// readJSON reads every record of data, with the flat path on or off, and
// returns the batches' sizes and rows as JSON.
func readJSON(t *testing.T, data []byte, flat bool, batchRows int, batchBytes int64) []string {
	t.Helper()
	defer func(old bool) { flatColumns = old }(flatColumns)
	flatColumns = flat
	lim := DefaultLimits
	lim.BatchBytes = batchBytes
	f, err := OpenLimits(bytes.NewReader(data), int64(len(data)), "flat.parquet", lim)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = f.Records(context.Background(), batchRows, func(rec arrow.RecordBatch) error {
		out = append(out, fmt.Sprintf("batch of %d", rec.NumRows()))
		for c, col := range rec.Columns() {
			if !arrow.TypeEqual(col.DataType(), rec.Schema().Field(c).Type) {
				return fmt.Errorf("column %d: array type %s, schema %s", c, col.DataType(), rec.Schema().Field(c).Type)
			}
		}
		for i := range int(rec.NumRows()) {
			m := map[string]any{}
			for c, col := range rec.Columns() {
				m[rec.ColumnName(c)] = col.GetOneForMarshal(i)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return err
			}
			out = append(out, string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("flat %v, batch %d, budget %d: %v", flat, batchRows, batchBytes, err)
	}
	return out
}

// TestFlatMatchesGeneral: flat columns read straight from pages give the
// same batches and values as the general path, across pages, row groups,
// dictionaries, nulls, batch sizes and byte budgets that cut batches (a
// budget of 300 bytes makes several columns cut one batch, which lost the
// rows the first cut gave back before unread kept them).
func TestFlatMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for round := range 4 {
		rows := randFlatRows(r, 1+r.IntN(3000))
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[flatRow](&buf, parquet.PageBufferSize(1+r.IntN(4096)), parquet.MaxRowsPerRowGroup(int64(1+r.IntN(2000))))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, batch := range []int{1, 7, 1000, 65536} {
			for _, budget := range []int64{1, 300, 64 << 20} {
				want := readJSON(t, buf.Bytes(), false, batch, budget)
				got := readJSON(t, buf.Bytes(), true, batch, budget)
				if len(got) != len(want) {
					t.Fatalf("round %d, batch %d, budget %d: %d lines, want %d", round, batch, budget, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("round %d, batch %d, budget %d, line %d:\n got  %s\n want %s", round, batch, budget, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkRecords decodes 200,000 rows of flat columns (and one list)
// into Arrow batches, through the flat path and through parquet.Value.
func BenchmarkRecords(b *testing.B) {
	rows := randFlatRows(rand.New(rand.NewPCG(15, 16)), 200_000)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[flatRow](&buf)
	if _, err := w.Write(rows); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	for _, flat := range []bool{true, false} {
		b.Run(fmt.Sprintf("flat=%v", flat), func(b *testing.B) {
			defer func(old bool) { flatColumns = old }(flatColumns)
			flatColumns = flat
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := Open(bytes.NewReader(data), int64(len(data)), "bench.parquet")
				if err != nil {
					b.Fatal(err)
				}
				if err := f.Records(context.Background(), 0, func(arrow.RecordBatch) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
