package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// Inspection describes what a build would read at a URL.
type Inspection struct {
	URL          string        `json:"url"`
	Files        []InspectFile `json:"files"`
	Skipped      []Skipped     `json:"skipped"`
	Partitions   []Partition   `json:"partitions"`
	Schema       string        `json:"schema"`
	Columns      []Column      `json:"columns"` // the schema's top-level columns`
	SparkSchema  string        `json:"spark_schema"`
	Rows         int64         `json:"rows"`
	DeltaVersion *int64        `json:"delta_version,omitempty"`
	Iceberg      *IcebergRead  `json:"iceberg,omitempty"`
	Unsupported  []string      `json:"unsupported"`
}

// Column is one top-level column of a schema, for JSON readers.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// InspectFile is one file a build would read. Rows are the rows a build
// reads: the file's, less those its table deletes (a Delta deletion
// vector, Iceberg position deletes or deletion vector).
type InspectFile struct {
	Path           string `json:"path"`
	Size           int64  `json:"size"`
	Rows           int64  `json:"rows"`
	DeletedRows    int64  `json:"deleted_rows"`
	DeletionVector string `json:"deletion_vector"`
	SparkVersion   string `json:"spark_version"`
}

// Inspect discovers the input at url and reads every kept file's footer
// (not its rows). A refusal a build would hit is listed as unsupported; the
// error is non-nil only when nothing there is readable.
func Inspect(ctx context.Context, url string, opts DiscoverOptions) (*Inspection, error) {
	src, skipped, err := DiscoverWith(ctx, "inspect", url, opts)
	if err != nil {
		if errors.Is(err, ErrDeltaFeature) || errors.Is(err, ErrIcebergFeature) {
			return &Inspection{URL: url, Unsupported: []string{err.Error()}, Files: []InspectFile{}, Skipped: []Skipped{},
				Partitions: []Partition{}, Columns: []Column{}}, err
		}
		return nil, err
	}
	defer src.Close()
	in := &Inspection{URL: src.URL, Skipped: skipped, Partitions: src.Partitions, DeltaVersion: src.DeltaVersion,
		Iceberg: src.Iceberg, Files: []InspectFile{}, Columns: []Column{}, Unsupported: []string{}}
	if in.Skipped == nil {
		in.Skipped = []Skipped{}
	}
	if in.Partitions == nil {
		in.Partitions = []Partition{}
	}
	readable := 0
	for i, f := range src.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pf, err := src.open(ctx, f)
		if err != nil {
			in.Unsupported = append(in.Unsupported, err.Error())
			continue
		}
		if src.deletes != nil && src.deletes[i] != nil {
			// Loaded and checked as a build would, so a corrupt one is reported.
			if _, err := src.deletes[i].load(ctx, src.bucket, pf.NumRows()); err != nil {
				in.Unsupported = append(in.Unsupported, fmt.Sprintf("%s: %v", f.Path, err))
				continue
			}
		}
		readable++
		v, _ := pf.KeyValue("org.apache.spark.version")
		rows := pf.NumRows() - f.DeletedRows
		in.Files = append(in.Files, InspectFile{Path: f.Path, Size: f.Size, Rows: rows,
			DeletedRows: f.DeletedRows, DeletionVector: f.DeletionVector, SparkVersion: v})
		in.Rows += rows
	}
	if len(in.Unsupported) == 0 {
		schema, err := src.Schema(ctx)
		if err != nil {
			in.Unsupported = append(in.Unsupported, err.Error())
		} else {
			in.Schema, in.SparkSchema = schemaText(schema), src.SparkSchema
			for _, f := range schema.Fields() {
				in.Columns = append(in.Columns, Column{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable})
			}
		}
	}
	if readable == 0 && len(src.Files) > 0 {
		return in, fmt.Errorf("%w: nothing readable at %s", ErrInput, src.URL)
	}
	if len(in.Unsupported) > 0 {
		// The report is printed whole; the exit status says what build would do.
		return in, fmt.Errorf("%w: build would refuse this input: %s", ErrInput, in.Unsupported[0])
	}
	return in, nil
}
