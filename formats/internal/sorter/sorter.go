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
	prefix uint64 // the key's first 8 bytes, big-endian, zero-padded
	chunk  uint32 // arena chunk
	off    uint32 // offset of the key in the chunk; the value follows it
	klen   uint32
	vlen   uint32
	ord    int64
}

const entrySize = 32

// Sorter accumulates entries; it is not safe for concurrent use.
type Sorter struct {
	cfg       Config
	chunkSize int
	chunks    [][]byte // the arena; all but the last are full
	spare     [][]byte // emptied chunks of chunkSize, reused before allocating
	arenaCap  int64    // bytes of the chunks in use
	entries   []entry
	ord       int64

	sorted  bool   // every entry so far is in non-decreasing key order
	lastKey []byte // the last key added
	runs    []string
	seqRuns bool // each run starts at or after the previous run's last key

	dir string        // spill folder, made on first spill
	bw  *bufio.Writer // writes runs, reused

	stream *dedup // set by Stream: entries go straight out
}

// Stream switches the sorter to streaming, for input the caller declares
// sorted: each entry goes to emit as soon as the duplicate policy allows;
// nothing is held in memory or spilled to disk, and a key lower than the one
// before it is an *OrderError. Call it before the first Add; Finish then
// only flushes.
func (s *Sorter) Stream(emit func(key, val []byte) error) {
	s.stream = &dedup{policy: s.cfg.Policy, emit: emit}
}

// New returns an empty sorter.
func New(cfg Config) *Sorter {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget()
	}
	// Chunks of a sixteenth of the budget (4 KiB to 8 MiB): at most one
	// partly used chunk is wasted, and no chunk is ever copied.
	chunk := int(min(max(cfg.Budget/16, 4<<10), 8<<20))
	return &Sorter{cfg: cfg, chunkSize: chunk, sorted: true, seqRuns: true}
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
	if s.ord > 0 && bytes.Compare(key, s.lastKey) < 0 {
		if len(s.entries) > 0 {
			s.sorted = false
		} else {
			s.seqRuns = false
		}
	}
	s.lastKey = append(s.lastKey[:0], key...)
	n := len(key) + len(val)
	if uint64(len(key)) > math.MaxUint32 || uint64(len(val)) > math.MaxUint32 {
		return fmt.Errorf("sort: an entry of %d key and %d value bytes is over the 4 GiB limit", len(key), len(val))
	}
	c := s.room(n)
	off := len(s.chunks[c])
	s.chunks[c] = append(append(s.chunks[c], key...), val...)
	if len(s.entries) == cap(s.entries) {
		s.growEntries()
	}
	s.entries = append(s.entries, entry{prefix: prefix(key), chunk: uint32(c), off: uint32(off),
		klen: uint32(len(key)), vlen: uint32(len(val)), ord: s.ord})
	s.ord++
	if s.arenaCap+int64(len(s.entries))*entrySize >= s.cfg.Budget {
		return s.spill(ctx)
	}
	return nil
}

// room returns a chunk with space for n more bytes, allocating one if needed:
// an entry larger than a chunk gets a chunk of its own.
func (s *Sorter) room(n int) int {
	if last := len(s.chunks) - 1; last >= 0 && cap(s.chunks[last])-len(s.chunks[last]) >= n {
		return last
	}
	var c []byte
	switch {
	case n > s.chunkSize:
		c = make([]byte, 0, n)
	case len(s.spare) > 0:
		c = s.spare[len(s.spare)-1]
		s.spare = s.spare[:len(s.spare)-1]
	default:
		c = make([]byte, 0, s.chunkSize)
	}
	s.arenaCap += int64(cap(c))
	s.chunks = append(s.chunks, c)
	return len(s.chunks) - 1
}

// ioBuffer is the size of a run's read or write buffer: up to limit, and
// small beside the budget, since a merge holds one per run.
func (s *Sorter) ioBuffer(limit int) int {
	return int(min(max(s.cfg.Budget/(2*fanIn), 4<<10), int64(limit)))
}

// growEntries makes room for as many entries as the budget will hold at
// the average entry size so far, so that the slice is copied a few times
// per run rather than at every doubling.
func (s *Sorter) growEntries() {
	n := len(s.entries)
	want := n + n/4 + 1024
	if n > 0 {
		used := s.arenaCap + int64(n)*entrySize
		if fit := int(s.cfg.Budget / max(used/int64(n), 1)); fit > want {
			want = fit + fit/16
		}
	}
	s.entries = slices.Grow(s.entries, want-n)
}

func prefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// Spilled reports how many run files were written.
func (s *Sorter) Spilled() int { return len(s.runs) }

// Sorted reports whether every entry so far came in key order.
func (s *Sorter) Sorted() bool { return s.sorted && s.seqRuns }

func (s *Sorter) key(e *entry) []byte {
	return s.chunks[e.chunk][e.off : e.off+e.klen]
}

func (s *Sorter) kv(e *entry) []byte {
	return s.chunks[e.chunk][e.off : e.off+e.klen+e.vlen]
}

// compare orders entries by key bytes, then ordinal. Equal prefixes mean
// the first min(8, len) bytes of both keys agree, so the rest of the keys
// (past their first 8 bytes), then their lengths, decide.
func (s *Sorter) compare(a, b *entry) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	if a.klen > 8 || b.klen > 8 {
		ka, kb := s.key(a), s.key(b)
		if c := bytes.Compare(ka[min(8, len(ka)):], kb[min(8, len(kb)):]); c != 0 {
			return c
		}
	}
	if a.klen != b.klen {
		return cmp.Compare(a.klen, b.klen)
	}
	return cmp.Compare(a.ord, b.ord)
}

func (s *Sorter) sortBuffer() {
	if s.sorted {
		return // already in key order, and ordinals rise within equal keys
	}
	slices.SortFunc(s.entries, func(a, b entry) int { return s.compare(&a, &b) })
}

// reset empties the buffer, keeping its memory for the next run.
func (s *Sorter) reset() {
	for _, c := range s.chunks {
		if cap(c) == s.chunkSize { // an outsized chunk is dropped
			s.spare = append(s.spare, c[:0])
		}
	}
	s.chunks = s.chunks[:0]
	s.arenaCap = 0
	s.entries = s.entries[:0]
	s.sorted = true
}

func (s *Sorter) spill(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp(s.cfg.TempDir, "lockstep-sort-")
		if err != nil {
			return fmt.Errorf("sort: spill folder: %w (set sort_buffer higher or temp_dir to a writable folder)", err)
		}
		s.dir = dir
	}
	if !s.sorted {
		s.seqRuns = false
	}
	s.sortBuffer()
	name := filepath.Join(s.dir, fmt.Sprintf("run-%06d", len(s.runs)))
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	if err := s.writeRun(ctx, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	s.runs = append(s.runs, name)
	s.reset()
	return nil
}

// writeRun writes the sorted buffer: per entry the key length, value length
// and ordinal as uvarints, then key and value. (Compressing runs with S2
// was measured: on 10M places rows it cost more CPU than it saved in I/O.)
func (s *Sorter) writeRun(ctx context.Context, f *os.File) error {
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, s.ioBuffer(1<<20))
	}
	bw := s.bw
	bw.Reset(f)
	var hdr [3 * binary.MaxVarintLen64]byte
	for i := range s.entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := &s.entries[i]
		n := binary.PutUvarint(hdr[:], uint64(e.klen))
		n += binary.PutUvarint(hdr[n:], uint64(e.vlen))
		n += binary.PutUvarint(hdr[n:], uint64(e.ord))
		bw.Write(hdr[:n])
		bw.Write(s.kv(e))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sort: write %s: %w (is the temp folder full?)", f.Name(), err)
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
	d := dedup{policy: s.cfg.Policy, emit: emit}
	if len(s.runs) == 0 {
		s.sortBuffer()
		for i := range s.entries {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			e := &s.entries[i]
			kv := s.kv(e)
			if err := d.add(kv[:e.klen], kv[e.klen:], e.ord); err != nil {
				return err
			}
		}
		return d.flush()
	}
	if len(s.entries) > 0 {
		if err := s.spill(ctx); err != nil {
			return err
		}
	}
	s.chunks, s.spare, s.entries = nil, nil, nil // the merge needs none of it
	m := merger{dir: s.dir, readBuf: s.ioBuffer(256 << 10), writeBuf: s.ioBuffer(1 << 20)}
	return m.run(ctx, s.runs, s.seqRuns, &d)
}

// Close removes the spill folder; it is safe to call more than once.
func (s *Sorter) Close() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
	s.chunks, s.spare, s.entries, s.runs = nil, nil, nil, nil
	s.arenaCap = 0
}
