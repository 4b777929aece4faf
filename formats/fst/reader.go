package fst

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/blevesearch/vellum"
	"github.com/blevesearch/vellum/levenshtein"

	"github.com/lockstep-data/lockstep/formats"
)

// MaxSize is the largest FST Open reads: vellum works on the bytes in memory.
const MaxSize = 8 << 30

// Open loads the FST into memory and checks its header.
func (Format) Open(r io.ReaderAt, size int64) (rd formats.Reader, err error) {
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("fst: %d bytes is more than the %d this reader loads", size, int64(MaxSize))
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("fst: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("fst: not a readable vellum FST: %v", p)
		}
	}()
	f, err := vellum.Load(data)
	if err != nil {
		return nil, fmt.Errorf("fst: not a readable vellum FST: %w", err)
	}
	return &reader{f: f}, nil
}

type reader struct {
	f   *vellum.FST
	lev [3]*levenshtein.LevenshteinAutomatonBuilder // by distance
}

func (r *reader) Rows() int64 { return int64(r.f.Len()) }

func (r *reader) Describe() map[string]any {
	return map[string]any{"keys": r.f.Len(), "vellum_version": r.f.Version()}
}

// Query syntax, one argument:
//
//	KEY            the value of exactly KEY
//	exact:KEY      the same, for a key that starts with a keyword
//	prefix:P       keys starting with P, in key order
//	fuzzy:K        keys within Levenshtein distance 1 of K
//	fuzzy:K:N      within distance N (0, 1 or 2)
//
// No argument lists the first keys.
func (r *reader) Query(ctx context.Context, args []string, limit int) (res *formats.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("fst: corrupt FST: %v", p)
		}
	}()
	res = &formats.Result{Columns: []string{"key", "value"}}
	if len(args) > 1 {
		return nil, fmt.Errorf("%w: fst takes one argument: KEY, prefix:P or fuzzy:K[:N]", formats.ErrBadQuery)
	}
	arg := ""
	if len(args) == 1 {
		arg = args[0]
	}
	var it *vellum.FSTIterator
	switch {
	case len(args) == 0:
		it, err = r.f.Iterator(nil, nil)
	case strings.HasPrefix(arg, "prefix:"):
		p := []byte(strings.TrimPrefix(arg, "prefix:"))
		it, err = r.f.Iterator(p, prefixEnd(p))
	case strings.HasPrefix(arg, "fuzzy:"):
		key, dist, perr := parseFuzzy(strings.TrimPrefix(arg, "fuzzy:"))
		if perr != nil {
			return nil, perr
		}
		// A builder for a larger distance than asked matches too much
		// (vellum builds the DFA for the builder's distance), so keep one
		// per distance.
		if r.lev[dist] == nil {
			if r.lev[dist], err = levenshtein.NewLevenshteinAutomatonBuilder(dist, false); err != nil {
				return nil, fmt.Errorf("fst: %w", err)
			}
		}
		dfa, derr := r.lev[dist].BuildDfa(key, dist)
		if derr != nil {
			return nil, fmt.Errorf("%w: fst: fuzzy %q: %v", formats.ErrBadQuery, key, derr)
		}
		// err, not a new one: ErrIteratorDone (no key matches) is checked
		// below; shadowed, the loop read a nil iterator.
		it, err = r.f.Search(dfa, nil, nil)
		if err != nil && err != vellum.ErrIteratorDone {
			return nil, fmt.Errorf("fst: %w", err)
		}
	default:
		key := strings.TrimPrefix(arg, "exact:")
		v, ok, err := r.f.Get([]byte(key))
		if err != nil {
			return nil, fmt.Errorf("fst: %w", err)
		}
		if ok && limit > 0 {
			res.Rows = append(res.Rows, []any{key, v})
		}
		return res, nil
	}
	if err == vellum.ErrIteratorDone {
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fst: %w", err)
	}
	for len(res.Rows) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, v := it.Current()
		res.Rows = append(res.Rows, []any{string(k), v})
		if err := it.Next(); err == vellum.ErrIteratorDone {
			break
		} else if err != nil {
			return nil, fmt.Errorf("fst: %w", err)
		}
	}
	return res, nil
}

// parseFuzzy splits "K:N": a trailing ":N" with N an integer is the
// distance, which must be 0, 1 or 2; without one it is 1 (so a key may hold
// ':' followed by anything but a number).
func parseFuzzy(s string) (string, uint8, error) {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if n, err := strconv.Atoi(s[i+1:]); err == nil {
			if n < 0 || n > 2 {
				return "", 0, fmt.Errorf("%w: fst: fuzzy distance %d: give 0, 1 or 2 (fuzzy:KEY:N)", formats.ErrBadQuery, n)
			}
			return s[:i], uint8(n), nil
		}
	}
	return s, 1, nil
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Check walks every key: they must strictly increase, and their number must
// match the header's.
func (r *reader) Check(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("fst: corrupt FST: %v", p)
		}
	}()
	it, err := r.f.Iterator(nil, nil)
	n := 0
	var prev []byte
	for err == nil {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k, _ := it.Current()
		if n > 0 && bytes.Compare(k, prev) <= 0 {
			return fmt.Errorf("fst: key %q does not follow %q", k, prev)
		}
		prev = append(prev[:0], k...)
		n++
		err = it.Next()
	}
	if err != vellum.ErrIteratorDone {
		return fmt.Errorf("fst: %w", err)
	}
	if n != r.f.Len() {
		return fmt.Errorf("fst: %d keys, and the header says %d", n, r.f.Len())
	}
	return nil
}

func (r *reader) Close() error { return r.f.Close() }
