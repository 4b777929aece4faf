package pipeline

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// Iceberg tables (docs/inputs.md): a folder with metadata/ (a Hadoop
// catalog's or a filesystem table). iceberg-go parses the metadata file and
// decodes the manifest list and manifests (Avro); lockstep plans the scan
// itself, from the Iceberg spec's rules ("Scan Planning"), and reads the
// data files with its own Parquet reader. iceberg-go's Scan.PlanFiles would
// do the planning too, but it sizes its buffers from the file counts the
// manifest list declares, so a hostile list makes it allocate at will
// before a byte is checked; planning over its streaming manifest reader
// allocates only for entries actually read.

// ErrIcebergFeature is an Iceberg table that needs something lockstep does
// not read yet (equality deletes, a type it cannot map): refused, naming
// what and what to do, rather than read wrongly.
var ErrIcebergFeature = errors.New("unsupported Iceberg feature")

// Limits on what an Iceberg table's metadata may make lockstep read into
// memory: a metadata file and each manifest list and manifest are read
// whole.
const (
	maxIcebergMetadata = 256 << 20
	maxIcebergManifest = 256 << 20
	// maxIcebergPositions bounds the rows position delete files may delete
	// in all: their positions are held in memory from discovery to scan
	// (as bitmaps: at most 32 MiB for this many).
	maxIcebergPositions = 1 << 28
)

// icebergSnap is what discovery needs of an Iceberg table at one snapshot.
type icebergSnap struct {
	metadataKey string // the metadata file read, relative to the table
	snapshotID  int64  // 0: the table has no snapshot
	sequence    int64
	timestamp   time.Time
	schema      *iceberg.Schema
	files       []*blob.ListObject // live data files, by key
	deletes     []rowDeletes       // per file: its position deletes (nil: none)
	deleteFiles []string           // every delete file applied, by key
	liveDeletes []string           // every live delete file, applied or not
	consts      []map[int]any      // per file: identity partition values by source field id
	names       iceberg.NameMapping
	positions   int64 // rows the position delete files delete, so far
}

var icebergMetaRe = regexp.MustCompile(`^metadata/v(\d+)(\.gz)?\.metadata\.json(\.gz)?$`)

// isIcebergKey says whether key marks an Iceberg table: a Hadoop table's
// metadata file or its version hint.
func isIcebergKey(key string) bool {
	return key == "metadata/version-hint.text" || icebergMetaRe.MatchString(key)
}

// icebergSnapshot reads an Iceberg table at its current snapshot, or the
// one snapshotID or asOf picks, and plans its scan.
func icebergSnapshot(ctx context.Context, b *blob.Bucket, objs []*blob.ListObject, snapshotID *int64, asOf *time.Time, schemaID *int) (snap *icebergSnap, err error) {
	defer func() {
		// iceberg-go trusts parts of what it decodes (an Avro schema without
		// the fields it expects, for one); a panic there is a corrupt table.
		if p := recover(); p != nil {
			snap, err = nil, fmt.Errorf("corrupt metadata: %v", p)
		}
	}()
	sizes := map[string]int64{}
	best, bestV := "", int64(-1)
	for _, o := range objs {
		sizes[o.Key] = o.Size
		if m := icebergMetaRe.FindStringSubmatch(o.Key); m != nil {
			if v, err := strconv.ParseInt(m[1], 10, 64); err == nil && v > bestV {
				best, bestV = o.Key, v
			}
		}
	}
	if best == "" {
		return nil, fmt.Errorf("metadata/ holds no v<N>.metadata.json: lockstep reads Hadoop-catalog and filesystem tables, whose metadata files are numbered so; a table of a REST, Glue or Hive catalog is not supported yet")
	}
	raw, err := readAllLimit(ctx, b, best, sizes[best], maxIcebergMetadata)
	if err != nil {
		return nil, err
	}
	if strings.Contains(best, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", best, err)
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, maxIcebergMetadata+1)); err != nil || len(raw) > maxIcebergMetadata {
			return nil, fmt.Errorf("%s: not gzip, or more than %d MiB of JSON", best, maxIcebergMetadata>>20)
		}
	}
	meta, err := table.ParseMetadataBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", best, err)
	}
	snap = &icebergSnap{metadataKey: best, schema: meta.CurrentSchema()}
	fsys := &icebergIO{ctx: ctx, b: b, loc: strings.TrimSuffix(normalizeIcebergPath(meta.Location()), "/"), sizes: sizes}

	var head struct {
		Current *int64 `json:"current-snapshot-id"`
	}
	_ = json.Unmarshal(raw, &head) // ParseMetadataBytes read it already
	s, pinned, err := pickIcebergSnapshot(meta, best, head.Current, snapshotID, asOf)
	if err != nil || s == nil {
		return snap, err // nil: a table with no snapshot yet holds no rows
	}
	snap.snapshotID, snap.sequence, snap.timestamp = s.SnapshotID, s.SequenceNumber, time.UnixMilli(s.TimestampMs).UTC()
	if schemaID != nil {
		snap.schema = nil
		for _, sc := range meta.Schemas() {
			if sc.ID == *schemaID {
				snap.schema = sc
			}
		}
		if snap.schema == nil {
			return nil, fmt.Errorf("%s has no schema %d", best, *schemaID)
		}
	} else if pinned && s.SchemaID != nil {
		// Read at an older snapshot, a table has the schema it had then, as
		// Spark reads it with snapshot-id or as-of-timestamp.
		for _, sc := range meta.Schemas() {
			if sc.ID == *s.SchemaID {
				snap.schema = sc
			}
		}
	}
	if snap.schema == nil {
		return nil, fmt.Errorf("%s: the snapshot's schema is not in the metadata", best)
	}
	snap.names = meta.NameMapping()
	if err := snap.plan(ctx, meta, s, fsys); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", s.SnapshotID, err)
	}
	return snap, nil
}

// pickIcebergSnapshot is the snapshot to read: the current one (nil when
// the table has none), or the one snapshotID or asOf names (pinned). It
// checks the lineage the snapshot's parents give: a loop, or a parent
// newer than its child, is a corrupt table; a parent the metadata no
// longer lists was expired, which is normal.
func pickIcebergSnapshot(meta table.Metadata, metaKey string, current, snapshotID *int64, asOf *time.Time) (s *table.Snapshot, pinned bool, err error) {
	switch {
	case snapshotID != nil && asOf != nil:
		return nil, false, fmt.Errorf("both snapshot_id: and as_of: are set: pick one")
	case snapshotID != nil:
		if s = meta.SnapshotByID(*snapshotID); s == nil {
			return nil, false, fmt.Errorf("snapshot %d is not in the table (%s lists %s): expire_snapshots removed it, and perhaps its files, or it never existed; read one it lists", *snapshotID, metaKey, listSnapshots(meta))
		}
		pinned = true
	case asOf != nil:
		// As Spark's as-of-timestamp: the snapshot log's last entry at or
		// before the time.
		var id *int64
		for e := range meta.SnapshotLogs() {
			if e.TimestampMs <= asOf.UnixMilli() {
				v := e.SnapshotID
				id = &v
			}
		}
		if id == nil {
			return nil, false, fmt.Errorf("no snapshot at or before %s in the table's snapshot log (%s)", asOf.Format(time.RFC3339), metaKey)
		}
		if s = meta.SnapshotByID(*id); s == nil {
			return nil, false, fmt.Errorf("the snapshot log names snapshot %d as current at %s, which is not in the table (%s lists %s): it was expired", *id, asOf.Format(time.RFC3339), metaKey, listSnapshots(meta))
		}
		pinned = true
	default:
		s = meta.CurrentSnapshot()
		if s == nil {
			if current != nil && *current != -1 {
				return nil, false, fmt.Errorf("%s: current-snapshot-id %d names no snapshot of the table: the metadata is corrupt", metaKey, *current)
			}
			return nil, false, nil // none yet
		}
	}
	// The lineage: first that it ends (format v1 has no sequence numbers
	// to make a loop show), then that sequence numbers fall along it.
	var line []*table.Snapshot
	seen := map[int64]bool{}
	for c := s; c != nil; {
		if seen[c.SnapshotID] {
			return nil, false, fmt.Errorf("%s: snapshot %d's lineage loops back to snapshot %d: the metadata is corrupt", metaKey, s.SnapshotID, c.SnapshotID)
		}
		seen[c.SnapshotID] = true
		line = append(line, c)
		if c.ParentSnapshotID == nil {
			break
		}
		c = meta.SnapshotByID(*c.ParentSnapshotID) // nil: expired
	}
	for i := 1; i < len(line) && meta.Version() > 1; i++ {
		// Snapshots written before an upgrade from format v1 have 0.
		if c, p := line[i-1], line[i]; c.SequenceNumber > 0 && p.SequenceNumber >= c.SequenceNumber {
			return nil, false, fmt.Errorf("%s: snapshot %d has sequence number %d, not above its parent %d's %d: the metadata is corrupt", metaKey, c.SnapshotID, c.SequenceNumber, p.SnapshotID, p.SequenceNumber)
		}
	}
	return s, pinned, nil
}

func listSnapshots(meta table.Metadata) string {
	var ids []string
	for _, s := range meta.Snapshots() {
		ids = append(ids, strconv.FormatInt(s.SnapshotID, 10))
	}
	if len(ids) == 0 {
		return "no snapshot"
	}
	if len(ids) > 6 {
		ids = append(ids[:2], "…", ids[len(ids)-3], ids[len(ids)-2], ids[len(ids)-1])
	}
	return "snapshots " + strings.Join(ids, ", ")
}

// icebergEntry is a live file of the snapshot: a data file or a delete
// file, with the data sequence number it has (inherited from its
// manifest where the entry does not say).
type icebergEntry struct {
	file iceberg.DataFile
	seq  int64
	key  string
	part string // its partition, spec and values, as one comparable key
}

// partitionKey is a file's partition (spec id and values) as a string that
// two files share exactly when their partitions are equal (NaN included,
// as Iceberg compares it).
func partitionKey(f iceberg.DataFile) string {
	p := f.Partition()
	ids := make([]int, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	fmt.Fprintf(&b, "%d", f.SpecID())
	for _, id := range ids {
		fmt.Fprintf(&b, "|%d=%T:%v", id, p[id], p[id])
	}
	return b.String()
}

// plan lists the snapshot's live data files and the deletes that apply to
// each, by the spec's rules: a position delete file applies to a data file
// of the same partition (spec and values), or only to the file it
// references, when the data file's sequence number is at most its own; a
// deletion vector applies to the file it references, likewise, and
// replaces position delete files; an equality delete applies to older
// data files of its partition, or to all when its spec is unpartitioned.
func (snap *icebergSnap) plan(ctx context.Context, meta table.Metadata, s *table.Snapshot, fsys *icebergIO) error {
	if s.ManifestList == "" {
		return fmt.Errorf("%w: a format-v1 snapshot without a manifest list (its manifests inline); rewrite the table's manifests with a newer Iceberg (rewrite_manifests)", ErrIcebergFeature)
	}
	manifests, err := s.Manifests(fsys)
	if err != nil {
		return fmt.Errorf("manifest list %s: %w", s.ManifestList, err)
	}
	var data, posDeletes, eqDeletes, dvs []icebergEntry
	for _, m := range manifests {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := fsys.key(m.FilePath()); err != nil {
			return fmt.Errorf("manifest list %s: %w", s.ManifestList, err)
		}
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return fmt.Errorf("manifest %s: %w", m.FilePath(), err)
			}
			df := e.DataFile()
			key, err := fsys.key(df.FilePath())
			if err != nil {
				return fmt.Errorf("manifest %s: %w", m.FilePath(), err)
			}
			seq := e.SequenceNum() // inherited from the manifest where the spec says
			if seq < 0 {
				return fmt.Errorf("manifest %s: %s has no sequence number, and an existing entry must: the metadata is corrupt", m.FilePath(), key)
			}
			ent := icebergEntry{file: df, seq: seq, key: key, part: partitionKey(df)}
			if df.ContentType() != iceberg.EntryContentData {
				snap.liveDeletes = append(snap.liveDeletes, key)
			}
			switch ct := df.ContentType(); {
			case ct == iceberg.EntryContentData && m.ManifestContent() == iceberg.ManifestContentData:
				if f := df.FileFormat(); f != iceberg.ParquetFile {
					return fmt.Errorf("%w: data file %s is %s: lockstep reads Parquet data files only; rewrite the table's data as Parquet (write.format.default=parquet, then rewrite_data_files)", ErrIcebergFeature, key, f)
				}
				data = append(data, ent)
			case ct == iceberg.EntryContentPosDeletes && df.FileFormat() == iceberg.PuffinFile:
				dvs = append(dvs, ent)
			case ct == iceberg.EntryContentPosDeletes:
				if f := df.FileFormat(); f != iceberg.ParquetFile {
					return fmt.Errorf("%w: position delete file %s is %s: lockstep reads Parquet delete files only; compact the table (rewrite_data_files, then rewrite_position_delete_files)", ErrIcebergFeature, key, f)
				}
				posDeletes = append(posDeletes, ent)
			case ct == iceberg.EntryContentEqDeletes:
				eqDeletes = append(eqDeletes, ent)
			default:
				return fmt.Errorf("manifest %s: file %s has content type %d in a %s manifest", m.FilePath(), key, ct, m.ManifestContent())
			}
		}
	}
	sort.Slice(data, func(i, j int) bool { return data[i].key < data[j].key })
	for i := 1; i < len(data); i++ {
		if data[i].key == data[i-1].key {
			return fmt.Errorf("data file %s is live twice in the snapshot's manifests: the metadata is corrupt", data[i].key)
		}
	}
	// The data files by path and by partition, so that matching deletes
	// to them costs what the deletes hit, not deletes times files.
	byPath, byPart := map[string]int{}, map[string][]int{}
	for i, d := range data {
		byPath[d.file.FilePath()] = i
		byPart[d.part] = append(byPart[d.part], i)
	}
	for _, eq := range eqDeletes {
		hit := byPart[eq.part]
		if eqGlobal(meta, eq.file) {
			hit = nil
			for i := range data {
				hit = append(hit, i)
			}
		}
		for _, i := range hit {
			if d := data[i]; d.seq < eq.seq {
				return fmt.Errorf("%w: equality delete file %s applies to data file %s; compact the table so that no equality deletes remain (CALL system.rewrite_data_files with delete-file-threshold 1), or read a snapshot before them", ErrIcebergFeature, eq.key, d.key)
			}
		}
	}
	snap.deletes = make([]rowDeletes, len(data))
	dvFor := map[int]icebergEntry{}
	for _, dv := range dvs {
		ref := dv.file.ReferencedDataFile()
		if ref == nil {
			return fmt.Errorf("deletion vector in %s names no data file", dv.key)
		}
		i, ok := byPath[*ref]
		if !ok || data[i].seq > dv.seq {
			continue // for a data file no longer live, or written after it
		}
		if _, dup := dvFor[i]; dup {
			return fmt.Errorf("data file %s has two deletion vectors: the metadata is corrupt", data[i].key)
		}
		dvFor[i] = dv
	}
	for i, dv := range dvFor {
		if _, ok := fsys.sizes[dv.key]; !ok {
			return fmt.Errorf("deletion vector file %s is not in the table's folder, and the snapshot needs it; restore it, or read a later snapshot", dv.key)
		}
		off, size := dv.file.ContentOffset(), dv.file.ContentSizeInBytes()
		if off == nil || size == nil || *size < 8 || *off < 0 {
			return fmt.Errorf("deletion vector for %s in %s has no valid content_offset and content_size_in_bytes", data[i].key, dv.key)
		}
		snap.deletes[i] = &icebergDV{key: dv.key, off: *off, size: *size - 8, rows: dv.file.Count()}
		snap.deleteFiles = append(snap.deleteFiles, dv.key)
	}
	// Position delete files: each read once, its rows given to the data
	// files it applies to.
	for _, pd := range posDeletes {
		var targets map[string]int
		cand := byPart[pd.part]
		if ref := pd.file.ReferencedDataFile(); ref != nil {
			cand = nil
			if i, ok := byPath[*ref]; ok && data[i].part == pd.part {
				cand = []int{i}
			}
		}
		for _, i := range cand {
			d := data[i]
			if _, hasDV := dvFor[i]; hasDV || d.seq > pd.seq {
				continue
			}
			if targets == nil {
				targets = map[string]int{}
			}
			targets[d.file.FilePath()] = i
		}
		if targets == nil {
			continue
		}
		if err := snap.readPositionDeletes(ctx, fsys, pd, targets, data); err != nil {
			return fmt.Errorf("position delete file %s: %w", pd.key, err)
		}
		snap.deleteFiles = append(snap.deleteFiles, pd.key)
	}
	slices.Sort(snap.deleteFiles)
	snap.deleteFiles = slices.Compact(snap.deleteFiles) // a Puffin file holds many vectors
	for _, d := range data {
		size, ok := fsys.sizes[d.key]
		if !ok {
			return fmt.Errorf("data file %s, live in the snapshot, is not in the table's folder: deleted by hand, or by expire_snapshots or remove_orphan_files of a snapshot that still needs it; restore it, or read a later snapshot", d.key)
		}
		if want := d.file.FileSizeBytes(); size != want {
			return fmt.Errorf("data file %s is %d bytes, its manifest says %d: Iceberg never rewrites a file in place, so it was replaced or truncated; restore it", d.key, size, want)
		}
		snap.files = append(snap.files, &blob.ListObject{Key: d.key, Size: size})
		// A file without an identity partition's source column (imported
		// from a Hive table by add_files) reads it from the manifest.
		consts := map[int]any{}
		if spec := meta.PartitionSpecByID(int(d.file.SpecID())); spec != nil {
			part := d.file.Partition()
			for _, pf := range spec.Fields() {
				if _, ok := pf.Transform.(iceberg.IdentityTransform); ok {
					if v, ok := part[pf.FieldID]; ok {
						consts[pf.SourceID()] = v
					}
				}
			}
		}
		snap.consts = append(snap.consts, consts)
	}
	return nil
}

func eqGlobal(meta table.Metadata, f iceberg.DataFile) bool {
	spec := meta.PartitionSpecByID(int(f.SpecID()))
	return spec == nil || spec.NumFields() == 0
}

// readPositionDeletes reads a position delete file (file_path, pos) and
// adds the positions of the files in targets (data file path → index).
func (snap *icebergSnap) readPositionDeletes(ctx context.Context, fsys *icebergIO, pd icebergEntry, targets map[string]int, data []icebergEntry) error {
	size, ok := fsys.sizes[pd.key]
	if !ok {
		return fmt.Errorf("not in the table's folder, and the snapshot needs it; restore it, or read a later snapshot")
	}
	f, err := reader.OpenLimits(&blobReaderAt{ctx: ctx, b: fsys.b, key: pd.key}, size, pd.key, reader.DefaultLimits)
	if err != nil {
		return err
	}
	sc := f.Schema()
	pathCol, posCol := sc.FieldIndices("file_path"), sc.FieldIndices("pos")
	if len(pathCol) != 1 || len(posCol) != 1 {
		return fmt.Errorf("no file_path and pos columns: not a position delete file")
	}
	got := map[int]*roaring64.Bitmap{}
	err = f.Records(ctx, 0, func(rec arrow.RecordBatch) error {
		paths, ok1 := rec.Column(pathCol[0]).(*array.String)
		pos, ok2 := rec.Column(posCol[0]).(*array.Int64)
		if !ok1 || !ok2 {
			return fmt.Errorf("file_path is %s and pos %s, not string and long", rec.Column(pathCol[0]).DataType(), rec.Column(posCol[0]).DataType())
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			if paths.IsNull(r) || pos.IsNull(r) {
				return fmt.Errorf("row %d has a null file_path or pos", r)
			}
			i, ok := targets[paths.Value(r)]
			if !ok {
				continue // another partition's file, or one no longer live
			}
			p := pos.Value(r)
			if n := data[i].file.Count(); p < 0 || p >= n {
				return fmt.Errorf("deletes row %d of %s, which has %d rows", p, data[i].key, n)
			}
			if snap.positions++; snap.positions > maxIcebergPositions {
				return fmt.Errorf("%w: more than %d rows deleted by position delete files, which lockstep holds in memory; compact the table (CALL system.rewrite_data_files, or rewrite_position_delete_files)", ErrIcebergFeature, maxIcebergPositions)
			}
			bm := got[i]
			if bm == nil {
				bm = roaring64.New()
				got[i] = bm
			}
			bm.Add(uint64(p))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, bm := range got {
		d, _ := snap.deletes[i].(*icebergPosDeletes)
		if d == nil {
			d = &icebergPosDeletes{bm: roaring64.New()}
			snap.deletes[i] = d
		}
		d.bm.Or(bm)
		d.files = append(d.files, pd.key)
	}
	return nil
}

// icebergPosDeletes are a data file's rows that position delete files
// delete, read at discovery.
type icebergPosDeletes struct {
	files []string
	bm    *roaring64.Bitmap
}

func (d *icebergPosDeletes) load(_ context.Context, _ *blob.Bucket, numRows int64) (*roaring64.Bitmap, error) {
	if !d.bm.IsEmpty() && d.bm.Maximum() >= uint64(numRows) {
		return nil, fmt.Errorf("position deletes name row %d of a file with %d rows", d.bm.Maximum(), numRows)
	}
	return d.bm, nil
}
func (d *icebergPosDeletes) id() string   { return "pos:" + strings.Join(d.files, ",") }
func (d *icebergPosDeletes) count() int64 { return int64(d.bm.GetCardinality()) }

// icebergDV is a data file's deletion vector (format v3): a
// deletion-vector-v1 blob in a Puffin file, framed and serialized as
// Delta's are.
type icebergDV struct {
	key       string
	off, size int64
	rows      int64 // the manifest's record_count: how many it deletes
}

func (d *icebergDV) load(ctx context.Context, b *blob.Bucket, numRows int64) (*roaring64.Bitmap, error) {
	if limit := maxDVSize(numRows); d.size > limit {
		return nil, fmt.Errorf("deletion vector of %d bytes for a file of %d rows, which needs at most %d", d.size, numRows, limit)
	}
	data, err := readDVFrame(ctx, b, d.key, d.off, d.size)
	if err != nil {
		return nil, err
	}
	return dvPositions(data, numRows, d.rows)
}
func (d *icebergDV) id() string   { return fmt.Sprintf("dv:%s@%d", d.key, d.off) }
func (d *icebergDV) count() int64 { return d.rows }

// readAllLimit reads a whole object of at most limit bytes.
func readAllLimit(ctx context.Context, b *blob.Bucket, key string, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d MiB lockstep reads of one metadata file", key, size, limit>>20)
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is more than the %d MiB lockstep reads of one metadata file", key, limit>>20)
	}
	return data, nil
}

// normalizeIcebergPath writes a path the one way: file:/x, file:///x and
// /x are all /x, and s3a:// and s3n:// are s3://.
func normalizeIcebergPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "file:"); ok {
		return "/" + strings.TrimLeft(rest, "/")
	}
	for _, scheme := range []string{"s3a://", "s3n://"} { // Hadoop's names for S3
		if rest, ok := strings.CutPrefix(p, scheme); ok {
			return "s3://" + rest
		}
	}
	return p
}

// icebergIO is iceberg-go's io.IO over the input's bucket: it opens the
// table's own files by the absolute paths its metadata gives, which name
// the table's location as the writer saw it (file:/..., s3a://...), and
// nothing outside that location. So a table copied or moved whole reads
// the same, and a manifest that names another table's file, or /etc/passwd,
// is an error.
type icebergIO struct {
	ctx   context.Context
	b     *blob.Bucket
	loc   string           // the table's location, normalized, without a trailing /
	sizes map[string]int64 // the table's objects, from the listing
}

// key is the object key of path, which must lie inside the table.
func (o *icebergIO) key(p string) (string, error) {
	rel, ok := strings.CutPrefix(normalizeIcebergPath(p), o.loc+"/")
	if !ok || rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." {
		return "", fmt.Errorf("%s is outside the table's location %s: lockstep reads only the table's own files", p, o.loc)
	}
	return rel, nil
}

func (o *icebergIO) Open(name string) (iceio.File, error) {
	key, err := o.key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	size, ok := o.sizes[key]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%s is not in the table's folder: %w", key, fs.ErrNotExist)}
	}
	data, err := readAllLimit(o.ctx, o.b, key, size, maxIcebergManifest)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memFile{Reader: bytes.NewReader(data), name: key, size: int64(len(data))}, nil
}

func (o *icebergIO) Remove(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrPermission}
}

// memFile is a file read whole, as iceberg-go's io.File.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
