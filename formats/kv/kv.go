// Package kv is the `kv` format: a RocksDB-compatible SSTable written by
// Pebble v1.1's sstable writer in TableFormatRocksDBv2, which RocksDB opens,
// reads and ingests with IngestExternalFile (Pebble v2 drops the
// rocksdb.external_sst_file.version property that ingestion needs).
//
// Keys are built from one or more columns with keyenc's order-preserving
// encoding, after an optional prefix; values are one raw column, or an
// object of columns as JSON or MessagePack (see valenc). Rows are sorted
// with the shared sorter within sort_buffer, spilling to disk beyond it.
package kv

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/sstable"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/inputs"
	"github.com/lockstep-data/lockstep/formats/internal/keyenc"
	"github.com/lockstep-data/lockstep/formats/internal/sorter"
	"github.com/lockstep-data/lockstep/formats/internal/sst"
	"github.com/lockstep-data/lockstep/formats/internal/valenc"
)

// Table properties that let a reader parse query keys and decode values.
const (
	propKeyColumns = "lockstep.key.columns" // comma-separated
	propKeyKinds   = "lockstep.key.kinds"   // comma-separated keyenc kinds: i8, s
	propKeyPrefix  = "lockstep.key.prefix"
	propValue      = "lockstep.value.encoding"
	propValueCols  = "lockstep.value.columns"
)

// Format is the `kv` format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Keyed:     true,
		Name:      "kv",
		Version:   "rocksdb-sst/2", // TableFormatRocksDBv2: block-based table, format_version 2
		MediaType: "application/vnd.lockstep.sstable",
		Ext:       ".sst",
	}
}

type config struct {
	key         []string
	value       string
	valueCols   []string
	blockSize   int64
	compression string
	bloomBits   int64
	prefix      string
	dups        string
	sortBuffer  int64
	share       int64 // the build's share of memory for this asset, when sortBuffer is 0
	tempDir     string
	shards      int64
	sorted      bool
}

func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("kv", opts)
	c := &config{
		key:         o.Columns("key"),
		value:       o.String("value", "json", "raw", "json", "msgpack"),
		valueCols:   o.Columns("value_columns"),
		blockSize:   o.Size("block_size", 4<<10, 256, 64<<20),
		compression: o.String("compression", "snappy", "none", "snappy", "zstd"),
		bloomBits:   o.Int("bloom_bits", 10, 0, 32),
		prefix:      o.String("key_prefix", ""),
		dups:        o.String("duplicates", "error", sorter.Policies...),
		sortBuffer:  o.Size("sort_buffer", 0, 64<<10, 1<<50),
		tempDir:     o.String("temp_dir", ""),
		shards:      o.Int("shards", 1, 1, maxShards),
		sorted:      o.Bool("sorted", false),
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	if len(c.key) == 0 {
		return nil, fmt.Errorf("%w: kv needs option key: the column (or list of columns) that makes each record's key", formats.ErrBadOption)
	}
	if c.sorted && c.shards > 1 {
		return nil, fmt.Errorf("%w: kv: sorted: true streams into one table; shards need the whole input first (drop one of them)", formats.ErrBadOption)
	}
	if c.value == "raw" && len(c.valueCols) != 1 {
		return nil, fmt.Errorf("%w: kv value: raw needs value_columns naming exactly one string or binary column", formats.ErrBadOption)
	}
	return c, nil
}

func (c *config) Options() map[string]any {
	m := map[string]any{
		"key": c.key, "value": c.value, "block_size": c.blockSize, "compression": c.compression,
		"bloom_bits": c.bloomBits, "duplicates": c.dups, "sort_buffer": "auto",
	}
	if c.shards > 1 {
		m["shards"] = c.shards
	}
	if c.valueCols != nil {
		m["value_columns"] = c.valueCols
	}
	if c.prefix != "" {
		m["key_prefix"] = c.prefix
	}
	if c.sortBuffer > 0 {
		m["sort_buffer"] = c.sortBuffer
	}
	if c.sorted {
		m["sorted"] = true
	}
	return m
}

var _ formats.SortingConfig = (*config)(nil)

func (c *config) SortMemory() (bool, int64) { return !c.sorted, c.sortBuffer }

// SortShare is the memory WithSortMemory gave this copy.
func (c *config) SortShare() int64 { return c.share }

func (c *config) WithSortMemory(n int64) formats.Config {
	cp := *c
	cp.share = n
	return &cp
}

// sortBudget is sort_buffer, else the build's share; 0 is the sorter's
// default.
func (c *config) sortBudget() int64 {
	if c.sortBuffer > 0 {
		return c.sortBuffer
	}
	return c.share
}

func (c *config) NewWriter(w io.Writer, schema *arrow.Schema) (formats.Writer, error) {
	return c.newWriter(w, schema)
}

func (c *config) newWriter(w io.Writer, schema *arrow.Schema) (*writer, error) {
	keys, err := keyenc.New(schema, c.key)
	if err != nil {
		return nil, fmt.Errorf("%w: kv key: %v", formats.ErrBadInput, err)
	}
	vcols := c.valueCols
	if vcols == nil {
		for _, f := range schema.Fields() {
			if !contains(c.key, f.Name) {
				vcols = append(vcols, f.Name)
			}
		}
	}
	vals, err := newValues(schema, c.value, vcols)
	if err != nil {
		return nil, err
	}
	kinds := keys.Kinds(schema)
	var kindNames []string
	for _, k := range kinds {
		kindNames = append(kindNames, k.String())
	}
	props := map[string]string{
		propKeyColumns: strings.Join(c.key, ","),
		propKeyKinds:   strings.Join(kindNames, ","),
		propKeyPrefix:  c.prefix,
		propValue:      c.value,
		propValueCols:  strings.Join(vcols, ","),
	}
	opts := sstable.WriterOptions{
		BlockSize: int(c.blockSize),
		// Not Parallelism: Pebble v1.1 then decides where to cut the
		// two-level index from the sizes of blocks still in flight, so the
		// bytes depend on timing (seen on 2M string keys;
		// TestDeterministicStringKeys). The feeder gives the overlap instead.
		Parallelism: false,
		TableFormat: sstable.TableFormatRocksDBv2,
		Compression: map[string]sstable.Compression{
			"none": sstable.NoCompression, "snappy": sstable.SnappyCompression, "zstd": sstable.ZstdCompression,
		}[c.compression],
		TablePropertyCollectors: []func() sstable.TablePropertyCollector{
			sst.Properties(props),
		},
	}
	if c.bloomBits > 0 {
		opts.FilterPolicy = bloom.FilterPolicy(c.bloomBits)
		opts.FilterType = sstable.TableFilter
	}
	budget := c.sortBudget()
	policy, _ := sorter.ParsePolicy(c.dups)
	wr := &writer{
		out:    &sst.Writable{W: w},
		opts:   opts,
		keys:   keys,
		names:  c.key,
		kinds:  kinds,
		vals:   vals,
		prefix: []byte(c.prefix),
		sort:   sorter.New(sorter.Config{Budget: budget, TempDir: c.tempDir, Policy: policy}),
	}
	if c.sorted {
		// Declared sorted: stream every entry straight into the table.
		feed := sst.NewFeeder(sstable.NewWriter(wr.out, wr.opts))
		wr.feed = feed
		wr.sort.Stream(func(key, val []byte) error { wr.entries++; return feed.Set(key, val) })
	}
	return wr, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type writer struct {
	feed    *sst.Feeder // the table, made up front when the input is declared sorted
	out     *sst.Writable
	opts    sstable.WriterOptions
	keys    *keyenc.Encoder
	names   []string
	kinds   []keyenc.Kind
	vals    *values
	prefix  []byte
	sort    *sorter.Sorter
	files   inputs.Files
	rows    int64 // records added
	entries int64 // entries written
	kbuf    []byte
	vbuf    []byte
}

func (w *writer) StartFile(path string) { w.files.Start(w.rows, path) }

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	w.vals.bind(rec)
	for i := range int(rec.NumRows()) {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var err error
		w.kbuf, err = w.keys.Append(append(w.kbuf[:0], w.prefix...), rec, i)
		if err != nil {
			return fmt.Errorf("%w: kv: %s: %v", formats.ErrBadInput, w.files.Name(w.rows), err)
		}
		w.vbuf = w.vals.append(w.vbuf[:0], i)
		if err := w.sort.Add(ctx, w.kbuf, w.vbuf); err != nil {
			return w.sortError(ctx, err)
		}
		w.rows++
	}
	return nil
}

func (w *writer) Close(ctx context.Context) error {
	feed := w.feed
	if feed == nil {
		feed = sst.NewFeeder(sstable.NewWriter(w.out, w.opts))
	}
	w.feed = nil // closed below, whatever happens
	if err := w.finish(ctx, func(key, val []byte) error { w.entries++; return feed.Set(key, val) }); err != nil {
		feed.Close(true)
		return err
	}
	if err := feed.Close(false); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// finish emits the sorted entries, naming a duplicate key and its files.
func (w *writer) finish(ctx context.Context, emit func(key, val []byte) error) error {
	return w.sortError(ctx, w.sort.Finish(ctx, emit))
}

// sortError names the key and the files of a duplicate or out-of-order key.
func (w *writer) sortError(ctx context.Context, err error) error {
	switch e := err.(type) {
	case nil:
		return nil
	case *sorter.DuplicateError:
		_, first := w.Duplicates()
		return first
	case *sorter.OrderError:
		return w.files.OutOfOrder("kv", keyenc.Describe(e.Key[len(w.prefix):], w.names, w.kinds),
			keyenc.Describe(e.Prev[len(w.prefix):], w.names, w.kinds), e.Ord, e.PrevOrd)
	}
	if ctx.Err() == nil {
		return fmt.Errorf("kv: %w", err)
	}
	return err
}

func (w *writer) Abort() {
	w.sort.Close()
	if w.feed != nil {
		w.feed.Close(true)
		w.feed = nil
	}
}

// Rows is the number of entries written, after the duplicate policy.
func (w *writer) Rows() int64 { return w.entries }

// Duplicates reports the records the duplicate policy met (see
// formats.DuplicateCounter).
func (w *writer) Duplicates() (int64, *formats.DuplicateKeyError) {
	d := w.sort.Duplicates()
	if d.First == nil {
		return d.N, nil
	}
	return d.N, w.files.Duplicate("kv", keyenc.Describe(d.First.Key[len(w.prefix):], w.names, w.kinds), d.First.Ord1, d.First.Ord2)
}

// values encodes the value columns of a row: bound to each batch's
// arrays once, then appended row by row into the writer's buffer.
type values struct {
	enc  string
	idx  []int
	name []string
	obj  *valenc.ObjectEncoder // json and msgpack
	raw  func(i int) []byte    // raw: the column's bytes; nil for a null
	cols []arrow.Array
}

func newValues(schema *arrow.Schema, enc string, cols []string) (*values, error) {
	v := &values{enc: enc, name: cols}
	for _, name := range cols {
		is := schema.FieldIndices(name)
		if len(is) == 0 {
			return nil, fmt.Errorf("%w: kv value_columns: no column %q in the input", formats.ErrBadInput, name)
		}
		t := schema.Field(is[0]).Type
		if enc == "raw" {
			switch t.ID() {
			case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
			default:
				return nil, fmt.Errorf("%w: kv value: raw needs a string or binary column, and %q is %s; use value: json or msgpack", formats.ErrBadInput, name, t)
			}
		} else if !valenc.Supported(t) {
			return nil, fmt.Errorf("%w: kv: column %q has type %s, which has no JSON or msgpack mapping; leave it out of value_columns", formats.ErrBadInput, name, t)
		}
		v.idx = append(v.idx, is[0])
	}
	if enc != "raw" {
		v.obj = valenc.NewObjectEncoder(enc == "msgpack", cols)
	}
	return v, nil
}

// bind points the encoder at one batch.
func (v *values) bind(rec arrow.RecordBatch) {
	v.cols = v.cols[:0]
	for _, c := range v.idx {
		v.cols = append(v.cols, rec.Column(c))
	}
	if v.obj != nil {
		v.obj.Bind(v.cols)
		return
	}
	col := v.cols[0]
	switch a := col.(type) {
	case *array.String:
		v.raw = func(i int) []byte { return unsafeBytes(a.Value(i)) }
	case *array.LargeString:
		v.raw = func(i int) []byte { return unsafeBytes(a.Value(i)) }
	case *array.Binary:
		v.raw = a.Value
	case *array.LargeBinary:
		v.raw = a.Value
	}
	if col.NullN() > 0 {
		f := v.raw
		v.raw = func(i int) []byte {
			if col.IsNull(i) {
				return nil // a null is an empty value
			}
			return f(i)
		}
	}
}

func (v *values) append(dst []byte, i int) []byte {
	if v.obj != nil {
		return v.obj.Append(dst, i)
	}
	return append(dst, v.raw(i)...)
}

// unsafeBytes views s's bytes without copying; the caller only reads them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
