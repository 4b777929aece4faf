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
	// Overrides are the failed checks of Release pushed through by the
	// run that promoted it (its Reason says why).
	Overrides []string `json:"overrides,omitempty"`
	// Signature is the writer's, over the entry without it (see sign.go).
	Signature *Signature `json:"signature,omitempty"`
}

const seqWidth = 10

// maxSeq is the highest sequence number an entry name can hold.
const maxSeq = 9_999_999_999

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

// LogProblem is an object in a channel's folder that is not part of its
// log: a name that is not a canonical entry name, an entry past a gap, or an
// entry that does not parse or does not match its key. Readers skip it;
// verify reports it.
type LogProblem struct {
	Key     string `json:"key"`
	Problem string `json:"problem"`
}

// Log is what the channel's folder holds: the entries of the log, in order,
// and what was skipped.
type Log struct {
	Seqs     []int64 // contiguous, from 1
	Problems []LogProblem
	past     []int64 // canonical entry names after the gap, ignored
}

// ErrCorruptHead is ErrVerify for a head entry that cannot be read.
var ErrCorruptHead = fmt.Errorf("%w: corrupt channel head", ErrVerify)

// readLog lists a channel's entry names strictly. Only names of exactly
// seqWidth ASCII digits plus ".json" with a sequence number of 1 or more are
// entries; the log is the contiguous run of them from the lowest one, so a
// stray far-future name cannot hide the real head or make the next append
// fail. Everything else is a problem for verify to report.
func (s *Store) readLog(ctx context.Context, bundle, ch string) (*Log, error) {
	if err := CheckName("bundle", bundle); err != nil {
		return nil, err
	}
	if err := CheckName("channel", ch); err != nil {
		return nil, err
	}
	prefix := channelPrefix(bundle, ch)
	names, dirs, err := s.listNames(ctx, prefix)
	if err != nil {
		return nil, err
	}
	l := &Log{}
	for _, d := range dirs {
		l.Problems = append(l.Problems, LogProblem{prefix + d + "/", "a folder, not an entry; ignored"})
	}
	var seqs []int64
	for _, n := range names {
		seq, ok := parseEntryName(n)
		if !ok {
			l.Problems = append(l.Problems, LogProblem{prefix + n, "not a channel entry name (want " + strings.Repeat("N", seqWidth) + ".json); ignored"})
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != int64(i)+1 {
			for _, past := range seqs[i:] {
				l.Problems = append(l.Problems, LogProblem{entryKey(bundle, ch, past), fmt.Sprintf("after a gap (the log ends at %d); ignored", i)})
			}
			l.past = seqs[i:]
			break
		}
		l.Seqs = append(l.Seqs, seq)
	}
	return l, nil
}

func parseEntryName(name string) (int64, bool) {
	num, ok := strings.CutSuffix(name, ".json")
	if !ok || len(num) != seqWidth {
		return 0, false
	}
	var seq int64
	for _, c := range []byte(num) {
		if c < '0' || c > '9' {
			return 0, false
		}
		seq = seq*10 + int64(c-'0')
	}
	return seq, seq > 0
}

// Seqs lists the sequence numbers of a channel's log, in order.
func (s *Store) Seqs(ctx context.Context, bundle, ch string) ([]int64, error) {
	l, err := s.readLog(ctx, bundle, ch)
	if err != nil {
		return nil, err
	}
	return l.Seqs, nil
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
// A head that cannot be read is ErrCorruptHead, with the command that fixes
// it: a new entry, since history is never rewritten.
func (s *Store) Head(ctx context.Context, bundle, ch string) (*Entry, error) {
	seqs, err := s.Seqs(ctx, bundle, ch)
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	return s.readHead(ctx, bundle, ch, seqs[len(seqs)-1])
}

// HeadSeq returns the sequence number of the channel's last entry (0 for a
// channel never moved) and that entry, or a nil entry when it cannot be read
// (a corrupt head, whose fix is the next entry).
func (s *Store) HeadSeq(ctx context.Context, bundle, ch string) (int64, *Entry, error) {
	seqs, err := s.Seqs(ctx, bundle, ch)
	if err != nil || len(seqs) == 0 {
		return 0, nil, err
	}
	seq := seqs[len(seqs)-1]
	e, err := s.readHead(ctx, bundle, ch, seq)
	if errors.Is(err, ErrCorruptHead) {
		return seq, nil, nil
	}
	return seq, e, err
}

func (s *Store) readHead(ctx context.Context, bundle, ch string, seq int64) (*Entry, error) {
	e, err := s.ReadEntry(ctx, bundle, ch, seq)
	if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s/%s entry %d: %v; point the channel at a release again to write a good entry %d: lockstep promote --bundle %s --channel %s --release RELEASE (see lockstep ls)",
			ErrCorruptHead, bundle, ch, seq, err, seq+1, bundle, ch)
	}
	return e, err
}

// History returns every readable entry of a channel, oldest first. An entry
// that cannot be read is skipped, so one damaged entry does not hide the
// rest; ReadLogProblems reports it.
func (s *Store) History(ctx context.Context, bundle, ch string) ([]*Entry, error) {
	entries, _, err := s.history(ctx, bundle, ch)
	return entries, err
}

func (s *Store) history(ctx context.Context, bundle, ch string) ([]*Entry, []LogProblem, error) {
	l, err := s.readLog(ctx, bundle, ch)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Entry, 0, len(l.Seqs))
	for _, seq := range l.Seqs {
		e, err := s.ReadEntry(ctx, bundle, ch, seq)
		if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) {
			l.Problems = append(l.Problems, LogProblem{entryKey(bundle, ch, seq), err.Error()})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
	}
	return out, l.Problems, nil
}

// LogProblems reads a whole channel log and returns what readers skip.
func (s *Store) LogProblems(ctx context.Context, bundle, ch string) ([]LogProblem, error) {
	_, p, err := s.history(ctx, bundle, ch)
	return p, err
}

// CheckComplete makes sure every blob of a release exists with the size
// its manifest gives (invariant 11). A missing or wrong-sized blob is
// ErrVerify naming the assets.
func (s *Store) CheckComplete(ctx context.Context, m *Manifest) error {
	var bad []string
	for _, a := range m.Assets {
		size, err := s.blobSize(ctx, a.SHA256)
		switch {
		case isNotFound(err):
			bad = append(bad, fmt.Sprintf("%s (sha256 %s: missing)", a.Name, a.SHA256))
		case err != nil:
			return err
		case size != a.Size:
			bad = append(bad, fmt.Sprintf("%s (sha256 %s: %d bytes, want %d)", a.Name, a.SHA256, size, a.Size))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: release %s has missing or corrupt blobs: %s; rerun its build to put them back (lockstep run or publish), or pick another release", ErrVerify, m.Release, strings.Join(bad, ", "))
	}
	return nil
}

// CheckHashes is CheckComplete by content: it re-hashes every blob.
func (s *Store) CheckHashes(ctx context.Context, m *Manifest) error {
	var bad []string
	for _, a := range m.Assets {
		if problem, detail := checkBlob(ctx, s, a, VerifyRequest{}); problem != "" {
			bad = append(bad, fmt.Sprintf("%s (sha256 %s: %s %s)", a.Name, a.SHA256, problem, detail))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: release %s has missing or corrupt blobs: %s", ErrVerify, m.Release, strings.Join(bad, ", "))
	}
	return ctx.Err()
}

// blobSize is the size of a stored blob; a missing one is gocloud's NotFound.
func (s *Store) blobSize(ctx context.Context, sha string) (int64, error) {
	key := blobKey(sha)
	if err := s.hooks.op(ctx, "attributes "+key); err != nil {
		return 0, err
	}
	var size int64
	err := retryTransient(ctx, func() error {
		attrs, err := s.bucket.Attributes(ctx, key)
		if err == nil {
			size = attrs.Size
		}
		return err
	})
	return size, err
}

// PromoteRequest asks to point a channel at a release.
type PromoteRequest struct {
	Bundle, Channel, Release string
	Action                   string // promote (default), rollback, republish, run
	Reason                   string
	Overrides                []string      // the failed checks the release was pushed through with
	Signer                   *Signer       // signs the entry; nil for none
	ExpectHead               int64         // compare-and-swap: the seq the head must have; -1 for any
	RetryOnConflict          bool          // re-read the head and try again when another writer wins
	LockWait                 time.Duration // how long to wait for gc's lease to go
	Now                      func() time.Time
}

// Promote is the one mechanism behind every channel move. It checks that the
// release is complete, then appends an entry to the channel's log. If
// another writer appends first, it returns ErrConflict, or with
// RetryOnConflict tries again on the new head.
func Promote(ctx context.Context, s *Store, req PromoteRequest) (_ *Entry, err error) {
	if err := CheckName("channel", req.Channel); err != nil {
		return nil, err
	}
	// Under a shared lease gc cannot delete the release between the check
	// that it is complete and the entry that names it.
	ctx, lease, err := s.Lock(ctx, LeaseShared, "promote "+req.Bundle+"/"+req.Channel, req.LockWait)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	defer func() { err = LeaseErr(ctx, err) }()
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
		chLog, err := s.readLog(ctx, req.Bundle, req.Channel)
		if err != nil {
			return nil, err
		}
		seqs := chLog.Seqs
		e := &Entry{
			Seq: 1, Bundle: req.Bundle, Channel: req.Channel, Release: req.Release,
			ManifestSHA256: digest, Time: now().UTC(), Who: Who(), Action: action, Reason: req.Reason,
			Overrides: req.Overrides,
		}
		if n := len(seqs); n > 0 {
			e.Seq = seqs[n-1] + 1
			// A corrupt head does not stop a move: the new entry is its fix.
			head, err := s.readHead(ctx, req.Bundle, req.Channel, seqs[n-1])
			switch {
			case err == nil:
				e.Previous = head.Release
			case !errors.Is(err, ErrCorruptHead):
				return nil, err
			}
		}
		if e.Seq > maxSeq {
			return nil, fmt.Errorf("%w: channel %s has %d entries, the most a log holds; start a new channel", ErrVerify, req.Channel, maxSeq)
		}
		if slices.Contains(chLog.past, e.Seq+1) {
			// Entry N would join the log to objects past the gap, which
			// lockstep did not write in this order: refuse rather than
			// make them the head.
			return nil, fmt.Errorf("%w: channel %s: %s is past a gap in the log, and writing entry %d would make it part of the log; remove the objects verify lists for this channel, then try again",
				ErrVerify, req.Channel, entryKey(req.Bundle, req.Channel, e.Seq+1), e.Seq)
		}
		if req.ExpectHead >= 0 && e.Seq-1 != req.ExpectHead {
			return nil, fmt.Errorf("%w: channel %s is at %d, not %d; look at `lockstep history` and try again", ErrConflict, req.Channel, e.Seq-1, req.ExpectHead)
		}
		if req.Signer != nil {
			e.Signature = req.Signer.Sign(entryBytes(e))
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

// Who names the person or service acting, for channel entries, leases and
// overrides: $LOCKSTEP_WHO, else user@host.
func Who() string {
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
