package geo

import (
	"math/rand/v2"
	"testing"
)

// TestRuns checks that a small shape stored as runs of vertices answers
// every point as its edges do: rings with holes, several polygons, a ring
// with a repeated vertex and edges that join no other, at vertices, on
// edges and anywhere.
func TestRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	grid := func() float64 { return float64(rng.IntN(9)) } // shared vertices and edges on the ray
	for range 2000 {
		var edges []float64
		for range 1 + rng.IntN(3) {
			n := 3 + rng.IntN(6)
			x0, y0 := grid(), grid()
			x, y := x0, y0
			for i := range n {
				nx, ny := grid(), grid()
				if i == n-1 {
					nx, ny = x0, y0 // close the ring
				}
				edges = append(edges, x, y, nx, ny)
				x, y = nx, ny
			}
		}
		if rng.IntN(3) == 0 { // an edge that continues no run
			edges = append(edges, grid(), grid(), grid(), grid())
		}
		runs := appendRuns(nil, edges)
		if len(runs) >= len(edges) {
			t.Fatalf("runs of %d edges take %d words, not fewer than the edges' %d", len(edges)/4, len(runs), len(edges))
		}
		for range 50 {
			x, y := rng.Float64()*9, rng.Float64()*9
			switch rng.IntN(3) {
			case 0:
				x, y = grid(), grid()
			case 1:
				e := 4 * rng.IntN(len(edges)/4)
				f := rng.Float64()
				x, y = edges[e]+f*(edges[e+2]-edges[e]), edges[e+1]+f*(edges[e+3]-edges[e+1])
			}
			if got, want := containsRuns(runs, x, y), containsEdges(edges, nil, x, y); got != want {
				t.Fatalf("edges %v, point (%v, %v): runs say %v, edges %v", edges, x, y, got, want)
			}
		}
	}
}
