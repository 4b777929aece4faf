package pipeline

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// hiveNull is the folder name Spark writes for a null partition value.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// Partition is one hive partition column: its name and the Arrow type its
// values were inferred (or declared) to have.
type Partition struct {
	Name string         `json:"name"`
	Type arrow.DataType `json:"-"`
	// TypeName is Type as text, for inspect's JSON.
	TypeName string `json:"type"`
}

// hivePartitions parses the `col=value` folders of a path relative to the
// input root. Values are %XX-unescaped; __HIVE_DEFAULT_PARTITION__ is null.
func hivePartitions(rel string) (names []string, values []*string, err error) {
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("%s: folder %q is not a col=value partition", rel, p)
		}
		name, err := url.PathUnescape(k)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: partition name %q: %v", rel, k, err)
		}
		names = append(names, name)
		if v == hiveNull {
			values = append(values, nil)
			continue
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: partition value %q: %v", rel, v, err)
		}
		values = append(values, &val)
	}
	return names, values, nil
}

// inferPartitionType picks the narrowest type every non-null value parses
// as, in Spark's order (spark.sql.sources.partitionColumnTypeInference):
// int, bigint, double, date, timestamp, then string. Spark also tries
// decimals wider than bigint; lockstep reads those as strings.
func inferPartitionType(values []*string) arrow.DataType {
	all := func(ok func(string) bool) bool {
		for _, v := range values {
			if v != nil && !ok(*v) {
				return false
			}
		}
		return true
	}
	switch {
	case all(func(s string) bool { _, err := strconv.ParseInt(s, 10, 32); return err == nil }):
		return arrow.PrimitiveTypes.Int32
	case all(func(s string) bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil }):
		return arrow.PrimitiveTypes.Int64
	case all(func(s string) bool {
		_, err := strconv.ParseFloat(s, 64)
		return err == nil && !strings.ContainsAny(s, "xXpP_")
	}):
		return arrow.PrimitiveTypes.Float64
	case all(func(s string) bool { _, err := time.Parse("2006-01-02", s); return err == nil }):
		return arrow.FixedWidthTypes.Date32
	case all(func(s string) bool { _, err := parseTimestamp(s); return err == nil }):
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	return arrow.BinaryTypes.String
}

// parseTimestamp reads the timestamps Spark writes into partition folders
// ("2020-01-01 08:09:10.001"), taken as UTC.
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02T15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}

// constantColumn builds an n-row array holding one partition value.
func constantColumn(mem memory.Allocator, typ arrow.DataType, v *string, n int) (arrow.Array, error) {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	b.Reserve(n)
	if v == nil {
		b.AppendNulls(n)
		return b.NewArray(), nil
	}
	s := *v
	var add func()
	switch bb := b.(type) {
	case *array.Int32Builder:
		x, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, err
		}
		add = func() { bb.Append(int32(x)) }
	case *array.Int64Builder:
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		add = func() { bb.Append(x) }
	case *array.Float64Builder:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		add = func() { bb.Append(x) }
	case *array.Date32Builder:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return nil, err
		}
		add = func() { bb.Append(arrow.Date32FromTime(t)) }
	case *array.TimestampBuilder:
		t, err := parseTimestamp(s)
		if err != nil {
			return nil, err
		}
		add = func() { bb.Append(arrow.Timestamp(t.UnixMicro())) }
	case *array.StringBuilder:
		add = func() { bb.Append(s) }
	default:
		return nil, fmt.Errorf("partition type %s is not supported", typ)
	}
	for range n {
		add()
	}
	return b.NewArray(), nil
}

// partitionTypes are the types a spec may declare for a partition column
// (Spark SQL's names), and what each value must parse as.
var partitionTypes = map[string]struct {
	typ   arrow.DataType
	parse func(string) error
}{
	"string": {arrow.BinaryTypes.String, func(string) error { return nil }},
	"int":    {arrow.PrimitiveTypes.Int32, func(s string) error { _, err := strconv.ParseInt(s, 10, 32); return err }},
	"bigint": {arrow.PrimitiveTypes.Int64, func(s string) error { _, err := strconv.ParseInt(s, 10, 64); return err }},
	"double": {arrow.PrimitiveTypes.Float64, func(s string) error { _, err := strconv.ParseFloat(s, 64); return err }},
	"date":   {arrow.FixedWidthTypes.Date32, func(s string) error { _, err := time.Parse("2006-01-02", s); return err }},
	"timestamp": {&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		func(s string) error { _, err := parseTimestamp(s); return err }},
}

// declaredPartitionType checks every value of a column against the type the
// spec declares for it; files[i] holds values[i].
func declaredPartitionType(name, typ string, values []*string, files []string) (arrow.DataType, error) {
	pt, ok := partitionTypes[typ]
	if !ok {
		return nil, fmt.Errorf("partition %q: unknown type %q in the spec", name, typ)
	}
	for i, v := range values {
		if v != nil {
			if err := pt.parse(*v); err != nil {
				return nil, fmt.Errorf("%s: partition %s=%q is not a %s as the spec declares; fix the spec's partitions or the data", files[i], name, *v, typ)
			}
		}
	}
	return pt.typ, nil
}
