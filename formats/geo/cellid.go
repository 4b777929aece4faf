package geo

import "math"

// cellOf returns the first leaf of the cell at level depth that holds the
// point (degrees): s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat, lng)).
// Parent(depth).RangeMin(), bit for bit (cellid_test.go checks it), in
// under half the time: a lookup spent half its time there.
//
// It finds the face and the cell from sines and cosines that a table of
// whole degrees and a short series give to within about 1e-15, which is
// not s2's rounding but far closer than the nearest edge of a cell at
// depth for all but a few points in a billion. For those, when the point
// is within guard of an edge (or of a face's edge), it takes s2's own
// steps exactly (cellOfExact).
func cellOf(lat, lng float64, depth int) uint64 {
	if !(math.Abs(lat) <= 90 && math.Abs(lng) <= 180) {
		return cellOfExact(lat, lng, depth)
	}
	sinLat, cosLat := sincosDegrees(lat)
	sinLng, cosLng := sincosDegrees(lng)
	x, y, z := cosLng*cosLat, sinLng*cosLat, sinLat
	f, u, v := faceUV(x, y, z)
	if nearFaceEdge(x, y, z) {
		return cellOfExact(lat, lng, depth)
	}
	scale := float64(uint64(1) << depth)
	si, ti := scale*uvToST(u), scale*uvToST(v)
	fi, fj := math.Floor(si), math.Floor(ti)
	if e := scale * guard; si-fi < e || fi+1-si < e || ti-fj < e || fj+1-ti < e {
		return cellOfExact(lat, lng, depth) // near a cell's edge
	}
	return hilbert(f, int(fi)<<(maxLevel-depth), int(fj)<<(maxLevel-depth), depth)
}

// nearFaceEdge says whether the point's two largest components (in
// magnitude) are within guard: whether it may lie on another face by s2's
// rounding.
func nearFaceEdge(x, y, z float64) bool {
	ax, ay, az := math.Abs(x), math.Abs(y), math.Abs(z)
	if ax < ay {
		ax, ay = ay, ax
	}
	// ax ≥ ay; the two largest are ax and the larger of ay and az.
	if az > ax {
		return az-ax < guard
	}
	return ax-max(ay, az) < guard
}

// guard bounds how far cellOf's (u, v) and (s, t) may be from s2's: the
// sines and cosines are within a few units in the last place (1e-16), and
// the steps after them at most multiply that by ten.
const guard = 1e-12

// sincosDegrees is math.Sincos of a degrees (|a| ≤ 180) to within a few
// units in the last place: sin and cos of the nearest whole degree, from
// a table, and of the rest (at most half a degree) from their series.
func sincosDegrees(a float64) (sin, cos float64) {
	k := math.Floor(a + 0.5)
	b := (a - k) * (math.Pi / 180)
	b2 := b * b
	sb := b * (1 + b2*(-1.0/6+b2*(1.0/120+b2*(-1.0/5040+b2*(1.0/362880)))))
	cb := 1 + b2*(-1.0/2+b2*(1.0/24+b2*(-1.0/720+b2*(1.0/40320))))
	t := &degrees[int(k)+180]
	return t[0]*cb + t[1]*sb, t[1]*cb - t[0]*sb
}

// degrees holds the sine and cosine of every whole degree from -180 to 180.
var degrees = func() (t [361][2]float64) {
	for i := range t {
		t[i][0], t[i][1] = math.Sincos(float64(i-180) * (math.Pi / 180))
	}
	return t
}()

// cellOfExact is cellOf by s2's own steps (PointFromLatLng, xyzToFaceUV,
// uvToST, stToIJ, cellIDFromFaceIJ), which the package does not export
// apart: one Sincos per angle instead of a Sin and a Cos (the same bits),
// and the Hilbert position only down to depth.
func cellOfExact(lat, lng float64, depth int) uint64 {
	sinLat, cosLat := math.Sincos(lat * (math.Pi / 180))
	sinLng, cosLng := math.Sincos(lng * (math.Pi / 180))
	f, u, v := faceUV(cosLng*cosLat, sinLng*cosLat, sinLat)
	return hilbert(f, stToIJ(uvToST(u)), stToIJ(uvToST(v)), depth)
}

// faceUV is s2's xyzToFaceUV: the face is the largest component's, +3
// when it is negative, and (u, v) the point's coordinates on it.
func faceUV(x, y, z float64) (f int, u, v float64) {

	ax, ay, az := math.Abs(x), math.Abs(y), math.Abs(z)
	switch {
	case ax > ay && ax > az:
		if x >= 0 {
			f, u, v = 0, y/x, z/x
		} else {
			f, u, v = 3, z/x, y/x
		}
	case ax <= ay && ay > az:
		if y >= 0 {
			f, u, v = 1, -x/y, z/y
		} else {
			f, u, v = 4, z/y, -x/y
		}
	default:
		if z >= 0 {
			f, u, v = 2, -x/z, -y/z
		} else {
			f, u, v = 5, -y/z, -x/z
		}
	}
	return f, u, v
}

// hilbert is s2's cellIDFromFaceIJ, as far as depth: the first leaf of
// the cell at depth that holds leaf (i, j) of face f.
func hilbert(f, i, j, depth int) uint64 {
	// The Hilbert position as far as depth: step k = 7 gives levels 1 and 2
	// (i and j have 30 bits), each later step lookupBits more levels.
	const mask = 1<<lookupBits - 1
	ui, uj := uint(i), uint(j)
	n := uint64(f) << (posBits - 1)
	bits := uint(f) & swapMask
	last := uint(8 - (depth+5)/lookupBits)
	for k := uint(7); k+1 > last; k-- {
		sh := k * lookupBits & 63 // (& 63: no check for long shifts)
		bits += (ui>>sh&mask)<<(lookupBits+2) + (uj>>sh&mask)<<2
		bits = uint(lookupPos[bits%uint(len(lookupPos))])
		n |= uint64(bits>>2) << (2 * sh & 63)
		bits &= swapMask | invertMask
	}
	lsb := uint64(1) << (2 * uint(maxLevel-depth) & 63)
	return (n*2+1)&^(lsb<<1-1) | 1
}

func uvToST(u float64) float64 {
	if u >= 0 {
		return 0.5 * math.Sqrt(1+3*u)
	}
	return 1 - 0.5*math.Sqrt(1-3*u)
}

func stToIJ(s float64) int {
	return min(max(int(math.Floor(maxSize*s)), 0), maxSize-1)
}

const (
	maxLevel   = 30
	posBits    = 2*maxLevel + 1
	maxSize    = 1 << maxLevel
	lookupBits = 4
	swapMask   = 1
	invertMask = 2
)

// lookupPos maps lookupBits bits each of i and j and an orientation
// (iiiijjjjoo) to lookupBits levels of Hilbert position and the
// orientation after them (ppppppppoo): s2's table of the same name.
var lookupPos = func() (t [1 << (2*lookupBits + 2)]uint16) {
	posToIJ := [4][4]int{{0, 1, 3, 2}, {0, 2, 3, 1}, {3, 2, 0, 1}, {3, 1, 0, 2}}
	posToOrientation := [4]int{swapMask, 0, 0, invertMask | swapMask}
	var fill func(level, i, j, orig, pos, orientation int)
	fill = func(level, i, j, orig, pos, orientation int) {
		if level == lookupBits {
			t[(i<<lookupBits+j)<<2+orig] = uint16(pos<<2 + orientation)
			return
		}
		r := posToIJ[orientation]
		for p := range 4 {
			fill(level+1, i<<1+r[p]>>1, j<<1+r[p]&1, orig, pos<<2+p, orientation^posToOrientation[p])
		}
	}
	for o := range 4 {
		fill(0, 0, 0, o, 0, o)
	}
	return t
}()
