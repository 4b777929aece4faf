package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
)

type narrow struct {
	ID int32   `parquet:"id"`
	F  float32 `parquet:"f"`
}

type wide struct {
	ID int64   `parquet:"id"`
	F  float64 `parquet:"f"`
	X  *string `parquet:"x,optional"`
}

func writeFile[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoverPartitionsAndUnion: Spark's skip rules, escaped and null hive
// partitions typed like Spark, and a schema union with widenings.
func TestDiscoverPartitionsAndUnion(t *testing.T) {
	dir := t.TempDir()
	x := "x"
	writeFile(t, filepath.Join(dir, "k=1/c=a%2Fb/part-0.parquet"), []narrow{{1, 1.5}})
	writeFile(t, filepath.Join(dir, "k=2/c=__HIVE_DEFAULT_PARTITION__/part-1.parquet"), []wide{{2, 2.5, &x}})
	writeFile(t, filepath.Join(dir, "k=3/c=z/_temporary/0/part-9.parquet"), []wide{{9, 9, nil}})
	writeFile(t, filepath.Join(dir, "k=1/c=a%2Fb/part-2-tid-77-x.parquet"), []wide{{7, 7, nil}})
	os.WriteFile(filepath.Join(dir, "k=1/c=a%2Fb/_started_77"), nil, 0o644) // DBIO markers sit beside their files
	os.WriteFile(filepath.Join(dir, "k=1/c=a%2Fb/.part-0.parquet.crc"), []byte("crc"), 0o644)
	ctx := context.Background()
	if _, _, err := DiscoverWith(ctx, "in", "file://"+dir, DiscoverOptions{RequireSuccess: true}); !errors.Is(err, ErrNoSuccess) {
		t.Fatalf("no _SUCCESS: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644)
	src, skipped, err := DiscoverWith(ctx, "in", "file://"+dir, DiscoverOptions{RequireSuccess: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if len(src.Files) != 2 || len(skipped) != 5 {
		t.Fatalf("files %v, skipped %v", src.Files, skipped)
	}
	schema, err := src.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "schema:\n  fields: 5\n    - id: type=int64\n    - f: type=float64\n    - x: type=utf8, nullable\n    - k: type=int32, nullable\n    - c: type=utf8, nullable"
	if schema.String() != want {
		t.Fatalf("schema\n%s\nwant\n%s", schema, want)
	}
	var got []string
	_, _, err = src.Scan(ctx, schema, func(rec arrow.RecordBatch) error {
		for i := range int(rec.NumRows()) {
			var row []string
			for _, c := range rec.Columns() {
				row = append(row, c.ValueStr(i))
			}
			got = append(got, strings.Join(row, ","))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ";") != "1,1.5,(null),1,a/b;2,2.5,x,2,(null)" {
		t.Fatalf("rows %q", got)
	}
	_ = array.NewInt32Builder
}

// TestDiscoverRefusesNonParquet: a file is Parquet by its bytes, not its name.
func TestDiscoverRefusesNonParquet(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "part-0.parquet"), []byte("this is not parquet at all"), 0o644)
	_, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "part-0.parquet") || !strings.Contains(err.Error(), "PAR1") {
		t.Fatalf("got %v", err)
	}
}

// TestSchemaConflictNamesBothFiles: an unmergeable difference names both files and the column.
func TestSchemaConflictNamesBothFiles(t *testing.T) {
	type s1 struct {
		ID string `parquet:"id"`
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.parquet"), []narrow{{1, 1}})
	writeFile(t, filepath.Join(dir, "b.parquet"), []s1{{"1"}})
	src, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Schema(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a.parquet") || !strings.Contains(err.Error(), "b.parquet") || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("got %v", err)
	}
}

// TestFileMemoryOption: an input's file_memory is each file's budget. A
// file of one 32 MiB page is read with the default budget and refused with
// a 32 MiB one (a page counts twice its size), naming the spec key.
func TestFileMemoryOption(t *testing.T) {
	type row struct {
		V int64 `parquet:"v,zstd"`
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf, parquet.PageBufferSize(64<<20))
	w.Write(make([]row, 4<<20))
	w.Close()
	os.WriteFile(filepath.Join(dir, "part-00000.parquet"), buf.Bytes(), 0o644)
	read := func(budget int64) error {
		ctx := context.Background()
		src, _, err := DiscoverWith(ctx, "in", "file://"+dir, DiscoverOptions{FileMemory: budget})
		if err != nil {
			return err
		}
		defer src.Close()
		schema, err := src.Schema(ctx)
		if err != nil {
			return err
		}
		_, _, err = src.Scan(ctx, schema, func(arrow.RecordBatch) error { return nil })
		return err
	}
	if err := read(0); err != nil {
		t.Fatalf("default budget: %v", err)
	}
	err := read(32 << 20)
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "file_memory:") || !strings.Contains(err.Error(), "part-00000.parquet") {
		t.Fatalf("a 32 MiB budget: %v", err)
	}
}
