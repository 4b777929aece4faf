package reader

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestPatchFooter: a footer whose KeyValues all have values comes out
// byte for byte; one that lacks a value gets an empty one, and parquet-go
// then opens the file (column_chunk_key_value_metadata in the corpus).
func TestPatchFooter(t *testing.T) {
	footerOf := func(data []byte) []byte {
		n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
		return data[len(data)-8-n : len(data)-8]
	}
	var buf bytes.Buffer
	type row struct {
		ID   int64  `parquet:"id"`
		Name string `parquet:"name,optional"`
	}
	w := parquet.NewGenericWriter[row](&buf, parquet.KeyValueMetadata("origin", "lockstep test"))
	w.Write([]row{{1, "a"}, {2, "b"}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := footerOf(buf.Bytes())
	out, n, err := patchFooter(good)
	if err != nil || n != 0 || !bytes.Equal(out, good) {
		t.Fatalf("a valid footer changed: %d added, %v", n, err)
	}
	if _, _, err := patchFooter(good[:len(good)/2]); err == nil {
		t.Fatal("a truncated footer was accepted")
	}
	root := os.Getenv("LOCKSTEP_FIXTURES")
	if root == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LOCKSTEP_FIXTURES is unset under CI=true")
		}
		t.Skip("LOCKSTEP_FIXTURES unset: the corpus file is not here")
	}
	path := filepath.Join(root, "parquet-testing", "data", "column_chunk_key_value_metadata.parquet")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, n, err = patchFooter(footerOf(data))
	if err != nil || n != 1 {
		t.Fatalf("corpus footer: %d values added, %v", n, err)
	}
	f, err := Open(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 0 || f.Schema().NumFields() != 2 || f.Schema().Field(0).Name != "column1" {
		t.Fatalf("read %d rows, schema %s", f.NumRows(), f.Schema())
	}
}

// FuzzPatchFooter: any bytes give a footer or an error, never a panic or a
// spin (every element consumes input).
func FuzzPatchFooter(f *testing.F) {
	f.Add([]byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0x0f, 0x11}) // a list of 2^32 booleans, then nothing
	f.Add([]byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x11}) // a map of 2^32 bool->bool
	f.Fuzz(func(t *testing.T, data []byte) { patchFooter(data) })
}
