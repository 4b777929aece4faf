package geo

import (
	"math"
	"math/rand"
	"testing"

	"github.com/golang/geo/s2"
)

// TestCellOf checks cellOf against s2 itself, bit for bit, at every
// level: on random points on the sphere, on the edges of the faces and of
// cells, at the poles and on the antimeridian.
func TestCellOf(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var pts [][2]float64
	for range 200000 {
		pts = append(pts, [2]float64{math.Asin(2*r.Float64()-1) * 180 / math.Pi, r.Float64()*360 - 180})
	}
	for _, lat := range []float64{-90, -45, -35.26438968275466, 0, math.Copysign(0, -1), 35.26438968275466, 45, 90, 89.999999999, -89.999999999} {
		for _, lng := range []float64{-180, -135, -90, -45, 0, math.Copysign(0, -1), 45, 90, 135, 180, 179.999999999} {
			pts = append(pts, [2]float64{lat, lng})
		}
	}
	// The corners of random cells, and the points just beside them.
	for range 20000 {
		c := s2.CellFromCellID(s2.CellIDFromLatLng(s2.LatLngFromDegrees(pts[r.Intn(len(pts))][0], pts[r.Intn(len(pts))][1])).Parent(r.Intn(31)))
		ll := s2.LatLngFromPoint(c.Vertex(r.Intn(4)))
		for _, d := range []float64{0, 1e-12, -1e-12} {
			pts = append(pts, [2]float64{ll.Lat.Degrees() + d, ll.Lng.Degrees() - d})
		}
	}
	for _, p := range pts {
		leaf := s2.CellIDFromLatLng(s2.LatLngFromDegrees(p[0], p[1]))
		for depth := range 31 {
			if got, want := cellOf(p[0], p[1], depth), uint64(leaf.Parent(depth).RangeMin()); got != want {
				t.Fatalf("cellOf(%v, %v, %d) = %x, s2 says %x", p[0], p[1], depth, got, want)
			}
		}
	}
}

func BenchmarkCellOf(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	lat, lng := make([]float64, 1<<16), make([]float64, 1<<16)
	for i := range lat {
		lat[i], lng[i] = math.Asin(2*r.Float64()-1)*180/math.Pi, r.Float64()*360-180
	}
	var sink uint64
	b.Run("s2", func(b *testing.B) {
		for i := range b.N {
			k := i & (1<<16 - 1)
			sink += uint64(s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat[k], lng[k])))
		}
	})
	b.Run("cellOf16", func(b *testing.B) {
		for i := range b.N {
			k := i & (1<<16 - 1)
			sink += cellOf(lat[k], lng[k], 16)
		}
	})
	b.Run("exact16", func(b *testing.B) {
		for i := range b.N {
			k := i & (1<<16 - 1)
			sink += cellOfExact(lat[k], lng[k], 16)
		}
	})
	_ = sink
}
