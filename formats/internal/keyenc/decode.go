package keyenc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Kind is how a key column is encoded: its class and width in bytes.
type Kind struct {
	Class byte // 'i' signed, 'u' unsigned, 'f' float, 'b' bool, 's' string, 'x' binary
	Width int  // 1, 2, 4 or 8 for numbers; 0 for strings and binary
}

// KindOf returns the encoding of a key column's Arrow type.
func KindOf(t arrow.DataType) Kind {
	switch t.ID() {
	case arrow.INT8:
		return Kind{'i', 1}
	case arrow.INT16:
		return Kind{'i', 2}
	case arrow.INT32, arrow.DATE32, arrow.TIME32:
		return Kind{'i', 4}
	case arrow.INT64, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME64, arrow.DURATION:
		return Kind{'i', 8}
	case arrow.UINT8:
		return Kind{'u', 1}
	case arrow.UINT16:
		return Kind{'u', 2}
	case arrow.UINT32:
		return Kind{'u', 4}
	case arrow.UINT64:
		return Kind{'u', 8}
	case arrow.FLOAT32:
		return Kind{'f', 4}
	case arrow.FLOAT64:
		return Kind{'f', 8}
	case arrow.BOOL:
		return Kind{'b', 1}
	case arrow.BINARY, arrow.LARGE_BINARY:
		return Kind{'x', 0}
	}
	return Kind{'s', 0}
}

// String is the kind's name as stored in a table's properties: "i8", "s".
func (k Kind) String() string {
	if k.Width == 0 {
		return string(k.Class)
	}
	return fmt.Sprintf("%c%d", k.Class, k.Width)
}

// ParseKinds reads a comma-separated list written by Kind.String.
func ParseKinds(s string) ([]Kind, error) {
	var out []Kind
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			return nil, errors.New("empty key kind")
		}
		k := Kind{Class: p[0]}
		if len(p) > 1 {
			w, err := strconv.Atoi(p[1:])
			if err != nil || (w != 1 && w != 2 && w != 4 && w != 8) {
				return nil, fmt.Errorf("bad key kind %q", p)
			}
			k.Width = w
		}
		if !strings.ContainsRune("iufbsx", rune(k.Class)) || (k.Width == 0) != (k.Class == 's' || k.Class == 'x') {
			return nil, fmt.Errorf("bad key kind %q", p)
		}
		out = append(out, k)
	}
	return out, nil
}

// Kinds returns the kinds of the encoder's columns.
func (e *Encoder) Kinds(schema *arrow.Schema) []Kind {
	out := make([]Kind, len(e.idx))
	for i, c := range e.idx {
		out[i] = KindOf(schema.Field(c).Type)
	}
	return out
}

// Decode splits an encoded key into its column values.
func Decode(key []byte, kinds []Kind) ([]any, error) {
	var out []any
	for i, k := range kinds {
		last := i == len(kinds)-1
		if k.Width > 0 {
			if len(key) < k.Width {
				return nil, errors.New("key too short")
			}
			var u uint64
			for _, b := range key[:k.Width] {
				u = u<<8 | uint64(b)
			}
			key = key[k.Width:]
			sign := uint64(1) << (8*k.Width - 1)
			switch k.Class {
			case 'i':
				v := int64(u ^ sign)
				if k.Width < 8 { // sign-extend
					v = v << (64 - 8*k.Width) >> (64 - 8*k.Width)
				}
				out = append(out, v)
			case 'u':
				out = append(out, u)
			case 'b':
				out = append(out, u != 0)
			case 'f':
				if u&sign != 0 {
					u &^= sign
				} else {
					u = ^u & (sign<<1 - 1)
				}
				if k.Width == 4 {
					out = append(out, float64(math.Float32frombits(uint32(u))))
				} else {
					out = append(out, math.Float64frombits(u))
				}
			}
			continue
		}
		var b []byte
		if last {
			b, key = key, nil
		} else {
			for {
				j := bytes.IndexByte(key, 0)
				if j < 0 || j+1 >= len(key) {
					return nil, errors.New("unterminated string in key")
				}
				b = append(b, key[:j]...)
				esc := key[j+1]
				key = key[j+2:]
				if esc == 1 {
					break
				}
				b = append(b, 0)
			}
		}
		if k.Class == 'x' {
			out = append(out, b)
		} else {
			out = append(out, string(b))
		}
	}
	if len(key) > 0 {
		return nil, errors.New("trailing bytes in key")
	}
	return out, nil
}

// Describe shows an encoded key as its column values: `id=42`, or
// `country="DE", city="Berlin"`.
func Describe(key []byte, names []string, kinds []Kind) string {
	vals, err := Decode(key, kinds)
	if err != nil || len(vals) != len(names) {
		return fmt.Sprintf("0x%x", key)
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			parts[i] = fmt.Sprintf("%s=%q", names[i], s)
		} else {
			parts[i] = fmt.Sprintf("%s=%v", names[i], v)
		}
	}
	return strings.Join(parts, ", ")
}

// Parse encodes a key from text, one argument per column (integers in
// decimal; timestamps and dates as their stored integers).
func Parse(args []string, kinds []Kind) ([]byte, error) {
	if len(args) != len(kinds) {
		return nil, fmt.Errorf("the key has %d columns, and %d values were given", len(kinds), len(args))
	}
	var dst []byte
	for i, k := range kinds {
		a := args[i]
		switch k.Class {
		case 'i':
			v, err := strconv.ParseInt(a, 10, 8*k.Width)
			if err != nil {
				return nil, fmt.Errorf("%q is not a %d-bit integer", a, 8*k.Width)
			}
			dst = appendUint(dst, uint64(v)^1<<(8*k.Width-1), k.Width)
		case 'u':
			v, err := strconv.ParseUint(a, 10, 8*k.Width)
			if err != nil {
				return nil, fmt.Errorf("%q is not an unsigned %d-bit integer", a, 8*k.Width)
			}
			dst = appendUint(dst, v, k.Width)
		case 'b':
			v, err := strconv.ParseBool(a)
			if err != nil {
				return nil, fmt.Errorf("%q is not true or false", a)
			}
			dst = append(dst, map[bool]byte{false: 0, true: 1}[v])
		case 'f':
			v, err := strconv.ParseFloat(a, 8*k.Width)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", a)
			}
			if k.Width == 4 {
				dst = AppendFloat32(dst, float32(v))
			} else {
				dst = AppendFloat64(dst, v)
			}
		default:
			dst = appendBytes(dst, a, i == len(kinds)-1)
		}
	}
	return dst, nil
}

func appendUint(dst []byte, v uint64, width int) []byte {
	for s := 8 * (width - 1); s >= 0; s -= 8 {
		dst = append(dst, byte(v>>s))
	}
	return dst
}
