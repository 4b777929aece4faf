package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/pipeline/reader"
)

// fixtures returns $LOCKSTEP_FIXTURES, skipping when it is unset outside CI
// and failing under CI=true, where a missing corpus is a broken setup.
func fixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LOCKSTEP_FIXTURES")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("LOCKSTEP_FIXTURES is unset under CI=true; point it at the fixture corpus")
		}
		t.Skip("LOCKSTEP_FIXTURES is unset: set it to the fixture corpus (see its INDEX.md) to run this test")
	}
	return dir
}

// corpusFiles lists every Parquet file of the corpus: any file whose first
// bytes are PAR1 or PARE, whatever its name.
func corpusFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".crc") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var head [4]byte
		if n, _ := f.Read(head[:]); n == 4 && (string(head[:]) == "PAR1" || string(head[:]) == "PARE") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// readResult is what reading one file gave.
type readResult struct {
	rows int64
	err  error
}

// readFile reads every row of a file with a deadline, so a hang fails the
// test instead of stalling it.
func readFile(path string, fn func(arrow.RecordBatch) error) readResult {
	data, err := os.ReadFile(path)
	if err != nil {
		return readResult{err: err}
	}
	done := make(chan readResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		f, err := reader.Open(bytes.NewReader(data), int64(len(data)), path)
		if err != nil {
			done <- readResult{err: err}
			return
		}
		var rows int64
		err = f.Records(ctx, 0, func(rec arrow.RecordBatch) error {
			rows += rec.NumRows()
			if fn != nil {
				return fn(rec)
			}
			return nil
		})
		done <- readResult{rows: rows, err: err}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(90 * time.Second):
		return readResult{err: fmt.Errorf("hang: no answer after 90s")}
	}
}

// mustRead are valid files that some libraries fail on; lockstep reads them.
var mustRead = []string{
	"parquet-testing/data/hadoop_lz4_compressed.parquet",
	"parquet-testing/data/hadoop_lz4_compressed_larger.parquet",
	"parquet-testing/data/non_hadoop_lz4_compressed.parquet",
	"parquet-testing/data/lz4_raw_compressed.parquet",
	"parquet-testing/data/lz4_raw_compressed_larger.parquet",
	"parquet-testing/data/datapage_v2_empty_datapage.snappy.parquet",
	"parquet-testing/data/unknown-logical-type.parquet",
	"parquet-testing/data/concatenated_gzip_members.parquet",
}

// mustReject are files that are invalid, or that lockstep refuses on purpose.
var mustReject = map[string]error{
	"parquet-testing/data/datapage_v1-corrupt-checksum.parquet":               reader.ErrCorrupt,
	"parquet-testing/data/rle-dict-uncompressed-corrupt-checksum.parquet":     reader.ErrCorrupt,
	"parquet-testing/data/uniform_encryption.parquet.encrypted":               reader.ErrEncrypted,
	"parquet-testing/data/encrypt_columns_and_footer.parquet.encrypted":       reader.ErrEncrypted,
	"parquet-testing/data/encrypt_columns_plaintext_footer.parquet.encrypted": reader.ErrEncrypted,
	// Row 5 lies 296,000 years before the epoch: int64 microseconds (and
	// Spark, which refuses it with an overflow) cannot hold it.
	"parquet-testing/data/int96_from_spark.parquet": reader.ErrCorrupt,
	// bad_data: a list whose page starts inside a row (repetition level 1);
	// pyarrow reads it anyway, lockstep refuses what the spec forbids.
	"parquet-testing/bad_data/ARROW-GH-45185.parquet": reader.ErrCorrupt,
	// Malformed on purpose (MANIFEST.tsv: MALFORMED(intended)): its dictionary
	// page is shorter than it claims; Arrow C++'s own tests expect a refusal.
	"parquet-testing/data/nation.dict-malformed.parquet": reader.ErrCorrupt,
	// A 1 GiB dictionary page of 2 GiB strings: beyond MaxColumnChunk.
	"parquet-testing/data/large_string_map.brotli.parquet": reader.ErrLimit,
}

// TestCorpus reads every Parquet file of the fixture corpus: each is read or
// refused with a typed error naming the file; nothing panics or hangs.
func TestCorpus(t *testing.T) {
	root := fixtures(t)
	files := corpusFiles(t, root)
	if len(files) < 400 {
		t.Fatalf("only %d Parquet files under %s; is it the fixture corpus?", len(files), root)
	}
	results := map[string]readResult{}
	reasons := map[string]int{}
	read := 0
	for _, p := range files {
		rel, _ := filepath.Rel(root, p)
		r := readFile(p, nil)
		results[rel] = r
		if r.err == nil {
			read++
			continue
		}
		reasons[reason(r.err)]++
		if !strings.Contains(r.err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", rel, r.err)
		}
		if !errors.Is(r.err, reader.ErrCorrupt) && !errors.Is(r.err, reader.ErrNotParquet) &&
			!errors.Is(r.err, reader.ErrEncrypted) && !errors.Is(r.err, reader.ErrUnsupported) &&
			!errors.Is(r.err, reader.ErrLimit) {
			t.Errorf("%s: untyped error: %v", rel, r.err)
		}
		if strings.Contains(r.err.Error(), "panicked") || strings.Contains(r.err.Error(), "hang") {
			t.Errorf("%s: %v", rel, r.err)
		}
	}
	t.Logf("corpus: %d files, %d read, %d rejected", len(files), read, len(files)-read)
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  rejected %3d × %s", reasons[k], k)
	}
	for rel, r := range results {
		if r.err != nil && testing.Verbose() {
			t.Logf("  %s: %v", rel, r.err)
		}
	}
	for _, rel := range mustRead {
		if r, ok := results[rel]; !ok || r.err != nil {
			t.Errorf("%s must be read: %v", rel, r.err)
		}
	}
	for rel, want := range mustReject {
		if r := results[rel]; !errors.Is(r.err, want) {
			t.Errorf("%s must be refused with %v, got %v", rel, want, r.err)
		}
	}
}

// reason is the kind of an error, for the summary.
func reason(err error) string {
	for _, e := range []error{reader.ErrEncrypted, reader.ErrNotParquet, reader.ErrLimit, reader.ErrUnsupported, reader.ErrCorrupt} {
		if errors.Is(err, e) {
			msg := err.Error()
			if i := strings.LastIndex(msg, e.Error()); i >= 0 {
				msg = msg[i:]
			}
			if len(msg) > 90 {
				msg = msg[:90]
			}
			return msg
		}
	}
	return "untyped: " + err.Error()
}

// knownDifferences are files where lockstep and pyarrow disagree on purpose.
var knownDifferences = map[string]string{
	// The LIST annotation on a group whose repeated child is named `array`
	// makes it a 2-level list of list<int> under the Parquet spec's
	// backward-compatibility rules; pyarrow ignores the annotation there.
	"parquet-testing/data/old_list_structure.parquet": "legacy 2-level list: lockstep follows the spec",
}

// knownGaps are files pyarrow reads and lockstep still refuses, with a typed error.
var knownGaps = map[string]string{}

// TestCorpusValues: for every file both read, lockstep's values equal
// pyarrow's, column by column.
func TestCorpusValues(t *testing.T) {
	root := fixtures(t)
	var rels []string
	for _, p := range corpusFiles(t, root) {
		rel, _ := filepath.Rel(root, p)
		rels = append(rels, rel)
	}
	dumps := pyarrowDump(t, root, rels)
	compared, pyRefused, bothRefuse := 0, 0, 0
	for _, rel := range rels {
		d := dumps[rel]
		if d == nil {
			t.Errorf("%s: pyarrow_dump.py wrote nothing", rel)
			continue
		}
		cols := map[string][]any{}
		var names []string
		r := readFile(filepath.Join(root, rel), func(rec arrow.RecordBatch) error {
			for c, col := range rec.Columns() {
				name := rec.ColumnName(c)
				if _, ok := cols[name]; !ok {
					names = append(names, name)
				}
				cols[name] = append(cols[name], canon(col)...)
			}
			return nil
		})
		if _, ok := d["error"]; ok {
			pyRefused++
			if r.err != nil {
				bothRefuse++
			}
			continue
		}
		if r.err != nil {
			if why, gap := knownGaps[rel]; gap {
				t.Logf("%s: known gap: %s: %v", rel, why, r.err)
				continue
			}
			if _, known := mustReject[rel]; !known {
				t.Errorf("%s: pyarrow reads it, lockstep refuses: %v", rel, r.err)
			}
			continue
		}
		compared++
		if r.rows != int64(asInt(d["rows"])) {
			t.Errorf("%s: %d rows, pyarrow %v", rel, r.rows, d["rows"])
			continue
		}
		want := d["columns"].(map[string]any)
		for _, name := range names {
			w, _ := want[name].([]any)
			if diff := firstDiff(normJSON(cols[name]).([]any), w); diff != "" {
				if why, ok := knownDifferences[rel]; ok {
					t.Logf("%s: known difference (%s): column %q: %s", rel, why, name, diff)
					continue
				}
				t.Errorf("%s: column %q: %s", rel, name, diff)
			}
		}
	}
	t.Logf("values compared with pyarrow on %d files; pyarrow refuses %d (lockstep too: %d)", compared, pyRefused, bothRefuse)
}

func asInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return -1
}
