package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// GCOptions says what garbage collection keeps. A release is kept if any of
// these hold; everything else, and every blob no kept release uses, goes.
type GCOptions struct {
	KeepReleases int           // the newest N releases of each bundle
	KeepHistory  int           // releases named by the last N entries of each channel (its head always)
	Grace        time.Duration // anything younger: it may belong to a publish in flight
	DryRun       bool
	Now          func() time.Time
}

// GCReport says what GC removed (or, dry, would remove).
type GCReport struct {
	DryRun          bool     `json:"dry_run"`
	ReleasesKept    int      `json:"releases_kept"`
	ReleasesDeleted []string `json:"releases_deleted"` // bundle/release
	BlobsKept       int      `json:"blobs_kept"`
	BlobsDeleted    int      `json:"blobs_deleted"`
	BytesDeleted    int64    `json:"bytes_deleted"`
}

// GC deletes releases no channel needs and blobs no kept release uses.
// Channel logs are never touched: history stays readable, though an old
// entry may then name a release that is gone.
//
// Invariant 11: a publish racing GC may reuse a blob GC has chosen to delete.
// GC therefore re-lists the manifests just before it deletes blobs and spares
// every blob a manifest it has not seen uses; and Publish, after writing its
// manifest, checks that all its blobs still exist and uploads any that went,
// before the build record makes the release known.
func GC(ctx context.Context, s *Store, opts GCOptions) (*GCReport, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-opts.Grace)
	rep := &GCReport{DryRun: opts.DryRun, ReleasesDeleted: []string{}}
	bundles, err := s.Bundles(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, b := range bundles {
		if err := gcBundle(ctx, s, b, opts, cutoff, used, rep); err != nil {
			return nil, err
		}
	}
	candidates, err := unusedBlobs(ctx, s, used, cutoff)
	if err != nil {
		return nil, err
	}
	// Re-list just before deleting: spare blobs of manifests written since.
	if err := markUsed(ctx, s, used); err != nil {
		return nil, err
	}
	for _, c := range candidates {
		if used[c.sha] {
			continue
		}
		if !opts.DryRun {
			if err := s.bucket.Delete(ctx, blobKey(c.sha)); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("delete blob %s: %w", c.sha, err)
			}
		}
		rep.BlobsDeleted++
		rep.BytesDeleted += c.size
	}
	rep.BlobsKept = len(used)
	slices.Sort(rep.ReleasesDeleted)
	return rep, nil
}

// gcBundle decides which releases of one bundle to keep, deletes the rest
// (build record first, then manifest) and marks the blobs the kept ones use.
func gcBundle(ctx context.Context, s *Store, bundle string, opts GCOptions, cutoff time.Time, used map[string]bool, rep *GCReport) error {
	rels, err := s.Releases(ctx, bundle)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	chans, err := s.Channels(ctx, bundle)
	if err != nil {
		return err
	}
	for _, ch := range chans {
		hist, err := s.History(ctx, bundle, ch)
		if err != nil {
			return err
		}
		n := max(opts.KeepHistory, 1)
		for _, e := range hist[max(0, len(hist)-n):] {
			keep[e.Release] = true
		}
	}
	type rel struct {
		m   *Manifest
		err error
	}
	all := make([]rel, 0, len(rels))
	for _, id := range rels {
		m, _, err := s.ReadManifest(ctx, bundle, id)
		if err != nil && !errors.Is(err, ErrVerify) {
			return err
		}
		all = append(all, rel{m, err})
	}
	// Newest first by creation time; unreadable manifests are kept for a person to look at.
	slices.SortFunc(all, func(a, b rel) int {
		if a.m == nil || b.m == nil {
			return 0
		}
		return b.m.Created.Compare(a.m.Created)
	})
	for i, r := range all {
		if r.m == nil {
			rep.ReleasesKept++
			continue
		}
		if i < opts.KeepReleases || keep[r.m.Release] || r.m.Created.After(cutoff) {
			rep.ReleasesKept++
			for _, a := range r.m.Assets {
				used[a.SHA256] = true
			}
			continue
		}
		rep.ReleasesDeleted = append(rep.ReleasesDeleted, bundle+"/"+r.m.Release)
		if opts.DryRun {
			continue
		}
		if rec, err := s.LookupBuild(ctx, bundle, r.m.Fingerprint); err == nil && rec == r.m.Release {
			if err := s.bucket.Delete(ctx, buildKey(bundle, r.m.Fingerprint)); err != nil && !isNotFound(err) {
				return err
			}
		}
		if err := s.bucket.Delete(ctx, manifestKey(bundle, r.m.Release)); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// markUsed marks the blobs of every readable manifest in the store.
func markUsed(ctx context.Context, s *Store, used map[string]bool) error {
	bundles, err := s.Bundles(ctx)
	if err != nil {
		return err
	}
	for _, b := range bundles {
		rels, err := s.Releases(ctx, b)
		if err != nil {
			return err
		}
		for _, id := range rels {
			m, _, err := s.ReadManifest(ctx, b, id)
			if err != nil {
				continue // deleted meanwhile, or unreadable
			}
			for _, a := range m.Assets {
				used[a.SHA256] = true
			}
		}
	}
	return nil
}

type blobInfo struct {
	sha  string
	size int64
}

// unusedBlobs lists blobs that no marked manifest uses and that are older
// than cutoff.
func unusedBlobs(ctx context.Context, s *Store, used map[string]bool, cutoff time.Time) ([]blobInfo, error) {
	var out []blobInfo
	it := s.bucket.List(&blob.ListOptions{Prefix: "blobs/sha256/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		sha := strings.TrimPrefix(obj.Key, "blobs/sha256/")
		if !hexSHA.MatchString(sha) || used[sha] || obj.ModTime.After(cutoff) {
			continue
		}
		out = append(out, blobInfo{sha, obj.Size})
	}
}
