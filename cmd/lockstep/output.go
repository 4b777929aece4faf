package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// printer writes a command's result: JSON for scripts, lines for people.
type printer struct {
	json bool
	w    io.Writer
}

func newPrinter(c *cli.Context) (*printer, error) {
	// --output may come before the command, as a global flag, or after it.
	out := c.String("output")
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("output") {
			out = ctx.String("output")
			break
		}
	}
	switch out {
	case "", "text":
		return &printer{w: os.Stdout}, nil
	case "json":
		return &printer{json: true, w: os.Stdout}, nil
	}
	return nil, fmt.Errorf("%w: --output %q: use text or json", errUsage, out)
}

func (p *printer) print(v any, text func(*tw)) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := &tw{tabwriter.NewWriter(p.w, 2, 4, 2, ' ', 0)}
	text(w)
	return w.Flush()
}

type tw struct{ *tabwriter.Writer }

func (w *tw) line(format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

func assetTable(w *tw, assets []publish.Asset) {
	w.line("  ASSET\tFORMAT\tROWS\tSIZE\tSHA256")
	for _, a := range assets {
		w.line("  %s\t%s\t%d\t%s\t%.12s", a.File, a.Format, a.Rows, bytesText(a.Size), a.SHA256)
	}
	// A format's own counts (geo: features skipped or repaired as invalid).
	for _, a := range assets {
		if len(a.Stats) == 0 {
			continue
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(a.Stats)) {
			kv = append(kv, fmt.Sprintf("%s %d", k, a.Stats[k]))
		}
		w.line("  %s: %s", a.File, strings.Join(kv, ", "))
	}
}

func resultTable(w *tw, r *formats.Result) {
	w.line("  %s", strings.Join(r.Columns, "\t"))
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = cell(v)
		}
		w.line("  %s", strings.Join(cells, "\t"))
	}
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		// Quoted where plain text would hide the difference: "Ba " and
		// "Ba", an empty key, a tab or a control character, the word null.
		if x == "" || x == "null" || strings.TrimSpace(x) != x || strings.ContainsFunc(x, func(r rune) bool { return !unicode.IsPrint(r) }) {
			return strconv.Quote(x)
		}
		return x
	case []byte:
		return fmt.Sprintf("%x", x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func bytesText(n int64) string { return formats.FormatSize(n) }
