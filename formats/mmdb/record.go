package mmdb

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/lockstep-data/lockstep/formats/internal/valenc"
)

// toMMDB maps a value from valenc.Value, of Arrow type t, to a MaxMind DB
// type. Integers take their MaxMind type from the column's Arrow type, never
// from the value, so a field has one type in every record:
//
//	string                          utf8_string
//	bool                            boolean
//	float16, float32, float64       double
//	int8, int16, int32, int64       int32 (MaxMind's one signed integer); a value outside it is an error
//	uint8, uint16                   uint16
//	uint32                          uint32
//	uint64                          uint64
//	timestamp, time, duration       uint64 in the column's unit; a negative value is an error
//	binary                          bytes
//	list                            array (null elements are left out)
//	struct, map                     map (null fields are left out)
//	date                            utf8_string "YYYY-MM-DD"
//	decimal                         utf8_string
//	null                            the key is left out of the record
func toMMDB(v any, t arrow.DataType) (mmdbtype.DataType, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return mmdbtype.String(x), nil
	case bool:
		return mmdbtype.Bool(x), nil
	case float64:
		return mmdbtype.Float64(x), nil
	case []byte:
		return mmdbtype.Bytes(x), nil
	case uint64:
		switch t.ID() {
		case arrow.UINT8, arrow.UINT16:
			return mmdbtype.Uint16(x), nil
		case arrow.UINT32:
			return mmdbtype.Uint32(x), nil
		}
		return mmdbtype.Uint64(x), nil
	case int64:
		switch t.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("%d does not fit int32, the one signed integer of MaxMind DBs; narrow the column, or cast it to unsigned in Spark", x)
			}
			return mmdbtype.Int32(x), nil
		}
		if x < 0 {
			return nil, fmt.Errorf("%s value %d is negative; MaxMind DBs store it as uint64", t, x)
		}
		return mmdbtype.Uint64(x), nil
	case []any:
		elem := listElem(t)
		out := make(mmdbtype.Slice, 0, len(x))
		for _, e := range x {
			m, err := toMMDB(e, elem)
			if err != nil {
				return nil, err
			}
			if m != nil {
				out = append(out, m)
			}
		}
		return out, nil
	case *valenc.Object:
		out := make(mmdbtype.Map, len(x.Keys))
		for j, k := range x.Keys {
			m, err := toMMDB(x.Vals[j], objectField(t, j))
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			if m != nil {
				out[mmdbtype.String(k)] = m
			}
		}
		return out, nil
	}
	return mmdbtype.String(fmt.Sprint(v)), nil
}

func listElem(t arrow.DataType) arrow.DataType {
	if l, ok := t.(arrow.ListLikeType); ok {
		return l.Elem()
	}
	return arrow.Null
}

// objectField is the type of the j-th value of a struct, or of any map value.
func objectField(t arrow.DataType, j int) arrow.DataType {
	switch x := t.(type) {
	case *arrow.MapType:
		return x.ItemType()
	case *arrow.StructType:
		return x.Field(j).Type
	}
	return arrow.Null
}
