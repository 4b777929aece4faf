package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-data/lockstep/formats/geo"
)

// geoLookup loads a geo asset with lockstep's own reader and times lookups
// of every point (LAT,LON lines), after one untimed pass to warm the
// caches; it prints {"seconds", "points", "matches", "load_seconds"}.
func geoLookup(args []string) error {
	fs := flag.NewFlagSet("geo-lookup", flag.ExitOnError)
	asset := fs.String("asset", "", "the geo asset (.sst)")
	points := fs.String("points", "", "a file of LAT,LON lines")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the timed pass to `FILE`")
	one := fs.Bool("one", false, "Lookup one point at a time rather than LookupAll")
	passes := fs.Int("passes", 1, "time `N` passes and report the median (an A/B on a noisy machine)")
	fs.Parse(args)
	f, err := os.Open(*points)
	if err != nil {
		return err
	}
	var lat, lon []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, b, _ := strings.Cut(sc.Text(), ",")
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: bad line %q", *points, sc.Text())
		}
		lat, lon = append(lat, x), append(lon, y)
	}
	f.Close()
	t0 := time.Now()
	a, err := os.Open(*asset)
	if err != nil {
		return err
	}
	st, _ := a.Stat()
	ix, err := geo.Load(a, st.Size())
	if err != nil {
		return err
	}
	load := time.Since(t0).Seconds()
	var ms []geo.Match
	pass := func() int {
		n := 0
		if *one {
			for i := range lat {
				ms = ix.Lookup(lat[i], lon[i], ms[:0])
				n += len(ms)
			}
			return n
		}
		ix.LookupAll(lat, lon, func(_ int, ms []geo.Match) { n += len(ms) })
		return n
	}
	pass()
	if *profile != "" {
		pf, err := os.Create(*profile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	var n int
	secs := make([]float64, max(*passes, 1))
	for i := range secs {
		t1 := time.Now()
		n = pass()
		secs[i] = time.Since(t1).Seconds()
	}
	slices.Sort(secs)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"seconds": (secs[(len(secs)-1)/2] + secs[len(secs)/2]) / 2, "points": len(lat), "matches": n, "load_seconds": load,
	})
}
