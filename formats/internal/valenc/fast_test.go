package valenc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// encodingJSONString is the reference: what encoding/json writes for s
// with HTML escaping off (the encoding the kv format has always used).
func encodingJSONString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func randString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f",
		"\x00", "\x1f", "\x7f", "é", "日本", "\u2028", "\u2029", "\U0001F600", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80"}
	var b []byte
	for range r.IntN(12) {
		b = append(b, alphabet[r.IntN(len(alphabet))]...)
	}
	return string(b)
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		s := randString(r)
		if i < 256 {
			s = string([]byte{byte(i)}) + "x"
		}
		if got, want := appendJSONString(nil, s), encodingJSONString(s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, encoding/json writes %s", s, got, want)
		}
	}
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 1e-6, 9.99999e-7, 1e21, 1e20, 123456789.125, 5e-324, math.MaxFloat64, 0.1, 1.0 / 3}
	for range 20000 {
		vals = append(vals, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(60)-30)))
	}
	for _, f := range vals {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			if got := string(appendJSONFloat(nil, f)); got != "null" {
				t.Fatalf("%v: got %s, want null", f, got)
			}
			continue
		}
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, encoding/json writes %s", f, got, want)
		}
	}
}

// randomColumns builds one array of every type valenc supports, with
// nulls, nesting and extreme values, then slices them so that offsets are
// exercised too.
func randomColumns(t testing.TB, r *rand.Rand, n int) ([]string, []arrow.Array) {
	mem := memory.NewGoAllocator()
	tagStruct := arrow.StructOf(arrow.Field{Name: "k\"ey", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int16, Nullable: true})
	fields := []arrow.Field{
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8}, {Name: "i16", Type: arrow.PrimitiveTypes.Int16},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32}, {Name: "i64", Type: arrow.PrimitiveTypes.Int64},
		{Name: "u8", Type: arrow.PrimitiveTypes.Uint8}, {Name: "u16", Type: arrow.PrimitiveTypes.Uint16},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32}, {Name: "u64", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "f16", Type: arrow.FixedWidthTypes.Float16}, {Name: "f32", Type: arrow.PrimitiveTypes.Float32},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: arrow.BinaryTypes.String}, {Name: "ls", Type: arrow.BinaryTypes.LargeString},
		{Name: "bin", Type: arrow.BinaryTypes.Binary}, {Name: "lbin", Type: arrow.BinaryTypes.LargeBinary},
		{Name: "fbin", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}},
		{Name: "d32", Type: arrow.FixedWidthTypes.Date32}, {Name: "d64", Type: arrow.FixedWidthTypes.Date64},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us}, {Name: "t32", Type: arrow.FixedWidthTypes.Time32ms},
		{Name: "t64", Type: arrow.FixedWidthTypes.Time64ns}, {Name: "dur", Type: arrow.FixedWidthTypes.Duration_s},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 20, Scale: 3}},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: "ll", Type: arrow.LargeListOf(arrow.PrimitiveTypes.Float64)},
		{Name: "fl", Type: arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int64)},
		{Name: "st", Type: tagStruct},
		{Name: "lst", Type: arrow.ListOf(tagStruct)},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32)},
		{Name: "nul", Type: arrow.Null},
	}
	for i := range fields {
		fields[i].Nullable = true
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	ints := []int64{0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
		65535, 65536, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxInt64, math.MinInt64}
	anyInt := func() int64 {
		if r.IntN(2) == 0 {
			return ints[r.IntN(len(ints))]
		}
		return int64(r.Uint64())
	}
	floats := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1e-7, 1e21, 0.1, -2.5}
	anyFloat := func() float64 {
		if r.IntN(2) == 0 {
			return floats[r.IntN(len(floats))]
		}
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	}
	var appendAny func(bld array.Builder, nullable bool)
	appendAny = func(bld array.Builder, nullable bool) {
		if nullable && r.IntN(5) == 0 {
			bld.AppendNull()
			return
		}
		switch x := bld.(type) {
		case *array.BooleanBuilder:
			x.Append(r.IntN(2) == 0)
		case *array.Int8Builder:
			x.Append(int8(anyInt()))
		case *array.Int16Builder:
			x.Append(int16(anyInt()))
		case *array.Int32Builder:
			x.Append(int32(anyInt()))
		case *array.Int64Builder:
			x.Append(anyInt())
		case *array.Uint8Builder:
			x.Append(uint8(anyInt()))
		case *array.Uint16Builder:
			x.Append(uint16(anyInt()))
		case *array.Uint32Builder:
			x.Append(uint32(anyInt()))
		case *array.Uint64Builder:
			x.Append(uint64(anyInt()))
		case *array.Float16Builder:
			x.Append(float16.New(float32(anyFloat())))
		case *array.Float32Builder:
			x.Append(float32(anyFloat()))
		case *array.Float64Builder:
			x.Append(anyFloat())
		case *array.StringBuilder:
			x.Append(randString(r))
		case *array.LargeStringBuilder:
			x.Append(randString(r))
		case *array.BinaryBuilder:
			x.Append([]byte(randString(r)))
		case *array.FixedSizeBinaryBuilder:
			x.Append([]byte{byte(r.IntN(256)), 0, byte(r.IntN(256))})
		case *array.Date32Builder:
			x.Append(arrow.Date32(r.IntN(200000) - 100000))
		case *array.Date64Builder:
			x.Append(arrow.Date64(int64(r.IntN(200000)-100000) * 86400000))
		case *array.TimestampBuilder:
			x.Append(arrow.Timestamp(anyInt()))
		case *array.Time32Builder:
			x.Append(arrow.Time32(r.IntN(86400000)))
		case *array.Time64Builder:
			x.Append(arrow.Time64(r.Int64N(86400e9)))
		case *array.DurationBuilder:
			x.Append(arrow.Duration(anyInt()))
		case *array.Decimal128Builder:
			x.Append(decimal128.FromI64(anyInt()))
		case *array.ListBuilder:
			x.Append(true)
			for range r.IntN(4) {
				appendAny(x.ValueBuilder(), true)
			}
		case *array.LargeListBuilder:
			x.Append(true)
			for range r.IntN(20) {
				appendAny(x.ValueBuilder(), true)
			}
		case *array.FixedSizeListBuilder:
			x.Append(true)
			appendAny(x.ValueBuilder(), true)
			appendAny(x.ValueBuilder(), true)
		case *array.MapBuilder:
			x.Append(true)
			for range r.IntN(3) {
				x.KeyBuilder().(*array.StringBuilder).Append(randString(r))
				appendAny(x.ItemBuilder(), true)
			}
		case *array.StructBuilder:
			x.Append(true)
			for f := range x.NumField() {
				appendAny(x.FieldBuilder(f), true)
			}
		case *array.NullBuilder:
			x.AppendNull()
		default:
			t.Fatalf("no generator for %T", bld)
		}
	}
	for range n {
		for f := range fields {
			appendAny(b.Field(f), true)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	lo := r.IntN(n / 4)
	sliced := rec.NewSlice(int64(lo), int64(n))
	var names []string
	var cols []arrow.Array
	for i, f := range fields {
		names = append(names, f.Name)
		cols = append(cols, sliced.Column(i))
	}
	return names, cols
}

func TestObjectEncoderMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		names, cols := randomColumns(t, r, 400)
		for _, mp := range []bool{false, true} {
			enc := NewObjectEncoder(mp, names)
			enc.Bind(cols)
			ref := NewMsgpackEncoder()
			var got []byte
			for i := range cols[0].Len() {
				obj := &Object{Keys: names, Vals: make([]any, len(cols))}
				for j, c := range cols {
					obj.Vals[j] = Value(c, i)
				}
				var want []byte
				if mp {
					var err error
					if want, err = ref.Append(nil, obj); err != nil {
						t.Fatal(err)
					}
				} else {
					want = AppendJSON(nil, obj)
				}
				got = enc.Append(got[:0], i)
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d, msgpack %v, row %d:\n got %q\nwant %q", round, mp, i, got, want)
				}
				if !mp && !json.Valid(got) && utf8.Valid(got) {
					t.Fatalf("row %d: invalid JSON %s", i, got)
				}
			}
		}
	}
}

func BenchmarkObjectEncoder(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	names, cols := randomColumns(b, r, 4096)
	for _, mp := range []bool{false, true} {
		b.Run(fmt.Sprintf("msgpack=%v", mp), func(b *testing.B) {
			enc := NewObjectEncoder(mp, names)
			enc.Bind(cols)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				for i := range cols[0].Len() {
					buf = enc.Append(buf[:0], i)
				}
			}
		})
		b.Run(fmt.Sprintf("reference/msgpack=%v", mp), func(b *testing.B) {
			ref := NewMsgpackEncoder()
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				for i := range cols[0].Len() {
					obj := &Object{Keys: names, Vals: make([]any, len(cols))}
					for j, c := range cols {
						obj.Vals[j] = Value(c, i)
					}
					if mp {
						buf, _ = ref.Append(buf[:0], obj)
					} else {
						buf = AppendJSON(buf[:0], obj)
					}
				}
			}
		})
	}
}
