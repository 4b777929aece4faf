package publish

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/gcerrors"
)

// A pulled folder:
//
//	DIR/current -> releases/<release>      symlink, swapped atomically
//	DIR/releases/<release>/manifest.json   the manifest, as stored
//	DIR/releases/<release>/<asset file>    every asset, verified
const (
	CurrentLink = "current"
	ReleasesDir = "releases"
)

// PullRequest asks for the release a channel names (or a given release).
type PullRequest struct {
	Bundle, Channel string
	Release         string // optional: pull this release instead of the channel's
	Dest            string
	Keep            int // releases to keep in Dest, current included; default 3
	Logger          *slog.Logger
	Progress        func(asset string, done, total int64) // optional
	ServerVersion   string                                // refuse a release this server version cannot load
	// Check, when set, opens each asset with its format's reader before
	// the swap (the verify --deep code): a file whose bytes match the
	// manifest but that its format cannot read is refused.
	Check DeepCheck
	// Trust, when set, refuses what a trusted key did not sign: the
	// channel's head entry and the release's manifest. It also refuses a
	// head whose sequence number is below the highest this Dest accepted
	// before (a replayed old head); that number is kept in Dest.
	Trust Keyring
}

// PullResult says what Pull did.
type PullResult struct {
	Release    string   `json:"release"`
	Seq        int64    `json:"seq"`
	Path       string   `json:"path"`
	Downloaded int64    `json:"bytes_downloaded"`
	Reused     bool     `json:"reused"` // the release was already in Dest, re-verified
	Previous   string   `json:"previous"`
	Removed    []string `json:"removed"`
}

// Pull goes channel -> manifest -> blobs, checking a digest at each step,
// into a fresh folder, then swaps DIR/current to it with one rename. Any
// failure leaves DIR/current as it was.
func Pull(ctx context.Context, s *Store, req PullRequest) (*PullResult, error) {
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if req.Keep <= 0 {
		req.Keep = 3
	}
	release, wantDigest, seq := req.Release, "", int64(0)
	if release == "" {
		head, err := s.Head(ctx, req.Bundle, req.Channel)
		if err != nil {
			return nil, err
		}
		if head == nil {
			return nil, fmt.Errorf("channel %s of bundle %s has never been promoted: %w", req.Channel, req.Bundle, ErrNotFound)
		}
		release, wantDigest, seq = head.Release, head.ManifestSHA256, head.Seq
		if req.Trust != nil {
			if err := req.Trust.VerifyEntry(head); err != nil {
				return nil, err
			}
		}
	}
	m, raw, err := s.readManifest(ctx, req.Bundle, release)
	if err != nil {
		if seq > 0 && errors.Is(err, ErrNotFound) {
			// The channel names it, so the store is damaged, not the request.
			return nil, fmt.Errorf("%w: channel %s entry %d names release %s, which is not in the store: %v; promote another release (lockstep ls)", ErrVerify, req.Channel, seq, release, err)
		}
		return nil, err
	}
	digest := sha256Hex(raw)
	if wantDigest != "" && digest != wantDigest {
		return nil, fmt.Errorf("%w: manifest of release %s has sha256 %s, channel %s entry %d says %s", ErrVerify, release, digest, req.Channel, seq, wantDigest)
	}
	if req.Trust != nil {
		if err := s.VerifyRelease(ctx, req.Bundle, release, raw, req.Trust); err != nil {
			return nil, err
		}
	}
	if err := m.CheckServer(req.ServerVersion); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(req.Dest, 0o755); err != nil {
		return nil, err
	}
	if err := inRoot(req.Dest, func(r *os.Root) error { return r.MkdirAll(ReleasesDir, 0o755) }); err != nil {
		return nil, err
	}
	unlock, err := lockDir(ctx, req.Dest)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if req.Trust != nil && seq > 0 {
		// Under DIR's lock: no other pull can accept a higher entry
		// between this check and the swap.
		if acc, err := acceptedSeq(req.Dest, req.Bundle, req.Channel); err != nil {
			return nil, err
		} else if seq < acc {
			return nil, fmt.Errorf("%w: channel %s of bundle %s is at entry %d, but this box accepted entry %d before: entries were removed or an old head replayed; keeping what it serves (look at lockstep history)",
				ErrSignature, req.Channel, req.Bundle, seq, acc)
		}
	}
	cleanDead(req.Dest, release, log)
	relDir := filepath.Join(req.Dest, ReleasesDir, release)
	res := &PullResult{Release: release, Seq: seq, Path: relDir}
	if err := verifyDir(ctx, relDir, m); err == nil {
		res.Reused = true
	} else {
		dir, n, err := download(ctx, s, m, raw, req.Dest, req.Progress)
		if err != nil {
			return nil, err
		}
		res.Path, res.Downloaded = dir, n
	}
	if req.Check != nil {
		if err := checkDir(ctx, res.Path, m, req.Check); err != nil {
			if !res.Reused {
				_ = inRoot(req.Dest, func(r *os.Root) error { // refused: nothing of it stays
					return r.RemoveAll(path.Join(ReleasesDir, filepath.Base(res.Path)))
				})
			}
			return nil, err
		}
	}
	if req.Trust != nil && seq > 0 {
		// Before the swap: a box never serves an entry it has not recorded.
		if err := acceptSeq(req.Dest, req.Bundle, req.Channel, seq); err != nil {
			return nil, err
		}
	}
	prev, err := swapCurrent(req.Dest, filepath.Base(res.Path))
	if err != nil {
		return nil, err
	}
	res.Previous = prev
	res.Removed = prune(req.Dest, req.Keep, filepath.Base(res.Path))
	if res.Removed == nil {
		res.Removed = []string{}
	}
	log.Info("release swapped in", "bundle", req.Bundle, "release", release, "bytes", res.Downloaded, "previous", prev)
	return res, nil
}

// download fetches every asset into DIR/releases/.partial-<release>,
// verifying each, and renames the folder into place. The partial folder is
// kept across a crash: a rerun keeps the assets already complete (after
// re-hashing them) and resumes a cut-off one from where it stopped, so a
// killed pull never downloads a finished asset again. A damaged copy
// already on disk may be the one DIR/current serves, so it is never
// touched: the new copy gets a fresh name beside it, and prune removes the
// old one once it is not current. Every write goes through an os.Root on
// DIR, so no name in a manifest can reach outside it.
func download(ctx context.Context, s *Store, m *Manifest, raw []byte, dest string, progress func(string, int64, int64)) (string, int64, error) {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return "", 0, err
	}
	defer root.Close()
	part := path.Join(ReleasesDir, partialPrefix+m.Release)
	if err := root.MkdirAll(part, 0o755); err != nil {
		return "", 0, err
	}
	var need int64 = int64(len(raw))
	for _, a := range m.Assets {
		if fi, err := root.Lstat(path.Join(part, a.File)); err == nil && fi.Mode().IsRegular() && fi.Size() <= a.Size {
			need += a.Size - fi.Size()
		} else {
			need += a.Size
		}
	}
	if free, err := freeSpace(dest); err == nil && uint64(need)+spaceMargin > free {
		return "", 0, fmt.Errorf("%w: %s has %s free, and release %s needs %s more (plus a margin of %s): free some space, or keep fewer releases (--keep)",
			ErrNoSpace, dest, sizeText(int64(free)), m.Release, sizeText(need), sizeText(spaceMargin))
	}
	total, err := fetchAll(ctx, s, m.Assets, root, part, progress)
	if errors.Is(err, ErrVerify) {
		// The store's copy is bad: nothing here is worth resuming. (A
		// crash or a network error keeps the folder for the next pull.)
		_ = root.RemoveAll(part)
	}
	if err != nil {
		return "", 0, err
	}
	for _, a := range m.Assets {
		// The mode the manifest records: a server binary's executable bit.
		mode, _ := a.FileMode() // checked by DecodeManifest
		if err := root.Chmod(path.Join(part, a.File), mode); err != nil {
			return "", 0, err
		}
	}
	_ = root.Remove(path.Join(part, StagedManifest)) // from a run killed after writing it
	if err := writeRootSync(root, path.Join(part, StagedManifest), raw); err != nil {
		return "", 0, err
	}
	// Every file was fsynced as it was written; the folder's entries too,
	// before the rename makes it a release.
	if err := syncDir(filepath.Join(dest, filepath.FromSlash(part))); err != nil {
		return "", 0, err
	}
	final := m.Release
	if _, err := root.Lstat(path.Join(ReleasesDir, final)); err == nil {
		final += "~" + randHex(4)
	}
	if err := root.Rename(part, path.Join(ReleasesDir, final)); err != nil {
		return "", 0, err
	}
	return filepath.Join(dest, ReleasesDir, final), total, syncDir(filepath.Join(dest, ReleasesDir))
}

// inRoot runs fn on an os.Root of dir: every write under a pulled folder
// goes through one, so no name can reach outside it.
func inRoot(dir string, fn func(*os.Root) error) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

// partialPrefix names a release folder being downloaded.
const partialPrefix = ".partial-"

// ErrNoSpace is a pull that the destination's free space cannot hold.
var ErrNoSpace = errors.New("not enough disk space")

// spaceMargin is left free beyond what a release needs.
const spaceMargin = 64 << 20

// freeSpace is the space left for an unprivileged user at path; a variable
// so that tests can run out of it.
var freeSpace = func(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func sizeText(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// writeRootSync writes a new file under root and fsyncs it.
func writeRootSync(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	return writeSync(f, err, data)
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	return writeSync(f, err, data)
}

// writeSync writes data to a new file and fsyncs it.
func writeSync(f *os.File, err error, data []byte) error {
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockDir takes DIR/.lock, so two pulls into one folder take turns.
func lockDir(ctx context.Context, dir string) (func(), error) {
	var f *os.File
	err := inRoot(dir, func(r *os.Root) (err error) {
		f, err = r.OpenFile(".lock", os.O_CREATE|os.O_RDWR, 0o644)
		return err
	})
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			f.Close()
			return nil, err
		}
	}
}

// pullParallel is how many blobs a pull fetches at once: hashing is the
// cost of a local or fast store, and it then runs on every core.
const pullParallel = 4

// fetchAll fetches every asset's blob into dir, pullParallel at a time, and
// returns the bytes fetched. On a failure the others are cancelled, and the
// error of the first failing asset in manifest order is returned (not a
// cancellation it caused elsewhere).
func fetchAll(ctx context.Context, s *Store, assets []Asset, root *os.Root, dir string, progress func(string, int64, int64)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if progress != nil {
		var mu sync.Mutex
		inner := progress
		progress = func(name string, n, size int64) {
			mu.Lock()
			defer mu.Unlock()
			inner(name, n, size)
		}
	}
	sizes := make([]int64, len(assets))
	errs := make([]error, len(assets))
	sem := make(chan struct{}, pullParallel)
	var wg sync.WaitGroup
	for i, a := range assets {
		// Store operations are counted in manifest order (the crash tests
		// stop a command before its Nth one).
		if err := s.hooks.op(ctx, "read "+blobKey(a.SHA256)); err != nil {
			errs[i] = err
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			sizes[i], errs[i] = fetchBlob(ctx, s, a, root, path.Join(dir, a.File), progress)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	var total int64
	var first error
	for i, err := range errs {
		switch {
		case err == nil:
			total += sizes[i]
		case first == nil || (errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)):
			first = err
		}
	}
	return total, first
}

// fetchBlob streams one blob to name under root, refusing it unless size
// and sha256 match the manifest. A file already there is kept: complete
// and matching, it is not fetched again; shorter, the fetch resumes after
// its bytes (and starts over once if the whole does not match).
func fetchBlob(ctx context.Context, s *Store, a Asset, root *os.Root, name string, progress func(string, int64, int64)) (int64, error) {
	_ = root.Chmod(name, 0o644) // a kept file may have its final mode (a crash after the chmod)
	f, err := root.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	have, err := copyHashed(nil, io.LimitReader(f, a.Size+1), h)
	if err != nil {
		return 0, fmt.Errorf("asset %q: %w", a.Name, err)
	}
	if have == a.Size && hex.EncodeToString(h.Sum(nil)) == a.SHA256 {
		return 0, f.Sync() // complete from a run that was stopped
	}
	if have >= a.Size {
		have = 0 // too long, or whole and wrong: nothing to resume after
	}
	var total int64
	for {
		n, err := fetchFrom(ctx, s, a, f, have, h, progress)
		total += n
		if err == nil || have == 0 || !errors.Is(err, ErrVerify) {
			return total, err
		}
		// The bytes kept from before did not belong: start over.
		have, h = 0, sha256.New()
	}
}

// fetchFrom fetches a blob's bytes from offset have into f, whose first
// have bytes h has hashed, and checks the whole.
func fetchFrom(ctx context.Context, s *Store, a Asset, f *os.File, have int64, h hash.Hash, progress func(string, int64, int64)) (int64, error) {
	if have == 0 {
		h.Reset()
	}
	if err := f.Truncate(have); err != nil {
		return 0, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	r, err := s.bucket.NewRangeReader(ctx, blobKey(a.SHA256), have, -1, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return 0, fmt.Errorf("%w: asset %q: blob sha256 %s is missing from the store", ErrVerify, a.Name, a.SHA256)
		}
		return 0, fmt.Errorf("asset %q: %w", a.Name, err)
	}
	defer r.Close()
	var src io.Reader = io.LimitReader(r, a.Size-have+1)
	if progress != nil {
		src = &countingReader{r: src, n: have, fn: func(n int64) { progress(a.Name, n, a.Size) }}
	}
	n, err := copyHashed(f, src, h)
	if err != nil {
		return n, fmt.Errorf("asset %q: %w", a.Name, err)
	}
	if have+n != a.Size {
		return n, fmt.Errorf("%w: asset %q: blob is %d bytes, the manifest says %d", ErrVerify, a.Name, have+n, a.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return n, fmt.Errorf("%w: asset %q: blob has sha256 %s, the manifest says %s; the store is corrupt, pull keeps the current release", ErrVerify, a.Name, got, a.SHA256)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("asset %q: %w", a.Name, err)
	}
	return n, nil
}

// verifyDir re-hashes a release folder already on disk.
func verifyDir(ctx context.Context, dir string, m *Manifest) error {
	if _, err := os.Stat(filepath.Join(dir, StagedManifest)); err != nil {
		return err
	}
	for _, a := range m.Assets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := verifyFile(filepath.Join(dir, a.File), a); err != nil {
			return err
		}
		// Its bytes are right: give it the manifest's mode if it lost it
		// (or was pulled before lockstep recorded modes).
		mode, _ := a.FileMode()
		if fi, err := os.Stat(filepath.Join(dir, a.File)); err == nil && fi.Mode().Perm() != mode {
			if err := os.Chmod(filepath.Join(dir, a.File), mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// swapCurrent points DIR/current at releases/<dir> with a rename, which
// replaces the old link atomically. It returns the release served before.
func swapCurrent(dest, release string) (string, error) {
	link := filepath.Join(dest, CurrentLink)
	prev := ""
	if target, err := os.Readlink(link); err == nil {
		prev, _, _ = strings.Cut(filepath.Base(target), "~")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := ".current-" + hex.EncodeToString(rnd[:])
	err := inRoot(dest, func(r *os.Root) error {
		if err := r.Symlink(path.Join(ReleasesDir, release), tmp); err != nil {
			return err
		}
		if err := r.Rename(tmp, CurrentLink); err != nil {
			r.Remove(tmp)
			return fmt.Errorf("swap %s: %w", link, err)
		}
		now := time.Now()
		_ = r.Chtimes(path.Join(ReleasesDir, release), now, now)
		return nil
	})
	if err != nil {
		return "", err
	}
	return prev, syncDir(dest)
}

// cleanDead removes what killed pulls left in dest: .partial-* download
// folders and .current-* links never renamed into place. The caller holds
// dest's lock, which every pull takes before it creates either, so none of
// them belongs to a live pull.
func cleanDead(dest, release string, log *slog.Logger) {
	for _, pattern := range []string{filepath.Join(dest, ReleasesDir, partialPrefix+"*"), filepath.Join(dest, ".current-*")} {
		left, _ := filepath.Glob(pattern)
		for _, p := range left {
			if filepath.Base(p) == partialPrefix+release {
				continue // resumed by this pull
			}
			rel, _ := filepath.Rel(dest, p)
			if err := inRoot(dest, func(r *os.Root) error { return r.RemoveAll(filepath.ToSlash(rel)) }); err != nil {
				log.Warn("cannot remove what a killed pull left", "path", p, "err", err)
				continue
			}
			log.Info("removed what a killed pull left", "path", p)
		}
	}
}

// prune keeps the keep most recently served releases, never the current one.
func prune(dest string, keep int, current string) []string {
	root := filepath.Join(dest, ReleasesDir)
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type rel struct {
		name string
		mod  time.Time
	}
	var rels []rel
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !e.IsDir() || e.Name() == current {
			continue
		}
		if e.Name()[0] == '.' {
			continue
		}
		rels = append(rels, rel{e.Name(), info.ModTime()})
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].mod.After(rels[j].mod) })
	var removed []string
	for i, r := range rels {
		if i < keep-1 {
			continue
		}
		if err := inRoot(dest, func(rt *os.Root) error { return rt.RemoveAll(path.Join(ReleasesDir, r.name)) }); err == nil {
			removed = append(removed, r.name)
		}
	}
	return removed
}

// Current reads the manifest of the release DIR/current serves.
func Current(dest string) (*Staged, error) {
	st, err := ReadStaged(filepath.Join(dest, CurrentLink))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s serves no release yet; run `lockstep pull` first: %w", dest, ErrNotFound)
	}
	return st, err
}

type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.fn(c.n)
	return n, err
}

// acceptedFile keeps, in a pulled folder, the highest channel entry each
// bundle's channel was accepted at with --trust-key.
const acceptedFile = ".lockstep-accepted.json"

func acceptedSeqs(dest string) (map[string]int64, error) {
	m := map[string]int64{}
	return m, readState(dest, acceptedFile, &m)
}

// readState reads a JSON file a pull keeps in dest into v; a missing file
// leaves v as it is.
func readState(dest, name string, v any) error {
	var data []byte
	err := inRoot(dest, func(r *os.Root) (err error) {
		data, err = r.ReadFile(name)
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v; remove it to start afresh", ErrVerify, filepath.Join(dest, name), err)
	}
	return nil
}

// writeState replaces a JSON file in dest with one rename.
func writeState(dest, name string, v any) error {
	data, _ := json.MarshalIndent(v, "", "  ")
	return inRoot(dest, func(r *os.Root) error {
		tmp := name + ".tmp"
		if err := r.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
			return err
		}
		return r.Rename(tmp, name)
	})
}

// refusedFile keeps, in a pulled folder, the channel heads the box refused
// (a bad signature, an asset its format cannot read, a failed swap hook),
// so that an agent restarted does not fetch and refuse them again.
const refusedFile = ".lockstep-refused.json"

// Refusal is a channel head a box refused, and why.
type Refusal struct {
	Seq     int64  `json:"seq"`
	Release string `json:"release"`
	Reason  string `json:"reason"`
}

// Refused is the head of the channel this dest refused last; nil for none.
func Refused(dest, bundle, ch string) (*Refusal, error) {
	m := map[string]*Refusal{}
	if err := readState(dest, refusedFile, &m); err != nil {
		return nil, err
	}
	return m[bundle+"/"+ch], nil
}

// Refuse records a refused head of the channel.
func Refuse(dest, bundle, ch string, r Refusal) error {
	m := map[string]*Refusal{}
	if err := readState(dest, refusedFile, &m); err != nil {
		return err
	}
	m[bundle+"/"+ch] = &r
	return writeState(dest, refusedFile, m)
}

func acceptedSeq(dest, bundle, ch string) (int64, error) {
	m, err := acceptedSeqs(dest)
	return m[bundle+"/"+ch], err
}

// acceptSeq records seq for the channel, never lowering it; the file is
// replaced with one rename, within dest.
func acceptSeq(dest, bundle, ch string, seq int64) error {
	m, err := acceptedSeqs(dest)
	if err != nil {
		return err
	}
	if m[bundle+"/"+ch] >= seq {
		return nil
	}
	m[bundle+"/"+ch] = seq
	return writeState(dest, acceptedFile, m)
}

// checkDir opens every asset of a release folder with check.
func checkDir(ctx context.Context, dir string, m *Manifest, check DeepCheck) error {
	for _, a := range m.Assets {
		f, err := os.Open(filepath.Join(dir, a.File))
		if err != nil {
			return err
		}
		err = check(ctx, a, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: release %s: asset %q cannot be read as %s: %v; the box keeps serving what it had", ErrVerify, m.Release, a.Name, a.Format, err)
		}
	}
	return nil
}

// RollbackLocal points DIR/current back at the release it served before,
// from the copies pull keeps (--keep), without the store: a box can roll
// back while the store is unreachable. The copy is verified first.
func RollbackLocal(ctx context.Context, dest string) (*PullResult, error) {
	unlock, err := lockDir(ctx, dest)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := os.Readlink(filepath.Join(dest, CurrentLink))
	if err != nil {
		return nil, fmt.Errorf("%s serves no release yet: %w", dest, ErrNotFound)
	}
	ents, err := os.ReadDir(filepath.Join(dest, ReleasesDir))
	if err != nil {
		return nil, err
	}
	type rel struct {
		name string
		mod  time.Time
	}
	var rels []rel
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !e.IsDir() || e.Name()[0] == '.' || e.Name() == filepath.Base(cur) {
			continue
		}
		rels = append(rels, rel{e.Name(), info.ModTime()})
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].mod.After(rels[j].mod) })
	for _, r := range rels {
		res, err := serveDir(ctx, dest, r.name)
		if err != nil {
			continue // damaged: try the one before
		}
		return res, nil
	}
	return nil, fmt.Errorf("%s keeps no earlier release that verifies: %w; pull --release R from the store instead", dest, ErrNotFound)
}

// ServeLocal points DIR/current at a release DIR keeps, after verifying
// it, without the store.
func ServeLocal(ctx context.Context, dest, release string) (*PullResult, error) {
	unlock, err := lockDir(ctx, dest)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ents, err := os.ReadDir(filepath.Join(dest, ReleasesDir))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if name, _, _ := strings.Cut(e.Name(), "~"); name == release && e.IsDir() {
			if res, err := serveDir(ctx, dest, e.Name()); err == nil {
				return res, nil
			}
		}
	}
	return nil, fmt.Errorf("%s keeps no good copy of release %s: %w", dest, release, ErrNotFound)
}

// serveDir verifies a release folder and swaps DIR/current to it.
func serveDir(ctx context.Context, dest, name string) (*PullResult, error) {
	dir := filepath.Join(dest, ReleasesDir, name)
	st, err := ReadStaged(dir)
	if err != nil {
		return nil, err
	}
	if err := verifyDir(ctx, dir, st.Manifest); err != nil {
		return nil, err
	}
	prev, err := swapCurrent(dest, name)
	if err != nil {
		return nil, err
	}
	return &PullResult{Release: st.Manifest.Release, Path: dir, Reused: true, Previous: prev, Removed: []string{}}, nil
}
