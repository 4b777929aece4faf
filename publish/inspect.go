package publish

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"crypto/sha256"
	"encoding/hex"
)

// Bundles lists the bundles in the store.
func (s *Store) Bundles(ctx context.Context) ([]string, error) {
	return s.list(ctx, "bundles/")
}

// Releases lists a bundle's release ids; ids sort by creation time.
func (s *Store) Releases(ctx context.Context, bundle string) ([]string, error) {
	if err := CheckName("bundle", bundle); err != nil {
		return nil, err
	}
	names, err := s.list(ctx, "bundles/"+bundle+"/releases/")
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if id, ok := strings.CutSuffix(n, ".json"); ok && CheckName("release", id) == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

// Channels lists a bundle's channels.
func (s *Store) Channels(ctx context.Context, bundle string) ([]string, error) {
	if err := CheckName("bundle", bundle); err != nil {
		return nil, err
	}
	return s.list(ctx, "bundles/"+bundle+"/channels/")
}

// FetchAsset copies one asset's blob to a local file, verifying its size and
// sha256, and returns the file opened for reading.
func (s *Store) FetchAsset(ctx context.Context, a Asset, dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "asset-*"+strings.TrimPrefix(a.File, a.Name))
	if err != nil {
		return nil, err
	}
	path := f.Name()
	f.Close()
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	defer root.Close()
	if _, err := fetchBlob(ctx, s, a, root, filepath.Base(path), nil); err != nil {
		os.Remove(path)
		return nil, err
	}
	return os.Open(path)
}

// VerifyBlob re-hashes one asset's blob in the store.
func (s *Store) VerifyBlob(ctx context.Context, a Asset) error {
	r, err := s.bucket.NewReader(ctx, blobKey(a.SHA256), nil)
	if err != nil {
		return fmt.Errorf("%w: asset %q: %v", ErrVerify, a.Name, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, a.Size+1))
	if err != nil {
		return err
	}
	if n != a.Size || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
		return fmt.Errorf("%w: asset %q: blob %s does not match its manifest", ErrVerify, a.Name, a.SHA256)
	}
	return nil
}
