package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/pipeline"
)

// runPlan is `plan`: what a run would publish next to what the channel
// serves, and the checks; it writes nothing to the store.
func runPlan(c *cli.Context, e *env) error {
	b, bld, err := e.buildFor(c)
	if err != nil {
		return err
	}
	res, err := pipeline.Plan(e.ctx, bld, b)
	if res == nil {
		return err
	}
	if perr := e.out.print(res, func(w *tw) { planText(w, res) }); perr != nil {
		return perr
	}
	return err
}

func planText(w *tw, p *pipeline.PlanResult) {
	serving := "serves no release"
	if p.Serving != "" {
		serving = "serves " + p.Serving
	}
	w.line("plan: bundle %s, channel %s %s", p.Bundle, p.Channel, serving)
	for _, in := range p.Inputs {
		delta := ""
		if in.DeltaVersion != nil {
			delta = fmt.Sprintf(", Delta version %d", *in.DeltaVersion)
		}
		w.line("input %s: %d %s, %d rows%s", in.Name, in.Files, plural(in.Files, "file", "files"), in.Rows, delta)
	}
	switch p.Action {
	case "none":
		w.line("unchanged: the channel already serves release %s, built from these inputs; a run does nothing", p.Release)
	case "promote":
		w.line("unchanged: release %s already has these inputs; a run would promote it", p.Release)
	case "superseded":
		w.line("unchanged: release %s already has these inputs, but the channel moved since it was built: a run moves nothing (promote it by hand to serve it)", p.Release)
	case "blocked":
		w.line("a run would publish nothing: the gate fails")
	default:
		w.line("a run would publish a new release (fingerprint %.12s) and promote it", p.Fingerprint)
	}
	if len(p.Assets) > 0 {
		w.line("  ASSET\tCHANGE\tROWS\tBYTES\tSCHEMA")
		for _, a := range p.Assets {
			schema := ""
			if a.SchemaChanged {
				schema = "changed"
			}
			w.line("  %s\t%s\t%s\t%s\t%s", a.Name, a.Change,
				changeText(a.RowsBefore, a.RowsAfter, a.RowsChange, a.Change, func(n int64) string { return fmt.Sprint(n) }),
				changeText(a.BytesBefore, a.BytesAfter, a.BytesChange, a.Change, bytesText), schema)
		}
		for _, a := range p.Assets {
			if a.SchemaChanged {
				w.line("schema of %s:", a.Name)
				for _, l := range schemaDiff(a.SchemaBefore, a.SchemaAfter) {
					w.line("  %s", l)
				}
			}
		}
	}
	checkTable(w, p.Checks)
	switch p.Gate {
	case "failed":
		w.line("gate: FAILED: a run would publish nothing and exit 3")
	case "overridden":
		w.line("gate: passed with overrides")
	default:
		w.line("gate: passed")
	}
}

func changeText(before, after int64, pct *float64, change string, unit func(int64) string) string {
	switch change {
	case "added":
		return unit(after)
	case "removed":
		return unit(before)
	}
	if pct == nil {
		return fmt.Sprintf("%s -> %s", unit(before), unit(after))
	}
	return fmt.Sprintf("%s -> %s (%+.2f%%)", unit(before), unit(after), *pct)
}

// schemaDiff lists the field lines of two Arrow schema texts that differ.
func schemaDiff(before, after string) []string {
	fields := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "- ") {
				out = append(out, strings.TrimPrefix(l, "- "))
			}
		}
		return out
	}
	b, a := fields(before), fields(after)
	var out []string
	for _, f := range b {
		if !slices.Contains(a, f) {
			out = append(out, "- "+f)
		}
	}
	for _, f := range a {
		if !slices.Contains(b, f) {
			out = append(out, "+ "+f)
		}
	}
	return out
}
