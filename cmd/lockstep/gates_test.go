package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// gateSpec is the acceptance bundle over one version of the pyspark gate
// data (testdata/spark/gen_gates.py): an Arrow file with a schema contract,
// a null-rate gate per country and a per-country drop gate, and an SSTable
// by id with the unique check; the bundle's row gate applies to both.
func gateSpec(t *testing.T, dir, version string) string {
	t.Helper()
	out := needService(t, "LOCKSTEP_SPARK_OUT", "the pyspark gate data")
	spec := fmt.Sprintf(`bundles:
  places:
    channel: production
    checks:
      rows: {min: 1000, max_drop: 5}
    inputs:
      places: {url: %s}
    assets:
      places:
        format: arrow
        input: places
        checks:
          schema: {columns: {id: bigint, name: string, country: string, lat: double}}
          rows: {min: 1000, max_drop: 5%%, by: country}
          nulls: {name: {max: 1, by: country}}
          bounds: {lat: {min: -90, max: 90}}
      by_id:
        format: kv
        input: places
        options: {key: id, value: json, value_columns: [country], duplicates: first}
        checks: {unique: true, size: {max_change: 50}}
`, filepath.Join(out, "gates", version))
	path := filepath.Join(dir, "spec-"+version+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// gateFailure runs a command that must fail its gate: exit 3, the report on
// stdout as JSON, and the failing checks named on stderr.
func gateFailure(t *testing.T, store string, args ...string) map[string]publish.Check {
	t.Helper()
	r := lockstep(t, store, append([]string{args[0], "-o", "json"}, args[1:]...)...)
	if r.code != 3 {
		t.Fatalf("%v: exit %d, want 3 (gate failed)\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	var rep struct {
		gateOut
		Gate string // plan's
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || (rep.Status != "gate_failed" && rep.Gate != "failed") {
		t.Fatalf("%v: no gate report on stdout (%v):\n%s", args, err, r.stdout)
	}
	failed := map[string]publish.Check{}
	for _, c := range rep.Checks {
		if !c.Passed {
			failed[c.Name] = c
			if !strings.Contains(r.stderr, c.Name) {
				t.Errorf("%v: stderr does not name the failed check %s:\n%s", args, c.Name, r.stderr)
			}
		}
	}
	return failed
}

func serving(t *testing.T, store string) string {
	t.Helper()
	var h []historyEntry
	okJSON(t, store, &h, "history", "--bundle", "places")
	if len(h) == 0 {
		return ""
	}
	return h[len(h)-1].Release
}

// openBucket opens a store's bucket (its prefix applied), as someone with
// access to it could.
func openBucket(t *testing.T, store string) *blob.Bucket {
	t.Helper()
	loc, err := publish.ParseLocation(store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loc.OpenBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeListing is every object of a store with its size and sha256.
func storeListing(t *testing.T, store string) map[string]string {
	t.Helper()
	ctx := context.Background()
	b := openBucket(t, store)
	defer b.Close()
	out := map[string]string{}
	it := b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		out[obj.Key] = fmt.Sprintf("%d %s", obj.Size, hex.EncodeToString(sum[:]))
	}
	return out
}

// TestGates is issue 12's acceptance, on pyspark output, on a local store
// and on MinIO: v1 is published; v2 (10% fewer rows), v3 (one country's
// names null), v4 (a renamed column) and a duplicate key are each blocked
// by the gate that should block them, with nothing published; plan shows
// what run then does and writes nothing; an override with a reason
// publishes, and the reason is in the manifest, history and show.
func TestGates(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			gates(t, store, dir)
		})
	}
}

func gates(t *testing.T, store, dir string) {
	v1, v2, v3, v4, dup := gateSpec(t, dir, "v1"), gateSpec(t, dir, "v2"), gateSpec(t, dir, "v3"), gateSpec(t, dir, "v4"), gateSpec(t, dir, "dup")

	// v1: the first release passes the relative checks, and says so.
	var first pipeline.RunResult
	okJSON(t, store, &first, "run", "--spec", v1)
	if !first.Promoted {
		t.Fatalf("v1 not promoted: %+v", first)
	}
	for _, c := range first.Checks {
		if !c.Passed {
			t.Errorf("v1: check %s failed: %+v", c.Name, c)
		}
		if strings.HasSuffix(c.Name, "max_drop") && !strings.Contains(c.Detail, "serves no release to compare with: passes") {
			t.Errorf("v1: %s does not say there was nothing to compare with: %+v", c.Name, c)
		}
	}
	if len(first.Checks) != 9 {
		t.Errorf("v1: %d checks, want 9: %+v", len(first.Checks), first.Checks)
	}

	// v2: 10% fewer rows. The drop gates block it; production stays on v1.
	before := storeListing(t, store)
	failed := gateFailure(t, store, "run", "--spec", v2)
	for _, name := range []string{"by_id/rows.max_drop", "places/rows.max_drop"} {
		if _, ok := failed[name]; !ok {
			t.Errorf("v2: %s did not fail: %+v", name, failed)
		}
	}
	if c := failed["by_id/rows.max_drop"]; c.Actual != "-10% (2000 rows -> 1800 rows)" || c.Expected != "a drop of at most 5%" {
		t.Errorf("v2: by_id/rows.max_drop: %+v", c)
	}
	if c := failed["places/rows.max_drop"]; len(c.Worst) != 4 || !strings.Contains(c.Actual, "4 of 8 values beyond the limit; the worst: country=\"DE\" -20% (250 -> 200 rows)") {
		t.Errorf("v2: places/rows.max_drop by country: %+v", c)
	}
	if len(failed) != 2 {
		t.Errorf("v2: other checks failed: %+v", failed)
	}
	if got := serving(t, store); got != first.Release {
		t.Fatalf("v2 moved production to %s", got)
	}
	if after := storeListing(t, store); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed gate wrote to the store")
	}

	// v3: DE's names are all null; the null gate names DE and its rate.
	failed = gateFailure(t, store, "run", "--spec", v3)
	c, found := failed["places/nulls.name"]
	if !found || len(failed) != 1 {
		t.Fatalf("v3: failed checks %+v, want places/nulls.name alone", failed)
	}
	if len(c.Worst) != 1 || c.Worst[0].Value != "DE" || c.Worst[0].Actual != "100% null (250 of 250 rows)" ||
		!strings.Contains(c.Actual, `country="DE" 100% null`) {
		t.Errorf("v3: places/nulls.name: %+v", c)
	}

	// v4: name renamed to title; the contract names the missing column,
	// and nothing is read.
	failed = gateFailure(t, store, "plan", "--spec", v4)
	c, found = failed["places/schema"]
	if !found || !strings.Contains(c.Actual, `column "name" (string) is missing`) || !strings.Contains(c.Detail, "title string") {
		t.Errorf("v4: places/schema: %+v (failed: %v)", c, failed)
	}

	// A duplicate key: the unique check names it and both files.
	failed = gateFailure(t, store, "build", "--spec", dup)
	c, found = failed["by_id/unique"]
	if !found || !strings.Contains(c.Actual, "1 duplicate keys; the first: id=7 in record ") || strings.Count(c.Actual, ".snappy.parquet") != 2 {
		t.Errorf("dup: by_id/unique: %+v (failed: %v)", c, failed)
	}

	// plan, with the override a person would give, then run: the same
	// numbers, and the plan left the store as it was.
	override := []string{"--override", "by_id/rows.max_drop", "--override", "places/rows.max_drop", "--reason", "dropped a retired source"}
	before = storeListing(t, store)
	var plan pipeline.PlanResult
	okJSON(t, store, &plan, append([]string{"plan", "--spec", v2}, override...)...)
	if after := storeListing(t, store); !reflect.DeepEqual(before, after) {
		t.Errorf("plan wrote to the store")
	}
	if plan.Gate != "overridden" || plan.Action != "publish" || plan.Serving != first.Release || plan.Unchanged || len(plan.Assets) != 2 {
		t.Fatalf("plan: %+v", plan)
	}
	for _, a := range plan.Assets {
		if a.Change != "changed" || a.RowsBefore != 2000 || a.RowsAfter != 1800 || a.RowsChange == nil || *a.RowsChange != -10 {
			t.Errorf("plan: asset %+v", a)
		}
	}
	var run pipeline.RunResult
	okJSON(t, store, &run, append([]string{"run", "--spec", v2}, override...)...)
	if !run.Promoted {
		t.Fatalf("override: not promoted: %+v", run)
	}
	var m publish.Manifest
	okJSON(t, store, &m, "show", "--bundle", "places", run.Release)
	if !reflect.DeepEqual(plan.Checks, m.Checks) {
		t.Errorf("plan's checks differ from the run's:\nplan: %+v\nrun:  %+v", plan.Checks, m.Checks)
	}
	for _, a := range plan.Assets {
		got, err := m.Asset(a.Name)
		if err != nil || got.Rows != a.RowsAfter || got.Size != a.BytesAfter {
			t.Errorf("plan's %s (%d rows, %d bytes) is not the run's: %+v %v", a.Name, a.RowsAfter, a.BytesAfter, got, err)
		}
	}
	if len(m.Overrides) != 2 || m.Overrides[0].Check != "by_id/rows.max_drop" || m.Overrides[0].Reason != "dropped a retired source" {
		t.Errorf("manifest overrides: %+v", m.Overrides)
	}
	okJSON(t, store, &plan, "plan", "--spec", v2)
	if plan.Action != "none" || plan.Gate != "overridden" || !plan.Unchanged {
		t.Errorf("plan after the run: %+v", plan)
	}
	okJSON(t, store, &plan, "plan", "--spec", v2)
	if plan.Action != "none" || plan.Gate != "overridden" || !plan.Unchanged {
		t.Errorf("plan after the run: %+v", plan)
	}
	var h []historyEntry
	okJSON(t, store, &h, "history", "--bundle", "places")
	if last := h[len(h)-1]; last.Release != run.Release || last.Reason != "dropped a retired source" || len(last.Overrides) != 2 {
		t.Errorf("history: %+v", last)
	}
	for _, cmd := range [][]string{{"history", "--bundle", "places"}, {"show", "--bundle", "places", run.Release}} {
		if out := ok(t, store, cmd...); !strings.Contains(out, "dropped a retired source") || !strings.Contains(out, "places/rows.max_drop") {
			t.Errorf("%v does not print the override and its reason:\n%s", cmd, out)
		}
	}

	// An override needs a reason, and must name a check the bundle has.
	r := lockstep(t, store, "run", "--spec", v3, "--override", "places/nulls.name")
	if r.code != 2 || !strings.Contains(r.stderr, "--reason") {
		t.Errorf("override without a reason: exit %d: %s", r.code, r.stderr)
	}
	r = lockstep(t, store, "run", "--spec", v3, "--override", "places/nulls.nme", "--reason", "x")
	if r.code != 2 || !strings.Contains(r.stderr, "places/nulls.name") {
		t.Errorf("override of an unknown check: exit %d: %s", r.code, r.stderr)
	}
}
