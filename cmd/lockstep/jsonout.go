package main

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// versionOut is what version prints.
type versionOut struct {
	Version string `json:"version"`
}

// jsonOutputs names the type each command prints with --output json. The
// JSON section of docs/cli.md is generated from these types, and
// TestJSONOutputs decodes every command's output into its type with
// unknown fields refused, so neither can drift from the code.
var jsonOutputs = []struct {
	cmd  string
	typ  any
	note string
}{
	{"build", pipeline.BuildResult{}, ""},
	{"plan", pipeline.PlanResult{}, "printed when the gate fails too (exit 3)"},
	{"gate", gateOut{}, "what build, publish and run print instead of their result when a gate fails (exit 3)"},
	{"publish", publish.PublishResult{}, ""},
	{"run", pipeline.RunResult{}, ""},
	{"promote", moveOut{}, "the channel entry written; rollback and republish print the same"},
	{"pull", pullOut{}, "hook is there when --on-swap ran"},
	{"status", statusOut{}, ""},
	{"ls", []lsBundle{}, ""},
	{"show", publish.Manifest{}, "the release's manifest, as stored"},
	{"history", []historyEntry{}, "oldest first"},
	{"query", queryOut{}, "result.rows are the data: null there is a value"},
	{"diff", []publish.AssetChange{}, ""},
	{"verify", publish.VerifyReport{}, "with --repair, also repair: {repaired, no_copy, ...}"},
	{"gc", publish.GCReport{}, ""},
	{"inspect", pipeline.Inspection{}, ""},
	{"validate", validateOut{}, ""},
	{"init", initOut{}, ""},
	{"rebuild", pipeline.RebuildResult{}, "also printed when an asset differs (exit 5)"},
	{"keygen", keygenOut{}, ""},
	{"sign", signOut{}, ""},
	{"version", versionOut{}, ""},
}

// jsonDocs renders jsonOutputs for docs/cli.md.
func jsonDocs() string {
	var b strings.Builder
	b.WriteString("# JSON OUTPUTS\n\n")
	b.WriteString("What each command prints with `--output json`; `?` marks a field left out when empty.\n\n")
	for _, o := range jsonOutputs {
		fmt.Fprintf(&b, "## %s\n\n", o.cmd)
		if o.note != "" {
			fmt.Fprintf(&b, "%s.\n\n", strings.ToUpper(o.note[:1])+o.note[1:])
		}
		fmt.Fprintf(&b, "```\n%s\n```\n\n", jsonShape(reflect.TypeOf(o.typ), ""))
	}
	return b.String()
}

var timeType = reflect.TypeOf(time.Time{})

// jsonShape describes the JSON that encoding/json makes of t.
func jsonShape(t reflect.Type, indent string) string {
	switch {
	case t == timeType:
		return "time (RFC 3339)"
	case t.Kind() == reflect.Pointer:
		return jsonShape(t.Elem(), indent)
	}
	switch t.Kind() {
	case reflect.Struct:
		var lines []string
		var walk func(t reflect.Type)
		walk = func(t reflect.Type) {
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Anonymous && f.Tag.Get("json") == "" {
					ft := f.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					walk(ft)
					continue
				}
				if !f.IsExported() {
					continue
				}
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if strings.Contains(opts, "omitempty") {
					name += "?"
				}
				lines = append(lines, fmt.Sprintf("%s  %s: %s", indent, name, jsonShape(f.Type, indent+"  ")))
			}
		}
		walk(t)
		return "{\n" + strings.Join(lines, ",\n") + "\n" + indent + "}"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string (base64)"
		}
		return "[" + jsonShape(t.Elem(), indent) + "]"
	case reflect.Map:
		return "{STRING: " + jsonShape(t.Elem(), indent) + "}"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Interface:
		return "any"
	}
	return t.String()
}
