package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// StagedManifest is the manifest's file name in a staged or pulled release folder.
const StagedManifest = "manifest.json"

// Staged is a sealed release in a local folder: manifest.json and one file per asset.
type Staged struct {
	Dir      string
	Manifest *Manifest
	Raw      []byte // manifest.json's bytes, published as they were sealed
}

// ReadStaged opens a staged release folder.
func ReadStaged(dir string) (*Staged, error) {
	data, err := os.ReadFile(filepath.Join(dir, StagedManifest))
	if err != nil {
		return nil, fmt.Errorf("staged release: %w", err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, err
	}
	return &Staged{Dir: dir, Manifest: m, Raw: data}, nil
}

// PublishOptions tunes Publish.
type PublishOptions struct {
	Parallel int // blob uploads at once; default 4
	// VerifyExisting hashes every blob already in the store before reusing
	// it; without it, a reused blob's size is checked. A blob that does not
	// match is repaired from the staged copy.
	VerifyExisting bool
	LockWait       time.Duration // how long to wait for gc's lease to go
	Logger         *slog.Logger
	Progress       func(asset string, done, total int64) // optional
	// Signer signs the manifest (a signature object written before it);
	// nil for none.
	Signer *Signer
}

// PublishResult says what Publish did.
type PublishResult struct {
	Release       string `json:"release"`
	Unchanged     bool   `json:"unchanged"` // the fingerprint was already published
	BlobsUploaded int    `json:"blobs_uploaded"`
	BlobsSkipped  int    `json:"blobs_skipped"`
	BytesUploaded int64  `json:"bytes_uploaded"`
	BytesSkipped  int64  `json:"bytes_skipped"`
	BlobsRepaired int    `json:"blobs_repaired"` // corrupt blobs in the store replaced from the staged copy
}

// BuildRecord maps a build fingerprint to the release it produced.
type BuildRecord struct {
	Fingerprint string    `json:"fingerprint"`
	Release     string    `json:"release"`
	Created     time.Time `json:"created"`
}

// LookupBuild returns the release published for a fingerprint, or ErrNotFound.
func (s *Store) LookupBuild(ctx context.Context, bundle, fingerprint string) (string, error) {
	if err := CheckName("fingerprint", fingerprint); err != nil {
		return "", err
	}
	data, err := s.read(ctx, buildKey(bundle, fingerprint), MaxEntryBytes)
	if err != nil {
		return "", err
	}
	var rec BuildRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", fmt.Errorf("%w: build record %s: %v", ErrVerify, fingerprint, err)
	}
	if err := CheckName("release", rec.Release); err != nil {
		return "", fmt.Errorf("%w: build record %s: %v", ErrVerify, fingerprint, err)
	}
	return rec.Release, nil
}

// Publish uploads a staged release: its blobs, then its manifest, then the
// build record, each create-if-absent (invariant 2). Blobs already in the
// store are not uploaded again. If the fingerprint was published before,
// nothing is written and the result names the existing release.
func Publish(ctx context.Context, s *Store, st *Staged, opts PublishOptions) (_ *PublishResult, err error) {
	m := st.Manifest
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Nothing is uploaded before the manifest that names it passes the
	// checks pull will make.
	if err := m.Validate(); err != nil {
		return nil, err
	}
	ctx, lease, err := s.Lock(ctx, LeaseShared, "publish "+m.Bundle+"/"+m.Release, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	defer func() { err = LeaseErr(ctx, err) }()
	if rel, err := s.LookupBuild(ctx, m.Bundle, m.Fingerprint); err == nil && !s.recordStale(ctx, m, rel, log) {
		// Published before. Its blobs are the staged ones (builds are
		// deterministic): put back any that went missing or bad, so a rerun
		// heals the store instead of saying "unchanged" over a broken release.
		if old, _, err := s.ReadManifest(ctx, m.Bundle, rel); err == nil && old.Fingerprint != m.Fingerprint {
			return nil, fmt.Errorf("%w: the build record of fingerprint %.12s names release %s, whose manifest has fingerprint %.12s: the store was changed by hand; remove %s and publish again",
				ErrVerify, m.Fingerprint, rel, old.Fingerprint, buildKey(m.Bundle, m.Fingerprint))
		}
		res := &PublishResult{Release: rel, Unchanged: true}
		if err := healRelease(ctx, s, st, rel, opts, res, log); err != nil {
			return nil, err
		}
		if opts.Signer != nil {
			// Published before, perhaps unsigned or by another key: sign
			// the stored manifest too.
			_, raw, err := s.readManifest(ctx, m.Bundle, rel)
			if err != nil {
				return nil, err
			}
			if err := s.SignRelease(ctx, m.Bundle, rel, raw, opts.Signer); err != nil {
				return nil, err
			}
		}
		return res, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	res := &PublishResult{Release: m.Release}
	defer func() {
		// Interrupted: uploads in flight were cancelled and leave nothing;
		// finished ones stay, named by no release until a rerun reuses them.
		if err != nil && ctx.Err() != nil && res.BlobsUploaded > 0 {
			err = fmt.Errorf("%w; %d blobs (%d bytes) uploaded before it stay in the store, named by no release: a rerun reuses them, or gc removes them after its --grace", err, res.BlobsUploaded, res.BytesUploaded)
		}
	}()
	if err := uploadBlobs(ctx, s, st, st.Manifest.Assets, opts, res, log); err != nil {
		return nil, err
	}
	data := st.Raw
	if data == nil {
		var err error
		if data, err = m.Encode(); err != nil {
			return nil, err
		}
	}
	if opts.Signer != nil {
		// Before the manifest: a signed store never shows a manifest
		// without its signature.
		if err := s.SignRelease(ctx, m.Bundle, m.Release, data, opts.Signer); err != nil {
			return nil, err
		}
	}
	if err := s.createBytes(ctx, manifestKey(m.Bundle, m.Release), data); err != nil {
		if !errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("write manifest: %w", err)
		}
		old, rerr := s.read(ctx, manifestKey(m.Bundle, m.Release), MaxManifestBytes)
		if rerr != nil {
			return nil, rerr
		}
		if sha256Hex(old) != sha256Hex(data) {
			return nil, fmt.Errorf("release %s: %w", m.Release, ErrReleaseExists)
		}
	}
	rec, _ := json.Marshal(BuildRecord{Fingerprint: m.Fingerprint, Release: m.Release, Created: m.Created})
	if err := s.createBytes(ctx, buildKey(m.Bundle, m.Fingerprint), rec); err != nil {
		if !errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("write build record: %w", err)
		}
		// A concurrent publish of the same inputs won; its release is the one.
		rel, err := s.LookupBuild(ctx, m.Bundle, m.Fingerprint)
		if err != nil {
			return nil, err
		}
		if rel != m.Release {
			return &PublishResult{Release: rel, Unchanged: true}, nil
		}
	}
	log.Info("release published", "bundle", m.Bundle, "release", m.Release,
		"blobs_uploaded", res.BlobsUploaded, "bytes_uploaded", res.BytesUploaded, "blobs_skipped", res.BlobsSkipped)
	return res, nil
}

// recordStale reports whether the build record of m's fingerprint names a
// release whose manifest is gone (a gc or a person removed it), and if so
// removes the record so that this publish can take its place.
func (s *Store) recordStale(ctx context.Context, m *Manifest, rel string, log *slog.Logger) bool {
	if _, _, err := s.ReadManifest(ctx, m.Bundle, rel); !errors.Is(err, ErrNotFound) {
		return false
	}
	log.Warn("the build record names a release that is gone; publishing this build in its place", "fingerprint", m.Fingerprint, "release", rel)
	return s.delete(ctx, buildKey(m.Bundle, m.Fingerprint)) == nil
}

// healRelease re-uploads or repairs the blobs of an already published
// release that the staged release also has.
func healRelease(ctx context.Context, s *Store, st *Staged, rel string, opts PublishOptions, res *PublishResult, log *slog.Logger) error {
	old, _, err := s.ReadManifest(ctx, st.Manifest.Bundle, rel)
	if err != nil {
		return err
	}
	staged := map[string]Asset{}
	for _, a := range st.Manifest.Assets {
		staged[a.SHA256] = a
	}
	var assets []Asset
	var others []Asset
	for _, a := range old.Assets {
		if sa, ok := staged[a.SHA256]; ok {
			assets = append(assets, sa)
		} else {
			others = append(others, a)
		}
	}
	// Blobs this build did not reproduce can only be checked.
	if err := s.CheckComplete(ctx, &Manifest{Release: rel, Assets: others}); err != nil {
		return fmt.Errorf("%w (this build's bytes differ from the release's, so it cannot put them back)", err)
	}
	if err := uploadBlobs(ctx, s, st, assets, opts, res, log); err != nil {
		return err
	}
	if res.BlobsUploaded > 0 || res.BlobsRepaired > 0 {
		log.Warn("release was missing or had corrupt blobs; put back from this build", "release", rel,
			"uploaded", res.BlobsUploaded, "repaired", res.BlobsRepaired)
	}
	return nil
}

func uploadBlobs(ctx context.Context, s *Store, st *Staged, assets []Asset, opts PublishOptions, res *PublishResult, log *slog.Logger) error {
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, parallel)
		up, sk   atomic.Int64
		upN, skN atomic.Int64
		repaired atomic.Int64
	)
	for _, a := range assets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			did, err := uploadBlob(ctx, s, filepath.Join(st.Dir, a.File), a, opts, log)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("asset %q: %w", a.Name, err)
					cancel()
				}
				mu.Unlock()
				return
			}
			switch did {
			case uploaded, repairedBlob:
				up.Add(a.Size)
				upN.Add(1)
				if did == repairedBlob {
					repaired.Add(1)
				}
				log.Info("blob uploaded", "asset", a.Name, "sha256", a.SHA256, "bytes", a.Size, "repaired", did == repairedBlob)
			default:
				sk.Add(a.Size)
				skN.Add(1)
			}
		}()
	}
	wg.Wait()
	res.BytesUploaded, res.BytesSkipped = up.Load(), sk.Load()
	res.BlobsUploaded, res.BlobsSkipped = int(upN.Load()), int(skN.Load())
	res.BlobsRepaired = int(repaired.Load())
	return firstErr
}

type uploadOutcome int

const (
	reused uploadOutcome = iota
	uploaded
	repairedBlob
)

// uploadBlob creates the blob unless it exists, checking the staged file
// against the manifest as it goes. A blob already in the store is checked
// before it is reused (its size; its sha256 with VerifyExisting) and
// repaired from the staged file if it does not match.
func uploadBlob(ctx context.Context, s *Store, path string, a Asset, opts PublishOptions, log *slog.Logger) (uploadOutcome, error) {
	key := blobKey(a.SHA256)
	size, err := s.blobSize(ctx, a.SHA256)
	switch {
	case err == nil:
		bad := ""
		if size != a.Size {
			bad = fmt.Sprintf("%d bytes, want %d", size, a.Size)
		} else if opts.VerifyExisting {
			if problem, detail := checkBlob(ctx, s, a, VerifyRequest{}); problem != "" {
				bad = problem + ": " + detail
			}
		}
		if bad == "" {
			return reused, nil
		}
		log.Warn("blob in the store is corrupt; repairing it from the staged copy", "asset", a.Name, "sha256", a.SHA256, "problem", bad)
		if err := RepairBlob(ctx, s, a, path); err != nil {
			return reused, err
		}
		return repairedBlob, nil
	case !isNotFound(err):
		return reused, err
	}
	f, err := os.Open(path)
	if err != nil {
		return reused, err
	}
	defer f.Close()
	var r io.ReadSeeker = f
	if opts.Progress != nil {
		r = &progressReader{r: f, name: a.Name, total: a.Size, fn: opts.Progress}
	}
	err = s.create(ctx, key, r, &want{a.Size, a.SHA256})
	if errors.Is(err, ErrExists) {
		return reused, nil
	}
	if err != nil {
		return reused, err
	}
	return uploaded, nil
}

// verifyFile hashes a local file and compares it with the manifest's record.
func verifyFile(path string, a Asset) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != a.Size {
		return fmt.Errorf("%w: asset %q (%s) is %d bytes, the manifest says %d", ErrVerify, a.Name, path, n, a.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return fmt.Errorf("%w: asset %q (%s) has sha256 %s, the manifest says %s", ErrVerify, a.Name, path, got, a.SHA256)
	}
	return nil
}

type progressReader struct {
	r     io.ReadSeeker
	name  string
	done  int64
	total int64
	fn    func(string, int64, int64)
}

func (p *progressReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.r.Seek(off, whence)
	p.done = n
	return n, err
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.fn(p.name, p.done, p.total)
	return n, err
}
