package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestInspectAgreesWithBuild: inspect exits non-zero on every input build
// refuses, from the same code path, and 0 on what build reads.
func TestInspectAgreesWithBuild(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	write := func(path string, rows any) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o755)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		switch r := rows.(type) {
		case []struct {
			ID int64 `parquet:"id"`
		}:
			err = parquet.Write(f, r)
		case []struct {
			ID string `parquet:"id"`
		}:
			err = parquet.Write(f, r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Column id is int64 in one file and a string in the other.
	conflict := filepath.Join(dir, "conflict")
	write(filepath.Join(conflict, "part-00000-a.parquet"), []struct {
		ID int64 `parquet:"id"`
	}{{1}})
	write(filepath.Join(conflict, "part-00001-b.parquet"), []struct {
		ID string `parquet:"id"`
	}{{"x"}})
	// A Structured Streaming sink.
	sink := filepath.Join(dir, "sink")
	write(filepath.Join(sink, "part-00000-a.parquet"), []struct {
		ID int64 `parquet:"id"`
	}{{1}})
	os.MkdirAll(filepath.Join(sink, "_spark_metadata"), 0o755)
	os.WriteFile(filepath.Join(sink, "_spark_metadata", "0"), []byte("v1\n"), 0o644)

	for name, c := range map[string]struct {
		url string
		ok  bool
	}{
		"places":   {filepath.Join(repoRoot(t), "testdata", "places"), true},
		"conflict": {conflict, false},
		"sink":     {sink, false},
	} {
		t.Run(name, func(t *testing.T) {
			spec := filepath.Join(dir, name+".yaml")
			os.WriteFile(spec, []byte(fmt.Sprintf("bundles:\n  b:\n    inputs: {in: {url: %s, require_success: false}}\n    assets: {a: {format: arrow, input: in}}\n", c.url)), 0o644)
			b := lockstep(t, store, "build", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
			i := lockstep(t, store, "inspect", "--no-require-success", c.url)
			if (b.code == 0) != c.ok || (i.code == 0) != c.ok {
				t.Fatalf("build exit %d, inspect exit %d; want both %v\nbuild: %s\ninspect: %s%s", b.code, i.code, c.ok, b.stderr, i.stdout, i.stderr)
			}
		})
	}
}
