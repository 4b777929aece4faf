package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// pageBomb is a small file whose cols columns each point at one zstd page
// that decompresses to pageBytes of zeros: parquet-go writes one column of
// int64 zeros as a single page, and the footer is rewritten so that cols
// columns share that chunk (the hostile case: 16 columns of 250 MiB
// pages in 129 KB). Nested, the column is a list<int64> (the general,
// non-flat read path) instead.
func pageBomb(t testing.TB, cols int, pageBytes int, nested ...bool) []byte {
	t.Helper()
	type row struct {
		V int64 `parquet:"v,zstd"`
	}
	type listRow struct {
		V []int64 `parquet:"v,zstd,list"`
	}
	n := pageBytes / 8
	var buf bytes.Buffer
	opts := []parquet.WriterOption{parquet.PageBufferSize(pageBytes + 1<<20), parquet.MaxRowsPerRowGroup(int64(n))}
	if len(nested) > 0 && nested[0] {
		w := parquet.NewGenericWriter[listRow](&buf, opts...)
		rows := []listRow{{V: make([]int64, 1024)}}
		for left := n; left > 0; left -= 1024 {
			if _, err := w.Write(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		w := parquet.NewGenericWriter[row](&buf, opts...)
		rows := make([]row, 1<<16)
		for left := n; left > 0; left -= len(rows) {
			if _, err := w.Write(rows[:min(left, len(rows))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data := buf.Bytes()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	md := *f.Metadata()
	subtree := md.Schema[1:] // the column's schema elements, depth first
	md.Schema = md.Schema[:1]
	md.Schema[0].NumChildren = thrift.New(int32(cols))
	rg := md.RowGroups[0]
	chunk := rg.Columns[0]
	rg.Columns = nil
	for i := range cols {
		name := fmt.Sprintf("c%02d", i)
		for j, se := range subtree {
			if j == 0 {
				se.Name = name
			}
			md.Schema = append(md.Schema, se)
		}
		c := chunk
		c.MetaData.PathInSchema = append([]string{name}, chunk.MetaData.PathInSchema[1:]...)
		rg.Columns = append(rg.Columns, c)
	}
	md.RowGroups = []format.RowGroup{rg}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	footerLen := int(uint32(data[len(data)-8]) | uint32(data[len(data)-7])<<8 | uint32(data[len(data)-6])<<16 | uint32(data[len(data)-5])<<24)
	out := append([]byte{}, data[:len(data)-8-footerLen]...)
	out = append(out, footer...)
	out = append(out, byte(len(footer)), byte(len(footer)>>8), byte(len(footer)>>16), byte(len(footer)>>24))
	return append(out, "PAR1"...)
}

// readPath opens and reads a whole file with the default limits.
func readPath(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := reader.Open(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		return err
	}
	return f.Records(context.Background(), 0, func(arrow.RecordBatch) error { return nil })
}

// TestRSSChild is the child side of childRSS: it reads the files listed in
// $LOCKSTEP_RSS_FILES (one per line) and prints each outcome.
func TestRSSChild(t *testing.T) {
	list := os.Getenv("LOCKSTEP_RSS_FILES")
	if list == "" {
		t.Skip("the child of childRSS only")
	}
	data, _ := os.ReadFile(list)
	for _, p := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fmt.Printf("file\t%s\t%v\n", p, readPath(p))
	}
	// VmHWM is this process's own peak: ru_maxrss would also count the
	// parent's memory at fork, which exec does not reset.
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "VmHWM" {
			fmt.Printf("peak\t%s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

// childRSS reads files in a child process and returns its peak RSS in
// bytes and each file's outcome ("<nil>" or the error).
func childRSS(t *testing.T, files []string) (int64, map[string]string) {
	t.Helper()
	list := filepath.Join(t.TempDir(), "files")
	os.WriteFile(list, []byte(strings.Join(files, "\n")), 0o644)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$")
	cmd.Env = append(os.Environ(), "LOCKSTEP_RSS_FILES="+list)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak int64 = -1
	outcome := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, "\t", 3)
		switch {
		case f[0] == "file" && len(f) == 3:
			outcome[f[1]] = f[2]
		case f[0] == "peak" && len(f) == 2:
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			peak = kb << 10
		}
	}
	if peak < 0 || len(outcome) != len(files) {
		t.Fatalf("child printed no peak or not every file:\n%s", out)
	}
	return peak, outcome
}

// TestMemoryBound: no input of the fixture corpus, the fuzz seeds or the
// hostile cases (footer lists of 2^24 to 2^31 elements; zstd pages of 250
// MiB and 100 MiB of zeros in 16 columns of 13-30 KB files, which took
// 6.9 GiB and 3.0 GiB before the budget) makes a reader process peak above
// 256 MiB of RSS, and none crashes it (the child exits 0 after reading every
// file). The page bombs are refused by the budget, naming it, and so is the
// same bomb in list<int64> columns (the nested read path), whose peak is
// bounded by twice the budget (see below).
func TestMemoryBound(t *testing.T) {
	dir := t.TempDir()
	hostile := map[string][]byte{
		"bomb-16x250.parquet":      pageBomb(t, 16, 250<<20),
		"bomb-16x100.parquet":      pageBomb(t, 16, 100<<20),
		"bomb-list-16x100.parquet": pageBomb(t, 16, 100<<20, true),
		"nested.parquet":           writeParquet(t, nestedRows),
		"flat.parquet":             flatSeed(t),
	}
	for _, n := range []uint64{1 << 24, 1 << 28, 1 << 31} {
		hostile[fmt.Sprintf("list-%d.parquet", n)] = hostileListFile(t, n)
	}
	var files []string
	for name, data := range hostile {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	slices.Sort(files)
	// Each hostile file in a process of its own; the corpus in groups of 64
	// (a group's peak bounds each of its files': a process that reads many
	// files also holds what the garbage collector has not yet returned).
	groups := [][]string{}
	for _, f := range files {
		groups = append(groups, []string{f})
	}
	corpus := corpusFiles(t, fixtures(t))
	for len(corpus) > 0 {
		n := min(64, len(corpus))
		groups, corpus = append(groups, corpus[:n]), corpus[n:]
	}
	var worst int64
	for _, g := range groups {
		peak, outcome := childRSS(t, g)
		// The nested bomb's first column (an 80 MiB page, 179 MiB of the
		// budget with its levels) is read before the second is refused;
		// the garbage collector's headroom (GOGC=100: up to twice the live
		// heap) takes it past 256 MiB. The budget bounds live memory, so
		// twice the budget bounds its peak.
		limit := int64(256 << 20)
		if strings.HasPrefix(filepath.Base(g[0]), "bomb-list-") {
			limit = 512 << 20
			t.Logf("%s: peak RSS %d MiB", filepath.Base(g[0]), peak>>20)
		} else {
			worst = max(worst, peak)
		}
		if peak > limit {
			t.Errorf("%s (%d files): peak RSS %d MiB, over %d MiB", filepath.Base(g[0]), len(g), peak>>20, limit>>20)
		}
		if name := filepath.Base(g[0]); strings.HasPrefix(name, "bomb-") && !strings.Contains(outcome[g[0]], "memory budget of 256 MiB") {
			t.Errorf("%s: %s, want a refusal naming the memory budget", name, outcome[g[0]])
		}
	}
	t.Logf("%d child processes, the largest peak RSS %d MiB (the nested bomb aside)", len(groups), worst>>20)
}

// TestBudgetReleased: a file whose pages together exceed the budget many
// times over, but which holds only one page per column at a time, is read:
// each page's share is returned when the next replaces it.
func TestBudgetReleased(t *testing.T) {
	type row struct {
		A int64  `parquet:"a,zstd"`
		B string `parquet:"b,zstd"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf, parquet.PageBufferSize(1<<20), parquet.MaxRowsPerRowGroup(1<<20))
	rows := make([]row, 4096)
	for i := range 256 {
		for j := range rows {
			rows[j] = row{A: int64(i*4096 + j), B: strings.Repeat("x", 64)}
		}
		w.Write(rows)
	}
	w.Close()
	data := buf.Bytes()
	lim := reader.DefaultLimits
	lim.MaxFileMemory = 16 << 20 // 1M rows: about 72 MiB uncompressed, in 1 MiB pages
	f, err := reader.OpenLimits(bytes.NewReader(data), int64(len(data)), "wide.parquet", lim)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := f.Records(context.Background(), 0, func(r arrow.RecordBatch) error { n += r.NumRows(); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 256*4096 {
		t.Fatalf("%d rows, want %d", n, 256*4096)
	}
	lim.MaxFileMemory = 2 << 20 // less than two 1 MiB pages
	f, _ = reader.OpenLimits(bytes.NewReader(data), int64(len(data)), "wide.parquet", lim)
	err = f.Records(context.Background(), 0, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, reader.ErrLimit) || !strings.Contains(err.Error(), "wide.parquet") {
		t.Fatalf("a 2 MiB budget: %v, want ErrLimit naming the file", err)
	}
}
