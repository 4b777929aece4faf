package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// Builder turns a bundle's inputs into a sealed, staged release.
type Builder struct {
	Store    *publish.Store // consulted for the fingerprint and the parent release
	Registry *formats.Registry
	Version  string // lockstep version, part of the fingerprint
	StageDir string // where staged releases are written
	Now      func() time.Time
	Logger   *slog.Logger
	// Memory is the build's budget for sorting, shared by every sorting
	// asset (--memory); 0 takes the bundle's `memory:`, else the default.
	Memory int64
	// Overrides are failed checks to push through (--override), each with
	// the reason recorded in the manifest.
	Overrides map[string]string
	// NoGate builds whatever the checks say (rebuild proves bytes, not
	// policy); the results are still recorded.
	NoGate bool
	// VerifyExisting re-hashes the blobs of a release whose fingerprint is
	// already published before calling the build unchanged
	// (--verify-existing); without it their sizes are checked.
	VerifyExisting bool
}

// MinMemory is the least memory a sorting asset gets, however many share
// the budget, and the least budget a build may be given: below it, runs
// get so short that merging them costs more than it saves.
const MinMemory = 16 << 20

// sortShares gives each sorting asset of one input its memory: its own
// sort_buffer where the spec sets one, and an equal part of what is left of
// the budget otherwise. Inputs are read one after another, and each input's
// writers are finished before the next input starts, so the shares of one
// input are all the sort memory the build holds at any time.
func sortShares(budget int64, cfgs []formats.Config) []formats.Config {
	var shared int
	left := budget
	for _, c := range cfgs {
		if sc, ok := c.(formats.SortingConfig); ok {
			if sorts, own := sc.SortMemory(); sorts && own > 0 {
				left -= own
			} else if sorts {
				shared++
			}
		}
	}
	out := make([]formats.Config, len(cfgs))
	for i, c := range cfgs {
		out[i] = c
		if sc, ok := c.(formats.SortingConfig); ok {
			if sorts, own := sc.SortMemory(); sorts && own == 0 {
				out[i] = sc.WithSortMemory(max(left/int64(shared), MinMemory))
			}
		}
	}
	return out
}

// SortMemory is the build's sort budget: --memory (Builder.Memory), the
// bundle's memory:, or the default.
func (b *Builder) SortMemory(bundle *Bundle) int64 {
	switch {
	case b.Memory > 0:
		return b.Memory
	case bundle.memory > 0:
		return bundle.memory
	}
	return formats.DefaultSortMemory()
}

// BuildResult says what Build did.
type BuildResult struct {
	Bundle      string          `json:"bundle"`
	Release     string          `json:"release"`
	Fingerprint string          `json:"fingerprint"`
	Unchanged   bool            `json:"unchanged"` // the store already has this build
	Dir         string          `json:"dir"`       // "" when unchanged
	Assets      []publish.Asset `json:"assets"`
	Checks      []publish.Check `json:"checks"` // every check's result, as the manifest records them
	Staged      *publish.Staged `json:"-"`
	// Manifest is the release's: the staged one, the one already published
	// when Unchanged, or the one a failed gate kept from being sealed.
	Manifest *publish.Manifest `json:"-"`
	// Serving is the manifest of the release the channel served when the
	// build started, which relative checks compare with; nil when none.
	Serving *publish.Manifest `json:"-"`
	// HeadSeq is the channel's head when the build started (0: none).
	HeadSeq int64 `json:"-"`
}

func (b *Builder) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

func (b *Builder) now() time.Time {
	if b.Now == nil {
		return time.Now().UTC()
	}
	return b.Now().UTC()
}

// Build resolves the bundle's inputs, and unless the store already holds a
// release with the same fingerprint, writes every asset and seals them with
// a manifest in a staging folder. Nothing is written to the store.
func (b *Builder) Build(ctx context.Context, bundle *Bundle) (*BuildResult, error) {
	// The head this build starts from, read before the inputs are listed: a
	// run promotes only while it is still the head (see Run), so a build
	// that lists older inputs can never take a newer head for its parent.
	var parentSeq int64
	var parent string
	if b.Store != nil {
		seq, head, err := b.Store.HeadSeq(ctx, bundle.Name, bundle.Channel)
		if err != nil {
			return nil, err
		}
		parentSeq = seq
		if head != nil {
			parent = head.Release
		}
	}
	srcs, err := b.resolve(ctx, bundle)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	fp := fingerprint(b.Version, bundle, srcs)
	res := &BuildResult{Bundle: bundle.Name, Fingerprint: fp, Assets: []publish.Asset{}, Checks: []publish.Check{}, HeadSeq: parentSeq}
	if b.Store != nil {
		rel, err := b.Store.LookupBuild(ctx, bundle.Name, fp)
		switch {
		case err == nil:
			// Unchanged, unless a blob of that release went missing or bad:
			// then build again, and publish puts the blobs back.
			m, _, err := b.Store.ReadManifest(ctx, bundle.Name, rel)
			if err == nil && m.Fingerprint != fp {
				// A build record is trusted only as far as the manifest it
				// names agrees: a run must never promote (or sign) a
				// release of other inputs.
				return nil, fmt.Errorf("%w: the build record of fingerprint %.12s names release %s, whose manifest has fingerprint %.12s: the store was changed by hand; remove bundles/%s/builds/%s.json and run again",
					publish.ErrVerify, fp, rel, m.Fingerprint, bundle.Name, fp)
			}
			if err == nil {
				if b.VerifyExisting {
					err = b.Store.CheckHashes(ctx, m)
				} else {
					err = b.Store.CheckComplete(ctx, m)
				}
			}
			if err == nil {
				res.Release, res.Unchanged = rel, true
				res.Manifest, res.Checks, res.Assets = m, m.Checks, m.Assets
				if res.Serving, err = b.serving(ctx, bundle, parent); err != nil {
					return nil, err
				}
				b.log().Info("build unchanged", "bundle", bundle.Name, "release", rel, "fingerprint", fp)
				return res, nil
			}
			if !errors.Is(err, publish.ErrVerify) && !errors.Is(err, publish.ErrNotFound) {
				return nil, err
			}
			b.log().Warn("the release of these inputs is damaged; building it again to repair it", "bundle", bundle.Name, "release", rel, "err", err)
		case !errors.Is(err, publish.ErrNotFound):
			return nil, err
		}
	}
	created := b.now().Truncate(time.Second)
	res.Release = created.Format("20060102T150405Z") + "-" + fp[:8]
	m := &publish.Manifest{
		Schema: publish.ManifestSchema, Bundle: bundle.Name, Release: res.Release,
		Created: created, LockstepVersion: b.Version, SpecDigest: bundle.Digest,
		Fingerprint: fp, Checks: []publish.Check{}, Spec: bundle.canonical,
	}
	if bundle.Requires != nil && bundle.Requires.Server != "" {
		m.Requires = &publish.Requires{Server: bundle.Requires.Server}
	}
	m.Parent, m.ParentSeq = parent, parentSeq
	if res.Serving, err = b.serving(ctx, bundle, parent); err != nil {
		return nil, err
	}
	stage := filepath.Join(b.StageDir, bundle.Name)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(stage, ".partial-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res.Manifest = m
	// Every input's schema against the spec before any input is read: the
	// contracts, then the options that name columns.
	contracts, err := b.precheck(ctx, bundle, srcs)
	if err != nil {
		return nil, err
	}
	m.Checks = append(m.Checks, contracts...)
	for _, src := range srcs {
		if !b.NoGate && b.blocked(contracts) {
			// A contract failed: the data is not read.
			m.Inputs = append(m.Inputs, publish.Input{Name: src.Name, URL: src.URL, Files: src.Files})
			continue
		}
		write := b.writeInput
		if src.raw != "" {
			write = b.writeRaw
		}
		out, err := write(ctx, bundle, src, tmp, res.Serving)
		if err != nil {
			return nil, err
		}
		m.Inputs = append(m.Inputs, out.input)
		m.Assets = append(m.Assets, out.assets...)
		m.Checks = append(m.Checks, out.checks...)
		m.Partitions = append(m.Partitions, out.partitions...)
	}
	sortAssets(m.Assets)
	slices.SortStableFunc(m.Checks, func(a, b publish.Check) int { return strings.Compare(a.Name, b.Name) })
	res.Assets, res.Checks = m.Assets, m.Checks
	if gate := b.gate(bundle, m); gate != nil && !b.NoGate {
		return res, gate
	}
	data, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if len(data) > publish.MaxManifestBytes {
		return nil, fmt.Errorf("%w: bundle %q: the manifest would be %d bytes, over the %d a reader accepts; lower max_partitions of its by: checks, or use fewer assets", ErrSpec, bundle.Name, len(data), publish.MaxManifestBytes)
	}
	if err := os.WriteFile(filepath.Join(tmp, publish.StagedManifest), data, 0o644); err != nil {
		return nil, err
	}
	final := filepath.Join(stage, res.Release)
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	res.Dir = final
	res.Staged = &publish.Staged{Dir: final, Manifest: m, Raw: data}
	b.log().Info("release sealed", "bundle", bundle.Name, "release", res.Release, "assets", len(m.Assets), "dir", final)
	return res, nil
}

// precheck checks every input's schema before any input is read: the
// assets' schema contracts (whose results it returns), then, unless a
// contract failed, each asset's options against the columns, by opening
// its writer on nothing.
func (b *Builder) precheck(ctx context.Context, bundle *Bundle, srcs []*Source) ([]publish.Check, error) {
	var checks []publish.Check
	schemas := map[string]*arrow.Schema{}
	for _, src := range srcs {
		if src.raw != "" {
			continue // a file: no schema
		}
		schema, err := src.Schema(ctx)
		if err != nil {
			return nil, err
		}
		schemas[src.Name] = schema
		for _, name := range sortedKeys(bundle.Assets) {
			if c := bundle.checks[name].Schema; c != nil && bundle.Assets[name].Input == src.Name {
				checks = append(checks, schemaCheck(name, c, schema))
			}
		}
	}
	// A renamed column is the contract's failure, not the options'.
	if !b.NoGate && b.blocked(checks) {
		return checks, nil
	}
	for _, name := range sortedKeys(bundle.Assets) {
		a := bundle.Assets[name]
		schema, ok := schemas[a.Input]
		if !ok {
			continue // a file asset
		}
		w, err := bundle.configs[name].NewWriter(io.Discard, schema)
		if errors.Is(err, formats.ErrBadInput) {
			return nil, optionsError(bundle, name, a.Input, schema, err)
		}
		if err != nil {
			return nil, fmt.Errorf("asset %q: %w", name, err)
		}
		w.Abort()
	}
	return checks, nil
}

// optionsError is options the input's schema cannot satisfy (a key column
// it lacks): a spec error, found before any asset is written.
func optionsError(bundle *Bundle, asset, input string, schema *arrow.Schema, err error) error {
	cols := make([]string, schema.NumFields())
	for j, f := range schema.Fields() {
		cols[j] = fmt.Sprintf("%q (%s)", f.Name, f.Type)
	}
	return fmt.Errorf("%w: %s: bundle %q: %w; input %q has the columns %s", ErrSpec, bundle.optionsAt[asset], bundle.Name, err, input, strings.Join(cols, ", "))
}

// serving reads the manifest of the release the channel serves, which
// relative checks compare with; nil when the channel serves none.
func (b *Builder) serving(ctx context.Context, bundle *Bundle, release string) (*publish.Manifest, error) {
	if release == "" || b.Store == nil {
		return nil, nil
	}
	m, _, err := b.Store.ReadManifest(ctx, bundle.Name, release)
	if err != nil {
		return nil, fmt.Errorf("channel %s serves release %s, whose manifest the checks compare with: %w", bundle.Channel, release, err)
	}
	return m, nil
}

// blocked reports whether a check failed that no --override pushes through.
func (b *Builder) blocked(checks []publish.Check) bool {
	for _, c := range checks {
		if _, ok := b.Overrides[c.Name]; !c.Passed && !ok {
			return true
		}
	}
	return false
}

// gate marks the failed checks that --override pushes through, records the
// overrides, and returns the gate's error when a failed check is left.
func (b *Builder) gate(bundle *Bundle, m *publish.Manifest) *GateError {
	failed := 0
	for i := range m.Checks {
		c := &m.Checks[i]
		if c.Passed {
			if _, ok := b.Overrides[c.Name]; ok {
				b.log().Warn("override not needed: the check passed", "check", c.Name)
			}
			continue
		}
		if reason, ok := b.Overrides[c.Name]; ok {
			c.Overridden = true
			m.Overrides = append(m.Overrides, publish.Override{Check: c.Name, Reason: reason, Who: publish.Who()})
			b.log().Warn("check failed, overridden", "check", c.Name, "expected", c.Expected, "actual", c.Actual, "reason", reason)
			continue
		}
		failed++
	}
	if failed == 0 {
		return nil
	}
	return &GateError{Bundle: bundle.Name, Channel: bundle.Channel, Checks: m.Checks}
}

func (b *Builder) resolve(ctx context.Context, bundle *Bundle) ([]*Source, error) {
	var srcs []*Source
	for _, name := range sortedKeys(bundle.Inputs) {
		if bundle.Inputs[name].Format == FileInput {
			src, err := discoverFile(ctx, name, bundle.InputURL(name))
			if err != nil {
				for _, s := range srcs {
					s.Close()
				}
				return nil, err
			}
			srcs = append(srcs, src)
			continue
		}
		src, skipped, err := DiscoverWith(ctx, name, bundle.InputURL(name), bundle.DiscoverOptions(name))
		if err != nil {
			for _, s := range srcs {
				s.Close()
			}
			return nil, err
		}
		b.log().Info("input resolved", "bundle", bundle.Name, "input", name, "files", len(src.Files), "skipped", len(skipped))
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// fingerprint covers the lockstep version, the bundle's own spec section,
// every input file's path, size and checksum (and the rows its table
// deletes), and the Delta version or Iceberg snapshot read (invariant 4).
func fingerprint(version string, bundle *Bundle, srcs []*Source) string {
	type input struct {
		Name         string              `json:"name"`
		Files        []publish.InputFile `json:"files"`
		DeltaVersion *int64              `json:"delta_version,omitempty"`
		// An Iceberg table's snapshot and the schema read; not the metadata
		// file, which a commit that changes neither (a property) replaces.
		IcebergSnapshot *int64 `json:"iceberg_snapshot_id,omitempty"`
		IcebergSchema   *int   `json:"iceberg_schema_id,omitempty"`
		Mode            string `json:"mode,omitempty"` // a file input's: chmod +x is a new release
	}
	doc := struct {
		Version string  `json:"lockstep_version"`
		Spec    string  `json:"spec_digest"`
		Inputs  []input `json:"inputs"`
	}{Version: version, Spec: bundle.Digest}
	for _, s := range srcs {
		in := input{Name: s.Name, Files: s.Files, DeltaVersion: s.DeltaVersion}
		if s.Iceberg != nil {
			in.IcebergSnapshot, in.IcebergSchema = &s.Iceberg.SnapshotID, &s.Iceberg.SchemaID
		}
		if s.raw != "" {
			in.Mode = fmt.Sprintf("%04o", uint32(s.rawMode))
		}
		doc.Inputs = append(doc.Inputs, in)
	}
	data, _ := json.Marshal(doc)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// inputOut is what reading one input gave.
type inputOut struct {
	input      publish.Input
	assets     []publish.Asset
	checks     []publish.Check
	partitions []publish.PartitionRows
}

// writeInput reads one input once and feeds every asset built from it,
// gathering in the same pass what the assets' checks need.
func (b *Builder) writeInput(ctx context.Context, bundle *Bundle, src *Source, dir string, serving *publish.Manifest) (inputOut, error) {
	out := inputOut{input: publish.Input{Name: src.Name, URL: src.URL, Files: src.Files}}
	schema, err := src.Schema(ctx)
	if err != nil {
		return out, err
	}
	var sinks []*sink
	defer func() {
		for _, s := range sinks {
			s.abort()
		}
	}()
	var names []string
	var cfgs []formats.Config
	var checks []*assetChecks
	for _, name := range sortedKeys(bundle.Assets) {
		if bundle.Assets[name].Input == src.Name {
			names = append(names, name)
			cfgs = append(cfgs, bundle.configs[name])
			checks = append(checks, bundle.checks[name])
		}
	}
	cfgs = sortShares(b.SortMemory(bundle), cfgs)
	for i, c := range cfgs {
		if sc, ok := c.(interface{ SortShare() int64 }); ok && sc.SortShare() > 0 {
			b.log().Info("sort memory", "asset", names[i], "bytes", sc.SortShare())
		}
	}
	for i, name := range names {
		s, err := b.newSink(name, bundle.Assets[name], cfgs[i], schema, dir)
		if errors.Is(err, formats.ErrBadInput) {
			return out, optionsError(bundle, name, src.Name, schema, err) // precheck found none: the writer did
		}
		if err != nil {
			return out, err
		}
		s.unique = checks[i].Unique != nil && *checks[i].Unique && checks[i].keyed
		sinks = append(sinks, s)
	}
	if len(sinks) == 0 {
		return out, nil
	}
	stats := newInputStats(schema, checks)
	start := time.Now()
	src.onFile = func(path string) {
		for _, s := range sinks {
			if fs, ok := s.w.(formats.FileStarter); ok {
				fs.StartFile(path)
			}
		}
	}
	rows, spark, err := src.Scan(ctx, schema, func(rec arrow.RecordBatch) error {
		stats.add(rec)
		for _, s := range sinks {
			if s.dup != nil {
				continue
			}
			if err := s.w.Write(ctx, rec); err != nil {
				if s.duplicate(err) {
					continue // the unique check reports it
				}
				return fmt.Errorf("asset %q: %w", s.asset.Name, err)
			}
			s.asset.Rows += rec.NumRows()
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	out.input.Rows, out.input.SparkVersion = rows, spark
	out.input.DeltaVersion, out.input.SparkSchema = src.DeltaVersion, src.SparkSchema
	if src.Iceberg != nil {
		id := src.Iceberg.SnapshotID
		schema := src.Iceberg.SchemaID
		out.input.IcebergSnapshot, out.input.IcebergMetadata, out.input.IcebergSchema = &id, src.Iceberg.MetadataFile, &schema
	}
	for i, s := range sinks {
		run := &assetRun{name: names[i], input: src.Name, checks: checks[i], stats: stats, schema: schema, prev: serving, channel: bundle.Channel}
		if s.dup == nil {
			sealed, err := s.finish(ctx)
			if err != nil && !s.duplicate(err) {
				return out, fmt.Errorf("asset %q: %w", s.asset.Name, err)
			}
			run.assets = sealed
			for _, a := range sealed {
				b.log().Info("asset sealed", "asset", a.Name, "format", a.Format, "rows", a.Rows, "bytes", a.Size, "sha256", a.SHA256)
			}
		}
		if dc, ok := s.w.(formats.DuplicateCounter); ok {
			run.dups, run.dup = dc.Duplicates()
		}
		if s.dup != nil {
			if _, ok := b.Overrides[names[i]+"/unique"]; ok {
				// Overriding the check cannot make the asset: its policy
				// refuses duplicates.
				return out, fmt.Errorf("asset %q: %w", s.asset.Name, s.dup)
			}
			run.dups, run.dup = max(run.dups, 1), s.dup
		}
		out.assets = append(out.assets, run.assets...)
		checks, parts := run.evaluate()
		out.checks = append(out.checks, checks...)
		out.partitions = append(out.partitions, parts...)
	}
	sinks = nil
	b.log().Info("input read", "input", src.Name, "rows", rows, "seconds", time.Since(start).Seconds())
	return out, nil
}

// sink is one asset being written: the format's writer over staging files,
// with the hashing and counting the pipeline owns. A format whose config is
// a formats.ShardedConfig with Shards() > 1 writes one file per shard, and
// each shard is published as its own asset, NAME-<i>of<N>.
type sink struct {
	asset   publish.Asset // as the spec names it; Rows counts the records written
	w       formats.Writer
	sharded formats.ShardedWriter // nil for one file
	parts   []*part
	done    bool
	unique  bool                       // the asset has a unique check
	dup     *formats.DuplicateKeyError // the duplicate that stopped the writer
}

// duplicate takes a writer's duplicate-key error for the unique check: the
// writer is aborted and the check reports the key and its files. Other
// errors, and any error of an asset without the check, are not its.
func (s *sink) duplicate(err error) bool {
	var de *formats.DuplicateKeyError
	if !s.unique || !errors.As(err, &de) {
		return false
	}
	s.dup = de
	s.abort()
	return true
}

// part is one staged file and the asset it becomes.
type part struct {
	asset publish.Asset
	f     *os.File
	buf   *stageWriter
	hash  hash.Hash
	count *countWriter
}

func (b *Builder) newSink(name string, spec *AssetSpec, cfg formats.Config, schema *arrow.Schema, dir string) (*sink, error) {
	f, err := b.Registry.Lookup(spec.Format)
	if err != nil {
		return nil, err
	}
	info := f.Info()
	s := &sink{asset: publish.Asset{
		Name: name, File: name + info.Ext, Format: info.Name, FormatVersion: info.Version,
		MediaType: info.MediaType, Options: cfg.Options(), Schema: schemaText(schema),
	}}
	sc, _ := cfg.(formats.ShardedConfig)
	names := assetNames(name, cfg)
	for _, n := range names {
		// O_EXCL: an asset named like another's shard must not share its file.
		file, err := os.OpenFile(filepath.Join(dir, n+info.Ext), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("asset %q: two assets would be written to %s; rename one of them", name, n+info.Ext)
		}
		if err != nil {
			s.closeFiles()
			return nil, err
		}
		p := &part{asset: s.asset, f: file, hash: sha256.New(), count: &countWriter{}}
		p.asset.Name, p.asset.File = n, n+info.Ext
		p.buf = newStageWriter(io.MultiWriter(file, p.hash, p.count))
		s.parts = append(s.parts, p)
	}
	if len(s.parts) > 1 {
		s.sharded, err = sc.NewShardedWriter(func(i int) (io.Writer, error) { return s.parts[i].buf, nil }, schema)
		s.w = s.sharded
	} else {
		s.w, err = cfg.NewWriter(s.parts[0].buf, schema)
	}
	if err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("asset %q: %w", name, err)
	}
	return s, nil
}

// finish closes the writer and seals each file into an asset.
func (s *sink) finish(ctx context.Context) ([]publish.Asset, error) {
	if err := s.w.Close(ctx); err != nil {
		return nil, err
	}
	s.done = true
	var rows []int64
	if s.sharded != nil {
		rows = s.sharded.ShardRows()
	}
	var out []publish.Asset
	for i, p := range s.parts {
		err := p.buf.Flush()
		p.buf.Close()
		if err != nil {
			return nil, err
		}
		if err := p.f.Sync(); err != nil {
			return nil, err
		}
		if err := p.f.Close(); err != nil {
			return nil, err
		}
		p.asset.Size = p.count.n
		p.asset.SHA256 = hex.EncodeToString(p.hash.Sum(nil))
		p.asset.Rows = s.asset.Rows
		if rc, ok := s.w.(formats.RowCounter); ok {
			p.asset.Rows = rc.Rows()
		}
		if sr, ok := s.w.(formats.StatsReporter); ok {
			p.asset.Stats = sr.Stats()
		}
		if rows != nil {
			p.asset.Rows = rows[i]
		}
		out = append(out, p.asset)
	}
	return out, nil
}

func (s *sink) abort() {
	if !s.done {
		s.w.Abort()
	}
	s.closeFiles()
}

func (s *sink) closeFiles() {
	for _, p := range s.parts {
		if p.buf != nil {
			p.buf.Close()
		}
		p.f.Close()
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func sortAssets(as []publish.Asset) {
	slices.SortFunc(as, func(a, b publish.Asset) int { return strings.Compare(a.Name, b.Name) })
}
