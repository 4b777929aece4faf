package reader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

type inner struct {
	A int32   `parquet:"a"`
	B *string `parquet:"b,optional"`
}

type nested struct {
	ID    int64            `parquet:"id"`
	Opt   *int32           `parquet:"opt,optional"`
	Words []string         `parquet:"words,list"`
	Pairs []inner          `parquet:"pairs,list"`
	Attrs map[string]int64 `parquet:"attrs"`
	Box   *inner           `parquet:"box,optional"`
	Raw   []byte           `parquet:"raw"`
	Flag  bool             `parquet:"flag"`
}

func str(s string) *string { return &s }
func i32(v int32) *int32   { return &v }

var nestedRows = []nested{
	{ID: 1, Opt: i32(7), Words: []string{"a", "b"}, Pairs: []inner{{1, str("x")}, {2, nil}}, Attrs: map[string]int64{"k": 1}, Box: &inner{3, str("y")}, Raw: []byte{0, 1}, Flag: true},
	{ID: 2, Words: []string{}, Pairs: nil, Attrs: map[string]int64{}, Box: nil, Raw: []byte{}},
	{ID: 3, Opt: i32(-1), Words: []string{"c"}, Pairs: []inner{{4, str("z")}}, Attrs: map[string]int64{"a": -5, "b": 6}, Box: &inner{5, nil}, Raw: []byte("hi")},
}

// The JSON Arrow Go gives for each row: what parquet-go wrote, in Arrow terms.
var nestedWant = []string{
	`{"attrs":[{"key":"k","value":1}],"box":{"a":3,"b":"y"},"flag":true,"id":1,"opt":7,"pairs":[{"a":1,"b":"x"},{"a":2,"b":null}],"raw":"AAE=","words":["a","b"]}`,
	`{"attrs":[],"box":null,"flag":false,"id":2,"opt":null,"pairs":[],"raw":"","words":[]}`,
	`{"attrs":[{"key":"a","value":-5},{"key":"b","value":6}],"box":{"a":5,"b":null},"flag":false,"id":3,"opt":-1,"pairs":[{"a":4,"b":"z"}],"raw":"aGk=","words":["c"]}`,
}

func writeParquet(t testing.TB, rows []nested, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[nested](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a file and returns each row as Arrow Go's JSON.
func readAll(t *testing.T, data []byte, batch int) []string {
	t.Helper()
	f, err := reader.Open(bytes.NewReader(data), int64(len(data)), "test.parquet")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	err = f.Records(context.Background(), batch, func(rec arrow.RecordBatch) error {
		for i := range int(rec.NumRows()) {
			m := map[string]any{}
			for c, col := range rec.Columns() {
				m[rec.ColumnName(c)] = col.GetOneForMarshal(i)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return err
			}
			rows = append(rows, string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestNestedRoundTrip(t *testing.T) {
	data := writeParquet(t, nestedRows)
	for _, batch := range []int{1, 2, 1000} {
		got := readAll(t, data, batch)
		if len(got) != len(nestedWant) {
			t.Fatalf("batch %d: %d rows, want %d", batch, len(got), len(nestedWant))
		}
		for i := range got {
			if got[i] != nestedWant[i] {
				t.Errorf("batch %d, row %d:\n got  %s\n want %s", batch, i, got[i], nestedWant[i])
			}
		}
	}
}

// TestPagesAndRowGroups: values cross page and row-group boundaries intact.
func TestPagesAndRowGroups(t *testing.T) {
	var rows []nested
	for i := range 5000 {
		r := nestedRows[i%3]
		r.ID = int64(i)
		rows = append(rows, r)
	}
	data := writeParquet(t, rows, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(1234))
	got := readAll(t, data, 777)
	if len(got) != 5000 {
		t.Fatalf("%d rows", len(got))
	}
	for i, g := range got {
		var m map[string]any
		json.Unmarshal([]byte(g), &m)
		if int(m["id"].(float64)) != i {
			t.Fatalf("row %d has id %v", i, m["id"])
		}
		delete(m, "id")
		var w map[string]any
		json.Unmarshal([]byte(nestedWant[i%3]), &w)
		delete(w, "id")
		gj, _ := json.Marshal(m)
		wj, _ := json.Marshal(w)
		if string(gj) != string(wj) {
			t.Fatalf("row %d:\n got  %s\n want %s", i, gj, wj)
		}
	}
}

// TestSparkOutput reads the committed Spark files: INT96 timestamps, a
// 3-level list of optional strings, required and optional columns.
func TestSparkOutput(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	parts, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "places", "part-*.parquet"))
	if len(parts) == 0 {
		t.Fatal("no committed Spark output")
	}
	data, err := os.ReadFile(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := reader.Open(bytes.NewReader(data), int64(len(data)), parts[0])
	if err != nil {
		t.Fatal(err)
	}
	want := "schema:\n  fields: 8\n    - id: type=int64\n    - name: type=utf8\n    - country: type=utf8, nullable\n    - lat: type=float64, nullable\n    - lon: type=float64, nullable\n    - population: type=int64, nullable\n    - tags: type=list<element: utf8, nullable>, nullable\n    - updated: type=timestamp[us, tz=UTC], nullable"
	if got := f.Schema().String(); got != want {
		t.Fatalf("schema:\n%s\nwant\n%s", got, want)
	}
	if v, ok := f.KeyValue("org.apache.spark.version"); !ok || v != "3.5.5" {
		t.Fatalf("spark version %q", v)
	}
	var rows int64
	f.Records(context.Background(), 0, func(rec arrow.RecordBatch) error {
		rows += rec.NumRows()
		ts := rec.Column(7).(*array.Timestamp)
		for i := range ts.Len() {
			// gen_places.py writes timestamps between 1969-12-31 and 2025.
			if ts.IsValid(i) && (ts.Value(i) < -1 || ts.Value(i) > 1_767_225_600_000_000) {
				t.Fatalf("INT96 decoded to %d", ts.Value(i))
			}
		}
		return nil
	})
	if rows != f.NumRows() || rows == 0 {
		t.Fatalf("read %d rows, footer says %d", rows, f.NumRows())
	}
}

// TestHostileFiles: malformed input is a typed error naming the file, never a panic.
func TestHostileFiles(t *testing.T) {
	good := writeParquet(t, nestedRows)
	cases := map[string][]byte{
		"empty":         {},
		"not parquet":   []byte("hello, this is not a parquet file at all"),
		"truncated":     good[:len(good)/2],
		"no tail magic": append(append([]byte{}, good[:len(good)-4]...), 'X', 'X', 'X', 'X'),
		"huge footer":   append(append([]byte{}, good[:len(good)-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'),
		"encrypted":     append([]byte("PARE"), good[4:]...),
	}
	for i := 0; i < len(good); i += 97 {
		b := append([]byte{}, good...)
		b[i] ^= 0x5a
		cases["flip at "+string(rune('a'+i%26))+strings.Repeat("'", i/26)] = b
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := reader.Open(bytes.NewReader(data), int64(len(data)), "hostile.parquet")
			if err == nil {
				err = f.Records(context.Background(), 0, func(arrow.RecordBatch) error { return nil })
			}
			if err == nil {
				return // a flip in a value can leave a valid file
			}
			if !strings.Contains(err.Error(), "hostile.parquet") {
				t.Errorf("error does not name the file: %v", err)
			}
			if !errors.Is(err, reader.ErrCorrupt) && !errors.Is(err, reader.ErrNotParquet) &&
				!errors.Is(err, reader.ErrEncrypted) && !errors.Is(err, reader.ErrUnsupported) {
				t.Errorf("untyped error: %v", err)
			}
		})
	}
	_, err := reader.Open(bytes.NewReader(cases["encrypted"]), int64(len(cases["encrypted"])), "x")
	if !errors.Is(err, reader.ErrEncrypted) || !strings.Contains(err.Error(), "encrypted parquet is not supported") {
		t.Fatalf("encrypted: %v", err)
	}
}
