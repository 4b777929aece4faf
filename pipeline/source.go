package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lockstep-data/lockstep/pipeline/reader"
	"github.com/lockstep-data/lockstep/publish"
)

// Source is one input resolved to exact files, in the canonical order
// (invariant 10: by path; within a file by row group, then row).
type Source struct {
	Name   string
	URL    string // redacted
	Files  []publish.InputFile
	bucket *blob.Bucket
	onFile func(path string) // called by Scan before each file's records
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

// Discover lists the Parquet files of a Spark output folder.
func Discover(ctx context.Context, name, rawURL string, requireSuccess bool) (*Source, []Skipped, error) {
	loc, err := publish.ParseLocation(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	b, err := loc.OpenBucket(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	src := &Source{Name: name, URL: loc.Redacted(), bucket: b}
	var skipped []Skipped
	success := false
	it := b.List(&blob.ListOptions{})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("%w: input %q: list %s: %v", ErrInput, name, src.URL, err)
		}
		if obj.IsDir {
			continue
		}
		rel := obj.Key
		if rel == "_SUCCESS" {
			success = true
		}
		if why := skipReason(rel); why != "" {
			skipped = append(skipped, Skipped{Path: rel, Reason: why})
			continue
		}
		if strings.Contains(path.Dir(rel), "=") {
			b.Close()
			return nil, nil, fmt.Errorf("%w: input %q: %s is in a hive partition folder; partitioned output is not supported yet", ErrInput, name, rel)
		}
		sum, err := checksum(ctx, b, loc, obj)
		if err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("%w: input %q: %s: %v", ErrInput, name, rel, err)
		}
		src.Files = append(src.Files, publish.InputFile{Path: rel, Size: obj.Size, Checksum: sum})
	}
	if requireSuccess && !success {
		b.Close()
		return nil, nil, fmt.Errorf("%w: input %q at %s has no _SUCCESS, so the Spark job may not have finished; wait for it, or set require_success: false", ErrNoSuccess, name, src.URL)
	}
	if len(src.Files) == 0 {
		b.Close()
		return nil, nil, fmt.Errorf("%w: input %q: no data files at %s", ErrInput, name, src.URL)
	}
	sort.Slice(src.Files, func(i, j int) bool { return src.Files[i].Path < src.Files[j].Path })
	return src, skipped, nil
}

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

// Schema opens the first file and returns its Arrow schema.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	f, err := s.open(ctx, s.Files[0])
	if err != nil {
		return nil, err
	}
	return f.Schema(), nil
}

func (s *Source) open(ctx context.Context, in publish.InputFile) (*reader.File, error) {
	f, err := reader.Open(&blobReaderAt{ctx: ctx, b: s.bucket, key: in.Path}, in.Size, s.URL+"/"+in.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %w", ErrInput, s.Name, err)
	}
	return f, nil
}

// Scan streams every record of the source in the canonical order. Every
// file must have the schema of the first; fn owns a record only for the call.
// It returns the row count and the Spark version named in the footers.
func (s *Source) Scan(ctx context.Context, schema *arrow.Schema, fn func(arrow.RecordBatch) error) (rows int64, sparkVersion string, err error) {
	for _, in := range s.Files {
		f, err := s.open(ctx, in)
		if err != nil {
			return 0, "", err
		}
		if !f.Schema().Equal(schema) {
			return 0, "", fmt.Errorf("%w: input %q: %s has schema\n  %s\nbut %s has\n  %s\nrewrite the output with one schema", ErrInput, s.Name, in.Path, f.Schema(), s.Files[0].Path, schema)
		}
		if v, ok := f.KeyValue("org.apache.spark.version"); ok {
			sparkVersion = v
		}
		if s.onFile != nil {
			s.onFile(s.URL + "/" + in.Path)
		}
		err = f.Records(ctx, 0, func(rec arrow.RecordBatch) error {
			rows += rec.NumRows()
			return fn(rec)
		})
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return 0, "", err
			}
			return 0, "", fmt.Errorf("%w: input %q: %w", ErrInput, s.Name, err)
		}
	}
	return rows, sparkVersion, nil
}
