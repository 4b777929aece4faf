package reader_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// patchFooter rewrites a Parquet file's footer through edit.
func patchFooter(t *testing.T, data []byte, edit func(*format.FileMetaData)) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	start := len(data) - 8 - n
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), data[start:len(data)-8], &md); err != nil {
		t.Fatal(err)
	}
	edit(&md)
	foot, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte{}, data[:start]...), foot...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(foot)))
	return append(out, "PAR1"...)
}

type strRow struct {
	S string `parquet:"s,zstd"`
}

// Bug 1: parquet-go v0.32 decodes lz4_raw_compressed_larger.parquet to 10000
// empty strings. lockstep's own LZ4_RAW decoder reads the real values, and
// checkPage refuses any byte-array page whose offsets do not cover its data.
func TestLZ4RawLargerValues(t *testing.T) {
	root := fixtures(t)
	var vals []string
	r := readFile(filepath.Join(root, "parquet-testing/data/lz4_raw_compressed_larger.parquet"), func(rec arrow.RecordBatch) error {
		a := rec.Column(0).(*array.String)
		for i := range a.Len() {
			vals = append(vals, a.Value(i))
		}
		return nil
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(vals) != 10000 {
		t.Fatalf("%d values", len(vals))
	}
	// pyarrow: the first value is a 36-character UUID string.
	for i, v := range vals {
		if len(v) != 36 || strings.Count(v, "-") != 4 {
			t.Fatalf("value %d is %q, want a UUID", i, v)
		}
	}
	if vals[0] != "c7ce6bef-d5b0-4863-b199-8ea8c7fb117b" {
		t.Fatalf("first value %q", vals[0])
	}
}

// Bug 2: string data is bounded: a column chunk beyond MaxColumnChunk is
// refused before it is read, and batches are cut by bytes as well as rows.
func TestStringBytesBounded(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	rows := make([]strRow, 300)
	for i := range rows {
		rows[i] = strRow{S: big[:len(big)-i]}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[strRow](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()

	_, err := reader.OpenLimits(bytes.NewReader(data), int64(len(data)), "big.parquet",
		reader.Limits{MaxFooter: 64 << 20, MaxRows: 1 << 20, MaxColumnChunk: 100 << 20, BatchBytes: 32 << 20})
	if !errors.Is(err, reader.ErrLimit) || !strings.Contains(err.Error(), "big.parquet") || !strings.Contains(err.Error(), `"s"`) {
		t.Fatalf("300 MiB chunk with a 100 MiB limit: %v", err)
	}

	f, err := reader.OpenLimits(bytes.NewReader(data), int64(len(data)), "big.parquet",
		reader.Limits{MaxFooter: 64 << 20, MaxRows: 1 << 20, MaxColumnChunk: 512 << 20, BatchBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	batches, seen := 0, 0
	err = f.Records(context.Background(), 0, func(rec arrow.RecordBatch) error {
		batches++
		a := rec.Column(0).(*array.String)
		if offs := a.ValueOffsets(); offs[len(offs)-1]-offs[0] > 33<<20 {
			t.Errorf("batch %d holds %d bytes of strings (budget 32 MiB)", batches, offs[len(offs)-1]-offs[0])
		}
		for i := range a.Len() {
			if len(a.Value(i)) != len(big)-seen {
				t.Fatalf("row %d: %d bytes", seen, len(a.Value(i)))
			}
			seen++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 300 || batches < 9 {
		t.Fatalf("%d rows in %d batches; want 300 rows in ≥ 9 batches of ≤ 32 MiB", seen, batches)
	}
}

// Bug 3: INT96 arithmetic is checked: out of int64 microseconds, or a
// nanosecond-of-day beyond a day, is ErrCorrupt naming the column.
func TestINT96Range(t *testing.T) {
	int96 := func(nanos int64, day uint32) parquet.Value {
		var b [12]byte
		binary.LittleEndian.PutUint64(b[:], uint64(nanos))
		binary.LittleEndian.PutUint32(b[8:], day)
		return parquet.ValueOf(b)
	}
	cases := []struct {
		name  string
		nanos int64
		day   uint32
		want  int64 // micros; -1 for an error
	}{
		{"epoch", 0, 2440588, 0},
		{"0001-01-01", 0, 1721426, -62135596800000000},
		{"9999-12-31 23:59:59.999999", 86_399_999_999_000, 5373484, 253402300799999999},
		{"year 290000 BC wraps", 0, uint32(0xffffffff - 105862231), -1},
		{"a day and a bit of nanoseconds", 86_400_000_000_001, 2440588, -1},
	}
	schema := parquet.NewSchema("spark_schema", parquet.Group{"t": parquet.Leaf(parquet.Int96Type)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := parquet.NewWriter(&buf, schema)
			if _, err := w.WriteRows([]parquet.Row{{int96(c.nanos, c.day).Level(0, 0, 0)}}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			f, err := reader.Open(bytes.NewReader(data), int64(len(data)), "ts.parquet")
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			err = f.Records(context.Background(), 0, func(rec arrow.RecordBatch) error {
				got = int64(rec.Column(0).(*array.Timestamp).Value(0))
				return nil
			})
			if c.want == -1 {
				if !errors.Is(err, reader.ErrCorrupt) || !strings.Contains(err.Error(), `"t"`) {
					t.Fatalf("want ErrCorrupt naming column t, got %v (value %d)", err, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

// Bug 4: a panic in the consumer stays a panic; it is not "corrupt parquet".
func TestConsumerPanicNotCorrupt(t *testing.T) {
	data := writeParquet(t, nestedRows)
	f, err := reader.Open(bytes.NewReader(data), int64(len(data)), "p.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != "writer bug" {
			t.Fatalf("recovered %v, want the consumer's own panic", r)
		}
	}()
	err = f.Records(context.Background(), 0, func(arrow.RecordBatch) error { panic("writer bug") })
	t.Fatalf("Records returned %v instead of panicking", err)
}

// Bug 5: rows beyond the footer's count are corrupt, not silently dropped.
func TestExtraRowsRefused(t *testing.T) {
	data := writeParquet(t, nestedRows)
	bad := patchFooter(t, data, func(md *format.FileMetaData) {
		md.NumRows--
		md.RowGroups[0].NumRows--
	})
	f, err := reader.Open(bytes.NewReader(bad), int64(len(bad)), "extra.parquet")
	if err != nil {
		t.Fatal(err)
	}
	err = f.Records(context.Background(), 0, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, reader.ErrCorrupt) || !strings.Contains(err.Error(), "more rows than the footer") {
		t.Fatalf("got %v", err)
	}
}

// Bug 6: an INT annotation wider than its physical type is refused.
func TestIntWidthChecked(t *testing.T) {
	data := writeParquet(t, nestedRows)
	bad := patchFooter(t, data, func(md *format.FileMetaData) {
		for i := range md.Schema {
			if md.Schema[i].Name == "opt" { // INT32
				md.Schema[i].LogicalType.Value = &format.IntType{BitWidth: 64, IsSigned: true}
			}
		}
	})
	_, err := reader.Open(bytes.NewReader(bad), int64(len(bad)), "width.parquet")
	if !errors.Is(err, reader.ErrCorrupt) || !strings.Contains(err.Error(), `"opt"`) || !strings.Contains(err.Error(), "INT(64)") {
		t.Fatalf("got %v", err)
	}
}

// Bug 7: Spark maps with struct keys (Delta's column-mapping tables) read.
func TestStructMapKeys(t *testing.T) {
	root := fixtures(t)
	matches, _ := filepath.Glob(filepath.Join(root, "delta-golden/table-with-columnmapping-mode-name/part-00000-*.parquet"))
	if len(matches) != 1 {
		t.Fatalf("fixture missing: %v", matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := reader.Open(bytes.NewReader(data), int64(len(data)), matches[0])
	if err != nil {
		t.Fatal(err)
	}
	// Its values are compared with pyarrow's in TestCorpusValues.
	if !strings.Contains(f.Schema().String(), "map<list<element: int32, nullable>, struct<") {
		t.Fatalf("no list-keyed map in\n%s", f.Schema())
	}
	if r := readFile(matches[0], nil); r.err != nil || r.rows == 0 {
		t.Fatalf("rows %d, err %v", r.rows, r.err)
	}
}
