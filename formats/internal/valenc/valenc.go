// Package valenc turns Arrow values into plain Go values and encodes them as
// JSON or MessagePack, with object keys in column (and struct field) order,
// so that the bytes are deterministic.
//
// The mapping:
//
//	null                     nil (JSON null, msgpack nil); a null column in an object is kept as null
//	bool                     bool
//	int8..int64              int64
//	uint8..uint64            uint64
//	float16/32/64            float64 (NaN and ±Inf become null in JSON)
//	string, large string     string
//	binary, fixed binary     []byte (JSON: base64 string; msgpack: bin)
//	date32, date64           string "YYYY-MM-DD"
//	timestamp, time, duration int64 in the column's unit
//	decimal128/256           string, exact
//	list, large list, fixed list  []any
//	struct                   *Object, fields in schema order
//	map                      *Object, keys as strings, entries in stored order
package valenc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/vmihailenco/msgpack/v5"
)

// Object is an ordered map.
type Object struct {
	Keys []string
	Vals []any
}

// Supported reports whether Value handles t.
func Supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.NULL, arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		return Supported(t.(arrow.ListLikeType).Elem())
	case arrow.MAP:
		m := t.(*arrow.MapType)
		return Supported(m.KeyType()) && Supported(m.ItemType())
	case arrow.STRUCT:
		for _, f := range t.(*arrow.StructType).Fields() {
			if !Supported(f.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// Value returns col[i] as a plain Go value.
func Value(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return uint64(a.Value(i))
	case *array.Uint16:
		return uint64(a.Value(i))
	case *array.Uint32:
		return uint64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	case *array.Float16:
		return float64(a.Value(i).Float32())
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Binary:
		return bytes.Clone(a.Value(i))
	case *array.LargeBinary:
		return bytes.Clone(a.Value(i))
	case *array.FixedSizeBinary:
		return bytes.Clone(a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Date64:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Time32:
		return int64(a.Value(i))
	case *array.Time64:
		return int64(a.Value(i))
	case *array.Duration:
		return int64(a.Value(i))
	case *array.Decimal128:
		return a.ValueStr(i)
	case *array.Decimal256:
		return a.ValueStr(i)
	case *array.Map:
		start, end := a.ValueOffsets(i)
		keys, items := a.Keys(), a.Items()
		o := &Object{}
		for j := int(start); j < int(end); j++ {
			o.Keys = append(o.Keys, fmt.Sprint(Value(keys, j)))
			o.Vals = append(o.Vals, Value(items, j))
		}
		return o
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		vals := a.ListValues()
		out := make([]any, 0, end-start)
		for j := int(start); j < int(end); j++ {
			out = append(out, Value(vals, j))
		}
		return out
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		o := &Object{Keys: make([]string, st.NumFields()), Vals: make([]any, st.NumFields())}
		for f := range st.NumFields() {
			o.Keys[f] = st.Field(f).Name
			o.Vals[f] = Value(a.Field(f), i)
		}
		return o
	case *array.Null:
		return nil
	}
	return fmt.Sprintf("<unsupported %s>", col.DataType()) // Supported refuses these at NewWriter
}

// AppendJSON appends v as JSON.
func AppendJSON(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		return appendJSONFloat(dst, x)
	case string:
		return appendJSONString(dst, x)
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case []any:
		dst = append(dst, '[')
		for j, e := range x {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, e)
		}
		return append(dst, ']')
	case *Object:
		dst = append(dst, '{')
		for j, k := range x.Keys {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = AppendJSON(dst, x.Vals[j])
		}
		return append(dst, '}')
	}
	return appendJSONString(dst, fmt.Sprint(v))
}

// MsgpackEncoder encodes values as MessagePack, reusing its buffer.
type MsgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// NewMsgpackEncoder returns an encoder.
func NewMsgpackEncoder() *MsgpackEncoder {
	m := &MsgpackEncoder{}
	m.enc = msgpack.NewEncoder(&m.buf)
	m.enc.UseCompactInts(true)
	m.enc.UseCompactFloats(false)
	return m
}

// Append appends v as MessagePack to dst.
func (m *MsgpackEncoder) Append(dst []byte, v any) ([]byte, error) {
	m.buf.Reset()
	if err := m.encode(v); err != nil {
		return dst, err
	}
	return append(dst, m.buf.Bytes()...), nil
}

func (m *MsgpackEncoder) encode(v any) error {
	switch x := v.(type) {
	case nil:
		return m.enc.EncodeNil()
	case bool:
		return m.enc.EncodeBool(x)
	case int64:
		return m.enc.EncodeInt(x)
	case uint64:
		return m.enc.EncodeUint(x)
	case float64:
		return m.enc.EncodeFloat64(x)
	case string:
		return m.enc.EncodeString(x)
	case []byte:
		return m.enc.EncodeBytes(x)
	case []any:
		if err := m.enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, e := range x {
			if err := m.encode(e); err != nil {
				return err
			}
		}
		return nil
	case *Object:
		if err := m.enc.EncodeMapLen(len(x.Keys)); err != nil {
			return err
		}
		for j, k := range x.Keys {
			if err := m.enc.EncodeString(k); err != nil {
				return err
			}
			if err := m.encode(x.Vals[j]); err != nil {
				return err
			}
		}
		return nil
	}
	return m.enc.EncodeString(fmt.Sprint(v))
}

// Plain turns *Object into map[string]any recursively, for comparing
// decoded values in tests and for `query` output.
func Plain(v any) any {
	switch x := v.(type) {
	case *Object:
		m := make(map[string]any, len(x.Keys))
		for j, k := range x.Keys {
			m[k] = Plain(x.Vals[j])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for j, e := range x {
			out[j] = Plain(e)
		}
		return out
	}
	return v
}
