package reader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestHostileListLength: a small file whose footer declares a list of 2^28
// or 2^31 elements is refused as corrupt before parquet-go allocates for
// it. (Without the check, 2^28 took the process down with "runtime: out of
// memory", and 2^24 used 1.5 GiB.)
func TestHostileListLength(t *testing.T) {
	var buf bytes.Buffer
	type row struct {
		ID int64 `parquet:"id"`
	}
	w := parquet.NewGenericWriter[row](&buf)
	w.Write([]row{{1}, {2}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	body, footer := data[:len(data)-8-n], data[len(data)-8-n:len(data)-8]
	// FileMetaData: field 1 (version, i32: header 0x15, a zigzag varint),
	// then field 2 (schema, list: header 0x19) and the list's header.
	if footer[0] != 0x15 {
		t.Fatalf("footer starts % x, want field 1 as i32", footer[:4])
	}
	_, k := binary.Uvarint(footer[1:])
	at := 1 + k
	if footer[at] != 0x19 {
		t.Fatalf("field 2 header %#x, want a list", footer[at])
	}
	at++
	listHeader := footer[at]
	skip := 1
	if listHeader>>4 == 15 {
		_, m := binary.Uvarint(footer[at+1:])
		skip += m
	}
	for _, count := range []uint64{1 << 24, 1 << 28, 1 << 31} {
		hostile := append([]byte{}, footer[:at]...)
		hostile = append(hostile, 0xf0|listHeader&0x0f)
		hostile = binary.AppendUvarint(hostile, count)
		hostile = append(hostile, footer[at+skip:]...)
		file := append(append([]byte{}, body...), hostile...)
		file = binary.LittleEndian.AppendUint32(file, uint32(len(hostile)))
		file = append(file, "PAR1"...)
		_, err := Open(bytes.NewReader(file), int64(len(file)), "hostile.parquet")
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "declares") {
			t.Errorf("a list of %d elements in a %d-byte footer: %v", count, len(hostile), err)
		}
	}
}
