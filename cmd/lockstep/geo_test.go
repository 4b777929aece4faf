package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// geoPoint is one line of points.jsonl (testdata/spark/gen_geo.py): a
// point and the countries shapely says hold it.
type geoPoint struct {
	Lat          float64  `json:"lat"`
	Lon          float64  `json:"lon"`
	Names        []string `json:"names"`
	EdgeDistance float64  `json:"edge_distance"`
}

func (p geoPoint) arg() string { return fmt.Sprintf("%v,%v", p.Lat, p.Lon) }

// edgeTolerance is how close to an edge (in degrees) a point may be and
// get another answer than shapely's. A point on an edge (the vertices are
// among the points) is inside by one rule and outside by another: GEOS
// counts the boundary in ("intersects") with exact predicates, lockstep's
// crossing test decides in float64 arithmetic, whose rounding on
// coordinates of magnitude 180 is about 3e-14°. 1e-9° (0.1 mm) is far
// above that and far below the 1e-6° of the points placed either side of
// every edge, which must all agree.
const edgeTolerance = 1e-9

// TestGeo is the geo format's acceptance: Natural Earth's countries as
// GeoParquet (GeoPandas) and as a WKB column (pyspark) are built, pulled,
// and queried at 10,000 random points and at points on and either side of
// every edge; every answer equals shapely's outside edgeTolerance. A
// reader written from docs/formats.md in Python (rocksdict) agrees on
// 1,000 of them, sst_dump reads the table and ldb ingests it.
func TestGeo(t *testing.T) {
	out := needService(t, "LOCKSTEP_SPARK_OUT", "the GeoPandas and pyspark geo data")
	py := needService(t, "LOCKSTEP_PYTHON", "shapely, rocksdict and s2sphere")
	sstDump := needBinary(t, "sst_dump", "rocksdb-tools")
	ldb := needBinary(t, "ldb", "rocksdb-tools")
	points := readGeoPoints(t, filepath.Join(out, "geo", "points.jsonl"))

	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := filepath.Join(dir, "world.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`bundles:
  world:
    channel: production
    inputs:
      geoparquet: {url: %s}
      spark: {url: %s}
    assets:
      countries:
        format: geo
        input: geoparquet
        options: {id: name, properties: [iso_a3, continent]}
      countries_wkb:
        format: geo
        input: spark
        options: {id: name, geometry: wkb, properties: [iso_a3, continent]}
`, filepath.Join(out, "geo", "geoparquet"), filepath.Join(out, "geo", "spark_wkb"))), 0o644)
	ok(t, store, "run", "--spec", spec)
	serve := filepath.Join(dir, "serve")
	ok(t, store, "pull", "--bundle", "world", "--dest", serve)
	var desc queryOut // with no point: the index described
	okJSON(t, store, &desc, "query", "--dest", serve, "countries")
	ok(t, store, "verify", "--deep", "--bundle", "world", desc.Release)
	if desc.Info["features"] != 177.0 || desc.Info["edges"] != "planar" || desc.Info["levels"] == "" || len(desc.Result.Rows) == 0 {
		t.Fatalf("query with no point: %+v", desc)
	}

	var show struct {
		Assets []struct {
			Name, SHA256 string
			Rows         int64
			Stats        map[string]int64
		}
	}
	okJSON(t, store, &show, "show", "--bundle", "world", desc.Release)
	if len(show.Assets) != 2 || show.Assets[0].SHA256 != show.Assets[1].SHA256 || show.Assets[0].Rows != 177 ||
		show.Assets[0].Stats["vertices"] != 10643 || show.Assets[0].Stats["skipped_invalid"] != 0 {
		t.Fatalf("want the same 177-feature table from GeoParquet and from Spark's WKB column: %+v", show.Assets)
	}

	if out := ok(t, store, "show", "--bundle", "world", desc.Release); !strings.Contains(out, "countries.sst: repaired 0, skipped_invalid 0, vertices 10643") {
		t.Fatalf("show does not print the geo stats:\n%s", out)
	}

	answers := map[string][]string{}
	for _, asset := range []string{"countries", "countries_wkb"} {
		got := geoQuery(t, store, serve, asset, points)
		mismatch, tolerated, onEdge, held := 0, 0, 0, 0
		for i, p := range points {
			if len(p.Names) > 0 {
				held++
			}
			if slices.Equal(got[i], p.Names) {
				continue
			}
			if p.EdgeDistance < edgeTolerance {
				tolerated++
				if p.EdgeDistance == 0 {
					onEdge++
				}
				continue
			}
			if mismatch++; mismatch <= 10 {
				t.Errorf("%s: point %s (%.3g° from an edge): lockstep %q, shapely %q", asset, p.arg(), p.EdgeDistance, got[i], p.Names)
			}
		}
		t.Logf("%s: %d points, %d held by a country; answers that differ from shapely: %d within %g° of an edge (%d of them on it), %d beyond",
			asset, len(points), held, tolerated, edgeTolerance, onEdge, mismatch)
		if mismatch > 0 {
			t.Fatalf("%s: %d answers differ from shapely's", asset, mismatch)
		}
		if asset == "countries" {
			for i, p := range points {
				answers[p.arg()] = got[i]
			}
		}
	}
	// The shapes the issue names are among the points' answers.
	for _, c := range []struct {
		name string
		in   func(geoPoint) bool
	}{
		{"Lesotho", func(geoPoint) bool { return true }},
		{"Fiji", func(p geoPoint) bool { return p.Lon > 0 }}, {"Fiji", func(p geoPoint) bool { return p.Lon < 0 }},
		{"Russia", func(p geoPoint) bool { return p.Lon < 0 }},
		{"Antarctica", func(p geoPoint) bool { return p.Lat < -89.9 }},
	} {
		if !slices.ContainsFunc(points, func(p geoPoint) bool { return c.in(p) && slices.Contains(p.Names, c.name) }) {
			t.Errorf("no point tests %s where the test means to", c.name)
		}
	}
	maseru := geoQuery(t, store, serve, "countries", []geoPoint{{Lat: -29.31, Lon: 27.48}})
	if !slices.Equal(maseru[0], []string{"Lesotho"}) {
		t.Errorf("Maseru is in %v, want Lesotho alone (a hole in South Africa)", maseru[0])
	}

	// A reader from the doc alone, in Python.
	var sample []geoPoint
	for i := 0; i < len(points); i += len(points) / 1000 {
		sample = append(sample, points[i])
	}
	asset := filepath.Join(serve, "current", "countries.sst")
	var in strings.Builder
	for _, p := range sample {
		in.WriteString(p.arg() + "\n")
	}
	cmd := exec.Command(py, filepath.Join(repoRoot(t), "testdata", "geo", "reader.py"), asset)
	cmd.Stdin = strings.NewReader(in.String())
	pyOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("reader.py: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(pyOut)), "\n")
	if len(lines) != len(sample) {
		t.Fatalf("reader.py answered %d of %d points", len(lines), len(sample))
	}
	differ := 0
	for i, p := range sample {
		var held []string
		if err := json.Unmarshal([]byte(lines[i]), &held); err != nil {
			t.Fatalf("reader.py line %d: %v", i, err)
		}
		if !slices.Equal(held, answers[p.arg()]) && p.EdgeDistance >= edgeTolerance {
			t.Errorf("point %s: reader.py %q, lockstep query %q", p.arg(), held, answers[p.arg()])
		}
		if !slices.Equal(held, answers[p.arg()]) {
			differ++
		}
	}
	t.Logf("reader.py: %d points, %d answers differ from query's, all within %g° of an edge", len(sample), differ, edgeTolerance)

	// Independent readers: sst_dump checks and scans it, ldb ingests it.
	if o := run(t, sstDump, "--file="+asset, "--command=check"); strings.Contains(o, "Corruption") {
		t.Fatalf("sst_dump check: %s", o)
	}
	cells := int(desc.Info["cells"].(float64))
	scan := run(t, sstDump, "--file="+asset, "--command=scan", "--output_hex")
	if n := strings.Count(scan, "=>"); n != 177+cells {
		t.Fatalf("sst_dump scanned %d entries, want 177 features and %d cells", n, cells)
	}
	db := filepath.Join(dir, "rocksdb")
	run(t, ldb, "--db="+db, "--create_if_missing", "ingest_extern_sst", asset)
	got := strings.TrimSpace(run(t, ldb, "--db="+db, "--hex", "get", "0x66"+strings.ToUpper(hex.EncodeToString([]byte("Lesotho")))))
	if !strings.Contains(got, strings.ToUpper(hex.EncodeToString([]byte(`"iso_a3":"LSO"`)))) {
		t.Fatalf("ldb get f+Lesotho: %.200s", got)
	}
}

// geoQuery asks lockstep query about every point, 4000 to a call, and
// returns the sorted ids that hold each.
func geoQuery(t *testing.T, store, serve, asset string, points []geoPoint) [][]string {
	t.Helper()
	out := make([][]string, len(points))
	for lo := 0; lo < len(points); lo += 4000 {
		batch := points[lo:min(lo+4000, len(points))]
		args := []string{"query", "--dest", serve, "--limit", "1000000", asset}
		index := map[string][]int{}
		for i, p := range batch {
			args = append(args, p.arg())
			index[p.arg()] = append(index[p.arg()], lo+i)
		}
		var q queryOut
		okJSON(t, store, &q, args...)
		seen := map[string]bool{}
		for _, row := range q.Result.Rows {
			pt := row[0].(string)
			if row[1] == nil || seen[pt+"\x00"+row[1].(string)] {
				continue
			}
			seen[pt+"\x00"+row[1].(string)] = true // a point given twice is answered twice
			for _, i := range index[pt] {
				out[i] = append(out[i], row[1].(string))
			}
		}
	}
	for i := range out {
		slices.Sort(out[i])
		if out[i] == nil {
			out[i] = []string{}
		}
	}
	return out
}

func readGeoPoints(t *testing.T, path string) []geoPoint {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (testdata/spark/gen_geo.py writes it)", err)
	}
	defer f.Close()
	var pts []geoPoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p geoPoint
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Names == nil {
			p.Names = []string{}
		}
		pts = append(pts, p)
	}
	return pts
}

// needBinary finds a program on PATH; under CI=true a missing one fails.
func needBinary(t *testing.T, name, pkg string) string {
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

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
