package pipeline

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// GateError is a build whose checks failed: nothing is published. It is an
// ErrGateFailed, and it holds every check, passed ones too, for the report.
type GateError struct {
	Bundle  string
	Channel string
	Checks  []publish.Check
}

func (e *GateError) Unwrap() error { return ErrGateFailed }

// Failed lists the checks that failed and were not overridden.
func (e *GateError) Failed() []publish.Check {
	var out []publish.Check
	for _, c := range e.Checks {
		if !c.Passed && !c.Overridden {
			out = append(out, c)
		}
	}
	return out
}

func (e *GateError) Error() string {
	failed := e.Failed()
	var b strings.Builder
	fmt.Fprintf(&b, "%v: bundle %s: %d of %d checks failed; nothing was published and channel %s was not moved", ErrGateFailed, e.Bundle, len(failed), len(e.Checks), e.Channel)
	for _, c := range failed {
		fmt.Fprintf(&b, "\n  %s: expected %s, got %s", c.Name, c.Expected, c.Actual)
		if c.Detail != "" {
			fmt.Fprintf(&b, " (%s)", c.Detail)
		}
	}
	names := make([]string, len(failed))
	for i, c := range failed {
		names[i] = "--override " + c.Name
	}
	fmt.Fprintf(&b, "\nfix the input, or push a known change through with %s --reason \"...\"", strings.Join(names, " "))
	return b.String()
}

// assetRun is what one asset's checks look at once its input is read.
type assetRun struct {
	name    string
	input   string
	checks  *assetChecks
	stats   *inputStats
	schema  *arrow.Schema
	assets  []publish.Asset // the files it became (shards), nil when not sealed
	dups    int64
	dup     *formats.DuplicateKeyError
	prev    *publish.Manifest
	channel string
}

// schemaCheck compares an input's schema with an asset's contract.
func schemaCheck(asset string, c *SchemaCheck, schema *arrow.Schema) publish.Check {
	var want, bad []string
	for _, col := range sortedKeys(c.Columns) {
		wt, _ := parseColumnType(c.Columns[col]) // checked by the spec
		want = append(want, col+" "+wt.name)
		idx := schema.FieldIndices(col)
		if len(idx) == 0 {
			bad = append(bad, fmt.Sprintf("column %q (%s) is missing", col, wt.name))
			continue
		}
		got := typeOf(schema.Field(idx[0]).Type)
		if !wt.accepts(got, c.Widening) {
			bad = append(bad, fmt.Sprintf("column %q is %s, expected %s", col, got.name, wt.name))
		}
	}
	if c.ExtraColumns != nil && !*c.ExtraColumns {
		for _, f := range schema.Fields() {
			if _, ok := c.Columns[f.Name]; !ok {
				bad = append(bad, fmt.Sprintf("column %q (%s) is not in the contract, which allows no others", f.Name, typeOf(f.Type).name))
			}
		}
	}
	expected := strings.Join(want, ", ")
	if c.Widening {
		expected += " (or wider)"
	}
	ck := publish.Check{Name: asset + "/schema", Passed: len(bad) == 0, Expected: expected, Actual: "as expected"}
	if len(bad) > 0 {
		ck.Actual = strings.Join(bad, "; ")
		var have []string
		for _, f := range schema.Fields() {
			have = append(have, f.Name+" "+typeOf(f.Type).name)
		}
		ck.Detail = "the input has " + strings.Join(have, ", ")
	}
	return ck
}

// evaluate runs an asset's checks other than the schema's, and gives the
// partition counts its manifest records.
func (r *assetRun) evaluate() ([]publish.Check, []publish.PartitionRows) {
	var out []publish.Check
	var parts []publish.PartitionRows
	c := r.checks
	rows, size := r.totals()
	prevAssets := r.prevAssets()
	against := ""
	if r.prev != nil {
		against = fmt.Sprintf("against release %s on %s", r.prev.Release, r.channel)
	}
	noPrev := fmt.Sprintf("channel %s serves no release to compare with: passes", r.channel)
	if r.prev != nil && prevAssets == nil {
		noPrev = fmt.Sprintf("release %s on %s has no asset %s to compare with: passes", r.prev.Release, r.channel, r.name)
	}
	if rc := c.Rows; rc != nil {
		if rc.Min != nil {
			out = append(out, publish.Check{Name: r.name + "/rows.min", Passed: rows >= *rc.Min,
				Expected: fmt.Sprintf(">= %d rows", *rc.Min), Actual: fmt.Sprintf("%d rows", rows)})
		}
		if rc.By != "" {
			checks, pr := r.rowsBy(rc, against, noPrev)
			out = append(out, checks...)
			parts = append(parts, pr...)
		} else {
			var prevRows int64
			for _, a := range prevAssets {
				prevRows += a.Rows
			}
			if rc.MaxDrop != nil {
				out = append(out, changeCheck(r.name+"/rows.max_drop", prevAssets != nil, prevRows, rows, -float64(*rc.MaxDrop), countText, against, noPrev))
			}
			if rc.MaxGrowth != nil {
				out = append(out, changeCheck(r.name+"/rows.max_growth", prevAssets != nil, prevRows, rows, float64(*rc.MaxGrowth), countText, against, noPrev))
			}
		}
	}
	for _, col := range sortedKeys(c.Nulls) {
		out = append(out, r.nullCheck(col, c.Nulls[col]))
	}
	if c.Unique != nil && *c.Unique && c.keyed {
		ck := publish.Check{Name: r.name + "/unique", Passed: r.dups == 0, Expected: "no duplicate keys", Actual: "no duplicate keys"}
		if r.dup != nil {
			ck.Actual = fmt.Sprintf("%d duplicate keys; the first: %s in %s and %s", r.dups, r.dup.Key, r.dup.File1, r.dup.File2)
			if r.assets == nil {
				ck.Actual = fmt.Sprintf("duplicate key %s in %s and %s", r.dup.Key, r.dup.File1, r.dup.File2)
				ck.Detail = "duplicates: error stops at the first; set duplicates: first or last to keep one"
			}
		}
		out = append(out, ck)
	}
	for _, col := range sortedKeys(c.Bounds) {
		out = append(out, r.boundsCheck(col, c.Bounds[col]))
	}
	if c.Size != nil {
		var prevSize int64
		for _, a := range prevAssets {
			prevSize += a.Size
		}
		ck := changeCheck(r.name+"/size.max_change", prevAssets != nil, prevSize, size, 0, formats.FormatSize, against, noPrev)
		limit := float64(*c.Size.MaxChange)
		ck.Expected = "a change of at most " + pct(limit)
		if prevAssets != nil && prevSize > 0 {
			ck.Passed = math.Abs(change(prevSize, size)) <= limit
		}
		if r.assets == nil {
			ck.Passed, ck.Actual = false, "not built: its duplicate key stopped the writer (see "+r.name+"/unique)"
		}
		out = append(out, ck)
	}
	return out, parts
}

// totals are the rows and bytes of the asset's files, shards summed.
func (r *assetRun) totals() (rows, size int64) {
	for _, a := range r.assets {
		rows += a.Rows
		size += a.Size
	}
	if r.assets == nil {
		rows = r.stats.rows // not sealed: the records it read
	}
	return rows, size
}

var shardName = regexp.MustCompile(`^(.+)-[0-9]+of[0-9]+$`)

// prevAssets are the asset's files in the channel's release: itself or
// its shards; nil when there is none.
func (r *assetRun) prevAssets() []publish.Asset {
	if r.prev == nil {
		return nil
	}
	var out []publish.Asset
	for _, a := range r.prev.Assets {
		if m := shardName.FindStringSubmatch(a.Name); a.Name == r.name || (m != nil && m[1] == r.name) {
			out = append(out, a)
		}
	}
	return out
}

func countText(n int64) string { return strconv.FormatInt(n, 10) + " rows" }

// change is the percent change from a to b.
func change(a, b int64) float64 {
	if a == 0 {
		if b == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return float64(b-a) / float64(a) * 100
}

// pct shows a percentage with at most two decimals.
func pct(v float64) string {
	if math.IsInf(v, 1) {
		return "+inf%"
	}
	s := strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	return s + "%"
}

func signedPct(v float64) string {
	if v > 0 {
		return "+" + pct(v)
	}
	return pct(v)
}

// changeCheck compares a total with the channel's: limit < 0 bounds a drop
// (at most -limit percent), limit > 0 a growth.
func changeCheck(name string, hasPrev bool, prev, cur int64, limit float64, unit func(int64) string, against, noPrev string) publish.Check {
	ck := publish.Check{Name: name, Passed: true}
	if limit < 0 {
		ck.Expected = "a drop of at most " + pct(-limit)
	} else {
		ck.Expected = "a growth of at most " + pct(limit)
	}
	if !hasPrev {
		ck.Actual, ck.Detail = unit(cur), noPrev
		return ck
	}
	d := change(prev, cur)
	ck.Actual = fmt.Sprintf("%s (%s -> %s)", signedPct(d), unit(prev), unit(cur))
	ck.Detail = against
	switch {
	case limit < 0:
		ck.Passed = d >= limit
	case limit > 0:
		ck.Passed = d <= limit
	}
	return ck
}

// rowsBy compares the records per value of the by: column with the
// channel's release's, worst first.
func (r *assetRun) rowsBy(rc *RowsCheck, against, noPrev string) ([]publish.Check, []publish.PartitionRows) {
	g := r.stats.groups[rc.By]
	pr := publish.PartitionRows{Asset: r.name, Column: rc.By, Values: []publish.PartitionValue{}}
	var checks []publish.Check
	kinds := []struct {
		name  string
		limit *Percent
		sign  float64
	}{{"rows.max_drop", rc.MaxDrop, -1}, {"rows.max_growth", rc.MaxGrowth, 1}}
	if msg := r.groupProblem(rc.By, g); msg != "" {
		for _, k := range kinds {
			if k.limit != nil {
				checks = append(checks, publish.Check{Name: r.name + "/" + k.name, Expected: fmt.Sprintf("a count for each value of %s", rc.By), Actual: msg})
			}
		}
		if r.over(g) {
			pr.Truncated = true
			return checks, []publish.PartitionRows{pr}
		}
		return checks, nil // nothing counted: no baseline for the next build
	}
	cur := map[string]int64{}
	for id, v := range g.vals {
		pv := publish.PartitionValue{Null: v == nil, Rows: g.rows[id]}
		if v != nil {
			pv.Value = *v
		}
		pr.Values = append(pr.Values, pv)
		cur[valueKey(v)] = g.rows[id]
	}
	slices.SortFunc(pr.Values, func(a, b publish.PartitionValue) int { return cmp.Compare(partKey(a), partKey(b)) })
	var before *publish.PartitionRows
	if r.prev != nil {
		for i, p := range r.prev.Partitions {
			if p.Asset == r.name && p.Column == rc.By && !p.Truncated {
				before = &r.prev.Partitions[i]
			}
		}
	}
	for _, k := range kinds {
		if k.limit == nil {
			continue
		}
		limit := float64(*k.limit)
		ck := publish.Check{Name: r.name + "/" + k.name, Passed: true}
		if k.sign < 0 {
			ck.Expected = fmt.Sprintf("a drop of at most %s for each value of %s", pct(limit), rc.By)
		} else {
			ck.Expected = fmt.Sprintf("a growth of at most %s for each value of %s", pct(limit), rc.By)
		}
		if before == nil {
			ck.Actual = fmt.Sprintf("%d values", len(pr.Values))
			ck.Detail = noPrev
			if r.prev != nil {
				ck.Detail = fmt.Sprintf("release %s on %s did not count rows by %s: passes", r.prev.Release, r.channel, rc.By)
			}
			checks = append(checks, ck)
			continue
		}
		type bad struct {
			v        *string
			d        float64
			was, now int64
		}
		var bads []bad
		seen := map[string]bool{}
		added := 0
		for _, p := range before.Values {
			key := partKey(p)
			seen[key] = true
			d := change(p.Rows, cur[key])
			if k.sign*d > limit {
				var v *string
				if !p.Null {
					v = &p.Value
				}
				bads = append(bads, bad{v, d, p.Rows, cur[key]})
			}
		}
		for _, p := range pr.Values {
			if !seen[partKey(p)] {
				added++
			}
		}
		slices.SortFunc(bads, func(a, b bad) int {
			return cmp.Or(cmp.Compare(k.sign*b.d, k.sign*a.d), cmp.Compare(b.was, a.was), cmp.Compare(valueKey(a.v), valueKey(b.v)))
		})
		ck.Passed = len(bads) == 0
		ck.Detail = against
		if added > 0 {
			ck.Detail += fmt.Sprintf("; %d new values of %s (they pass)", added, rc.By)
		}
		if ck.Passed {
			ck.Actual = fmt.Sprintf("every one of %d values within the limit", len(before.Values))
		} else {
			w := bads[0]
			ck.Actual = fmt.Sprintf("%d of %d values beyond the limit; the worst: %s=%s %s (%d -> %d rows)", len(bads), len(before.Values), rc.By, valueText(w.v), signedPct(w.d), w.was, w.now)
			for _, b := range bads[:min(len(bads), publish.MaxWorst)] {
				ck.Worst = append(ck.Worst, checkValue(b.v, fmt.Sprintf("%s (%d -> %d rows)", signedPct(b.d), b.was, b.now)))
			}
		}
		checks = append(checks, ck)
	}
	return checks, []publish.PartitionRows{pr}
}

// groupProblem says why a by: column's values cannot be compared, or "".
func (r *assetRun) groupProblem(by string, g *grouping) string {
	switch {
	case g == nil || g.col < 0:
		return fmt.Sprintf("column %q is not in input %s", by, r.input)
	case g.bad != "":
		return fmt.Sprintf("column %q cannot be counted by value: %s", by, g.bad)
	case r.over(g):
		return fmt.Sprintf("column %q has more than %d values, the most this asset's checks count (max_partitions); raise it, or choose a column with fewer values", by, r.checks.MaxPartitions)
	}
	return ""
}

// over reports whether a by: column has more values than the asset's
// max_partitions (the grouping counts up to the largest of its assets').
func (r *assetRun) over(g *grouping) bool {
	return g != nil && (g.over || len(g.vals) > r.checks.MaxPartitions)
}

// valueKey orders and identifies a by: value; null sorts first.
func valueKey(v *string) string {
	if v == nil {
		return ""
	}
	return "=" + *v
}

func partKey(p publish.PartitionValue) string {
	if p.Null {
		return ""
	}
	return "=" + p.Value
}

func checkValue(v *string, actual string) publish.CheckValue {
	if v == nil {
		return publish.CheckValue{Null: true, Actual: actual}
	}
	return publish.CheckValue{Value: *v, Actual: actual}
}

func valueText(v *string) string {
	if v == nil {
		return "null"
	}
	return strconv.Quote(*v)
}

// nullCheck bounds a column's null rate, in all or per value of by:.
func (r *assetRun) nullCheck(col string, nc *NullCheck) publish.Check {
	limit := float64(nc.Max)
	ck := publish.Check{Name: r.name + "/nulls." + col, Expected: fmt.Sprintf("at most %s null", pct(limit))}
	s := r.stats.nulls[col]
	if s == nil || s.col < 0 {
		ck.Actual = fmt.Sprintf("column %q is not in input %s", col, r.input)
		return ck
	}
	rate := func(nulls, rows int64) float64 {
		if rows == 0 {
			return 0
		}
		return float64(nulls) / float64(rows) * 100
	}
	if nc.By == "" {
		v := rate(s.total, r.stats.rows)
		ck.Passed = v <= limit
		ck.Actual = fmt.Sprintf("%s (%d of %d rows)", pct(v), s.total, r.stats.rows)
		return ck
	}
	ck.Expected += " for each value of " + nc.By
	g := r.stats.groups[nc.By]
	if msg := r.groupProblem(nc.By, g); msg != "" {
		ck.Actual = msg
		return ck
	}
	counts := s.by[nc.By]
	type bad struct {
		v           *string
		rate        float64
		nulls, rows int64
	}
	var bads []bad
	for id, v := range g.vals {
		var n int64
		if id < len(counts) {
			n = counts[id]
		}
		if x := rate(n, g.rows[id]); x > limit {
			bads = append(bads, bad{v, x, n, g.rows[id]})
		}
	}
	slices.SortFunc(bads, func(a, b bad) int {
		return cmp.Or(cmp.Compare(b.rate, a.rate), cmp.Compare(b.rows, a.rows), cmp.Compare(valueKey(a.v), valueKey(b.v)))
	})
	ck.Passed = len(bads) == 0
	if ck.Passed {
		ck.Actual = fmt.Sprintf("every one of %d values within the limit; %s in all (%d of %d rows)", len(g.vals), pct(rate(s.total, r.stats.rows)), s.total, r.stats.rows)
		return ck
	}
	w := bads[0]
	ck.Actual = fmt.Sprintf("%d of %d values beyond the limit; the worst: %s=%s %s null (%d of %d rows)", len(bads), len(g.vals), nc.By, valueText(w.v), pct(w.rate), w.nulls, w.rows)
	for _, b := range bads[:min(len(bads), publish.MaxWorst)] {
		ck.Worst = append(ck.Worst, checkValue(b.v, fmt.Sprintf("%s null (%d of %d rows)", pct(b.rate), b.nulls, b.rows)))
	}
	return ck
}

// boundsCheck bounds a numeric column's values.
func (r *assetRun) boundsCheck(col string, bc *BoundsCheck) publish.Check {
	k := bc.key(col)
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	ck := publish.Check{Name: r.name + "/bounds." + col}
	switch {
	case bc.Min != nil && bc.Max != nil:
		ck.Expected = fmt.Sprintf("every value in [%s, %s]", num(*bc.Min), num(*bc.Max))
	case bc.Min != nil:
		ck.Expected = "every value >= " + num(*bc.Min)
	default:
		ck.Expected = "every value <= " + num(*bc.Max)
	}
	s := r.stats.ranges[k]
	switch {
	case s == nil || s.col < 0:
		ck.Actual = fmt.Sprintf("column %q is not in input %s", col, r.input)
	case s.bad != "":
		ck.Actual = fmt.Sprintf("column %q: %s", col, s.bad)
	case s.n == 0:
		ck.Passed, ck.Actual = true, "no values (every row is null)"
	default:
		ck.Passed = s.outside == 0
		ck.Actual = fmt.Sprintf("min %s, max %s; %d of %d values outside", num(s.min), num(s.max), s.outside, s.n)
	}
	return ck
}
