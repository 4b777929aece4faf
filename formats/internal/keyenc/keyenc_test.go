package keyenc

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestOrderPreserved: byte order of encoded (float, string, int) keys equals
// value order, and Decode inverts the encoding.
func TestOrderPreserved(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "i", Type: arrow.PrimitiveTypes.Int16},
	}, nil)
	fs := []float64{math.Inf(-1), -2.5, -1e-300, 0, 1e-300, 3, math.Inf(1)}
	ss := []string{"", "\x00", "\x00a", "a", "a\x00", "ab", "b"}
	is := []int16{math.MinInt16, -1, 0, 1, math.MaxInt16}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	type row struct {
		f float64
		s string
		i int16
	}
	var rows []row
	for _, f := range fs {
		for _, s := range ss {
			for _, i := range is {
				rows = append(rows, row{f, s, i})
				b.Field(0).(*array.Float64Builder).Append(f)
				b.Field(1).(*array.StringBuilder).Append(s)
				b.Field(2).(*array.Int16Builder).Append(i)
			}
		}
	}
	rec := b.NewRecordBatch()
	e, err := New(schema, []string{"f", "s", "i"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := e.Kinds(schema)
	var keys [][]byte
	for r := range rows {
		k, err := e.Append(nil, rec, r)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		vals, err := Decode(k, kinds)
		if err != nil || vals[0] != rows[r].f || vals[1] != rows[r].s || vals[2] != int64(rows[r].i) {
			t.Fatalf("decode %v: %v %v", rows[r], vals, err)
		}
	}
	// rows were built in value order, so the keys must be too.
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Fatal("encoded keys are not in value order")
	}
	if k, _ := Parse([]string{"-2.5", "ab", "-1"}, kinds); !bytes.Equal(k, keys[1*len(ss)*len(is)+5*len(is)+1]) {
		t.Fatalf("Parse gave %x", k)
	}
}

// TestFloatKeysCanonical: -0 and +0 give one key, every NaN gives one key
// that sorts after +Inf, and byte order is value order.
func TestFloatKeysCanonical(t *testing.T) {
	negNaN := math.Float64frombits(0xfff8000000000001)
	vals := []float64{math.Inf(-1), -1, math.Copysign(0, -1), 0, 1, math.Inf(1), math.NaN(), negNaN}
	var keys [][]byte
	for _, v := range vals {
		keys = append(keys, AppendFloat64(nil, v))
	}
	if !bytes.Equal(keys[2], keys[3]) {
		t.Fatalf("-0 and +0 encode differently: %x %x", keys[2], keys[3])
	}
	if !bytes.Equal(keys[6], keys[7]) {
		t.Fatalf("two NaNs encode differently: %x %x", keys[6], keys[7])
	}
	for i := 1; i < 7; i++ {
		if i == 3 {
			continue
		}
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Fatalf("%v (%x) does not sort before %v (%x)", vals[i-1], keys[i-1], vals[i], keys[i])
		}
	}
	if !bytes.Equal(AppendFloat32(nil, float32(math.Copysign(0, -1))), AppendFloat32(nil, 0)) {
		t.Fatal("float32 -0 and +0 differ")
	}
	if bytes.Compare(AppendFloat32(nil, float32(math.Inf(1))), AppendFloat32(nil, float32(negNaN))) >= 0 {
		t.Fatal("float32 NaN does not sort after +Inf")
	}
}
