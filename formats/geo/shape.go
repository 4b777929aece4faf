package geo

import (
	"math"

	"github.com/golang/geo/r1"
	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
)

// shape is a feature prepared for tests in the plane of longitude (x) and
// latitude (y), which is what GeoParquet's default `edges: planar` means
// and what shapely and GEOS compute: an edge is a straight line in degrees,
// not a great circle. Its edges are bucketed into horizontal bands, so that
// a point-in-polygon test looks at the edges of one band only.
//
// shape is an s2.Region, so that s2.RegionCoverer covers it: a cell is
// tested through its latitude-longitude bound (s2.Cell.RectBound, which
// contains the cell), widened by boxMargin, so every answer is
// conservative: ContainsCell only when the cell is surely inside,
// IntersectsCell whenever it may touch.
type shape struct {
	edges                  []float64 // x0, y0, x1, y1 for each edge
	minX, minY, maxX, maxY float64
	bandH                  float64
	nb                     int // bands
	// last is the last cell related: s2's coverer asks IntersectsCell and
	// then ContainsCell of each candidate.
	last      lastCell
	bandStart []int32 // band b's edges are bandEdges[bandStart[b]:bandStart[b+1]]
	bandEdges []int32
}

type lastCell struct {
	id            s2.CellID
	inside, meets bool
	ok            bool
}

// smallShape is the most edges a shape tests without bands: reading a few
// contiguous edges beats two more lookups (and cache misses).
const smallShape = 24

// boxMargin widens a cell's bound, in degrees, so that the rounding of the
// tests below cannot turn "may touch" into "apart": about 0.1 mm.
const boxMargin = 1e-9

func newShape(polys []polygon) *shape {
	s := &shape{minX: math.Inf(1), minY: math.Inf(1), maxX: math.Inf(-1), maxY: math.Inf(-1)}
	for _, p := range polys {
		for _, r := range p {
			for i := 0; i+3 < len(r); i += 2 {
				x0, y0, x1, y1 := r[i], r[i+1], r[i+2], r[i+3]
				if x0 == x1 && y0 == y1 {
					continue
				}
				s.edges = append(s.edges, x0, y0, x1, y1)
				s.minX, s.maxX = min(s.minX, x0, x1), max(s.maxX, x0, x1)
				s.minY, s.maxY = min(s.minY, y0, y1), max(s.maxY, y0, y1)
			}
		}
	}
	n := len(s.edges) / 4
	if n <= smallShape {
		s.nb, s.bandH = 1, 1
		return s // no bands: the tests read every edge
	}
	// An edge goes into every band its latitudes span, so long edges (a
	// comb's teeth) multiply: halve the bands until the entries are at
	// most 8 per edge, or give up banding.
	nb := min(max(n/2, 1), 1<<16)
	for ; nb > 1; nb /= 2 {
		s.bandH, s.nb = (s.maxY-s.minY)/float64(nb), nb
		if !(s.bandH > 0) {
			break
		}
		entries := 0
		s.eachBand(func(e, b0, b1 int) { entries += b1 - b0 + 1 })
		if entries <= 8*n {
			break
		}
	}
	s.bandH = (s.maxY - s.minY) / float64(nb)
	if !(s.bandH > 0) || nb <= 1 {
		s.nb, s.bandH = 1, 1
		return s // no bands: the tests read every edge
	}
	s.nb = nb
	counts := make([]int32, nb+1)
	s.eachBand(func(e, b0, b1 int) {
		for b := b0; b <= b1; b++ {
			counts[b+1]++
		}
	})
	for b := 1; b <= nb; b++ {
		counts[b] += counts[b-1]
	}
	s.bandStart = counts
	s.bandEdges = make([]int32, counts[nb])
	fill := append([]int32(nil), counts[:nb]...)
	s.eachBand(func(e, b0, b1 int) {
		for b := b0; b <= b1; b++ {
			s.bandEdges[fill[b]] = int32(e)
			fill[b]++
		}
	})
	return s
}

func (s *shape) eachBand(fn func(e, b0, b1 int)) {
	for e := 0; e < len(s.edges)/4; e++ {
		y0, y1 := s.edges[4*e+1], s.edges[4*e+3]
		fn(e, s.band(min(y0, y1)), s.band(max(y0, y1)))
	}
}

// band is the band that holds latitude y, clamped to the shape's bands.
func (s *shape) band(y float64) int {
	b := int((y - s.minY) / s.bandH)
	return min(max(b, 0), s.nb-1)
}

// contains reports whether (x, y) is inside or on the boundary, as
// shapely's intersects and GEOS's covers say: on an edge (in float64
// arithmetic, exactly so at a vertex), or inside by the even-odd rule over
// every ring, where a horizontal ray from the point crosses the boundary
// an odd number of times.
func (s *shape) contains(x, y float64) bool {
	if x < s.minX || x > s.maxX || y < s.minY || y > s.maxY {
		return false
	}
	if s.bandStart == nil {
		return containsEdges(s.edges, nil, x, y)
	}
	b := s.band(y)
	return containsEdges(s.edges, s.bandEdges[s.bandStart[b]:s.bandStart[b+1]], x, y)
}

// locate places (x, y): 1 inside, 0 on an edge (in float64 arithmetic),
// -1 outside; and says how many edges it tested.
func (s *shape) locate(x, y float64) (loc, edges int) {
	if x < s.minX || x > s.maxX || y < s.minY || y > s.maxY {
		return -1, 0
	}
	var band []int32
	n := len(s.edges) / 4
	if s.bandStart != nil {
		b := s.band(y)
		band = s.bandEdges[s.bandStart[b]:s.bandStart[b+1]]
		n = len(band)
	}
	in := false
	for k := range n {
		e := 4 * k
		if band != nil {
			e = 4 * int(band[k])
		}
		switch crossEdge(s.edges[e], s.edges[e+1], s.edges[e+2], s.edges[e+3], x, y) {
		case onEdge:
			return 0, k + 1
		case crosses:
			in = !in
		}
	}
	if in {
		return 1, n
	}
	return -1, n
}

// containsEdges is contains over the edges listed in band, or all of them
// when band is nil.
func containsEdges(edges []float64, band []int32, x, y float64) bool {
	in := false
	if band == nil {
		for e := 0; e+3 < len(edges); e += 4 {
			switch crossEdge(edges[e], edges[e+1], edges[e+2], edges[e+3], x, y) {
			case onEdge:
				return true
			case crosses:
				in = !in
			}
		}
		return in
	}
	for _, e := range band {
		switch crossEdge(edges[4*e], edges[4*e+1], edges[4*e+2], edges[4*e+3], x, y) {
		case onEdge:
			return true
		case crosses:
			in = !in
		}
	}
	return in
}

const (
	misses = iota
	crosses
	onEdge
)

// crossEdge says whether a ray from (x, y) towards +x crosses the edge
// (x0, y0)-(x1, y1), counting an end at y on the edge's upper side only
// (so a vertex on the ray counts once), or whether the point is on it.
func crossEdge(x0, y0, x1, y1, x, y float64) int {
	if (y < y0 && y < y1) || (y > y0 && y > y1) {
		return misses // the common case: the edge is above or below
	}
	if x >= min(x0, x1) && x <= max(x0, x1) && orient(x0, y0, x1, y1, x, y) == 0 {
		return onEdge
	}
	if (y0 > y) != (y1 > y) && x < x0+(y-y0)*(x1-x0)/(y1-y0) {
		return crosses
	}
	return misses
}

// box is a closed rectangle in degrees.
type box struct{ x0, y0, x1, y1 float64 }

// touchesEdge reports whether any edge may meet the box: its bounds
// overlap the box's, and the box's corners are not all strictly on one
// side of the edge's line.
func (s *shape) touchesEdge(bx box) bool {
	if bx.x1 < s.minX || bx.x0 > s.maxX || bx.y1 < s.minY || bx.y0 > s.maxY {
		return false
	}
	if s.bandStart == nil {
		for e := range len(s.edges) / 4 {
			if s.edgeTouches(e, bx) {
				return true
			}
		}
		return false
	}
	for b := s.band(bx.y0); b <= s.band(bx.y1); b++ {
		for _, e := range s.bandEdges[s.bandStart[b]:s.bandStart[b+1]] {
			if s.edgeTouches(int(e), bx) {
				return true
			}
		}
	}
	return false
}

func (s *shape) edgeTouches(e int, bx box) bool {
	x0, y0, x1, y1 := s.edges[4*e], s.edges[4*e+1], s.edges[4*e+2], s.edges[4*e+3]
	if max(x0, x1) < bx.x0 || min(x0, x1) > bx.x1 || max(y0, y1) < bx.y0 || min(y0, y1) > bx.y1 {
		return false
	}
	pos, neg := false, false
	for _, c := range [4][2]float64{{bx.x0, bx.y0}, {bx.x1, bx.y0}, {bx.x0, bx.y1}, {bx.x1, bx.y1}} {
		o := orient(x0, y0, x1, y1, c[0], c[1])
		pos, neg = pos || o >= 0, neg || o <= 0
	}
	return pos && neg
}

// relate says whether the box lies wholly inside the shape, and whether
// it may meet it at all.
func (s *shape) relate(bx box) (inside, meets bool) {
	if s.touchesEdge(bx) {
		return false, true
	}
	// No edge meets the box: it is wholly inside or wholly outside.
	in := s.contains(bx.x0, bx.y0)
	return in, in
}

// cellBoxes is the cell's latitude-longitude bound as one or two boxes
// (two when it spans the antimeridian), widened by boxMargin.
func cellBoxes(c s2.Cell) []box {
	r := c.RectBound()
	y0, y1 := r.Lat.Lo*180/math.Pi-boxMargin, r.Lat.Hi*180/math.Pi+boxMargin
	lo, hi := r.Lng.Lo*180/math.Pi, r.Lng.Hi*180/math.Pi
	switch {
	case r.Lng.IsFull():
		return []box{{-180 - boxMargin, y0, 180 + boxMargin, y1}}
	case r.Lng.IsInverted():
		return []box{{lo - boxMargin, y0, 180 + boxMargin, y1}, {-180 - boxMargin, y0, hi + boxMargin, y1}}
	}
	return []box{{lo - boxMargin, y0, hi + boxMargin, y1}}
}

// The s2.Region methods.

func (s *shape) RectBound() s2.Rect {
	const rad = math.Pi / 180
	lat := r1.Interval{Lo: max(s.minY-boxMargin, -90) * rad, Hi: min(s.maxY+boxMargin, 90) * rad}
	lng := s1.IntervalFromEndpoints(max(s.minX-boxMargin, -180)*rad, min(s.maxX+boxMargin, 180)*rad)
	return s2.Rect{Lat: lat, Lng: lng}
}

func (s *shape) CapBound() s2.Cap { return s.RectBound().CapBound() }

func (s *shape) ContainsCell(c s2.Cell) bool {
	inside, _ := s.relateCell(c.ID())
	return inside
}

func (s *shape) IntersectsCell(c s2.Cell) bool {
	_, meets := s.relateCell(c.ID())
	return meets
}

// relateCell says whether the cell lies wholly inside the shape, and
// whether it may meet it.
func (s *shape) relateCell(id s2.CellID) (inside, meets bool) {
	if s.last.ok && s.last.id == id {
		return s.last.inside, s.last.meets
	}
	defer func() { s.last = lastCell{id, inside, meets, true} }()
	inside = true
	for _, bx := range cellBoxes(s2.CellFromCellID(id)) {
		in, m := s.relate(bx)
		inside, meets = inside && in, meets || m
	}
	return inside, meets
}

func (s *shape) ContainsPoint(p s2.Point) bool {
	ll := s2.LatLngFromPoint(p)
	return s.contains(ll.Lng.Degrees(), ll.Lat.Degrees())
}

func (s *shape) CellUnionBound() []s2.CellID { return s.RectBound().CellUnionBound() }
