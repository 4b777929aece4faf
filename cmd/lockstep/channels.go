package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/publish"
)

// moveFlags are the flags every channel move shares.
func moveFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle name (required)"},
		&cli.StringFlag{Name: "channel", Aliases: []string{"c"}, Usage: "channel `NAME`", Value: "production"},
		&cli.StringFlag{Name: "reason", Usage: "why, recorded in the channel log"},
		&cli.Int64Flag{Name: "expect-head", Value: -1, Usage: "fail with exit 4 unless the channel's newest entry is `SEQ` (0: never promoted)"},
		&cli.BoolFlag{Name: "retry-on-conflict", Usage: "when another writer moves the channel first, try again on top of it"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "text or json", Value: "text"},
		lockWaitFlag(writerLockWait),
		signKeyFlag,
	}, append(extra, eventsFlags()...)...)
}

// How long commands wait for a conflicting store lease (see publish/lock.go):
// writers wait for a gc, which is short; gc waits less for writers, since it
// can simply run later.
const (
	writerLockWait = 10 * time.Minute
	gcLockWait     = time.Minute
)

func lockWaitFlag(d time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "lock-wait", Value: d, Usage: "wait this long for a conflicting store lease (gc against writers) before exit 4"}
}

// move is the action of one channel move (promote, republish, rollback):
// the release comes from releaseFlag; the entry is printed.
func move(fn func(context.Context, *publish.Store, publish.PromoteRequest) (*publish.Entry, error), releaseFlag string) func(*cli.Context, *env) error {
	return func(c *cli.Context, e *env) error {
		s, err := signer(c)
		if err != nil {
			return err
		}
		return runMove(c, e, fn, publish.PromoteRequest{
			Bundle: c.String("bundle"), Channel: c.String("channel"), Release: c.String(releaseFlag),
			Reason: c.String("reason"), ExpectHead: c.Int64("expect-head"), RetryOnConflict: c.Bool("retry-on-conflict"),
			LockWait: c.Duration("lock-wait"), Signer: s,
		})
	}
}

func runMove(c *cli.Context, e *env, fn func(context.Context, *publish.Store, publish.PromoteRequest) (*publish.Entry, error), req publish.PromoteRequest) error {
	events, err := eventsWriter(c)
	if err != nil {
		return err
	}
	if events != nil {
		defer events.Close()
	}
	ent, err := fn(e.ctx, e.store, req)
	if err != nil {
		return err
	}
	announce(e.ctx, e, events, ent)
	out := moveOut{Bundle: ent.Bundle, Channel: ent.Channel, historyEntry: entryOut(ent)}
	return e.out.print(out, func(w *tw) {
		w.line("%s/%s #%d -> %s (%s, was %s)", ent.Bundle, ent.Channel, ent.Seq, ent.Release, ent.Action, orNone(ent.Previous))
	})
}

// moveOut is what promote, rollback and republish print: the channel
// entry written, every field present.
type moveOut struct {
	Bundle  string `json:"bundle"`
	Channel string `json:"channel"`
	historyEntry
}

func republish(ctx context.Context, s *publish.Store, req publish.PromoteRequest) (*publish.Entry, error) {
	req.Action = "republish"
	return publish.Promote(ctx, s, req)
}

func runDiff(c *cli.Context, e *env) error {
	a, _, err := e.store.ReadManifest(e.ctx, c.String("bundle"), c.Args().Get(0))
	if err != nil {
		return err
	}
	b, _, err := e.store.ReadManifest(e.ctx, c.String("bundle"), c.Args().Get(1))
	if err != nil {
		return err
	}
	changes := publish.Diff(a, b)
	return e.out.print(changes, func(w *tw) {
		w.line("%s -> %s", a.Release, b.Release)
		w.line("  ASSET\tCHANGE\tROWS\tBYTES\tSCHEMA")
		for _, ch := range changes {
			schema := "same"
			if ch.SchemaChanged {
				schema = "changed"
			}
			w.line("  %q\t%s\t%d -> %d\t%s -> %s\t%s", ch.Name, ch.Change, ch.RowsBefore, ch.RowsAfter, bytesText(ch.BytesBefore), bytesText(ch.BytesAfter), schema)
			for _, o := range ch.Options {
				before, _ := json.Marshal(o.Before)
				after, _ := json.Marshal(o.After)
				w.line("    option %s: %s -> %s", o.Key, before, after)
			}
		}
	})
}

func runVerify(c *cli.Context, e *env) error {
	req := publish.VerifyRequest{Bundle: c.String("bundle"), Releases: c.Args().Slice(), All: c.Bool("all")}
	if !req.All && (req.Bundle == "" || len(req.Releases) == 0) {
		return fmt.Errorf("%w: verify --bundle B RELEASE..., or verify --all", errUsage)
	}
	if c.Bool("deep") {
		req.Deep = deepCheck(e)
	}
	rep, err := publish.Verify(e.ctx, e.store, req)
	if err != nil {
		return err
	}
	var repaired *publish.RepairReport
	if c.Bool("repair") && len(rep.Blobs) > 0 {
		dirs := c.StringSlice("from")
		if len(dirs) == 0 {
			dirs = []string{".lockstep/stage"}
		}
		if repaired, err = publish.Repair(e.ctx, e.store, rep, dirs, e.log); err != nil {
			return err
		}
		if rep, err = publish.Verify(e.ctx, e.store, req); err != nil {
			return err
		}
	}
	var out any = rep
	if repaired != nil {
		out = struct {
			*publish.VerifyReport
			Repair *publish.RepairReport `json:"repair"`
		}{rep, repaired}
	}
	if err := e.out.print(out, func(w *tw) {
		if repaired != nil {
			w.line("repaired %d blobs", len(repaired.Repaired))
			if len(repaired.NoCopy) > 0 {
				w.line("%d blobs had no good local copy (%v): rerun the builds that made them (lockstep run), or pass --from DIR with their staged or pulled releases", len(repaired.NoCopy), repaired.NoCopy)
			}
		}
		w.line("checked %d releases, %d blobs (%s), %d channels", rep.ReleasesChecked, rep.BlobsChecked, bytesText(rep.BytesChecked), rep.ChannelsChecked)
		for _, b := range rep.Blobs {
			w.line("  %s blob %s (%s) used by %v; breaks %v", b.Problem, b.SHA256, b.Detail, b.Assets, b.Releases)
		}
		for _, m := range rep.BadManifests {
			w.line("  bad manifest %s", m)
		}
		for _, ch := range rep.BrokenChannels {
			w.line("  broken channel %s", ch)
		}
		for _, p := range rep.LogProblems {
			w.line("  channel log: %s: %s", p.Key, p.Problem)
		}
		if l := rep.Leftovers; l != nil && (l.Blobs > 0 || l.Staging > 0 || l.StaleLeases > 0 || l.StaleRepairs > 0) {
			w.line("leftovers of killed or interrupted commands (harmless; gc removes them after --grace): %d unreferenced blobs (%s), %d staging files (%s), %d stale leases, %d stale repair markers",
				l.Blobs, bytesText(l.BlobBytes), l.Staging, bytesText(l.StagingBytes), l.StaleLeases, l.StaleRepairs)
		}
		if rep.OK {
			w.line("ok")
		}
	}); err != nil {
		return err
	}
	return rep.Err()
}

func runGC(c *cli.Context, e *env) error {
	rep, err := publish.GC(e.ctx, e.store, publish.GCOptions{
		KeepReleases: c.Int("keep-releases"), KeepHistory: c.Int("keep-history"),
		Grace: c.Duration("grace"), DryRun: c.Bool("dry-run"), LockWait: c.Duration("lock-wait"),
	})
	if err != nil {
		return err
	}
	return e.out.print(rep, func(w *tw) {
		verb := "deleted"
		if rep.DryRun {
			verb = "would delete"
		}
		w.line("%s %d releases and %d blobs (%s); kept %d releases, %d blobs", verb, len(rep.ReleasesDeleted), rep.BlobsDeleted, bytesText(rep.BytesDeleted), rep.ReleasesKept, rep.BlobsKept)
		for _, r := range rep.ReleasesDeleted {
			w.line("  %s", r)
		}
		if rep.StagingDeleted > 0 || rep.LeasesDeleted > 0 {
			w.line("%s %d staging files of killed writes (%s) and %d stale leases", verb, rep.StagingDeleted, bytesText(rep.StagingBytes), rep.LeasesDeleted)
		}
		if rep.BlobsYoung > 0 {
			w.line("kept %d unreferenced blobs (%s) younger than --grace: a publish in flight may need them", rep.BlobsYoung, bytesText(rep.BytesYoung))
		}
	})
}
