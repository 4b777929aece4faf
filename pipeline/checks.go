package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"go.yaml.in/yaml/v3"
)

// CheckSpec is a `checks:` section: on a bundle, the defaults of every
// asset; on an asset, its own. An asset's schema, rows, unique, size and
// max_partitions replace the bundle's; its nulls and bounds are merged with
// the bundle's column by column. docs/checks.md is the user's guide.
type CheckSpec struct {
	Schema *SchemaCheck            `yaml:"schema" json:"schema,omitempty"`
	Rows   *RowsCheck              `yaml:"rows" json:"rows,omitempty"`
	Nulls  map[string]*NullCheck   `yaml:"nulls" json:"nulls,omitempty"`
	Unique *bool                   `yaml:"unique" json:"unique,omitempty"`
	Bounds map[string]*BoundsCheck `yaml:"bounds" json:"bounds,omitempty"`
	Size   *SizeCheck              `yaml:"size" json:"size,omitempty"`
	// MaxPartitions bounds the values a by: check counts (default
	// DefaultMaxPartitions); beyond it the check fails and says so.
	MaxPartitions int `yaml:"max_partitions" json:"max_partitions,omitempty"`
}

// DefaultMaxPartitions is how many values of a by: column a build counts
// unless max_partitions says otherwise.
const DefaultMaxPartitions = 10_000

// MaxPartitionsLimit is the most max_partitions may be: the counts are
// recorded in the manifest, which readers limit to 16 MiB.
const MaxPartitionsLimit = 100_000

// SchemaCheck is the schema contract of the records an asset reads.
type SchemaCheck struct {
	// Columns are the required columns and their types: Spark SQL names
	// (string, bigint, double, decimal(10,2), ...), Arrow names (utf8,
	// int64, ...), or `any` for presence only.
	Columns map[string]string `yaml:"columns" json:"columns"`
	// ExtraColumns allows columns the contract does not name (default true).
	ExtraColumns *bool `yaml:"extra_columns" json:"extra_columns,omitempty"`
	// Widening accepts a wider type than the contract's: a larger integer,
	// double for float, a decimal with more digits on both sides.
	Widening bool `yaml:"widening" json:"widening,omitempty"`
}

// RowsCheck bounds an asset's rows, absolutely and against the release the
// channel serves now.
type RowsCheck struct {
	Min       *int64   `yaml:"min" json:"min,omitempty"`
	MaxDrop   *Percent `yaml:"max_drop" json:"max_drop,omitempty"`
	MaxGrowth *Percent `yaml:"max_growth" json:"max_growth,omitempty"`
	// By compares the records per value of this column instead of the
	// asset's total.
	By string `yaml:"by" json:"by,omitempty"`
}

// NullCheck bounds a column's null rate: `name: 1` or
// `name: {max: 1, by: country}` (percent).
type NullCheck struct {
	Max Percent `json:"max"`
	By  string  `json:"by,omitempty"`
}

// BoundsCheck bounds a numeric column's values.
type BoundsCheck struct {
	Min *float64 `yaml:"min" json:"min,omitempty"`
	Max *float64 `yaml:"max" json:"max,omitempty"`
}

// SizeCheck bounds the change of an asset's bytes against the channel's
// release.
type SizeCheck struct {
	MaxChange *Percent `yaml:"max_change" json:"max_change,omitempty"`
}

// Percent is a percentage: 5, 2.5 or "5%".
type Percent float64

func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(s, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("line %d: %q is not a percentage such as 5 or \"2.5%%\"", n.Line, n.Value)
	}
	*p = Percent(v)
	return nil
}

func (n *NullCheck) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode {
		return n.Max.UnmarshalYAML(node)
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a null check is a percentage or {max: PERCENT, by: COLUMN}", node.Line)
	}
	hasMax := false
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		switch k.Value {
		case "max":
			hasMax = true
			if err := n.Max.UnmarshalYAML(v); err != nil {
				return err
			}
		case "by":
			if err := v.Decode(&n.By); err != nil {
				return err
			}
		default:
			return fmt.Errorf("line %d: field %s not found in type pipeline.NullCheck", k.Line, k.Value)
		}
	}
	if !hasMax {
		return fmt.Errorf("line %d: a null check needs max: the highest null rate in percent, such as {max: 1, by: country}", node.Line)
	}
	return nil
}

// assetChecks are the checks one asset runs: the bundle's merged with its own.
type assetChecks struct {
	CheckSpec
	keyed bool // the asset's format has keys (unique applies)
}

// mergeChecks gives an asset's checks: the bundle's defaults, with the
// asset's own replacing them key by key (nulls and bounds column by column).
func mergeChecks(bundle, asset *CheckSpec) CheckSpec {
	var out CheckSpec
	for _, c := range []*CheckSpec{bundle, asset} {
		if c == nil {
			continue
		}
		if c.Schema != nil {
			out.Schema = c.Schema
		}
		if c.Rows != nil {
			out.Rows = c.Rows
		}
		if c.Unique != nil {
			out.Unique = c.Unique
		}
		if c.Size != nil {
			out.Size = c.Size
		}
		if c.MaxPartitions != 0 {
			out.MaxPartitions = c.MaxPartitions
		}
		for col, n := range c.Nulls {
			if out.Nulls == nil {
				out.Nulls = map[string]*NullCheck{}
			}
			out.Nulls[col] = n
		}
		for col, b := range c.Bounds {
			if out.Bounds == nil {
				out.Bounds = map[string]*BoundsCheck{}
			}
			out.Bounds[col] = b
		}
	}
	if out.MaxPartitions == 0 {
		out.MaxPartitions = DefaultMaxPartitions
	}
	return out
}

// validateChecks checks a checks: section where it stands in the spec.
func validateChecks(c *CheckSpec, where func(...string) string, bad func(where, format string, args ...any) error) error {
	if c == nil {
		return nil
	}
	if c.Schema != nil {
		if len(c.Schema.Columns) == 0 {
			return bad(where("schema"), "schema: no columns: list the required columns and their types, such as {id: bigint, name: string}")
		}
		for _, col := range sortedKeys(c.Schema.Columns) {
			if _, err := parseColumnType(c.Schema.Columns[col]); err != nil {
				return bad(where("schema", "columns", col), "schema: column %q: %v", col, err)
			}
		}
	}
	if c.Rows != nil {
		r := c.Rows
		if r.Min == nil && r.MaxDrop == nil && r.MaxGrowth == nil {
			return bad(where("rows"), "rows: set min, max_drop or max_growth")
		}
		if r.Min != nil && *r.Min < 0 {
			return bad(where("rows", "min"), "rows: min %d is negative", *r.Min)
		}
		if r.MaxDrop != nil && *r.MaxDrop > 100 {
			return bad(where("rows", "max_drop"), "rows: max_drop %v%% is above 100%%", float64(*r.MaxDrop))
		}
		if r.By != "" && r.MaxDrop == nil && r.MaxGrowth == nil {
			return bad(where("rows", "by"), "rows: by %q compares each value with the channel's release: set max_drop or max_growth", r.By)
		}
	}
	for _, col := range sortedKeys(c.Nulls) {
		if n := c.Nulls[col]; n == nil || n.Max > 100 {
			return bad(where("nulls", col), "nulls: column %q: give a null rate of at most 100 (percent)", col)
		}
	}
	for _, col := range sortedKeys(c.Bounds) {
		b := c.Bounds[col]
		if b == nil || (b.Min == nil && b.Max == nil) {
			return bad(where("bounds", col), "bounds: column %q: set min, max or both", col)
		}
		if b.Min != nil && b.Max != nil && *b.Min > *b.Max {
			return bad(where("bounds", col), "bounds: column %q: min %v is above max %v", col, *b.Min, *b.Max)
		}
	}
	if c.Size != nil && c.Size.MaxChange == nil {
		return bad(where("size"), "size: set max_change (percent)")
	}
	if c.MaxPartitions < 0 || c.MaxPartitions > MaxPartitionsLimit {
		return bad(where("max_partitions"), "max_partitions %d: give 1 to %d (each value is recorded in the manifest)", c.MaxPartitions, MaxPartitionsLimit)
	}
	return nil
}

// CheckNames lists the checks the bundle's spec declares, sorted: the
// names --override takes.
func (b *Bundle) CheckNames() []string {
	var names []string
	for _, asset := range sortedKeys(b.checks) {
		names = append(names, b.checks[asset].names(asset)...)
	}
	return names
}

// names are an asset's check names, ASSET/KIND.
func (c *assetChecks) names(asset string) []string {
	var out []string
	add := func(kind string) { out = append(out, asset+"/"+kind) }
	if c.Schema != nil {
		add("schema")
	}
	if r := c.Rows; r != nil {
		if r.Min != nil {
			add("rows.min")
		}
		if r.MaxDrop != nil {
			add("rows.max_drop")
		}
		if r.MaxGrowth != nil {
			add("rows.max_growth")
		}
	}
	for _, col := range sortedKeys(c.Nulls) {
		add("nulls." + col)
	}
	if c.Unique != nil && *c.Unique && c.keyed {
		add("unique")
	}
	for _, col := range sortedKeys(c.Bounds) {
		add("bounds." + col)
	}
	if c.Size != nil {
		add("size.max_change")
	}
	slices.Sort(out)
	return out
}

// columnType is a type a schema contract names, in the words `inspect`
// and Spark use.
type columnType struct {
	name       string // canonical: bigint, string, decimal(10,2), or an Arrow type's text
	rank       int    // widening order within family
	family     string // int, float, decimal or "" (no widening)
	prec, scal int32  // decimals
}

var typeAliases = map[string]columnType{
	"boolean": {name: "boolean"}, "bool": {name: "boolean"},
	"tinyint": {name: "tinyint", family: "int", rank: 1}, "byte": {name: "tinyint", family: "int", rank: 1}, "int8": {name: "tinyint", family: "int", rank: 1},
	"smallint": {name: "smallint", family: "int", rank: 2}, "short": {name: "smallint", family: "int", rank: 2}, "int16": {name: "smallint", family: "int", rank: 2},
	"int": {name: "int", family: "int", rank: 3}, "integer": {name: "int", family: "int", rank: 3}, "int32": {name: "int", family: "int", rank: 3},
	"bigint": {name: "bigint", family: "int", rank: 4}, "long": {name: "bigint", family: "int", rank: 4}, "int64": {name: "bigint", family: "int", rank: 4},
	"float": {name: "float", family: "float", rank: 1}, "real": {name: "float", family: "float", rank: 1}, "float32": {name: "float", family: "float", rank: 1},
	"double": {name: "double", family: "float", rank: 2}, "float64": {name: "double", family: "float", rank: 2},
	"string": {name: "string"}, "utf8": {name: "string"}, "large_utf8": {name: "string"},
	"binary": {name: "binary"}, "large_binary": {name: "binary"},
	"date": {name: "date"}, "date32": {name: "date"},
	"timestamp": {name: "timestamp"}, "timestamp_ntz": {name: "timestamp_ntz"},
	"any": {name: "any"},
}

var decimalType = regexp.MustCompile(`^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// parseColumnType reads a type a contract names.
func parseColumnType(s string) (columnType, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if ct, ok := typeAliases[t]; ok {
		return ct, nil
	}
	if m := decimalType.FindStringSubmatch(t); m != nil {
		p, _ := strconv.Atoi(m[1])
		sc, _ := strconv.Atoi(m[2])
		if p < 1 || p > 76 || sc > p {
			return columnType{}, fmt.Errorf("decimal(%d,%d) is not a decimal type (1 ≤ precision ≤ 76, scale ≤ precision)", p, sc)
		}
		return columnType{name: fmt.Sprintf("decimal(%d,%d)", p, sc), family: "decimal", prec: int32(p), scal: int32(sc)}, nil
	}
	if strings.ContainsAny(t, "<[") {
		return columnType{name: strings.TrimSpace(s)}, nil // a nested Arrow type, compared as text
	}
	return columnType{}, fmt.Errorf("unknown type %q (use a Spark SQL name such as string, bigint, double, decimal(10,2), date, timestamp; an Arrow type's text for nested columns; or any)", s)
}

// typeOf names an Arrow type as a contract would.
func typeOf(dt arrow.DataType) columnType {
	switch t := dt.(type) {
	case *arrow.BooleanType:
		return typeAliases["boolean"]
	case *arrow.Int8Type:
		return typeAliases["tinyint"]
	case *arrow.Int16Type:
		return typeAliases["smallint"]
	case *arrow.Int32Type:
		return typeAliases["int"]
	case *arrow.Int64Type:
		return typeAliases["bigint"]
	case *arrow.Float32Type:
		return typeAliases["float"]
	case *arrow.Float64Type:
		return typeAliases["double"]
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return typeAliases["string"]
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType:
		return typeAliases["binary"]
	case *arrow.Date32Type:
		return typeAliases["date"]
	case *arrow.TimestampType:
		if t.TimeZone == "" {
			return typeAliases["timestamp_ntz"]
		}
		return typeAliases["timestamp"]
	case arrow.DecimalType:
		return columnType{name: fmt.Sprintf("decimal(%d,%d)", t.GetPrecision(), t.GetScale()), family: "decimal", prec: t.GetPrecision(), scal: t.GetScale()}
	}
	return columnType{name: dt.String()}
}

// accepts reports whether a column of type got meets the contract's want.
func (want columnType) accepts(got columnType, widening bool) bool {
	if want.name == "any" || want.name == got.name {
		return true
	}
	if !widening || want.family == "" || want.family != got.family {
		return false
	}
	if want.family == "decimal" {
		return got.scal >= want.scal && got.prec-got.scal >= want.prec-want.scal
	}
	return got.rank > want.rank
}
