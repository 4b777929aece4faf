package geo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/formatstest"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "shape", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// gridSquare is id's feature for the conformance suite: a 0.4° square on
// a 1° grid, with a hole for every tenth id.
func gridSquare(id int64) string {
	x := float64(id%360) - 180 + 0.3
	y := float64(id/360%170) - 85 + 0.3
	sq := func(x, y, d float64) string {
		return fmt.Sprintf("(%g %g, %g %g, %g %g, %g %g, %g %g)", x, y, x+d, y, x+d, y+d, x, y+d, x, y)
	}
	if id%10 == 0 {
		return "POLYGON (" + sq(x, y, 0.4) + ", " + sq(x+0.1, y+0.1, 0.1) + ")"
	}
	return "POLYGON (" + sq(x, y, 0.4) + ")"
}

func records(ids []int64, shape func(int64) string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		if id%7 == 3 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("Zürich %d", id))
		}
		b.Field(2).(*array.StringBuilder).Append(shape(id))
	}
	return b.NewRecordBatch()
}

var conformance = formatstest.Case{
	Format:       Format{},
	Options:      map[string]any{"id": "id", "geometry": "shape", "max_cells": 8, "sort_buffer": "1MiB"},
	SpillOptions: map[string]any{"sort_buffer": "64KiB"},
	Checksummed:  true,
	Input:        func(ids []int64) arrow.RecordBatch { return records(ids, gridSquare) },
	InputSchema:  schema,
}

func TestConformance(t *testing.T) { formatstest.Run(t, conformance) }

// write builds a table from WKT features with ids 0..n-1.
func write(t testing.TB, opts map[string]any, wkts ...string) ([]byte, error) {
	t.Helper()
	o := map[string]any{"id": "id", "geometry": "shape"}
	for k, v := range opts {
		o[k] = v
	}
	cfg, err := Format{}.Configure(o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := cfg.NewWriter(&buf, schema)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(wkts))
	for i := range ids {
		ids[i] = int64(i)
	}
	rec := records(ids, func(id int64) string { return wkts[id] })
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.Close(context.Background()); err != nil {
		w.Abort()
		return nil, err
	}
	return buf.Bytes(), nil
}

// Shapes that stress the covering: a hole, a polar cap in planar terms
// (Antarctica's outline runs along latitude -90 from 180 to -180), parts
// on both sides of the antimeridian, a thin sliver and a large square.
var tricky = []string{
	"POLYGON ((16 -35, 33 -35, 33 -22, 16 -22, 16 -35), (27 -30.6, 29.3 -30.6, 29.3 -28.6, 27 -28.6, 27 -30.6))",
	"POLYGON ((27 -30.6, 29.3 -30.6, 29.3 -28.6, 27 -28.6, 27 -30.6))",
	"POLYGON ((-180 -90, 180 -90, 180 -70, 90 -65, 0 -72, -90 -66, -180 -70, -180 -90))",
	"MULTIPOLYGON (((177 -18, 180 -18, 180 -16, 177 -16, 177 -18)), ((-180 -17, -179 -17, -179 -16, -180 -16, -180 -17)))",
	"POLYGON ((-10 50, 10 50.000001, -10 50.000002, -10 50))",
	"POLYGON ((-120 20, -60 20, -60 80, -120 80, -120 20))",
	"POLYGON ((170 60, 179.9 60, 179.9 89.9, 170 89.9, 170 60))",
}

// TestLookupMatchesBruteForce compares the index with the exact test of
// every feature, on random points and on points near every vertex.
func TestLookupMatchesBruteForce(t *testing.T) {
	for _, opts := range []map[string]any{
		{}, {"interior": false}, {"max_cells": 1, "min_level": 0, "max_level": 30}, {"max_cells": 200, "max_level": 20},
	} {
		data, err := write(t, opts, tricky...)
		if err != nil {
			t.Fatal(err)
		}
		ix, err := Load(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var shapes []*shape
		for _, w := range tricky {
			p, err := decodeWKT(w)
			if err != nil {
				t.Fatal(err)
			}
			shapes = append(shapes, newShape(p))
		}
		rng := rand.New(rand.NewPCG(1, 2))
		var pts [][2]float64
		for range 20000 {
			pts = append(pts, [2]float64{math.Asin(2*rng.Float64()-1) * 180 / math.Pi, rng.Float64()*360 - 180})
		}
		for _, s := range shapes {
			for i := 0; i < len(s.edges); i += 4 {
				for _, d := range []float64{1e-7, -1e-7, 1e-3, -1e-3} {
					pts = append(pts, [2]float64{clamp(s.edges[i+1]+d, 90), clamp(s.edges[i]+d, 180)})
					pts = append(pts, [2]float64{clamp((s.edges[i+1]+s.edges[i+3])/2+d, 90), clamp((s.edges[i]+s.edges[i+2])/2-d, 180)})
				}
			}
		}
		var ms []Match
		seen := map[bool]int{} // matches by their interior flag
		for _, p := range pts {
			ms = ix.Lookup(p[0], p[1], ms[:0])
			var got, want []int
			for _, m := range ms {
				got = append(got, m.Feature)
				seen[m.Interior]++
			}
			for f, s := range shapes {
				if s.contains(p[1], p[0]) {
					want = append(want, f)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v: point %v: lookup %v, exact test %v", opts, p, got, want)
			}
		}
		sameAll(t, ix, pts)
		if seen[false]+seen[true] < 1500 || seen[false] < 100 || (opts["interior"] == nil && seen[true] < 100) {
			t.Fatalf("%v: %d points, %d matched by an exact test and %d by an interior cell", opts, len(pts), seen[false], seen[true])
		}
		t.Logf("%v: %d points, %d matched by an exact test and %d by an interior cell", opts, len(pts), seen[false], seen[true])
	}
}

func clamp(v, lim float64) float64 { return max(-lim, min(lim, v)) }

func TestInvalid(t *testing.T) {
	bowtie := "POLYGON ((0 0, 10 10, 10 0, 0 10, 0 0))"
	for _, c := range []struct{ wkt, want string }{
		{bowtie, "self-intersection: the shell edge 0 (0, 0)-(10, 10) crosses the shell edge 2 (10, 0)-(0, 10)"},
		{"POLYGON ((0 0, 10 0, 10 10, 0 10))", "polygon ring not closed"}, // go-geom's WKT parser
		{"POLYGON ((0 0, 200 0, 10 10, 0 0))", "vertex 1 (200, 0) is out of range"},
		{"POLYGON ((0 0, 10 0, 0 0, 0 0))", "fewer than 3 distinct vertices"},
		{"LINESTRING (0 0, 1 1)", "geo indexes polygons"},
		{"POLYGON ((0 0, 1 1, 0 0, 1 1, 0 0))", "has no area"},
		{"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 1, 0 0)), ((0 0, 1 0, 1 1, 0 1, 0 0)))", "self-intersection: the shell of polygon 0 edge 0 (0, 0)-(1, 0) overlaps"},
		{"MULTIPOLYGON (((0 0, 10 0, 10 10, 0 10, 0 0)), ((2 2, 3 2, 3 3, 2 3, 2 2)))", "polygon 1 lies inside polygon 0"},
		{"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (20 20, 21 20, 21 21, 20 21, 20 20))", "hole 1 lies outside its shell"},
		{"POLYGON ((0 0, 10 0, 10 10, 5 10, 5 0, 4 0, 4 10, 0 10, 0 0))", "self-intersection"},
		{"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (1 1, 9 1, 9 9, 1 9, 1 1), (2 2, 3 2, 3 3, 2 3, 2 2))", "hole 2 lies inside hole 1"},
		{"POLYGON ((170 10, -170 10, -170 20, 170 20, 170 10))", "the shell: edge 2 from longitude -170 to 170 is its second to run the long way round the world"},
	} {
		_, err := write(t, nil, "POLYGON ((0 0, 1 0, 1 1, 0 0))", c.wkt)
		if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "feature id=1 (record 1)") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an ErrBadInput naming feature id=1 and %q", c.wkt, err, c.want)
		}
	}
	// skip drops the bowtie and counts it; repair drops the repeated vertex.
	for _, c := range []struct {
		policy             string
		features, skip, fx int64
	}{{"skip", 3, 1, 0}, {"repair", 3, 1, 1}} {
		data, err := write(t, map[string]any{"invalid": c.policy},
			"POLYGON ((0 0, 1 0, 1 1, 0 0))", bowtie, "POLYGON ((0 0, 10 0, 10 0, 10 10, 0 10, 0 0))", "POLYGON ((5 5, 6 5, 6 6, 5 5))")
		if err != nil {
			t.Fatal(err)
		}
		rd, err := Format{}.Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if err := rd.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := rd.Describe()
		if rd.Rows() != c.features || d["skipped_invalid"] != c.skip || d["repaired"] != c.fx {
			t.Errorf("%s: %d features, describe %v", c.policy, rd.Rows(), d)
		}
	}
}

func TestDuplicateID(t *testing.T) {
	cfg, _ := Format{}.Configure(map[string]any{"id": "id", "geometry": "shape"})
	w, _ := cfg.NewWriter(&bytes.Buffer{}, schema)
	w.(formats.FileStarter).StartFile("part-0.parquet")
	rec := records([]int64{4, 5, 4}, gridSquare)
	defer rec.Release()
	err := w.Write(context.Background(), rec)
	if err == nil {
		err = w.Close(context.Background())
	}
	w.Abort()
	var dup *formats.DuplicateKeyError
	if !errors.As(err, &dup) || dup.Key != "id=4" || dup.File1 != "record 0 of part-0.parquet" || dup.File2 != "record 2 of part-0.parquet" || strings.Contains(err.Error(), "duplicates: first") {
		t.Fatalf("got %v, want a duplicate id=4 at records 0 and 2", err)
	}
}

func TestHostileWKB(t *testing.T) {
	le := func(n uint32) []byte { return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)} }
	cases := map[string][]byte{
		"absurd ring count":   append(append([]byte{1}, le(3)...), le(0xFFFFFFFF)...),
		"absurd vertex count": append(append(append([]byte{1}, le(3)...), le(1)...), le(0x7FFFFFFF)...),
		"absurd parts":        append(append([]byte{1}, le(6)...), le(0xFFFFFFFF)...),
		"bad byte order":      {7, 0, 0, 0, 3},
		"empty":               {},
		"trailing bytes":      append(encodeWKB(nil, []polygon{{{0, 0, 1, 0, 1, 1, 0, 0}}}), 0),
	}
	for name, b := range cases {
		if _, err := decodeWKB(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// And a round trip, with Z dropped.
	p, err := decodeWKB(encodeWKB(nil, []polygon{{{0, 0, 1, 0, 1, 1, 0, 0}}, {{5, 5, 6, 5, 6, 6, 5, 5}}}))
	if err != nil || len(p) != 2 || fmt.Sprint(p[1][0]) != "[5 5 6 5 6 6 5 5]" {
		t.Fatalf("round trip: %v %v", p, err)
	}
}

func TestQuery(t *testing.T) {
	data, err := write(t, nil, tricky...)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := Format{}.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// Maseru, inside Lesotho, the hole of feature 0; Cape Town; the sea.
	res, err := rd.Query(context.Background(), []string{"-29.31,27.48", "-33.92,18.42", "0,-30"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range res.Rows {
		if row[2] == "interior" || row[2] == "boundary" {
			row[2] = "match" // which cell decided depends on the covering
		}
	}
	got := fmt.Sprint(res.Rows)
	want := `[[-29.31,27.48 1 match map[name:Zürich 1]] [-33.92,18.42 0 match map[name:Zürich 0]] [0,-30 <nil> <nil> <nil>]]`
	if got != want {
		t.Fatalf("query:\n got %s\nwant %s", got, want)
	}
	for _, bad := range []string{"91,0", "1", "x,y", "0,181"} {
		if _, err := rd.Query(context.Background(), []string{bad}, 10); !errors.Is(err, formats.ErrBadQuery) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestCheckRepairsWKB(t *testing.T) {
	open := []polygon{{{0, 0, 10, 0, 10, 10, 0, 10}}}
	if _, err := check(open, false); err == nil || !strings.Contains(err.Error(), "the shell is not closed") {
		t.Fatalf("an open ring: %v", err)
	}
	fixed, err := check(open, true)
	if err != nil || !fixed || fmt.Sprint(open[0][0]) != "[0 0 10 0 10 10 0 10 0 0]" {
		t.Fatalf("repair: %v %v %v", fixed, err, open)
	}
	// A hole that crosses its shell.
	if _, err := check([]polygon{{{0, 0, 10, 0, 10, 10, 0, 10, 0, 0}, {5, 5, 15, 5, 15, 6, 5, 6, 5, 5}}}, true); err == nil || !strings.Contains(err.Error(), "hole 1") {
		t.Fatalf("a hole across the shell: %v", err)
	}
}

func TestGeoParquetMetadata(t *testing.T) {
	fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "geometry", Type: arrow.BinaryTypes.Binary}}
	with := func(geo string) *arrow.Schema {
		if geo == "" {
			return arrow.NewSchema(fields, nil)
		}
		md := arrow.NewMetadata([]string{GeoMetadataKey}, []string{geo})
		return arrow.NewSchema(fields, &md)
	}
	cfg, _ := Format{}.Configure(map[string]any{"id": "id"})
	for geo, want := range map[string]string{
		"": "not GeoParquet (no `geo` metadata); set option geometry",
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": {"name": "WGS 84 / UTM zone 32N", "id": {"authority": "EPSG", "code": 32632}}}}}`: `CRS "WGS 84 / UTM zone 32N" (EPSG:32632)`,
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": null}}}`:                                                                          "unknown CRS",
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "point"}}}`:                                                                                     "GeoParquet point; lockstep reads the WKB encoding",
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "edges": "spherical"}}}`:                                                                 "spherical edges",
		`{"primary_column": "shape", "columns": {}}`:                                                                                                                         `no column "shape"`,
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": {"id": {"authority": "EPSG", "code": 4326}}}}}`:                                   "",
		`{"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB"}}}`:                                                                                       "",
	} {
		_, err := cfg.NewWriter(&bytes.Buffer{}, with(geo))
		if want == "" && err != nil || want != "" && (!errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", geo, err, want)
		}
	}
}

func TestValidNesting(t *testing.T) {
	// An island in a lake: a part inside another part's hole. A hole that
	// touches its shell at a vertex.
	data, err := write(t, nil,
		"MULTIPOLYGON (((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 8 2, 8 8, 2 8, 2 2)), ((4 4, 5 4, 5 5, 4 5, 4 4)))",
		"POLYGON ((20 0, 30 0, 30 10, 20 10, 20 0), (20 0, 25 2, 25 5, 20 0))")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Load(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lat, lng float64
		want     int
	}{{4.5, 4.5, 1}, {3, 3, 0}, {1, 1, 1}, {3, 24, 0}, {8, 22, 1}} {
		if got := len(ix.Lookup(c.lat, c.lng, nil)); got != c.want {
			t.Errorf("(%v, %v): %d features, want %d", c.lat, c.lng, got, c.want)
		}
	}
}

// TestCombBands: a comb's long teeth each span many bands; the bands stay
// within 8 entries per edge instead of growing with the square of the
// edges, and the crossing check's work is bounded.
func TestCombBands(t *testing.T) {
	const teeth = 20000
	var r []float64
	for i := range teeth {
		x := -170 + 340*float64(i)/teeth
		r = append(r, x, -80, x+0.5*340/teeth, 80)
	}
	r = append(r, 170, -85, -170, -85, r[0], r[1])
	p := []polygon{{r}}
	if _, err := check(p, false); err != nil {
		t.Fatal(err)
	}
	sh := newShape(p)
	if n := len(sh.edges) / 4; len(sh.bandEdges) > 8*n {
		t.Fatalf("%d band entries for %d edges", len(sh.bandEdges), n)
	}
	if !sh.contains(-170+0.25*340/teeth, 0) || sh.contains(-170+0.75*340/teeth, 0) {
		t.Fatal("wrong answer inside the comb")
	}
}

// TestOverlapping: many features over one place (geofences, isochrones)
// make spans that name their cells rather than copy every feature.
func TestOverlapping(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var wkts []string
	for range 40 {
		x, y := rng.Float64()*4, rng.Float64()*4
		w, h := 0.5+rng.Float64()*3, 0.5+rng.Float64()*3
		wkts = append(wkts, fmt.Sprintf("POLYGON ((%g %g, %g %g, %g %g, %g %g, %g %g))", x, y, x+w, y, x+w, y+h, x, y+h, x, y))
	}
	data, err := write(t, map[string]any{"max_cells": 8}, wkts...)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Load(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	chains, few := 0, 0
	for i := range ix.spans {
		if ix.spanChain(i) != nil {
			chains++
		}
		if ix.spanFew(i) != nil {
			few++
		}
	}
	if chains < 10 || few < 10 {
		t.Fatalf("%d spans name their cells and %d list a few features: the test does not reach both", chains, few)
	}
	var shapes []*shape
	for _, w := range wkts {
		p, _ := decodeWKT(w)
		shapes = append(shapes, newShape(p))
	}
	var ms []Match
	most := 0
	for range 20000 {
		lat, lng := rng.Float64()*8-1, rng.Float64()*8-1
		ms = ix.Lookup(lat, lng, ms[:0])
		var got, want []int
		for _, m := range ms {
			got = append(got, m.Feature)
		}
		for f, sh := range shapes {
			if sh.contains(lng, lat) {
				want = append(want, f)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("(%v, %v): lookup %v, exact test %v", lat, lng, got, want)
		}
		most = max(most, len(got))
	}
	t.Logf("%d spans name their cells, %d list a few; up to %d features hold one point", chains, few, most)
	var pts [][2]float64
	for range 5000 {
		pts = append(pts, [2]float64{rng.Float64()*8 - 1, rng.Float64()*8 - 1})
	}
	sameAll(t, ix, pts)
}

// sameAll checks that LookupAll answers every point as Lookup does, with
// its prefetches and without (the tables here are smaller than farBytes,
// so it runs both ways by hand), and for any number of points.
func sameAll(t *testing.T, ix *Index, pts [][2]float64) {
	t.Helper()
	lats, lngs := make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		lats[i], lngs[i] = p[0], p[1]
	}
	far := ix.far
	defer func() { ix.far = far }()
	for _, ix.far = range []bool{false, true} {
		for _, n := range []int{0, 1, lookupBlock - 1, lookupBlock*len(lookupBlocks{}) + 1, len(pts)} {
			n = min(n, len(pts))
			next := 0
			ix.LookupAll(lats[:n], lngs[:n], func(i int, ms []Match) {
				if i != next {
					t.Fatalf("far %v, %d points: LookupAll visited point %d, want %d", ix.far, n, i, next)
				}
				next++
				if want := ix.Lookup(lats[i], lngs[i], nil); fmt.Sprint(ms) != fmt.Sprint(want) && !(len(ms) == 0 && len(want) == 0) {
					t.Fatalf("far %v: point %v: LookupAll %v, Lookup %v", ix.far, pts[i], ms, want)
				}
			})
			if next != n {
				t.Fatalf("far %v: LookupAll visited %d of %d points", ix.far, next, n)
			}
		}
	}
}
