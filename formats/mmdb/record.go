package mmdb

import (
	"fmt"
	"math"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/lockstep-data/lockstep/formats/internal/valenc"
)

// toMMDB maps a value from valenc.Value to a MaxMind DB type:
//
//	string                          utf8_string
//	bool                            boolean
//	float32, float64                double (float32 is widened)
//	ints >= 0, uints                uint16, uint32 or uint64: the smallest that holds the value
//	ints < 0                        int32; below -2^31 is an error
//	binary                          bytes
//	list                            array (null elements are left out)
//	struct, map                     map (null fields are left out)
//	date                            utf8_string "YYYY-MM-DD"
//	timestamp, time, duration       as ints, in the column's unit
//	decimal                         utf8_string
//	null                            the key is left out of the record
func toMMDB(v any) (mmdbtype.DataType, error) {
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
		return unsigned(x), nil
	case int64:
		if x >= 0 {
			return unsigned(uint64(x)), nil
		}
		if x < math.MinInt32 {
			return nil, fmt.Errorf("%d is below the smallest MaxMind DB signed integer (int32)", x)
		}
		return mmdbtype.Int32(x), nil
	case []any:
		out := make(mmdbtype.Slice, 0, len(x))
		for _, e := range x {
			m, err := toMMDB(e)
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
			m, err := toMMDB(x.Vals[j])
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

func unsigned(u uint64) mmdbtype.DataType {
	switch {
	case u <= math.MaxUint16:
		return mmdbtype.Uint16(u)
	case u <= math.MaxUint32:
		return mmdbtype.Uint32(u)
	}
	return mmdbtype.Uint64(u)
}
