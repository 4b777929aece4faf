package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func fixtureRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LOCKSTEP_FIXTURES")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LOCKSTEP_FIXTURES is unset under CI=true")
		}
		t.Skip("LOCKSTEP_FIXTURES is unset: set it to the fixture corpus to run this test")
	}
	return dir
}

// deltaTables lists every folder of the corpus with a _delta_log/.
func deltaTables(t *testing.T, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "_delta_log" {
			out = append(out, filepath.Dir(p))
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// readSource discovers and reads a whole input, returning its rows.
func readSource(ctx context.Context, url string) (*Source, int64, error) {
	src, _, err := DiscoverWith(ctx, "t", url, DiscoverOptions{})
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		return src, 0, err
	}
	rows, _, err := src.Scan(ctx, schema, func(arrow.RecordBatch) error { return nil })
	return src, rows, err
}

// TestDeltaCorpus reads every Delta table of the corpus: each is read or
// refused with a typed error that names what to do.
func TestDeltaCorpus(t *testing.T) {
	root := fixtureRoot(t)
	tables := deltaTables(t, root)
	read := 0
	for _, dir := range tables {
		rel, _ := filepath.Rel(root, dir)
		src, rows, err := readSource(context.Background(), "file://"+dir)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Errorf("%s: untyped: %v", rel, err)
			}
			t.Logf("%s: refused: %v", rel, err)
			continue
		}
		read++
		t.Logf("%s: version %d, %d files, %d rows", rel, *src.DeltaVersion, len(src.Files), rows)
	}
	t.Logf("%d Delta tables, %d read", len(tables), read)
	// A reader feature lockstep lacks is refused by name, saying what to do.
	_, _, err := readSource(context.Background(), "file://"+filepath.Join(root, "delta-golden", "spark-variant-checkpoint"))
	if !errors.Is(err, ErrDeltaFeature) || !strings.Contains(err.Error(), "variantType") || !strings.Contains(err.Error(), "pin delta_version:") {
		t.Errorf("spark-variant-checkpoint: want a refusal naming variantType and what to do, got %v", err)
	}
}

// TestDeltaFeatureListedNotUsed: a table whose protocol lists
// deletionVectors (as liquid clustering tables do) but whose files carry
// none is read as it was.
func TestDeltaFeatureListedNotUsed(t *testing.T) {
	table := filepath.Join(fixtureRoot(t), "delta-golden", "basic-decimal-table")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(table)); err != nil {
		t.Fatal(err)
	}
	_, want, err := readSource(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	proto := `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors","clustering"]}}` + "\n"
	os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000001.json"), []byte(proto), 0o644)
	src, got, err := readSource(context.Background(), "file://"+dir)
	if err != nil || got != want || *src.DeltaVersion != 1 {
		t.Fatalf("deletionVectors listed, none used: %d rows (want %d), %v", got, want, err)
	}
}
