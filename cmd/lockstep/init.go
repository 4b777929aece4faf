package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// initCommand writes a commented starter spec from a Spark output folder:
// it reads the folder's schema (footers only) and suggests an asset of each
// format the columns allow.
func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a commented starter spec from a Spark output folder's schema",
		ArgsUsage: "URL",
		Description: `Reads the footers at URL (no rows), suggests assets, and writes a spec that
validate and run accept. It never overwrites a file without --force.

Examples:
   lockstep init ./spark/places                      # writes ./lockstep.yaml
   lockstep init s3://bucket/spark/places --spec places.yaml --bundle places`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "spec", Aliases: []string{"s"}, Value: "lockstep.yaml", Usage: "spec `FILE` to write"},
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle `NAME` (default: the folder's name)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite FILE"},
			&cli.BoolFlag{Name: "no-require-success", Usage: "accept output without _SUCCESS (and say so in the spec)"},
		},
		Action: runInit,
	}
}

var nameRe = regexp.MustCompile(`[^a-z0-9_-]+`)

// specName turns a folder name into a bundle, input or asset name.
func specName(s string) string {
	s = strings.Trim(nameRe.ReplaceAllString(strings.ToLower(s), "_"), "_-")
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		s = "data_" + s
	}
	return s
}

func runInit(c *cli.Context) error {
	url, path := c.Args().First(), c.String("spec")
	if _, err := os.Stat(path); err == nil && !c.Bool("force") {
		return usageErr("init", "%s exists: pass --force to overwrite it, or --spec another file", path)
	}
	opts := pipeline.DiscoverOptions{RequireSuccess: !c.Bool("no-require-success")}
	src, skipped, err := pipeline.DiscoverWith(c.Context, "input", url, opts)
	if err != nil {
		return err
	}
	defer src.Close()
	schema, err := src.Schema(c.Context)
	if err != nil {
		return err
	}
	loc, err := publish.ParseLocation(url)
	if err != nil {
		return err
	}
	specURL := url
	base := filepath.Base(strings.TrimRight(url, "/"))
	if loc.LocalDir != "" {
		base = filepath.Base(loc.LocalDir)
		specDir, _ := filepath.Abs(filepath.Dir(path))
		if rel, err := filepath.Rel(specDir, loc.LocalDir); err == nil && !strings.HasPrefix(rel, "..") {
			specURL = filepath.ToSlash(rel) // under the spec's folder: resolved against it
		} else {
			specURL = loc.LocalDir
		}
	}
	bundle := c.String("bundle")
	if bundle == "" {
		bundle = specName(base)
	}
	if err := publish.CheckName("bundle", bundle); err != nil {
		return usageErr("init", "%v: pass --bundle NAME", err)
	}
	input := specName(base)
	text := initSpec(url, specURL, bundle, input, len(src.Files), len(skipped), src.DeltaVersion != nil, !opts.RequireSuccess, schema)
	// The spec must load as written; a failure here is lockstep's bug.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	if _, err := pipeline.LoadSpec(tmp, all.Registry()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("init wrote a spec it cannot load (a lockstep bug; please report it): %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	p, err := newPrinter(c)
	if err != nil {
		return err
	}
	return p.print(initOut{path, bundle}, func(w *tw) {
		w.line("wrote %s (bundle %q from %s: %d %s, %d columns)", path, bundle, url, len(src.Files), plural(len(src.Files), "file", "files"), schema.NumFields())
		w.line("next: lockstep validate --spec %s; lockstep build --spec %s; lockstep run --spec %s", path, path, path)
	})
}

// initSpec is the starter spec's text: one input, and the assets its
// columns allow, each with a comment saying what it is for.
func initSpec(url, specURL, bundle, input string, files, skipped int, delta, noSuccess bool, schema *arrow.Schema) string {
	var b strings.Builder
	kind := "Spark output"
	if delta {
		kind = "Delta table"
	}
	fmt.Fprintf(&b, "# Written by `lockstep init %s`: a starter spec for the %s there\n", url, kind)
	fmt.Fprintf(&b, "# (%d data files, %d skipped; %d columns). Edit it, then:\n", files, skipped, schema.NumFields())
	b.WriteString("#   lockstep validate --spec FILE   # the spec alone\n")
	b.WriteString("#   lockstep build --spec FILE      # build into .lockstep/stage, publish nothing\n")
	b.WriteString("#   lockstep run --spec FILE        # build, publish and promote to the channel\n")
	b.WriteString("# Every key is in README.md (The spec) and docs/formats.md.\n")
	b.WriteString("#\n# Columns:\n")
	for _, f := range schema.Fields() {
		null := ""
		if !f.Nullable {
			null = " not null"
		}
		fmt.Fprintf(&b, "#   %s: %s%s\n", f.Name, f.Type, null)
	}
	fmt.Fprintf(&b, "bundles:\n  %s:\n    channel: production     # the channel `run` promotes\n    inputs:\n      %s:\n        url: %s\n", yamlString(bundle), yamlString(input), yamlString(specURL))
	if noSuccess {
		b.WriteString("        require_success: false   # the folder has no _SUCCESS marker\n")
	}
	b.WriteString("    assets:\n")
	fmt.Fprintf(&b, "      %s:                  # every row and column, as an Arrow IPC file (pyarrow, DuckDB and Polars read it)\n", input)
	fmt.Fprintf(&b, "        format: arrow\n        input: %s\n        options: {compression: zstd}\n", yamlString(input))

	col := func(pred func(arrow.Field) bool) (arrow.Field, bool) {
		for _, f := range schema.Fields() {
			if pred(f) {
				return f, true
			}
		}
		return arrow.Field{}, false
	}
	isInt := func(t arrow.DataType) bool {
		switch t.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
			return true
		}
		return false
	}
	isString := func(t arrow.DataType) bool { return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING }
	key, hasKey := col(func(f arrow.Field) bool {
		n := strings.ToLower(f.Name)
		return (n == "id" || n == "key" || strings.HasSuffix(n, "_id")) && (isInt(f.Type) || isString(f.Type))
	})
	if hasKey {
		fmt.Fprintf(&b, "      %s_by_%s:            # a RocksDB-compatible SSTable: %s -> the other columns as JSON\n", input, specName(key.Name), key.Name)
		fmt.Fprintf(&b, "        format: kv\n        input: %s\n        options: {key: %s, value: json, compression: zstd}   # value_columns: [...] to keep fewer\n", yamlString(input), yamlString(key.Name))
	}
	if name, ok := col(func(f arrow.Field) bool {
		switch strings.ToLower(f.Name) {
		case "name", "title", "label", "word", "term", "query":
			return isString(f.Type)
		}
		return false
	}); ok {
		value := "ordinal"
		comment := "the key's ordinal"
		if hasKey && isInt(key.Type) {
			value, comment = key.Name, key.Name
		}
		fmt.Fprintf(&b, "      %s_%s:               # an FST for exact, prefix and fuzzy lookups: %s -> %s\n", input, specName(name.Name), name.Name, comment)
		fmt.Fprintf(&b, "        format: fst\n        input: %s\n        options: {key: %s, value: %s, duplicates: first}\n", yamlString(input), yamlString(name.Name), yamlString(value))
	}
	if network, ok := col(func(f arrow.Field) bool {
		n := strings.ToLower(f.Name)
		return (n == "network" || n == "cidr") && isString(f.Type)
	}); ok {
		// The database's build time comes from the data (never the clock):
		// a timestamp column, or an integer one of seconds with a time-like name.
		epoch, hasEpoch := col(func(f arrow.Field) bool { return f.Type.ID() == arrow.TIMESTAMP })
		if !hasEpoch {
			epoch, hasEpoch = col(func(f arrow.Field) bool {
				n := strings.ToLower(f.Name)
				return isInt(f.Type) && (strings.Contains(n, "updated") || strings.Contains(n, "epoch") || strings.HasSuffix(n, "_at") || n == "ts" || strings.Contains(n, "time"))
			})
		}
		if hasEpoch {
			var rec []string
			for _, f := range schema.Fields() {
				if f.Name != network.Name && f.Name != epoch.Name && (isString(f.Type) || isInt(f.Type) || f.Type.ID() == arrow.FLOAT64) && len(rec) < 5 {
					rec = append(rec, yamlString(f.Name))
				}
			}
			fmt.Fprintf(&b, "      %s_mmdb:             # a MaxMind DB: IP address -> the range's columns (mmdblookup, GeoIP readers)\n", input)
			fmt.Fprintf(&b, "        format: mmdb\n        input: %s\n        options:\n          network: %s\n          record_columns: [%s]\n          build_epoch_column: %s   # the database's build time: the largest value\n          database_type: %s\n",
				yamlString(input), yamlString(network.Name), strings.Join(rec, ", "), yamlString(epoch.Name), yamlString("lockstep-"+input))
		} else {
			fmt.Fprintf(&b, "      # %s has IP ranges (%s): an mmdb asset needs a build time from the data,\n", input, network.Name)
			b.WriteString("      # a timestamp column or build_epoch: SECONDS (docs/formats.md, mmdb).\n")
		}
	}
	return b.String()
}

// yamlString quotes s when YAML would not read it back as the same string
// (YAML 1.1 reads true, Null, yes, off... as booleans and nulls).
func yamlString(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
		return fmt.Sprintf("%q", s)
	}
	if plainRe.MatchString(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

var plainRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// initOut is what init prints.
type initOut struct {
	Spec   string `json:"spec"`
	Bundle string `json:"bundle"`
}
