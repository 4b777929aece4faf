package pipeline

import (
	"context"
	"log/slog"

	"github.com/lockstep-data/lockstep/publish"
)

// RunResult is what one trigger did, as `run` prints it.
type RunResult struct {
	Bundle        string `json:"bundle"`
	Release       string `json:"release"`
	Status        string `json:"status"` // "published" or "unchanged"
	Channel       string `json:"channel"`
	Promoted      bool   `json:"promoted"`
	Seq           int64  `json:"seq,omitempty"`
	BytesUploaded int64  `json:"bytes_uploaded"`
	BytesSkipped  int64  `json:"bytes_skipped"`
}

// RunOptions tunes Run.
type RunOptions struct {
	Publish publish.PublishOptions
	Reason  string
	Logger  *slog.Logger
}

// Run is what every trigger does: build, publish, promote.
//
// Idempotence (invariant 5): when the fingerprint already maps to a release,
// nothing is built or uploaded, and the channel moves only if its log has
// never named that release, which happens only when an earlier run died
// between publish and promote (invariant 6: a rerun finishes the job). A
// replayed old trigger therefore never rolls a channel back; only `promote`,
// `rollback` and `republish` point a channel at an older release.
func Run(ctx context.Context, b *Builder, bundle *Bundle, opts RunOptions) (*RunResult, error) {
	built, err := b.Build(ctx, bundle)
	if err != nil {
		return nil, err
	}
	res := &RunResult{Bundle: bundle.Name, Release: built.Release, Channel: bundle.Channel, Status: "unchanged"}
	if !built.Unchanged {
		pub, err := publish.Publish(ctx, b.Store, built.Staged, opts.Publish)
		if err != nil {
			return nil, err
		}
		res.Release, res.BytesUploaded, res.BytesSkipped = pub.Release, pub.BytesUploaded, pub.BytesSkipped
		if !pub.Unchanged {
			res.Status = "published"
		}
	}
	named, err := b.Store.Named(ctx, bundle.Name, bundle.Channel, res.Release)
	if err != nil || named {
		return res, err
	}
	e, err := publish.Promote(ctx, b.Store, publish.PromoteRequest{
		Bundle: bundle.Name, Channel: bundle.Channel, Release: res.Release,
		Action: "run", Reason: opts.Reason, ExpectHead: -1, RetryOnConflict: true, Now: b.Now,
	})
	if err != nil {
		return nil, err
	}
	res.Promoted, res.Seq = true, e.Seq
	return res, nil
}
