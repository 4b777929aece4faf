package sorter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// run reads one spilled run, or the sorted buffer still in memory.
type run struct {
	f        *os.File
	r        *bufio.Reader
	mem      *buffer // instead of f and r
	i        int     // next entry of mem
	key, val []byte
	ord      int64
	buf      []byte // key and value
	done     bool
}

func (r *run) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// next reads the next entry; io.EOF at the end.
func (r *run) next() error {
	if r.mem != nil {
		if r.i == len(r.mem.entries) {
			r.done = true
			return io.EOF
		}
		e := &r.mem.entries[r.i]
		r.i++
		r.buf = r.mem.kv(e)
		r.key, r.val, r.ord = r.buf[:e.klen], r.buf[e.klen:], e.ord
		return nil
	}
	kl, err := binary.ReadUvarint(r.r)
	if err == io.EOF {
		r.done = true
		return err
	} else if err != nil {
		return fmt.Errorf("sort: corrupt run %s: %w", r.f.Name(), err)
	}
	vl, err1 := binary.ReadUvarint(r.r)
	ord, err2 := binary.ReadUvarint(r.r)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("sort: corrupt run %s: %w", r.f.Name(), err)
	}
	if kl > 1<<32 || vl > 1<<32 {
		return fmt.Errorf("sort: corrupt run %s: entry of %d+%d bytes", r.f.Name(), kl, vl)
	}
	n := int(kl + vl)
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 2*cap(r.buf)))
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return fmt.Errorf("sort: corrupt run %s: %w", r.f.Name(), err)
	}
	r.key, r.val, r.ord = r.buf[:kl], r.buf[kl:], int64(ord)
	return nil
}

// fanIn is the most runs merged at once: one open file and one read
// buffer each, so it follows the budget, from 8 to 256 runs. More runs are
// first merged fanIn at a time into longer ones.
func fanIn(budget int64) int {
	return int(min(max(budget/(2*runReadBuffer), 8), 256))
}

// runReadBuffer is the read buffer of a run being merged, at most.
const runReadBuffer = 256 << 10

// merger merges runs in a spill folder with buffers of the given sizes.
type merger struct {
	dir               string
	readBuf, writeBuf int
	fanIn             int
}

// run emits the entries of the runs named and of the last buffer, in
// (key, ordinal) order. Runs that follow each other (sorted input) are read
// in turn; others are merged, in passes of fanIn runs while there are more.
func (m *merger) run(ctx context.Context, names []string, last *buffer, sequential bool, d *dedup) error {
	add := func(r *run) error { return d.add(r.key, r.val, r.ord) }
	if sequential {
		for _, name := range names {
			r, err := m.open(name)
			if err != nil {
				return err
			}
			err = drain(ctx, r, add)
			r.close()
			if err != nil {
				return err
			}
		}
		if err := drain(ctx, &run{mem: last}, add); err != nil {
			return err
		}
		return d.flush()
	}
	for pass := 0; len(names)+1 > m.fanIn; pass++ {
		var next []string
		for i := 0; i < len(names); i += m.fanIn {
			group := names[i:min(i+m.fanIn, len(names))]
			if len(group) == 1 {
				next = append(next, group[0])
				continue
			}
			name := filepath.Join(m.dir, fmt.Sprintf("merge-%d-%06d", pass, len(next)))
			if err := m.toRun(ctx, group, name); err != nil {
				return err
			}
			next = append(next, name)
		}
		names = next
	}
	rs, err := m.openAll(names)
	defer closeAll(rs)
	if err != nil {
		return err
	}
	return merge(ctx, append(rs, &run{mem: last}), add, d.flush)
}

// openAll opens the runs named; the caller closes them, also on an error.
func (m *merger) openAll(names []string) ([]*run, error) {
	var rs []*run
	for _, name := range names {
		r, err := m.open(name)
		if err != nil {
			return rs, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func closeAll(rs []*run) {
	for _, r := range rs {
		r.close()
	}
}

// toRun merges runs into one new run, keeping every entry, and removes
// them.
func (m *merger) toRun(ctx context.Context, names []string, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, m.writeBuf)
	var hdr [3 * binary.MaxVarintLen64]byte
	rs, err := m.openAll(names)
	defer closeAll(rs)
	if err != nil {
		return err
	}
	err = merge(ctx, rs, func(r *run) error {
		n := binary.PutUvarint(hdr[:], uint64(len(r.key)))
		n += binary.PutUvarint(hdr[n:], uint64(len(r.val)))
		n += binary.PutUvarint(hdr[n:], uint64(r.ord))
		bw.Write(hdr[:n])
		_, err := bw.Write(r.buf)
		return err
	}, bw.Flush)
	if err != nil {
		return fmt.Errorf("sort: merge into %s: %w (is the temp folder full?)", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sort: %w", err)
	}
	for _, name := range names {
		os.Remove(name)
	}
	return nil
}

func (m *merger) open(name string) (*run, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sort: %w", err)
	}
	return &run{f: f, r: bufio.NewReaderSize(f, m.readBuf)}, nil
}

// merge calls emit for each entry of the runs in (key, ordinal) order, then
// done.
func merge(ctx context.Context, rs []*run, emit func(*run) error, done func() error) error {
	if len(rs) == 0 {
		return done()
	}
	t, err := newLoserTree(rs)
	if err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		top := t.runs[t.node[0]]
		if top.done {
			return done()
		}
		if err := emit(top); err != nil {
			return err
		}
		if err := top.next(); err != nil && err != io.EOF {
			return err
		}
		t.fix()
	}
}

func drain(ctx context.Context, r *run, emit func(*run) error) error {
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
		if err := emit(r); err != nil {
			return err
		}
	}
}

// loserTree is a tournament over k runs: each inner node keeps the loser
// of the match played there and node[0] the overall winner, so advancing
// the winner replays one path of log2(k) matches, one comparison each (a
// binary heap needs two per level). Leaves are k..2k-1, node n's children
// 2n and 2n+1; an exhausted run loses to every other.
type loserTree struct {
	runs []*run
	node []int
}

func newLoserTree(rs []*run) (*loserTree, error) {
	k := len(rs)
	t := &loserTree{runs: rs, node: make([]int, k)}
	for _, r := range rs {
		if err := r.next(); err != nil && err != io.EOF {
			return nil, err
		}
	}
	winner := make([]int, 2*k)
	for i := range k {
		winner[k+i] = i
	}
	for n := k - 1; n >= 1; n-- {
		a, b := winner[2*n], winner[2*n+1]
		if t.less(b, a) {
			a, b = b, a
		}
		winner[n], t.node[n] = a, b
	}
	t.node[0] = winner[1]
	if k == 1 {
		t.node[0] = 0
	}
	return t, nil
}

// less orders runs by their current entry's (key, ordinal).
func (t *loserTree) less(i, j int) bool {
	a, b := t.runs[i], t.runs[j]
	if a.done || b.done {
		return !a.done
	}
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.ord < b.ord
}

// fix replays the matches on the path of the winner, which has advanced.
func (t *loserTree) fix() {
	w := t.node[0]
	for n := (w + len(t.runs)) / 2; n >= 1; n /= 2 {
		if t.less(t.node[n], w) {
			t.node[n], w = w, t.node[n]
		}
	}
	t.node[0] = w
}

// dedup holds back one entry so that equal keys can be resolved.
type dedup struct {
	policy   Policy
	emit     func(key, val []byte) error
	dups     *DupStats
	has      bool
	key, val []byte
	ord      int64
}

func (d *dedup) add(key, val []byte, ord int64) error {
	if d.has && bytes.Equal(key, d.key) {
		if d.dups.N == 0 {
			d.dups.First = &DuplicateError{Key: bytes.Clone(key), Ord1: d.ord, Ord2: ord}
		}
		d.dups.N++
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
