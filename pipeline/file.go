package pipeline

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// FileInput is an input's format for one file shipped as is (the server
// binary, a model, a config) by `file` assets, instead of Spark output.
const FileInput = "file"

// discoverFile resolves a file input: the one object at the URL, its size
// and checksum (for the fingerprint), and for a local file its mode.
func discoverFile(ctx context.Context, name, rawURL string) (*Source, error) {
	dir, key, err := splitFileURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	loc, err := publish.ParseLocation(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	b, err := loc.OpenBucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	src := &Source{Name: name, URL: publish.Redact(rawURL), bucket: b, raw: key, rawMode: 0o644}
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: input %q: %s: %v; a file input (format: file) names one file", ErrInput, name, src.URL, err)
	}
	if loc.LocalDir != "" {
		fi, err := os.Stat(filepath.Join(loc.LocalDir, filepath.FromSlash(key)))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
		}
		if !fi.Mode().IsRegular() {
			b.Close()
			return nil, fmt.Errorf("%w: input %q: %s is not a regular file", ErrInput, name, src.URL)
		}
		src.rawMode = fi.Mode().Perm()
	}
	obj := &blob.ListObject{Key: key, Size: attrs.Size, MD5: attrs.MD5}
	sum, err := checksum(ctx, b, loc, obj)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: input %q: %v", ErrInput, name, err)
	}
	src.Files = []publish.InputFile{{Path: key, Size: attrs.Size, Checksum: sum}}
	return src, nil
}

// splitFileURL splits a file's URL into its folder's URL and its name.
func splitFileURL(raw string) (dir, key string, err error) {
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return "", "", err
		}
		return filepath.Dir(abs), filepath.Base(abs), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	p := u.Path
	if u.Scheme != "file" {
		p = strings.TrimPrefix(p, "/")
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return "", "", fmt.Errorf("%s names a folder; a file input names one file", publish.Redact(raw))
	}
	key = path.Base(p)
	u.Path = path.Dir(u.Path)
	return u.String(), key, nil
}

// writeRaw copies a file input into each file asset that reads it.
func (b *Builder) writeRaw(ctx context.Context, bundle *Bundle, src *Source, dir string, serving *publish.Manifest) (inputOut, error) {
	out := inputOut{input: publish.Input{Name: src.Name, URL: src.URL, Files: src.Files}}
	for _, name := range sortedKeys(bundle.Assets) {
		spec := bundle.Assets[name]
		if spec.Input != src.Name {
			continue
		}
		f, err := b.Registry.Lookup(spec.Format)
		if err != nil {
			return out, err
		}
		info := f.Info()
		cfg := bundle.configs[name].(formats.RawConfig)
		mode := src.rawMode
		if m, ok := cfg.Mode(); ok {
			mode = m
		}
		mode = mode&0o755 | 0o600 // what a pull gives it (publish.Asset.FileMode)
		a := publish.Asset{Name: name, File: name + info.Ext, Format: info.Name, FormatVersion: info.Version,
			MediaType: info.MediaType, Options: cfg.Options(), Mode: fmt.Sprintf("%04o", uint32(mode))}
		md5sum, err := copyRaw(ctx, src, filepath.Join(dir, a.File), &a)
		if err != nil {
			return out, fmt.Errorf("asset %q: %w", name, err)
		}
		// The bytes copied must be the ones the fingerprint names.
		if sum := src.Files[0].Checksum; a.Size != src.Files[0].Size || (strings.HasPrefix(sum, "sha256:") && sum != "sha256:"+a.SHA256) || (strings.HasPrefix(sum, "md5:") && sum != "md5:"+md5sum) {
			return out, fmt.Errorf("%w: input %q: %s changed while it was read (%d bytes, %d when listed): the fingerprint would not match the bytes shipped; run again", ErrInput, src.Name, src.URL, a.Size, src.Files[0].Size)
		}
		b.log().Info("asset sealed", "asset", a.Name, "format", a.Format, "bytes", a.Size, "sha256", a.SHA256, "mode", a.Mode)
		out.assets = append(out.assets, a)
		// Only size applies to a file (the spec allows no other check).
		run := &assetRun{name: name, input: src.Name, checks: bundle.checks[name], stats: &inputStats{}, assets: []publish.Asset{a}, prev: serving, channel: bundle.Channel}
		checks, _ := run.evaluate()
		out.checks = append(out.checks, checks...)
	}
	return out, nil
}

// copyRaw copies a file input's bytes to dst, filling a's size and
// sha256; it returns their MD5 too, to compare with a store's checksum.
func copyRaw(ctx context.Context, src *Source, dst string, a *publish.Asset) (string, error) {
	r, err := src.bucket.NewReader(ctx, src.raw, nil)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("two assets would be written to %s; rename one of them", filepath.Base(dst))
	}
	if err != nil {
		return "", err
	}
	h, m := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(f, h, m), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	a.Size, a.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return hex.EncodeToString(m.Sum(nil)), nil
}
