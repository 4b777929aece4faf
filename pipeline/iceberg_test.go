package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/lockstep-data/lockstep/publish"
	"github.com/lockstep-data/lockstep/publish/publishtest"
)

// copyIceberg copies a table gen_iceberg.py wrote into a folder of the
// test's own, and returns it and its newest metadata file.
func copyIceberg(t *testing.T, name string) (dir, meta string) {
	t.Helper()
	src := filepath.Join(icebergTables(t), "db", name)
	dir = filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^v(\d+)\.metadata\.json$`)
	ents, _ := os.ReadDir(filepath.Join(dir, "metadata"))
	best := -1
	for _, e := range ents {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			if v, _ := strconv.Atoi(m[1]); v > best {
				best, meta = v, filepath.Join(dir, "metadata", e.Name())
			}
		}
	}
	return dir, meta
}

// editMetadata rewrites the metadata file's JSON with fn.
func editMetadata(t *testing.T, meta string, fn func(m map[string]any)) {
	t.Helper()
	raw, _ := os.ReadFile(meta)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, _ := json.Marshal(m)
	os.WriteFile(meta, out, 0o644)
}

// localPath is a path the metadata names, on this machine.
func localPath(p string) string { return normalizeIcebergPath(p) }

// TestIcebergHostile: metadata that is wrong, or made to hurt, is an input
// error naming what is wrong, with bounded memory, never a panic.
func TestIcebergHostile(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(t *testing.T, dir, meta string)
	}{
		{"manifest outside the table", "outside the table's location", func(t *testing.T, dir, meta string) {
			// The manifest list names /etc/hosts as a manifest.
			var list, loc string
			editMetadata(t, meta, func(m map[string]any) {
				loc = localPath(m["location"].(string))
				cur := m["current-snapshot-id"].(json.Number).String()
				for _, s := range m["snapshots"].([]any) {
					if s := s.(map[string]any); s["snapshot-id"].(json.Number).String() == cur {
						list = s["manifest-list"].(string)
					}
				}
			})
			list = filepath.Join(dir, strings.TrimPrefix(localPath(list), loc)) // the copy's
			f, err := os.Open(list)
			if err != nil {
				t.Fatal(err)
			}
			mfs, err := iceberg.ReadManifestList(f)
			f.Close()
			if err != nil || len(mfs) == 0 {
				t.Fatalf("manifest list %s: %v", list, err)
			}
			m := mfs[0]
			evil := iceberg.NewManifestFile(2, "/etc/hosts", m.Length(), m.PartitionSpecID(), m.SnapshotID()).
				SequenceNum(m.SequenceNum(), m.MinSequenceNum()).AddedFiles(m.AddedDataFiles()).Build()
			var buf bytes.Buffer
			seq := m.SequenceNum()
			if err := iceberg.WriteManifestList(2, &buf, m.SnapshotID(), nil, &seq, 0, []iceberg.ManifestFile{evil}); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(list, buf.Bytes(), 0o644)
		}},
		{"lineage loops", "lineage loops", func(t *testing.T, dir, meta string) {
			editMetadata(t, meta, func(m map[string]any) {
				snaps := m["snapshots"].([]any)
				first, last := snaps[0].(map[string]any), snaps[len(snaps)-1].(map[string]any)
				first["parent-snapshot-id"] = last["snapshot-id"]
				first["sequence-number"] = json.Number("99") // a loop need not break the sequence numbers first
				m["last-sequence-number"] = json.Number("100")
			})
		}},
		{"parent newer than child", "not above its parent", func(t *testing.T, dir, meta string) {
			editMetadata(t, meta, func(m map[string]any) {
				snaps := m["snapshots"].([]any)
				snaps[0].(map[string]any)["sequence-number"] = json.Number("99")
				m["last-sequence-number"] = json.Number("100")
			})
		}},
		{"current snapshot absent", "424242 does not exist", func(t *testing.T, dir, meta string) {
			editMetadata(t, meta, func(m map[string]any) {
				m["current-snapshot-id"] = json.Number("424242")
				delete(m, "refs")
			})
		}},
		{"data file gone", "is not in the table's folder", func(t *testing.T, dir, meta string) {
			files, _ := filepath.Glob(filepath.Join(dir, "data", "*.parquet"))
			os.Remove(files[0])
		}},
		{"data file truncated", "its manifest says", func(t *testing.T, dir, meta string) {
			files, _ := filepath.Glob(filepath.Join(dir, "data", "*.parquet"))
			data, _ := os.ReadFile(files[0])
			os.WriteFile(files[0], data[:len(data)-1], 0o644)
		}},
		{"absurd Avro block count", "manifest", func(t *testing.T, dir, meta string) {
			// The first block of every manifest claims 2^62 entries.
			files, _ := filepath.Glob(filepath.Join(dir, "metadata", "*-m*.avro"))
			if len(files) == 0 {
				t.Fatal("no manifest")
			}
			for _, p := range files {
				data, _ := os.ReadFile(p)
				os.WriteFile(p, avroBlockCount(t, data, 1<<62), 0o644)
			}
		}},
		{"not JSON", "metadata.json", func(t *testing.T, dir, meta string) {
			os.WriteFile(meta, []byte(`{"format-version": 2, "table-uuid": [`), 0o644)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, meta := copyIceberg(t, "append")
			c.edit(t, dir, meta)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{})
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an input error saying %q", err, c.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
				t.Errorf("allocated %d MiB to refuse it", n>>20)
			}
			t.Log(err)
		})
	}
}

// avroBlockCount rewrites an Avro object container file's first block to
// claim count objects.
func avroBlockCount(t *testing.T, data []byte, count int64) []byte {
	t.Helper()
	long := func(b []byte) (int64, int) {
		u, n := binary.Uvarint(b)
		return int64(u>>1) ^ -int64(u&1), n
	}
	i := 4 // "Obj\x01"
	for {  // the header's metadata map: blocks of (key, value) bytes
		n, w := long(data[i:])
		i += w
		if n == 0 {
			break
		}
		if n < 0 {
			_, w := long(data[i:]) // the block's size in bytes
			i += w
			n = -n
		}
		for range 2 * n {
			l, w := long(data[i:])
			i += w + int(l)
		}
	}
	i += 16 // the sync marker
	_, w := long(data[i:])
	var buf [binary.MaxVarintLen64]byte
	enc := binary.PutUvarint(buf[:], uint64(count<<1)^uint64(count>>63))
	return append(append(append([]byte{}, data[:i]...), buf[:enc]...), data[i+w:]...)
}

// TestIcebergMoved: a table read at another place than its metadata's
// location reads the same; its paths are taken relative to the location.
func TestIcebergMoved(t *testing.T) {
	dir, _ := copyIceberg(t, "append")
	src, skipped, rows := scanRows(t, "file://"+dir, DiscoverOptions{})
	if len(rows) != 80 || src.Iceberg.SnapshotID == 0 {
		t.Fatalf("%d rows at snapshot %d, want 80", len(rows), src.Iceberg.SnapshotID)
	}
	for _, s := range skipped {
		if strings.HasPrefix(s.Reason, "not live") {
			t.Errorf("skipped %+v: every data file of the table is live", s)
		}
	}
}

// TestIcebergPick: as_of: reads the snapshot current at a time (the
// snapshot log's), before the first is an error, and format: iceberg and
// format: parquet say what the folder is read as.
func TestIcebergPick(t *testing.T) {
	dir, meta := copyIceberg(t, "append")
	var log []struct {
		ID int64 `json:"snapshot-id"`
		TS int64 `json:"timestamp-ms"`
	}
	raw, _ := os.ReadFile(meta)
	var m struct {
		Log json.RawMessage `json:"snapshot-log"`
	}
	json.Unmarshal(raw, &m)
	json.Unmarshal(m.Log, &log)
	if len(log) != 2 {
		t.Fatalf("snapshot log %s: want the two appends", m.Log)
	}
	at := time.UnixMilli(log[1].TS - 1) // just before the second append
	src, _, rows := scanRows(t, "file://"+dir, DiscoverOptions{AsOf: &at})
	if src.Iceberg.SnapshotID != log[0].ID || len(rows) != 40 {
		t.Errorf("as_of %s: snapshot %d, %d rows; want %d and the first append's 40", at, src.Iceberg.SnapshotID, len(rows), log[0].ID)
	}
	before := time.UnixMilli(log[0].TS - 1)
	if _, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{AsOf: &before}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "no snapshot at or before") {
		t.Errorf("as_of before the first snapshot: %v", err)
	}
	if _, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{Format: "parquet", RequireSuccess: true}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "_SUCCESS") {
		t.Errorf("format parquet: %v; want it read as a plain folder, which has no _SUCCESS", err)
	}
	one := int64(1)
	if _, _, err := DiscoverWith(context.Background(), "in", "file://"+dir, DiscoverOptions{Format: "parquet", SnapshotID: &one}); !errors.Is(err, ErrSpec) {
		t.Errorf("snapshot_id on a plain folder: %v; want a spec error", err)
	}
	src, _, rows = scanRows(t, "file://"+dir, DiscoverOptions{Format: "iceberg"})
	if len(rows) != 80 || src.Iceberg == nil {
		t.Errorf("format iceberg: %d rows", len(rows))
	}
}

// TestIcebergBlobStores: a table copied to S3 (MinIO) and Azure (Azurite)
// reads the same rows as on disk, and Inspect reports its snapshot and the
// deletes it applies.
func TestIcebergBlobStores(t *testing.T) {
	dir, _ := copyIceberg(t, "delete")
	_, _, want := scanRows(t, "file://"+dir, DiscoverOptions{})
	sort.SliceStable(want, func(i, j int) bool { return want[i]["id"].(float64) < want[j]["id"].(float64) })
	for _, b := range []struct {
		name string
		url  func(t testing.TB, prefix string) string
	}{{"minio", publishtest.MinIO}, {"azurite", publishtest.Azurite}} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			u := b.url(t, "warehouse/db/delete")
			loc, err := publish.ParseLocation(u)
			if err != nil {
				t.Fatal(err)
			}
			bk, err := loc.OpenBucket(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer bk.Close()
			err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				data, _ := os.ReadFile(p)
				return bk.WriteAll(ctx, filepath.ToSlash(rel), data, nil)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, _, got := scanRows(t, u, DiscoverOptions{})
			sameRows(t, got, want)
			in, err := Inspect(ctx, u, DiscoverOptions{})
			if err != nil || in.Iceberg == nil || in.Iceberg.SnapshotID == 0 || len(in.Iceberg.DeleteFiles) == 0 || in.Rows != int64(len(want)) {
				t.Fatalf("inspect: %+v, %v; want the snapshot, its delete files and %d rows net of them", in, err, len(want))
			}
		})
	}
}
