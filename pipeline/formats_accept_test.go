package pipeline_test

// Acceptance tests of the server formats on real Spark output (issue 4):
// each asset is built by the pipeline from testdata/spark/gen_formats.py's
// output and read back by a reader no one here wrote (sst_dump and ldb from
// rocksdb-tools, mmdblookup from mmdb-bin, pyarrow), or for `fst`, whose
// format only vellum reads, compared with a brute-force scan of the source.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/formats/fst"
	"github.com/lockstep-data/lockstep/pipeline"
)

// need returns env's value; under CI=true a missing one fails the test,
// run bare it skips.
func need(t *testing.T, env, what string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is unset under CI=true: %s is missing (run `make test`)", env, what)
	}
	t.Skipf("%s unset: run `make test` for %s", env, what)
	return ""
}

// needTool is need for a program on PATH.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found under CI=true: install Debian %s (scripts/testenv install)", name, pkg)
	}
	t.Skipf("%s not found: install Debian %s, or run `make test`", name, pkg)
	return ""
}

func buildSpec(t *testing.T, text string) (*pipeline.BuildResult, error) {
	t.Helper()
	s, err := pipeline.ParseSpec("accept.yaml", []byte(text), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Bundle("")
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	bl := &pipeline.Builder{Registry: all.Registry(), Version: "test", StageDir: stage}
	res, err := bl.Build(context.Background(), b)
	if err != nil {
		// Nothing may be left staged.
		left, _ := filepath.Glob(filepath.Join(stage, "*", "*"))
		if len(left) != 0 {
			t.Errorf("a failed build left %v", left)
		}
	}
	return res, err
}

type sampleRow struct {
	ID         int64    `json:"id"`
	Key        string   `json:"key"`
	Country    string   `json:"country"`
	Population *int64   `json:"population"`
	Tags       []string `json:"tags"`
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func kvKey(id int64) string {
	return strings.ToUpper(hex.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(id)^1<<63)))
}

// wantValue is the JSON value the kv assets hold for a sample row.
func wantValue(r sampleRow) map[string]any {
	var m map[string]any
	data, _ := json.Marshal(map[string]any{"key": r.Key, "country": r.Country, "population": r.Population, "tags": r.Tags})
	_ = json.Unmarshal(data, &m)
	return m
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const kvSpec = `bundles:
  formats:
    inputs: {rows: {url: DIR/kv_1m}}
    assets:
      kv_none:   {format: kv, input: rows, options: {key: id, value_columns: [key, country, population, tags], compression: none}}
      kv_snappy: {format: kv, input: rows, options: {key: id, value_columns: [key, country, population, tags], compression: snappy}}
      kv_zstd:   {format: kv, input: rows, options: {key: id, value_columns: [key, country, population, tags], compression: zstd, sort_buffer: 16MiB}}
      kv_shards: {format: kv, input: rows, options: {key: id, value_columns: [key, country, population, tags], shards: 2}}
      table:     {format: arrow, input: rows, options: {compression: zstd}}
      sorted:    {format: arrow, input: rows, options: {columns: [id, key, country, population, tags], rename: {key: name}, sort_by: [country, id], batch_rows: 50000, compression: lz4, sort_buffer: 32MiB}}
`

func TestFormatsAcceptance(t *testing.T) {
	dir := need(t, "LOCKSTEP_SPARK_OUT", "Spark output")
	sstDump := needTool(t, "sst_dump", "rocksdb-tools")
	ldb := needTool(t, "ldb", "rocksdb-tools")
	res, err := buildSpec(t, strings.ReplaceAll(kvSpec, "DIR", dir))
	if err != nil {
		t.Fatal(err)
	}
	sample := readJSONL[sampleRow](t, filepath.Join(dir, "kv_1m.sample.jsonl"))
	if len(sample) != 1000 {
		t.Fatalf("%d sample rows", len(sample))
	}
	var shardRows int64
	for _, a := range res.Assets {
		if strings.HasPrefix(a.Name, "kv_shards-") {
			shardRows += a.Rows
			continue
		}
		if a.Rows != 1_000_000 {
			t.Fatalf("asset %s: %d rows", a.Name, a.Rows)
		}
	}
	if shardRows != 1_000_000 {
		t.Fatalf("the kv_shards-* assets hold %d rows, want 1000000", shardRows)
	}
	asset := func(name string) string { return filepath.Join(res.Dir, name) }
	t.Run("kv shards", func(t *testing.T) { kvShards(t, sstDump, ldb, asset, sample) })

	t.Run("kv scan", func(t *testing.T) {
		out := run(t, sstDump, "--file="+asset("kv_snappy.sst"), "--command=scan", "--output_hex")
		line := regexp.MustCompile(`^'([0-9A-F]*)' seq:\d+, type:\d+ => ([0-9A-F]*)$`)
		got := map[string]string{}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			m := line.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			n++
			got[m[1]] = m[2]
		}
		if n != 1_000_000 {
			t.Fatalf("sst_dump scanned %d entries, want 1000000", n)
		}
		for _, r := range sample {
			v, ok := got[kvKey(r.ID)]
			if !ok {
				t.Fatalf("sst_dump: no key for id %d", r.ID)
			}
			checkValue(t, "sst_dump", r, v)
		}
	})
	for _, c := range []string{"none", "snappy", "zstd"} {
		t.Run("kv "+c, func(t *testing.T) {
			file := asset("kv_" + c + ".sst")
			out := run(t, sstDump, "--file="+file, "--command=check")
			if strings.Contains(strings.ToLower(out), "corrupt") {
				t.Fatalf("sst_dump check: %s", out)
			}
			db := t.TempDir()
			run(t, ldb, "--db="+db, "--create_if_missing", "ingest_extern_sst", file)
			step := 1
			if c != "snappy" {
				step = 25 // every sample through ldb get once; 40 per other compression
			}
			for i := 0; i < len(sample); i += step {
				r := sample[i]
				out := strings.TrimSpace(run(t, ldb, "--db="+db, "--hex", "get", "0x"+kvKey(r.ID)))
				checkValue(t, "ldb get", r, strings.TrimPrefix(out, "0x"))
			}
			count := strings.Count(run(t, ldb, "--db="+db, "--hex", "scan"), "\n")
			if count != 1_000_000 {
				t.Fatalf("ldb scan: %d entries", count)
			}
		})
	}
	t.Run("arrow pyarrow", func(t *testing.T) {
		py := need(t, "LOCKSTEP_PYTHON", "pyarrow")
		script := `import json, sys, pyarrow as pa, pyarrow.compute as pc
t = pa.ipc.open_file(sys.argv[1]).read_all()
want = {r["id"]: r for r in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
assert t.num_rows == 1000000, t.num_rows
got = {r["id"]: r for r in t.filter(pc.is_in(t["id"], value_set=pa.array(list(want)))).to_pylist()}
for i, w in want.items():
    g = got[i]
    for k in w:
        assert g[k] == w[k], (i, k, g[k], w[k])
print("ok", len(got))`
		out := run(t, py, "-c", script, asset("table.arrow"), filepath.Join(dir, "kv_1m.sample.jsonl"))
		if !strings.HasPrefix(out, "ok 1000") {
			t.Fatalf("pyarrow: %s", out)
		}
	})
	t.Run("arrow sorted pyarrow", func(t *testing.T) {
		py := need(t, "LOCKSTEP_PYTHON", "pyarrow")
		script := `import json, sys, pyarrow as pa, pyarrow.compute as pc
r = pa.ipc.open_file(sys.argv[1])
sizes = [r.get_batch(i).num_rows for i in range(r.num_record_batches)]
assert sizes == [50000] * 20, sizes
t = r.read_all()
assert t.column_names == ["id", "name", "country", "population", "tags"], t.column_names
pairs = list(zip(t["country"].to_pylist(), t["id"].to_pylist()))
assert pairs == sorted(pairs, key=lambda p: (p[0] is not None, p[0] or "", p[1])), "not sorted by (country, id)"
want = {r["id"]: r for r in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
got = {r["id"]: r for r in t.filter(pc.is_in(t["id"], value_set=pa.array(list(want)))).to_pylist()}
for i, w in want.items():
    g = got[i]
    assert g["name"] == w["key"] and g["country"] == w["country"] and g["population"] == w["population"] and g["tags"] == w["tags"], (i, g, w)
print("ok", len(got))`
		out := run(t, py, "-c", script, asset("sorted.arrow"), filepath.Join(dir, "kv_1m.sample.jsonl"))
		if !strings.HasPrefix(out, "ok 1000") {
			t.Fatalf("pyarrow: %s", out)
		}
	})
}

func checkValue(t *testing.T, who string, r sampleRow, hexValue string) {
	t.Helper()
	raw, err := hex.DecodeString(hexValue)
	if err != nil {
		t.Fatalf("%s: value of id %d is not hex: %q", who, r.ID, hexValue)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: value of id %d: %v: %s", who, r.ID, err, raw)
	}
	if want := wantValue(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: id %d: %v, want %v", who, r.ID, got, want)
	}
}

// TestFSTAcceptance: exact and prefix lookups of the 1,000 sampled keys
// equal a brute-force answer over every source key (read from an arrow
// asset of the same input; pyarrow checks that format).
func TestFSTAcceptance(t *testing.T) {
	dir := need(t, "LOCKSTEP_SPARK_OUT", "Spark output")
	spec := "bundles:\n  f:\n    inputs: {rows: {url: " + dir + "/kv_1m}}\n    assets:\n" +
		"      names: {format: fst, input: rows, options: {key: key, value: id}}\n" +
		"      table: {format: arrow, input: rows, options: {columns: [key, id]}}\n"
	res, err := buildSpec(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	sample := readJSONL[sampleRow](t, filepath.Join(dir, "kv_1m.sample.jsonl"))
	if len(sample) != 1000 {
		t.Fatalf("%d sample rows", len(sample))
	}
	start := time.Now()
	fstBruteForce(t, filepath.Join(res.Dir, "names.fst"), filepath.Join(res.Dir, "table.arrow"), sample)
	t.Logf("lookups checked against the brute force in %.1fs", time.Since(start).Seconds())
}

// sourceKeys is every source key and value, sorted by key, in one arena so
// that the million keys cost the garbage collector nothing to scan.
type sourceKeys struct {
	arena []byte
	ents  []struct {
		off, n int
		val    uint64
	}
}

func (s *sourceKeys) key(i int) []byte { e := s.ents[i]; return s.arena[e.off : e.off+e.n] }

// from is the first entry whose key is >= p.
func (s *sourceKeys) from(p string) int {
	return sort.Search(len(s.ents), func(i int) bool { return string(s.key(i)) >= p })
}

func fstBruteForce(t *testing.T, fstPath, arrowPath string, sample []sampleRow) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var src sourceKeys
	f, err := os.Open(arrowPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fr.NumRecords() {
		rec, _ := fr.RecordBatch(i)
		keys := rec.Column(int(rec.Schema().FieldIndices("key")[0])).(*array.String)
		ids := rec.Column(int(rec.Schema().FieldIndices("id")[0])).(*array.Int64)
		for j := range keys.Len() {
			k := keys.Value(j)
			src.ents = append(src.ents, struct {
				off, n int
				val    uint64
			}{len(src.arena), len(k), uint64(ids.Value(j))})
			src.arena = append(src.arena, k...)
		}
	}
	sort.Slice(src.ents, func(a, b int) bool { return string(src.key(a)) < string(src.key(b)) })
	for i := 1; i < len(src.ents); i++ {
		if string(src.key(i)) == string(src.key(i-1)) {
			t.Fatalf("source key %q twice", src.key(i))
		}
	}
	data, _ := os.ReadFile(fstPath)
	r, err := fst.Format{}.Open(strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Rows() != int64(len(src.ents)) {
		t.Fatalf("fst has %d keys, the source %d", r.Rows(), len(src.ents))
	}
	// The reader is safe for concurrent lookups: check half the sample on
	// each core.
	ctx := context.Background()
	check := func(i int, s sampleRow) error {
		j := src.from(s.Key)
		if j == len(src.ents) || string(src.key(j)) != s.Key {
			return fmt.Errorf("sample key %q is not in the source", s.Key)
		}
		res, err := r.Query(ctx, []string{s.Key}, 2)
		if err != nil || len(res.Rows) != 1 || res.Rows[0][1] != src.ents[j].val {
			return fmt.Errorf("fst get %q: %v %v, want %d", s.Key, res, err, src.ents[j].val)
		}
		p := s.Key[:min(len(s.Key), 7+i%5)]
		lo := src.from(p)
		hi := lo
		bp := []byte(p)
		for hi < len(src.ents) && bytes.HasPrefix(src.key(hi), bp) {
			hi++
		}
		res, err = r.Query(ctx, []string{"prefix:" + p}, 1<<21)
		if err != nil || len(res.Rows) != hi-lo {
			return fmt.Errorf("fst prefix %q: %d keys (%v), brute force %d", p, len(res.Rows), err, hi-lo)
		}
		for n, row := range res.Rows {
			if k, _ := row[0].(string); k != string(src.key(lo+n)) || row[1] != src.ents[lo+n].val {
				return fmt.Errorf("fst prefix %q: result %d is %v, brute force (%s %d)", p, n, row, src.key(lo+n), src.ents[lo+n].val)
			}
		}
		return nil
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(sample) && errs[w] == nil; i += len(errs) {
				errs[w] = check(i, sample[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

type probe struct {
	IP      string         `json:"ip"`
	Network *string        `json:"network"`
	Record  map[string]any `json:"record"`
}

// TestMMDBAcceptance: mmdblookup finds the source record for every probe
// IP, v4 and v6, inside and outside the networks.
func TestMMDBAcceptance(t *testing.T) {
	dir := need(t, "LOCKSTEP_SPARK_OUT", "Spark output")
	lookup := needTool(t, "mmdblookup", "mmdb-bin")
	spec := "bundles:\n  ip:\n    inputs: {r: {url: " + dir + "/ip_ranges}}\n" +
		"    assets: {ip: {format: mmdb, input: r, options: {network: network, record_columns: [country, city, population], build_epoch_column: updated, database_type: lockstep-places}}}\n"
	res, err := buildSpec(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(res.Dir, "ip.mmdb")
	probes := readJSONL[probe](t, filepath.Join(dir, "ip_ranges.probes.jsonl"))
	if len(probes) < 1000 {
		t.Fatalf("%d probes", len(probes))
	}
	field := regexp.MustCompile(`"(\w+)":\s*\n\s*(.*?) <(\w+)>`)
	inside := 0
	for _, p := range probes {
		out, err := exec.Command(lookup, "--file", file, "--ip", p.IP).CombinedOutput()
		if p.Record == nil {
			if err == nil && !strings.Contains(string(out), "Could not find") {
				t.Fatalf("%s is in no network, and mmdblookup found:\n%s", p.IP, out)
			}
			continue
		}
		if err != nil {
			t.Fatalf("mmdblookup %s: %v\n%s", p.IP, err, out)
		}
		inside++
		got := map[string]any{}
		for _, m := range field.FindAllStringSubmatch(string(out), -1) {
			switch m[3] {
			case "utf8_string":
				got[m[1]] = strings.Trim(m[2], `"`)
			case "int32", "uint16", "uint32", "uint64":
				var n float64
				fmt.Sscan(m[2], &n)
				got[m[1]] = n
			default:
				t.Fatalf("%s: %s has MaxMind type %s", p.IP, m[1], m[3])
			}
		}
		if !reflect.DeepEqual(got, p.Record) {
			t.Fatalf("mmdblookup %s: %v, want %v (network %v)", p.IP, got, p.Record, *p.Network)
		}
	}
	if inside < 500 {
		t.Fatalf("only %d probes inside networks", inside)
	}
	meta, _ := exec.Command(lookup, "--file", file, "--verbose", "--ip", "1.1.1.1").CombinedOutput()
	// The largest `updated` of the 20,000 networks: 1714521600 + 19999.
	if !strings.Contains(string(meta), "Type:          lockstep-places") || !strings.Contains(string(meta), "Build epoch:   1714541599 ") {
		t.Fatalf("metadata:\n%s", meta)
	}
}

func TestDuplicateKeysNameFiles(t *testing.T) {
	dir := need(t, "LOCKSTEP_SPARK_OUT", "Spark output")
	spec := "bundles:\n  d:\n    inputs: {rows: {url: " + dir + "/kv_dups}}\n    assets: {d: {format: kv, input: rows, options: {key: id}}}\n"
	_, err := buildSpec(t, spec)
	files, _ := filepath.Glob(filepath.Join(dir, "kv_dups", "part-*.parquet"))
	if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "duplicate key id=7 in record 0 of ") {
		t.Fatalf("duplicate keys: %v", err)
	}
	named := 0
	for _, f := range files {
		if strings.Contains(err.Error(), filepath.Base(f)) {
			named++
		}
	}
	if named != 2 {
		t.Fatalf("the error names %d of the input files, want the 2 holding id 7: %v", named, err)
	}
}
