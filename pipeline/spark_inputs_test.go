package pipeline

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// sparkInputs is the folder testdata/spark/gen_inputs.py wrote.
func sparkInputs(t *testing.T) string {
	t.Helper()
	return sparkOut(t, "inputs", "")
}

// sparkOut is folder sub of the Spark output make test writes; under
// CI=true a missing one fails the test. Run bare, it skips without
// LOCKSTEP_SPARK_OUT, and when sub is missing, skips saying skipMissing
// (or fails, when that is "").
func sparkOut(t *testing.T, sub, skipMissing string) string {
	t.Helper()
	dir := os.Getenv("LOCKSTEP_SPARK_OUT")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LOCKSTEP_SPARK_OUT is unset under CI=true: run `make test`")
		}
		t.Skip("LOCKSTEP_SPARK_OUT unset: run `make test` for the Spark output")
	}
	dir = filepath.Join(dir, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" || skipMissing == "" {
			t.Fatalf("no Spark output %s: %v (testdata/spark/gen_all.py writes it)", sub, err)
		}
		t.Skip(skipMissing)
	}
	return dir
}

// jsonValue encodes row i of arr the way gen_inputs.py encodes what Spark
// returns (see its doc string), as a JSON-decoded value.
func jsonValue(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return float64(a.Value(i))
	case *array.Int16:
		return float64(a.Value(i))
	case *array.Int32:
		return float64(a.Value(i))
	case *array.Int64:
		return float64(a.Value(i))
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return base64.StdEncoding.EncodeToString(a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		if u := a.DataType().(*arrow.TimestampType).Unit; u != arrow.Microsecond {
			return fmt.Sprintf("timestamp unit %s, want us", u)
		}
		return float64(a.Value(i))
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := map[string]any{}
		for f := 0; f < a.NumField(); f++ {
			m[st.Field(f).Name] = jsonValue(a.Field(f), i)
		}
		return m
	case *array.Map:
		start, end := a.ValueOffsets(i)
		pairs := []any{}
		for j := int(start); j < int(end); j++ {
			pairs = append(pairs, []any{jsonValue(a.Keys(), j), jsonValue(a.Items(), j)})
		}
		sort.Slice(pairs, func(x, y int) bool {
			kx, _ := json.Marshal(pairs[x].([]any)[0])
			ky, _ := json.Marshal(pairs[y].([]any)[0])
			return string(kx) < string(ky)
		})
		return pairs
	case *array.List:
		start, end := a.ValueOffsets(i)
		out := []any{}
		for j := int(start); j < int(end); j++ {
			out = append(out, jsonValue(a.ListValues(), j))
		}
		return out
	}
	return fmt.Sprintf("unhandled Arrow type %s", arr.DataType())
}

// scanRows reads a whole input through Discover/Schema/Scan into JSON rows,
// in the canonical order.
func scanRows(t *testing.T, url string, opts DiscoverOptions) (*Source, []Skipped, []map[string]any) {
	t.Helper()
	ctx := context.Background()
	src, skipped, err := DiscoverWith(ctx, "spark", url, opts)
	if err != nil {
		t.Fatalf("discover %s: %v", url, err)
	}
	t.Cleanup(func() { src.Close() })
	schema, err := src.Schema(ctx)
	if err != nil {
		t.Fatalf("schema %s: %v", url, err)
	}
	var rows []map[string]any
	n, _, err := src.Scan(ctx, schema, func(rec arrow.RecordBatch) error {
		for r := 0; r < int(rec.NumRows()); r++ {
			row := map[string]any{}
			for c, f := range rec.Schema().Fields() {
				row[f.Name] = jsonValue(rec.Column(c), r)
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", url, err)
	}
	if n != int64(len(rows)) {
		t.Fatalf("scan %s: counted %d rows, gave %d", url, n, len(rows))
	}
	return src, skipped, rows
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// TestSparkStreamingSink: a real Structured Streaming sink (trigger once)
// is refused, naming its _spark_metadata/ log, rather than read file by file.
func TestSparkStreamingSink(t *testing.T) {
	dir := filepath.Join(sparkInputs(t), "streaming")
	_, _, err := DiscoverWith(context.Background(), "s", "file://"+dir, DiscoverOptions{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "_spark_metadata") {
		t.Fatalf("streaming sink: %v", err)
	}
}

// TestSparkInputs reads every case gen_inputs.py wrote and compares each
// value with what Spark itself read back.
func TestSparkInputs(t *testing.T) {
	dir := sparkInputs(t)
	cases := map[string]func(t *testing.T, src *Source, skipped []Skipped){
		"partitioned": func(t *testing.T, src *Source, _ []Skipped) {
			if len(src.Partitions) != 2 || src.Partitions[0].Name != "p" || src.Partitions[1].Type.ID() != arrow.INT32 {
				t.Errorf("partitions %+v, want p string, q int", src.Partitions)
			}
		},
		"ts_int96": nil, "ts_micros": nil, "decimals": nil, "nested": nil,
		"rollover": func(t *testing.T, src *Source, _ []Skipped) {
			if len(src.Files) != 4 {
				t.Errorf("maxRecordsPerFile=300 over 1000 rows: %d files, want 4", len(src.Files))
			}
		},
		"empty": func(t *testing.T, src *Source, _ []Skipped) {
			if len(src.Files) != 1 {
				t.Errorf("empty output: %d files, want Spark's one footer-only file", len(src.Files))
			}
		},
		"temporary": func(t *testing.T, src *Source, skipped []Skipped) {
			n := 0
			for _, s := range skipped {
				if strings.HasPrefix(s.Path, "_temporary/") && strings.HasSuffix(s.Path, ".parquet") {
					n++
				}
			}
			if n != 2 {
				t.Errorf("skipped %+v: want both parquet files under _temporary/", skipped)
			}
		},
		"partition_in_file": func(t *testing.T, src *Source, _ []Skipped) {
			if len(src.Partitions) != 1 || src.Partitions[0].Name != "country" {
				t.Errorf("partitions %+v, want country", src.Partitions)
			}
		},
		"nullable_union": func(t *testing.T, src *Source, _ []Skipped) {
			if f, ok := src.schema.FieldsByName("name"); !ok || !f[0].Nullable {
				t.Errorf("name is not nullable in the union: %s", src.schema)
			}
		},
		"delta": func(t *testing.T, src *Source, skipped []Skipped) {
			if src.DeltaVersion == nil || *src.DeltaVersion != 2 {
				t.Errorf("Delta version %v, want 2 (write, update, delete)", src.DeltaVersion)
			}
			if len(skipped) == 0 {
				t.Error("no file skipped: the update and delete left files the log removed")
			}
		},
		"delta_dv":      checkDVs(1, 60-40),
		"delta_dv_part": checkDVs(2, 60-40),
		"delta_cm_name": checkMapping("name"),
		"delta_cm_id":   checkMapping("id"),
		"delta_cm_dv": func(t *testing.T, src *Source, skipped []Skipped) {
			checkMapping("name")(t, src, skipped)
			checkDVs(-1, -1)(t, src, skipped)
		},
	}
	values := 0
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			delta := strings.HasPrefix(name, "delta")
			if _, err := os.Stat(path); err != nil && delta && os.Getenv("CI") != "true" {
				t.Skip("no Delta table: LOCKSTEP_SPARK_JARS had no delta-spark")
			}
			src, skipped, got := scanRows(t, "file://"+path, DiscoverOptions{RequireSuccess: !delta})
			want := readJSONL(t, path+".jsonl")
			if check != nil {
				check(t, src, skipped)
			}
			values += sameRows(t, got, want)
		})
	}
	t.Logf("%d values compared with Spark's", values)
}

// sameRows compares rows read with Spark's (sorted by id), value by value,
// and returns how many values it compared.
func sameRows(t *testing.T, got, want []map[string]any) int {
	t.Helper()
	values := 0
	sort.SliceStable(got, func(i, j int) bool { return got[i]["id"].(float64) < got[j]["id"].(float64) })
	if len(got) != len(want) {
		t.Fatalf("%d rows, Spark read %d", len(got), len(want))
	}
	for i := range want {
		for col, w := range want[i] {
			if g := got[i][col]; !reflect.DeepEqual(g, w) {
				t.Errorf("row id=%v column %s: lockstep %#v, Spark %#v", want[i]["id"], col, g, w)
			}
			values++
		}
		if len(got[i]) != len(want[i]) {
			t.Errorf("row id=%v: columns %v, Spark's %v", want[i]["id"], keys(got[i]), keys(want[i]))
		}
	}
	return values
}

// checkDVs: the table has files files (-1: any number), all with deletion
// vectors, which delete deleted rows in all (-1: at least one).
func checkDVs(files int, deleted int64) func(*testing.T, *Source, []Skipped) {
	return func(t *testing.T, src *Source, _ []Skipped) {
		var n int64
		for _, f := range src.Files {
			if f.DeletionVector == "" && files >= 0 {
				t.Errorf("file %s has no deletion vector", f.Path)
			}
			n += f.DeletedRows
		}
		if (files >= 0 && len(src.Files) != files) || (deleted >= 0 && n != deleted) || n == 0 {
			t.Errorf("%d files deleting %d rows, want %d files deleting %d", len(src.Files), n, files, deleted)
		}
	}
}

// checkMapping: the table is column-mapped, and the schema read has the
// logical names after the renames and the drop.
func checkMapping(mode string) func(*testing.T, *Source, []Skipped) {
	return func(t *testing.T, src *Source, _ []Skipped) {
		if src.mapping == nil || src.mapping.mode != mode {
			t.Fatalf("column mapping %+v, want mode %s", src.mapping, mode)
		}
		var names []string
		for _, f := range src.schema.Fields() {
			names = append(names, f.Name)
		}
		want := []string{"id", "label", "st", "arr", "m", "score", "note", "tags", "segment"}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("columns %v, want %v", names, want)
		}
		st, _ := src.schema.FieldsByName("st")
		if len(st) != 1 || st[0].Type.ID() != arrow.STRUCT || st[0].Type.(*arrow.StructType).Field(1).Name != "why" {
			t.Errorf("st is %v, want struct<x, why>", st)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSparkOrder checks the canonical order on Spark's own rollover files:
// by path (c000, c001, ...), then row, which here is id order.
func TestSparkOrder(t *testing.T) {
	_, _, rows := scanRows(t, "file://"+filepath.Join(sparkInputs(t), "rollover"), DiscoverOptions{RequireSuccess: true})
	for i, r := range rows {
		if r["id"].(float64) != float64(i) {
			t.Fatalf("row %d has id %v: the canonical order is broken", i, r["id"])
		}
	}
}

// TestDeltaColumnMappingByID: in id mode columns are found by Parquet field
// id. Spark's id-mode table with every physical name in its log changed
// still reads as Spark read it; the same log in name mode finds no column
// but the partition's, which shows the ids, not the names, did the work.
func TestDeltaColumnMappingByID(t *testing.T) {
	table := filepath.Join(sparkInputs(t), "delta_cm_id")
	want := readJSONL(t, table+".jsonl")
	for _, mode := range []string{"id", "name"} {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(table)); err != nil {
			t.Fatal(err)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "_delta_log", "*.json"))
		for _, p := range logs {
			data, _ := os.ReadFile(p)
			s := strings.ReplaceAll(string(data), `physicalName\":\"col-`, `physicalName\":\"renamed-`)
			s = strings.ReplaceAll(s, `"delta.columnMapping.mode":"id"`, `"delta.columnMapping.mode":"`+mode+`"`)
			// Partition values stay keyed by the physical name the log gives.
			s = strings.ReplaceAll(s, `"partitionValues":{"col-`, `"partitionValues":{"renamed-`)
			os.WriteFile(p, []byte(s), 0o644)
		}
		src, _, got := scanRows(t, "file://"+dir, DiscoverOptions{})
		switch mode {
		case "id":
			sort.SliceStable(got, func(i, j int) bool { return got[i]["id"].(float64) < got[j]["id"].(float64) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("id mode with renamed physical names: %d rows differ from Spark's %d", len(got), len(want))
			}
		case "name":
			// No file column has a physical name the log gives: every
			// column is read as the nulls of a column no file holds.
			for _, row := range got {
				for col, v := range row {
					if v != nil && col != "segment" {
						t.Fatalf("name mode with renamed physical names: column %s is %v, want null", col, v)
					}
				}
			}
			if len(got) != len(want) || src.schema.NumFields() != len(want[0]) {
				t.Errorf("name mode: %d rows of %d columns, want %d of %d", len(got), src.schema.NumFields(), len(want), len(want[0]))
			}
		}
	}
}
