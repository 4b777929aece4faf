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
	"time"
)

// A blob whose bytes do not match its address cannot be overwritten, since
// every write is create-if-absent: it must be deleted and created again.
// Two repairers must not undo each other (one deleting the good copy the
// other just wrote), so a repair first takes quarantine/sha256/<hex>.json,
// create-if-absent, and under it hashes the blob again, deletes it only if
// it is still wrong, creates it from the good copy (checked as it streams)
// and removes the marker. A marker older than LeaseTTL is a dead repairer's
// and is taken over. Repairs run under a shared lease, so gc never sees the
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
	delay := 50 * time.Millisecond
	for {
		marker, _ := json.Marshal(lockRecord{Kind: "repair", Op: "repair " + a.SHA256, Who: who(), Expires: time.Now().Add(LeaseTTL).UTC()})
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
			if json.Unmarshal(data, &r) != nil || time.Now().After(r.Expires) {
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
	defer func() { _ = s.delete(context.WithoutCancel(ctx), key) }()
	switch problem, _ := checkBlob(ctx, s, a, VerifyRequest{}); problem {
	case "":
		return nil // another repairer fixed it
	case "corrupt":
		if err := s.delete(ctx, blobKey(a.SHA256)); err != nil {
			return err
		}
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
	copies := map[string]string{} // sha256 -> a file the manifest beside it says has it
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
				if _, ok := copies[a.SHA256]; !ok {
					copies[a.SHA256] = filepath.Join(st.Dir, a.File)
					assets[a.SHA256] = a
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := &RepairReport{Repaired: []string{}}
	for _, b := range rep.Blobs {
		path, ok := copies[b.SHA256]
		if !ok {
			out.NoCopy = append(out.NoCopy, b.SHA256)
			continue
		}
		if err := RepairBlob(ctx, s, assets[b.SHA256], path); err != nil {
			log.Warn("local copy did not repair the blob", "sha256", b.SHA256, "copy", path, "err", err)
			out.NoCopy = append(out.NoCopy, b.SHA256)
			continue
		}
		log.Info("blob repaired", "sha256", b.SHA256, "from", path)
		out.Repaired = append(out.Repaired, b.SHA256)
	}
	return out, nil
}
