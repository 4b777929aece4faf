package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gocloud.dev/blob"
)

// Delta deletion vectors (PROTOCOL.md, "Deletion Vectors" and "Deletion
// Vector Format"). A DELETE on a table with deletion vectors rewrites no
// data file: it re-adds the file with a deletion vector, the set of row
// positions (0-based, in file order) that are no longer in the table. The
// set is a 64-bit RoaringBitmap in the portable format after a 4-byte
// magic number, stored inline in the log (Z85 text) or in a file beside the
// data, where each vector is framed by its size and a CRC-32.

// deletionVector is a deletion vector descriptor.
type deletionVector struct {
	StorageType    string `json:"storageType"` // u: relative file, p: absolute path, i: inline
	PathOrInlineDv string `json:"pathOrInlineDv"`
	Offset         *int64 `json:"offset"`
	SizeInBytes    int64  `json:"sizeInBytes"`
	Cardinality    int64  `json:"cardinality"`
}

const (
	dvMagic = 1681511377
	// maxDVBytes bounds one deletion vector's serialized size. A vector
	// over every row of a 2^31-row file takes about 256 MiB; real ones are
	// far smaller, so a larger size is a corrupt or hostile descriptor.
	maxDVBytes = 64 << 20
)

// parseDV reads an add action's deletionVector.
func parseDV(raw json.RawMessage) (*deletionVector, error) {
	dv := &deletionVector{}
	if err := json.Unmarshal(raw, dv); err != nil {
		return nil, fmt.Errorf("deletionVector: %v", err)
	}
	if dv.SizeInBytes < 0 || dv.SizeInBytes > maxDVBytes {
		return nil, fmt.Errorf("deletionVector: sizeInBytes %d is out of range (0 to %d)", dv.SizeInBytes, maxDVBytes)
	}
	if dv.Cardinality < 0 {
		return nil, fmt.Errorf("deletionVector: cardinality %d is negative", dv.Cardinality)
	}
	switch dv.StorageType {
	case "u", "p":
		if dv.Offset == nil || *dv.Offset < 1 {
			return nil, fmt.Errorf("deletionVector: storage type %s needs an offset of 1 or more", dv.StorageType)
		}
	case "i":
	default:
		return nil, fmt.Errorf("deletionVector: unknown storageType %q", dv.StorageType)
	}
	return dv, nil
}

// key is the object under the table root that holds an on-disk vector.
// An absolute path (storage type p, written by shallow clones) is refused
// as data files named by absolute paths are: lockstep reads a table's files
// only under its own location.
func (dv *deletionVector) key() (string, error) {
	switch dv.StorageType {
	case "u":
		s := dv.PathOrInlineDv
		if len(s) < 20 {
			return "", fmt.Errorf("deletion vector path %q is shorter than its 20-character UUID", s)
		}
		id, err := decodeZ85(s[len(s)-20:], 16)
		if err != nil {
			return "", fmt.Errorf("deletion vector path %q: %v", s, err)
		}
		u := hex.EncodeToString(id)
		name := fmt.Sprintf("deletion_vector_%s-%s-%s-%s-%s.bin", u[0:8], u[8:12], u[12:16], u[16:20], u[20:32])
		prefix := s[:len(s)-20]
		if strings.Contains(prefix, "..") || strings.HasPrefix(prefix, "/") {
			return "", fmt.Errorf("deletion vector path prefix %q leaves the table", prefix)
		}
		return path.Join(prefix, name), nil
	case "p":
		return "", fmt.Errorf("deletion vector at absolute path %s: lockstep reads a table's files only under its own location (a shallow clone?); read a deep copy of the table", dv.PathOrInlineDv)
	}
	return "", nil
}

// id is the vector's identity for the manifest and the fingerprint.
func (dv *deletionVector) id() string {
	if dv.StorageType == "i" {
		sum := sha256.Sum256([]byte(dv.PathOrInlineDv))
		return "inline:sha256:" + hex.EncodeToString(sum[:])
	}
	k, err := dv.key()
	if err != nil {
		k = dv.PathOrInlineDv
	}
	return fmt.Sprintf("%s@%d", k, *dv.Offset)
}

// rowDeletes are the rows of one data file that its table deletes without
// rewriting it: a Delta deletion vector, an Iceberg table's position delete
// files or deletion vector. Scan drops them as it reads the file.
type rowDeletes interface {
	// load returns the positions, checked against the file's numRows.
	load(ctx context.Context, b *blob.Bucket, numRows int64) (*roaring64.Bitmap, error)
	id() string   // what the manifest records of them
	count() int64 // how many rows they delete
}

func (dv *deletionVector) count() int64 { return dv.Cardinality }

// maxDVSize is the largest serialized vector a file of numRows rows can
// need: a 64K-row container takes at most 8 KiB (a bitmap; an array or a
// run container is chosen only when smaller) and a few bytes of header.
func maxDVSize(numRows int64) int64 { return 64 + (numRows/65536+1)*(8192+16) }

// load reads and checks the vector for a file of numRows rows: its size
// against what the file's rows can need (before reading it), its frame's
// size and CRC-32, its magic number and bucket count, and its positions:
// strictly increasing, each a row of the file, as many as the log says.
func (dv *deletionVector) load(ctx context.Context, b *blob.Bucket, numRows int64) (bm *roaring64.Bitmap, err error) {
	if limit := maxDVSize(numRows); dv.SizeInBytes > limit {
		return nil, fmt.Errorf("deletion vector of %d bytes for a file of %d rows, which needs at most %d", dv.SizeInBytes, numRows, limit)
	}
	var data []byte
	if dv.StorageType == "i" {
		if data, err = decodeZ85(dv.PathOrInlineDv, int(dv.SizeInBytes)); err != nil {
			return nil, fmt.Errorf("inline deletion vector: %v", err)
		}
	} else {
		key, err := dv.key()
		if err != nil {
			return nil, err
		}
		if data, err = readDVFrame(ctx, b, key, *dv.Offset, dv.SizeInBytes); err != nil {
			return nil, err
		}
	}
	return dvPositions(data, numRows, dv.Cardinality)
}

// readDVFrame reads a deletion vector's frame at off in key, as Delta and
// Iceberg (its deletion-vector-v1 blob) both lay it out: the size of the
// vector (4 bytes, big-endian), the vector (size bytes), its CRC-32 (4
// bytes, big-endian); it returns the vector.
func readDVFrame(ctx context.Context, b *blob.Bucket, key string, off, size int64) ([]byte, error) {
	frame := make([]byte, size+8)
	r, err := b.NewRangeReader(ctx, key, off, int64(len(frame)), nil)
	if err != nil {
		return nil, fmt.Errorf("deletion vector file %s: %v", key, err)
	}
	_, err = io.ReadFull(r, frame)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("deletion vector file %s at offset %d: %v (truncated?)", key, off, err)
	}
	data := frame[4 : 4+size]
	if n := binary.BigEndian.Uint32(frame); int64(n) != size {
		return nil, fmt.Errorf("deletion vector file %s at offset %d holds %d bytes, the table says %d", key, off, n, size)
	}
	if sum := binary.BigEndian.Uint32(frame[4+size:]); sum != crc32.ChecksumIEEE(data) {
		return nil, fmt.Errorf("deletion vector file %s at offset %d fails its CRC-32 check: the file is corrupt", key, off)
	}
	return data, nil
}

// dvPositions parses a serialized vector for a file of numRows rows and
// checks that it deletes want rows of the file.
func dvPositions(data []byte, numRows, want int64) (bm *roaring64.Bitmap, err error) {
	defer func() {
		// The roaring library trusts its input's structure; what it makes
		// of a malformed one is checked below, and a panic is an error.
		if p := recover(); p != nil {
			bm, err = nil, fmt.Errorf("deletion vector: malformed bitmap (%v)", p)
		}
	}()
	if bm, err = parseDVBitmap(data, numRows); err != nil {
		return nil, err
	}
	// Roaring's own Validate is quadratic in a container's runs; one pass
	// over the positions checks what the filter relies on.
	var n int64
	prev := int64(-1)
	for it := bm.Iterator(); it.HasNext(); n++ {
		v := it.Next()
		if v >= uint64(numRows) {
			return nil, fmt.Errorf("deletion vector deletes row %d of a file with %d rows", v, numRows)
		}
		if int64(v) <= prev {
			return nil, fmt.Errorf("deletion vector: positions out of order (%d after %d): malformed bitmap", v, prev)
		}
		prev = int64(v)
	}
	if n != want {
		return nil, fmt.Errorf("deletion vector holds %d rows, the table says %d", n, want)
	}
	return bm, nil
}

// parseDVBitmap reads Delta's serialized vector: the magic number, then a
// portable 64-bit RoaringBitmap. The bucket count (one per 2^32 rows) is
// checked against the file's rows and the bytes before the library
// allocates for it.
func parseDVBitmap(data []byte, numRows int64) (*roaring64.Bitmap, error) {
	if len(data) < 12 || binary.LittleEndian.Uint32(data) != dvMagic {
		return nil, fmt.Errorf("deletion vector: not a Delta RoaringBitmapArray (bad magic number or too short)")
	}
	if n := binary.LittleEndian.Uint64(data[4:]); n > uint64(numRows>>32)+1 || n > uint64(len(data)-12)/12 {
		return nil, fmt.Errorf("deletion vector: %d buckets declared for a file of %d rows in %d bytes", n, numRows, len(data))
	}
	bm := roaring64.New()
	r := bytes.NewReader(data[4:])
	if _, err := bm.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("deletion vector: %v", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("deletion vector: %d bytes after the bitmap", r.Len())
	}
	return bm, nil
}

// z85 is the Z85 alphabet (ZeroMQ RFC 32), the one Delta's Base85Codec uses.
const z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// decodeZ85 decodes s into its first n bytes; Delta pads the encoded bytes
// to a multiple of four.
func decodeZ85(s string, n int) ([]byte, error) {
	if len(s)%5 != 0 || n < 0 || n > len(s)/5*4 {
		return nil, fmt.Errorf("Z85 text of %d characters cannot hold %d bytes", len(s), n)
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for _, c := range []byte(s[i : i+5]) {
			d := strings.IndexByte(z85, c)
			if d < 0 {
				return nil, fmt.Errorf("%q is not a Z85 character", c)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return nil, fmt.Errorf("Z85 group %q is out of range", s[i:i+5])
		}
		out = binary.BigEndian.AppendUint32(out, uint32(v))
	}
	return out[:n], nil
}

// rowFilter drops a file's deleted rows from its records, which come in
// file order.
type rowFilter struct {
	it  roaring64.IntPeekable64
	pos uint64 // the file position of the next record's first row
}

func newRowFilter(bm *roaring64.Bitmap) *rowFilter { return &rowFilter{it: bm.Iterator()} }

// apply returns rec without its deleted rows; rec itself, retained, when it
// has none.
func (f *rowFilter) apply(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := uint64(rec.NumRows())
	start := f.pos
	f.pos += n
	f.it.AdvanceIfNeeded(start)
	var keep [][2]int64 // row ranges [from, to) of rec that stay
	from := int64(0)
	for f.it.HasNext() && f.it.PeekNext() < start+n {
		row := int64(f.it.Next() - start) // increasing: load checked it
		if row > from {
			keep = append(keep, [2]int64{from, row})
		}
		from = row + 1
	}
	if from == 0 {
		rec.Retain()
		return rec, nil
	}
	if from < int64(n) {
		keep = append(keep, [2]int64{from, int64(n)})
	}
	rows := int64(0)
	for _, k := range keep {
		rows += k[1] - k[0]
	}
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, col := range rec.Columns() {
		if len(keep) == 0 {
			cols = append(cols, array.MakeArrayOfNull(memory.DefaultAllocator, col.DataType(), 0))
			continue
		}
		parts := make([]arrow.Array, len(keep))
		for i, k := range keep {
			parts[i] = array.NewSlice(col, k[0], k[1])
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("dropping deleted rows: %v", err)
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(rec.Schema(), cols, rows), nil
}
