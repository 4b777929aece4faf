package publish

import (
	"maps"
	"slices"
)

// AssetChange is one asset's difference between two releases.
type AssetChange struct {
	Name          string `json:"name"`
	Change        string `json:"change"` // added, removed, changed, unchanged
	FormatBefore  string `json:"format_before,omitempty"`
	FormatAfter   string `json:"format_after,omitempty"`
	RowsBefore    int64  `json:"rows_before"`
	RowsAfter     int64  `json:"rows_after"`
	BytesBefore   int64  `json:"bytes_before"`
	BytesAfter    int64  `json:"bytes_after"`
	SchemaChanged bool   `json:"schema_changed"`
	SchemaBefore  string `json:"schema_before,omitempty"`
	SchemaAfter   string `json:"schema_after,omitempty"`
}

// Diff compares two manifests asset by asset, in name order.
func Diff(a, b *Manifest) []AssetChange {
	before := map[string]Asset{}
	for _, x := range a.Assets {
		before[x.Name] = x
	}
	after := map[string]Asset{}
	for _, x := range b.Assets {
		after[x.Name] = x
	}
	names := map[string]bool{}
	for n := range before {
		names[n] = true
	}
	for n := range after {
		names[n] = true
	}
	var out []AssetChange
	for _, n := range sortedNames(names) {
		x, inA := before[n]
		y, inB := after[n]
		c := AssetChange{Name: n, FormatBefore: x.Format, FormatAfter: y.Format,
			RowsBefore: x.Rows, RowsAfter: y.Rows, BytesBefore: x.Size, BytesAfter: y.Size}
		switch {
		case !inA:
			c.Change = "added"
		case !inB:
			c.Change = "removed"
		case x.SHA256 == y.SHA256:
			c.Change = "unchanged"
		default:
			c.Change = "changed"
		}
		if inA && inB && x.Schema != y.Schema {
			c.SchemaChanged, c.SchemaBefore, c.SchemaAfter = true, x.Schema, y.Schema
		}
		out = append(out, c)
	}
	return out
}

func sortedNames(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
