package valenc

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ObjectEncoder writes one object per row from a fixed set of columns, as
// JSON or MessagePack: byte for byte what AppendJSON or MsgpackEncoder.Append
// write for the Object of Value(col, i), without building it. It is the hot
// path of the kv format: per column it binds one appender to the batch's
// typed array, and per row it appends into the caller's buffer, with no
// boxing, maps, reflection or encoding/json.
//
// Bind it to each batch's columns, then call Append for each row. It is not
// safe for concurrent use.
type ObjectEncoder struct {
	msgpack bool
	header  []byte   // msgpack map header; "{" for JSON
	keys    [][]byte // each key encoded, with JSON's ":" (and "," before all but the first)
	fns     []appendFn
	mp      *MsgpackEncoder // fallback for types without a fast appender
	scratch []byte
}

// appendFn appends the encoding of row i of a bound array.
type appendFn func(dst []byte, i int) []byte

// NewObjectEncoder encodes objects whose keys are names, as MessagePack
// when msgpack is set and JSON otherwise.
func NewObjectEncoder(msgpack bool, names []string) *ObjectEncoder {
	e := &ObjectEncoder{msgpack: msgpack, fns: make([]appendFn, len(names)), mp: NewMsgpackEncoder()}
	if msgpack {
		e.header = appendMsgpackMapLen(nil, len(names))
	} else {
		e.header = []byte{'{'}
	}
	for j, name := range names {
		var k []byte
		if msgpack {
			k = appendMsgpackString(nil, name)
		} else {
			if j > 0 {
				k = append(k, ',')
			}
			k = append(appendJSONString(k, name), ':')
		}
		e.keys = append(e.keys, k)
	}
	return e
}

// Bind points the encoder at one batch's value columns, in the order of
// the names given to NewObjectEncoder.
func (e *ObjectEncoder) Bind(cols []arrow.Array) {
	for j, c := range cols {
		if e.msgpack {
			e.fns[j] = e.msgpackFn(c)
		} else {
			e.fns[j] = e.jsonFn(c)
		}
	}
}

// Append appends row i's object to dst.
func (e *ObjectEncoder) Append(dst []byte, i int) []byte {
	dst = append(dst, e.header...)
	for j, f := range e.fns {
		dst = append(dst, e.keys[j]...)
		dst = f(dst, i)
	}
	if !e.msgpack {
		dst = append(dst, '}')
	}
	return dst
}

// withNulls makes f write null for the array's null slots.
func withNulls(a arrow.Array, null byte, f appendFn) appendFn {
	if a.NullN() == 0 {
		return f
	}
	if null == 0 {
		return func(dst []byte, i int) []byte {
			if a.IsNull(i) {
				return append(dst, "null"...)
			}
			return f(dst, i)
		}
	}
	return func(dst []byte, i int) []byte {
		if a.IsNull(i) {
			return append(dst, null)
		}
		return f(dst, i)
	}
}

func (e *ObjectEncoder) jsonFn(col arrow.Array) appendFn {
	var f appendFn
	switch a := col.(type) {
	case *array.Boolean:
		f = func(dst []byte, i int) []byte { return strconv.AppendBool(dst, a.Value(i)) }
	case *array.Int8:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int16:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int32:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int64:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, a.Value(i), 10) }
	case *array.Uint8:
		f = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint16:
		f = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint32:
		f = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint64:
		f = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, a.Value(i), 10) }
	case *array.Float16:
		f = func(dst []byte, i int) []byte { return appendJSONFloat(dst, float64(a.Value(i).Float32())) }
	case *array.Float32:
		f = func(dst []byte, i int) []byte { return appendJSONFloat(dst, float64(a.Value(i))) }
	case *array.Float64:
		f = func(dst []byte, i int) []byte { return appendJSONFloat(dst, a.Value(i)) }
	case *array.String:
		f = func(dst []byte, i int) []byte { return appendJSONString(dst, a.Value(i)) }
	case *array.LargeString:
		f = func(dst []byte, i int) []byte { return appendJSONString(dst, a.Value(i)) }
	case *array.Binary:
		f = func(dst []byte, i int) []byte { return appendJSONBytes(dst, a.Value(i)) }
	case *array.LargeBinary:
		f = func(dst []byte, i int) []byte { return appendJSONBytes(dst, a.Value(i)) }
	case *array.FixedSizeBinary:
		f = func(dst []byte, i int) []byte { return appendJSONBytes(dst, a.Value(i)) }
	case *array.Date32:
		f = func(dst []byte, i int) []byte { return appendJSONDate(dst, a.Value(i).ToTime()) }
	case *array.Date64:
		f = func(dst []byte, i int) []byte { return appendJSONDate(dst, a.Value(i).ToTime()) }
	case *array.Timestamp:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Time32:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Time64:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Duration:
		f = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Struct:
		n := a.NumField()
		keys := make([][]byte, n)
		fields := make([]appendFn, n)
		st := a.DataType().(*arrow.StructType)
		for k := range n {
			if k > 0 {
				keys[k] = append(keys[k], ',')
			}
			keys[k] = append(appendJSONString(keys[k], st.Field(k).Name), ':')
			fields[k] = e.jsonFn(a.Field(k))
		}
		f = structFn('{', '}', keys, fields)
	case *array.Map:
		// Map keys become strings through fmt: rare, so the generic path.
	case array.ListLike:
		a2 := a
		elem := e.jsonFn(a2.ListValues())
		f = func(dst []byte, i int) []byte {
			start, end := a2.ValueOffsets(i)
			dst = append(dst, '[')
			for j := start; j < end; j++ {
				if j > start {
					dst = append(dst, ',')
				}
				dst = elem(dst, int(j))
			}
			return append(dst, ']')
		}
	}
	if f == nil {
		return func(dst []byte, i int) []byte { return AppendJSON(dst, Value(col, i)) }
	}
	return withNulls(col, 0, f)
}

// structFn writes open, then each field's key and value, then close.
func structFn(open, close byte, keys [][]byte, fields []appendFn) appendFn {
	return func(dst []byte, i int) []byte {
		if open != 0 {
			dst = append(dst, open)
		}
		for k, fn := range fields {
			dst = append(dst, keys[k]...)
			dst = fn(dst, i)
		}
		if close != 0 {
			dst = append(dst, close)
		}
		return dst
	}
}

const msgpackNil = 0xc0

func (e *ObjectEncoder) msgpackFn(col arrow.Array) appendFn {
	var f appendFn
	switch a := col.(type) {
	case *array.Boolean:
		f = func(dst []byte, i int) []byte {
			if a.Value(i) {
				return append(dst, 0xc3)
			}
			return append(dst, 0xc2)
		}
	case *array.Int8:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Int16:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Int32:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Int64:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, a.Value(i)) }
	case *array.Uint8:
		f = func(dst []byte, i int) []byte { return appendMsgpackUint(dst, uint64(a.Value(i))) }
	case *array.Uint16:
		f = func(dst []byte, i int) []byte { return appendMsgpackUint(dst, uint64(a.Value(i))) }
	case *array.Uint32:
		f = func(dst []byte, i int) []byte { return appendMsgpackUint(dst, uint64(a.Value(i))) }
	case *array.Uint64:
		f = func(dst []byte, i int) []byte { return appendMsgpackUint(dst, a.Value(i)) }
	case *array.Float16:
		f = func(dst []byte, i int) []byte { return appendMsgpackFloat(dst, float64(a.Value(i).Float32())) }
	case *array.Float32:
		f = func(dst []byte, i int) []byte { return appendMsgpackFloat(dst, float64(a.Value(i))) }
	case *array.Float64:
		f = func(dst []byte, i int) []byte { return appendMsgpackFloat(dst, a.Value(i)) }
	case *array.String:
		f = func(dst []byte, i int) []byte { return appendMsgpackString(dst, a.Value(i)) }
	case *array.LargeString:
		f = func(dst []byte, i int) []byte { return appendMsgpackString(dst, a.Value(i)) }
	case *array.Binary:
		f = func(dst []byte, i int) []byte { return appendMsgpackBytes(dst, a.Value(i)) }
	case *array.LargeBinary:
		f = func(dst []byte, i int) []byte { return appendMsgpackBytes(dst, a.Value(i)) }
	case *array.FixedSizeBinary:
		f = func(dst []byte, i int) []byte { return appendMsgpackBytes(dst, a.Value(i)) }
	case *array.Date32:
		f = func(dst []byte, i int) []byte { return e.appendMsgpackDate(dst, a.Value(i).ToTime()) }
	case *array.Date64:
		f = func(dst []byte, i int) []byte { return e.appendMsgpackDate(dst, a.Value(i).ToTime()) }
	case *array.Timestamp:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Time32:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Time64:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Duration:
		f = func(dst []byte, i int) []byte { return appendMsgpackInt(dst, int64(a.Value(i))) }
	case *array.Struct:
		n := a.NumField()
		st := a.DataType().(*arrow.StructType)
		keys := make([][]byte, n)
		fields := make([]appendFn, n)
		for k := range n {
			keys[k] = appendMsgpackString(nil, st.Field(k).Name)
			fields[k] = e.msgpackFn(a.Field(k))
		}
		keys[0] = append(appendMsgpackMapLen(nil, n), keys[0]...)
		if n == 0 {
			hdr := appendMsgpackMapLen(nil, 0)
			f = func(dst []byte, i int) []byte { return append(dst, hdr...) }
		} else {
			f = structFn(0, 0, keys, fields)
		}
	case *array.Map:
		// Map keys become strings through fmt: rare, so the generic path.
	case array.ListLike:
		a2 := a
		elem := e.msgpackFn(a2.ListValues())
		f = func(dst []byte, i int) []byte {
			start, end := a2.ValueOffsets(i)
			dst = appendMsgpackArrayLen(dst, int(end-start))
			for j := start; j < end; j++ {
				dst = elem(dst, int(j))
			}
			return dst
		}
	}
	if f == nil {
		return func(dst []byte, i int) []byte {
			out, err := e.mp.Append(dst, Value(col, i))
			if err != nil { // writes to a bytes.Buffer do not fail
				panic(err)
			}
			return out
		}
	}
	return withNulls(col, msgpackNil, f)
}

// appendJSONFloat formats f as encoding/json does (ES6 number formatting);
// NaN and ±Inf, which JSON cannot hold, become null.
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with SetEscapeHTML(false):
// '"', '\\' and control characters escaped, invalid UTF-8 as \ufffd, and
// U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendJSONBytes(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

func appendJSONDate(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.DateOnly)
	return append(dst, '"')
}

// MessagePack, as vmihailenco/msgpack's Encoder writes it with compact ints
// and full-width floats.

func appendMsgpackUint(dst []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(dst, byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), n)
}

func appendMsgpackInt(dst []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendMsgpackUint(dst, uint64(n))
	case n >= -32:
		return append(dst, byte(n))
	case n >= math.MinInt8:
		return append(dst, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n))
}

func appendMsgpackFloat(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(f))
}

func appendMsgpackLen(dst []byte, n int, fix, fixMax, c16, c32 byte) []byte {
	switch {
	case n < int(fixMax):
		return append(dst, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, c32), uint32(n))
}

func appendMsgpackMapLen(dst []byte, n int) []byte {
	return appendMsgpackLen(dst, n, 0x80, 16, 0xde, 0xdf)
}

func appendMsgpackArrayLen(dst []byte, n int) []byte {
	return appendMsgpackLen(dst, n, 0x90, 16, 0xdc, 0xdd)
}

func appendMsgpackString[S string | []byte](dst []byte, s S) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// appendMsgpackBytes writes bin, or nil for a nil slice, as EncodeBytes does.
func appendMsgpackBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, msgpackNil)
	}
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

func (e *ObjectEncoder) appendMsgpackDate(dst []byte, t time.Time) []byte {
	e.scratch = t.AppendFormat(e.scratch[:0], time.DateOnly)
	return appendMsgpackString(dst, e.scratch)
}
