package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// place is one row of the demo dataset, as Spark itself reads it back
// (testdata/spark/gen_places.py writes places.expected.jsonl).
type place struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Country    *string   `json:"country"`
	Lat        *float64  `json:"lat"`
	Lon        *float64  `json:"lon"`
	Population *int64    `json:"population"`
	Tags       *[]string `json:"tags"`
	Updated    *int64    `json:"updated"` // microseconds since the epoch, UTC
}

func readExpected(t *testing.T, path string) []place {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []place
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p place
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, p)
	}
	return out
}

// readPulledArrow reads the pulled Arrow file with Arrow Go's own reader.
func readPulledArrow(t *testing.T, path string) []place {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []place
	for i := range r.NumRecords() {
		rec, err := r.RecordBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		col := func(name string) int {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("pulled file has no column %q: %s", name, rec.Schema())
			}
			return idx[0]
		}
		id := rec.Column(col("id")).(*array.Int64)
		name := rec.Column(col("name")).(*array.String)
		country := rec.Column(col("country")).(*array.String)
		lat := rec.Column(col("lat")).(*array.Float64)
		lon := rec.Column(col("lon")).(*array.Float64)
		pop := rec.Column(col("population")).(*array.Int64)
		tags := rec.Column(col("tags")).(*array.List)
		tagv := tags.ListValues().(*array.String)
		upd := rec.Column(col("updated")).(*array.Timestamp)
		for row := range int(rec.NumRows()) {
			p := place{ID: id.Value(row), Name: name.Value(row)}
			if country.IsValid(row) {
				p.Country = ptr(country.Value(row))
			}
			if lat.IsValid(row) {
				p.Lat = ptr(lat.Value(row))
			}
			if lon.IsValid(row) {
				p.Lon = ptr(lon.Value(row))
			}
			if pop.IsValid(row) {
				p.Population = ptr(pop.Value(row))
			}
			if tags.IsValid(row) {
				start, end := tags.ValueOffsets(row)
				ts := []string{}
				for j := start; j < end; j++ {
					ts = append(ts, tagv.Value(int(j)))
				}
				p.Tags = &ts
			}
			if upd.IsValid(row) {
				p.Updated = ptr(int64(upd.Value(row)))
			}
			out = append(out, p)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func byID(ps []place) []place {
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps
}

// endToEnd runs build -> publish -> promote -> pull on one Spark output
// folder and checks that the pulled Arrow file holds exactly Spark's rows.
func endToEnd(t *testing.T, sparkDir, expected string) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := writeSpec(t, dir, sparkDir, "")

	var built pipeline.BuildResult
	okJSON(t, store, &built, "build", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	if built.Unchanged || len(built.Assets) != 1 {
		t.Fatalf("build: %+v", built)
	}
	var pub publish.PublishResult
	okJSON(t, store, &pub, "publish", built.Dir)
	if pub.Release != built.Release || pub.BlobsUploaded != 1 || pub.BytesUploaded != built.Assets[0].Size {
		t.Fatalf("publish: %+v, built %+v", pub, built)
	}
	var ent publish.Entry
	okJSON(t, store, &ent, "promote", "--bundle", "places", "--release", built.Release, "--channel", "production", "--reason", "e2e")
	if ent.Seq != 1 || ent.Release != built.Release || ent.Reason != "e2e" {
		t.Fatalf("promote: %+v", ent)
	}
	serve := filepath.Join(dir, "serve")
	var pulled publish.PullResult
	okJSON(t, store, &pulled, "pull", "--bundle", "places", "--channel", "production", "--dest", serve)
	if pulled.Release != built.Release || pulled.Downloaded != built.Assets[0].Size {
		t.Fatalf("pull: %+v", pulled)
	}
	arrowFile := filepath.Join(serve, "current", "places.arrow")
	want := byID(readExpected(t, expected))
	got := byID(readPulledArrow(t, arrowFile))
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("pulled %d rows, Spark has %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			gj, _ := json.Marshal(got[i])
			wj, _ := json.Marshal(want[i])
			t.Fatalf("row %d differs\n got  %s\n want %s", i, gj, wj)
		}
	}
	if built.Assets[0].Rows != int64(len(want)) {
		t.Errorf("manifest says %d rows, Spark has %d", built.Assets[0].Rows, len(want))
	}

	// An independent reader: pyarrow reads the same file to the same rows.
	if py := os.Getenv("LOCKSTEP_PYTHON"); py != "" {
		out, err := exec.Command(py, filepath.Join(repoRoot(t), "testdata", "spark", "check_arrow.py"), arrowFile, expected).CombinedOutput()
		if err != nil {
			t.Fatalf("pyarrow check: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("LOCKSTEP_PYTHON unset under CI=true: pyarrow is missing")
	}

	// verify --deep re-hashes every blob and opens each asset with its format.
	var rep publish.VerifyReport
	okJSON(t, store, &rep, "verify", "--all", "--deep")
	if !rep.OK || rep.ReleasesChecked != 1 || rep.BlobsChecked != 1 || rep.BytesChecked != built.Assets[0].Size {
		t.Fatalf("verify --deep: %+v", rep)
	}

	// query reads the pulled release.
	var q struct {
		Rows   int64 `json:"rows"`
		Result struct {
			Columns []string `json:"columns"`
			Rows    [][]any  `json:"rows"`
		} `json:"result"`
	}
	okJSON(t, store, &q, "query", "--dest", serve, "--limit", "3", "places")
	if q.Rows != int64(len(want)) || len(q.Result.Rows) != 3 || len(q.Result.Columns) != 8 {
		t.Fatalf("query: %+v", q)
	}
}

// TestEndToEndFreshSpark runs on Spark output that `make test` wrote just now.
func TestEndToEndFreshSpark(t *testing.T) {
	out := needService(t, "LOCKSTEP_SPARK_OUT", "fresh pyspark output")
	endToEnd(t, filepath.Join(out, "places"), filepath.Join(out, "places.expected.jsonl"))
}

// TestEndToEndCommitted runs on the Spark output committed for `make demo`.
func TestEndToEndCommitted(t *testing.T) {
	root := repoRoot(t)
	endToEnd(t, filepath.Join(root, "testdata", "places"), filepath.Join(root, "testdata", "places.expected.jsonl"))
}
