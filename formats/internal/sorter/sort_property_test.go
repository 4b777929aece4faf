package sorter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// TestMatchesStableSort: for keys of every length around the 8-byte
// prefix (shared prefixes, a stem common to all, zero bytes, empty keys), any budget (one buffer,
// a few runs, more runs than one merge takes) and every policy, the output
// is a stable sort of the input followed by the policy.
func TestMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for round := range 24 {
		n := 1 + r.IntN(6000)
		type kv struct {
			k, v []byte
			ord  int
		}
		var in []kv
		stems := [][]byte{{}, {0}, {0, 0, 0, 0, 0, 0, 0, 0}, []byte("abcdefgh"), []byte("abcdefghij"), []byte("abc")}
		for i := range n {
			k := slices.Clone(stems[r.IntN(len(stems))])
			for range r.IntN(6) {
				k = append(k, byte(r.IntN(3)))
			}
			if round%2 == 1 { // every key shares a stem: the prefix starts after it
				k = append([]byte("stem/"), k...)
			}
			in = append(in, kv{k, binary.BigEndian.AppendUint32(nil, uint32(i)), i})
		}
		budget := []int64{1 << 30, 256 << 10, 64 << 10, 16 << 10}[round%4]
		policy := []Policy{PolicyFirst, PolicyLast, PolicyError}[round%3]
		dir := t.TempDir()
		s := New(Config{Budget: budget, TempDir: dir, Policy: policy})
		for _, e := range in {
			if err := s.Add(context.Background(), e.k, e.v); err != nil {
				t.Fatal(err)
			}
		}
		spilled := s.Spilled()
		var got []string
		err := s.Finish(context.Background(), func(k, v []byte) error {
			got = append(got, fmt.Sprintf("%x=%x", k, v))
			return nil
		})
		want := slices.Clone(in)
		slices.SortStableFunc(want, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		var wantOut []string
		var wantErr bool
		for i := 0; i < len(want); {
			j := i
			for j+1 < len(want) && bytes.Equal(want[j+1].k, want[i].k) {
				j++
			}
			switch {
			case j > i && policy == PolicyError:
				wantErr = true
			case policy == PolicyLast:
				wantOut = append(wantOut, fmt.Sprintf("%x=%x", want[j].k, want[j].v))
			default:
				wantOut = append(wantOut, fmt.Sprintf("%x=%x", want[i].k, want[i].v))
			}
			i = j + 1
		}
		if wantErr {
			if err == nil {
				t.Fatalf("round %d: duplicates but no error", round)
			}
		} else if err != nil {
			t.Fatalf("round %d: %v", round, err)
		} else if !slices.Equal(got, wantOut) {
			t.Fatalf("round %d (budget %d, %d runs, policy %d): output differs from a stable sort", round, budget, spilled, policy)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("spill folder left behind: %v", ents)
		}
	}
}

// TestManyRunsMergeInPasses: more runs than one merge opens at once.
func TestManyRunsMergeInPasses(t *testing.T) {
	s := New(Config{Budget: 4 << 10, TempDir: t.TempDir(), Policy: PolicyError})
	const n = 12000
	for i := range n {
		k := uint64(i) * 2654435761 % (1 << 32)
		if err := s.Add(context.Background(), binary.BigEndian.AppendUint64(nil, k), nil); err != nil {
			t.Fatal(err)
		}
	}
	if s.Spilled() <= 2*fanIn(4<<10) {
		t.Fatalf("only %d runs", s.Spilled())
	}
	var prev []byte
	count := 0
	if err := s.Finish(context.Background(), func(k, _ []byte) error {
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			return fmt.Errorf("%x after %x", k, prev)
		}
		prev = append(prev[:0], k...)
		count++
		return nil
	}); err != nil || count != n {
		t.Fatalf("%v, %d keys", err, count)
	}
}

// BenchmarkSort adds 1M entries (8-byte random keys, 100-byte values) and
// emits them in order: all in memory, and spilled to runs and merged.
func BenchmarkSort(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(13, 14))
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(nil, r.Uint64())
	}
	val := bytes.Repeat([]byte("v"), 100)
	for _, budget := range []int64{1 << 30, 16 << 20} {
		b.Run(fmt.Sprintf("budget=%dMiB", budget>>20), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := New(Config{Budget: budget, TempDir: b.TempDir(), Policy: PolicyError})
				for _, k := range keys {
					if err := s.Add(context.Background(), k, val); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Finish(context.Background(), func(_, _ []byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
