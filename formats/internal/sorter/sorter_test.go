package sorter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
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
		// Every key came twice: the unique check reads this count.
		d := s.Duplicates()
		switch {
		case policy == PolicyError && (d.N != 1 || d.First == nil || d.First.Ord1 != dup.Ord1):
			t.Fatalf("error policy: duplicates %+v", d)
		case policy != PolicyError && (d.N != n || d.First == nil || d.First.Ord2-d.First.Ord1 != n):
			t.Fatalf("policy %d: duplicates %d, first %+v; want %d", policy, d.N, d.First, n)
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

// TestStream: declared-sorted input goes straight out through the duplicate
// policy, nothing is spilled, and a key that goes down is an *OrderError.
func TestStream(t *testing.T) {
	for policy, want := range map[Policy]string{PolicyFirst: "a1 b1 c1", PolicyLast: "a2 b1 c3"} {
		dir := t.TempDir()
		s := New(Config{Budget: 1, TempDir: dir, Policy: policy})
		var got []string
		s.Stream(func(k, v []byte) error { got = append(got, string(k)+string(v)); return nil })
		for _, kv := range []string{"a1", "a2", "b1", "c1", "c2", "c3"} {
			if err := s.Add(context.Background(), []byte(kv[:1]), []byte(kv[1:])); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Finish(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != want || s.Spilled() != 0 {
			t.Fatalf("policy %d: %v (spilled %d), want %s", policy, got, s.Spilled(), want)
		}
		if d := s.Duplicates(); d.N != 3 || string(d.First.Key) != "a" || d.First.Ord1 != 0 || d.First.Ord2 != 1 {
			t.Fatalf("policy %d: duplicates %+v", policy, d)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("streaming made %v", ents)
		}
	}
	s := New(Config{Policy: PolicyError})
	s.Stream(func(k, v []byte) error { return nil })
	s.Add(context.Background(), []byte("b"), nil)
	var oe *OrderError
	if err := s.Add(context.Background(), []byte("a"), nil); !errors.As(err, &oe) || string(oe.Key) != "a" || string(oe.Prev) != "b" || oe.Ord != 1 {
		t.Fatalf("a key going down: %v", err)
	}
	s2 := New(Config{Policy: PolicyError})
	s2.Stream(func(k, v []byte) error { return nil })
	s2.Add(context.Background(), []byte("a"), nil)
	var de *DuplicateError
	if err := s2.Add(context.Background(), []byte("a"), nil); !errors.As(err, &de) {
		t.Fatalf("a duplicate while streaming: %v", err)
	}
}

// TestMemoryLimit: the sort budget follows the tightest of the machine, the
// container and GOMEMLIMIT.
func TestMemoryLimit(t *testing.T) {
	meminfo := []byte("MemFree: 1 kB\nMemTotal: 8388608 kB\n") // 8 GiB
	for _, c := range []struct {
		cg2, cg1 string
		goLimit  int64
		want     int64
	}{
		{"max\n", "", math.MaxInt64, 8 << 30},
		{"2147483648\n", "", math.MaxInt64, 2 << 30},
		{"", "9223372036854771712\n", math.MaxInt64, 8 << 30}, // cgroup v1 "no limit"
		{"", "1073741824\n", math.MaxInt64, 1 << 30},
		{"max", "", 512 << 20, 512 << 20},
	} {
		if got := memoryLimit(meminfo, []byte(c.cg2), []byte(c.cg1), c.goLimit); got != c.want {
			t.Errorf("%q %q %d: %d, want %d", c.cg2, c.cg1, c.goLimit, got, c.want)
		}
	}
	if got := memoryLimit(nil, nil, nil, math.MaxInt64); got != 0 {
		t.Errorf("nothing readable: %d", got)
	}
	if b := DefaultBudget(); b <= 0 {
		t.Fatalf("DefaultBudget %d", b)
	}
}
