package fst_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/fst"
)

var conformance = formatstest.Case{
	Format:       fst.Format{},
	Options:      map[string]any{"key": "key", "value": "id", "sort_buffer": "256KiB"},
	SpillOptions: map[string]any{"sort_buffer": "256KiB"},
}

func TestConformance(t *testing.T) { formatstest.Run(t, conformance) }

func TestGolden(t *testing.T) { formatstest.Golden(t, conformance) }

// words writes keys (with duplicates dropped by the caller's policy) and
// returns the FST and the source as a map.
func words(t *testing.T, keys []string, opts map[string]any) formats.Reader {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "w", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.StringBuilder).AppendValues(keys, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	cfg, err := fst.Format{}.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := cfg.NewWriter(&buf, schema)
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return formatstest.Open(t, fst.Format{}, buf.Bytes())
}

func levenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// TestBruteForce compares exact, prefix and fuzzy lookups with a scan of
// the source.
func TestBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	syll := []string{"ber", "lin", "mün", "chen", "zü", "rich", "ham", "burg", "ko", "ln", "a", "é"}
	var keys []string
	ord := map[string]uint64{}
	for len(keys) < 20000 {
		var sb strings.Builder
		for range 1 + rng.IntN(4) {
			sb.WriteString(syll[rng.IntN(len(syll))])
		}
		k := sb.String()
		if _, dup := ord[k]; !dup {
			ord[k] = uint64(len(keys))
		}
		keys = append(keys, k)
	}
	r := words(t, keys, map[string]any{"key": "w", "duplicates": "first"})
	if r.Rows() != int64(len(ord)) {
		t.Fatalf("%d keys, want %d", r.Rows(), len(ord))
	}
	ctx := context.Background()
	for i := range 150 {
		probe := keys[rng.IntN(len(keys))]
		if i%3 == 0 {
			probe += "x"
		}
		// exact
		res, err := r.Query(ctx, []string{probe}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := ord[probe]; ok != (len(res.Rows) == 1) || ok && res.Rows[0][1] != v {
			t.Fatalf("get %q: %v, want %d (%v)", probe, res.Rows, v, ok)
		}
		// prefix
		p := probe[:min(len(probe), 1+i%5)]
		var want []string
		for k := range ord {
			if strings.HasPrefix(k, p) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		res, _ = r.Query(ctx, []string{"prefix:" + p}, 1<<20)
		if got := column(res); !slices.Equal(got, want) {
			t.Fatalf("prefix %q: %d keys, want %d", p, len(got), len(want))
		}
		// fuzzy, distance 1 and 2
		d := 1 + i%2
		want = want[:0]
		for k := range ord {
			if levenshtein([]rune(k), []rune(probe)) <= d {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		res, err = r.Query(ctx, []string{fmt.Sprintf("fuzzy:%s:%d", probe, d)}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := column(res); !slices.Equal(got, want) {
			t.Fatalf("fuzzy %q ≤ %d: %v, want %v", probe, d, got, want)
		}
	}
}

func column(res *formats.Result) []string {
	var out []string
	for _, row := range res.Rows {
		out = append(out, row[0].(string))
	}
	return out
}

func TestOrdinalsAndDuplicates(t *testing.T) {
	r := words(t, []string{"b", "a", "c"}, map[string]any{"key": "w"})
	res, _ := r.Query(context.Background(), nil, 10)
	if fmt.Sprint(res.Rows) != "[[a 1] [b 0] [c 2]]" {
		t.Fatalf("ordinals: %v", res.Rows)
	}
	r = words(t, []string{"b", "a", "b"}, map[string]any{"key": "w", "duplicates": "last"})
	res, _ = r.Query(context.Background(), []string{"b"}, 10)
	if fmt.Sprint(res.Rows) != "[[b 2]]" {
		t.Fatalf("last: %v", res.Rows)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "w", Type: arrow.BinaryTypes.String}}, nil)
	cfg, _ := fst.Format{}.Configure(map[string]any{"key": "w"})
	w, _ := cfg.NewWriter(&bytes.Buffer{}, schema)
	for i, k := range []string{"x", "y", "x"} {
		w.(formats.FileStarter).StartFile(fmt.Sprintf("s3://b/out/part-%d.parquet", i))
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		b.Field(0).(*array.StringBuilder).Append(k)
		_ = w.Write(context.Background(), b.NewRecordBatch())
	}
	err := w.Close(context.Background())
	if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), `w="x" in record 0 of s3://b/out/part-0.parquet and record 0 of s3://b/out/part-2.parquet`) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestHostileFile(t *testing.T) {
	data := formatstest.Write(t, fst.Format{}, conformance.Options, formatstest.Shuffled(3000), 500)
	for _, bad := range [][]byte{nil, data[:len(data)/2], data[:10], append(make([]byte, 20), data[20:]...)} {
		if r, err := (fst.Format{}).Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
			if err := r.Check(context.Background()); err == nil {
				if res, err := r.Query(context.Background(), nil, 5000); err == nil && len(res.Rows) == 3000 {
					t.Errorf("a broken file of %d bytes opened and read clean", len(bad))
				}
			}
		}
	}
}

// TestSortedStreams: keys declared sorted stream into the FST — the same
// bytes a sort writes — and keys that go down are refused by name.
func TestSortedStreams(t *testing.T) {
	ids := make([]int64, 5000)
	for i := range ids {
		ids[i] = int64(i) // formatstest.Key(i) sorts like i
	}
	base := map[string]any{"key": "key", "value": "id", "sort_buffer": "64KiB"}
	a := formatstest.Write(t, fst.Format{}, base, ids, 700)
	base["sorted"] = true
	b := formatstest.Write(t, fst.Format{}, base, ids, 700)
	if !bytes.Equal(a, b) {
		t.Fatal("a streamed FST differs from a sorted one")
	}
	cfg, _ := fst.Format{}.Configure(base)
	w, _ := cfg.NewWriter(&bytes.Buffer{}, formatstest.Schema)
	defer w.Abort()
	rec := formatstest.Batch([]int64{5, 4})
	err := w.Write(context.Background(), rec)
	rec.Release()
	if !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), `key="k0000004"`) || !strings.Contains(err.Error(), "sorted: true") {
		t.Fatalf("unsorted input declared sorted: %v", err)
	}
}

// TestFuzzyQueryArguments: a fuzzy query that matches nothing is an empty
// answer (it once read a nil iterator and was reported as a corrupt FST),
// and a distance outside 0-2 is a bad query, not corrupt data.
func TestFuzzyQueryArguments(t *testing.T) {
	r := words(t, []string{"Dakar", "Dallas", "Delhi"}, map[string]any{"key": "w"})
	ctx := context.Background()
	for _, q := range []string{"fuzzy:Dal", "fuzzy:Dal:2", "fuzzy:Dal:x", "fuzzy:"} {
		res, err := r.Query(ctx, []string{q}, 5)
		if err != nil || len(res.Rows) != 0 {
			t.Errorf("%s: %v, %v; want no rows", q, res, err)
		}
	}
	if res, err := r.Query(ctx, []string{"fuzzy:Dakr:1"}, 5); err != nil || len(res.Rows) != 1 || res.Rows[0][0] != "Dakar" {
		t.Errorf("fuzzy:Dakr:1: %v, %v; want Dakar", res, err)
	}
	for _, q := range []string{"fuzzy:Dal:3", "fuzzy:Dal:-1", "fuzzy:Dal:10"} {
		if _, err := r.Query(ctx, []string{q}, 5); !errors.Is(err, formats.ErrBadQuery) || !strings.Contains(err.Error(), "0, 1 or 2") {
			t.Errorf("%s: %v; want ErrBadQuery", q, err)
		}
	}
}
