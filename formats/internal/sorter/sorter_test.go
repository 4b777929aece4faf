package sorter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestSpillMergeAndPolicies sorts 50,000 entries (every key twice, in a
// scrambled order) through many spilled runs and checks order and policy.
func TestSpillMergeAndPolicies(t *testing.T) {
	for _, policy := range []Policy{PolicyFirst, PolicyLast, PolicyError} {
		dir := t.TempDir()
		s := New(Config{Budget: 64 << 10, TempDir: dir, Policy: policy})
		const n = 25000
		for i := range 2 * n {
			k := uint64(i%n) * 2654435761 % 1000003
			if err := s.Add(context.Background(), binary.BigEndian.AppendUint64(nil, k), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		if s.Spilled() < 10 || s.Sorted() {
			t.Fatalf("spilled %d runs, sorted %v", s.Spilled(), s.Sorted())
		}
		var prev uint64
		count := 0
		err := s.Finish(context.Background(), func(key, val []byte) error {
			k := binary.BigEndian.Uint64(key)
			if count > 0 && k <= prev {
				return fmt.Errorf("key %d after %d", k, prev)
			}
			var i int
			fmt.Sscan(string(val), &i)
			if (policy == PolicyFirst) != (i < n) {
				return fmt.Errorf("policy %d kept record %d", policy, i)
			}
			prev = k
			count++
			return nil
		})
		var dup *DuplicateError
		switch {
		case policy == PolicyError && (!errors.As(err, &dup) || dup.Ord2-dup.Ord1 != n):
			t.Fatalf("error policy: %v", err)
		case policy != PolicyError && (err != nil || count != n):
			t.Fatalf("policy %d: %v, %d keys", policy, err, count)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("spill folder left behind: %v", ents)
		}
	}
}

// TestSortedInputIsNotSorted: keys in order spill as runs that are read
// one after the other.
func TestSortedInputIsNotSorted(t *testing.T) {
	s := New(Config{Budget: 64 << 10, TempDir: t.TempDir()})
	for i := range 20000 {
		_ = s.Add(context.Background(), binary.BigEndian.AppendUint64(nil, uint64(i)), nil)
	}
	if !s.Sorted() || s.Spilled() == 0 {
		t.Fatalf("sorted %v, spilled %d", s.Sorted(), s.Spilled())
	}
	n := 0
	if err := s.Finish(context.Background(), func(key, _ []byte) error {
		if binary.BigEndian.Uint64(key) != uint64(n) {
			return fmt.Errorf("key %x at %d", key, n)
		}
		n++
		return nil
	}); err != nil || n != 20000 {
		t.Fatal(err, n)
	}
}
