package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A blob whose bytes do not match its address cannot be overwritten, since
// every write is create-if-absent: it must be deleted and created again.
// Two repairers must not undo each other (one deleting the good copy the
// other just wrote), so a repair first takes quarantine/sha256/<hex>.json,
// create-if-absent, and under it hashes the blob again, deletes it only if
// it is still wrong, creates it from the good copy (checked as it streams)
// and removes the marker. A marker older than LeaseTTL is a dead repairer's
// (by its writer's clock, with LeaseTTL of slack) and is taken over; each
// repairer removes the marker only while it still holds its own token.
// Repairs run under a shared lease, so gc never sees the
// blob missing between the delete and the create.

func quarantineKey(sha string) string { return "quarantine/sha256/" + sha + ".json" }

// RepairBlob replaces a's blob with the file at path, which must match a.
func RepairBlob(ctx context.Context, s *Store, a Asset, path string) error {
	if err := verifyFile(path, a); err != nil {
		return fmt.Errorf("the local copy cannot repair the blob: %w", err)
	}
	ctx, lease, err := s.Lock(ctx, LeaseShared, "repair "+a.SHA256, 5*time.Minute)
	if err != nil {
		return err
	}
	defer lease.Release()
	key := quarantineKey(a.SHA256)
	token := randHex(12)
	delay := 50 * time.Millisecond
	for {
		marker, _ := json.Marshal(lockRecord{Kind: "repair", Op: "repair " + a.SHA256 + " " + token, Who: Who(), Expires: time.Now().Add(LeaseTTL).UTC()})
		err := s.createBytes(ctx, key, marker)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrExists) {
			return err
		}
		// Another repairer: wait for it, or take over a dead one's marker.
		if data, err := s.read(ctx, key, MaxEntryBytes); err == nil {
			var r lockRecord
			if json.Unmarshal(data, &r) != nil || time.Now().After(r.Expires.Add(LeaseTTL)) {
				if err := s.delete(ctx, key); err != nil {
					return err
				}
				continue
			}
		}
		if err := sleep(ctx, jitter(delay)); err != nil {
			return err
		}
		delay = min(2*delay, 2*time.Second)
	}
	defer func() {
		// Remove the marker only if it is still ours: a repairer that took
		// it over after ours looked dead owns it now.
		dctx := context.WithoutCancel(ctx)
		if data, err := s.read(dctx, key, MaxEntryBytes); err == nil && strings.Contains(string(data), token) {
			_ = s.delete(dctx, key)
		}
	}()
	switch problem, detail := checkBlob(ctx, s, a, VerifyRequest{}); problem {
	case "":
		return nil // another repairer fixed it
	case "corrupt":
		if err := s.delete(ctx, blobKey(a.SHA256)); err != nil {
			return err
		}
	case "missing":
	default:
		return fmt.Errorf("blob sha256 %s: %s: %s", a.SHA256, problem, detail)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = s.create(ctx, blobKey(a.SHA256), f, &want{a.Size, a.SHA256})
	if errors.Is(err, ErrExists) {
		return nil // re-created by a publish meanwhile, checked as it streamed
	}
	return err
}

// RepairReport says what Repair did.
type RepairReport struct {
	Repaired []string `json:"repaired"`          // sha256 of blobs put back
	NoCopy   []string `json:"no_copy,omitempty"` // broken blobs with no good local copy
}

// Repair puts back every missing or corrupt blob of a verify report for
// which a good copy exists in one of dirs: staged or pulled release folders
// (any folder holding a manifest.json), searched recursively.
func Repair(ctx context.Context, s *Store, rep *VerifyReport, dirs []string, log *slog.Logger) (*RepairReport, error) {
	copies := map[string][]string{} // sha256 -> files the manifests beside them say have it
	assets := map[string]Asset{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != StagedManifest {
				return nil // unreadable parts are skipped: only good copies count
			}
			st, err := ReadStaged(filepath.Dir(path))
			if err != nil {
				return nil
			}
			for _, a := range st.Manifest.Assets {
				copies[a.SHA256] = append(copies[a.SHA256], filepath.Join(st.Dir, a.File))
				assets[a.SHA256] = a
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := &RepairReport{Repaired: []string{}}
	for _, b := range rep.Blobs {
		repaired := false
		for _, path := range copies[b.SHA256] {
			err := RepairBlob(ctx, s, assets[b.SHA256], path)
			if err == nil {
				log.Info("blob repaired", "sha256", b.SHA256, "from", path)
				repaired = true
				break
			}
			if !errors.Is(err, ErrVerify) && !errors.Is(err, os.ErrNotExist) {
				return out, fmt.Errorf("repair blob sha256 %s from %s: %w", b.SHA256, path, err)
			}
			log.Warn("not a good copy", "sha256", b.SHA256, "copy", path, "err", err)
		}
		if repaired {
			out.Repaired = append(out.Repaired, b.SHA256)
		} else {
			out.NoCopy = append(out.NoCopy, b.SHA256)
		}
	}
	return out, nil
}

// staleRepairs lists the quarantine markers of repairers that died: past
// their expiry with LeaseTTL of slack, or unreadable.
func (s *Store) staleRepairs(ctx context.Context) ([]string, error) {
	const prefix = "quarantine/sha256/"
	names, _, err := s.listNames(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, n := range names {
		data, err := s.read(ctx, prefix+n, MaxEntryBytes)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		var r lockRecord
		if err != nil || json.Unmarshal(data, &r) != nil || time.Now().After(r.Expires.Add(LeaseTTL)) {
			stale = append(stale, prefix+n)
		}
	}
	return stale, nil
}
