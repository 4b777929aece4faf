// Command benchdata writes the deterministic inputs of `make bench` (scripts/bench)
// in Spark's layout, and measures a child process for it.
//
//	benchdata places   -out DIR -rows N [-sorted] [-seed S]   places rows, id a permutation of [0,N)
//	benchdata networks -out DIR -rows N [-seed S]             non-overlapping IPv4 /24s and IPv6 /48s
//	benchdata measure  -o FILE [-cap-mb M] -- CMD [ARGS...]  run CMD; write wall seconds, peak RSS, bytes read
//	benchdata geo-lookup -asset FILE.sst -points FILE          time lockstep's geo reader on LAT,LON lines
//
// A folder holds 16 files part-000NN-<uuid>-c000.snappy.parquet and an empty
// _SUCCESS, row groups of 128Ki rows, snappy, Spark's schema metadata. Every
// column of a place is a function of its id and the seed, so the unsorted and
// the presorted copies hold the same rows; only their order differs.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

const (
	files        = 16
	rowGroupRows = 128 << 10
	batchRows    = 4096
	fileUUID     = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10" // fixed, so paths (and fingerprints) are stable
)

// Place is one row of the places dataset, in Spark's schema: id and name
// required, the rest nullable (parquet-go writes a zero value as null; no
// generated value is zero), tags a three-level LIST of nullable strings,
// updated microseconds since the epoch (Spark's TIMESTAMP_MICROS output).
type Place struct {
	ID         int64    `parquet:"id"`
	Name       string   `parquet:"name,plain"`
	Country    string   `parquet:"country,optional,dict"`
	Lat        float64  `parquet:"lat,optional"`
	Lon        float64  `parquet:"lon,optional"`
	Population int64    `parquet:"population,optional"`
	Tags       []string `parquet:"tags,optional,list" parquet-element:",optional,dict"`
	Updated    int64    `parquet:"updated,optional,timestamp(microsecond:utc)"`
}

const placesSparkSchema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"name","type":"string","nullable":false,"metadata":{}},{"name":"country","type":"string","nullable":true,"metadata":{}},{"name":"lat","type":"double","nullable":true,"metadata":{}},{"name":"lon","type":"double","nullable":true,"metadata":{}},{"name":"population","type":"long","nullable":true,"metadata":{}},{"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},{"name":"updated","type":"timestamp","nullable":true,"metadata":{}}]}`

// Network is one row of the networks dataset.
type Network struct {
	Network string `parquet:"network,plain"`
	City    string `parquet:"city,optional,dict"`
	ASN     int64  `parquet:"asn,optional"`
}

const networksSparkSchema = `{"type":"struct","fields":[{"name":"network","type":"string","nullable":false,"metadata":{}},{"name":"city","type":"string","nullable":true,"metadata":{}},{"name":"asn","type":"long","nullable":true,"metadata":{}}]}`

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "places", "networks":
		err = generate(os.Args[1], os.Args[2:])
	case "measure":
		err = measure(os.Args[2:])
	case "geo-lookup":
		err = geoLookup(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdata:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchdata places|networks -out DIR -rows N [-sorted] [-seed S] | measure -o FILE -- CMD... | geo-lookup -asset F -points F")
	os.Exit(2)
}

// ---- deterministic values --------------------------------------------------

// mix is splitmix64's finalizer: a bijection on uint64 with good avalanche.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is a splitmix64 stream.
type rng struct{ s uint64 }

func (r *rng) next() uint64 { r.s += 0x9e3779b97f4a7c15; return mix(r.s) }

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

var syllables = []string{
	"ka", "lo", "ri", "ma", "ne", "to", "sa", "vi", "du", "ber", "gen", "hal", "stad", "ville",
	"burg", "mont", "port", "ko", "za", "ni", "el", "an", "or", "us", "ia", "do", "re", "fi",
	"ta", "po", "li", "mu", "ce", "ga", "bo", "ha", "je", "qu", "wy", "xe",
}

func word(r *rng, minSyl, maxSyl int) string {
	n := minSyl + int(r.next()%uint64(maxSyl-minSyl+1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(syllables[r.next()%uint64(len(syllables))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

var tagPool = []string{"city", "town", "village", "capital", "port", "airport", "station", "hub",
	"coast", "island", "river", "lake", "hill", "old", "new", "north", "south", "east", "west", "market"}

// countries: about 200 distinct names.
func countries(seed uint64) []string {
	r := &rng{seed ^ 0xc0ffee}
	seen := map[string]bool{}
	var out []string
	for len(out) < 200 {
		w := word(r, 2, 3)
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// place returns the row of id: every column is a function of (seed, id).
func place(seed uint64, id int64, cs []string, p *Place) {
	r := &rng{mix(seed ^ uint64(id)*0x2545f4914f6cdd1d)}
	p.ID = id
	p.Name = fmt.Sprintf("%s-%d", word(r, 3, 5), id) // unique; ~20 bytes
	// Skewed: a few countries hold most places.
	a, b := r.next()%uint64(len(cs)), r.next()%uint64(len(cs))
	p.Country = cs[min(a, b)]
	p.Lat = -89.9 + r.float()*179.8
	if p.Lat == 0 {
		p.Lat = 1e-9
	}
	p.Lon = -179.9 + r.float()*359.8
	if p.Lon == 0 {
		p.Lon = 1e-9
	}
	p.Population = 1 + int64(math.Exp(r.float()*16))
	p.Tags = p.Tags[:0]
	for n := r.next() % 4; n > 0; n-- {
		p.Tags = append(p.Tags, tagPool[r.next()%uint64(len(tagPool))])
	}
	if len(p.Tags) == 0 {
		p.Tags = nil
	}
	const from = 1577836800_000000 // 2020-01-01
	const span = 5 * 365 * 86400_000000
	p.Updated = from + int64(r.next()%span)
}

// permutation returns a random permutation of [0, n) (Fisher-Yates, fixed seed).
func permutation(seed uint64, n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	r := &rng{seed ^ 0x5eed}
	for i := n - 1; i > 0; i-- {
		j := int(r.next() % uint64(i+1))
		ids[i], ids[j] = ids[j], ids[i]
	}
	return ids
}

// Public IPv4 first octets: no 0, 10, 100 (100.64/10), 127, 169 (169.254/16),
// 172 (172.16/12), 192, 198, 203 (documentation, benchmarking, private), 224+.
func publicOctets() []byte {
	var out []byte
	for o := 1; o <= 223; o++ {
		switch o {
		case 10, 100, 127, 169, 172, 192, 198, 203:
			continue
		}
		out = append(out, byte(o))
	}
	return out
}

// networks returns n distinct networks, shuffled: half IPv4 /24s in public
// space, half IPv6 /48s in 2a00::/12. /24s and /48s of one family never overlap.
func networks(seed uint64, n int) []string {
	r := &rng{seed ^ 0x1e7}
	octets := publicOctets()
	seen4 := make(map[uint32]bool, n/2)
	seen6 := make(map[uint64]bool, n/2)
	out := make([]string, 0, n)
	for len(seen4) < n/2 {
		v := r.next()
		blk := uint32(octets[v%uint64(len(octets))])<<16 | uint32(v>>32)&0xffff
		if seen4[blk] {
			continue
		}
		seen4[blk] = true
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], blk<<8)
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), 24).String())
	}
	for len(out) < n {
		v := r.next() & (1<<36 - 1) // the 36 bits between /12 and /48
		if seen6[v] {
			continue
		}
		seen6[v] = true
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], 0x2a00<<48|v<<16)
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a), 48).String())
	}
	for i := len(out) - 1; i > 0; i-- {
		j := int(r.next() % uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// ---- writing -----------------------------------------------------------------

func generate(kind string, args []string) error {
	fs := flag.NewFlagSet(kind, flag.ExitOnError)
	out := fs.String("out", "", "output folder (replaced)")
	rows := fs.Int("rows", 10_000_000, "rows")
	sorted := fs.Bool("sorted", false, "places: rows in id order (files in path order, each sorted)")
	seed := fs.Uint64("seed", 20240801, "seed")
	_ = fs.Parse(args)
	if *out == "" || *rows < files {
		return errors.New("need -out and -rows >= 16")
	}
	t0 := time.Now()
	tmp := *out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	per := (*rows + files - 1) / files
	span := func(f int) (int, int) { return min(f*per, *rows), min((f+1)*per, *rows) }

	var job func(f int, path string) error
	switch kind {
	case "places":
		var ids []int64
		if !*sorted {
			ids = permutation(*seed, *rows)
		}
		cs := countries(*seed)
		job = func(f int, path string) error {
			lo, hi := span(f)
			return writeFile(path, placesSparkSchema, hi-lo, func(i int, p *Place) {
				id := int64(lo + i)
				if ids != nil {
					id = ids[lo+i]
				}
				place(*seed, id, cs, p)
			})
		}
	case "networks":
		nets := networks(*seed, *rows)
		cities := make([]string, 20000)
		cr := &rng{*seed ^ 0xc17}
		for i := range cities {
			cities[i] = word(cr, 2, 4)
		}
		job = func(f int, path string) error {
			lo, hi := span(f)
			return writeFile(path, networksSparkSchema, hi-lo, func(i int, n *Network) {
				r := &rng{mix(*seed ^ uint64(lo+i+1))}
				org := r.next() % 50000 // 50,000 distinct (city, asn) records
				n.Network = nets[lo+i]
				n.City = cities[org%uint64(len(cities))]
				n.ASN = int64(1 + mix(org)%400000)
			})
		}
	}

	work := make(chan int)
	errs := make(chan error, files)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				name := fmt.Sprintf("part-%05d-%s-c000.snappy.parquet", f, fileUUID)
				if err := job(f, filepath.Join(tmp, name)); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
				}
			}
		}()
	}
	for f := 0; f < files; f++ {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "_SUCCESS"), nil, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchdata: %s %d rows (sorted=%v) into %s in %.1fs\n", kind, *rows, *sorted, *out, time.Since(t0).Seconds())
	return nil
}

// writeFile writes n rows made by fill into one snappy Parquet file.
func writeFile[T any](path, sparkSchema string, n int, fill func(i int, row *T)) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	w := parquet.NewGenericWriter[T](fh,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.DataPageVersion(1), // as Spark (parquet-mr) writes
		parquet.KeyValueMetadata("org.apache.spark.version", "3.5.5"),
		parquet.KeyValueMetadata("org.apache.spark.sql.parquet.row.metadata", sparkSchema),
	)
	batch := make([]T, batchRows)
	for i := 0; i < n; {
		k := min(batchRows, n-i)
		// Flush at row-group boundaries so every group holds exactly rowGroupRows.
		if left := rowGroupRows - i%rowGroupRows; k > left {
			k = left
		}
		for j := 0; j < k; j++ {
			fill(i+j, &batch[j])
		}
		if _, err := w.Write(batch[:k]); err != nil {
			return err
		}
		i += k
	}
	if err := w.Close(); err != nil {
		return err
	}
	return fh.Close()
}

// ---- measuring ---------------------------------------------------------------

// measure runs a command and writes {"wall_s", "peak_rss_kb", "read_bytes", "exit"}
// as JSON: wall time, the child's peak RSS from wait4's rusage, and the bytes it
// read through read(2) and friends (/proc/PID/io rchar, read before reaping).
// With -cap-mb, a child whose RSS passes the cap is killed ("capped": true), so
// a build that would exhaust the shared machine's memory stops first.
func measure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	out := fs.String("o", "", "JSON result file")
	capMB := fs.Int64("cap-mb", 0, "kill the child when its RSS passes this many MiB (0: no cap)")
	_ = fs.Parse(args)
	cmdArgs := fs.Args()
	if *out == "" || len(cmdArgs) == 0 {
		return errors.New("usage: measure -o FILE -- CMD [ARGS...]")
	}
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	var capped atomic.Bool
	if *capMB > 0 {
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				if rssKB(pid) > *capMB<<10 {
					capped.Store(true)
					_ = syscall.Kill(pid, syscall.SIGKILL)
					return
				}
			}
		}()
	}
	// Wait for the exit without reaping, so /proc/PID/io is still there.
	var info [128]byte
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid), uintptr(unsafe.Pointer(&info)), syscall.WEXITED|0x01000000 /* WNOWAIT */, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		break
	}
	wall := time.Since(t0).Seconds()
	close(done) // the poller stops before the pid is reaped and could be reused
	var rchar int64 = -1
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "rchar: "); ok {
				fmt.Sscan(v, &rchar)
			}
		}
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(pid, &ws, 0, &ru)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	res := map[string]any{"wall_s": wall, "peak_rss_kb": ru.Maxrss, "read_bytes": rchar, "exit": code, "capped": capped.Load(),
		"user_s": time.Duration(ru.Utime.Nano()).Seconds(), "sys_s": time.Duration(ru.Stime.Nano()).Seconds()}
	data, _ := json.Marshal(res)
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if code != 0 {
		os.Exit(code)
	}
	return nil
}

// rssKB is the resident set of pid in KiB (VmRSS), 0 once it is gone.
func rssKB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}
