package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// icebergTables is the warehouse testdata/spark/gen_iceberg.py wrote.
func icebergTables(t *testing.T) string {
	t.Helper()
	return sparkOut(t, "iceberg", "no Iceberg tables: LOCKSTEP_SPARK_JARS had no iceberg-spark-runtime")
}

// TestIcebergSpark reads every table gen_iceberg.py wrote, at its current
// snapshot and at the older snapshots it names, and compares each value
// with what Spark read of the same snapshot.
func TestIcebergSpark(t *testing.T) {
	dir := icebergTables(t)
	// deletes: rows are deleted, by deletes whose id starts with prefix.
	deletes := func(prefix, what string) func(t *testing.T, src *Source) {
		return func(t *testing.T, src *Source) {
			if len(src.Iceberg.DeleteFiles) == 0 {
				t.Errorf("no delete file applied: want the %s Spark wrote", what)
			}
			n := int64(0)
			for _, f := range src.Files {
				n += f.DeletedRows
				if f.DeletedRows > 0 && !strings.HasPrefix(f.DeletionVector, prefix) {
					t.Errorf("%s: deletes %q, want %s", f.Path, f.DeletionVector, what)
				}
			}
			if n == 0 {
				t.Errorf("no row deleted by %s", what)
			}
		}
	}
	cases := map[string]func(t *testing.T, src *Source){
		"append": func(t *testing.T, src *Source) {
			if len(src.Files) < 4 || len(src.Iceberg.DeleteFiles) != 0 {
				t.Errorf("%d files, %d delete files: want two appends of two files each and no deletes", len(src.Files), len(src.Iceberg.DeleteFiles))
			}
		},
		"overwrite":           nil,
		"dv":                  deletes("dv:", "deletion vectors"),
		"delete":              deletes("pos:", "position deletes"),
		"update":              deletes("pos:", "position deletes"),
		"partition_evolution": nil,
		"expired":             nil,
		"migrated": func(t *testing.T, src *Source) {
			// add_files of Hive-style Parquet: no field ids, no region column in the files.
			if len(src.Files) != 3 {
				t.Errorf("%d files, want the three partitions' imported files", len(src.Files))
			}
		},
		"schema": func(t *testing.T, src *Source) {
			s, _ := src.Schema(context.Background())
			var names []string
			for _, f := range s.Fields() {
				names = append(names, f.Name)
			}
			if want := []string{"id", "label", "st", "score", "note"}; !slices.Equal(names, want) {
				t.Errorf("columns %v, want the table's %v", names, want)
			}
		},
		"promote": func(t *testing.T, src *Source) {
			s, _ := src.Schema(context.Background())
			for col, want := range map[string]arrow.DataType{"i": arrow.PrimitiveTypes.Int64, "f": arrow.PrimitiveTypes.Float64,
				"dec": &arrow.Decimal128Type{Precision: 18, Scale: 2}} {
				if f, ok := s.FieldsByName(col); !ok || !arrow.TypeEqual(f[0].Type, want) {
					t.Errorf("column %s: %v, want the promoted %s", col, f, want)
				}
			}
		},
	}
	values := 0
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			url := "file://" + filepath.Join(dir, "db", name)
			src, _, got := scanRows(t, url, DiscoverOptions{})
			if src.Iceberg == nil || src.Iceberg.SnapshotID == 0 {
				t.Fatalf("read as %+v, want an Iceberg snapshot", src.Iceberg)
			}
			if check != nil {
				check(t, src)
			}
			values += sameRows(t, got, readJSONL(t, filepath.Join(dir, name+".jsonl")))
			var snaps map[string]string
			raw, err := os.ReadFile(filepath.Join(dir, name+".snapshots.json"))
			if err != nil || json.Unmarshal(raw, &snaps) != nil {
				t.Fatalf("%s.snapshots.json: %v", name, err)
			}
			for sid, what := range snaps {
				id, err := strconv.ParseInt(sid, 10, 64)
				if err != nil {
					continue
				}
				src, _, got := scanRows(t, url, DiscoverOptions{SnapshotID: &id})
				if src.Iceberg.SnapshotID != id {
					t.Errorf("snapshot_id %d read snapshot %d", id, src.Iceberg.SnapshotID)
				}
				t.Logf("snapshot %d (%s)", id, what)
				values += sameRows(t, got, readJSONL(t, filepath.Join(dir, name+"@"+sid+".jsonl")))
			}
			if old, ok := snaps["expired"]; ok {
				id, _ := strconv.ParseInt(old, 10, 64)
				_, _, err := DiscoverWith(context.Background(), "in", url, DiscoverOptions{SnapshotID: &id})
				if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "expire_snapshots") || !strings.Contains(err.Error(), old) {
					t.Errorf("snapshot %d, expired: %v; want an input error naming it and expire_snapshots", id, err)
				}
			}
		})
	}
	t.Run("eq_deletes", func(t *testing.T) {
		// Spark writes no equality deletes: gen_iceberg.py commits one with
		// Iceberg's Java API. lockstep refuses them, saying what to do.
		_, _, err := DiscoverWith(context.Background(), "in", "file://"+filepath.Join(dir, "db", "eq_deletes"), DiscoverOptions{})
		if !errors.Is(err, ErrIcebergFeature) || !strings.Contains(err.Error(), "equality delete") || !strings.Contains(err.Error(), "rewrite_data_files") {
			t.Errorf("equality deletes: %v; want ErrIcebergFeature saying to compact the table", err)
		}
	})
	t.Logf("%d values compared with Spark's", values)
}
