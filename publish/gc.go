package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
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
	LockWait     time.Duration // how long to wait for writers' leases to go
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
	// Unreferenced blobs younger than Grace, kept for now: a publish in
	// flight may be about to name them, or one that was killed left them.
	BlobsYoung     int   `json:"blobs_young"`
	BytesYoung     int64 `json:"bytes_young"`
	StagingDeleted int   `json:"staging_deleted"` // file:// .tmp files of killed writes
	StagingBytes   int64 `json:"staging_bytes"`
	LeasesDeleted  int   `json:"leases_deleted"` // expired leases of killed processes
}

// GC deletes releases no channel needs and blobs no kept release uses, and
// what killed writers left: staging files of a file:// store and expired
// leases. Channel logs are never touched: history stays readable, though an
// old entry may then name a release that is gone.
//
// It holds the store's exclusive lease throughout, so no publish, channel
// move or repair runs while it decides and deletes (invariant 11, see
// lock.go); a dry run holds it too, so its report is what a real run would do.
func GC(ctx context.Context, s *Store, opts GCOptions) (_ *GCReport, err error) {
	ctx, lease, err := s.Lock(ctx, LeaseExclusive, "gc", opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	defer func() { err = LeaseErr(ctx, err) }()
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
	unused, err := unusedBlobs(ctx, s, used)
	if err != nil {
		return nil, err
	}
	for _, c := range unused {
		if c.mod.After(cutoff) {
			rep.BlobsYoung++
			rep.BytesYoung += c.size
			continue
		}
		if !opts.DryRun {
			if err := s.delete(ctx, blobKey(c.sha)); err != nil {
				return nil, fmt.Errorf("delete blob %s: %w", c.sha, err)
			}
		}
		rep.BlobsDeleted++
		rep.BytesDeleted += c.size
	}
	rep.BlobsKept = len(used)
	if err := gcLeftovers(ctx, s, cutoff, opts.DryRun, rep); err != nil {
		return nil, err
	}
	slices.Sort(rep.ReleasesDeleted)
	return rep, nil
}

// gcLeftovers removes expired leases and, on a file:// store, staging files
// older than cutoff: the bytes of writes whose process was killed.
func gcLeftovers(ctx context.Context, s *Store, cutoff time.Time, dry bool, rep *GCReport) error {
	leases, err := s.leases(ctx, false)
	if err != nil {
		return err
	}
	for key, r := range leases {
		if r.live() {
			continue
		}
		rep.LeasesDeleted++
		if !dry {
			if err := s.delete(ctx, key); err != nil {
				return err
			}
		}
	}
	repairs, err := s.staleRepairs(ctx)
	if err != nil {
		return err
	}
	for _, key := range repairs {
		rep.LeasesDeleted++
		if !dry {
			if err := s.delete(ctx, key); err != nil {
				return err
			}
		}
	}
	// A staging file is in flight for seconds (writers upload blobs only
	// under a lease, which gc's excludes), so even --grace 0 spares a minute.
	stagingCutoff := cutoff
	if minute := time.Now().Add(-time.Minute); minute.Before(cutoff) {
		stagingCutoff = minute
	}
	for _, f := range s.staging(stagingCutoff) {
		rep.StagingDeleted++
		rep.StagingBytes += f.size
		if !dry {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

type stagingFile struct {
	path string
	size int64
}

// staging lists a file:// store's staging files last written before cutoff.
func (s *Store) staging(cutoff time.Time) []stagingFile {
	if s.local == "" {
		return nil
	}
	ents, err := os.ReadDir(filepath.Join(s.local, localTmp))
	if err != nil {
		return nil
	}
	var out []stagingFile
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.ModTime().After(cutoff) {
			continue
		}
		out = append(out, stagingFile{filepath.Join(s.local, localTmp, e.Name()), info.Size()})
	}
	return out
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
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case errors.Is(err, ErrVerify):
			// Kept for a person to look at, and so is every blob it may
			// name: any 64-hex-digit string in its bytes.
			if data, rerr := s.read(ctx, manifestKey(bundle, id), MaxManifestBytes); rerr == nil {
				for _, sha := range anySHA.FindAll(data, -1) {
					used[string(sha)] = true
				}
			} else if !errors.Is(rerr, ErrVerify) && !errors.Is(rerr, ErrNotFound) {
				return rerr
			}
		case err != nil:
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
			if err := s.delete(ctx, buildKey(bundle, r.m.Fingerprint)); err != nil {
				return err
			}
		}
		if err := s.delete(ctx, manifestKey(bundle, r.m.Release)); err != nil {
			return err
		}
		// Its signatures after it: a signature without its manifest
		// vouches for nothing.
		prefix := strings.TrimSuffix(manifestKey(bundle, r.m.Release), "json")
		sigs, err := s.list(ctx, prefix)
		if err != nil {
			return err
		}
		for _, n := range sigs {
			if sigName.MatchString(n) { // not another release named R.something
				if err := s.delete(ctx, prefix+n); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
	}
	return nil
}

var anySHA = regexp.MustCompile(`[0-9a-f]{64}`)

// sigName is a signature object's name after its release's "<release>.".
var sigName = regexp.MustCompile(`^[0-9a-f]{16}\.sig$`)

type blobInfo struct {
	sha  string
	size int64
	mod  time.Time
}

// unusedBlobs lists the blobs no marked manifest uses.
func unusedBlobs(ctx context.Context, s *Store, used map[string]bool) ([]blobInfo, error) {
	if err := s.hooks.op(ctx, "list blobs/sha256/"); err != nil {
		return nil, err
	}
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
		if !hexSHA.MatchString(sha) || used[sha] {
			continue
		}
		out = append(out, blobInfo{sha, obj.Size, obj.ModTime})
	}
}
