package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/formatstest"
	"github.com/lockstep-data/lockstep/formats/kv"
)

// writeShards writes ids with the sharded writer and returns each shard.
func writeShards(t *testing.T, opts map[string]any, ids []int64) ([][]byte, []int64) {
	t.Helper()
	cfg, err := kv.Format{}.Configure(opts)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.(formats.ShardedConfig)
	bufs := make([]*bytes.Buffer, sc.Shards())
	var opened []int
	w, err := sc.NewShardedWriter(func(i int) (io.Writer, error) {
		opened = append(opened, i)
		bufs[i] = &bytes.Buffer{}
		return bufs[i], nil
	}, formatstest.Schema)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(ids); i += 1000 {
		rec := formatstest.Batch(ids[i:min(i+1000, len(ids))])
		err := w.Write(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if want := fmt.Sprint(seq(sc.Shards())); fmt.Sprint(opened) != want {
		t.Fatalf("opened shards %v, want %s", opened, want)
	}
	out := make([][]byte, len(bufs))
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out, w.ShardRows()
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// rows reads every entry of a table through the kv reader, after Check.
func rows(t *testing.T, data []byte) [][]any {
	t.Helper()
	r := formatstest.Open(t, kv.Format{}, data)
	res, err := r.Query(context.Background(), nil, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(res.Rows)) != r.Rows() {
		t.Fatalf("%d rows listed, %d in the properties", len(res.Rows), r.Rows())
	}
	return res.Rows
}

func TestShards(t *testing.T) {
	ids := formatstest.Shuffled(25000)
	base := map[string]any{"key": "id", "sort_buffer": "1MiB", "value": "msgpack"}
	whole := rows(t, formatstest.Write(t, kv.Format{}, base, ids, 1000))
	for _, n := range []int{2, 3, 7} {
		opts := map[string]any{"shards": n}
		for k, v := range base {
			opts[k] = v
		}
		shards, counts := writeShards(t, opts, ids)
		again, _ := writeShards(t, opts, ids)
		var union [][]any
		for i, data := range shards {
			if !bytes.Equal(data, again[i]) {
				t.Fatalf("%d shards: shard %d differs between two writes", n, i)
			}
			got := rows(t, data)
			if int64(len(got)) != counts[i] {
				t.Fatalf("shard %d holds %d rows, ShardRows says %d", i, len(got), counts[i])
			}
			if want := (len(ids) + n - 1) / n; i < n-1 && len(got) != want {
				t.Fatalf("%d shards: shard %d holds %d rows, want %d", n, i, len(got), want)
			}
			if len(union) > 0 && len(got) > 0 && got[0][0].(int64) <= union[len(union)-1][0].(int64) {
				t.Fatalf("shard %d starts at %v, not after the previous shard's last key %v", i, got[0][0], union[len(union)-1][0])
			}
			union = append(union, got...)
		}
		if !reflect.DeepEqual(union, whole) {
			t.Fatalf("%d shards: the union of the shards (%d rows) differs from the whole table (%d rows)", n, len(union), len(whole))
		}
	}
	// More shards than rows: the last ones are empty, valid tables.
	shards, counts := writeShards(t, map[string]any{"key": "id", "shards": 4}, []int64{5, 1})
	if fmt.Sprint(counts) != "[1 1 0 0]" || len(rows(t, shards[3])) != 0 {
		t.Fatalf("2 rows in 4 shards: %v", counts)
	}
}

func TestShardsDuplicateAndCancel(t *testing.T) {
	tmp := t.TempDir()
	cfg, _ := kv.Format{}.Configure(map[string]any{"key": "network", "shards": 2, "temp_dir": tmp, "sort_buffer": "1MiB"})
	left := func(when string) {
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Fatalf("%s: %d temp files left, such as %s", when, len(ents), ents[0].Name())
		}
	}
	w, err := cfg.(formats.ShardedConfig).NewShardedWriter(func(int) (io.Writer, error) { return io.Discard, nil }, formatstest.Schema)
	if err != nil {
		t.Fatal(err)
	}
	rec := formatstest.Batch([]int64{4, 1, 2, 4})
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); !errors.Is(err, formats.ErrBadInput) || !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("duplicate across shards: %v", err)
	}
	w.Abort()
	left("after a duplicate key")

	ctx, cancel := context.WithCancel(context.Background())
	w, _ = cfg.(formats.ShardedConfig).NewShardedWriter(func(int) (io.Writer, error) { return io.Discard, nil }, formatstest.Schema)
	big := formatstest.Batch(formatstest.Shuffled(20000))
	defer big.Release()
	if err := w.Write(ctx, big); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("close after cancel: %v", err)
	}
	w.Abort()
	left("after cancellation")
	// A shard whose writer fails stops the others and names the shard.
	w, _ = cfg.(formats.ShardedConfig).NewShardedWriter(func(i int) (io.Writer, error) {
		if i == 1 {
			return nil, errors.New("disk full")
		}
		return io.Discard, nil
	}, formatstest.Schema)
	if err := w.Write(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "shard 2 of 2: disk full") {
		t.Fatalf("a failing shard: %v", err)
	}
	w.Abort()
	left("after a failing shard")
}
