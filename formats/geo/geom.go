package geo

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkt"
)

// A polygon is its rings, shell first, each ring closed (its last vertex
// equals its first) and stored as x0, y0, x1, y1, ...: longitude and
// latitude in degrees. A feature is one or more polygons.
type polygon [][]float64

// errInvalid is geometry the index cannot hold as written; the writer's
// `invalid` policy decides what happens to its feature.
type errInvalid struct{ msg string }

func (e *errInvalid) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &errInvalid{msg: fmt.Sprintf(format, args...)}
}

// maxVertices bounds one feature, so that a hostile count cannot make a
// decoder allocate without end: 2^26 vertices is 1 GiB of coordinates.
const maxVertices = 1 << 26

// WKB geometry types (ISO and OGC codes; EWKB flags are read too).
const (
	wkbPolygon      = 3
	wkbMultiPolygon = 6
)

var wkbTypeNames = map[uint32]string{1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint",
	5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}

// decodeWKB reads a Polygon or MultiPolygon from well-known binary, either
// byte order, with or without Z and M (dropped). Counts are checked against
// the bytes left before anything is allocated.
func decodeWKB(b []byte) ([]polygon, error) {
	d := wkbDecoder{b: b}
	typ, stride, err := d.header()
	if err != nil {
		return nil, err
	}
	var polys []polygon
	switch typ {
	case wkbPolygon:
		p, err := d.polygon(stride)
		if err != nil {
			return nil, err
		}
		polys = append(polys, p)
	case wkbMultiPolygon:
		n, err := d.count(5) // each part is at least a 5-byte header and a count
		if err != nil {
			return nil, err
		}
		for range n {
			typ, stride, err := d.header()
			if err != nil {
				return nil, err
			}
			if typ != wkbPolygon {
				return nil, invalidf("a MultiPolygon holds a %s", typeName(typ))
			}
			p, err := d.polygon(stride)
			if err != nil {
				return nil, err
			}
			polys = append(polys, p)
		}
	default:
		return nil, invalidf("the geometry is a %s; geo indexes polygons and multipolygons", typeName(typ))
	}
	if len(d.b) != 0 {
		return nil, invalidf("%d bytes after the end of the WKB geometry", len(d.b))
	}
	return polys, nil
}

func typeName(t uint32) string {
	if n, ok := wkbTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("WKB type %d", t)
}

type wkbDecoder struct {
	b     []byte
	order binary.ByteOrder
	n     int // vertices read
}

var errShortWKB = invalidf("the WKB geometry is truncated")

func (d *wkbDecoder) header() (typ uint32, stride int, err error) {
	if len(d.b) < 5 {
		return 0, 0, errShortWKB
	}
	switch d.b[0] {
	case 0:
		d.order = binary.BigEndian
	case 1:
		d.order = binary.LittleEndian
	default:
		return 0, 0, invalidf("not WKB: byte order %d", d.b[0])
	}
	t := d.order.Uint32(d.b[1:])
	d.b = d.b[5:]
	stride = 2
	// EWKB: Z, M and SRID flags in the high bits.
	if t&0x80000000 != 0 {
		stride++
	}
	if t&0x40000000 != 0 {
		stride++
	}
	if t&0x20000000 != 0 {
		if len(d.b) < 4 {
			return 0, 0, errShortWKB
		}
		d.b = d.b[4:] // the SRID; the CRS is the column's (GeoParquet metadata)
	}
	t &= 0x0fffffff
	// ISO: 1000s for Z, 2000s for M, 3000s for ZM.
	switch t / 1000 {
	case 0:
	case 1, 2:
		stride++
	case 3:
		stride += 2
	default:
		return 0, 0, invalidf("not WKB: geometry type %d", t)
	}
	return t % 1000, stride, nil
}

// count reads a count of items at least min bytes each.
func (d *wkbDecoder) count(min int) (int, error) {
	if len(d.b) < 4 {
		return 0, errShortWKB
	}
	n := d.order.Uint32(d.b)
	d.b = d.b[4:]
	if uint64(n)*uint64(min) > uint64(len(d.b)) {
		return 0, errShortWKB
	}
	return int(n), nil
}

func (d *wkbDecoder) polygon(stride int) (polygon, error) {
	nr, err := d.count(4)
	if err != nil {
		return nil, err
	}
	p := make(polygon, 0, nr)
	for range nr {
		np, err := d.count(8 * stride)
		if err != nil {
			return nil, err
		}
		if d.n += np; d.n > maxVertices {
			return nil, invalidf("more than %d vertices", maxVertices)
		}
		r := make([]float64, 0, 2*np)
		for range np {
			x := math.Float64frombits(d.order.Uint64(d.b))
			y := math.Float64frombits(d.order.Uint64(d.b[8:]))
			r = append(r, x, y)
			d.b = d.b[8*stride:]
		}
		p = append(p, r)
	}
	return p, nil
}

// encodeWKB writes polys as little-endian 2D WKB: a Polygon when there is
// one, else a MultiPolygon. It is what the features key space holds.
func encodeWKB(dst []byte, polys []polygon) []byte {
	le := binary.LittleEndian
	one := func(dst []byte, p polygon) []byte {
		dst = append(dst, 1)
		dst = le.AppendUint32(dst, wkbPolygon)
		dst = le.AppendUint32(dst, uint32(len(p)))
		for _, r := range p {
			dst = le.AppendUint32(dst, uint32(len(r)/2))
			for _, c := range r {
				dst = le.AppendUint64(dst, math.Float64bits(c))
			}
		}
		return dst
	}
	if len(polys) == 1 {
		return one(dst, polys[0])
	}
	dst = append(dst, 1)
	dst = le.AppendUint32(dst, wkbMultiPolygon)
	dst = le.AppendUint32(dst, uint32(len(polys)))
	for _, p := range polys {
		dst = one(dst, p)
	}
	return dst
}

// decodeWKT reads a POLYGON or MULTIPOLYGON from well-known text, with
// go-geom's parser.
func decodeWKT(s string) ([]polygon, error) {
	g, err := wkt.Unmarshal(s)
	if err != nil {
		return nil, invalidf("not WKT: %v", err)
	}
	ring := func(flat []float64, stride int) []float64 {
		r := make([]float64, 0, len(flat)/stride*2)
		for i := 0; i+1 < len(flat); i += stride {
			r = append(r, flat[i], flat[i+1])
		}
		return r
	}
	poly := func(p *geom.Polygon) polygon {
		var out polygon
		for i := range p.NumLinearRings() {
			out = append(out, ring(p.LinearRing(i).FlatCoords(), p.Stride()))
		}
		return out
	}
	switch t := g.(type) {
	case *geom.Polygon:
		return []polygon{poly(t)}, nil
	case *geom.MultiPolygon:
		var out []polygon
		for i := range t.NumPolygons() {
			out = append(out, poly(t.Polygon(i)))
		}
		return out, nil
	}
	return nil, invalidf("the geometry is a %T; geo indexes polygons and multipolygons", g)
}

// coordSlack is how far beyond ±180° and ±90° a coordinate may lie and
// still count as in range: the rounding of data that was projected or
// simplified (Natural Earth's Russia reaches 180.00000000000006).
const coordSlack = 1e-9

// check validates polys and, with repair, mends what can be mended:
// unclosed rings are closed and repeated vertices dropped. It reports
// whether it changed anything. What it checks: coordinates are finite and
// within range, rings are closed with at least three distinct vertices not
// all on one line, no two edges of the feature cross or overlap (see
// crossing), and rings nest as the lookup's even-odd rule needs (see
// nesting).
func check(polys []polygon, repair bool) (repaired bool, err error) {
	if len(polys) == 0 {
		return false, invalidf("the geometry is empty")
	}
	for pi, p := range polys {
		if len(p) == 0 {
			return false, invalidf("polygon %d is empty", pi)
		}
		for ri, r := range p {
			where := ringName(len(polys), pi, ri)
			for i := 0; i < len(r); i += 2 {
				x, y := r[i], r[i+1]
				if math.IsNaN(x) || math.IsNaN(y) || math.Abs(x) > 180+coordSlack || math.Abs(y) > 90+coordSlack {
					return false, invalidf("%s: vertex %d (%v, %v) is out of range: longitude must be within ±180 and latitude within ±90 (is the CRS longitude/latitude?)", where, i/2, x, y)
				}
			}
			n := len(r)
			if n >= 4 && (r[0] != r[n-2] || r[1] != r[n-1]) {
				if !repair {
					return false, invalidf("%s is not closed: its last vertex (%v, %v) is not its first (%v, %v)", where, r[n-2], r[n-1], r[0], r[1])
				}
				r = append(r, r[0], r[1])
				repaired = true
			}
			if dd := dropRepeats(r); len(dd) != len(r) {
				if repair {
					r, repaired = dd, true
				}
				n = len(dd)
			} else {
				n = len(r)
			}
			if n < 8 || collinear(r) { // three distinct vertices and the closing one
				return false, invalidf("%s has no area (fewer than 3 distinct vertices, or all on one line)", where)
			}
			if i, ok := wrapsAround(r); ok {
				return false, invalidf("%s: edge %d from longitude %v to %v is its second to run the long way round the world (planar edges are straight in longitude and latitude); if the ring crosses the antimeridian, split it there, as GeoJSON (RFC 7946) and Natural Earth do; if it is meant to span that far, add vertices along one of the two long edges", where, i, r[2*i], r[2*i+2])
			}
			p[ri] = r
		}
	}
	if err := crossing(polys); err != nil {
		return false, err
	}
	if err := nesting(polys); err != nil {
		return false, err
	}
	return repaired, nil
}

// wrapsAround finds a ring with two edges that each span more than 180°
// of longitude while neither end lies on the antimeridian or a pole: the
// shape of a ring that crosses the antimeridian without being split (170°
// to -170° and back, meant as 20°). In the plane each such edge is a
// straight line the long way round; a band that wide is still accepted
// when one of the two ways is drawn with shorter edges. Edges along the
// antimeridian or a pole (Antarctica's) are fine. It returns the second
// such edge.
func wrapsAround(r []float64) (int, bool) {
	edge := func(x, y float64) bool { return math.Abs(x) >= 180 || math.Abs(y) >= 90 }
	long := 0
	for i := 0; i+3 < len(r); i += 2 {
		if math.Abs(r[i+2]-r[i]) > 180 && !edge(r[i], r[i+1]) && !edge(r[i+2], r[i+3]) {
			if long++; long == 2 {
				return i / 2, true
			}
		}
	}
	return 0, false
}

// collinear reports whether every vertex of r lies on one line (A, B, A,
// B, A included).
func collinear(r []float64) bool {
	for i := 2; i+1 < len(r); i += 2 {
		if r[i] == r[0] && r[i+1] == r[1] {
			continue
		}
		for j := i + 2; j+1 < len(r); j += 2 {
			if orient(r[0], r[1], r[i], r[i+1], r[j], r[j+1]) != 0 {
				return false
			}
		}
		return true
	}
	return true
}

// nesting checks what the even-odd rule of the lookup needs beyond edges
// that do not cross: each hole lies inside its shell and outside the
// polygon's other holes, and no polygon's shell lies inside another
// polygon's (where the two would cancel out) unless it sits in one of that
// polygon's holes. Rings that do not cross are inside or outside each
// other as a whole, so a few vertices off the other ring decide. Pairs
// whose bounds rule it out are skipped, the tests use the rings' bands,
// and the work is bounded like crossing's.
func nesting(polys []polygon) error {
	work, limit := 0, maxCrossingWork+64*vertices(polys)
	within := func(r []float64, sh *shape) (bool, error) {
		in, edges := ringInside(r, sh)
		if work += edges; work > limit {
			return false, invalidf("too complex to validate: its rings need more than %d edge tests to place; simplify it or split it upstream", limit)
		}
		return in, nil
	}
	type ring struct {
		sh             *shape
		x0, y0, x1, y1 float64
	}
	mk := func(r []float64) ring {
		sh := newShape([]polygon{{r}})
		return ring{sh, sh.minX, sh.minY, sh.maxX, sh.maxY}
	}
	holds := func(a, b ring) bool { return b.x0 >= a.x0 && b.x1 <= a.x1 && b.y0 >= a.y0 && b.y1 <= a.y1 }
	rings := make([][]ring, len(polys))
	for pi, p := range polys {
		for _, r := range p {
			rings[pi] = append(rings[pi], mk(r))
		}
		shell := rings[pi][0]
		for hi, h := range p[1:] {
			if in, err := within(h, shell.sh); err != nil {
				return err
			} else if !holds(shell, rings[pi][hi+1]) || !in {
				return invalidf("%s lies outside its shell", ringName(len(polys), pi, hi+1))
			}
			for hj := range p[1:] {
				if hj != hi && holds(rings[pi][hj+1], rings[pi][hi+1]) {
					if in, err := within(h, rings[pi][hj+1].sh); err != nil {
						return err
					} else if in {
						return invalidf("%s lies inside %s", ringName(len(polys), pi, hi+1), ringName(len(polys), pi, hj+1))
					}
				}
			}
		}
	}
	for i := range polys {
		for j, q := range polys {
			if i == j || !holds(rings[i][0], rings[j][0]) {
				continue // q's shell cannot lie inside p's
			}
			if in, err := within(q[0], rings[i][0].sh); err != nil {
				return err
			} else if !in {
				continue
			}
			// Inside p's shell: valid only inside one of p's holes.
			inHole := false
			for _, h := range rings[i][1:] {
				if holds(h, rings[j][0]) {
					if in, err := within(q[0], h.sh); err != nil {
						return err
					} else if in {
						inHole = true
						break
					}
				}
			}
			if !inHole {
				return invalidf("polygon %d lies inside polygon %d: the parts of a multipolygon must not overlap", j, i)
			}
		}
	}
	return nil
}

// ringInside places ring r against sh: inside by the vote of up to three
// of its vertices off sh's boundary (one vertex could sit a rounding error
// off a ring it only touches), or outside when all are on it. It returns
// how many edges it tested, for the caller's budget.
func ringInside(r []float64, sh *shape) (in bool, edges int) {
	votes, n := 0, 0
	for i := 0; i+1 < len(r) && n < 3; i += 2 {
		loc, e := sh.locate(r[i], r[i+1])
		edges += e
		if loc != 0 {
			n++
			votes += loc
		}
	}
	return votes > 0, edges
}

func ringName(parts, pi, ri int) string {
	s := "the shell"
	if ri > 0 {
		s = fmt.Sprintf("hole %d", ri)
	}
	if parts > 1 {
		s += fmt.Sprintf(" of polygon %d", pi)
	}
	return s
}

// dropRepeats returns r without vertices equal to the one before them
// (a copy when there are any).
func dropRepeats(r []float64) []float64 {
	for i := 2; i < len(r); i += 2 {
		if r[i] == r[i-2] && r[i+1] == r[i-1] {
			out := append([]float64(nil), r[:i]...)
			for j := i; j < len(r); j += 2 {
				if r[j] != out[len(out)-2] || r[j+1] != out[len(out)-1] {
					out = append(out, r[j], r[j+1])
				}
			}
			return out
		}
	}
	return r
}

// orient is the sign of the turn a -> b -> c: > 0 left, < 0 right.
// The float64 conversions round each product, so that no compiler fuses
// them into a multiply-add: the answer, and so the bytes of a build, are
// the same on every architecture.
func orient(ax, ay, bx, by, cx, cy float64) float64 {
	return float64((bx-ax)*(cy-ay)) - float64((by-ay)*(cx-ax))
}

// maxCrossingWork, plus 64 per edge, bounds the edge pairs crossing
// compares for one feature (and the edge tests of nesting): about half a
// second beyond the work any feature needs. A feature that needs more (a
// comb of millions of long edges) is refused rather than left to run.
const maxCrossingWork = 200_000_000

// crossing finds two edges of the feature that cross at a point inside
// both (a proper crossing) or overlap along a stretch (collinear), sweeping
// edges in order of their left end. Touching at a vertex is allowed, as in
// OGC's model for holes.
func crossing(polys []polygon) error {
	type edge struct {
		x0, y0, x1, y1 float64
		minX, maxX     float64
		part, ring, i  int
		last           bool // the ring's closing edge, adjacent to its first
	}
	var es []edge
	for pi, p := range polys {
		for ri, r := range p {
			n := len(r)/2 - 1
			for i := range n {
				x0, y0, x1, y1 := r[2*i], r[2*i+1], r[2*i+2], r[2*i+3]
				if x0 == x1 && y0 == y1 {
					continue // a repeated vertex
				}
				es = append(es, edge{x0, y0, x1, y1, math.Min(x0, x1), math.Max(x0, x1), pi, ri, i, i == n-1})
			}
		}
	}
	slices.SortFunc(es, func(e, f edge) int { return cmp.Compare(e.minX, f.minX) })
	name := func(e *edge) string {
		return fmt.Sprintf("%s edge %d (%v, %v)-(%v, %v)", ringName(len(polys), e.part, e.ring), e.i, e.x0, e.y0, e.x1, e.y1)
	}
	work, limit := 0, maxCrossingWork+64*len(es)
	for i := range es {
		e := &es[i]
		for j := i + 1; j < len(es) && es[j].minX <= e.maxX; j++ {
			if work++; work > limit {
				return invalidf("too complex to validate: more than %d pairs of its %d edges overlap in longitude; simplify it or split it upstream", limit, len(es))
			}
			f := &es[j]
			if math.Max(e.y0, e.y1) < math.Min(f.y0, f.y1) || math.Max(f.y0, f.y1) < math.Min(e.y0, e.y1) {
				continue
			}
			adjacent := false
			if e.part == f.part && e.ring == f.ring {
				d := e.i - f.i
				adjacent = d == 1 || d == -1 || (e.i == 0 && f.last) || (f.i == 0 && e.last)
			}
			o1 := orient(e.x0, e.y0, e.x1, e.y1, f.x0, f.y0)
			o2 := orient(e.x0, e.y0, e.x1, e.y1, f.x1, f.y1)
			if o1 == 0 && o2 == 0 {
				// On one line: they overlap if their extents share more
				// than a point (adjacent edges that fold back do too).
				lo, hi := max(min(e.x0, e.x1), min(f.x0, f.x1)), min(max(e.x0, e.x1), max(f.x0, f.x1))
				if e.x0 == e.x1 {
					lo, hi = max(min(e.y0, e.y1), min(f.y0, f.y1)), min(max(e.y0, e.y1), max(f.y0, f.y1))
				}
				if lo < hi {
					return invalidf("self-intersection: %s overlaps %s", name(e), name(f))
				}
				continue
			}
			if adjacent {
				continue // they share a vertex
			}
			o3 := orient(f.x0, f.y0, f.x1, f.y1, e.x0, e.y0)
			o4 := orient(f.x0, f.y0, f.x1, f.y1, e.x1, e.y1)
			if o1*o2 < 0 && o3*o4 < 0 {
				return invalidf("self-intersection: %s crosses %s", name(e), name(f))
			}
		}
	}
	return nil
}

// vertices counts the feature's vertices, closing ones included.
func vertices(polys []polygon) int {
	n := 0
	for _, p := range polys {
		for _, r := range p {
			n += len(r) / 2
		}
	}
	return n
}
