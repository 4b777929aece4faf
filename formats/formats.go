// Package formats defines the one interface every server format implements,
// and the registry that names them.
//
// A format turns a stream of Arrow record batches into one asset file that a
// serving binary loads, and reads such a file back for `verify --deep` and
// `query`. Hashing, counting rows and bytes, timing and staging belong to the
// pipeline, which wraps the writer; a format does none of them.
package formats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/formats/internal/sorter"
)

var (
	ErrUnknownFormat = errors.New("unknown format")
	ErrBadOption     = errors.New("bad format option")
	// ErrBadQuery is a query a reader cannot answer as asked (its syntax,
	// a distance out of range), not a fault in the asset.
	ErrBadQuery = errors.New("bad query")
	ErrBadInput = errors.New("input does not fit the format")
)

// Info describes a format to the manifest, so that a server can refuse an
// asset it cannot read.
type Info struct {
	Name      string // registry name, as written in a spec: "arrow"
	Version   string // version of the file format written
	MediaType string
	Ext       string // file extension kept in a pulled release: ".arrow"
	// Keyed formats map each key to one value, and their writers are
	// DuplicateCounters: the pipeline's unique check applies to them.
	Keyed bool
	// Raw formats ship their input's bytes as is (the file format): their
	// input is one file, not Spark output, and their Config is a RawConfig.
	Raw bool
}

// RawConfig is the config of a Raw format.
type RawConfig interface {
	Config
	// Mode is the file mode the spec sets, and whether it sets one.
	Mode() (fs.FileMode, bool)
}

// Format is one kind of asset.
type Format interface {
	Info() Info
	// Configure validates options as written in the spec. An unknown or
	// ill-typed option is an error wrapping ErrBadOption that names it and
	// lists the valid ones. Configure does no I/O.
	Configure(opts map[string]any) (Config, error)
	// Open reads an asset this format wrote. It checks the file's structure;
	// a malformed file is an error, never a panic.
	Open(r io.ReaderAt, size int64) (Reader, error)
}

// Config is a validated set of options.
type Config interface {
	// NewWriter starts an asset whose records have the given schema. The
	// schema is checked here: a missing or ill-typed column is an error
	// wrapping ErrBadInput that names it.
	NewWriter(w io.Writer, schema *arrow.Schema) (Writer, error)
	// Options returns the options with defaults filled in, for the manifest.
	Options() map[string]any
}

// Writer consumes record batches in the canonical order.
//
// Write may be called any number of times, including zero: an empty input
// gives a valid, empty asset. Close finishes the file; after an error from
// Write or Close, or on cancellation, the caller calls Abort instead, which
// removes any temporary files the writer made. Writers honour ctx inside
// long loops.
type Writer interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
	Close(ctx context.Context) error
	Abort()
}

// ShardedConfig is implemented by configs that can split one asset into
// several files of contiguous key ranges, written concurrently. When
// Shards() > 1 the pipeline calls NewShardedWriter instead of NewWriter and
// publishes shard i of N as its own asset, NAME-<i>of<N> (i from 1), in
// file NAME-<i>of<N><Ext>. NewWriter still writes the whole table as one
// file.
type ShardedConfig interface {
	Config
	Shards() int
	// NewShardedWriter is NewWriter for Shards() files. During Close the
	// writer calls open once for each shard, 0 to Shards()-1 in order, and
	// writes that shard's bytes to the returned writer from one goroutine;
	// different shards are written concurrently. Every shard is opened,
	// even an empty one. Shard i's last key is below shard i+1's first.
	NewShardedWriter(open func(shard int) (io.Writer, error), schema *arrow.Schema) (ShardedWriter, error)
}

// ShardedWriter is a Writer whose Close writes several files.
type ShardedWriter interface {
	Writer
	// ShardRows, after a successful Close, is the number of entries in each shard.
	ShardRows() []int64
}

// SortingConfig is implemented by configs whose writers hold records in
// memory to sort them (kv, fst, arrow with sort_by). The pipeline divides
// one memory budget among all the sorting assets of a build, so that the
// build's memory does not grow with the number of assets.
type SortingConfig interface {
	Config
	// SortMemory reports whether the writer sorts at all (input declared
	// sorted streams, holding nothing), and the sort_buffer the spec set
	// for this asset, 0 when it leaves the size to the build.
	SortMemory() (sorts bool, own int64)
	// WithSortMemory returns a copy whose writers sort within n bytes
	// unless the spec set sort_buffer. Options() is unchanged: the share
	// depends on the build, not on the asset.
	WithSortMemory(n int64) Config
}

// DefaultSortMemory is the sort budget of a writer that no one sized: the
// build's default memory budget (see docs/formats.md).
func DefaultSortMemory() int64 { return sorter.DefaultBudget() }

// RowCounter is implemented by writers whose asset holds another number of
// rows than the records written, such as keys left after duplicates were
// dropped. After a successful Close, Rows is what the asset's Reader.Rows
// reports, and the pipeline records it in the manifest (which `verify
// --deep` compares); otherwise the manifest counts the records written.
type RowCounter interface {
	Rows() int64
}

// StatsReporter is implemented by writers that count more than rows, such
// as the features geo skipped as invalid. After a successful Close the
// pipeline records Stats in the manifest's asset.
type StatsReporter interface {
	Stats() map[string]int64
}

// FileStarter is implemented by writers that name input files in their
// errors, such as a duplicate key's. Before the first record of each input
// file the pipeline calls StartFile with the file's location (credentials
// removed); records then arrive in the canonical order.
type FileStarter interface {
	StartFile(path string)
}

// DuplicateKeyError is two records with one key in a keyed format (kv,
// fst). It is an ErrBadInput.
type DuplicateKeyError struct {
	Format       string
	Key          string // as a message shows it: column=value, ...
	File1, File2 string // where the two records are: "record N of FILE"
	// Unique says the format has no duplicates option (geo's ids): the
	// message does not offer one.
	Unique bool
}

func (e *DuplicateKeyError) Error() string {
	fix := "remove the duplicates upstream, or set duplicates: first or last to keep one"
	if e.Unique {
		fix = "the key must be unique: remove the duplicates upstream"
	}
	return fmt.Sprintf("%v: %s: duplicate key %s in %s and %s; %s", ErrBadInput, e.Format, e.Key, e.File1, e.File2, fix)
}

func (e *DuplicateKeyError) Unwrap() error { return ErrBadInput }

// DuplicateCounter is implemented by writers of keyed formats. After Close
// (or a Close that failed on a duplicate under the `error` policy),
// Duplicates reports how many records had the key of the record before them
// in key order, and the first such pair; the pipeline's unique check reads
// it, so duplicates are counted once, by the format's own policy.
type DuplicateCounter interface {
	Duplicates() (n int64, first *DuplicateKeyError)
}

// Reader is an opened asset.
type Reader interface {
	// Rows is the number of records, keys or networks the asset holds.
	Rows() int64
	// Describe summarises the asset for `query` with no arguments.
	Describe() map[string]any
	// Query looks up args (a key, prefix, IP, or nothing for the first rows)
	// and returns at most limit results.
	Query(ctx context.Context, args []string, limit int) (*Result, error)
	// Check reads the whole asset and reports the first structural problem.
	Check(ctx context.Context) error
	Close() error
}

// Result is a small table: what `query` prints.
type Result struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Registry maps names to formats.
type Registry struct {
	byName map[string]Format
}

// NewRegistry builds a registry; a duplicate name is a programming error and panics.
func NewRegistry(fs ...Format) *Registry {
	r := &Registry{byName: map[string]Format{}}
	for _, f := range fs {
		name := f.Info().Name
		if _, dup := r.byName[name]; dup {
			panic("formats: duplicate format " + name)
		}
		r.byName[name] = f
	}
	return r
}

// Lookup returns the named format, or an error listing the valid names.
func (r *Registry) Lookup(name string) (Format, error) {
	if f, ok := r.byName[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownFormat, name, strings.Join(r.Names(), ", "))
}

// Names lists the registered formats, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnknownOption is the error for an option a format does not take.
func UnknownOption(format, key string, valid []string) error {
	valid = slices.Clone(valid)
	sort.Strings(valid)
	return fmt.Errorf("%w: %s has no option %q (valid: %s)", ErrBadOption, format, key, strings.Join(valid, ", "))
}
