package geo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

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
	levels := map[int]bool{}
	for _, l := range strings.Split(r.up[propLevels], ",") {
		if n, err := strconv.Atoi(l); err == nil {
			levels[n] = true
		}
	}
	lo, hi := int(r.prop(propMinLevel)), int(r.prop(propMaxLevel))
	for _, c := range ix.cells {
		if l := c.Level(); l < lo || l > hi || !levels[l] {
			return fmt.Errorf("geo: cell %s is at level %d, outside the table's levels %s (min %d, max %d)", c, l, r.up[propLevels], lo, hi)
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
	for k, n := range map[string]int{propFeatures: len(ix.features), propCells: len(ix.cells), propEntries: ix.entries} {
		if r.prop(k) != int64(n) {
			return fmt.Errorf("geo: the table holds %d, and property %s says %s", n, k, r.up[k])
		}
	}
	if got := uint64(len(ix.features) + len(ix.cells)); got != r.t.Properties.NumEntries {
		return fmt.Errorf("geo: %d entries, and the table's properties say %d", got, r.t.Properties.NumEntries)
	}
	return nil
}

func (r *reader) Close() error { return r.t.Close() }

// Index is a geo table loaded for lookups, as lockstep's own reader does
// it: every cell's ancestors and descendants are flattened into disjoint
// ranges of leaf cells, each with the features of every cell that holds
// it, so that a lookup is one binary search and the exact tests of the
// boundary features (docs/formats.md describes the plain algorithm a
// server in another language can use instead: one Get per level).
type Index struct {
	up       map[string]string
	kinds    []keyenc.Kind
	features []Feature
	shapes   []*shape
	cells    []s2.CellID // the table's cells, in key order
	entries  int

	starts, ends []uint64 // range i is leaf cells starts[i]..ends[i]
	offs         []int32  // range i's hits are hits[offs[i]:offs[i+1]]
	hits         []hit
}

type hit struct {
	feature  int32
	interior bool
}

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
		ix.shapes = append(ix.shapes, newShape(polys))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	type cellHits struct {
		id     s2.CellID
		lo, hi int32
	}
	var cells []cellHits
	var raw []hit
	for k, lv := it.First(); k != nil && len(k.UserKey) > 0 && k.UserKey[0] == spaceCell; k, lv = it.Next() {
		key := k.UserKey
		if len(key) != 9 || !s2.CellID(binary.BigEndian.Uint64(key[1:])).IsValid() {
			return nil, fmt.Errorf("geo: key %x is not c and a valid cell id", key)
		}
		c := s2.CellID(binary.BigEndian.Uint64(key[1:]))
		v, _, err := lv.Value(nil)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		lo := int32(len(raw))
		var prev []byte
		for len(v) > 0 {
			n, w := binary.Uvarint(v)
			if w <= 0 || n+1 > uint64(len(v)-w) {
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
			raw = append(raw, hit{f, flag == flagInterior})
			ix.entries++
		}
		if len(ix.cells) > 0 && c <= ix.cells[len(ix.cells)-1] {
			return nil, fmt.Errorf("geo: cell %s does not follow %s", c, ix.cells[len(ix.cells)-1])
		}
		ix.cells = append(ix.cells, c)
		cells = append(cells, cellHits{c, lo, int32(len(raw))})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}

	// Flatten: cells either nest or are disjoint, so a sweep in order of
	// their first leaf (larger cells first) with a stack of the cells that
	// hold the current position gives disjoint ranges and their hits.
	slices.SortFunc(cells, func(a, b cellHits) int {
		if c := cmp.Compare(a.id.RangeMin(), b.id.RangeMin()); c != 0 {
			return c
		}
		return cmp.Compare(a.id.Level(), b.id.Level())
	})
	ix.offs = append(ix.offs, 0)
	var stack []cellHits
	emit := func(from, to uint64) {
		if len(stack) == 0 || from > to {
			return
		}
		start := len(ix.hits)
		for _, s := range stack {
			for _, h := range raw[s.lo:s.hi] {
				if j := slices.IndexFunc(ix.hits[start:], func(x hit) bool { return x.feature == h.feature }); j >= 0 {
					ix.hits[start+j].interior = ix.hits[start+j].interior || h.interior
					continue
				}
				ix.hits = append(ix.hits, h)
			}
		}
		ix.starts, ix.ends = append(ix.starts, from), append(ix.ends, to)
		ix.offs = append(ix.offs, int32(len(ix.hits)))
	}
	var pos uint64
	for _, c := range cells {
		lo := uint64(c.id.RangeMin())
		for len(stack) > 0 && uint64(stack[len(stack)-1].id.RangeMax()) < lo {
			end := uint64(stack[len(stack)-1].id.RangeMax())
			emit(pos, end)
			pos = end + 1
			stack = stack[:len(stack)-1]
		}
		if lo > 0 {
			emit(pos, lo-1)
		}
		pos = lo
		stack = append(stack, c)
	}
	for len(stack) > 0 {
		end := uint64(stack[len(stack)-1].id.RangeMax())
		emit(pos, end)
		pos = end + 1
		stack = stack[:len(stack)-1]
	}
	return ix, nil
}

// Lookup appends to dst the features that contain the point (degrees),
// in id order.
func (ix *Index) Lookup(lat, lng float64, dst []Match) []Match {
	leaf := uint64(s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat, lng)))
	i, found := slices.BinarySearch(ix.starts, leaf)
	if !found {
		i--
	}
	if i < 0 || leaf > ix.ends[i] {
		return dst
	}
	start := len(dst)
	for _, h := range ix.hits[ix.offs[i]:ix.offs[i+1]] {
		if h.interior || ix.shapes[h.feature].contains(lng, lat) {
			dst = append(dst, Match{int(h.feature), h.interior})
		}
	}
	slices.SortFunc(dst[start:], func(a, b Match) int { return cmp.Compare(a.Feature, b.Feature) })
	return dst
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
