package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/lockstep-data/lockstep/publish"
)

// RunResult is what one trigger did, as `run` prints it.
type RunResult struct {
	Bundle        string `json:"bundle"`
	Release       string `json:"release"`
	Status        string `json:"status"`    // "published", "unchanged" or "superseded" (the channel moved since the build started; nothing promoted)
	Published     bool   `json:"published"` // this run published a new release (whatever Status says)
	Channel       string `json:"channel"`
	Promoted      bool   `json:"promoted"`
	Seq           int64  `json:"seq"` // the channel entry serving Release; 0 when none does
	BytesUploaded int64  `json:"bytes_uploaded"`
	BytesSkipped  int64  `json:"bytes_skipped"`
	Rows          int64  `json:"rows"` // the release's asset rows, summed
	// Checks are the release's check results, as its manifest records them.
	Checks []publish.Check `json:"checks"`
	// Overrides are the failed checks pushed through with --override.
	Overrides []publish.Override `json:"overrides"`
}

// RunOptions tunes Run.
type RunOptions struct {
	Publish publish.PublishOptions
	Reason  string
	Logger  *slog.Logger
	// KeepStage keeps the staged release folder after it is published
	// (by default it is removed then: the store holds the release, and
	// every run would otherwise leave a full copy of every asset behind).
	KeepStage bool
}

// Run is what every trigger does: build, publish, promote.
//
// A run promotes its release only while the channel's head is still the
// entry its build started from (the manifest's parent_seq). Otherwise the
// channel has moved since, by a newer run or a person, and the run reports
// "superseded" and moves nothing: a replayed or late trigger never rolls a
// channel back (invariant 5). When the fingerprint already has a release,
// nothing is built or uploaded, and the same rule decides: the head is
// still the parent only if an earlier run died between publish and promote,
// and the rerun then finishes the job (invariant 6). `promote`, `rollback`
// and `republish` are the only ways back.
func Run(ctx context.Context, b *Builder, bundle *Bundle, opts RunOptions) (_ *RunResult, err error) {
	// One shared lease from the fingerprint lookup to the channel entry: gc
	// cannot delete the release an unchanged run is about to promote, nor a
	// blob a publish reuses.
	ctx, lease, err := b.Store.Lock(ctx, publish.LeaseShared, "run "+bundle.Name, opts.Publish.LockWait)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	defer func() { err = publish.LeaseErr(ctx, err) }()
	built, err := b.Build(ctx, bundle)
	if err != nil {
		return nil, err
	}
	res := &RunResult{Bundle: bundle.Name, Release: built.Release, Channel: bundle.Channel, Status: "unchanged"}
	var m *publish.Manifest
	if built.Unchanged {
		var raw []byte
		if m, raw, err = b.Store.ReadManifestBytes(ctx, bundle.Name, built.Release); err != nil {
			return nil, err
		}
		if s := opts.Publish.Signer; s != nil {
			// Published before, perhaps unsigned or by another key.
			if err := b.Store.SignRelease(ctx, bundle.Name, built.Release, raw, s); err != nil {
				return nil, err
			}
		}
	} else {
		pub, err := publish.Publish(ctx, b.Store, built.Staged, opts.Publish)
		if err != nil {
			return nil, err
		}
		if !opts.KeepStage {
			os.RemoveAll(built.Staged.Dir)
		}
		res.Release, res.BytesUploaded, res.BytesSkipped = pub.Release, pub.BytesUploaded, pub.BytesSkipped
		m = built.Staged.Manifest
		if pub.Unchanged {
			// A concurrent run of the same inputs published first: its
			// release, and its parent, are the ones.
			if m, _, err = b.Store.ReadManifest(ctx, bundle.Name, pub.Release); err != nil {
				return nil, err
			}
		} else {
			res.Status, res.Published = "published", true
		}
	}
	res.Checks, res.Overrides = m.Checks, m.Overrides
	for _, a := range m.Assets {
		res.Rows += a.Rows
	}
	if res.Overrides == nil {
		res.Overrides = []publish.Override{}
	}
	if res.Checks == nil {
		res.Checks = []publish.Check{}
	}
	head, served, err := b.Store.HeadSeq(ctx, bundle.Name, bundle.Channel)
	if err != nil {
		return nil, err
	}
	if served != nil && served.Release == res.Release {
		res.Seq = head
		return res, nil // already served
	}
	if head != m.ParentSeq {
		res.Status = "superseded"
		b.log().Info("run superseded: the channel moved since the build started", "bundle", bundle.Name, "channel", bundle.Channel,
			"release", res.Release, "built_from", m.ParentSeq, "head", head)
		return res, nil
	}
	var overrides []string
	for _, o := range m.Overrides {
		overrides = append(overrides, o.Check)
	}
	e, err := publish.Promote(ctx, b.Store, publish.PromoteRequest{
		Bundle: bundle.Name, Channel: bundle.Channel, Release: res.Release,
		Action: "run", Reason: opts.Reason, Overrides: overrides, ExpectHead: m.ParentSeq, LockWait: opts.Publish.LockWait, Now: b.Now,
		Signer: opts.Publish.Signer,
	})
	if errors.Is(err, publish.ErrConflict) {
		res.Status = "superseded" // another writer moved the channel first
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Promoted, res.Seq = true, e.Seq
	return res, nil
}
