package reader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	_ "unsafe" // go:linkname

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/format"
	"github.com/pierrec/lz4/v4"
)

// parquet-go keeps its decompressors in a fixed table indexed by the Parquet
// codec number and offers no way to register one. It has no decoder for the
// deprecated LZ4 codec (5), which parquet-mr writes with Hadoop's framing,
// and its LZ4_RAW decoder grows its output without bound on corrupt input.
// lockstep installs its own decoders in that table, once, at start-up.
//
//go:linkname codecTable github.com/parquet-go/parquet-go.compressionCodecs
var codecTable [8]compress.Codec

func init() {
	codecTable[format.Lz4] = &lz4Codec{hadoop: true}
	codecTable[format.Lz4Raw] = &lz4Codec{}
	for i, c := range codecTable {
		if c != nil && i != int(format.Uncompressed) {
			codecTable[i] = boundedCodec{Codec: c}
		}
	}
}

var errPageSize = errors.New("page decompresses to more bytes than its header declares")

// boundedCodec counts each page against its file's memory budget before
// decompressing it (budget.go), and refuses output larger than the size the
// page header declares (a decompression bomb). parquet-go passes a
// destination sized to the page header's uncompressed size.
type boundedCodec struct {
	compress.Codec
	budget *budget // the file's, set for its columns by openCounted
}

func (b boundedCodec) Decode(dst, src []byte) ([]byte, error) {
	if err := b.budget.reserve(2*int64(len(dst)), func() string { return fmt.Sprintf("a page of %d MiB uncompressed", mib(int64(len(dst)))) }); err != nil {
		return dst[:0], err
	}
	want := len(dst)
	if len(src) == 0 {
		// An empty DataPage v2 (Spark 3.5 writes them) has no compressed
		// bytes at all, which most decoders refuse.
		return dst[:0], nil
	}
	out, err := b.Codec.Decode(dst, src)
	if err != nil {
		return out, err
	}
	// DataPage v2 declares levels and values together but compresses only
	// the values, so less than the declared size is normal.
	if len(out) > want {
		return out[:0], fmt.Errorf("%w: %d bytes where the header says %d", errPageSize, len(out), want)
	}
	return out, nil
}

// lz4Codec decodes LZ4 pages the way parquet-mr and Arrow C++ do. For the
// deprecated LZ4 codec it tries, in order: Hadoop's framing (blocks of a
// 4-byte big-endian uncompressed size, a 4-byte compressed size, then a raw
// LZ4 block), the LZ4 frame format, and a bare LZ4 block (what old
// parquet-cpp wrote). LZ4_RAW is a bare block.
type lz4Codec struct{ hadoop bool }

func (c *lz4Codec) String() string {
	if c.hadoop {
		return "LZ4"
	}
	return "LZ4_RAW"
}

func (c *lz4Codec) CompressionCodec() format.CompressionCodec {
	if c.hadoop {
		return format.Lz4
	}
	return format.Lz4Raw
}

func (c *lz4Codec) Encode(dst, src []byte) ([]byte, error) {
	return dst[:0], errors.New("lockstep does not write parquet")
}

func (c *lz4Codec) Decode(dst, src []byte) ([]byte, error) {
	size := len(dst)
	if c.hadoop {
		if out, ok := hadoopLZ4(dst[:size], src); ok {
			return out, nil
		}
		if len(src) >= 4 && binary.LittleEndian.Uint32(src) == 0x184D2204 {
			r := lz4.NewReader(&byteReader{b: src})
			n, err := io.ReadFull(r, dst[:size])
			if err == nil || err == io.ErrUnexpectedEOF {
				return dst[:n], nil
			}
		}
	}
	n, err := lz4.UncompressBlock(src, dst[:size])
	if err != nil {
		return dst[:0], fmt.Errorf("lz4: %v", err)
	}
	return dst[:n], nil
}

// hadoopLZ4 decodes Hadoop's block framing; ok is false when src is not in
// that framing, so the caller can try the others, as Arrow C++ does.
func hadoopLZ4(dst, src []byte) ([]byte, bool) {
	out := 0
	for len(src) > 0 {
		if len(src) < 8 {
			return nil, false
		}
		usize := int(binary.BigEndian.Uint32(src))
		csize := int(binary.BigEndian.Uint32(src[4:]))
		src = src[8:]
		if csize > len(src) || usize > len(dst)-out {
			return nil, false
		}
		n, err := lz4.UncompressBlock(src[:csize], dst[out:out+usize])
		if err != nil || n != usize {
			return nil, false
		}
		out += n
		src = src[csize:]
	}
	return dst[:out], true
}

type byteReader struct {
	b []byte
}

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

var _ = parquet.LookupCompressionCodec // the table above belongs to this package
