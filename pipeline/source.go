package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lockstep-data/lockstep/pipeline/reader"
	"github.com/lockstep-data/lockstep/publish"
)

// Source is one input resolved to exact files, in the canonical order
// (invariant 10: by path; within a file by row group, then row).
type Source struct {
	Name  string
	URL   string // redacted
	Files []publish.InputFile
	// Partitions are the hive partition columns, appended to every record
	// after the file's own columns, or in place of a file column of the
	// same name (Spark's rule: the partition value wins); parts[i] holds
	// file i's values, and partAt[j] which partition field j of the merged
	// schema is (-1: a file column).
	Partitions []Partition
	parts      [][]*string
	partAt     []int
	// DeltaVersion is the Delta table version read, for a Delta table.
	DeltaVersion *int64
	// Iceberg is the Iceberg snapshot read, for an Iceberg table.
	Iceberg *IcebergRead
	// deletes are the rows each file's table deletes (nil: none), mapping
	// a Delta table's column mapping (nil: none).
	deletes []rowDeletes
	mapping *columnMapping
	// iceberg is an Iceberg table's schema, which every file is read as
	// (iceberg_schema.go), and its Arrow form.
	iceberg      *iceberg.Schema
	icebergArrow *arrow.Schema
	// icebergConsts are each file's identity partition values, by source
	// field id, which a file without the column reads from; icebergNames
	// the table's name mapping, for files without field ids.
	icebergConsts []map[int]any
	icebergNames  iceberg.NameMapping
	// tableFields is a Delta table's schema: columns no file holds are
	// read as nulls, as Spark reads them.
	tableFields []*deltaField
	// SparkSchema is Spark's schema from the first footer that names one
	// (org.apache.spark.sql.parquet.row.metadata).
	SparkSchema string
	// Parallelism is how many part files Scan reads at once; 0 means one
	// per core (GOMAXPROCS).
	Parallelism int
	bucket      *blob.Bucket
	raw         string            // a file input's object key ("" for Spark output)
	rawMode     fs.FileMode       // a file input's mode (a local file's own, else 0644)
	fileMemory  int64             // each file's memory budget; 0: the reader's default
	onFile      func(path string) // called by Scan before each file's records
	schema      *arrow.Schema     // merged, with partitions; set by Schema
}

// Skipped is a file discovery left out, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// skipReason says why Spark would not read path (relative to the input
// root), or "" if it would.
func skipReason(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		dir := i < len(parts)-1
		switch {
		case p == "_temporary" && dir:
			return "uncommitted attempt folder _temporary/"
		case strings.HasPrefix(p, ".spark-staging") && dir:
			return "Spark staging folder"
		case strings.HasPrefix(p, "__magic") && dir:
			return "S3A magic committer folder"
		case strings.HasPrefix(p, "."):
			return "hidden name (starts with '.')"
		case strings.HasPrefix(p, "_") && !strings.Contains(p, "="):
			return "metadata name (starts with '_')"
		}
	}
	name := parts[len(parts)-1]
	switch {
	case strings.HasSuffix(name, ".crc"):
		return "checksum file"
	case strings.HasSuffix(name, "._COPYING_"):
		return "file still being copied"
	}
	return ""
}

// Discover lists the Parquet files of a Spark output folder or Delta table.
// A folder holding _delta_log/ is read as a Delta table at its latest
// version; DiscoverOptions.DeltaVersion picks another.
func Discover(ctx context.Context, name, rawURL string, requireSuccess bool) (*Source, []Skipped, error) {
	return DiscoverWith(ctx, name, rawURL, DiscoverOptions{RequireSuccess: requireSuccess})
}

// DiscoverOptions tune discovery.
type DiscoverOptions struct {
	RequireSuccess bool   // refuse a plain folder without _SUCCESS
	DeltaVersion   *int64 // a Delta table's version; nil for the latest
	// PartitionTypes declares hive partition column types by Spark SQL name
	// (string, int, bigint, double, date, timestamp); others are inferred.
	PartitionTypes map[string]string
	// FileMemory is each file's memory budget (reader.Limits.MaxFileMemory);
	// 0 for the default.
	FileMemory int64
	// Format is the table format the spec declares ("iceberg", "delta",
	// "parquet" for a plain folder), or "" to detect it: a folder with
	// _delta_log/ is Delta, else one with metadata/v<N>.metadata.json or
	// metadata/version-hint.text is Iceberg.
	Format string
	// SnapshotID and AsOf pick an Iceberg table's snapshot (at most one);
	// nil for the current one.
	SnapshotID *int64
	AsOf       *time.Time
	// SchemaID reads an Iceberg table with this schema of its metadata:
	// what rebuild pins, as a build read it. nil: the current schema, or
	// the snapshot's when one is picked.
	SchemaID *int
}

// IcebergRead is the Iceberg snapshot an input read.
type IcebergRead struct {
	SnapshotID   int64     `json:"snapshot_id"` // 0: the table has no snapshot yet
	Sequence     int64     `json:"sequence_number"`
	SchemaID     int       `json:"schema_id"` // the schema read: the snapshot's when pinned, else the current one
	Timestamp    time.Time `json:"timestamp"`
	MetadataFile string    `json:"metadata_file"` // relative to the table
	DeleteFiles  []string  `json:"delete_files,omitempty"`
}

// DiscoverWith is Discover with options.
func DiscoverWith(ctx context.Context, name, rawURL string, opts DiscoverOptions) (src *Source, skipped []Skipped, err error) {
	loc, err := publish.ParseLocation(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	b, err := loc.OpenBucket(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	src = &Source{Name: name, URL: loc.Redacted(), bucket: b, fileMemory: opts.FileMemory}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	var objs []*blob.ListObject
	it := b.List(&blob.ListOptions{})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: input %q: list %s: %v", ErrInput, name, src.URL, err)
		}
		if !obj.IsDir {
			objs = append(objs, obj)
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	format := opts.Format
	if format == "" {
		format = "parquet"
		for _, o := range objs {
			switch {
			case strings.HasPrefix(o.Key, "_delta_log/"):
				format = "delta" // a Delta table with Iceberg metadata too (UniForm) is read as Delta
			case format == "parquet" && isIcebergKey(o.Key):
				format = "iceberg"
			}
		}
	}
	if format != "iceberg" && (opts.SnapshotID != nil || opts.AsOf != nil) {
		return nil, nil, fmt.Errorf("%w: input %q: snapshot_id: and as_of: are for Iceberg tables, and %s is %s", ErrSpec, name, src.URL, map[string]string{"delta": "a Delta table (use delta_version:)", "parquet": "a plain folder of Spark output"}[format])
	}
	var kept []*blob.ListObject
	var parts [][]*string
	switch format {
	case "delta":
		snap, err := deltaSnapshot(ctx, b, opts.DeltaVersion, objs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: input %q: Delta table at %s: %w", ErrInput, name, src.URL, err)
		}
		v := snap.version
		src.DeltaVersion, src.Partitions = &v, snap.partitions
		kept, parts = snap.files, snap.values
		src.mapping, src.tableFields = snap.mapping, snap.fields
		src.deletes = make([]rowDeletes, len(snap.dvs))
		for i, dv := range snap.dvs {
			if dv != nil {
				src.deletes[i] = dv
			}
		}
		inLog := map[string]bool{}
		for _, o := range kept {
			inLog[o.Key] = true
		}
		for _, o := range objs {
			if !inLog[o.Key] && !strings.HasPrefix(o.Key, "_delta_log/") {
				skipped = append(skipped, Skipped{Path: o.Key, Reason: fmt.Sprintf("not in the Delta log at version %d", v)})
			}
		}
	case "iceberg":
		snap, err := icebergSnapshot(ctx, b, objs, opts.SnapshotID, opts.AsOf, opts.SchemaID)
		if err != nil {
			kind := ErrInput
			if errors.Is(err, ErrIcebergFeature) {
				kind = ErrIcebergFeature
			}
			return nil, nil, fmt.Errorf("%w: input %q: Iceberg table at %s: %w", kind, name, src.URL, err)
		}
		if src.icebergArrow, err = icebergArrowSchema(snap.schema); err != nil {
			return nil, nil, fmt.Errorf("%w: input %q: Iceberg table at %s: %w", ErrIcebergFeature, name, src.URL, err)
		}
		src.iceberg, src.deletes, kept = snap.schema, snap.deletes, snap.files
		src.icebergConsts, src.icebergNames = snap.consts, snap.names
		src.Iceberg = &IcebergRead{SnapshotID: snap.snapshotID, Sequence: snap.sequence, SchemaID: snap.schema.ID, Timestamp: snap.timestamp,
			MetadataFile: snap.metadataKey, DeleteFiles: snap.deleteFiles}
		live := map[string]bool{}
		for _, o := range kept {
			live[o.Key] = true
		}
		for _, k := range snap.liveDeletes {
			live[k] = true
		}
		for _, o := range objs {
			if live[o.Key] || strings.HasPrefix(o.Key, "metadata/") {
				continue
			}
			why := skipReason(o.Key) // Hadoop's .crc files, hidden names
			if why == "" {
				why = fmt.Sprintf("not live in snapshot %d", snap.snapshotID)
			}
			skipped = append(skipped, Skipped{Path: o.Key, Reason: why})
		}
	case "parquet":
		kept, skipped, err = plainFiles(ctx, b, objs, opts.RequireSuccess)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: input %q at %s: %w", ErrInput, name, src.URL, err)
		}
		if kept, parts, src.Partitions, err = plainPartitions(kept, opts.PartitionTypes); err != nil {
			return nil, nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
		}
	default:
		return nil, nil, fmt.Errorf("%w: input %q: format %q: want iceberg, delta or parquet", ErrSpec, name, format)
	}
	// Each file's magic and checksum, several at once: a round trip each on
	// a cloud store, a sha256 of the bytes on a local one.
	files := make([]publish.InputFile, len(kept))
	errs := make([]error, len(kept))
	sem := make(chan struct{}, identifyParallel)
	var wg sync.WaitGroup
	for i, obj := range kept {
		if err := ctx.Err(); err != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := checkMagic(ctx, b, obj); err != nil {
				errs[i] = fmt.Errorf("%w: input %q: %s: %v", ErrInput, name, obj.Key, err)
				return
			}
			sum, err := checksum(ctx, b, loc, obj)
			if err != nil {
				errs[i] = fmt.Errorf("%w: input %q: %s: %v", ErrInput, name, obj.Key, err)
				return
			}
			files[i] = publish.InputFile{Path: obj.Key, Size: obj.Size, Checksum: sum}
			if src.deletes != nil && src.deletes[i] != nil {
				files[i].DeletionVector, files[i].DeletedRows = src.deletes[i].id(), src.deletes[i].count()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, nil, err // the first in path order
		}
	}
	src.Files = append(src.Files, files...)
	src.parts = parts
	if len(src.Files) == 0 && format == "parquet" {
		return nil, nil, fmt.Errorf("%w: input %q: no data files at %s", ErrInput, name, src.URL)
	}
	return src, skipped, nil
}

// plainFiles applies Spark's rules for which files of an output folder are
// data: the skip list, _SUCCESS, zero-length files (Spark's file scan drops
// them), and Databricks' DBIO commit markers.
//
// DBIO markers are per folder, as Databricks reads them: each partition
// folder has its own _started_<tid> and _committed_<tid> for one
// transaction id. A _committed_<tid> marker lists the files its transaction
// added and the files it removed ({"added": [...], "removed": [...]},
// names relative to its folder):
//   - a part file of transaction tid whose folder has _started_<tid> but no
//     _committed_<tid> is an uncommitted attempt's;
//   - one that its folder's _committed_<tid> does not list as added is a
//     failed task attempt's;
//   - one that any committed marker of its folder lists as removed was
//     replaced by a later transaction.
//
// A 0-byte _committed_ marker is not a commit (Databricks ignores it).
//
// A folder with a _spark_metadata/ log is a Structured Streaming sink, whose
// files Spark reads only as the log lists them; it is refused rather than
// read wrongly.
func plainFiles(ctx context.Context, b *blob.Bucket, objs []*blob.ListObject, requireSuccess bool) (kept []*blob.ListObject, skipped []Skipped, err error) {
	type txn struct{ dir, tid string }
	success := false
	started, committed := map[txn]bool{}, map[txn]bool{}
	added := map[txn]map[string]bool{}        // the files a _committed_ marker lists as added
	removed := map[string]map[string]string{} // folder -> file -> tid of the marker that removed it
	for _, o := range objs {
		base, dir := path.Base(o.Key), path.Dir(o.Key)
		switch {
		case o.Key == "_SUCCESS":
			success = true
		case strings.HasPrefix(o.Key, "_spark_metadata/"):
			return nil, nil, fmt.Errorf("%w: this folder is a Structured Streaming sink (it has a _spark_metadata/ log), whose files Spark reads only as that log lists them; point the input at a batch job's output, or write the stream to a Delta table", ErrUnsupported)
		case strings.HasPrefix(base, "_started_"):
			started[txn{dir, strings.TrimPrefix(base, "_started_")}] = true
		case strings.HasPrefix(base, "_committed_") && o.Size > 0:
			t := txn{dir, strings.TrimPrefix(base, "_committed_")}
			m, err := commitMarker(ctx, b, o)
			if err != nil {
				return nil, nil, err
			}
			committed[t] = true
			if m.Added != nil {
				added[t] = map[string]bool{}
				for _, f := range m.Added {
					added[t][path.Base(f)] = true
				}
			}
			for _, f := range m.Removed {
				if removed[dir] == nil {
					removed[dir] = map[string]string{}
				}
				removed[dir][path.Base(f)] = t.tid
			}
		}
	}
	for _, o := range objs {
		if why := skipReason(o.Key); why != "" {
			skipped = append(skipped, Skipped{Path: o.Key, Reason: why})
			continue
		}
		base, dir := path.Base(o.Key), path.Dir(o.Key)
		if o.Size == 0 {
			skipped = append(skipped, Skipped{Path: o.Key, Reason: "empty file (0 bytes): Spark's file scan skips it"})
			continue
		}
		if by, ok := removed[dir][base]; ok {
			skipped = append(skipped, Skipped{Path: o.Key, Reason: "removed by a later Databricks commit (" + path.Join(dir, "_committed_"+by) + " lists it as removed)"})
			continue
		}
		if tid := databricksTID(base); tid != "" {
			t := txn{dir, tid}
			if started[t] && !committed[t] {
				skipped = append(skipped, Skipped{Path: o.Key, Reason: "uncommitted Databricks attempt (" + path.Join(dir, "_started_"+tid) + " without a non-empty _committed_" + tid + ")"})
				continue
			}
			if added[t] != nil && !added[t][base] {
				skipped = append(skipped, Skipped{Path: o.Key, Reason: "not among the files " + path.Join(dir, "_committed_"+tid) + " lists (a failed task attempt)"})
				continue
			}
		}
		kept = append(kept, o)
	}
	if requireSuccess && !success {
		return nil, nil, fmt.Errorf("%w: the Spark job may not have finished; wait for it, or set require_success: false", ErrNoSuccess)
	}
	return kept, skipped, nil
}

// commitMark is a Databricks _committed_<tid> marker.
type commitMark struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// commitMarker reads a non-empty Databricks _committed_<tid> marker.
func commitMarker(ctx context.Context, b *blob.Bucket, o *blob.ListObject) (*commitMark, error) {
	if o.Size > 64<<20 {
		return nil, fmt.Errorf("%s: %d bytes is too large for a commit marker; remove it if it is not Databricks'", o.Key, o.Size)
	}
	data, err := b.ReadAll(ctx, o.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", o.Key, err)
	}
	var m commitMark
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: not a Databricks commit marker ({\"added\": [...], \"removed\": [...]}): %v; remove it, or fix the job that wrote it", o.Key, err)
	}
	return &m, nil
}

// databricksTID returns the transaction id in a DBIO part file name
// (part-00000-tid-<id>-<uuid>-c000.snappy.parquet), or "".
func databricksTID(name string) string {
	_, rest, ok := strings.Cut(name, "-tid-")
	if !ok {
		return ""
	}
	tid, _, _ := strings.Cut(rest, "-")
	return tid
}

// plainPartitions reads hive partition folders from the kept files' paths
// and infers each column's type over all its values.
func plainPartitions(kept []*blob.ListObject, declared map[string]string) ([]*blob.ListObject, [][]*string, []Partition, error) {
	var names []string
	var parts [][]*string
	for i, o := range kept {
		n, v, err := hivePartitions(o.Key)
		if err != nil {
			return nil, nil, nil, err
		}
		if i == 0 {
			names = n
		} else if strings.Join(n, "/") != strings.Join(names, "/") {
			return nil, nil, nil, fmt.Errorf("%s is partitioned by %v but %s by %v; Spark refuses mixed partition layouts too", o.Key, n, kept[0].Key, names)
		}
		parts = append(parts, v)
	}
	var out []Partition
	for c, name := range names {
		col := make([]*string, len(parts))
		for i := range parts {
			col[i] = parts[i][c]
		}
		t := inferPartitionType(col)
		if typ, ok := declared[name]; ok {
			paths := make([]string, len(kept))
			for i, o := range kept {
				paths[i] = o.Key
			}
			var err error
			if t, err = declaredPartitionType(name, typ, col, paths); err != nil {
				return nil, nil, nil, err
			}
		}
		out = append(out, Partition{Name: name, Type: t, TypeName: t.String()})
	}
	for name := range declared {
		if !slices.Contains(names, name) {
			return nil, nil, nil, fmt.Errorf("the spec declares a type for partition %q, but the files are partitioned by %v", name, names)
		}
	}
	return kept, parts, out, nil
}

// checkMagic confirms a file is Parquet by its bytes, not its name.
func checkMagic(ctx context.Context, b *blob.Bucket, o *blob.ListObject) error {
	if o.Size < 12 {
		return fmt.Errorf("not Parquet: %d bytes; remove it from the output folder", o.Size)
	}
	var head, tail [4]byte
	ra := &blobReaderAt{ctx: ctx, b: b, key: o.Key}
	if _, err := ra.ReadAt(head[:], 0); err != nil {
		return err
	}
	if _, err := ra.ReadAt(tail[:], o.Size-4); err != nil {
		return err
	}
	if string(head[:]) == "PARE" || string(tail[:]) == "PARE" {
		return reader.ErrEncrypted
	}
	if string(head[:]) != "PAR1" || string(tail[:]) != "PAR1" {
		return fmt.Errorf("not Parquet (no PAR1 magic); remove it from the output folder, Spark would fail on it too")
	}
	return nil
}

// identifyParallel is how many files discovery checks at once.
const identifyParallel = 8

// checksum identifies a file's content for the build fingerprint: the
// store's MD5 where it keeps one, a sha256 of the bytes for local files, the
// ETag otherwise (S3, GCS and Azure change it whenever the content changes).
func checksum(ctx context.Context, b *blob.Bucket, loc *publish.Location, obj *blob.ListObject) (string, error) {
	if len(obj.MD5) > 0 {
		return "md5:" + hex.EncodeToString(obj.MD5), nil
	}
	if loc.LocalDir == "" {
		attrs, err := b.Attributes(ctx, obj.Key)
		if err != nil {
			return "", err
		}
		if len(attrs.MD5) > 0 {
			return "md5:" + hex.EncodeToString(attrs.MD5), nil
		}
		if attrs.ETag != "" {
			return "etag:" + strings.Trim(attrs.ETag, `"`), nil
		}
	}
	r, err := b.NewReader(ctx, obj.Key, nil)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Close releases the source's bucket.
func (s *Source) Close() error { return s.bucket.Close() }

// blobReaderAt reads byte ranges of one object.
type blobReaderAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return 0, fmt.Errorf("%s vanished while being read: %w", r.key, err)
		}
		return 0, err
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// Schema reads every file's footer and returns the merged Arrow schema,
// partition columns last. It also records Spark's schema for lineage.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	if s.schema != nil {
		return s.schema, nil
	}
	m := newSchemaMerger()
	geo := "" // GeoParquet's metadata, which the geo format reads
	for i, in := range s.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := s.open(ctx, in)
		if err != nil {
			return nil, err
		}
		if v, ok := f.KeyValue("org.apache.spark.sql.parquet.row.metadata"); ok && s.SparkSchema == "" {
			s.SparkSchema = v
		}
		if v, ok := f.KeyValue("geo"); ok && geo == "" {
			geo = v
		}
		fs, _, err := s.project(f, i)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %s: %v", ErrInput, s.Name, in.Path, err)
		}
		if err := m.add(in.Path, fs); err != nil {
			return nil, fmt.Errorf("%w: input %q: %v", ErrInput, s.Name, err)
		}
	}
	fields := m.merged()
	if s.iceberg != nil {
		fields = s.icebergArrow.Fields() // every file reads as it, and so does a table of none
	}
	isPart := map[string]bool{}
	for _, p := range s.Partitions {
		isPart[p.Name] = true
	}
	for _, tf := range s.tableFields {
		if _, inFiles := m.index[tf.Name]; inFiles || isPart[tf.Name] {
			continue
		}
		// In the table, in no file (added since, and not yet written):
		// a column of nulls, as Spark reads it.
		if t, ok := tf.Type.arrowType(); ok {
			fields = append(fields, arrow.Field{Name: tf.Name, Type: t, Nullable: true})
		}
	}
	s.partAt = make([]int, len(fields), len(fields)+len(s.Partitions))
	for j := range s.partAt {
		s.partAt[j] = -1
	}
	for pi, p := range s.Partitions {
		f := arrow.Field{Name: p.Name, Type: p.Type, Nullable: true}
		if j, dup := m.index[p.Name]; dup {
			// Written into the files too (a job that selects the column and
			// partitions by it): as Spark reads it, the column keeps its
			// place and takes the folder's value and type.
			fields[j], s.partAt[j] = f, pi
			continue
		}
		fields = append(fields, f)
		s.partAt = append(s.partAt, pi)
	}
	var meta *arrow.Metadata
	if geo != "" {
		md := arrow.NewMetadata([]string{"geo"}, []string{geo})
		meta = &md
	}
	s.schema = arrow.NewSchema(fields, meta)
	return s.schema, nil
}

// project is file f's schema as the table sees it, and the function that
// maps its records (nil: none needed): Delta's column mapping.
func (s *Source) project(f *reader.File, i int) (*arrow.Schema, func(arrow.RecordBatch) arrow.RecordBatch, error) {
	if s.iceberg != nil {
		fn, err := icebergProject(s.iceberg, s.icebergArrow, f.Schema(), f.FieldIDs(), s.icebergConsts[i], s.icebergNames)
		return s.icebergArrow, fn, err
	}
	if s.mapping == nil {
		return f.Schema(), nil, nil
	}
	return s.mapping.project(f.Schema(), f.FieldIDs())
}

func (s *Source) open(ctx context.Context, in publish.InputFile) (*reader.File, error) {
	lim := reader.DefaultLimits
	if s.fileMemory > 0 {
		lim.MaxFileMemory = s.fileMemory
	}
	f, err := reader.OpenLimits(&blobReaderAt{ctx: ctx, b: s.bucket, key: in.Path}, in.Size, s.URL+"/"+in.Path, lim)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %w", ErrInput, s.Name, err)
	}
	return f, nil
}

// schemaText is a schema's fields as the manifest records them, without
// its metadata (a GeoParquet file's is kilobytes of JSON).
func schemaText(s *arrow.Schema) string { return arrow.NewSchema(s.Fields(), nil).String() }
