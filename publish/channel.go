package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is one record of a channel's append-only log. Entry N+1 is created
// only if absent, so of two writers racing for the same sequence number
// exactly one wins.
type Entry struct {
	Seq            int64     `json:"seq"`
	Bundle         string    `json:"bundle"`
	Channel        string    `json:"channel"`
	Release        string    `json:"release"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	Time           time.Time `json:"time"`
	Who            string    `json:"who"`
	Action         string    `json:"action"` // promote, rollback, republish, run
	Reason         string    `json:"reason,omitempty"`
	Previous       string    `json:"previous,omitempty"` // release served before
}

const seqWidth = 10

func entryKey(bundle, ch string, seq int64) string {
	return fmt.Sprintf("%s%0*d.json", channelPrefix(bundle, ch), seqWidth, seq)
}

// ReadManifest reads a release's manifest and the sha256 of its stored bytes.
func (s *Store) ReadManifest(ctx context.Context, bundle, release string) (*Manifest, string, error) {
	m, data, err := s.readManifest(ctx, bundle, release)
	if err != nil {
		return nil, "", err
	}
	return m, sha256Hex(data), nil
}

func (s *Store) readManifest(ctx context.Context, bundle, release string) (*Manifest, []byte, error) {
	if err := CheckName("bundle", bundle); err != nil {
		return nil, nil, err
	}
	if err := CheckName("release", release); err != nil {
		return nil, nil, err
	}
	data, err := s.read(ctx, manifestKey(bundle, release), MaxManifestBytes)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("bundle %s has no release %s: %w", bundle, release, ErrNotFound)
		}
		return nil, nil, err
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, nil, err
	}
	if m.Bundle != bundle || m.Release != release {
		return nil, nil, fmt.Errorf("%w: manifest at %s names %s/%s", ErrVerify, manifestKey(bundle, release), m.Bundle, m.Release)
	}
	return m, data, nil
}

// Seqs lists a channel's sequence numbers in order.
func (s *Store) Seqs(ctx context.Context, bundle, ch string) ([]int64, error) {
	if err := CheckName("bundle", bundle); err != nil {
		return nil, err
	}
	if err := CheckName("channel", ch); err != nil {
		return nil, err
	}
	names, err := s.list(ctx, channelPrefix(bundle, ch))
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(names))
	for _, n := range names {
		num, ok := strings.CutSuffix(n, ".json")
		if !ok || len(num) != seqWidth {
			continue
		}
		seq, err := strconv.ParseInt(num, 10, 64)
		if err != nil || seq <= 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// ReadEntry reads and checks one log entry.
func (s *Store) ReadEntry(ctx context.Context, bundle, ch string, seq int64) (*Entry, error) {
	data, err := s.read(ctx, entryKey(bundle, ch, seq), MaxEntryBytes)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: channel %s entry %d: %v", ErrVerify, ch, seq, err)
	}
	if e.Seq != seq || e.Bundle != bundle || e.Channel != ch || CheckName("release", e.Release) != nil || !hexSHA.MatchString(e.ManifestSHA256) {
		return nil, fmt.Errorf("%w: channel %s entry %d does not match its key", ErrVerify, ch, seq)
	}
	return &e, nil
}

// Head returns the channel's newest entry, or nil for a channel never moved.
func (s *Store) Head(ctx context.Context, bundle, ch string) (*Entry, error) {
	seqs, err := s.Seqs(ctx, bundle, ch)
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	return s.ReadEntry(ctx, bundle, ch, seqs[len(seqs)-1])
}

// History returns every entry of a channel, oldest first.
func (s *Store) History(ctx context.Context, bundle, ch string) ([]*Entry, error) {
	seqs, err := s.Seqs(ctx, bundle, ch)
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, 0, len(seqs))
	for _, seq := range seqs {
		e, err := s.ReadEntry(ctx, bundle, ch, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// CheckComplete makes sure every blob of a release exists (invariant 11). A
// missing blob is ErrVerify naming the assets.
func (s *Store) CheckComplete(ctx context.Context, m *Manifest) error {
	var missing []string
	for _, a := range m.Assets {
		ok, err := s.exists(ctx, blobKey(a.SHA256))
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (sha256 %s)", a.Name, a.SHA256))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: release %s is missing blobs for %s; rebuild it or pick another release", ErrVerify, m.Release, strings.Join(missing, ", "))
	}
	return nil
}

// PromoteRequest asks to point a channel at a release.
type PromoteRequest struct {
	Bundle, Channel, Release string
	Action                   string // promote (default), rollback, republish, run
	Reason                   string
	ExpectHead               int64 // compare-and-swap: the seq the head must have; -1 for any
	RetryOnConflict          bool  // re-read the head and try again when another writer wins
	Now                      func() time.Time
}

// Promote is the one mechanism behind every channel move. It checks that the
// release is complete, then appends an entry to the channel's log. If
// another writer appends first, it returns ErrConflict, or with
// RetryOnConflict tries again on the new head.
func Promote(ctx context.Context, s *Store, req PromoteRequest) (*Entry, error) {
	if err := CheckName("channel", req.Channel); err != nil {
		return nil, err
	}
	m, digest, err := s.ReadManifest(ctx, req.Bundle, req.Release)
	if err != nil {
		return nil, err
	}
	if err := s.CheckComplete(ctx, m); err != nil {
		return nil, err
	}
	now := req.Now
	if now == nil {
		now = time.Now
	}
	action := req.Action
	if action == "" {
		action = "promote"
	}
	delay := 5 * time.Millisecond
	for {
		head, err := s.Head(ctx, req.Bundle, req.Channel)
		if err != nil {
			return nil, err
		}
		e := &Entry{
			Seq: 1, Bundle: req.Bundle, Channel: req.Channel, Release: req.Release,
			ManifestSHA256: digest, Time: now().UTC(), Who: who(), Action: action, Reason: req.Reason,
		}
		if head != nil {
			e.Seq, e.Previous = head.Seq+1, head.Release
		}
		if req.ExpectHead >= 0 && e.Seq-1 != req.ExpectHead {
			return nil, fmt.Errorf("%w: channel %s is at %d, not %d; look at `lockstep history` and try again", ErrConflict, req.Channel, e.Seq-1, req.ExpectHead)
		}
		data, _ := json.MarshalIndent(e, "", "  ")
		data = append(data, '\n')
		key := entryKey(req.Bundle, req.Channel, e.Seq)
		err = s.createBytes(ctx, key, data)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, err
		}
		// A retried write whose first attempt landed finds its own entry.
		if old, rerr := s.read(ctx, key, MaxEntryBytes); rerr == nil && bytes.Equal(old, data) {
			return e, nil
		}
		if !req.RetryOnConflict || req.ExpectHead >= 0 {
			return nil, fmt.Errorf("%w: another writer moved channel %s to %d first; rerun, or pass --retry-on-conflict", ErrConflict, req.Channel, e.Seq)
		}
		if err := sleep(ctx, jitter(delay)); err != nil {
			return nil, err
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// Named reports whether the channel's log has ever named the release.
func (s *Store) Named(ctx context.Context, bundle, ch, release string) (bool, error) {
	hist, err := s.History(ctx, bundle, ch)
	if err != nil {
		return false, err
	}
	for _, e := range hist {
		if e.Release == release {
			return true, nil
		}
	}
	return false, nil
}

func who() string {
	if w := os.Getenv("LOCKSTEP_WHO"); w != "" {
		return w
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
