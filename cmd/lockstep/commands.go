package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// env is what every command gets from the global flags.
type env struct {
	ctx    context.Context
	log    *slog.Logger
	store  *publish.Store
	reg    *formats.Registry
	out    *printer
	closer func()
}

// storeMode is what a command needs of a local (file://) store folder
// that does not exist: a mistyped --store must not read as an empty store,
// nor be created and published to.
type storeMode int

const (
	storeMustExist storeMode = iota // read commands: a missing folder is an error
	storeCreate                     // publish, run: create it, if its parent exists (or it is the default)
	storeIfExists                   // build: use it for lookups if it exists, never create it
)

// errNoStore is a local store folder that does not exist.
var errNoStore = errors.New("no such store")

func setup(c *cli.Context, mode storeMode) (*env, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	out, err := newPrinter(c)
	if err != nil {
		return nil, err
	}
	e := &env{ctx: c.Context, log: log, reg: all.Registry(), out: out, closer: func() {}}
	url := c.String("store")
	loc, err := publish.ParseLocation(url)
	if err != nil {
		return nil, err
	}
	if dir := loc.LocalDir; dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			switch mode {
			case storeIfExists:
				return e, nil
			case storeMustExist:
				return nil, fmt.Errorf("%w: %s does not exist; check --store (or LOCKSTEP_STORE): publish and run create a store, other commands read one", errNoStore, loc.Redacted())
			case storeCreate:
				parent := filepath.Dir(dir)
				if _, err := os.Stat(parent); err != nil && c.IsSet("store") {
					return nil, fmt.Errorf("%w: %s: its parent folder %s does not exist; check --store (or LOCKSTEP_STORE), or create the parent first", errNoStore, loc.Redacted(), parent)
				}
			}
		}
	}
	s, err := publish.Open(c.Context, url)
	if err != nil {
		return nil, err
	}
	e.store, e.closer = s, func() { s.Close() }
	return e, nil
}

// withEnv gives an action its env, and closes the store after it; the
// store must exist.
func withEnv(fn func(*cli.Context, *env) error) cli.ActionFunc {
	return withStore(storeMustExist, fn)
}

// withStore is withEnv for a command that may create the store (mode).
func withStore(mode storeMode, fn func(*cli.Context, *env) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		e, err := setup(c, mode)
		if err != nil {
			return err
		}
		defer e.closer()
		return fn(c, e)
	}
}

func (e *env) builder(c *cli.Context, b *pipeline.Bundle) (*pipeline.Builder, error) {
	overrides, err := overrides(c, b)
	if err != nil {
		return nil, err
	}
	var mem int64
	if s := c.String("memory"); s != "" {
		n, err := formats.ParseSize(s)
		if err != nil || n < pipeline.MinMemory {
			return nil, fmt.Errorf("%w: --memory %q: give a size of at least 16MiB, such as 512MiB or 4GiB", errUsage, s)
		}
		mem = n
	}
	return &pipeline.Builder{
		Store: e.store, Registry: e.reg, Version: version,
		StageDir: c.String("stage"), Logger: e.log, Memory: mem,
		VerifyExisting: c.Bool("verify-existing"), // false where the command has no such flag
		Overrides:      overrides,
	}, nil
}

// overrides reads --override CHECK (repeatable) and --reason: each a check
// the bundle declares, and a reason to record.
func overrides(c *cli.Context, b *pipeline.Bundle) (map[string]string, error) {
	names := c.StringSlice("override")
	if len(names) == 0 {
		return nil, nil
	}
	reason := strings.TrimSpace(c.String("reason"))
	if reason == "" {
		return nil, fmt.Errorf("%w: --override needs --reason \"...\": why the check may fail is recorded with the release", errUsage)
	}
	valid := b.CheckNames()
	out := map[string]string{}
	for _, n := range names {
		if !slices.Contains(valid, n) {
			list := "it declares none"
			if len(valid) > 0 {
				list = "its checks: " + strings.Join(valid, ", ")
			}
			return nil, fmt.Errorf("%w: --override %q: bundle %s has no such check (%s)", errUsage, n, b.Name, list)
		}
		out[n] = reason
	}
	return out, nil
}

// gateReport prints the checks of a build whose gate failed, on stdout
// (JSON with -o json), before the error goes to stderr and exit 3.
func (e *env) gateReport(err error) error {
	var gate *pipeline.GateError
	if errors.As(err, &gate) {
		out := gateOut{Bundle: gate.Bundle, Channel: gate.Channel, Status: "gate_failed", Checks: gate.Checks}
		if perr := e.out.print(out, func(w *tw) { checkTable(w, gate.Checks) }); perr != nil {
			return perr
		}
	}
	return err
}

// gateOut is what build, publish, run and plan print when a gate fails.
type gateOut struct {
	Bundle  string          `json:"bundle"`
	Channel string          `json:"channel"`
	Status  string          `json:"status"` // gate_failed
	Checks  []publish.Check `json:"checks"`
}

// checkTable prints check results, failed ones first.
func checkTable(w *tw, checks []publish.Check) {
	if len(checks) == 0 {
		w.line("checks: none declared")
		return
	}
	w.line("  CHECK	RESULT	EXPECTED	ACTUAL")
	order := []func(publish.Check) bool{
		func(c publish.Check) bool { return !c.Passed && !c.Overridden },
		func(c publish.Check) bool { return c.Overridden },
		func(c publish.Check) bool { return c.Passed },
	}
	for _, pick := range order {
		for _, c := range checks {
			if !pick(c) {
				continue
			}
			result := "ok"
			switch {
			case c.Overridden:
				result = "OVERRIDDEN"
			case !c.Passed:
				result = "FAILED"
			}
			w.line("  %s	%s	%s	%s", c.Name, result, c.Expected, c.Actual)
			for _, v := range c.Worst {
				val := "null"
				if !v.Null {
					val = cell(v.Value)
				}
				w.line("  			  %s: %s", val, v.Actual)
			}
			if c.Detail != "" {
				w.line("  			  %s", c.Detail)
			}
		}
	}
}

// limitHeap sets the Go runtime's soft memory limit to the build's sort
// budget plus headroom for the batches in flight, unless GOMEMLIMIT is set:
// sorting keeps its budget live for a whole run, and with no limit the
// garbage collector lets the heap grow to twice what is live. The buffers
// are pointer-free, so the extra collections cost little.
func limitHeap(bld *pipeline.Builder, b *pipeline.Bundle) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bld.SortMemory(b) + heapHeadroom)
	}
}

// heapHeadroom is what a build needs beyond its sort budget: a decoded
// batch per reader, the consumer's batch, table and block buffers.
const heapHeadroom = 512 << 20

func (e *env) bundle(c *cli.Context) (*pipeline.Bundle, error) {
	spec, err := pipeline.LoadSpec(c.String("spec"), e.reg)
	if err != nil {
		return nil, err
	}
	return spec.Bundle(c.String("bundle"))
}

// buildFor is the bundle a building command names, and its builder, with
// the heap limited to the build's memory.
func (e *env) buildFor(c *cli.Context) (*pipeline.Bundle, *pipeline.Builder, error) {
	b, err := e.bundle(c)
	if err != nil {
		return nil, nil, err
	}
	bld, err := e.builder(c, b)
	if err != nil {
		return nil, nil, err
	}
	limitHeap(bld, b)
	return b, bld, nil
}

func runBuild(c *cli.Context, e *env) error {
	b, bld, err := e.buildFor(c)
	if err != nil {
		return err
	}
	res, err := bld.Build(e.ctx, b)
	if err != nil {
		return e.gateReport(err)
	}
	return e.out.print(res, func(w *tw) {
		if res.Unchanged {
			w.line("unchanged: bundle %s, release %s already has these inputs (fingerprint %.12s)", res.Bundle, res.Release, res.Fingerprint)
			return
		}
		w.line("built %s release %s in %s", res.Bundle, res.Release, res.Dir)
		assetTable(w, res.Assets)
		if len(res.Checks) > 0 {
			checkTable(w, res.Checks)
		}
	})
}

func runPublish(c *cli.Context, e *env) (err error) {
	var st *publish.Staged
	ctx := e.ctx
	built := false
	if dir := c.Args().First(); dir != "" {
		if st, err = publish.ReadStaged(dir); err != nil {
			return err
		}
	} else {
		b, berr := e.bundle(c)
		if berr != nil {
			return berr
		}
		bld, berr := e.builder(c, b)
		if berr != nil {
			return berr
		}
		// The store's shared lease before the build: an unreachable or
		// read-only store fails now, not after every asset is built.
		lctx, lease, lerr := e.store.Lock(ctx, publish.LeaseShared, "publish "+b.Name, c.Duration("lock-wait"))
		if lerr != nil {
			return lerr
		}
		defer lease.Release()
		defer func() { err = publish.LeaseErr(lctx, err) }()
		ctx = lctx
		limitHeap(bld, b)
		res, berr := bld.Build(ctx, b)
		if berr != nil {
			return e.gateReport(berr)
		}
		if res.Unchanged {
			out := &publish.PublishResult{Release: res.Release, Unchanged: true}
			return e.out.print(out, func(w *tw) { w.line("unchanged: release %s already has these inputs", out.Release) })
		}
		st, built = res.Staged, true
	}
	sign, err := signer(c)
	if err != nil {
		return err
	}
	prog := newProgress("uploaded", e.out.json)
	res, err := publish.Publish(ctx, e.store, st, publish.PublishOptions{Parallel: c.Int("parallel"), Logger: e.log, Progress: prog.update,
		VerifyExisting: c.Bool("verify-existing"), LockWait: c.Duration("lock-wait"), Signer: sign})
	prog.finish()
	if err != nil {
		return err
	}
	if built && !c.Bool("keep-stage") {
		os.RemoveAll(st.Dir) // built here and now in the store
	}
	return e.out.print(res, func(w *tw) {
		if res.Unchanged {
			w.line("unchanged: release %s already has these inputs", res.Release)
			if res.BlobsUploaded > 0 {
				w.line("put back %d of its blobs (%s), %d of them corrupt ones replaced", res.BlobsUploaded, bytesText(res.BytesUploaded), res.BlobsRepaired)
			}
			return
		}
		w.line("published %s: %d blobs uploaded (%s), %d already in the store (%s)",
			res.Release, res.BlobsUploaded, bytesText(res.BytesUploaded), res.BlobsSkipped, bytesText(res.BytesSkipped))
	})
}

func runRun(c *cli.Context, e *env) error {
	b, bld, err := e.buildFor(c)
	if err != nil {
		return err
	}
	sign, err := signer(c)
	if err != nil {
		return err
	}
	events, err := eventsWriterFor(c, b)
	if err != nil {
		return err
	}
	if events != nil {
		defer events.Close()
	}
	prog := newProgress("uploaded", e.out.json)
	res, err := pipeline.Run(e.ctx, bld, b, pipeline.RunOptions{
		Publish: publish.PublishOptions{Parallel: c.Int("parallel"), Logger: e.log, Progress: prog.update,
			VerifyExisting: c.Bool("verify-existing"), LockWait: c.Duration("lock-wait"), Signer: sign},
		Reason: c.String("reason"), Logger: e.log, KeepStage: c.Bool("keep-stage"),
	})
	prog.finish()
	if err != nil {
		return e.gateReport(err)
	}
	announceRun(e.ctx, e, events, res)
	return e.out.print(res, func(w *tw) {
		if res.Published {
			checkTable(w, res.Checks)
		}
		switch {
		case res.Published:
			w.line("published %s release %s (%s uploaded, %s already in the store)", res.Bundle, res.Release, bytesText(res.BytesUploaded), bytesText(res.BytesSkipped))
		default:
			w.line("unchanged: %s release %s already has these inputs", res.Bundle, res.Release)
		}
		switch {
		case res.Promoted:
			w.line("promoted %s/%s #%d -> %s", res.Bundle, res.Channel, res.Seq, res.Release)
		case res.Status == "superseded":
			w.line("superseded: channel %s moved since this build started, so it was not moved; to serve this release anyway: lockstep promote --bundle %s --channel %s --release %s", res.Channel, res.Bundle, res.Channel, res.Release)
		default:
			w.line("channel %s not moved", res.Channel)
		}
	})
}

// checkBuildFlags checks what build, publish and run read before a store
// is opened or created: the spec and bundle (unless publish is given a
// staged folder) and --memory. A usage or spec error writes nothing.
func checkBuildFlags(c *cli.Context) error {
	if s := c.String("memory"); s != "" {
		if n, err := formats.ParseSize(s); err != nil || n < pipeline.MinMemory {
			return fmt.Errorf("%w: --memory %q: give a size of at least 16MiB, such as 512MiB or 4GiB", errUsage, s)
		}
	}
	if _, err := signer(c); err != nil {
		return err
	}
	if c.Command.Name == "publish" && c.NArg() > 0 {
		return nil
	}
	spec, err := pipeline.LoadSpec(c.String("spec"), all.Registry())
	if err != nil {
		return err
	}
	_, err = spec.Bundle(c.String("bundle"))
	return err
}

// checkPull checks pull's flag values before anything is opened.
func checkPull(c *cli.Context) error {
	if k := c.Int("keep"); k < 1 {
		return usageErr("pull", "--keep %d: keep at least 1 release (the current one)", k)
	}
	_, err := trust(c)
	return err
}

// checkFirst runs check, a usage check of flag values, before action.
func checkFirst(check cli.ActionFunc, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := check(c); err != nil {
			return err
		}
		return action(c)
	}
}

type lsBundle struct {
	Bundle   string            `json:"bundle"`
	Releases []string          `json:"releases"`
	Channels map[string]lsHead `json:"channels"`
}

type lsHead struct {
	Release string    `json:"release"`
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Error   string    `json:"error,omitempty"` // the head could not be read
}

func runLs(c *cli.Context, e *env) error {
	names := []string{c.String("bundle")}
	if names[0] == "" {
		var err error
		if names, err = e.store.Bundles(e.ctx); err != nil {
			return err
		}
	} else if err := e.checkBundle(names[0]); err != nil {
		return err
	}
	out := []lsBundle{}
	for _, name := range names {
		rels, err := e.store.Releases(e.ctx, name)
		if err != nil {
			return err
		}
		chans, err := e.store.Channels(e.ctx, name)
		if err != nil {
			return err
		}
		b := lsBundle{Bundle: name, Releases: append([]string{}, rels...), Channels: map[string]lsHead{}}
		for _, ch := range chans {
			head, err := e.store.Head(e.ctx, name, ch)
			if errors.Is(err, publish.ErrVerify) {
				b.Channels[ch] = lsHead{Error: err.Error()} // listed, so the fix can be chosen from here
				continue
			}
			if err != nil {
				return err
			}
			if head != nil {
				b.Channels[ch] = lsHead{Release: head.Release, Seq: head.Seq, Time: head.Time}
			}
		}
		out = append(out, b)
	}
	return e.out.print(out, func(w *tw) {
		if len(out) == 0 {
			w.line("the store at %s is empty", e.store.URL())
		}
		for _, b := range out {
			w.line("bundle %q: %d %s", b.Bundle, len(b.Releases), plural(len(b.Releases), "release", "releases"))
			for _, r := range b.Releases {
				var serving []string
				for ch, h := range b.Channels {
					if h.Release == r {
						serving = append(serving, ch)
					}
				}
				mark := ""
				if len(serving) > 0 {
					sort.Strings(serving)
					mark = "  <- " + strings.Join(serving, ", ")
				}
				w.line("  %s%s", r, mark)
			}
			for _, ch := range sortedNames(b.Channels) {
				if h := b.Channels[ch]; h.Error != "" {
					w.line("  channel %s: %s", ch, h.Error)
				}
			}
		}
	})
}

func runShow(c *cli.Context, e *env) error {
	rel := c.Args().First()
	if rel == "" {
		return fmt.Errorf("%w: show needs a RELEASE; `lockstep ls` lists them", errUsage)
	}
	m, digest, err := e.store.ReadManifest(e.ctx, c.String("bundle"), rel)
	if err != nil {
		return err
	}
	return e.out.print(m, func(w *tw) {
		w.line("release    %s", m.Release)
		w.line("bundle     %s", m.Bundle)
		w.line("created    %s by lockstep %s", m.Created.Format(time.RFC3339), m.LockstepVersion)
		w.line("manifest   sha256 %s", digest)
		w.line("parent     %s", orNone(m.Parent))
		if m.Requires != nil {
			w.line("requires   server %s", m.Requires.Server)
		}
		for _, in := range m.Inputs {
			spark := "Spark version unknown"
			if in.SparkVersion != "" {
				spark = "Spark " + in.SparkVersion
			}
			w.line("input      %q: %s, %d %s, %d rows, %s", in.Name, in.URL, len(in.Files), plural(len(in.Files), "file", "files"), in.Rows, spark)
		}
		for _, o := range m.Overrides {
			w.line("override   %s by %s: %q", o.Check, o.Who, o.Reason)
		}
		assetTable(w, m.Assets)
		checkTable(w, m.Checks)
	})
}

func runHistory(c *cli.Context, e *env) error {
	hist, err := e.store.History(e.ctx, c.String("bundle"), c.String("channel"))
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		if err := e.checkChannel(c.String("bundle"), c.String("channel")); err != nil {
			return err
		}
	}
	out := make([]historyEntry, len(hist))
	for i, h := range hist {
		out[i] = entryOut(h)
	}
	return e.out.print(out, func(w *tw) {
		for _, h := range hist {
			over := ""
			if len(h.Overrides) > 0 {
				over = "\toverrode " + strings.Join(h.Overrides, ", ")
			}
			w.line("#%d\t%s\t%s\t%s\t%s\t%q%s", h.Seq, h.Time.Format(time.RFC3339), h.Action, h.Release, h.Who, h.Reason, over)
		}
	})
}

func entryOut(h *publish.Entry) historyEntry {
	out := historyEntry{Seq: h.Seq, Time: h.Time, Action: h.Action, Release: h.Release, Previous: h.Previous, Who: h.Who, Reason: h.Reason, Overrides: h.Overrides}
	if out.Overrides == nil {
		out.Overrides = []string{}
	}
	return out
}

// historyEntry is one channel log entry as `history -o json` prints it:
// every field always present ("" when a log entry has none).
type historyEntry struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Release  string    `json:"release"`
	Previous string    `json:"previous"`
	Who      string    `json:"who"`
	Reason   string    `json:"reason"`
	// Overrides are the failed checks the entry's run pushed through.
	Overrides []string `json:"overrides"`
}

func runQuery(c *cli.Context, e *env) error {
	if c.NArg() == 0 {
		return fmt.Errorf("%w: query needs an ASSET name", errUsage)
	}
	var (
		m    *publish.Manifest
		file *os.File
		err  error
	)
	assetName := c.Args().First()
	switch {
	case c.String("dest") != "":
		st, err := publish.Current(c.String("dest"))
		if err != nil {
			return err
		}
		m = st.Manifest
		a, err := m.Asset(assetName)
		if err != nil {
			return err
		}
		if file, err = os.Open(st.Dir + "/" + a.File); err != nil {
			return err
		}
	case c.String("release") != "" && c.String("bundle") != "":
		if e.store == nil {
			return fmt.Errorf("%w: %s does not exist; check --store (or LOCKSTEP_STORE)", errNoStore, c.String("store"))
		}
		if m, _, err = e.store.ReadManifest(e.ctx, c.String("bundle"), c.String("release")); err != nil {
			return err
		}
		a, err := m.Asset(assetName)
		if err != nil {
			return err
		}
		if file, err = e.store.FetchAsset(e.ctx, *a, ""); err != nil {
			return err
		}
		defer os.Remove(file.Name())
	default:
		return fmt.Errorf("%w: query reads a pulled release (--dest DIR) or a published one (--bundle B --release R)", errUsage)
	}
	defer file.Close()
	a, _ := m.Asset(assetName)
	f, err := e.reg.Lookup(a.Format)
	if err != nil {
		return err
	}
	rd, err := f.Open(file, a.Size)
	if err != nil {
		return fmt.Errorf("asset %q: %w", a.Name, err)
	}
	defer rd.Close()
	res, err := rd.Query(e.ctx, c.Args().Tail(), c.Int("limit"))
	if err != nil {
		return err
	}
	if res.Rows == nil {
		res.Rows = [][]any{} // [] in JSON, as every empty list is
	}
	out := queryOut{m.Release, a.Name, a.Format, rd.Rows(), rd.Describe(), res}
	return e.out.print(out, func(w *tw) {
		w.line("%s %s (%s): %d rows", m.Release, a.Name, a.Format, rd.Rows())
		resultTable(w, res)
	})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkBundle says, when the store has no bundle name, which it has: a
// typo must not read as an empty bundle.
func (e *env) checkBundle(name string) error {
	names, err := e.store.Bundles(e.ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("%w: store %s has no bundle %q (it has: %s); check --bundle and --store", publish.ErrNotFound, e.store.URL(), name, listOrNone(names))
}

// checkChannel is checkBundle, then the same for a channel of the bundle.
func (e *env) checkChannel(bundle, ch string) error {
	if err := e.checkBundle(bundle); err != nil {
		return err
	}
	chans, err := e.store.Channels(e.ctx, bundle)
	if err != nil {
		return err
	}
	for _, n := range chans {
		if n == ch {
			return nil
		}
	}
	return fmt.Errorf("%w: bundle %q has no channel %q (it has: %s); check --channel", publish.ErrNotFound, bundle, ch, listOrNone(chans))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// queryOut is what query prints.
type queryOut struct {
	Release string          `json:"release"`
	Asset   string          `json:"asset"`
	Format  string          `json:"format"`
	Rows    int64           `json:"rows"`
	Info    map[string]any  `json:"info"` // the format's own description
	Result  *formats.Result `json:"result"`
}
