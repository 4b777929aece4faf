// Package publish keeps releases in a blob store: content-addressed blobs,
// immutable manifests, and channels kept as append-only logs. Every write is
// create-if-absent, so a store is only ever added to, and readers check a
// digest at every step down from a channel to the bytes.
//
// Layout, below the store URL's prefix:
//
//	blobs/sha256/<hex>                               asset bytes, shared across releases
//	bundles/<bundle>/releases/<release>.json         manifest
//	bundles/<bundle>/builds/<fingerprint>.json       fingerprint -> release
//	bundles/<bundle>/channels/<channel>/<seq>.json   channel log entry, seq zero-padded to 10 digits
package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

var (
	ErrExists        = errors.New("already exists")
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("channel conflict")
	ErrVerify        = errors.New("verification failed")
	ErrBadName       = errors.New("invalid name")
	ErrBadURL        = errors.New("invalid URL")
	ErrReleaseExists = errors.New("release exists with other content")
)

// Store is a release store on a blob bucket.
type Store struct {
	bucket *blob.Bucket
	url    string // redacted, for messages and manifests
	local  string // root folder of a file:// store, where creates use link(2)
	hooks  *opHooks
}

// NewStore wraps a bucket that already has the store's prefix applied.
func NewStore(b *blob.Bucket, displayURL string) *Store {
	return &Store{bucket: b, url: displayURL, hooks: hooksFromEnv()}
}

// Open opens the store at rawURL (scheme://bucket/prefix?options, or a local
// path). The drivers for the scheme must be linked in by the caller.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	loc, err := ParseLocation(rawURL)
	if err != nil {
		return nil, err
	}
	if loc.LocalDir != "" {
		if err := os.MkdirAll(loc.LocalDir, 0o755); err != nil {
			return nil, fmt.Errorf("create store folder: %w", err)
		}
	}
	b, err := loc.OpenBucket(ctx)
	if err != nil {
		return nil, err
	}
	s := NewStore(b, loc.Redacted())
	s.local = loc.LocalDir
	return s, nil
}

// Bucket is the store's bucket, prefix applied.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// URL is the store's URL without credentials.
func (s *Store) URL() string { return s.url }

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Location is a parsed blob URL, following the one rule of DESIGN.md: the
// host is the bucket, the path is a prefix that lockstep applies itself. A
// file:// URL or a plain path names a local folder.
type Location struct {
	Scheme    string
	BucketURL string // what gocloud opens
	Prefix    string // "" or "a/b/"
	LocalDir  string // absolute folder for file:// locations
	raw       *url.URL
}

// knownSchemes are the blob URL schemes lockstep links drivers for.
var knownSchemes = map[string]bool{"file": true, "s3": true, "gs": true, "azblob": true, "mem": true}

// ParseLocation parses a store or input URL.
func ParseLocation(raw string) (*Location, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if !strings.Contains(raw, "://") {
		raw = "file://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if !knownSchemes[u.Scheme] {
		return nil, fmt.Errorf("%w: %s: unknown scheme %q (valid: file, s3, gs, azblob, mem, or a plain path)", ErrBadURL, Redact(raw), u.Scheme)
	}
	loc := &Location{Scheme: u.Scheme, raw: u}
	if u.Scheme == "file" {
		p := u.Host + u.Path
		if p == "" {
			return nil, fmt.Errorf("%w: %s names no folder", ErrBadURL, raw)
		}
		abs, err := filepath.Abs(filepath.FromSlash(p))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		loc.LocalDir = abs
		q := u.Query()
		q.Set("metadata", "skip") // no .attrs side files: objects are plain files
		loc.BucketURL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}).String()
		return loc, nil
	}
	if u.Host == "" && u.Scheme != "mem" {
		return nil, fmt.Errorf("%w: %s names no bucket", ErrBadURL, Redact(raw))
	}
	loc.BucketURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}).String()
	if p := strings.Trim(u.Path, "/"); p != "" {
		loc.Prefix = p + "/"
	}
	return loc, nil
}

// OpenBucket opens the location's bucket with its prefix applied.
func (l *Location) OpenBucket(ctx context.Context) (*blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, l.BucketURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.Redacted(), err)
	}
	if l.Prefix != "" {
		b = blob.PrefixedBucket(b, l.Prefix)
	}
	return b, nil
}

// Redacted is the URL with no user info and no secret-looking options.
func (l *Location) Redacted() string {
	if l.LocalDir != "" {
		return "file://" + filepath.ToSlash(l.LocalDir)
	}
	return Redact(l.raw.String())
}

var secretParam = regexp.MustCompile(`(?i)(secret|token|key|password|credential|signature|sig)`)

// Redact strips credentials from a URL before it is logged or recorded.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable url>"
	}
	u.User = nil
	q := u.Query()
	for k := range q {
		if secretParam.MatchString(k) {
			q.Set(k, "REDACTED")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName refuses a bundle, channel, release or asset name that could
// escape its folder or confuse a listing.
func CheckName(kind, name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %s %q (use letters, digits, '.', '_' and '-', at most 128, not starting with punctuation)", ErrBadName, kind, name)
	}
	return nil
}

// Keys of the layout.
func blobKey(sha string) string { return "blobs/sha256/" + sha }
func manifestKey(bundle, rel string) string {
	return "bundles/" + bundle + "/releases/" + rel + ".json"
}
func buildKey(bundle, fp string) string { return "bundles/" + bundle + "/builds/" + fp + ".json" }
func channelPrefix(bundle, ch string) string {
	return "bundles/" + bundle + "/channels/" + ch + "/"
}

// want is what a created object must hold: bytes are checked while they are
// written, so what lands under a key is exactly what its name promises.
type want struct {
	size   int64
	sha256 string
}

// create writes key only if it does not exist yet, or fails with ErrExists.
// The object appears whole or not at all: a read error or a mismatch with
// want aborts the write (the upload's context is cancelled before the
// writer closes, which gocloud treats as abort).
//
// gocloud's IfNotExist is atomic on every cloud backend and on mem://, but
// fileblob checks with stat and then renames, so two processes can both win.
// A file:// store therefore writes a temporary file and link(2)s it into
// place, which fails atomically when the name is taken.
func (s *Store) create(ctx context.Context, key string, src io.ReadSeeker, w *want) error {
	if err := s.hooks.op(ctx, "create "+key); err != nil {
		return err
	}
	if s.local != "" {
		return createLocal(ctx, s.local, filepath.Join(s.local, filepath.FromSlash(key)), &checkedReader{r: src, want: w, key: key})
	}
	return retryTransient(ctx, func() error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		uctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cr := &checkedReader{r: src, want: w, key: key, cancel: cancel}
		// Upload goes multipart for large blobs on the cloud drivers.
		err := s.bucket.Upload(uctx, key, cr, &blob.WriterOptions{IfNotExist: true, ContentType: contentType(key)})
		if cr.err != nil {
			return cr.err
		}
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return fmt.Errorf("%s: %w", key, ErrExists)
		}
		return err
	})
}

func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// checkedReader hashes and counts what it reads and, at the end, turns a
// mismatch with want into an error instead of EOF. On any error it first
// cancels the upload, so the object is never committed.
type checkedReader struct {
	r      io.Reader
	want   *want
	key    string
	cancel func()
	h      hash.Hash
	n      int64
	err    error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.h == nil {
		c.h = sha256.New()
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF && c.want != nil {
		got := hex.EncodeToString(c.h.Sum(nil))
		if c.n != c.want.size || got != c.want.sha256 {
			err = fmt.Errorf("%w: %s: the source changed while it was written (%d bytes, sha256 %s; expected %d bytes, sha256 %s)", ErrVerify, c.key, c.n, got, c.want.size, c.want.sha256)
		}
	}
	if err != nil && err != io.EOF {
		c.err = err
		if c.cancel != nil {
			c.cancel()
		}
	}
	return n, err
}

// localTmp is the folder of a file:// store where creates stage their bytes.
// It sits outside every listed prefix: fileblob's listing stats each name it
// reads, and a staged file that vanished under it would fail the listing.
const localTmp = ".tmp"

func createLocal(ctx context.Context, root, path string, r io.Reader) (err error) {
	dir := filepath.Dir(path)
	if err := mkdirAllSync(dir); err != nil {
		return err
	}
	tmpDir := filepath.Join(root, localTmp)
	if err := mkdirAllSync(tmpDir); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(tmpDir, hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Copy in chunks, stopping at a cancel (Ctrl-C) instead of finishing
	// a large blob first.
	if _, err := io.CopyBuffer(f, ctxReader{ctx, r}, make([]byte, copyBuffer)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", filepath.Base(path), ErrExists)
		}
		return err
	}
	return syncDir(dir)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// mkdirAllSync is os.MkdirAll that also fsyncs the parent of every folder
// it creates, so a new folder's entry survives a power cut like the files
// in it.
func mkdirAllSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range made {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// overwrite replaces a small object whole: a reader sees the old bytes or
// the new ones. Only lease objects, which belong to one process, are
// written this way.
func (s *Store) overwrite(ctx context.Context, key string, data []byte) error {
	if err := s.hooks.op(ctx, "overwrite "+key); err != nil {
		return err
	}
	if s.local != "" {
		path := filepath.Join(s.local, filepath.FromSlash(key))
		tmp := filepath.Join(s.local, localTmp, randHex(8))
		if err := writeFileSync(tmp, data); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		return syncDir(filepath.Dir(path))
	}
	return retryTransient(ctx, func() error {
		return s.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json"})
	})
}

// createBytes is create for small objects.
func (s *Store) createBytes(ctx context.Context, key string, data []byte) error {
	return s.create(ctx, key, bytes.NewReader(data), &want{int64(len(data)), sha256Hex(data)})
}

// read reads a whole object, refusing one larger than limit.
func (s *Store) read(ctx context.Context, key string, limit int64) ([]byte, error) {
	if err := s.hooks.op(ctx, "read "+key); err != nil {
		return nil, err
	}
	var data []byte
	err := retryTransient(ctx, func() error {
		r, err := s.bucket.NewReader(ctx, key, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		if r.Size() > limit {
			return fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", ErrVerify, key, r.Size(), limit)
		}
		data, err = io.ReadAll(io.LimitReader(r, limit+1))
		if err == nil && int64(len(data)) > limit {
			return fmt.Errorf("%w: %s is more than the %d bytes allowed", ErrVerify, key, limit)
		}
		return err
	})
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return data, err
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// list returns the names directly below prefix, without the prefix:
// objects and folders alike.
func (s *Store) list(ctx context.Context, prefix string) ([]string, error) {
	files, dirs, err := s.listNames(ctx, prefix)
	return append(files, dirs...), err
}

// listNames lists the objects (files) and folders (dirs) directly below
// prefix, without the prefix. A folder may be named like an object (an
// entry name with something below it); it is not that object.
func (s *Store) listNames(ctx context.Context, prefix string) (files, dirs []string, err error) {
	if err := s.hooks.op(ctx, "list "+prefix); err != nil {
		return nil, nil, err
	}
	vanished := 0
	err = retryTransient(ctx, func() error {
	again:
		files, dirs = files[:0], dirs[:0]
		it := s.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			// fileblob stats each name it lists, and fails when one is
			// deleted under it (a lease released meanwhile): list again.
			if isNotFound(err) && vanished < 100 {
				vanished++
				goto again
			}
			if err != nil {
				return err
			}
			name := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
			if name == "" || name == localTmp {
				continue
			}
			if obj.IsDir {
				dirs = append(dirs, name)
			} else {
				files = append(files, name)
			}
		}
	})
	return files, dirs, err
}
