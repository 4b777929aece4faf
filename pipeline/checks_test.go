package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/publish"
)

func checkSpec(t *testing.T, checks, assetChecks string) (*Bundle, error) {
	t.Helper()
	text := `bundles:
  b:
    checks: ` + checks + `
    inputs: {in: {url: /tmp/in}}
    assets:
      t: {format: arrow, input: in, checks: ` + assetChecks + `}
      k: {format: kv, input: in, options: {key: id}}
`
	s, err := ParseSpec("spec.yaml", []byte(text), all.Registry())
	if err != nil {
		return nil, err
	}
	return s.Bundles["b"], nil
}

// The checks' spec: shorthands, merging, names, and errors that name the
// file, line and key.
func TestCheckSpec(t *testing.T) {
	b, err := checkSpec(t, `{rows: {min: 10, max_drop: "5%"}, nulls: {name: 1, country: {max: 2.5, by: country}}, unique: true}`,
		`{nulls: {name: 3}, rows: {max_growth: 50, by: country}, bounds: {lat: {min: -90, max: 90}}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := "k/nulls.country k/nulls.name k/rows.max_drop k/rows.min k/unique t/bounds.lat t/nulls.country t/nulls.name t/rows.max_growth"
	if got := strings.Join(b.CheckNames(), " "); got != want {
		t.Errorf("check names:\n got %s\nwant %s", got, want)
	}
	tc := b.checks["t"]
	if tc.Nulls["name"].Max != 3 || tc.Nulls["country"].Max != 2.5 || tc.Nulls["country"].By != "country" || tc.Rows.Min != nil {
		t.Errorf("t's merged checks: %+v", tc.CheckSpec)
	}
	if kc := b.checks["k"]; *kc.Rows.MaxDrop != 5 || kc.MaxPartitions != DefaultMaxPartitions {
		t.Errorf("k's checks: %+v", kc.CheckSpec)
	}
	for _, c := range []struct{ bundle, asset, want string }{
		{`{rows: {min: 1, max_dorp: 5}}`, `{}`, `spec.yaml:3: unknown key "max_dorp" (valid here: min, max_drop, max_growth, by)`},
		{`{}`, `{nulls: {name: {max: 1, bye: x}}}`, `unknown key "bye" (valid here: max, by)`},
		{`{}`, `{schema: {columns: {id: bigintt}}}`, `spec.yaml:6: bundle "b": schema: column "id": unknown type "bigintt"`},
		{`{}`, `{unique: true}`, `spec.yaml:6: bundle "b": asset "t": unique applies to formats with keys (kv, fst); format arrow has none`},
		{`{rows: {by: country, min: 1}}`, `{}`, `rows: by "country" compares each value with the channel's release: set max_drop or max_growth`},
		{`{nulls: {name: 120}}`, `{}`, `nulls: column "name": give a null rate of at most 100 (percent)`},
		{`{nulls: {name: "x%"}}`, `{}`, `"x%" is not a percentage`},
		{`{bounds: {lat: {min: 5, max: 1}}}`, `{}`, `bounds: column "lat": min 5 is above max 1`},
		{`{size: {}}`, `{}`, `size: set max_change (percent)`},
	} {
		_, err := checkSpec(t, c.bundle, c.asset)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checks %s / %s: got %v, want %q", c.bundle, c.asset, err, c.want)
		}
	}
}

func TestColumnTypes(t *testing.T) {
	for _, c := range []struct {
		want     string
		got      arrow.DataType
		widening bool
		ok       bool
	}{
		{"bigint", arrow.PrimitiveTypes.Int64, false, true},
		{"long", arrow.PrimitiveTypes.Int64, false, true},
		{"int", arrow.PrimitiveTypes.Int64, false, false},
		{"int", arrow.PrimitiveTypes.Int64, true, true},
		{"bigint", arrow.PrimitiveTypes.Int32, true, false}, // narrowing
		{"float", arrow.PrimitiveTypes.Float64, true, true},
		{"double", arrow.PrimitiveTypes.Int64, true, false},
		{"string", arrow.BinaryTypes.String, false, true},
		{"utf8", arrow.BinaryTypes.LargeString, false, true},
		{"timestamp", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, false, true},
		{"timestamp", &arrow.TimestampType{Unit: arrow.Microsecond}, false, false},
		{"decimal(10,2)", &arrow.Decimal128Type{Precision: 10, Scale: 2}, false, true},
		{"decimal(10,2)", &arrow.Decimal128Type{Precision: 12, Scale: 3}, true, true},
		{"decimal(10,2)", &arrow.Decimal128Type{Precision: 12, Scale: 1}, true, false}, // loses a fraction digit
		{"any", arrow.ListOf(arrow.BinaryTypes.String), false, true},
		{"list<item: utf8, nullable>", arrow.ListOf(arrow.BinaryTypes.String), false, true},
	} {
		w, err := parseColumnType(c.want)
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		if got := w.accepts(typeOf(c.got), c.widening); got != c.ok {
			t.Errorf("%s accepts %s (widening %v) = %v, want %v", c.want, c.got, c.widening, got, c.ok)
		}
	}
}

// record makes one batch: country (with nulls), name (with nulls), lat.
func record(t *testing.T, countries []*string, names []*string, lats []float64) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range countries {
		for j, v := range []*string{countries[i], names[i]} {
			if v == nil {
				b.Field(j).AppendNull()
			} else {
				b.Field(j).(*array.StringBuilder).Append(*v)
			}
		}
		b.Field(2).(*array.Float64Builder).Append(lats[i])
	}
	return b.NewRecordBatch()
}

func s(v string) *string { return &v }

// The one-pass statistics and the checks on them: per-value counts (the
// null value included), null rates per value worst first, bounds with NaN,
// a by: column with too many values, and the drop per value against a
// previous release's counts (a vanished value is a 100% drop, a new one
// passes).
func TestChecksOnRecords(t *testing.T) {
	rec := record(t,
		[]*string{s("DE"), s("DE"), s("FR"), nil, s("FR"), s("FR"), s("ES")},
		[]*string{nil, nil, s("a"), s("b"), nil, s("c"), s("d")},
		[]float64{10, 20, 91, 0, math.NaN(), -5, 1})
	defer rec.Release()
	max := Percent(10)
	drop := Percent(30)
	checks := &assetChecks{CheckSpec: CheckSpec{
		Rows:          &RowsCheck{MaxDrop: &drop, By: "country"},
		Nulls:         map[string]*NullCheck{"name": {Max: max, By: "country"}, "missing": {Max: max}},
		Bounds:        map[string]*BoundsCheck{"lat": {Min: ptr(-90.0), Max: ptr(90.0)}, "name": {Min: ptr(0.0)}},
		MaxPartitions: 10,
	}}
	st := newInputStats(rec.Schema(), []*assetChecks{checks})
	st.add(rec)
	st.add(rec) // two batches: ids carry over
	prev := &publish.Manifest{Release: "r1", Partitions: []publish.PartitionRows{{Asset: "t", Column: "country", Values: []publish.PartitionValue{
		{Null: true, Rows: 2}, {Value: "DE", Rows: 4}, {Value: "FR", Rows: 10}, {Value: "IT", Rows: 3},
	}}}, Assets: []publish.Asset{{Name: "t", Rows: 19}}}
	run := &assetRun{name: "t", input: "in", checks: checks, stats: st, schema: rec.Schema(), prev: prev, channel: "production",
		assets: []publish.Asset{{Name: "t", Rows: 14, Size: 100}}}
	got, parts := run.evaluate()
	byName := map[string]publish.Check{}
	for _, c := range got {
		byName[c.Name] = c
	}
	if len(parts) != 1 || len(parts[0].Values) != 4 || !parts[0].Values[0].Null || parts[0].Values[0].Rows != 2 ||
		parts[0].Values[1].Value != "DE" || parts[0].Values[1].Rows != 4 || parts[0].Values[2].Value != "ES" || parts[0].Values[3].Rows != 6 {
		t.Errorf("partition counts: %+v", parts)
	}
	drops := byName["t/rows.max_drop"]
	if drops.Passed || len(drops.Worst) != 2 || drops.Worst[0].Value != "IT" || drops.Worst[0].Actual != "-100% (3 -> 0 rows)" ||
		drops.Worst[1].Value != "FR" || !strings.Contains(drops.Detail, "1 new values of country") {
		t.Errorf("rows.max_drop: %+v", drops)
	}
	nulls := byName["t/nulls.name"]
	if nulls.Passed || len(nulls.Worst) != 2 || nulls.Worst[0].Value != "DE" || nulls.Worst[0].Actual != "100% null (4 of 4 rows)" ||
		nulls.Worst[1].Actual != "33.33% null (2 of 6 rows)" {
		t.Errorf("nulls.name: %+v", nulls)
	}
	if c := byName["t/nulls.missing"]; c.Passed || c.Actual != `column "missing" is not in input in` {
		t.Errorf("nulls.missing: %+v", c)
	}
	if c := byName["t/bounds.lat"]; c.Passed || c.Actual != "min -5, max 91; 4 of 14 values outside" {
		t.Errorf("bounds.lat: %+v", c) // 91 and NaN, twice
	}
	if c := byName["t/bounds.name"]; c.Passed || !strings.Contains(c.Actual, "bounds need a numeric column") {
		t.Errorf("bounds.name: %+v", c)
	}

	// More values than max_partitions: the check says so and fails.
	checks.MaxPartitions = 2
	st = newInputStats(rec.Schema(), []*assetChecks{checks})
	st.add(rec)
	run.stats = st
	got, parts = run.evaluate()
	for _, c := range got {
		if c.Name == "t/rows.max_drop" && (c.Passed || !strings.Contains(c.Actual, "more than 2 values")) {
			t.Errorf("over max_partitions: %+v", c)
		}
	}
	if !parts[0].Truncated || len(parts[0].Values) != 0 {
		t.Errorf("over max_partitions: partitions %+v", parts)
	}
}

func ptr[T any](v T) *T { return &v }

// A spec error in the last input's asset is found before the first input
// is read: no asset is sealed.
func TestPrecheckBeforeAnyInput(t *testing.T) {
	dir := t.TempDir()
	places, _ := filepath.Abs(filepath.Join("..", "testdata", "places"))
	text := `bundles:
  b:
    inputs: {a: {url: ` + places + `}, z: {url: ` + places + `}}
    assets:
      first: {format: arrow, input: a}
      last: {format: kv, input: z, options: {key: nope}}
`
	s, err := ParseSpec(filepath.Join(dir, "spec.yaml"), []byte(text), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := &Builder{Registry: all.Registry(), Version: "test", StageDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err = b.Build(context.Background(), s.Bundles["b"])
	if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("got %v, want a spec error naming the key column", err)
	}
	if strings.Contains(logs.String(), "asset sealed") || strings.Contains(logs.String(), "input read") {
		t.Errorf("an input was read before the spec error:\n%s", logs.String())
	}
}

// A file input feeds file assets only, a file asset reads a file input
// only, and takes only the size check.
func TestFileInputSpec(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{`inputs: {bin: {url: /tmp/x, format: file}}
    assets: {a: {format: arrow, input: bin}}`, `asset "a" reads input "bin", a file (format: file): only file assets can ship it`},
		{`inputs: {in: {url: /tmp/x}}
    assets: {a: {format: file, input: in}}`, `asset "a" is a file asset: its input "in" must be one file, with format: file on the input`},
		{`inputs: {bin: {url: /tmp/x, format: file}}
    assets: {a: {format: file, input: bin, checks: {rows: {min: 1}}}}`, `a file asset takes only the size check`},
		{`inputs: {bin: {url: /tmp/x, format: file}}
    assets: {a: {format: file, input: bin, options: {mode: "4755"}}}`, `mode "4755"`},
		{`inputs: {bin: {url: /tmp/x, format: zip}}
    assets: {a: {format: file, input: bin}}`, `format "zip": use file`},
	} {
		_, err := ParseSpec("spec.yaml", []byte("bundles:\n  b:\n    "+c.spec+"\n"), all.Registry())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.spec, err, c.want)
		}
	}
	text := "bundles:\n  b:\n    checks: {rows: {min: 10}, size: {max_change: 5}}\n    inputs: {bin: {url: /tmp/x, format: file}}\n    assets: {srv: {format: file, input: bin}}\n"
	s, err := ParseSpec("spec.yaml", []byte(text), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Bundles["b"].CheckNames(), " "); got != "srv/size.max_change" {
		t.Errorf("a file asset's checks from the bundle's: %s", got)
	}
}
