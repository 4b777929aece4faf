package geo

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang/geo/s2"
)

// FuzzGeometry feeds arbitrary bytes to the WKB decoder, the validity
// check (with repair) and the shape's tests: errors are fine, panics and
// runaway work are not. `go test` runs the seeds; `go test -fuzz
// FuzzGeometry ./formats/geo` explores.
func FuzzGeometry(f *testing.F) {
	for _, w := range append(tricky, "POLYGON ((0 0, 10 10, 10 0, 0 10, 0 0))", "POLYGON ((0 0, 1 1, 0 0, 1 1, 0 0))") {
		p, err := decodeWKT(w)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeWKB(nil, p))
	}
	f.Add([]byte{1, 3, 0, 0, 0, 255, 255, 255, 255})
	f.Add([]byte{0, 0x20, 0, 0, 6, 0, 0, 0x10, 0xE6, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		watchdog := time.AfterFunc(3*time.Second, func() { panic(fmt.Sprintf("more than 3 s on %x", b)) })
		defer watchdog.Stop()
		polys, err := decodeWKB(b)
		if err != nil {
			return
		}
		if _, err := check(polys, true); err != nil {
			return
		}
		sh := newShape(polys)
		sh.contains(0, 0)
		sh.relateCell(s2.CellIDFromLatLng(s2.LatLngFromDegrees(0, 0)).Parent(10))
		cov := &s2.RegionCoverer{MinLevel: 0, MaxLevel: 16, LevelMod: 1, MaxCells: 8}
		interiorCells(sh, cov.Covering(sh), 16, 8)
	})
}
