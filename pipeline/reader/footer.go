package reader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// parquet-go's footer decoder requires KeyValue.value, which the Parquet
// spec makes optional (parquet-testing's column_chunk_key_value_metadata
// leaves it out). When that is the only problem, Open rewrites the footer
// with an empty value where one is missing and reads the file through a
// view that serves the rewritten footer; the pages are untouched.

// Thrift compact protocol types.
const (
	ctTrue   = 1
	ctFalse  = 2
	ctByte   = 3
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctDouble = 7
	ctBinary = 8
	ctList   = 9
	ctSet    = 10
	ctMap    = 11
	ctStruct = 12
)

var errFooter = errors.New("footer is not valid thrift")

// footerPatcher copies a compact-protocol FileMetaData, adding an empty
// `value` (field 2) to every KeyValue struct that lacks one.
type footerPatcher struct {
	in      []byte
	pos     int
	out     []byte
	depth   int
	added   int
	discard bool // only walk: checkFooter
}

func (p *footerPatcher) byte() (byte, error) {
	if p.pos >= len(p.in) {
		return 0, errFooter
	}
	b := p.in[p.pos]
	p.pos++
	if !p.discard {
		p.out = append(p.out, b)
	}
	return b, nil
}

func (p *footerPatcher) uvarint() (uint64, error) {
	v, n := binary.Uvarint(p.in[p.pos:])
	if n <= 0 {
		return 0, errFooter
	}
	if !p.discard {
		p.out = append(p.out, p.in[p.pos:p.pos+n]...)
	}
	p.pos += n
	return v, nil
}

func (p *footerPatcher) skip(n uint64) error {
	if n > uint64(len(p.in)-p.pos) {
		return errFooter
	}
	if !p.discard {
		p.out = append(p.out, p.in[p.pos:p.pos+int(n)]...)
	}
	p.pos += int(n)
	return nil
}

// fits refuses a list, set or map that declares more elements than the
// bytes left could hold at min bytes each (every element takes at least
// one). parquet-go's decoder allocates a declared length up front, so a
// 1 KB footer declaring 2^31 elements would take the process down.
func (p *footerPatcher) fits(n uint64, min int) error {
	if left := uint64(len(p.in) - p.pos); n > left/uint64(min) {
		return fmt.Errorf("%w: a list declares %d elements with %d bytes left", errFooter, n, left)
	}
	return nil
}

// value copies one value of compact type t; kv says the value is a
// KeyValue struct.
func (p *footerPatcher) value(t byte, kv bool) error {
	switch t {
	case ctTrue, ctFalse:
		return nil // in a field header: no payload
	case ctByte:
		_, err := p.byte()
		return err
	case ctI16, ctI32, ctI64:
		_, err := p.uvarint()
		return err
	case ctDouble:
		return p.skip(8)
	case ctBinary:
		n, err := p.uvarint()
		if err != nil {
			return err
		}
		return p.skip(n)
	case ctList, ctSet:
		h, err := p.byte()
		if err != nil {
			return err
		}
		n, et := uint64(h>>4), h&0x0f
		if n == 15 {
			if n, err = p.uvarint(); err != nil {
				return err
			}
		}
		if err := p.fits(n, 1); err != nil {
			return err
		}
		for range n {
			if err := p.elem(et, kv && et == ctStruct); err != nil {
				return err
			}
		}
		return nil
	case ctMap:
		n, err := p.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kt, err := p.byte()
		if err != nil {
			return err
		}
		if err := p.fits(n, 2); err != nil {
			return err
		}
		for range n {
			if err := p.elem(kt>>4, false); err != nil {
				return err
			}
			if err := p.elem(kt&0x0f, false); err != nil {
				return err
			}
		}
		return nil
	case ctStruct:
		return p.structure(nil, kv)
	}
	return errFooter
}

// elem copies one element of a list, set or map, where a boolean takes a
// byte of its own (in a field header it takes none). Every element consumes
// input, so a hostile count cannot spin.
func (p *footerPatcher) elem(t byte, kv bool) error {
	if t == ctTrue || t == ctFalse {
		_, err := p.byte()
		return err
	}
	return p.value(t, kv)
}

// kvFields says, for a struct on the path from FileMetaData, which of its
// fields are lists of KeyValue (kv) or lead to one (next).
type kvPath struct {
	kv   map[int16]bool
	next map[int16]*kvPath
}

var (
	columnMetaData = &kvPath{kv: map[int16]bool{8: true}}                                       // key_value_metadata
	columnChunk    = &kvPath{next: map[int16]*kvPath{3: columnMetaData}}                        // meta_data
	rowGroup       = &kvPath{next: map[int16]*kvPath{1: columnChunk}}                           // columns
	fileMetaData   = &kvPath{kv: map[int16]bool{5: true}, next: map[int16]*kvPath{4: rowGroup}} // key_value_metadata, row_groups
)

// structure copies a struct. at locates it on the way to KeyValue lists; kv
// says it is a KeyValue itself.
func (p *footerPatcher) structure(at *kvPath, kv bool) error {
	if p.depth++; p.depth > 64 {
		return errFooter
	}
	defer func() { p.depth-- }()
	var id int16
	hasValue := false
	for {
		h, err := p.byte()
		if err != nil {
			return err
		}
		if h == 0 {
			if kv && !hasValue {
				// Insert field 2 (binary, long-form header) before the stop.
				p.out = append(p.out[:len(p.out)-1], ctBinary, 0x04, 0x00, 0x00)
				p.added++
			}
			return nil
		}
		t := h & 0x0f
		if d := int16(h >> 4); d != 0 {
			id += d
		} else {
			z, err := p.uvarint()
			if err != nil {
				return err
			}
			id = int16(z>>1) ^ -int16(z&1)
		}
		if kv && id == 2 {
			hasValue = true
		}
		var child *kvPath
		childKV := false
		if at != nil {
			child = at.next[id]
			childKV = at.kv[id]
		}
		if child != nil && (t == ctList || t == ctSet) {
			if err := p.listOf(child); err != nil {
				return err
			}
			continue
		}
		if child != nil && t == ctStruct {
			if err := p.structure(child, false); err != nil {
				return err
			}
			continue
		}
		if err := p.value(t, childKV); err != nil {
			return err
		}
	}
}

// listOf copies a list of structs located at `at`.
func (p *footerPatcher) listOf(at *kvPath) error {
	h, err := p.byte()
	if err != nil {
		return err
	}
	n, et := uint64(h>>4), h&0x0f
	if n == 15 {
		if n, err = p.uvarint(); err != nil {
			return err
		}
	}
	if err := p.fits(n, 1); err != nil {
		return err
	}
	for range n {
		if et != ctStruct {
			if err := p.elem(et, false); err != nil {
				return err
			}
			continue
		}
		if err := p.structure(at, false); err != nil {
			return err
		}
	}
	return nil
}

// patchFooter returns the footer with every missing KeyValue.value filled,
// and how many it filled.
func patchFooter(footer []byte) ([]byte, int, error) {
	p := &footerPatcher{in: footer, out: make([]byte, 0, len(footer)+64)}
	if err := p.structure(fileMetaData, false); err != nil {
		return nil, 0, err
	}
	if p.pos != len(footer) {
		return nil, 0, fmt.Errorf("%w: %d bytes after the metadata", errFooter, len(footer)-p.pos)
	}
	return p.out, p.added, nil
}

// checkFooter walks a footer's thrift without decoding it, refusing counts
// the bytes cannot hold, before parquet-go allocates for them.
func checkFooter(footer []byte) error {
	p := &footerPatcher{in: footer, discard: true}
	// Bytes after the metadata are left to parquet-go: a signed plaintext
	// footer carries its nonce and tag there.
	return p.structure(nil, false)
}

// patchedFile serves the bytes of a Parquet file before its footer from r,
// then a replacement footer, its length and the magic.
type patchedFile struct {
	r      io.ReaderAt
	start  int64 // where the original footer began
	footer []byte
}

func newPatchedFile(r io.ReaderAt, start int64, footer []byte) *patchedFile {
	tail := binary.LittleEndian.AppendUint32(append([]byte{}, footer...), uint32(len(footer)))
	return &patchedFile{r: r, start: start, footer: append(tail, "PAR1"...)}
}

func (f *patchedFile) size() int64 { return f.start + int64(len(f.footer)) }

func (f *patchedFile) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	if off < f.start {
		m := min(int64(len(b)), f.start-off)
		k, err := f.r.ReadAt(b[:m], off)
		n += k
		if err != nil && !(err == io.EOF && int64(k) == m) {
			return n, err
		}
		b, off = b[m:], f.start
	}
	if len(b) == 0 {
		return n, nil
	}
	i := off - f.start
	if i >= int64(len(f.footer)) {
		return n, io.EOF
	}
	k := copy(b, f.footer[i:])
	n += k
	if k < len(b) {
		return n, io.EOF
	}
	return n, nil
}
