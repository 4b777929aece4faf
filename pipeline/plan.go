package pipeline

import (
	"context"
	"errors"
	"os"
	"slices"

	"github.com/lockstep-data/lockstep/publish"
)

// PlanResult is what `plan` shows: what a run would publish, next to what
// the channel serves now.
type PlanResult struct {
	Bundle      string `json:"bundle"`
	Channel     string `json:"channel"`
	Serving     string `json:"serving"` // the release the channel serves now; "" when none
	Release     string `json:"release"` // the release a run would publish (its id takes the run's time), or the one already published with these inputs
	Unchanged   bool   `json:"unchanged"`
	Fingerprint string `json:"fingerprint"`
	// Action is what a run would do now: "publish" (a new release, and
	// promote it), "promote" (the release of these inputs is published but
	// not served), "none" (the channel serves it), "superseded" (it was
	// built against an older head: a run moves nothing) or "blocked" (the
	// gate fails: exit 3).
	Action string `json:"action"`
	// Gate is "passed", "overridden" (failed checks are overridden) or
	// "failed" (a run would exit 3).
	Gate   string          `json:"gate"`
	Inputs []PlanInput     `json:"inputs"`
	Assets []PlanAsset     `json:"assets"` // by name; [] when a schema contract stopped the build before reading
	Checks []publish.Check `json:"checks"`
}

// PlanInput is one input as the build would read it.
type PlanInput struct {
	Name         string `json:"name"`
	Files        int    `json:"files"`
	Rows         int64  `json:"rows"`
	DeltaVersion *int64 `json:"delta_version,omitempty"`
	// IcebergSnapshot is an Iceberg table's snapshot read.
	IcebergSnapshot *int64 `json:"iceberg_snapshot_id,omitempty"`
}

// PlanAsset is one asset's change against the channel's release, with the
// changes in percent (left out when the asset is added or removed, or was
// empty).
type PlanAsset struct {
	publish.AssetChange
	RowsChange  *float64 `json:"rows_change_percent,omitempty"`
	BytesChange *float64 `json:"bytes_change_percent,omitempty"`
}

// Plan builds the bundle into a temporary folder under the builder's
// StageDir, runs its checks, compares it with the channel's release and
// removes the folder. It writes nothing to the store: it takes no lease,
// and every store call it makes is a read. A failed gate returns the
// result and the *GateError.
func Plan(ctx context.Context, b *Builder, bundle *Bundle) (*PlanResult, error) {
	if err := os.MkdirAll(b.StageDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(b.StageDir, ".plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pb := *b
	pb.StageDir = tmp
	built, err := pb.Build(ctx, bundle)
	var gate *GateError
	if err != nil && !errors.As(err, &gate) {
		return nil, err
	}
	m := built.Manifest
	res := &PlanResult{
		Bundle: bundle.Name, Channel: bundle.Channel, Release: built.Release, Unchanged: built.Unchanged,
		Fingerprint: built.Fingerprint, Gate: "passed", Inputs: []PlanInput{}, Assets: []PlanAsset{}, Checks: built.Checks,
	}
	for _, c := range built.Checks {
		switch {
		case !c.Passed && !c.Overridden:
			res.Gate = "failed"
		case c.Overridden && res.Gate == "passed":
			res.Gate = "overridden"
		}
	}
	switch {
	case res.Gate == "failed":
		res.Action = "blocked"
	case !built.Unchanged:
		res.Action = "publish"
	case built.Serving != nil && built.Serving.Release == built.Release:
		res.Action = "none"
	case m.ParentSeq == built.HeadSeq:
		res.Action = "promote"
	default:
		res.Action = "superseded"
	}
	for _, in := range m.Inputs {
		res.Inputs = append(res.Inputs, PlanInput{Name: in.Name, Files: len(in.Files), Rows: in.Rows, DeltaVersion: in.DeltaVersion, IcebergSnapshot: in.IcebergSnapshot})
	}
	before := &publish.Manifest{}
	if built.Serving != nil {
		before = built.Serving
		res.Serving = built.Serving.Release
	}
	if gate == nil || len(m.Assets) > 0 {
		for _, c := range publish.Diff(before, m) {
			if c.Change == "removed" && gate != nil && bundle.planned(c.Name) {
				c.Change = "not built" // in the spec, but the gate stopped it
			}
			res.Assets = append(res.Assets, PlanAsset{AssetChange: c, RowsChange: percent(c.RowsBefore, c.RowsAfter, c.Change), BytesChange: percent(c.BytesBefore, c.BytesAfter, c.Change)})
		}
	}
	if gate != nil {
		return res, gate
	}
	return res, nil
}

// planned reports whether the spec builds an asset of this name (a shard
// included).
func (b *Bundle) planned(name string) bool {
	for _, a := range sortedKeys(b.Assets) {
		if slices.Contains(assetNames(a, b.configs[a]), name) {
			return true
		}
	}
	return false
}

func percent(a, b int64, kind string) *float64 {
	if kind != "changed" && kind != "unchanged" || a == 0 {
		return nil
	}
	p := change(a, b)
	return &p
}
