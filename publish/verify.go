package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"gocloud.dev/gcerrors"
)

// DeepCheck opens an asset with its format's reader and checks its
// structure. The caller supplies it, since publish does not know formats.
type DeepCheck func(ctx context.Context, a Asset, f *os.File) error

// VerifyRequest names what to verify: some releases of a bundle, or all
// releases of every bundle.
type VerifyRequest struct {
	Bundle   string
	Releases []string
	All      bool
	Deep     DeepCheck // optional: also open each asset
	TempDir  string    // for deep checks; default os.TempDir()
}

// BlobProblem is a blob that is missing or does not match its manifest.
type BlobProblem struct {
	SHA256   string   `json:"sha256"`
	Problem  string   `json:"problem"` // "missing", "corrupt", "unreadable"
	Detail   string   `json:"detail"`
	Assets   []string `json:"assets"`   // bundle/release/asset that use it
	Releases []string `json:"releases"` // bundle/release it breaks
}

// VerifyReport is what Verify found. OK is true when nothing is wrong.
type VerifyReport struct {
	OK              bool          `json:"ok"`
	ReleasesChecked int           `json:"releases_checked"`
	BlobsChecked    int           `json:"blobs_checked"`
	BytesChecked    int64         `json:"bytes_checked"`
	ChannelsChecked int           `json:"channels_checked"`
	Blobs           []BlobProblem `json:"blob_problems"`
	BrokenReleases  []string      `json:"broken_releases"`
	BadManifests    []string      `json:"bad_manifests"`
	BrokenChannels  []string      `json:"broken_channels"`
	LogProblems     []LogProblem  `json:"log_problems"`        // objects in channel folders that readers skip
	Leftovers       *Leftovers    `json:"leftovers,omitempty"` // with All over the whole store

	heads []channelHead // each readable channel head, for the channels serving a broken release
}

type channelHead struct {
	channel string // bundle/channel
	seq     int64
	release string // bundle/release
}

// Leftovers are what killed or interrupted commands leave in a store. They
// break nothing (no release names them), so verify reports them without
// failing, and gc removes them once they are older than its --grace.
type Leftovers struct {
	Blobs        int   `json:"unreferenced_blobs"` // blobs no manifest names: uploads of a publish that never wrote its manifest
	BlobBytes    int64 `json:"unreferenced_bytes"`
	Staging      int   `json:"staging_files"` // file:// .tmp files of killed writes
	StagingBytes int64 `json:"staging_bytes"`
	StaleLeases  int   `json:"stale_leases"`  // leases of processes that died
	StaleRepairs int   `json:"stale_repairs"` // quarantine markers of repairs that died
}

// Err returns ErrVerify describing the report's problems, or nil.
func (r *VerifyReport) Err() error {
	if r.OK {
		return nil
	}
	return fmt.Errorf("%w: %d blob problems, %d broken releases, %d bad manifests, %d broken channels, %d channel log problems",
		ErrVerify, len(r.Blobs), len(r.BrokenReleases), len(r.BadManifests), len(r.BrokenChannels), len(r.LogProblems))
}

// Verify re-hashes every blob of the chosen releases against their
// manifests, once per blob however many releases share it, and checks that
// every channel head of the bundles names a readable release.
func Verify(ctx context.Context, s *Store, req VerifyRequest) (*VerifyReport, error) {
	type use struct{ asset, release string }
	rep := &VerifyReport{Blobs: []BlobProblem{}, BrokenReleases: []string{}, BadManifests: []string{},
		BrokenChannels: []string{}, LogProblems: []LogProblem{}}
	uses := map[string][]use{}
	assets := map[string]Asset{}
	bundles := []string{req.Bundle}
	if req.All && req.Bundle == "" {
		var err error
		if bundles, err = s.Bundles(ctx); err != nil {
			return nil, err
		}
	}
	for _, b := range bundles {
		rels := req.Releases
		if req.All {
			var err error
			if rels, err = s.Releases(ctx, b); err != nil {
				return nil, err
			}
		}
		for _, r := range rels {
			m, _, err := s.ReadManifest(ctx, b, r)
			if err != nil {
				if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) {
					rep.BadManifests = append(rep.BadManifests, fmt.Sprintf("%s/%s: %v", b, r, err))
					continue
				}
				return nil, err
			}
			rep.ReleasesChecked++
			for _, a := range m.Assets {
				uses[a.SHA256] = append(uses[a.SHA256], use{b + "/" + r + "/" + a.Name, b + "/" + r})
				assets[a.SHA256] = a
			}
		}
		if err := verifyChannels(ctx, s, b, rep); err != nil {
			return nil, err
		}
	}
	shas := make([]string, 0, len(assets))
	for sha := range assets {
		shas = append(shas, sha)
	}
	sort.Strings(shas)
	broken := map[string]bool{}
	for _, sha := range shas {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a := assets[sha]
		problem, detail := checkBlob(ctx, s, a, req)
		rep.BlobsChecked++
		if problem == "" {
			rep.BytesChecked += a.Size
			continue
		}
		bp := BlobProblem{SHA256: sha, Problem: problem, Detail: detail}
		for _, u := range uses[sha] {
			bp.Assets = append(bp.Assets, u.asset)
			if !broken[u.release] {
				broken[u.release] = true
				bp.Releases = append(bp.Releases, u.release)
			}
		}
		rep.Blobs = append(rep.Blobs, bp)
	}
	for r := range broken {
		rep.BrokenReleases = append(rep.BrokenReleases, r)
	}
	// A channel whose release has a bad blob is broken too: a box pulling
	// it fails (or, for a corrupt blob of the right size, only the hash
	// check saves it).
	for _, h := range rep.heads {
		if broken[h.release] {
			rep.BrokenChannels = append(rep.BrokenChannels, fmt.Sprintf("%s #%d serves %s, which has bad blobs (above)", h.channel, h.seq, h.release))
		}
	}
	if req.All && req.Bundle == "" {
		used := map[string]bool{}
		for sha := range assets {
			used[sha] = true
		}
		left, err := leftovers(ctx, s, used)
		if err != nil {
			return nil, err
		}
		rep.Leftovers = left
	}
	sort.Strings(rep.BrokenReleases)
	rep.OK = len(rep.Blobs) == 0 && len(rep.BadManifests) == 0 && len(rep.BrokenChannels) == 0 && len(rep.LogProblems) == 0
	return rep, nil
}

// checkBlob streams one blob through sha256; with a deep check it also
// copies it to a temporary file and opens it with its format.
func checkBlob(ctx context.Context, s *Store, a Asset, req VerifyRequest) (problem, detail string) {
	if err := s.hooks.op(ctx, "read "+blobKey(a.SHA256)); err != nil {
		return "unreadable", err.Error()
	}
	r, err := s.bucket.NewReader(ctx, blobKey(a.SHA256), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return "missing", ""
	}
	if err != nil {
		return "unreadable", err.Error()
	}
	defer r.Close()
	var w io.Writer // nil: hash only
	var tmp *os.File
	if req.Deep != nil {
		if tmp, err = os.CreateTemp(req.TempDir, "verify-*"); err != nil {
			return "unreadable", err.Error()
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	h := sha256.New()
	n, err := copyHashed(w, io.LimitReader(r, a.Size+1), h)
	if err != nil {
		return "unreadable", err.Error()
	}
	if n != a.Size {
		return "corrupt", fmt.Sprintf("%d bytes, the manifest says %d", n, a.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return "corrupt", "content has sha256 " + got
	}
	if req.Deep != nil {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "unreadable", err.Error()
		}
		if err := req.Deep(ctx, a, tmp); err != nil {
			return "corrupt", fmt.Sprintf("%s reader: %v", a.Format, err)
		}
	}
	return "", ""
}

// verifyChannels checks that each channel's head names a release whose
// manifest exists and has the digest the entry recorded.
func verifyChannels(ctx context.Context, s *Store, bundle string, rep *VerifyReport) error {
	chans, err := s.Channels(ctx, bundle)
	if err != nil {
		return err
	}
	for _, ch := range chans {
		rep.ChannelsChecked++
		problems, err := s.LogProblems(ctx, bundle, ch)
		if err != nil {
			return err
		}
		rep.LogProblems = append(rep.LogProblems, problems...)
		head, err := s.Head(ctx, bundle, ch)
		if err != nil {
			if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) {
				rep.BrokenChannels = append(rep.BrokenChannels, fmt.Sprintf("%s/%s: %v", bundle, ch, err))
				continue
			}
			return err
		}
		if head == nil {
			continue
		}
		m, digest, err := s.ReadManifest(ctx, bundle, head.Release)
		switch {
		case err != nil:
			rep.BrokenChannels = append(rep.BrokenChannels, fmt.Sprintf("%s/%s #%d names %s: %v", bundle, ch, head.Seq, head.Release, err))
		case digest != head.ManifestSHA256:
			rep.BrokenChannels = append(rep.BrokenChannels, fmt.Sprintf("%s/%s #%d: manifest of %s has sha256 %s, the entry says %s", bundle, ch, head.Seq, head.Release, digest, head.ManifestSHA256))
		default:
			if err := s.CheckComplete(ctx, m); err != nil {
				rep.BrokenChannels = append(rep.BrokenChannels, fmt.Sprintf("%s/%s #%d: %v", bundle, ch, head.Seq, err))
			} else {
				rep.heads = append(rep.heads, channelHead{bundle + "/" + ch, head.Seq, bundle + "/" + head.Release})
			}
		}
	}
	return nil
}

// leftovers counts the store's unreferenced blobs, staging files and stale
// leases, given the blobs that readable manifests name.
func leftovers(ctx context.Context, s *Store, used map[string]bool) (*Leftovers, error) {
	l := &Leftovers{}
	unused, err := unusedBlobs(ctx, s, used)
	if err != nil {
		return nil, err
	}
	for _, b := range unused {
		l.Blobs++
		l.BlobBytes += b.size
	}
	for _, f := range s.staging(time.Now()) {
		l.Staging++
		l.StagingBytes += f.size
	}
	leases, err := s.leases(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, r := range leases {
		if !r.live() {
			l.StaleLeases++
		}
	}
	repairs, err := s.staleRepairs(ctx)
	if err != nil {
		return nil, err
	}
	l.StaleRepairs = len(repairs)
	return l, nil
}
