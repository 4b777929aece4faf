package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// The deletion vectors here are hand-built from PROTOCOL.md ("Deletion
// Vector Format"): delta-spark writes only on-disk vectors, which the
// delta_dv* cases of gen_inputs.py cover against Spark's own reads; these
// tests add the inline form, vectors that cross row groups and batches, and
// corrupt or hostile ones that no writer produces.

// z85Encode is Delta's Base85Codec.encodeBytes: zero-padded to 4 bytes.
func z85Encode(b []byte) string {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	var sb strings.Builder
	for i := 0; i < len(b); i += 4 {
		v := binary.BigEndian.Uint32(b[i:])
		var g [5]byte
		for j := 4; j >= 0; j-- {
			g[j] = z85[v%85]
			v /= 85
		}
		sb.Write(g[:])
	}
	return sb.String()
}

// dvBitmap is Delta's serialized vector of rows: magic, portable bitmap.
func dvBitmap(t *testing.T, rows ...uint64) []byte {
	bm := roaring64.BitmapOf(rows...)
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint32(dvMagic))
	if _, err := bm.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dvTable writes two Spark-layout files of 20000 rows (ids 0-39999, row
// groups of 3000) and a Delta log whose commit 0 adds them, each with the
// deletion vector JSON given ("" for none).
func dvTable(t *testing.T, dvs ...string) string {
	dir := t.TempDir()
	writeSparkLayout(t, dir, 2, 20000, 3000)
	os.Remove(filepath.Join(dir, "_SUCCESS"))
	schema := `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"key","type":"string","nullable":false,"metadata":{}},{"name":"score","type":"double","nullable":false,"metadata":{}},{"name":"count","type":"integer","nullable":false,"metadata":{}},{"name":"tag","type":"string","nullable":false,"metadata":{}},{"name":"ts","type":"timestamp","nullable":false,"metadata":{}}]}`
	log := fmt.Sprintf(`{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}
{"metaData":{"id":"t","format":{"provider":"parquet","options":{}},"schemaString":%q,"partitionColumns":[],"configuration":{}}}
`, schema)
	entries, _ := filepath.Glob(filepath.Join(dir, "part-*.parquet"))
	slices.Sort(entries)
	for i, p := range entries {
		st, _ := os.Stat(p)
		dv := ""
		if i < len(dvs) && dvs[i] != "" {
			dv = `,"deletionVector":` + dvs[i]
		}
		log += fmt.Sprintf(`{"add":{"path":%q,"partitionValues":{},"size":%d,"modificationTime":1,"dataChange":true,"stats":"{\"numRecords\":20000}"%s}}`+"\n", filepath.Base(p), st.Size(), dv)
	}
	os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000000.json"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func inlineDV(data []byte, card int) string {
	return fmt.Sprintf(`{"storageType":"i","pathOrInlineDv":%q,"sizeInBytes":%d,"cardinality":%d}`, z85Encode(data), len(data), card)
}

// onDiskDV writes data as the only vector of a DV file under prefix/ of
// dir, framed as the protocol says, and returns its descriptor.
func onDiskDV(t *testing.T, dir, prefix string, data []byte, card int, frame func([]byte) []byte) string {
	uuid := []byte("0123456789abcdef")
	u := hex.EncodeToString(uuid)
	name := fmt.Sprintf("deletion_vector_%s-%s-%s-%s-%s.bin", u[0:8], u[8:12], u[12:16], u[16:20], u[20:32])
	var f bytes.Buffer
	f.WriteByte(1)
	binary.Write(&f, binary.BigEndian, uint32(len(data)))
	f.Write(data)
	binary.Write(&f, binary.BigEndian, crc32.ChecksumIEEE(data))
	out := f.Bytes()
	if frame != nil {
		out = frame(out)
	}
	os.MkdirAll(filepath.Join(dir, prefix), 0o755)
	if err := os.WriteFile(filepath.Join(dir, prefix, name), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"storageType":"u","pathOrInlineDv":%q,"offset":1,"sizeInBytes":%d,"cardinality":%d}`, prefix+z85Encode(uuid), len(data), card)
}

// deltaIDs reads the table at dir and returns its ids in scan order.
func deltaIDs(t *testing.T, dir string) ([]int64, *Source, error) {
	ctx := context.Background()
	src, _, err := DiscoverWith(ctx, "t", "file://"+dir, DiscoverOptions{})
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		return nil, src, err
	}
	var ids []int64
	_, _, err = src.Scan(ctx, schema, func(rec arrow.RecordBatch) error {
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
		return nil
	})
	return ids, src, err
}

// TestDeletionVectorsApplied: an on-disk vector (under a random prefix, as
// Delta writes them) deleting rows across row groups and batch boundaries,
// and an inline one, drop exactly their rows and keep the order.
func TestDeletionVectorsApplied(t *testing.T) {
	del0 := []uint64{0, 1, 2999, 3000, 3001, 8191, 8192, 19999}
	for r := uint64(10000); r < 11000; r++ {
		del0 = append(del0, r)
	}
	del1 := []uint64{5, 6, 17000}
	dir := dvTable(t)
	dv0 := onDiskDV(t, dir, "ab", dvBitmap(t, del0...), len(del0), nil)
	dv1 := inlineDV(dvBitmap(t, del1...), len(del1))
	dir2 := dvTable(t, dv0, dv1)
	os.Rename(filepath.Join(dir, "ab"), filepath.Join(dir2, "ab"))

	ids, src, err := deltaIDs(t, dir2)
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[int64]bool{}
	for _, r := range del0 {
		deleted[int64(r)] = true
	}
	for _, r := range del1 {
		deleted[20000+int64(r)] = true
	}
	var want []int64
	for id := range int64(40000) {
		if !deleted[id] {
			want = append(want, id)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("read %d ids, want %d (all but the deleted, in order)", len(ids), len(want))
	}
	if f := src.Files[0]; f.DeletedRows != int64(len(del0)) || !strings.HasPrefix(f.DeletionVector, "ab/deletion_vector_30313233-3435-3637-3839-616263646566.bin@1") {
		t.Errorf("file 0 records %+v", f)
	}
	if f := src.Files[1]; f.DeletedRows != 3 || !strings.HasPrefix(f.DeletionVector, "inline:sha256:") {
		t.Errorf("file 1 records %+v", f)
	}
	// inspect agrees with build on the rows read.
	in, err := Inspect(context.Background(), "file://"+dir2, DiscoverOptions{})
	if err != nil || in.Rows != int64(len(want)) || in.Files[0].DeletedRows != int64(len(del0)) {
		t.Errorf("inspect: %d rows, %+v, %v; want %d rows", in.Rows, in.Files, err, len(want))
	}
}

// emptyContainer is a vector whose one bucket is a 32-bit bitmap of no
// containers (no writer makes one; roaring's Maximum panics on it).
func emptyContainer(t *testing.T) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(dvMagic))
	binary.Write(&b, binary.LittleEndian, uint64(1))     // buckets
	binary.Write(&b, binary.LittleEndian, uint32(0))     // key
	binary.Write(&b, binary.LittleEndian, uint32(12346)) // cookie: no runs
	binary.Write(&b, binary.LittleEndian, uint32(0))     // containers
	return b.Bytes()
}

// unsortedContainer is a vector whose array container holds 5 then 2.
func unsortedContainer(t *testing.T) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(dvMagic))
	binary.Write(&b, binary.LittleEndian, uint64(1))
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, uint32(12346))
	binary.Write(&b, binary.LittleEndian, uint32(1))
	binary.Write(&b, binary.LittleEndian, [2]uint16{0, 1}) // key 0, 2 values
	binary.Write(&b, binary.LittleEndian, uint32(8+4+4+4+4))
	binary.Write(&b, binary.LittleEndian, [2]uint16{5, 2})
	return b.Bytes()
}

// TestDeletionVectorsHostile: corrupt and hostile vectors are refused with
// a typed error naming the data file and what is wrong, never a panic or
// an allocation the bytes do not justify.
func TestDeletionVectorsHostile(t *testing.T) {
	good := dvBitmap(t, 1, 2, 3)
	huge := slices.Clone(good)
	binary.LittleEndian.PutUint64(huge[4:], 1<<40)
	badMagic := slices.Clone(good)
	badMagic[0] ^= 1
	cases := []struct {
		name, want string
		dv         func(dir string) string
	}{
		{"crc", "CRC-32", func(dir string) string {
			return onDiskDV(t, dir, "", good, 3, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })
		}},
		{"frame size", "holds", func(dir string) string {
			return onDiskDV(t, dir, "", good, 3, func(b []byte) []byte { b[4]++; return b })
		}},
		{"truncated", "truncated", func(dir string) string {
			return onDiskDV(t, dir, "", good, 3, func(b []byte) []byte { return b[:len(b)-6] })
		}},
		{"missing file", "deletion vector file", func(dir string) string {
			d := onDiskDV(t, dir, "zz", good, 3, nil)
			os.RemoveAll(filepath.Join(dir, "zz"))
			return d
		}},
		{"magic", "magic", func(string) string { return inlineDV(badMagic, 3) }},
		{"bucket count", "buckets declared", func(string) string { return inlineDV(huge, 3) }},
		{"two buckets", "buckets declared", func(string) string { return inlineDV(dvBitmap(t, 1, 1<<33), 2) }},
		{"oversized", "needs at most", func(string) string {
			return `{"storageType":"i","pathOrInlineDv":"00000","sizeInBytes":100000,"cardinality":1}`
		}},
		{"empty container", "malformed bitmap", func(string) string { return inlineDV(emptyContainer(t), 1) }},
		{"unsorted container", "out of order", func(string) string { return inlineDV(unsortedContainer(t), 2) }},
		{"cardinality", "the table says 4", func(string) string { return inlineDV(good, 4) }},
		{"row beyond file", "deletes row 20000", func(string) string { return inlineDV(dvBitmap(t, 20000), 1) }},
		{"z85", "not a Z85 character", func(string) string {
			return `{"storageType":"i","pathOrInlineDv":"~~~~~","sizeInBytes":4,"cardinality":1}`
		}},
		{"size", "out of range", func(string) string {
			return `{"storageType":"i","pathOrInlineDv":"00000","sizeInBytes":1099511627776,"cardinality":1}`
		}},
		{"absolute path", "absolute path", func(string) string {
			return `{"storageType":"p","pathOrInlineDv":"s3://elsewhere/dv.bin","offset":1,"sizeInBytes":40,"cardinality":1}`
		}},
		{"storage type", "unknown storageType", func(string) string {
			return `{"storageType":"x","pathOrInlineDv":"","sizeInBytes":4,"cardinality":1}`
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scratch := t.TempDir()
			dv := c.dv(scratch)
			dir := dvTable(t, dv)
			entries, _ := os.ReadDir(scratch)
			for _, e := range entries {
				os.Rename(filepath.Join(scratch, e.Name()), filepath.Join(dir, e.Name()))
			}
			_, _, err := deltaIDs(t, dir)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "part-00000-") {
				t.Fatalf("want an input error naming part-00000-… and %q, got %v", c.want, err)
			}
			if _, err := Inspect(context.Background(), "file://"+dir, DiscoverOptions{}); err == nil {
				t.Error("inspect exits 0 on a table build refuses")
			}
		})
	}
}
