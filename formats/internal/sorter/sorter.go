// Package sorter sorts (key, value) entries by key for the sorted formats,
// within a memory budget, and applies a duplicate-key policy.
//
// Entries arrive in the canonical record order, each with its ordinal. While
// they fit the budget they are kept in memory; beyond it, each full buffer is
// sorted and written to a run file in a temp folder, and Finish merges the
// runs. Input that is already sorted is detected: it is never sorted, and its
// runs are read back one after the other rather than merged. Close (or a
// failed Finish) always removes the temp folder.
//
// Equal keys are resolved in ordinal order: PolicyFirst keeps the earliest
// entry, PolicyLast the latest, PolicyError fails with a *DuplicateError.
package sorter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
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
	Budget  int64  // bytes of entries kept in memory before spilling
	TempDir string // parent of the spill folder; "" is os.TempDir()
	Policy  Policy
}

// entryOverhead is what one entry costs in memory beyond its bytes.
const entryOverhead = 32

type entry struct {
	off       int // into arena
	klen, vln int
	ord       int64
}

// Sorter accumulates entries; it is not safe for concurrent use.
type Sorter struct {
	cfg     Config
	arena   []byte
	entries []entry
	ord     int64

	sorted  bool   // every entry so far is in non-decreasing key order
	lastKey []byte // the last key added
	runs    []string
	seqRuns bool // each run starts at or after the previous run's last key

	dir string // spill folder, made on first spill

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
		cfg.Budget = 64 << 20
	}
	return &Sorter{cfg: cfg, sorted: true, seqRuns: true}
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
	if len(s.entries) > 0 && bytes.Compare(key, s.lastKey) < 0 {
		s.sorted = false
	}
	if len(s.entries) == 0 && len(s.runs) > 0 && bytes.Compare(key, s.lastKey) < 0 {
		s.seqRuns = false
	}
	off := len(s.arena)
	s.arena = append(s.arena, key...)
	s.arena = append(s.arena, val...)
	s.entries = append(s.entries, entry{off: off, klen: len(key), vln: len(val), ord: s.ord})
	s.lastKey = append(s.lastKey[:0], key...)
	s.ord++
	if int64(len(s.arena))+int64(len(s.entries))*entryOverhead >= s.cfg.Budget {
		return s.spill(ctx)
	}
	return nil
}

// Spilled reports how many run files were written.
func (s *Sorter) Spilled() int { return len(s.runs) }

// Sorted reports whether every entry so far came in key order.
func (s *Sorter) Sorted() bool { return s.sorted && s.seqRuns }

func (s *Sorter) key(e entry) []byte { return s.arena[e.off : e.off+e.klen] }
func (s *Sorter) val(e entry) []byte { return s.arena[e.off+e.klen : e.off+e.klen+e.vln] }

func (s *Sorter) sortBuffer() {
	if s.sorted {
		return // already in key order, and ordinals rise within equal keys
	}
	slices.SortStableFunc(s.entries, func(a, b entry) int { return bytes.Compare(s.key(a), s.key(b)) })
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
	bw := bufio.NewWriterSize(f, 1<<20)
	var hdr [3 * binary.MaxVarintLen64]byte
	for i, e := range s.entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				f.Close()
				return err
			}
		}
		n := binary.PutUvarint(hdr[:], uint64(e.klen))
		n += binary.PutUvarint(hdr[n:], uint64(e.vln))
		n += binary.PutUvarint(hdr[n:], uint64(e.ord))
		bw.Write(hdr[:n])
		bw.Write(s.arena[e.off : e.off+e.klen+e.vln])
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("sort: write %s: %w (is the temp folder full?)", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	s.runs = append(s.runs, name)
	s.arena = s.arena[:0]
	s.entries = s.entries[:0]
	s.sorted = true
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
		for i, e := range s.entries {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := d.add(s.key(e), s.val(e), e.ord); err != nil {
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
	var rs []*run
	defer func() {
		for _, r := range rs {
			r.f.Close()
		}
	}()
	for _, name := range s.runs {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("sort: %w", err)
		}
		r := &run{f: f, r: bufio.NewReaderSize(f, 256<<10)}
		rs = append(rs, r)
	}
	if s.seqRuns {
		// Sorted input: runs follow each other, so read them in turn.
		for _, r := range rs {
			if err := drain(ctx, r, &d); err != nil {
				return err
			}
		}
		return d.flush()
	}
	return merge(ctx, rs, &d)
}

// DefaultBudget is a quarter of the memory this process may use: the least
// of the machine's (MemTotal in /proc/meminfo), its cgroup's limit (what a
// container or a Kubernetes pod gets) and GOMEMLIMIT; 1 GiB where none can
// be read.
func DefaultBudget() int64 {
	limit := memoryLimit(readFile("/proc/meminfo"), readFile("/sys/fs/cgroup/memory.max"),
		readFile("/sys/fs/cgroup/memory/memory.limit_in_bytes"), debug.SetMemoryLimit(-1))
	if limit <= 0 {
		return 1 << 30
	}
	return limit / 4
}

func readFile(path string) []byte {
	data, _ := os.ReadFile(path)
	return data
}

// memoryLimit is the least of the limits that are set: MemTotal from
// meminfo, a cgroup v2 memory.max or v1 limit_in_bytes ("max" or an absurd
// value means none), and the Go runtime's memory limit (math.MaxInt64: none).
func memoryLimit(meminfo, cgroup2, cgroup1 []byte, goLimit int64) int64 {
	var limit int64
	take := func(n int64) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	for _, line := range bytes.Split(meminfo, []byte("\n")) {
		var kb int64
		if _, err := fmt.Sscanf(string(line), "MemTotal: %d kB", &kb); err == nil {
			take(kb * 1024)
		}
	}
	for _, c := range [][]byte{cgroup2, cgroup1} {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(c)), 10, 64); err == nil && n < 1<<60 {
			take(n)
		}
	}
	if goLimit < math.MaxInt64 {
		take(goLimit)
	}
	return limit
}

// Close removes the spill folder; it is safe to call more than once.
func (s *Sorter) Close() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
	s.arena, s.entries, s.runs = nil, nil, nil
}

// run reads one spilled run.
type run struct {
	f        *os.File
	r        *bufio.Reader
	key, val []byte
	ord      int64
	buf      []byte
}

// next reads the next entry; io.EOF at the end.
func (r *run) next() error {
	kl, err := binary.ReadUvarint(r.r)
	if err != nil {
		return err
	}
	vl, err1 := binary.ReadUvarint(r.r)
	ord, err2 := binary.ReadUvarint(r.r)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("sort: corrupt run %s: %w", r.f.Name(), err)
	}
	n := int(kl + vl)
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return fmt.Errorf("sort: corrupt run %s: %w", r.f.Name(), err)
	}
	r.key, r.val, r.ord = r.buf[:kl], r.buf[kl:], int64(ord)
	return nil
}

func drain(ctx context.Context, r *run, d *dedup) error {
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := r.next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := d.add(r.key, r.val, r.ord); err != nil {
			return err
		}
	}
}

// merge is a k-way merge by (key, ordinal) over a binary heap of runs.
func merge(ctx context.Context, rs []*run, d *dedup) error {
	h := make([]*run, 0, len(rs))
	for _, r := range rs {
		if err := r.next(); err == io.EOF {
			continue
		} else if err != nil {
			return err
		}
		h = append(h, r)
	}
	less := func(a, b *run) bool {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c < 0
		}
		return a.ord < b.ord
	}
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(h) && less(h[l], h[m]) {
				m = l
			}
			if l+1 < len(h) && less(h[l+1], h[m]) {
				m = l + 1
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for n := 0; len(h) > 0; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		top := h[0]
		if err := d.add(top.key, top.val, top.ord); err != nil {
			return err
		}
		if err := top.next(); err == io.EOF {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		} else if err != nil {
			return err
		}
		down(0)
	}
	return d.flush()
}

// dedup holds back one entry so that equal keys can be resolved.
type dedup struct {
	policy   Policy
	emit     func(key, val []byte) error
	has      bool
	key, val []byte
	ord      int64
}

func (d *dedup) add(key, val []byte, ord int64) error {
	if d.has && bytes.Equal(key, d.key) {
		switch d.policy {
		case PolicyError:
			return &DuplicateError{Key: bytes.Clone(key), Ord1: d.ord, Ord2: ord}
		case PolicyFirst:
			return nil
		}
		// PolicyLast: the later ordinal replaces the held entry.
		d.val, d.ord = append(d.val[:0], val...), ord
		return nil
	}
	if err := d.flush(); err != nil {
		return err
	}
	d.key, d.val, d.ord, d.has = append(d.key[:0], key...), append(d.val[:0], val...), ord, true
	return nil
}

func (d *dedup) flush() error {
	if !d.has {
		return nil
	}
	d.has = false
	return d.emit(d.key, d.val)
}
