package pipeline_test

// Sharded kv assets (issue 4): the pipeline publishes each shard as its own
// asset; on Spark output sst_dump and ldb read every shard
// (TestFormatsAcceptance runs kvShards).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/pipeline"
)

// TestKVShardsBuild runs on the bundled places data (no Spark needed): the
// pipeline publishes kv_shards as kv_shards-1of3..3of3, each a table whose
// rows, size and hash are its own, in key order across shards, and together
// the entries of the unsharded table; two builds give the same bytes.
func TestKVShardsBuild(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "places")
	spec := "bundles:\n  s:\n    inputs: {p: {url: " + dir + "}}\n    assets:\n" +
		"      whole: {format: kv, input: p, options: {key: id, value: msgpack}}\n" +
		"      kv_shards: {format: kv, input: p, options: {key: id, value: msgpack, shards: 3}}\n" +
		"      names: {format: fst, input: p, options: {key: name, duplicates: first}}\n" +
		"      by_country: {format: kv, input: p, options: {key: country, duplicates: last}}\n"
	res, err := buildSpec(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := buildSpec(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var sum int64
	var whole pipelineAsset
	for i, a := range res.Assets {
		names = append(names, a.Name)
		if a.SHA256 != again.Assets[i].SHA256 {
			t.Fatalf("asset %s differs between two builds", a.Name)
		}
		if a.Name == "whole" {
			whole = pipelineAsset{a.Rows, filepath.Join(res.Dir, a.File)}
			continue
		}
		if a.Name == "names" || a.Name == "by_country" {
			// Duplicates dropped: the manifest counts what the asset holds,
			// as verify --deep expects.
			fm, _ := all.Registry().Lookup(a.Format)
			data, _ := os.ReadFile(filepath.Join(res.Dir, a.File))
			r, err := fm.Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Rows() != a.Rows || a.Rows == 0 || a.Rows >= 3000 {
				t.Fatalf("%s: the manifest says %d rows, the reader %d", a.Name, a.Rows, r.Rows())
			}
			r.Close()
			continue
		}
		if a.File != a.Name+".sst" || a.Format != "kv" {
			t.Fatalf("shard asset %+v", a)
		}
		data, err := os.ReadFile(filepath.Join(res.Dir, a.File))
		if err != nil {
			t.Fatal(err)
		}
		sha := sha256.Sum256(data)
		if int64(len(data)) != a.Size || hex.EncodeToString(sha[:]) != a.SHA256 {
			t.Fatalf("%s: size or hash in the manifest is not the file's", a.Name)
		}
		sum += a.Rows
	}
	if got := strings.Join(names, ","); got != "by_country,kv_shards-1of3,kv_shards-2of3,kv_shards-3of3,names,whole" {
		t.Fatalf("assets %s", got)
	}
	if sum != whole.rows || sum == 0 {
		t.Fatalf("shards hold %d rows, the whole table %d", sum, whole.rows)
	}
	all := kvEntries(t, whole.path)
	var union [][]any
	for i := 1; i <= 3; i++ {
		rows := kvEntries(t, filepath.Join(res.Dir, fmt.Sprintf("kv_shards-%dof3.sst", i)))
		if a := res.Assets[i]; a.Name != fmt.Sprintf("kv_shards-%dof3", i) || int64(len(rows)) != a.Rows {
			t.Fatalf("shard %d: %d entries, the manifest says %d (%s)", i, len(rows), a.Rows, a.Name)
		}
		if len(union) > 0 && len(rows) > 0 && rows[0][0].(int64) <= union[len(union)-1][0].(int64) {
			t.Fatalf("shard %d starts at id %v, not after %v", i, rows[0][0], union[len(union)-1][0])
		}
		union = append(union, rows...)
	}
	if !reflect.DeepEqual(union, all) {
		t.Fatalf("the shards' entries (%d) are not the whole table's (%d)", len(union), len(all))
	}
}

// TestShardNameClash: an asset named like another's shard is refused when
// the spec is read (exit 2), before anything is built or uploaded.
func TestShardNameClash(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "places")
	spec := "bundles:\n  s:\n    inputs: {p: {url: " + dir + "}}\n    assets:\n" +
		"      t: {format: kv, input: p, options: {key: id, shards: 2}}\n" +
		"      t-1of2: {format: kv, input: p, options: {key: id}}\n"
	_, err := pipeline.ParseSpec("accept.yaml", []byte(spec), all.Registry())
	if !errors.Is(err, pipeline.ErrSpec) || !strings.Contains(err.Error(), `assets "t" and "t-1of2" would both publish "t-1of2"`) {
		t.Fatalf("build with a clashing name: %v", err)
	}
}

type pipelineAsset struct {
	rows int64
	path string
}

// kvEntries opens and checks a kv file and lists every entry.
func kvEntries(t *testing.T, path string) [][]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	kvf, _ := all.Registry().Lookup("kv")
	r, err := kvf.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	res, err := r.Query(context.Background(), nil, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

// kvShards: sst_dump reads both shards of kv_shards; their entries are
// 500,000 each, in key order across the shards, and together are the
// sampled keys and values of the whole table.
func kvShards(t *testing.T, sstDump, ldb string, asset func(string) string, sample []sampleRow) {
	line := regexp.MustCompile(`^'([0-9A-F]*)' seq:\d+, type:\d+ => ([0-9A-F]*)$`)
	got := map[string]string{}
	last := ""
	for i := 1; i <= 2; i++ {
		file := asset(fmt.Sprintf("kv_shards-%dof2.sst", i))
		if out := run(t, sstDump, "--file="+file, "--command=check"); strings.Contains(strings.ToLower(out), "corrupt") {
			t.Fatalf("sst_dump check shard %d: %s", i, out)
		}
		n := 0
		for _, l := range strings.Split(run(t, sstDump, "--file="+file, "--command=scan", "--output_hex"), "\n") {
			m := line.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if m[1] <= last { // upper-case hex of equal length: string order is key order
				t.Fatalf("shard %d: key %s does not follow %s", i, m[1], last)
			}
			last = m[1]
			got[m[1]] = m[2]
			n++
		}
		if n != 500_000 {
			t.Fatalf("shard %d: sst_dump scanned %d entries, want 500000", i, n)
		}
	}
	for _, r := range sample {
		v, ok := got[kvKey(r.ID)]
		if !ok {
			t.Fatalf("kv shards: no key for id %d", r.ID)
		}
		checkValue(t, "sst_dump shards", r, v)
	}
	// Both shards ingest into one RocksDB, and ldb get finds keys in each.
	db := t.TempDir()
	run(t, ldb, "--db="+db, "--create_if_missing", "ingest_extern_sst", asset("kv_shards-1of2.sst"))
	run(t, ldb, "--db="+db, "ingest_extern_sst", asset("kv_shards-2of2.sst"))
	for i := 0; i < len(sample); i += 25 {
		r := sample[i]
		out := strings.TrimSpace(run(t, ldb, "--db="+db, "--hex", "get", "0x"+kvKey(r.ID)))
		checkValue(t, "ldb get (shards)", r, strings.TrimPrefix(out, "0x"))
	}
}
