package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// icebergTable is a copy of one of the Iceberg tables gen_iceberg.py
// wrote (Spark, a Hadoop catalog) in a folder of the test's own; under
// CI=true a missing one fails the test, run bare it skips.
func icebergTable(t *testing.T, name string) string {
	t.Helper()
	out := os.Getenv("LOCKSTEP_SPARK_OUT")
	src := filepath.Join(out, "iceberg", "db", name)
	if _, err := os.Stat(src); out == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Iceberg table %s (LOCKSTEP_SPARK_OUT=%q): run `make test`", name, out)
		}
		t.Skip("no Iceberg tables: run `make test` for the Spark output")
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// latestMetadata is the table's newest metadata file.
func latestMetadata(t *testing.T, table string) string {
	t.Helper()
	re := regexp.MustCompile(`^v(\d+)\.metadata\.json$`)
	ents, _ := os.ReadDir(filepath.Join(table, "metadata"))
	best, bestV := "", -1
	for _, e := range ents {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			if v, _ := strconv.Atoi(m[1]); v > bestV {
				best, bestV = filepath.Join(table, "metadata", e.Name()), v
			}
		}
	}
	if best == "" {
		t.Fatalf("%s: no metadata file", table)
	}
	return best
}

// TestIcebergBundle is issue 11's build acceptance, on a local store and
// on MinIO: a bundle reading a (copied, so moved) Iceberg table builds and
// publishes; run again it is unchanged; a new snapshot (the table's last
// append, held back until then: its data, manifests and metadata file) is
// a new input and a new release; the first release rebuilds byte for
// byte, its snapshot pinned.
func TestIcebergBundle(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			table := icebergTable(t, "append")
			latest := latestMetadata(t, table)
			held := filepath.Join(dir, "held.metadata.json")
			if err := os.Rename(latest, held); err != nil {
				t.Fatal(err)
			}
			spec := filepath.Join(dir, "spec.yaml")
			os.WriteFile(spec, []byte("bundles:\n  visits:\n    inputs:\n      visits: {url: "+table+"}\n"+
				"    assets:\n      rows: {format: arrow, input: visits}\n      by_id: {format: kv, input: visits, options: {key: id, value: json}}\n"), 0o644)

			var r1, again, r2 pipeline.RunResult
			okJSON(t, store, &r1, "run", "--spec", spec)
			okJSON(t, store, &again, "run", "--spec", spec)
			if !r1.Published || again.Status != "unchanged" || again.Release != r1.Release {
				t.Fatalf("the same snapshot twice: %+v then %+v; want one release, then unchanged", r1, again)
			}
			if r1.Rows != 2*40 {
				t.Errorf("first snapshot: %d rows, want the first append's 40 in each of 2 assets", r1.Rows)
			}
			os.Rename(held, latest) // the next snapshot commits
			okJSON(t, store, &r2, "run", "--spec", spec)
			if !r2.Published || r2.Release == r1.Release || r2.Rows != 2*80 {
				t.Fatalf("after an append: %+v; want a new release of 80 rows", r2)
			}
			var m1, m2 publish.Manifest
			okJSON(t, store, &m1, "show", "--bundle", "visits", r1.Release)
			okJSON(t, store, &m2, "show", "--bundle", "visits", r2.Release)
			in1, in2 := m1.Inputs[0], m2.Inputs[0]
			if in1.IcebergSnapshot == nil || in2.IcebergSnapshot == nil || *in1.IcebergSnapshot == *in2.IcebergSnapshot ||
				in2.IcebergMetadata != "metadata/"+filepath.Base(latest) || in1.IcebergMetadata == in2.IcebergMetadata {
				t.Errorf("manifests' inputs: %+v and %+v; want each snapshot and metadata file", in1, in2)
			}
			var res pipeline.RebuildResult
			okJSON(t, store, &res, "rebuild", "--bundle", "visits", "--release", r1.Release)
			if !res.Identical {
				t.Errorf("rebuild of the first snapshot's release: %+v", res)
			}
		})
	}
}

// TestIcebergRebuildSchema: a table whose schema changed after its last
// snapshot (a column added, in no file) is read with the current schema;
// rebuild pins that schema as well as the snapshot, so the release
// rebuilds byte for byte rather than with the snapshot's older schema.
func TestIcebergRebuildSchema(t *testing.T) {
	dir := t.TempDir()
	store := cliBackends[0].url(t, dir)
	table := icebergTable(t, "schema")
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("bundles:\n  s:\n    inputs: {t: {url: "+table+"}}\n    assets: {rows: {format: arrow, input: t}}\n"), 0o644)
	var r pipeline.RunResult
	okJSON(t, store, &r, "run", "--spec", spec)
	var m publish.Manifest
	okJSON(t, store, &m, "show", "--bundle", "s", r.Release)
	if in := m.Inputs[0]; in.IcebergSchema == nil || m.Assets[0].Schema == "" || !regexp.MustCompile(`note`).MatchString(m.Assets[0].Schema) {
		t.Fatalf("manifest input %+v, asset schema %q: want the current schema, with note", in, m.Assets[0].Schema)
	}
	var res pipeline.RebuildResult
	okJSON(t, store, &res, "rebuild", "--bundle", "s", "--release", r.Release)
	if !res.Identical {
		t.Errorf("rebuild: %+v", res)
	}
}

// TestIcebergInspect: inspect shows an Iceberg table's snapshot, the delete
// files it applies and the rows they remove from each file.
func TestIcebergInspect(t *testing.T) {
	table := icebergTable(t, "delete")
	out := ok(t, "file://"+t.TempDir(), "inspect", table)
	for _, want := range []string{"iceberg snapshot: ", "deletes ", "deleted rows", "pos:data/"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect: no %q in\n%s", want, out)
		}
	}
	var in pipeline.Inspection
	okJSON(t, "file://"+t.TempDir(), &in, "inspect", table)
	deleted := int64(0)
	for _, f := range in.Files {
		deleted += f.DeletedRows
	}
	if in.Iceberg == nil || in.Iceberg.SnapshotID == 0 || deleted == 0 || in.Rows == 0 {
		t.Errorf("inspect -o json: %+v", in)
	}
}
