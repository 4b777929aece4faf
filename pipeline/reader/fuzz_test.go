package reader_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// FuzzReader feeds the reader mutations of real files: it must return a
// typed error naming the file or read the rows, never panic or hang.
// Seeds: the fixture corpus where $LOCKSTEP_FIXTURES is set (files up to
// 64 KiB), and files parquet-go writes.
func FuzzReader(f *testing.F) {
	f.Add(writeParquet(f, nestedRows))
	for _, n := range []uint64{1 << 24, 1 << 31} {
		f.Add(hostileListFile(f, n)) // a footer list longer than its bytes
	}
	f.Add(flatSeed(f))             // flat columns: the page-to-Arrow path
	f.Add(pageBomb(f, 16, 32<<20)) // pages over the file's memory budget together
	if root := os.Getenv("LOCKSTEP_FIXTURES"); root != "" {
		for _, p := range corpusFiles(f, root) {
			if st, err := os.Stat(p); err == nil && st.Size() <= 64<<10 {
				if data, err := os.ReadFile(p); err == nil {
					f.Add(data)
				}
			}
		}
	}
	lim := reader.Limits{MaxFooter: 1 << 20, MaxRows: 1 << 20, MaxColumnChunk: 64 << 20, BatchBytes: 8 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		file, err := reader.OpenLimits(bytes.NewReader(data), int64(len(data)), "fuzz.parquet", lim)
		if err == nil {
			err = file.Records(ctx, 0, func(arrow.RecordBatch) error { return nil })
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if !strings.Contains(err.Error(), "fuzz.parquet") {
			t.Fatalf("error does not name the file: %v", err)
		}
		if !errors.Is(err, reader.ErrCorrupt) && !errors.Is(err, reader.ErrNotParquet) &&
			!errors.Is(err, reader.ErrEncrypted) && !errors.Is(err, reader.ErrUnsupported) &&
			!errors.Is(err, reader.ErrLimit) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// flatSeed is a small file of flat columns (optional, dictionary, several
// pages), which the reader decodes without parquet.Value.
func flatSeed(t testing.TB) []byte {
	type row struct {
		ID      int64   `parquet:"id"`
		Name    *string `parquet:"name,optional"`
		Country string  `parquet:"country,dict"`
		Lat     float64 `parquet:"lat"`
		N       *int16  `parquet:"n,optional,dict"`
	}
	var rows []row
	for i := range 40 {
		r := row{ID: int64(i * 7), Country: []string{"DE", "FR", "CH"}[i%3], Lat: float64(i) / 3}
		if i%4 != 0 {
			name, n := fmt.Sprint("place-", i), int16(i%5)
			r.Name, r.N = &name, &n
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf, parquet.PageBufferSize(64), parquet.MaxRowsPerRowGroup(25))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileListFile is a small valid file whose footer's schema list then
// declares count elements.
func hostileListFile(t testing.TB, count uint64) []byte {
	t.Helper()
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
	listHeader, skip := footer[at], 1
	if listHeader>>4 == 15 {
		_, m := binary.Uvarint(footer[at+1:])
		skip += m
	}
	hostile := append([]byte{}, footer[:at]...)
	hostile = append(hostile, 0xf0|listHeader&0x0f)
	hostile = binary.AppendUvarint(hostile, count)
	hostile = append(hostile, footer[at+skip:]...)
	file := append(append([]byte{}, body...), hostile...)
	file = binary.LittleEndian.AppendUint32(file, uint32(len(hostile)))
	return append(file, "PAR1"...)
}

// TestHostileListLength: a small file whose footer declares a list of 2^24,
// 2^28 or 2^31 elements is refused as corrupt before parquet-go allocates
// for it. (Without the check, 2^28 took the process down with "runtime:
// out of memory", and 2^24 used 1.5 GiB.)
func TestHostileListLength(t *testing.T) {
	for _, count := range []uint64{1 << 24, 1 << 28, 1 << 31} {
		file := hostileListFile(t, count)
		_, err := reader.Open(bytes.NewReader(file), int64(len(file)), "hostile.parquet")
		if !errors.Is(err, reader.ErrCorrupt) || !strings.Contains(err.Error(), "declares") || !strings.Contains(err.Error(), "hostile.parquet") {
			t.Errorf("a list of %d elements: %v", count, err)
		}
	}
}
