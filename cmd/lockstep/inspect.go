package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/pipeline"
)

// inspectCommand describes what a build would read at a URL.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "describe the Spark output at a URL: files kept and skipped, schema, rows",
		ArgsUsage: "URL",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-require-success", Usage: "describe output without _SUCCESS"},
			&cli.Int64Flag{Name: "delta-version", Value: -1, DefaultText: "the latest", Usage: "a Delta table's `VERSION`"},
			&cli.Int64Flag{Name: "snapshot-id", DefaultText: "the current one", Usage: "an Iceberg table's snapshot `ID`"},
			&cli.TimestampFlag{Name: "as-of", Layout: time.RFC3339, Usage: "an Iceberg table's snapshot current at `TIME` (RFC 3339)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
		},
		Action: func(c *cli.Context) error {
			p, err := newPrinter(c)
			if err != nil {
				return err
			}
			opts := pipeline.DiscoverOptions{RequireSuccess: !c.Bool("no-require-success")}
			if v := c.Int64("delta-version"); v >= 0 {
				opts.DeltaVersion = &v
			}
			if c.IsSet("snapshot-id") {
				v := c.Int64("snapshot-id")
				opts.SnapshotID = &v
			}
			if c.IsSet("as-of") {
				opts.AsOf = c.Timestamp("as-of")
			}
			in, err := pipeline.Inspect(c.Context, c.Args().First(), opts)
			if in != nil {
				if perr := p.print(in, func(w *tw) { inspectText(w, in) }); perr != nil {
					return perr
				}
			}
			return err
		},
	}
}

func inspectText(w *tw, in *pipeline.Inspection) {
	w.line("%s: %d files, %d rows", in.URL, len(in.Files), in.Rows)
	if in.DeltaVersion != nil {
		w.line("delta version: %d", *in.DeltaVersion)
	}
	if ic := in.Iceberg; ic != nil {
		if ic.SnapshotID == 0 {
			w.line("iceberg: no snapshot yet (%s)", ic.MetadataFile)
		} else {
			w.line("iceberg snapshot: %d, sequence number %d, %s (%s)", ic.SnapshotID, ic.Sequence, ic.Timestamp.Format(time.RFC3339), ic.MetadataFile)
		}
		for _, d := range ic.DeleteFiles {
			w.line("  deletes\t%s", d)
		}
	}
	for _, f := range in.Files {
		w.line("  read\t%s\t%d rows\t%s\tspark %s", f.Path, f.Rows, bytesText(f.Size), f.SparkVersion)
		if f.DeletedRows > 0 {
			w.line("    less\t%d deleted rows\t%s", f.DeletedRows, f.DeletionVector)
		}
	}
	for _, s := range in.Skipped {
		w.line("  skip\t%s\t%s", s.Path, s.Reason)
	}
	for _, p := range in.Partitions {
		w.line("partition %s: %s", p.Name, p.TypeName)
	}
	if in.Schema != "" {
		w.line("%s", in.Schema)
	}
	if in.SparkSchema != "" {
		w.line("spark schema: %s", in.SparkSchema)
	}
	for _, u := range in.Unsupported {
		w.line("unsupported: %s", u)
	}
}
