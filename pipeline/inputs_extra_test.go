package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/formats/all"
)

// TestDeclaredPartitionTypes: a type the spec declares replaces Spark's
// inference, and a value that does not parse as it is an error naming the file.
func TestDeclaredPartitionTypes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "k=007/part-0.parquet"), []wide{{1, 1, nil}})
	writeFile(t, filepath.Join(dir, "k=8/part-0.parquet"), []wide{{2, 2, nil}})
	ctx := context.Background()
	src, _, err := DiscoverWith(ctx, "t", "file://"+dir, DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Partitions[0].Type; got.ID() != arrow.INT32 {
		t.Errorf("inferred %s, want int32", got)
	}
	src.Close()
	src, _, rows := scanRows(t, "file://"+dir, DiscoverOptions{PartitionTypes: map[string]string{"k": "string"}})
	if src.Partitions[0].Type.ID() != arrow.STRING || rows[0]["k"] != "007" || rows[1]["k"] != "8" {
		t.Errorf("declared string: %s, rows %v", src.Partitions[0].Type, rows)
	}
	_, _, err = DiscoverWith(ctx, "t", "file://"+dir, DiscoverOptions{PartitionTypes: map[string]string{"k": "date"}})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "k=007/part-0.parquet") || !strings.Contains(err.Error(), "not a date") {
		t.Errorf("declared date over ints: want an error naming the file, got %v", err)
	}
	_, _, err = DiscoverWith(ctx, "t", "file://"+dir, DiscoverOptions{PartitionTypes: map[string]string{"day": "date"}})
	if err == nil || !strings.Contains(err.Error(), `partition "day"`) {
		t.Errorf("declared type for a missing partition: got %v", err)
	}
}

// TestCommittedMarkerList: a _committed_<id> marker's list of added files is
// honoured: its transaction's other files are a failed attempt's. An empty
// marker is no commit.
func TestCommittedMarkerList(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "part-00000-tid-42-a-c000.snappy.parquet"), []wide{{1, 1, nil}})
	writeFile(t, filepath.Join(dir, "part-00000-tid-42-b-c000.snappy.parquet"), []wide{{2, 2, nil}})
	writeFile(t, filepath.Join(dir, "part-00001-tid-43-c-c000.snappy.parquet"), []wide{{3, 3, nil}})
	for name, body := range map[string]string{
		"_SUCCESS": "", "_started_42": "", "_started_43": "", "_committed_43": "",
		"_committed_42": `{"added":["part-00000-tid-42-a-c000.snappy.parquet"],"removed":[]}`,
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	src, skipped, err := DiscoverWith(context.Background(), "t", "file://"+dir, DiscoverOptions{RequireSuccess: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for _, f := range src.Files {
		got = append(got, f.Path)
	}
	// tid 43's marker is empty: Databricks does not count it as a commit,
	// so its started transaction's file is an uncommitted attempt's.
	want := []string{"part-00000-tid-42-a-c000.snappy.parquet"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v (skipped %v)", got, want, skipped)
	}
	os.WriteFile(filepath.Join(dir, "_committed_42"), []byte("{not json"), 0o644)
	_, _, err = DiscoverWith(context.Background(), "t", "file://"+dir, DiscoverOptions{RequireSuccess: true})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "_committed_42") {
		t.Errorf("corrupt marker: want an error naming it, got %v", err)
	}
}

// TestDBIOPartitioned: Databricks' DBIO commit protocol in partitioned
// output, where every partition folder has its own markers for the same
// transaction id. The layout is built by hand, as Databricks would write
// it: Databricks cannot run here.
//   - tid 7 wrote region=eu and region=us, each folder with its own
//     _started_7 and _committed_7 listing that folder's file; each folder
//     also holds a failed attempt's file that its marker does not list;
//   - tid 8 replaced region=us's file: its _committed_8 lists the new file
//     as added and tid 7's as removed;
//   - a 0-byte part file is skipped, as Spark's file scan does.
//
// Before the fix, markers were keyed by tid across folders, so one folder's
// list replaced the other's and eu's committed file was skipped (rows lost,
// exit 0), and removed lists were ignored (replaced rows read twice).
func TestDBIOPartitioned(t *testing.T) {
	dir := t.TempDir()
	file := func(rel string, id int64) {
		writeFile(t, filepath.Join(dir, rel), []wide{{id, float64(id), nil}})
	}
	file("region=eu/part-00000-tid-7-a-c000.snappy.parquet", 1)
	file("region=eu/part-00001-tid-7-x-c000.snappy.parquet", 91) // failed attempt
	file("region=us/part-00000-tid-7-b-c000.snappy.parquet", 2)  // replaced by tid 8
	file("region=us/part-00001-tid-7-y-c000.snappy.parquet", 92) // failed attempt
	file("region=us/part-00000-tid-8-c-c000.snappy.parquet", 3)
	for name, body := range map[string]string{
		"_SUCCESS":                                 "",
		"region=eu/_started_7":                     "",
		"region=eu/_committed_7":                   `{"added":["part-00000-tid-7-a-c000.snappy.parquet"],"removed":[]}`,
		"region=us/_started_7":                     "",
		"region=us/_committed_7":                   `{"added":["part-00000-tid-7-b-c000.snappy.parquet"],"removed":[]}`,
		"region=us/_started_8":                     "",
		"region=us/_committed_8":                   `{"added":["part-00000-tid-8-c-c000.snappy.parquet"],"removed":["part-00000-tid-7-b-c000.snappy.parquet"]}`,
		"region=eu/part-00009-c000.snappy.parquet": "", // 0 bytes
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	src, skipped, rows := scanRows(t, "file://"+dir, DiscoverOptions{RequireSuccess: true})
	var got []string
	for _, f := range src.Files {
		got = append(got, f.Path)
	}
	want := []string{"region=eu/part-00000-tid-7-a-c000.snappy.parquet", "region=us/part-00000-tid-8-c-c000.snappy.parquet"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v\nskipped %v", got, want, skipped)
	}
	if len(rows) != 2 || rows[0]["id"] != float64(1) || rows[0]["region"] != "eu" || rows[1]["id"] != float64(3) || rows[1]["region"] != "us" {
		t.Errorf("rows %v", rows)
	}
	reasons := map[string]string{}
	for _, s := range skipped {
		reasons[s.Path] = s.Reason
	}
	for p, w := range map[string]string{
		"region=us/part-00000-tid-7-b-c000.snappy.parquet": "region=us/_committed_8 lists it as removed",
		"region=eu/part-00001-tid-7-x-c000.snappy.parquet": "region=eu/_committed_7",
		"region=us/part-00001-tid-7-y-c000.snappy.parquet": "region=us/_committed_7",
		"region=eu/part-00009-c000.snappy.parquet":         "empty file",
	} {
		if !strings.Contains(reasons[p], w) {
			t.Errorf("%s: skipped because %q, want it to mention %q", p, reasons[p], w)
		}
	}
}

// TestStreamingSinkRefused: a Structured Streaming sink folder is refused,
// naming the _spark_metadata/ log, not read file by file.
func TestStreamingSinkRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "part-00000-a-c000.snappy.parquet"), []wide{{1, 1, nil}})
	os.MkdirAll(filepath.Join(dir, "_spark_metadata"), 0o755)
	os.WriteFile(filepath.Join(dir, "_spark_metadata", "0"), []byte("v1\n"), 0o644)
	_, _, err := DiscoverWith(context.Background(), "t", "file://"+dir, DiscoverOptions{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "_spark_metadata") {
		t.Fatalf("streaming sink: %v", err)
	}
}

// TestLastCheckpointFallback: a corrupt, stale or dangling _last_checkpoint
// gives the same snapshot as the listing (basic-with-inserts-deletes-checkpoint:
// a checkpoint at 10, commits to 13).
func TestLastCheckpointFallback(t *testing.T) {
	table := filepath.Join(fixtureRoot(t), "delta-golden", "basic-with-inserts-deletes-checkpoint")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(table)); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	read := func() (int64, []string, int64) {
		src, rows, err := readSource(context.Background(), "file://"+dir)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, f := range src.Files {
			files = append(files, f.Path)
		}
		src.Close()
		return *src.DeltaVersion, files, rows
	}
	v0, files0, rows0 := read()
	if v0 != 13 {
		t.Fatalf("version %d, want 13", v0)
	}
	for name, body := range map[string]string{
		"corrupt":  `{"version":10,"si`,
		"stale":    `{"version":0,"size":3}`,
		"dangling": `{"version":12,"size":30}`, // no checkpoint at 12
		"future":   `{"version":99,"size":30,"parts":2}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, "_delta_log", "_last_checkpoint"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		v, files, rows := read()
		if v != v0 || rows != rows0 || !reflect.DeepEqual(files, files0) {
			t.Errorf("%s _last_checkpoint: version %d, %d files, %d rows; want %d, %d, %d", name, v, len(files), rows, v0, len(files0), rows0)
		}
	}
}

// TestFingerprintCoversDeltaVersion: the same files read at another Delta
// version give another fingerprint.
func TestFingerprintCoversDeltaVersion(t *testing.T) {
	b := &Bundle{Digest: "d"}
	v1, v2 := int64(1), int64(2)
	a := fingerprint("x", b, []*Source{{Name: "in", DeltaVersion: &v1}})
	c := fingerprint("x", b, []*Source{{Name: "in", DeltaVersion: &v2}})
	p := fingerprint("x", b, []*Source{{Name: "in"}})
	if a == c || a == p {
		t.Errorf("fingerprints %s %s %s: the Delta version must count", a, c, p)
	}
}

// TestSpecInputKeys: partitions and delta_version parse into discovery
// options; a misspelt key and an unknown type are spec errors.
func TestSpecInputKeys(t *testing.T) {
	spec := func(input string) (*Spec, error) {
		text := "bundles:\n  a:\n    inputs: {p: {url: /tmp/x, " + input + "}}\n    assets: {p: {format: arrow, input: p}}\n"
		return ParseSpec("s.yaml", []byte(text), all.Registry())
	}
	s, err := spec("partitions: {day: date, k: string}, delta_version: 7, file_memory: 512MiB")
	if err != nil {
		t.Fatal(err)
	}
	opts := s.Bundles["a"].DiscoverOptions("p")
	if !opts.RequireSuccess || opts.DeltaVersion == nil || *opts.DeltaVersion != 7 || opts.PartitionTypes["day"] != "date" || opts.FileMemory != 512<<20 {
		t.Errorf("options %+v", opts)
	}
	for _, bad := range []string{"file_memory: 1MiB", "file_memory: lots"} {
		if _, err := spec(bad); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "file_memory") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := spec("partitons: {day: date}"); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), `unknown key "partitons"`) {
		t.Errorf("misspelt key: %v", err)
	}
	if _, err := spec("partitions: {day: datetime}"); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "datetime") {
		t.Errorf("unknown type: %v", err)
	}
}

// TestUnionNullability: a column required in one file and missing from
// another is nullable in the union (Spark's mergeSchema), so an Arrow asset
// never says "not null" over a null.
func TestUnionNullability(t *testing.T) {
	type withName struct {
		ID   int64  `parquet:"id"`
		Name string `parquet:"name"` // required
	}
	type noName struct {
		ID int64 `parquet:"id"`
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "part-00000-a.parquet"), []withName{{1, "a"}})
	writeFile(t, filepath.Join(dir, "part-00001-b.parquet"), []noName{{2}})
	src, _, rows := scanRows(t, "file://"+dir, DiscoverOptions{})
	f, _ := src.schema.FieldsByName("name")
	if len(f) != 1 || !f[0].Nullable {
		t.Fatalf("name in the union: %v", f)
	}
	if len(rows) != 2 || rows[0]["name"] != "a" || rows[1]["name"] != nil {
		t.Errorf("rows %v", rows)
	}
}

// TestPartitionColumnInFiles: a partition column also written into the
// files keeps its place and takes the folder's value, as Spark reads it
// (the real Spark case is partition_in_file in TestSparkInputs).
func TestPartitionColumnInFiles(t *testing.T) {
	type row struct {
		ID      int64  `parquet:"id"`
		Country string `parquet:"country"`
		Name    string `parquet:"name"`
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "country=de/part-00000-a.parquet"), []row{{1, "xx", "one"}, {2, "de", "two"}})
	src, _, rows := scanRows(t, "file://"+dir, DiscoverOptions{})
	if got := src.schema.Field(1); got.Name != "country" || src.schema.NumFields() != 3 {
		t.Fatalf("schema %s: want country in its place, once", src.schema)
	}
	if len(rows) != 2 || rows[0]["country"] != "de" || rows[1]["country"] != "de" || rows[0]["name"] != "one" {
		t.Errorf("rows %v: want the folder's value", rows)
	}
}
