// Package geo is the `geo` format: polygons compiled into an S2 cell index
// for point-in-polygon lookups, in one RocksDB-compatible SSTable (the kv
// format's writer settings), so that a server that embeds RocksDB ingests
// it and `sst_dump` reads it.
//
// The table has two key spaces (docs/formats.md has the byte layout and
// the lookup algorithm):
//
//	c + cell id (8 bytes, big-endian)  -> the features whose covering holds the cell, each flagged interior or boundary
//	f + feature id (the kv key encoding) -> the feature's geometry (WKB) and its property columns
//
// Coverings come from s2.RegionCoverer over the feature as its data means
// it: GeoParquet's default planar edges, straight lines in longitude and
// latitude (see shape). Rows are sorted with the shared sorter within the
// memory budget, as kv's are.
package geo

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/golang/geo/s2"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/inputs"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
	"github.com/lockstep-data/lockstep/formats/internal/sorter"
	"github.com/lockstep-data/lockstep/formats/internal/sst"
	"github.com/lockstep-data/lockstep/formats/internal/valenc"
)

// Key spaces.
const (
	spaceCell    = 'c'
	spaceFeature = 'f'
)

// Flags of a feature in a cell's list.
const (
	flagBoundary = 0 // the cell meets the feature's boundary: test the point exactly
	flagInterior = 1 // the cell lies wholly inside the feature
)

// Table properties (lockstep.geo.*), documented in docs/formats.md.
const (
	propVersion   = "lockstep.geo.version"
	propEdges     = "lockstep.geo.edges"
	propIDColumn  = "lockstep.geo.id.column"
	propIDKind    = "lockstep.geo.id.kind"
	propProps     = "lockstep.geo.properties"
	propValue     = "lockstep.geo.value"
	propMinLevel  = "lockstep.geo.min_level"
	propMaxLevel  = "lockstep.geo.max_level"
	propMaxCells  = "lockstep.geo.max_cells"
	propInterior  = "lockstep.geo.interior"
	propLevels    = "lockstep.geo.levels" // the levels that hold cells, comma-separated
	propFeatures  = "lockstep.geo.features"
	propCells     = "lockstep.geo.cells"
	propEntries   = "lockstep.geo.cell_entries"
	propVertices  = "lockstep.geo.vertices"
	propSkipped   = "lockstep.geo.skipped"
	propRepaired  = "lockstep.geo.repaired"
	layoutVersion = "1"
)

// Format is the `geo` format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Keyed:     true,
		Name:      "geo",
		Version:   "s2-sst/1",
		MediaType: "application/vnd.lockstep.geo+sstable",
		Ext:       ".sst",
	}
}

type config struct {
	geometry    string
	encoding    string
	id          string
	props       []string
	value       string
	minLevel    int64
	maxLevel    int64
	maxCells    int64
	interior    bool
	invalid     string
	edges       string
	blockSize   int64
	compression string
	bloomBits   int64
	sortBuffer  int64
	share       int64
	tempDir     string
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("geo", opts)
	c := &config{
		geometry:    o.String("geometry", ""),
		encoding:    o.String("encoding", "", "wkb", "wkt"),
		id:          o.String("id", ""),
		props:       o.Columns("properties"),
		value:       o.String("value", "json", "json", "msgpack"),
		minLevel:    o.Int("min_level", 2, 0, s2.MaxLevel),
		maxLevel:    o.Int("max_level", 16, 0, s2.MaxLevel),
		maxCells:    o.Int("max_cells", 16, 1, 10000),
		interior:    o.Bool("interior", true),
		invalid:     o.String("invalid", "error", "error", "skip", "repair"),
		edges:       o.String("edges", "", "planar"),
		blockSize:   o.Size("block_size", 4<<10, 256, 64<<20),
		compression: o.String("compression", "snappy", "none", "snappy", "zstd"),
		bloomBits:   o.Int("bloom_bits", 10, 0, 32),
		sortBuffer:  o.Size("sort_buffer", 0, 64<<10, 1<<50),
		tempDir:     o.String("temp_dir", ""),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	if c.id == "" {
		return nil, fmt.Errorf("%w: geo needs option id: the column that names each feature (unique)", formats.ErrBadOption)
	}
	if c.minLevel > c.maxLevel {
		return nil, fmt.Errorf("%w: geo min_level %d is above max_level %d", formats.ErrBadOption, c.minLevel, c.maxLevel)
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{
		"id": c.id, "value": c.value, "min_level": c.minLevel, "max_level": c.maxLevel,
		"max_cells": c.maxCells, "interior": c.interior, "invalid": c.invalid,
		"block_size": c.blockSize, "compression": c.compression, "bloom_bits": c.bloomBits, "sort_buffer": "auto",
	}
	for k, v := range map[string]string{"geometry": c.geometry, "encoding": c.encoding, "edges": c.edges} {
		if v != "" {
			m[k] = v
		}
	}
	if c.props != nil {
		m["properties"] = c.props
	}
	if c.sortBuffer > 0 {
		m["sort_buffer"] = c.sortBuffer
	}
	return m
}

var _ formats.SortingConfig = (*config)(nil)

func (c *config) SortMemory() (bool, int64) { return true, c.sortBuffer }

func (c *config) WithSortMemory(n int64) formats.Config {
	cp := *c
	cp.share = n
	return &cp
}

// geoParquet is the part of GeoParquet's `geo` file metadata lockstep reads.
type geoParquet struct {
	Primary string `json:"primary_column"`
	Columns map[string]struct {
		Encoding string          `json:"encoding"`
		CRS      json.RawMessage `json:"crs"`
		Edges    string          `json:"edges"`
	} `json:"columns"`
}

// GeoMetadataKey is the Arrow schema metadata key that carries a
// GeoParquet file's `geo` metadata (the pipeline copies it from the
// Parquet footer, as pyarrow does).
const GeoMetadataKey = "geo"

// column works out the geometry column and its encoding and edges, from
// the options and GeoParquet's metadata.
func (c *config) column(schema *arrow.Schema) (idx int, encoding, edges string, err error) {
	var meta *geoParquet
	if i := schema.Metadata().FindKey(GeoMetadataKey); i >= 0 {
		meta = &geoParquet{}
		if err := json.Unmarshal([]byte(schema.Metadata().Values()[i]), meta); err != nil {
			return 0, "", "", fmt.Errorf("%w: geo: the input's GeoParquet metadata is not JSON: %v", formats.ErrBadInput, err)
		}
	}
	name := c.geometry
	if name == "" {
		if meta == nil || meta.Primary == "" {
			return 0, "", "", fmt.Errorf("%w: geo: the input is not GeoParquet (no `geo` metadata); set option geometry to its WKB or WKT column (columns: %s)", formats.ErrBadInput, columnList(schema))
		}
		name = meta.Primary
	}
	is := schema.FieldIndices(name)
	if len(is) == 0 {
		return 0, "", "", fmt.Errorf("%w: geo geometry: no column %q in the input (columns: %s)", formats.ErrBadInput, name, columnList(schema))
	}
	idx = is[0]
	encoding, edges = c.encoding, c.edges
	if meta != nil {
		if col, ok := meta.Columns[name]; ok {
			if encoding == "" {
				switch strings.ToUpper(col.Encoding) {
				case "WKB", "":
					encoding = "wkb"
				default:
					return 0, "", "", fmt.Errorf("%w: geo: column %q is GeoParquet %s; lockstep reads the WKB encoding (write it with geometry_encoding='WKB')", formats.ErrBadInput, name, col.Encoding)
				}
			}
			if edges == "" && col.Edges != "" && col.Edges != "planar" {
				return 0, "", "", fmt.Errorf("%w: geo: column %q has %s edges; lockstep indexes planar edges (straight in longitude and latitude), GeoParquet's default", formats.ErrBadInput, name, col.Edges)
			}
			if err := checkCRS(name, col.CRS); err != nil {
				return 0, "", "", err
			}
		}
	}
	t := schema.Field(idx).Type.ID()
	binaryCol := t == arrow.BINARY || t == arrow.LARGE_BINARY
	stringCol := t == arrow.STRING || t == arrow.LARGE_STRING
	if encoding == "" {
		encoding = "wkb"
		if stringCol {
			encoding = "wkt"
		}
	}
	if (encoding == "wkb" && !binaryCol) || (encoding == "wkt" && !stringCol) {
		return 0, "", "", fmt.Errorf("%w: geo geometry: column %q is %s; encoding %s needs a %s column", formats.ErrBadInput, name, schema.Field(idx).Type,
			encoding, map[string]string{"wkb": "binary", "wkt": "string"}[encoding])
	}
	return idx, encoding, "planar", nil
}

// checkCRS accepts longitude/latitude on WGS 84: no crs (GeoParquet's
// default, OGC:CRS84), OGC:CRS84 or EPSG:4326.
func checkCRS(col string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var crs struct {
		Name string `json:"name"`
		ID   struct {
			Authority string `json:"authority"`
			Code      any    `json:"code"`
		} `json:"id"`
	}
	if string(raw) == "null" {
		return fmt.Errorf("%w: geo: column %q has an unknown CRS (crs: null in its GeoParquet metadata); lockstep needs longitude/latitude: set it upstream, e.g. GeoPandas set_crs(\"EPSG:4326\")", formats.ErrBadInput, col)
	}
	if err := json.Unmarshal(raw, &crs); err != nil {
		return fmt.Errorf("%w: geo: column %q: its GeoParquet crs is not PROJJSON: %v", formats.ErrBadInput, col, err)
	}
	code := fmt.Sprint(crs.ID.Code)
	switch {
	case crs.ID.Authority == "EPSG" && code == "4326", crs.ID.Authority == "OGC" && code == "CRS84":
		return nil
	}
	return fmt.Errorf("%w: geo: column %q is in CRS %q (%s:%s); lockstep indexes longitude/latitude (OGC:CRS84 or EPSG:4326): reproject upstream, e.g. GeoPandas to_crs(\"EPSG:4326\")",
		formats.ErrBadInput, col, crs.Name, crs.ID.Authority, code)
}

func columnList(s *arrow.Schema) string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name+" "+f.Type.String())
	}
	return strings.Join(names, ", ")
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	gi, encoding, edges, err := c.column(schema)
	if err != nil {
		return nil, err
	}
	keys, err := keyenc.New(schema, []string{c.id})
	if err != nil {
		return nil, fmt.Errorf("%w: geo id: %v", formats.ErrBadInput, err)
	}
	props := c.props
	if props == nil {
		for _, f := range schema.Fields() {
			if f.Name != c.id && f.Name != schema.Field(gi).Name {
				props = append(props, f.Name)
			}
		}
	}
	var pidx []int
	for _, name := range props {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return nil, fmt.Errorf("%w: geo properties: no column %q in the input (columns: %s)", formats.ErrBadInput, name, columnList(schema))
		}
		if !valenc.Supported(schema.Field(is[0]).Type) {
			return nil, fmt.Errorf("%w: geo: column %q has type %s, which has no JSON or msgpack mapping; leave it out of properties", formats.ErrBadInput, name, schema.Field(is[0]).Type)
		}
		pidx = append(pidx, is[0])
	}
	budget := c.sortBuffer
	if budget == 0 {
		budget = c.share
	}
	if budget == 0 {
		budget = sorter.DefaultBudget()
	}
	kinds := keys.Kinds(schema)
	wr := &writer{
		cfg: c, gi: gi, encoding: encoding, keys: keys, kinds: kinds, pidx: pidx,
		obj:  valenc.NewObjectEncoder(c.value == "msgpack", props),
		out:  &sst.Writable{W: w},
		cov:  &s2.RegionCoverer{MinLevel: int(c.minLevel), MaxLevel: int(c.maxLevel), LevelMod: 1, MaxCells: int(c.maxCells)},
		feat: sorter.New(sorter.Config{Budget: budget / 2, TempDir: c.tempDir, Policy: sorter.PolicyError}),
		// A duplicate id repeats its cells too; the features sorter
		// reports it, naming both records.
		cells: sorter.New(sorter.Config{Budget: budget / 2, TempDir: c.tempDir, Policy: sorter.PolicyFirst}),
		props: map[string]string{
			propVersion: layoutVersion, propEdges: edges, propIDColumn: c.id, propIDKind: kinds[0].String(),
			propProps: strings.Join(props, ","), propValue: c.value,
			propMinLevel: strconv.FormatInt(c.minLevel, 10), propMaxLevel: strconv.FormatInt(c.maxLevel, 10),
			propMaxCells: strconv.FormatInt(c.maxCells, 10), propInterior: strconv.FormatBool(c.interior),
		},
	}
	wr.opts = sstable.WriterOptions{
		BlockSize:               int(c.blockSize),
		TableFormat:             sstable.TableFormatRocksDBv2,
		Compression:             map[string]sstable.Compression{"none": sstable.NoCompression, "snappy": sstable.SnappyCompression, "zstd": sstable.ZstdCompression}[c.compression],
		TablePropertyCollectors: []func() sstable.TablePropertyCollector{sst.Properties(wr.props)},
	}
	if c.bloomBits > 0 {
		wr.opts.FilterPolicy = bloom.FilterPolicy(c.bloomBits)
		wr.opts.FilterType = sstable.TableFilter
	}
	return wr, nil
}

type writer struct {
	cfg      *config
	gi       int
	encoding string
	keys     *keyenc.Encoder
	kinds    []keyenc.Kind
	pidx     []int
	obj      *valenc.ObjectEncoder
	out      *sst.Writable
	opts     sstable.WriterOptions
	props    map[string]string
	cov      *s2.RegionCoverer
	feat     *sorter.Sorter // f + id -> geometry and properties
	cells    *sorter.Sorter // c + cell + id -> flag
	files    inputs.Files

	rows      int64   // records seen
	skippedAt []int64 // records skipped, ascending: maps sorter ordinals back to records
	features  int64
	vertices  int64
	repaired  int64
	written   int64 // features in the table, after Close

	kbuf, cbuf, gbuf []byte
	pcols            []arrow.Array
	batch            []feature
}

func (w *writer) StartFile(path string) { w.files.Start(w.rows, path) }

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	geomAt := geometryColumn(rec.Column(w.gi))
	w.pcols = w.pcols[:0]
	for _, i := range w.pidx {
		w.pcols = append(w.pcols, rec.Column(i))
	}
	w.obj.Bind(w.pcols)
	gcol := rec.Column(w.gi)
	w.batch = w.batch[:0]
	for i := range int(rec.NumRows()) {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var err error
		w.kbuf, err = w.keys.Append(append(w.kbuf[:0], spaceFeature), rec, i)
		if err != nil {
			return fmt.Errorf("%w: geo: %s: %v", formats.ErrBadInput, w.files.Name(w.rows), err)
		}
		var polys []polygon
		if gcol.IsNull(i) {
			err = invalidf("the geometry is null")
		} else if w.encoding == "wkt" {
			polys, err = decodeWKT(string(geomAt(i)))
		} else {
			polys, err = decodeWKB(geomAt(i))
		}
		repaired := false
		if err == nil {
			repaired, err = check(polys, w.cfg.invalid == "repair")
		}
		if err != nil {
			if w.cfg.invalid == "error" {
				return fmt.Errorf("%w: geo: feature %s (%s): %v; fix it upstream, or set invalid: skip (or repair)",
					formats.ErrBadInput, keyenc.Describe(w.kbuf[1:], []string{w.cfg.id}, w.kinds), w.files.Name(w.rows), err)
			}
			w.skippedAt = append(w.skippedAt, w.rows)
			w.rows++
			continue
		}
		if repaired {
			w.repaired++
		}
		w.gbuf = encodeWKB(w.gbuf[:0], polys)
		f := feature{polys: polys, key: bytes.Clone(w.kbuf)}
		f.val = binary.AppendUvarint(nil, uint64(len(w.gbuf)))
		f.val = w.obj.Append(append(f.val, w.gbuf...), i)
		w.batch = append(w.batch, f)
		w.rows++
	}
	return w.add(ctx)
}

// geometryColumn returns the bytes of row i of a binary or string column.
func geometryColumn(col arrow.Array) func(i int) []byte {
	switch a := col.(type) {
	case *array.Binary:
		return a.Value
	case *array.LargeBinary:
		return a.Value
	case *array.String:
		return func(i int) []byte { return []byte(a.Value(i)) }
	case *array.LargeString:
		return func(i int) []byte { return []byte(a.Value(i)) }
	}
	panic("geo: geometry column of type " + col.DataType().String()) // column() refuses these
}

// feature is a valid feature on its way to the sorters: its covering is
// computed by cover, on every core, then add queues it in input order.
type feature struct {
	polys    []polygon
	key, val []byte // f + id; the feature's value
	cells    []s2.CellID
	flags    []byte
}

// cover computes f's covering: the cells of s2.RegionCoverer's covering,
// each flagged interior or boundary, then interior cells within the
// boundary ones.
func (w *writer) cover(f *feature) {
	sh := newShape(f.polys)
	var boundary []s2.CellID
	for _, c := range w.cov.Covering(sh) {
		flag := byte(flagInterior)
		if inside, _ := sh.relateCell(c); !inside {
			flag = flagBoundary
			boundary = append(boundary, c)
		}
		f.cells, f.flags = append(f.cells, c), append(f.flags, flag)
	}
	if w.cfg.interior {
		for _, c := range interiorCells(sh, boundary, int(w.cfg.maxLevel), int(w.cfg.maxCells)) {
			f.cells, f.flags = append(f.cells, c), append(f.flags, flagInterior)
		}
	}
}

// add covers the batch's features concurrently, then queues their
// entries in input order, so the sorters' ordinals stay record order.
func (w *writer) add(ctx context.Context) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range min(runtime.GOMAXPROCS(0), len(w.batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := -1
			defer func() {
				// A bug must not take the process down from a goroutine
				// no one recovers: it fails this build, naming the feature.
				if p := recover(); p != nil {
					err := fmt.Errorf("geo: covering feature %s: internal error: %v", keyenc.Describe(w.batch[i].key[1:], []string{w.cfg.id}, w.kinds), p)
					failed.CompareAndSwap(nil, &err)
				}
			}()
			for i = int(next.Add(1)) - 1; i < len(w.batch) && ctx.Err() == nil && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				w.cover(&w.batch[i])
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range w.batch {
		f := &w.batch[i]
		id := f.key[1:]
		for j, c := range f.cells {
			w.cbuf = binary.BigEndian.AppendUint64(append(w.cbuf[:0], spaceCell), uint64(c))
			w.cbuf = append(w.cbuf, id...)
			if err := w.cells.Add(ctx, w.cbuf, f.flags[j:j+1]); err != nil {
				return w.sortError(err)
			}
		}
		w.features++
		w.vertices += int64(vertices(f.polys))
		if err := w.feat.Add(ctx, f.key, f.val); err != nil {
			return w.sortError(err)
		}
		*f = feature{}
	}
	return nil
}

func (w *writer) Close(ctx context.Context) error {
	feed := sst.NewFeeder(sstable.NewWriter(w.out, w.opts))
	if err := w.emit(ctx, feed); err != nil {
		feed.Close(true)
		return err
	}
	if err := feed.Close(false); err != nil {
		return fmt.Errorf("geo: %w", err)
	}
	return nil
}

// emit writes the cells, grouped into one entry per cell, then the
// features; both arrive sorted, and c sorts before f.
func (w *writer) emit(ctx context.Context, feed *sst.Feeder) error {
	var (
		cur     []byte // the cell key being grouped
		val     []byte
		cells   int64
		entries int64
		levels  [s2.MaxLevel + 1]bool
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		cells++
		levels[s2.CellID(binary.BigEndian.Uint64(cur[1:])).Level()] = true
		return feed.Set(cur, val)
	}
	err := w.cells.Finish(ctx, func(key, v []byte) error {
		if cur == nil || string(key[:9]) != string(cur) {
			if err := flush(); err != nil {
				return err
			}
			cur, val = append(cur[:0], key[:9]...), val[:0]
		}
		id := key[9:]
		val = binary.AppendUvarint(val, uint64(len(id)))
		val = append(append(val, id...), v[0])
		entries++
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return w.sortError(err)
	}
	if err := w.feat.Finish(ctx, func(key, v []byte) error { w.written++; return feed.Set(key, v) }); err != nil {
		return w.sortError(err)
	}
	var lv []string
	for l, ok := range levels {
		if ok {
			lv = append(lv, strconv.Itoa(l))
		}
	}
	for k, v := range map[string]int64{propFeatures: w.written, propCells: cells, propEntries: entries,
		propVertices: w.vertices, propSkipped: int64(len(w.skippedAt)), propRepaired: w.repaired} {
		w.props[k] = strconv.FormatInt(v, 10)
	}
	w.props[propLevels] = strings.Join(lv, ",")
	return nil
}

// interiorCells finds cells wholly inside the shape within the boundary
// cells of its covering, coarsest first: at most max of them, and at most
// 64×max cells tested, so that a long thin feature cannot make the search
// run to max_level along all its length (s2.RegionCoverer's interior
// covering has no such bound).
func interiorCells(sh *shape, boundary []s2.CellID, maxLevel, max int) []s2.CellID {
	queue := slices.Clone(boundary)
	slices.SortStableFunc(queue, func(a, b s2.CellID) int { return a.Level() - b.Level() })
	var out []s2.CellID
	budget := 64 * max
	for len(queue) > 0 && len(out) < max && budget > 0 {
		c := queue[0]
		queue = queue[1:]
		if c.Level() >= maxLevel {
			continue
		}
		for _, ch := range c.Children() {
			budget--
			switch inside, meets := sh.relateCell(ch); {
			case inside && len(out) < max:
				out = append(out, ch)
			case meets:
				queue = append(queue, ch)
			}
		}
	}
	slices.Sort(out)
	return out
}

// sortError names the feature and the records of a duplicate id.
func (w *writer) sortError(err error) error {
	var dup *sorter.DuplicateError
	if errors.As(err, &dup) {
		_, first := w.Duplicates()
		return first
	}
	if err != nil {
		return fmt.Errorf("geo: %w", err)
	}
	return nil
}

func (w *writer) Abort() {
	w.feat.Close()
	w.cells.Close()
}

// Rows is the number of features in the table.
func (w *writer) Rows() int64 { return w.written }

// Stats reports the features the invalid policy skipped or repaired, for
// the manifest.
func (w *writer) Stats() map[string]int64 {
	return map[string]int64{"skipped_invalid": int64(len(w.skippedAt)), "repaired": w.repaired, "vertices": w.vertices}
}

// Duplicates reports features with the id of the one before them (see
// formats.DuplicateCounter); ids must be unique.
func (w *writer) Duplicates() (int64, *formats.DuplicateKeyError) {
	d := w.feat.Duplicates()
	if d.First == nil {
		return d.N, nil
	}
	e := w.files.Duplicate("geo", keyenc.Describe(d.First.Key[1:], []string{w.cfg.id}, w.kinds), w.record(d.First.Ord1), w.record(d.First.Ord2))
	e.Unique = true
	return d.N, e
}

// record maps the features sorter's ordinal back to the record, skipping
// the records the invalid policy dropped.
func (w *writer) record(ord int64) int64 {
	for _, s := range w.skippedAt {
		if s > ord {
			break
		}
		ord++
	}
	return ord
}
