// Package sorter sorts (key, value) entries by key for the sorted formats,
// within a memory budget, and applies a duplicate-key policy.
//
// Entries arrive in the canonical record order, each with its ordinal. Their
// bytes are copied into an arena of fixed-size chunks (it never grows by
// copying), and each entry is a fixed-size record: the key's first 8 bytes as
// a big-endian integer, where its bytes are, and its ordinal. Sorting moves
// those records only and compares the prefixes as integers, looking at the
// arena just to break ties; equal keys keep ordinal order, so the result is
// what a stable sort gives. When arena and records reach the budget the
// buffer is sorted and written to a run file in a temp folder, and Finish
// merges the runs with a loser tree. Input that is already sorted is
// detected: it is never sorted, and its runs are read back one after the
// other rather than merged. Close (or a failed Finish) always removes the
// temp folder.
//
// Equal keys are resolved in ordinal order: PolicyFirst keeps the earliest
// entry, PolicyLast the latest, PolicyError fails with a *DuplicateError.
package sorter

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Policy says what to do with equal keys.
type Policy int

const (
	PolicyError Policy = iota
	PolicyFirst
	PolicyLast
)

// ParsePolicy reads "error", "first" or "last".
func ParsePolicy(s string) (Policy, bool) {
	switch s {
	case "error":
		return PolicyError, true
	case "first":
		return PolicyFirst, true
	case "last":
		return PolicyLast, true
	}
	return 0, false
}

// Policies lists the valid policy names, for option validation.
var Policies = []string{"error", "first", "last"}

// DuplicateError is two entries with one key, by ordinal.
type DuplicateError struct {
	Key        []byte
	Ord1, Ord2 int64 // Ord1 < Ord2
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("duplicate key %q at records %d and %d", e.Key, e.Ord1, e.Ord2)
}

// OrderError is a key lower than the one before it, in a sorter that was
// promised sorted input (Stream).
type OrderError struct {
	Key, Prev    []byte
	Ord, PrevOrd int64
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("key %q at record %d comes after %q at record %d", e.Key, e.Ord, e.Prev, e.PrevOrd)
}

// Config configures a Sorter.
type Config struct {
	Budget  int64  // bytes of entries kept in memory before spilling; 0 is DefaultBudget()
	TempDir string // parent of the spill folder; "" is os.TempDir()
	Policy  Policy
}

// entry is one buffered entry: 32 bytes, no pointers, so the garbage
// collector never scans the buffer.
type entry struct {
	prefix uint64 // set by sort: 8 key bytes after the buffer's common prefix, big-endian, zero-padded
	chunk  uint32 // arena chunk
	off    uint32 // offset of the key in the chunk; the value follows it
	klen   uint32
	vlen   uint32
	ord    int64
}

const entrySize = 32

// maxBuffer caps a buffer. Sorting a buffer that fits the caches and the
// TLB, then merging runs, beats sorting one large buffer whose entries point
// all over hundreds of MiB: on 10M rows of places, kv with 32 MiB buffers
// took 38 s at 397 MB peak RSS, with 256 MiB buffers 43 s at 792 MB. A
// larger budget still buys a wider merge (fanIn) and fewer passes.
const maxBuffer = 32 << 20

// Sorter accumulates entries; it is not safe for concurrent use.
//
// It fills one of two buffers, each up to half the budget (and maxBuffer). When the buffer
// it fills is full, a goroutine sorts it and writes it as a run while Add
// goes on filling the other, so sorting and writing overlap with the
// caller's reading and encoding. The last buffer is never written: Finish
// sorts it in memory and merges it with the runs on disk.
type Sorter struct {
	cfg        Config
	bufferSize int64 // bytes of a buffer: half the budget, at most maxBuffer
	chunkSize  int
	cur        *buffer // being filled
	other      *buffer // being spilled, or free
	inflight   chan error
	ord        int64

	lastKey []byte // the last key added
	runs    []string
	seqRuns bool // each run starts at or after the previous run's last key

	dir string        // spill folder, made on first spill
	bw  *bufio.Writer // writes runs, reused

	stream *dedup // set by Stream: entries go straight out
	dups   DupStats
}

// DupStats counts the entries the duplicate policy resolved: each entry
// whose key equals the one before it counts once, and First is the first
// such pair.
type DupStats struct {
	N     int64
	First *DuplicateError
}

// Duplicates reports the duplicate keys met so far: after Finish, all of
// them under PolicyFirst and PolicyLast, and the one that failed under
// PolicyError.
func (s *Sorter) Duplicates() DupStats { return s.dups }

// buffer is entries and the arena that holds their bytes.
type buffer struct {
	chunkSize int
	chunks    [][]byte // the arena; all but the last are full
	spare     [][]byte // emptied chunks of chunkSize, reused before allocating
	arenaCap  int64    // bytes of the chunks in use
	entries   []entry
	sorted    bool // every entry is in non-decreasing key order
	first     []byte
	lcp       int // length of the prefix that every key shares
}

func (b *buffer) used() int64 { return b.arenaCap + int64(len(b.entries))*entrySize }

// Stream switches the sorter to streaming, for input the caller declares
// sorted: each entry goes to emit as soon as the duplicate policy allows;
// nothing is held in memory or spilled to disk, and a key lower than the one
// before it is an *OrderError. Call it before the first Add; Finish then
// only flushes.
func (s *Sorter) Stream(emit func(key, val []byte) error) {
	s.stream = &dedup{policy: s.cfg.Policy, emit: emit, dups: &s.dups}
}

// New returns an empty sorter.
func New(cfg Config) *Sorter {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget()
	}
	// Chunks of a 16th of a buffer (4 KiB to 4 MiB): at most one partly
	// used chunk per buffer is wasted, and no chunk is ever copied.
	size := min(cfg.Budget/2, maxBuffer)
	chunk := int(min(max(size/16, 4<<10), 4<<20))
	return &Sorter{cfg: cfg, chunkSize: chunk, bufferSize: size, seqRuns: true,
		cur: &buffer{chunkSize: chunk, sorted: true}, other: &buffer{chunkSize: chunk, sorted: true}}
}

// Add adds an entry with the next ordinal. key and val are copied.
func (s *Sorter) Add(ctx context.Context, key, val []byte) error {
	if s.stream != nil {
		if s.ord > 0 && bytes.Compare(key, s.lastKey) < 0 {
			return &OrderError{Key: bytes.Clone(key), Prev: bytes.Clone(s.lastKey), Ord: s.ord, PrevOrd: s.ord - 1}
		}
		s.lastKey = append(s.lastKey[:0], key...)
		s.ord++
		return s.stream.add(key, val, s.ord-1)
	}
	if uint64(len(key)) > math.MaxUint32 || uint64(len(val)) > math.MaxUint32 {
		return fmt.Errorf("sort: an entry of %d key and %d value bytes is over the 4 GiB limit", len(key), len(val))
	}
	b := s.cur
	if s.ord > 0 && bytes.Compare(key, s.lastKey) < 0 {
		if len(b.entries) > 0 {
			b.sorted = false
		} else {
			s.seqRuns = false
		}
	}
	s.lastKey = append(s.lastKey[:0], key...)
	b.add(key, val, s.ord, s.bufferSize)
	s.ord++
	if b.used() >= s.bufferSize {
		return s.spill(ctx)
	}
	return nil
}

func (b *buffer) add(key, val []byte, ord, budget int64) {
	if len(b.entries) == 0 {
		b.first, b.lcp = append(b.first[:0], key...), len(key)
	} else if b.lcp > 0 {
		n := min(b.lcp, len(key))
		i := 0
		for i < n && key[i] == b.first[i] {
			i++
		}
		b.lcp = i
	}
	c := b.room(len(key) + len(val))
	off := len(b.chunks[c])
	b.chunks[c] = append(append(b.chunks[c], key...), val...)
	if len(b.entries) == cap(b.entries) {
		b.growEntries(budget)
	}
	b.entries = append(b.entries, entry{chunk: uint32(c), off: uint32(off),
		klen: uint32(len(key)), vlen: uint32(len(val)), ord: ord})
}

// room returns a chunk with space for n more bytes, allocating one if needed:
// an entry larger than a chunk gets a chunk of its own.
func (b *buffer) room(n int) int {
	if last := len(b.chunks) - 1; last >= 0 && cap(b.chunks[last])-len(b.chunks[last]) >= n {
		return last
	}
	var c []byte
	switch {
	case n > b.chunkSize:
		c = make([]byte, 0, n)
	case len(b.spare) > 0:
		c = b.spare[len(b.spare)-1]
		b.spare = b.spare[:len(b.spare)-1]
	default:
		c = make([]byte, 0, b.chunkSize)
	}
	b.arenaCap += int64(cap(c))
	b.chunks = append(b.chunks, c)
	return len(b.chunks) - 1
}

// growEntries makes room for as many entries as the budget will hold at
// the average entry size so far, so that the slice is copied a few times
// per buffer rather than at every doubling.
func (b *buffer) growEntries(budget int64) {
	n := len(b.entries)
	want := n + n/4 + 1024
	if n > 0 {
		if fit := int(budget / max(b.used()/int64(n), 1)); fit > want {
			want = fit + fit/16
		}
	}
	b.entries = slices.Grow(b.entries, want-n)
}

// ioBuffer is the size of a run's read or write buffer: up to limit, and
// small beside the budget, since a merge holds one per run.
func (s *Sorter) ioBuffer(limit int) int {
	return int(min(max(s.cfg.Budget/int64(2*fanIn(s.cfg.Budget)), 4<<10), int64(limit)))
}

func prefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// Spilled reports how many run files were written (or are being written).
func (s *Sorter) Spilled() int { return len(s.runs) }

// Sorted reports whether every entry so far came in key order.
func (s *Sorter) Sorted() bool { return s.cur.sorted && s.seqRuns }

func (b *buffer) key(e *entry) []byte {
	return b.chunks[e.chunk][e.off : e.off+e.klen]
}

func (b *buffer) kv(e *entry) []byte {
	return b.chunks[e.chunk][e.off : e.off+e.klen+e.vlen]
}

// compare orders entries by key bytes, then ordinal. Every key starts with
// the buffer's common prefix (lcp bytes), and an entry's prefix field holds
// the 8 bytes after it, zero-padded; so equal prefixes mean the first
// min(lcp+8, len) bytes of both keys agree, and the rest of the keys, then
// their lengths, decide.
func (b *buffer) compare(x, y *entry) int {
	if x.prefix != y.prefix {
		return cmp.Compare(x.prefix, y.prefix)
	}
	if p := uint32(b.lcp + 8); x.klen > p || y.klen > p {
		kx, ky := b.key(x), b.key(y)
		if c := bytes.Compare(kx[min(int(p), len(kx)):], ky[min(int(p), len(ky)):]); c != 0 {
			return c
		}
	}
	if x.klen != y.klen {
		return cmp.Compare(x.klen, y.klen)
	}
	return cmp.Compare(x.ord, y.ord)
}

func (b *buffer) sort() {
	if b.sorted {
		return // already in key order, and ordinals rise within equal keys
	}
	// The integer that decides most comparisons: the 8 bytes after the
	// prefix every key shares (names with one stem, ids below 2^32).
	for i := range b.entries {
		e := &b.entries[i]
		e.prefix = prefix(b.key(e)[b.lcp:])
	}
	slices.SortFunc(b.entries, func(x, y entry) int { return b.compare(&x, &y) })
	b.sorted = true
}

// reset empties the buffer, keeping its memory for the next run.
func (b *buffer) reset() {
	for _, c := range b.chunks {
		if cap(c) == b.chunkSize { // an outsized chunk is dropped
			b.spare = append(b.spare, c[:0])
		}
	}
	b.chunks = b.chunks[:0]
	b.arenaCap = 0
	b.entries = b.entries[:0]
	b.sorted = true
	b.lcp = 0
}

// wait waits for the run being written, if any.
func (s *Sorter) wait() error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	return err
}

// spill hands the full buffer to a goroutine that sorts it and writes it as
// the next run, once the previous run is written, and goes on with the
// other buffer.
func (s *Sorter) spill(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.wait(); err != nil {
		return err
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp(s.cfg.TempDir, "lockstep-sort-")
		if err != nil {
			return fmt.Errorf("sort: spill folder: %w (set sort_buffer higher or temp_dir to a writable folder)", err)
		}
		s.dir = dir
	}
	if !s.cur.sorted {
		s.seqRuns = false
	}
	full := s.cur
	name := filepath.Join(s.dir, fmt.Sprintf("run-%06d", len(s.runs)))
	s.runs = append(s.runs, name)
	s.cur, s.other = s.other, s.cur
	s.cur.reset()
	s.inflight = make(chan error, 1)
	go func() { s.inflight <- s.writeRun(ctx, full, name) }()
	return nil
}

// writeRun sorts the buffer and writes it: per entry the key length, value
// length and ordinal as uvarints, then key and value. (Compressing runs
// with S2 was measured: on 10M places rows it cost more CPU than it saved
// in I/O.)
func (s *Sorter) writeRun(ctx context.Context, b *buffer, name string) error {
	b.sort()
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	defer f.Close()
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, s.ioBuffer(1<<20))
	}
	bw := s.bw
	bw.Reset(f)
	var hdr [3 * binary.MaxVarintLen64]byte
	for i := range b.entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := &b.entries[i]
		n := binary.PutUvarint(hdr[:], uint64(e.klen))
		n += binary.PutUvarint(hdr[n:], uint64(e.vlen))
		n += binary.PutUvarint(hdr[n:], uint64(e.ord))
		bw.Write(hdr[:n])
		bw.Write(b.kv(e))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sort: write %s: %w (is the temp folder full?)", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	return nil
}

// Finish emits every entry in key order, after the duplicate policy, and
// removes the spill folder. emit owns key and val only for the call.
func (s *Sorter) Finish(ctx context.Context, emit func(key, val []byte) error) error {
	defer s.Close()
	if s.stream != nil {
		return s.stream.flush()
	}
	if err := s.wait(); err != nil {
		return err
	}
	d := dedup{policy: s.cfg.Policy, emit: emit, dups: &s.dups}
	last := s.cur
	if !last.sorted {
		s.seqRuns = false
	}
	last.sort()
	s.other = nil // the merge needs only the last buffer
	m := merger{dir: s.dir, readBuf: s.ioBuffer(runReadBuffer), writeBuf: s.ioBuffer(1 << 20), fanIn: fanIn(s.cfg.Budget)}
	return m.run(ctx, s.runs, last, s.seqRuns, &d)
}

// Close removes the spill folder; it is safe to call more than once.
func (s *Sorter) Close() {
	s.wait() // a run being written goes first
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
	s.cur, s.other, s.runs = &buffer{chunkSize: s.chunkSize, sorted: true}, nil, nil
}
