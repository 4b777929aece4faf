package publish

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
)

// AssetChange is one asset's difference between two releases.
type AssetChange struct {
	Name          string `json:"name"`
	Change        string `json:"change"`        // added, removed, changed, unchanged
	FormatBefore  string `json:"format_before"` // "" when added
	FormatAfter   string `json:"format_after"`  // "" when removed
	RowsBefore    int64  `json:"rows_before"`
	RowsAfter     int64  `json:"rows_after"`
	BytesBefore   int64  `json:"bytes_before"`
	BytesAfter    int64  `json:"bytes_after"`
	SchemaChanged bool   `json:"schema_changed"`
	SchemaBefore  string `json:"schema_before"` // "" unless the schema changed
	SchemaAfter   string `json:"schema_after"`
	// Options are the format options that differ ([] when none do).
	Options []OptionChange `json:"options"`
}

// OptionChange is one format option that differs between two releases; a
// side that does not set it is null.
type OptionChange struct {
	Key    string `json:"key"`
	Before any    `json:"before"`
	After  any    `json:"after"`
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
		c.Options = optionChanges(x.Options, y.Options)
		out = append(out, c)
	}
	return out
}

// optionChanges lists the options whose values differ, in key order.
func optionChanges(a, b map[string]any) []OptionChange {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	out := []OptionChange{}
	for _, k := range sortedNames(keys) {
		x, _ := json.Marshal(a[k])
		y, _ := json.Marshal(b[k])
		if !bytes.Equal(x, y) {
			out = append(out, OptionChange{Key: k, Before: a[k], After: b[k]})
		}
	}
	return out
}

func sortedNames(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
