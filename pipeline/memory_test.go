package pipeline

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/all"
)

// TestSortShares: the build's budget is split evenly among the sorting
// assets that do not set sort_buffer, after those that do; assets that do
// not sort (sorted: true, arrow without sort_by, mmdb) get nothing.
func TestSortShares(t *testing.T) {
	reg := all.Registry()
	conf := func(format string, opts map[string]any) formats.Config {
		f, err := reg.Lookup(format)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.Configure(opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cfgs := []formats.Config{
		conf("kv", map[string]any{"key": "id"}),
		conf("kv", map[string]any{"key": "id", "sort_buffer": "100MiB"}),
		conf("fst", map[string]any{"key": "name"}),
		conf("kv", map[string]any{"key": "id", "sorted": true}),
		conf("arrow", map[string]any{}),
		conf("arrow", map[string]any{"sort_by": "name"}),
	}
	out := sortShares(512<<20, cfgs)
	wantShare := int64(512<<20-100<<20) / 3
	for i, c := range out {
		sc, sorting := c.(formats.SortingConfig)
		sorts := false
		if sorting {
			sorts, _ = sc.SortMemory()
		}
		switch i {
		case 0, 2, 5:
			if c == cfgs[i] {
				t.Errorf("asset %d: no share given", i)
			}
			if got := shareOf(t, c); got != wantShare {
				t.Errorf("asset %d: share %d, want %d", i, got, wantShare)
			}
		default:
			if c != cfgs[i] {
				t.Errorf("asset %d (sorts %v): config replaced", i, sorts)
			}
		}
		if got, want := c.Options()["sort_buffer"], cfgs[i].Options()["sort_buffer"]; got != want {
			t.Errorf("asset %d: options sort_buffer %v, was %v: a share must not reach the manifest", i, got, want)
		}
	}
	// Many assets never get less than the floor.
	many := make([]formats.Config, 100)
	for i := range many {
		many[i] = conf("kv", map[string]any{"key": "id"})
	}
	if got := shareOf(t, sortShares(512<<20, many)[0]); got != MinMemory {
		t.Errorf("share of 100 assets: %d, want the floor %d", got, MinMemory)
	}
}

// shareOf reads back the share a config was given.
func shareOf(t *testing.T, c formats.Config) int64 {
	t.Helper()
	type sharer interface{ SortShare() int64 }
	s, ok := c.(sharer)
	if !ok {
		t.Fatalf("%T does not report its share", c)
	}
	return s.SortShare()
}

// TestStageWriter: bytes written in any sizes arrive whole and in order,
// Flush waits for them, and a failing file's error comes back.
func TestStageWriter(t *testing.T) {
	var got bytes.Buffer
	w := newStageWriter(&got)
	var want []byte
	for i := range 3000 {
		p := bytes.Repeat([]byte{byte(i)}, i*7%5000)
		want = append(want, p...)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want %d, or out of order", got.Len(), len(want))
	}
	bad := newStageWriter(failWriter{})
	defer bad.Close()
	bad.Write(make([]byte, 3*stageBuffer))
	if err := bad.Flush(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Flush: %v, want the file's error", err)
	}
	if _, err := bad.Write([]byte("x")); err == nil {
		t.Fatal("Write after a failure succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
