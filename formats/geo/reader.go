package geo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/cockroachdb/pebble/sstable"
	"github.com/golang/geo/s2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
	"github.com/lockstep-data/lockstep/formats/internal/sst"
)

// Open reads a geo table's footer, index and properties; the cells and
// features are loaded on the first lookup.
func (Format) Open(r io.ReaderAt, size int64) (rd formats.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("geo: not a readable SSTable: %v", p)
		}
	}()
	t, err := sst.Open(r, size)
	if err != nil {
		return nil, fmt.Errorf("geo: not a readable SSTable: %w", err)
	}
	up := t.Properties.UserProperties
	if up[propVersion] != layoutVersion {
		t.Close()
		return nil, fmt.Errorf("geo: not a lockstep geo table (property %s is %q, want %q)", propVersion, up[propVersion], layoutVersion)
	}
	kinds, err := keyenc.ParseKinds(up[propIDKind])
	if err != nil || len(kinds) != 1 {
		t.Close()
		return nil, fmt.Errorf("geo: property %s is %q: %v", propIDKind, up[propIDKind], err)
	}
	return &reader{t: t, up: up, kinds: kinds}, nil
}

type reader struct {
	t     *sstable.Reader
	up    map[string]string
	kinds []keyenc.Kind

	once sync.Once
	ix   *Index
	err  error
}

func (r *reader) prop(k string) int64 {
	n, _ := strconv.ParseInt(r.up[k], 10, 64)
	return n
}

func (r *reader) Rows() int64 { return r.prop(propFeatures) }

func (r *reader) Describe() map[string]any {
	p := r.t.Properties
	return map[string]any{
		"features": r.prop(propFeatures), "vertices": r.prop(propVertices),
		"cells": r.prop(propCells), "cell_entries": r.prop(propEntries),
		"levels": r.up[propLevels], "min_level": r.prop(propMinLevel), "max_level": r.prop(propMaxLevel),
		"max_cells": r.prop(propMaxCells), "interior": r.up[propInterior] == "true", "edges": r.up[propEdges],
		"id": r.up[propIDColumn], "properties": r.up[propProps], "value": r.up[propValue],
		"skipped_invalid": r.prop(propSkipped), "repaired": r.prop(propRepaired),
		"data_bytes": p.DataSize, "index_bytes": p.IndexSize, "filter_bytes": p.FilterSize, "compression": p.CompressionName,
	}
}

func (r *reader) index() (*Index, error) {
	r.once.Do(func() { r.ix, r.err = load(r.t, r.up, r.kinds) })
	return r.ix, r.err
}

// Query looks up points written LAT,LON (degrees): each gives the features
// that contain it, or one row of nulls. With no arguments it lists the
// first features.
func (r *reader) Query(ctx context.Context, args []string, limit int) (res *formats.Result, err error) {
	ix, err := r.index()
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		res = &formats.Result{Columns: []string{"id", "vertices", "properties"}}
		for i := range ix.features {
			if len(res.Rows) >= limit {
				break
			}
			f := &ix.features[i]
			props, err := ix.properties(f)
			if err != nil {
				return nil, err
			}
			res.Rows = append(res.Rows, []any{f.ID, f.vertices, props})
		}
		return res, nil
	}
	res = &formats.Result{Columns: []string{"point", "id", "match", "properties"}}
	var ms []Match
	for _, a := range args {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lat, lng, err := parsePoint(a)
		if err != nil {
			return nil, err
		}
		ms = ix.Lookup(lat, lng, ms[:0])
		if len(ms) == 0 {
			res.Rows = append(res.Rows, []any{a, nil, nil, nil})
		}
		for _, m := range ms {
			f := &ix.features[m.Feature]
			props, err := ix.properties(f)
			if err != nil {
				return nil, err
			}
			match := "boundary" // an exact test decided
			if m.Interior {
				match = "interior"
			}
			res.Rows = append(res.Rows, []any{a, f.ID, match, props})
		}
		if len(res.Rows) >= limit {
			res.Rows = res.Rows[:limit]
			break
		}
	}
	return res, nil
}

// parsePoint reads "LAT,LON" in degrees.
func parsePoint(s string) (lat, lng float64, err error) {
	a, b, ok := strings.Cut(s, ",")
	if ok {
		lat, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
	}
	if ok && err == nil {
		lng, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
	}
	if !ok || err != nil || !(lat >= -90 && lat <= 90) || !(lng >= -180 && lng <= 180) {
		return 0, 0, fmt.Errorf("%w: geo: %q is not a point: write LAT,LON in degrees, latitude within ±90 and longitude within ±180, e.g. 47.37,8.54", formats.ErrBadQuery, s)
	}
	return lat, lng, nil
}

// Check reads the whole table: block checksums, key order, every cell's
// list (valid cell ids at the declared levels, flags, features that
// exist), every feature's geometry and properties, and the counts the
// properties declare.
func (r *reader) Check(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("geo: corrupt table: %v", p)
		}
	}()
	if err := r.t.ValidateBlockChecksums(); err != nil {
		return fmt.Errorf("geo: %w", err)
	}
	ix, err := load(r.t, r.up, r.kinds)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lo, hi := int(r.prop(propMinLevel)), int(r.prop(propMaxLevel))
	for _, l := range strings.Split(r.up[propLevels], ",") {
		if n, err := strconv.Atoi(l); l != "" && (err != nil || n < lo || n > hi) {
			return fmt.Errorf("geo: property %s is %q, outside min %d and max %d", propLevels, r.up[propLevels], lo, hi)
		}
	}
	for i := range ix.features {
		f := &ix.features[i]
		if _, err := ix.properties(f); err != nil {
			return err
		}
		polys, err := decodeWKB(f.WKB)
		if err == nil {
			_, err = check(polys, false)
		}
		if err != nil {
			return fmt.Errorf("geo: feature %s: %v", ix.describe(f), err)
		}
	}
	for k, n := range map[string]int{propFeatures: len(ix.features), propCells: ix.ncells, propEntries: ix.entries} {
		if r.prop(k) != int64(n) {
			return fmt.Errorf("geo: the table holds %d, and property %s says %s", n, k, r.up[k])
		}
	}
	if got := uint64(len(ix.features) + ix.ncells); got != r.t.Properties.NumEntries {
		return fmt.Errorf("geo: %d entries, and the table's properties say %d", got, r.t.Properties.NumEntries)
	}
	return nil
}

func (r *reader) Close() error { return r.t.Close() }

// Index is a geo table loaded for lookups, as lockstep's own reader does
// it: the cells, which either nest or are disjoint, are flattened into
// disjoint ranges of leaf cells ("spans"), each with the features of every
// cell that holds it, so that a lookup is one short search and the exact
// tests of the boundary features (docs/formats.md describes the plain
// algorithm a server in another language can use instead: one Get per
// level). An Index is safe for concurrent lookups.
type Index struct {
	up       map[string]string
	kinds    []keyenc.Kind
	features []Feature
	shapes   []shape // the exact tests of shapes not in flats
	ncells   int
	entries  int

	spans []span // in leaf order, disjoint
	// A span with three to maxFew features lists them in few; one with
	// more names the cells that hold it in chain, indexes into cellHits,
	// whose hits are raw[lo:hi]. Cells nest at most 31 deep, so this stays
	// within 31 words a span however many features overlap.
	few      []hit
	chain    []int32
	cellHits []cellRange
	raw      []hit
	level    int      // the level of table's cells
	depth    int      // the deepest cell's level: a lookup needs the point's cell no deeper
	table    []uint32 // for each cell at level, the first span that ends at or after its first leaf
	// flats holds every small shape (at most smallShape edges) as its
	// bounds, the length of its runs and its runs (appendRuns), back to
	// back: an exact test reads one stretch of memory. flatAt[f] is
	// feature f's offset, or -1.
	flats  []float64
	flatAt []int32
	far    bool // the lookup arrays are larger than farBytes: LookupAll prefetches
}

// cellRange is a cell's hits in Index.raw.
type cellRange struct{ lo, hi int32 }

// span is a range of leaf cells, start to end, and its hits: a, and b
// unless b.fi is noHit; or, when a.fi is inFew or inChain, the hits few[o:
// o+n] or those of the cells chain[o:o+n], where b is {o, n}. It is 32
// bytes, two to a cache line, so that the search of a table cell's few
// spans reads a few lines, which hold the span it finds too, and the span
// says where the hits are without another read.
type span struct {
	start, end uint64
	a, b       hit
}

const (
	noHit   = -1 // span.b: the span has one hit
	inFew   = -2 // span.a: the hits are in Index.few
	inChain = -3 // span.a: the hits are those of cells in Index.chain
)

// hit is a feature in a cell: fi is the feature's index << 1 | 1 when the
// cell lies wholly inside it; flat its offset in flats, or -1.
type hit struct{ fi, flat int32 }

// Feature is one feature of the table.
type Feature struct {
	Key        []byte // the id, in the kv key encoding
	ID         any    // the id, decoded
	WKB        []byte // the geometry, little-endian 2D WKB
	Properties []byte // JSON or msgpack, as lockstep.geo.value says
	vertices   int
}

// Match is a feature that contains a point; Interior says the point's
// cell lies wholly inside it, so no exact test was needed.
type Match struct {
	Feature  int // index into Features()
	Interior bool
}

// Features lists the table's features in id order.
func (ix *Index) Features() []Feature { return ix.features }

// Load reads a whole geo table into memory for lookups.
func Load(r io.ReaderAt, size int64) (*Index, error) {
	rd, err := Format{}.Open(r, size)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return rd.(*reader).index()
}

func load(t *sstable.Reader, up map[string]string, kinds []keyenc.Kind) (ix *Index, err error) {
	defer func() {
		if p := recover(); p != nil {
			ix, err = nil, fmt.Errorf("geo: corrupt table: %v", p)
		}
	}()
	ix = &Index{up: up, kinds: kinds}
	it, err := t.NewIter(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer it.Close()
	byID := map[string]int32{}
	for k, lv := it.SeekGE([]byte{spaceFeature}, 0); k != nil; k, lv = it.Next() {
		key := k.UserKey
		if len(key) < 2 || key[0] != spaceFeature {
			return nil, fmt.Errorf("geo: key %x is in no key space (c or f)", key)
		}
		v, _, err := lv.Value(nil)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		f := Feature{Key: bytes.Clone(key[1:])}
		vals, err := keyenc.Decode(f.Key, kinds)
		if err != nil {
			return nil, fmt.Errorf("geo: feature key %x: %v", key, err)
		}
		f.ID = vals[0]
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			return nil, fmt.Errorf("geo: feature %s: its value does not start with the geometry's length", ix.describe(&f))
		}
		v = bytes.Clone(v) // the iterator reuses its buffer
		f.WKB, f.Properties = v[w:w+int(n)], v[w+int(n):]
		polys, err := decodeWKB(f.WKB)
		if err != nil {
			return nil, fmt.Errorf("geo: feature %s: %v", ix.describe(&f), err)
		}
		f.vertices = vertices(polys)
		byID[string(f.Key)] = int32(len(ix.features))
		ix.features = append(ix.features, f)
		ix.shapes = append(ix.shapes, *newShape(polys))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	ix.flatten()

	levels := map[int]bool{}
	for _, l := range strings.Split(up[propLevels], ",") {
		if n, err := strconv.Atoi(l); err == nil {
			levels[n] = true
		}
	}
	type cellHits struct {
		id     s2.CellID
		lo, hi int32
	}
	// Sized from the properties up front, so that growing them does not
	// hold two copies at once; within what the file can hold, and at most
	// 2^24 up front, so that a hostile property cannot allocate at will
	// (a larger table grows them as it is read).
	bound := func(prop string, most uint64) int {
		n, _ := strconv.ParseUint(up[prop], 10, 64)
		return int(min(n, most, 1<<24))
	}
	cells := make([]cellHits, 0, bound(propCells, t.Properties.NumEntries))
	raw := make([]hit, 0, bound(propEntries, t.Properties.RawValueSize/2))
	var prevCell s2.CellID
	for k, lv := it.First(); k != nil && len(k.UserKey) > 0 && k.UserKey[0] == spaceCell; k, lv = it.Next() {
		key := k.UserKey
		if len(key) != 9 || !s2.CellID(binary.BigEndian.Uint64(key[1:])).IsValid() {
			return nil, fmt.Errorf("geo: key %x is not c and a valid cell id", key)
		}
		c := s2.CellID(binary.BigEndian.Uint64(key[1:]))
		if l := c.Level(); !levels[l] {
			return nil, fmt.Errorf("geo: cell %s is at level %d, not one of the table's levels %s", c, l, up[propLevels])
		}
		if ix.ncells > 0 && c <= prevCell {
			return nil, fmt.Errorf("geo: cell %s does not follow %s", c, prevCell)
		}
		v, _, err := lv.Value(nil)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		lo := int32(len(raw))
		var prev []byte
		for len(v) > 0 {
			n, w := binary.Uvarint(v)
			if w <= 0 || n >= uint64(len(v)-w) {
				return nil, fmt.Errorf("geo: cell %s: its list is truncated", c)
			}
			id, flag := v[w:w+int(n)], v[w+int(n)]
			v = v[w+int(n)+1:]
			f, ok := byID[string(id)]
			if !ok {
				return nil, fmt.Errorf("geo: cell %s names feature %s, which the table lacks", c, keyenc.Describe(id, []string{up[propIDColumn]}, kinds))
			}
			if flag > flagInterior || (prev != nil && bytes.Compare(id, prev) <= 0) {
				return nil, fmt.Errorf("geo: cell %s: its list is not features in id order with flags 0 or 1", c)
			}
			prev = id
			raw = append(raw, hit{f<<1 | int32(flag), ix.flatAt[f]})
			ix.entries++
		}
		prevCell = c
		ix.depth = max(ix.depth, c.Level())
		ix.ncells++
		cells = append(cells, cellHits{c, lo, int32(len(raw))})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}

	// Flatten: cells either nest or are disjoint, so a sweep in order of
	// their first leaf (larger cells first) with a stack of the cells that
	// hold the current position gives disjoint spans and their hits.
	slices.SortFunc(cells, func(a, b cellHits) int {
		if c := cmp.Compare(a.id.RangeMin(), b.id.RangeMin()); c != 0 {
			return c
		}
		return cmp.Compare(a.id.Level(), b.id.Level())
	})
	ix.spans = make([]span, 0, 2*len(cells)+1) // each cell starts a span and may start one after it
	ix.raw = raw
	ix.cellHits = make([]cellRange, len(cells))
	for i, c := range cells {
		ix.cellHits[i] = cellRange{c.lo, c.hi}
	}
	tooMany := false
	var stack []int32 // indexes into cells
	stackHits := 0    // the hits of the cells on the stack
	var hs []hit
	emit := func(from, to uint64) {
		if len(stack) == 0 || from > to {
			return
		}
		n := len(ix.spans)
		hs = hs[:0]
		if stackHits <= maxFew {
			for _, c := range stack {
				for _, h := range raw[cells[c].lo:cells[c].hi] {
					if j := slices.IndexFunc(hs, func(x hit) bool { return x.fi>>1 == h.fi>>1 }); j >= 0 {
						hs[j].fi |= h.fi & 1 // interior in any cell: inside
						continue
					}
					hs = append(hs, h)
				}
			}
		}
		if len(ix.few) > math.MaxInt32-maxFew || len(ix.chain) > math.MaxInt32-32 {
			tooMany = true // a span's {offset, count} is two int32s
			return
		}
		if len(hs) > 2 {
			if n > 0 && ix.spans[n-1].end+1 == from && slices.Equal(ix.spanFew(n-1), hs) {
				ix.spans[n-1].end = to
				return
			}
			ix.spans = append(ix.spans, span{start: from, end: to, a: hit{inFew, -1}, b: hit{int32(len(ix.few)), int32(len(hs))}})
			ix.few = append(ix.few, hs...)
			return
		}
		if len(hs) == 0 {
			// A span that continues the previous one with the same
			// cells extends it.
			if n > 0 && ix.spans[n-1].start <= from && ix.spans[n-1].end+1 == from && slices.Equal(ix.spanChain(n-1), stack) {
				ix.spans[n-1].end = to
				return
			}
			ix.spans = append(ix.spans, span{start: from, end: to, a: hit{inChain, -1}, b: hit{int32(len(ix.chain)), int32(len(stack))}})
			ix.chain = append(ix.chain, stack...)
			return
		}
		// A span that continues the previous one with the same hits
		// extends it: a feature's interior is often many adjacent cells.
		if n > 0 && ix.spans[n-1].end+1 == from && ix.spans[n-1].a.fi >= 0 && slices.Equal(ix.spanHits(n-1), hs) {
			ix.spans[n-1].end = to
			return
		}
		sp := span{start: from, end: to, a: hs[0], b: hit{noHit, -1}}
		if len(hs) == 2 {
			sp.b = hs[1]
		}
		ix.spans = append(ix.spans, sp)
	}
	pop := func() uint64 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		stackHits -= int(cells[c].hi - cells[c].lo)
		return uint64(cells[c].id.RangeMax())
	}
	var pos uint64
	for i, c := range cells {
		lo := uint64(c.id.RangeMin())
		for len(stack) > 0 && uint64(cells[stack[len(stack)-1]].id.RangeMax()) < lo {
			end := uint64(cells[stack[len(stack)-1]].id.RangeMax())
			emit(pos, end)
			pos = end + 1
			pop()
		}
		if lo > 0 {
			emit(pos, lo-1)
		}
		pos = lo
		stack = append(stack, int32(i))
		stackHits += int(c.hi - c.lo)
	}
	for len(stack) > 0 {
		end := uint64(cells[stack[len(stack)-1]].id.RangeMax())
		emit(pos, end)
		pos = end + 1
		pop()
	}
	if tooMany {
		return nil, fmt.Errorf("geo: %d cells overlap more than this reader holds (2^31 features listed over its spans): build the table with a lower max_level or fewer max_cells", len(cells))
	}
	if len(ix.chain) == 0 {
		ix.raw, ix.cellHits = nil, nil // only chains read them
	}
	ix.buildTable()
	ix.far = 4*len(ix.table)+32*len(ix.spans)+8*len(ix.few)+8*len(ix.flats) > farBytes
	hugePages(ix.table)
	hugePages(ix.spans)
	hugePages(ix.flats)
	hugePages(ix.few)
	hugePages(ix.raw)
	return ix, nil
}

// spanHits lists the hits of span i, which has one or two.
func (ix *Index) spanHits(i int) []hit {
	if sp := ix.spans[i]; sp.b.fi != noHit {
		return []hit{sp.a, sp.b}
	}
	return []hit{ix.spans[i].a}
}

// maxFew is the most hits (over the cells that hold a span) that a span
// copies into its own list; beyond, it names the cells.
const maxFew = 8

// spanFew lists span i's hits when it has a few list, else nil.
func (ix *Index) spanFew(i int) []hit {
	if sp := &ix.spans[i]; sp.a.fi == inFew {
		return ix.few[sp.b.fi : sp.b.fi+sp.b.flat]
	}
	return nil
}

// spanChain lists the cells of span i, or nil when it names its hits.
func (ix *Index) spanChain(i int) []int32 {
	if sp := &ix.spans[i]; sp.a.fi == inChain {
		return ix.chain[sp.b.fi : sp.b.fi+sp.b.flat]
	}
	return nil
}

// flatten moves every small shape into flats: its bounds, the length of
// its runs and its runs back to back, so that an exact test reads one
// stretch of memory; and the edges and bands of the others into one array
// each.
func (ix *Index) flatten() {
	ix.flatAt = make([]int32, len(ix.shapes))
	var edges []float64
	var bands []int32
	for f := range ix.shapes {
		sh := &ix.shapes[f]
		ix.flatAt[f] = -1
		if sh.bandStart == nil && len(ix.flats) < math.MaxInt32-1000 {
			at := len(ix.flats)
			ix.flatAt[f] = int32(at)
			ix.flats = appendRuns(append(ix.flats, sh.minX, sh.minY, sh.maxX, sh.maxY, 0), sh.edges)
			ix.flats[at+4] = float64(len(ix.flats) - at - 5)
			*sh = shape{}
			continue
		}
		edges = append(edges, sh.edges...)
		bands = append(bands, sh.bandStart...)
		bands = append(bands, sh.bandEdges...)
	}
	for f := range ix.shapes {
		if ix.flatAt[f] >= 0 {
			continue
		}
		sh := &ix.shapes[f]
		ne, nb, nbe := len(sh.edges), len(sh.bandStart), len(sh.bandEdges)
		sh.edges, edges = edges[:ne:ne], edges[ne:]
		if nb > 0 {
			sh.bandStart, bands = bands[:nb:nb], bands[nb:]
			sh.bandEdges, bands = bands[:nbe:nbe], bands[nbe:]
		}
	}
}

// buildTable indexes the spans by a coarse level's cells, about four spans
// per cell and at most 6·4^10 cells (24 MiB), so that a lookup searches a
// few spans, not all.
func (ix *Index) buildTable() {
	for ix.level = 0; ix.level < 10 && 6<<(2*ix.level) < len(ix.spans)/4; ix.level++ {
	}
	n := 6 << (2 * ix.level)
	ix.table = make([]uint32, n+1)
	j := 0
	for k := range n {
		first := uint64(s2.CellID(uint64(k)<<(61-2*ix.level) | 1<<(60-2*ix.level)).RangeMin())
		for j < len(ix.spans) && ix.spans[j].end < first {
			j++
		}
		ix.table[k] = uint32(j)
	}
	ix.table[n] = uint32(len(ix.spans))
}

// Lookup appends to dst the features that contain the point (degrees),
// in id order.
func (ix *Index) Lookup(lat, lng float64, dst []Match) []Match {
	leaf := cellOf(lat, lng, ix.depth)
	k := leaf >> (61 - 2*ix.level)
	return ix.tests(dst, ix.find(leaf, int(ix.table[k]), int(ix.table[k+1])), lat, lng)
}

// find returns the span that holds leaf, searching the spans the table
// gave (lo to hi, inclusive), or -1.
func (ix *Index) find(leaf uint64, lo, hi int) int {
	hi = min(hi+1, len(ix.spans))
	// The last span in [lo, hi) that starts at or before leaf.
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ix.spans[m].start <= leaf {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo - 1
	if i < 0 || ix.spans[i].start > leaf || ix.spans[i].end < leaf {
		return -1
	}
	return i
}

// tests appends the features of span i (none when i < 0) that hold the
// point, in id order.
func (ix *Index) tests(dst []Match, i int, lat, lng float64) []Match {
	if i < 0 {
		return dst
	}
	sp := &ix.spans[i]
	if sp.b.fi == noHit {
		return ix.test(dst, sp.a, lng, lat)
	}
	start := len(dst)
	switch {
	case sp.a.fi >= 0:
		dst = ix.test(ix.test(dst, sp.a, lng, lat), sp.b, lng, lat)
		if len(dst)-start == 2 && dst[start].Feature > dst[start+1].Feature {
			dst[start], dst[start+1] = dst[start+1], dst[start]
		}
		return dst
	case sp.a.fi == inFew:
		for _, h := range ix.spanFew(i) {
			dst = ix.test(dst, h, lng, lat)
		}
	default:
		dst = ix.testChain(dst, ix.spanChain(i), lng, lat)
	}
	slices.SortFunc(dst[start:], func(a, b Match) int { return cmp.Compare(a.Feature, b.Feature) })
	return dst
}

// fetch adds to ahead the first lines of a flat shape, which an exact test
// reads first: those of its words 0, 8 and 16 (its bounds and length, and
// its first seven or more vertices: the whole of most small shapes). A
// small shape runs to about 125 words, but asking for five lines rather
// than three made the lookups slower (more misses in flight than the CPU
// takes); the test reads the rest as it comes.
func (ix *Index) fetch(ahead []uintptr, h hit) []uintptr {
	if h.fi < 0 || h.fi&1 == 1 || h.flat < 0 {
		return ahead // no test: an interior cell, or a shape not in flats
	}
	end := min(int(h.flat)+24, len(ix.flats))
	for i := int(h.flat); i < end; i += 8 {
		ahead = append(ahead, uintptr(unsafe.Pointer(&ix.flats[i])))
	}
	return ahead
}

// farBytes is the size of an index's lookup arrays above which LookupAll
// prefetches: about what the caches of a core hold. Below it, the lines
// are in cache already, and asking for them is only work (on the
// countries, 60% more instructions in LookupAll itself, by cachegrind).
const farBytes = 4 << 20

// lookupBlock is how many points LookupAll moves through a step at once.
const lookupBlock = 32

// lookupBlocks holds the blocks in LookupAll's pipeline: each of its five
// steps works on a different block.
type lookupBlocks [5]struct {
	leaf   [lookupBlock]uint64
	lo, hi [lookupBlock]int
}

// LookupAll is Lookup for many points (lats and lngs of one length): it
// calls visit(i, matches) for each point i, in order (matches is reused by
// the next call). It gives the same answers, faster. It reads points up to
// four blocks ahead of the one it visits, so visit must not change lats or
// lngs.
//
// A lookup is a few dependent reads at random in arrays of hundreds of
// megabytes (the table, the spans, the few lists, the shapes), each a cache
// miss. So LookupAll is a pipeline of five steps, each of which prefetches
// what the next reads: the point's cell, then its table entry, then the
// span, then the few list, then the exact tests. In each round every step
// takes one block of points, a block later than the one before it took;
// so what a step prefetches has a round's work (the cells and the tests
// of two other blocks) to arrive, and the misses of many points overlap.
func (ix *Index) LookupAll(lats, lngs []float64, visit func(i int, matches []Match)) {
	if len(lats) != len(lngs) {
		panic(fmt.Sprintf("geo: LookupAll with %d latitudes and %d longitudes", len(lats), len(lngs)))
	}
	var (
		bl    lookupBlocks
		ms    []Match
		ahead = make([]uintptr, 0, 3*maxFew) // the lines a step asks for, for one point
	)
	shift := 61 - 2*ix.level
	nb := (len(lats) + lookupBlock - 1) / lookupBlock
	// points gives block k's slot in bl and its points' first index and count.
	points := func(k int) (int, int, int) {
		base := k * lookupBlock
		return k % len(bl), base, min(lookupBlock, len(lats)-base)
	}
	for r := range nb + len(bl) - 1 {
		// Each step asks for the lines of one point at a time, between
		// its other work: the CPU takes only so many misses in flight, and
		// a burst of the lines of a whole block at once made the lookups
		// slower.
		if k := r; k < nb { // the cells; prefetch their table entries
			s, base, n := points(k)
			for j := range n {
				c := cellOf(lats[base+j], lngs[base+j], ix.depth)
				bl[s].leaf[j] = c
				if ix.far {
					prefetch(append(ahead[:0], uintptr(unsafe.Pointer(&ix.table[c>>shift]))))
				}
			}
		}
		if k := r - 1; k >= 0 && k < nb { // the table; prefetch the spans to search
			s, _, n := points(k)
			b := &bl[s]
			for j := range n {
				t := b.leaf[j] >> shift
				b.lo[j], b.hi[j] = int(ix.table[t]), int(ix.table[t+1])
				if ix.far {
					ahead = ahead[:0]
					for m := b.lo[j]; m <= min(b.hi[j], len(ix.spans)-1); m += 2 { // two spans a line
						ahead = append(ahead, uintptr(unsafe.Pointer(&ix.spans[m])))
					}
					prefetch(ahead)
				}
			}
		}
		if k := r - 2; k >= 0 && k < nb { // the span; prefetch its shapes or its few list
			s, _, n := points(k)
			b := &bl[s]
			for j := range n {
				i := ix.find(b.leaf[j], b.lo[j], b.hi[j])
				b.lo[j] = i
				if i < 0 || !ix.far {
					continue
				}
				switch sp := &ix.spans[i]; sp.a.fi {
				case inFew:
					prefetch(append(ahead[:0], uintptr(unsafe.Pointer(&ix.few[sp.b.fi])), uintptr(unsafe.Pointer(&ix.few[sp.b.fi+sp.b.flat-1]))))
				case inChain:
				default:
					prefetch(ix.fetch(ix.fetch(ahead[:0], sp.a), sp.b))
				}
			}
		}
		if k := r - 3; k >= 0 && k < nb && ix.far { // the few lists; prefetch their shapes
			s, _, n := points(k)
			for j := range n {
				if i := bl[s].lo[j]; i >= 0 && ix.spans[i].a.fi == inFew {
					ahead = ahead[:0]
					for _, h := range ix.spanFew(i) {
						ahead = ix.fetch(ahead, h)
					}
					prefetch(ahead)
				}
			}
		}
		if k := r - 4; k >= 0 && k < nb { // the exact tests
			s, base, n := points(k)
			for j := range n {
				ms = ix.tests(ms[:0], bl[s].lo[j], lats[base+j], lngs[base+j])
				visit(base+j, ms)
			}
		}
	}
}

// testChain appends the features of the chain's cells that hold (x, y),
// each once: first those flagged interior in any cell, then the others by
// the exact test.
func (ix *Index) testChain(dst []Match, chain []int32, x, y float64) []Match {
	start := len(dst)
	var seen map[int32]bool // for many features; a scan of dst for few
	n := 0
	for _, c := range chain {
		n += int(ix.cellHits[c].hi - ix.cellHits[c].lo)
	}
	if n > 32 {
		seen = make(map[int32]bool, n)
	}
	has := func(f int32) bool {
		if seen != nil {
			return seen[f]
		}
		return slices.ContainsFunc(dst[start:], func(m Match) bool { return m.Feature == int(f) })
	}
	for pass := int32(1); pass >= 0; pass-- {
		for _, c := range chain {
			for _, h := range ix.raw[ix.cellHits[c].lo:ix.cellHits[c].hi] {
				f := h.fi >> 1
				if h.fi&1 != pass || has(f) {
					continue
				}
				if pass == 1 || ix.contains(int(f), h.flat, x, y) {
					dst = append(dst, Match{int(f), pass == 1})
				}
				if seen != nil {
					seen[f] = true // tested: in or out, once
				}
			}
		}
	}
	return dst
}

// test appends h's feature when it holds (x, y): at once when its cell
// lies inside it, else by the exact test.
func (ix *Index) test(dst []Match, h hit, x, y float64) []Match {
	f, interior := int(h.fi>>1), h.fi&1 == 1
	if interior || ix.contains(f, h.flat, x, y) {
		dst = append(dst, Match{f, interior})
	}
	return dst
}

// contains is the exact test of feature f, from flats when it is there.
func (ix *Index) contains(f int, flat int32, x, y float64) bool {
	if flat < 0 {
		return ix.shapes[f].contains(x, y)
	}
	b := ix.flats[flat:]
	if x < b[0] || y < b[1] || x > b[2] || y > b[3] {
		return false
	}
	return containsRuns(b[5:5+int(b[4])], x, y)
}

// appendRuns appends edges (x0, y0, x1, y1 each) to dst as runs: a run is
// its vertex count and then its vertices (x, y), each edge from one vertex
// to the next, and a new run starts where an edge does not start at the
// end of the one before. A ring is one run, its first vertex again at its
// end, so a small shape takes about half the words of its edges, and its
// test reads half the cache lines.
func appendRuns(dst, edges []float64) []float64 {
	head := -1
	for e := 0; e+3 < len(edges); e += 4 {
		if head < 0 || edges[e] != dst[len(dst)-2] || edges[e+1] != dst[len(dst)-1] {
			head = len(dst)
			dst = append(dst, 1, edges[e], edges[e+1])
		}
		dst = append(dst, edges[e+2], edges[e+3])
		dst[head]++
	}
	return dst
}

// containsRuns is containsEdges over the edges of runs (appendRuns), in
// the same order.
func containsRuns(runs []float64, x, y float64) bool {
	in := false
	for len(runs) > 0 {
		n := 2 * int(runs[0])
		v := runs[1 : 1+n]
		runs = runs[1+n:]
		for i := 0; i+3 < len(v); i += 2 {
			switch crossEdge(v[i], v[i+1], v[i+2], v[i+3], x, y) {
			case onEdge:
				return true
			case crosses:
				in = !in
			}
		}
	}
	return in
}

// properties decodes a feature's property columns.
func (ix *Index) properties(f *Feature) (any, error) {
	var v any
	var err error
	if ix.up[propValue] == "msgpack" {
		err = msgpack.Unmarshal(f.Properties, &v)
	} else {
		err = json.Unmarshal(f.Properties, &v)
	}
	if err != nil {
		return nil, fmt.Errorf("geo: feature %s: its properties are not %s: %v", ix.describe(f), ix.up[propValue], err)
	}
	return v, nil
}

func (ix *Index) describe(f *Feature) string {
	return keyenc.Describe(f.Key, []string{ix.up[propIDColumn]}, ix.kinds)
}
