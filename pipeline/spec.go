package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// Spec is the bundle spec file:
//
//	bundles:
//	  places:                       # bundle name
//	    channel: production         # channel that `run` promotes to
//	    requires: {server: ">=1.4"} # optional: server versions that can load it
//	    inputs:
//	      places:                   # input name
//	        url: ../testdata/places # Spark output folder; relative paths are from the spec's folder
//	        require_success: true   # default true: refuse output without _SUCCESS
//	        partitions: {day: date} # optional: hive partition types instead of inferred ones
//	        delta_version: 12       # optional: a Delta table's version instead of the latest
//	        snapshot_id: 5820157    # optional: an Iceberg table's snapshot (or as_of: an RFC 3339 time)
//	    assets:
//	      places:                   # asset name; the pulled file is <name><format extension>
//	        format: arrow
//	        input: places
//	        options: {compression: zstd}
type Spec struct {
	Path    string
	Bundles map[string]*Bundle
}

// Bundle is one section of the spec: what to build, from what, for which channel.
type Bundle struct {
	Name     string                `yaml:"-" json:"-"`
	Channel  string                `yaml:"channel" json:"channel"`
	Requires *Requires             `yaml:"requires" json:"requires,omitempty"`
	Inputs   map[string]*InputSpec `yaml:"inputs" json:"inputs"`
	Assets   map[string]*AssetSpec `yaml:"assets" json:"assets"`
	// Memory is the build's sort budget (bytes or "2GiB"), shared by all its
	// sorting assets. It changes no output byte, so it stays out of the
	// digest and the fingerprint.
	Memory any `yaml:"memory" json:"-"`
	// Checks are every asset's default data-quality checks (docs/checks.md).
	Checks *CheckSpec `yaml:"checks" json:"checks,omitempty"`
	// ScheduleSpec is when `lockstep schedule` runs the bundle.
	ScheduleSpec `yaml:",inline"`
	// Events is where the bundle's "release promoted" events go when the
	// command names no --events-topic.
	Events *EventsSpec `yaml:"events" json:"-"`
	// AllowOverrides are the URL prefixes under which rebuild events may
	// point each input (`lockstep consume`); none by default.
	AllowOverrides AllowOverrides `yaml:"allow_overrides" json:"-"`

	// Digest is the sha256 of the bundle's own section, in canonical JSON.
	Digest string `yaml:"-" json:"-"`
	// canonical is that JSON, recorded in the manifest so that `rebuild`
	// can build the release again from the manifest alone.
	canonical []byte
	// dir resolves relative input paths.
	dir string
	// configs holds each asset's validated format options.
	configs map[string]formats.Config
	// memory is Memory in bytes; 0 when unset.
	memory int64
	// optionsAt is each asset's options' place in the spec (file:line),
	// for errors the input's schema finds in them.
	optionsAt map[string]string
	// checks are each asset's checks, the bundle's merged with its own.
	checks map[string]*assetChecks
}

// EventsSpec is a Kafka topic for "release promoted" events
// (docs/events.md); brokers may come from --brokers instead.
type EventsSpec struct {
	Topic   string   `yaml:"topic"`
	Brokers []string `yaml:"brokers"`
}

// Requires names the server versions that can load the bundle's releases.
type Requires struct {
	Server string `yaml:"server" json:"server,omitempty"`
}

// InputSpec is a Spark output folder on any blob URL.
type InputSpec struct {
	URL            string `yaml:"url" json:"url"`
	RequireSuccess *bool  `yaml:"require_success" json:"require_success,omitempty"`
	// Partitions declares hive partition column types (string, int, bigint,
	// double, date, timestamp) instead of Spark's inference.
	Partitions map[string]string `yaml:"partitions" json:"partitions,omitempty"`
	// DeltaVersion reads a Delta table at this version instead of the latest.
	DeltaVersion *int64 `yaml:"delta_version" json:"delta_version,omitempty"`
	// FileMemory is each Parquet file's memory budget (bytes or "512MiB";
	// default 256MiB): its footer and the pages its columns hold at once.
	FileMemory string `yaml:"file_memory" json:"file_memory,omitempty"`
	// SnapshotID reads an Iceberg table at this snapshot instead of the
	// current one; AsOf at the snapshot current at this time (RFC 3339).
	SnapshotID *int64 `yaml:"snapshot_id" json:"snapshot_id,omitempty"`
	AsOf       string `yaml:"as_of" json:"as_of,omitempty"`
	// SchemaID reads an Iceberg table with this schema of its metadata
	// (rebuild pins the one a release read); default: the current one, or
	// the snapshot's with snapshot_id: or as_of:.
	SchemaID *int `yaml:"schema_id" json:"schema_id,omitempty"`
	// Format is "file" for one file that `file` assets ship as is (the
	// server binary); "iceberg", "delta" or "parquet" to say what Spark
	// output the folder holds; empty to detect it.
	Format string `yaml:"format" json:"format,omitempty"`
}

// DiscoverOptions are the discovery options an input's spec asks for.
func (b *Bundle) DiscoverOptions(name string) DiscoverOptions {
	in := b.Inputs[name]
	fm, _ := formats.ParseSize(in.FileMemory) // checked by Validate
	return DiscoverOptions{
		RequireSuccess: in.RequireSuccess == nil || *in.RequireSuccess,
		DeltaVersion:   in.DeltaVersion,
		PartitionTypes: in.Partitions,
		FileMemory:     fm,
		Format:         in.Format,
		SnapshotID:     in.SnapshotID,
		SchemaID:       in.SchemaID,
		AsOf:           asOf(in.AsOf), // checked by Validate
	}
}

// asOf parses an as_of: time, or returns nil.
func asOf(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &t
}

// AssetSpec is one asset of a bundle.
type AssetSpec struct {
	Format  string         `yaml:"format" json:"format"`
	Input   string         `yaml:"input" json:"input"`
	Options map[string]any `yaml:"options" json:"options,omitempty"`
	Checks  *CheckSpec     `yaml:"checks" json:"checks,omitempty"`
}

type specFile struct {
	Bundles map[string]*Bundle `yaml:"bundles"`
}

// DefaultChannel is where `run` promotes when a bundle names no channel.
const DefaultChannel = "production"

// LoadSpec reads and validates a spec file against the format registry.
func LoadSpec(path string, reg *formats.Registry) (*Spec, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no spec file %s: pass --spec FILE (testdata/demo.yaml is an example)", ErrSpec, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	return ParseSpec(path, data, reg)
}

// ParseSpec parses spec bytes; path names the file in errors and anchors
// relative input paths.
func ParseSpec(path string, data []byte, reg *formats.Registry) (*Spec, error) {
	var f specFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlError(path, err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	if len(f.Bundles) == 0 {
		return nil, fmt.Errorf("%w: %s: no bundles (the file needs a top-level `bundles:` map)", ErrSpec, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	s := &Spec{Path: path, Bundles: f.Bundles}
	for name, b := range f.Bundles {
		at := func(keys ...string) string {
			return fmt.Sprintf("%s:%d", path, lineOf(&root, append([]string{"bundles", name}, keys...)...))
		}
		if b == nil {
			return nil, fmt.Errorf("%w: %s: bundle %q is empty", ErrSpec, at(), name)
		}
		b.Name, b.dir = name, filepath.Dir(abs)
		if err := b.validate(reg, at); err != nil {
			return nil, err
		}
		canon := canonicalJSON(b)
		sum := sha256.Sum256(canon)
		b.Digest, b.canonical = hex.EncodeToString(sum[:]), canon
	}
	return s, nil
}

func (b *Bundle) validate(reg *formats.Registry, at func(...string) string) error {
	bad := func(where, format string, args ...any) error {
		return fmt.Errorf("%w: %s: bundle %q: %s", ErrSpec, where, b.Name, fmt.Sprintf(format, args...))
	}
	if err := publish.CheckName("bundle", b.Name); err != nil {
		return bad(at(), "%v", err)
	}
	if b.Channel == "" {
		b.Channel = DefaultChannel
	}
	if err := publish.CheckName("channel", b.Channel); err != nil {
		return bad(at("channel"), "%v", err)
	}
	switch m := b.Memory.(type) {
	case nil:
	case int:
		b.memory = int64(m)
	case string:
		n, err := formats.ParseSize(m)
		if err != nil {
			return bad(at("memory"), "memory: %v", err)
		}
		b.memory = n
	default:
		return bad(at("memory"), "memory: %v is not a size such as 536870912, \"512MiB\" or \"2GiB\"", m)
	}
	if err := b.ScheduleSpec.validate(at, bad); err != nil {
		return err
	}
	if b.Events != nil && b.Events.Topic == "" {
		return bad(at("events"), "events: name the topic, such as {topic: lockstep.promoted, brokers: [\"kafka:9092\"]}")
	}
	for _, in := range sortedKeys(b.AllowOverrides) {
		if _, ok := b.Inputs[in]; !ok {
			return bad(at("allow_overrides", in), "allow_overrides: the bundle has no input %q (inputs: %s)", in, strings.Join(sortedKeys(b.Inputs), ", "))
		}
		for _, p := range b.AllowOverrides[in] {
			if _, err := publish.ParseLocation(p); err != nil || !strings.HasSuffix(p, "/") {
				return bad(at("allow_overrides", in), "allow_overrides: %q: give a URL prefix ending in /, such as s3://bucket/spark/places/", p)
			}
		}
	}
	if b.Memory != nil && b.memory < MinMemory {
		return bad(at("memory"), "memory: %d bytes is below the 16MiB a build needs to sort; raise it", b.memory)
	}
	if len(b.Inputs) == 0 {
		return bad(at(), "no inputs: add `inputs:` with at least one Spark output URL")
	}
	if len(b.Assets) == 0 {
		return bad(at(), "no assets: add `assets:` naming a format and an input")
	}
	for name, in := range b.Inputs {
		if in == nil || in.URL == "" {
			return bad(at("inputs", name), "input %q has no url", name)
		}
		if _, err := publish.ParseLocation(in.URL); err != nil {
			return bad(at("inputs", name, "url"), "input %q: %v", name, err)
		}
		for col, typ := range in.Partitions {
			if _, ok := partitionTypes[typ]; !ok {
				return bad(at("inputs", name, "partitions", col), "input %q: partition %q: unknown type %q (valid: %s)", name, col, typ, strings.Join(sortedKeys(partitionTypes), ", "))
			}
		}
		if in.DeltaVersion != nil && *in.DeltaVersion < 0 {
			return bad(at("inputs", name, "delta_version"), "input %q: delta_version %d is negative", name, *in.DeltaVersion)
		}
		switch in.Format {
		case "", FileInput, "iceberg", "delta", "parquet":
		default:
			return bad(at("inputs", name, "format"), "input %q: format %q: use file (one file shipped as is), iceberg, delta or parquet, or leave it out to detect the Spark output's", name, in.Format)
		}
		if in.AsOf != "" && asOf(in.AsOf) == nil {
			return bad(at("inputs", name, "as_of"), "input %q: as_of %q is not an RFC 3339 time, such as 2026-11-30T12:00:00Z", name, in.AsOf)
		}
		if in.AsOf != "" && in.SnapshotID != nil {
			return bad(at("inputs", name, "as_of"), "input %q: both snapshot_id and as_of: pick one", name)
		}
		if in.FileMemory != "" {
			if n, err := formats.ParseSize(in.FileMemory); err != nil || n < 16<<20 {
				return bad(at("inputs", name, "file_memory"), "input %q: file_memory %q must be a size of at least 16MiB, such as \"512MiB\"", name, in.FileMemory)
			}
		}
	}
	if err := validateChecks(b.Checks, func(k ...string) string { return at(append([]string{"checks"}, k...)...) }, bad); err != nil {
		return err
	}
	b.configs = map[string]formats.Config{}
	b.optionsAt = map[string]string{}
	b.checks = map[string]*assetChecks{}
	for name, a := range b.Assets {
		b.optionsAt[name] = at("assets", name, "options")
		if err := publish.CheckName("asset", name); err != nil {
			return bad(at("assets", name), "%v", err)
		}
		if a == nil || a.Format == "" {
			return bad(at("assets", name), "asset %q has no format (valid: %s)", name, strings.Join(reg.Names(), ", "))
		}
		f, err := reg.Lookup(a.Format)
		if err != nil {
			return bad(at("assets", name, "format"), "asset %q: %v", name, err)
		}
		if _, ok := b.Inputs[a.Input]; !ok {
			return bad(at("assets", name, "input"), "asset %q reads input %q, which the bundle does not define (inputs: %s)", name, a.Input, strings.Join(sortedKeys(b.Inputs), ", "))
		}
		cfg, err := f.Configure(a.Options)
		if err != nil {
			return bad(at("assets", name, "options"), "asset %q: %v", name, err)
		}
		if fileIn := b.Inputs[a.Input].Format == FileInput; fileIn != f.Info().Raw {
			if fileIn {
				return bad(at("assets", name, "format"), "asset %q reads input %q, a file (format: file): only file assets can ship it", name, a.Input)
			}
			return bad(at("assets", name, "input"), "asset %q is a file asset: its input %q must be one file, with format: file on the input", name, a.Input)
		}
		if f.Info().Raw && a.Checks != nil && !reflect.DeepEqual(*a.Checks, CheckSpec{Size: a.Checks.Size}) {
			return bad(at("assets", name, "checks"), "asset %q: a file asset takes only the size check", name)
		}
		b.configs[name] = cfg
		if err := validateChecks(a.Checks, func(k ...string) string { return at(append([]string{"assets", name, "checks"}, k...)...) }, bad); err != nil {
			return err
		}
		if a.Checks != nil && a.Checks.Unique != nil && *a.Checks.Unique && !f.Info().Keyed {
			return bad(at("assets", name, "checks", "unique"), "asset %q: unique applies to formats with keys (kv, fst); format %s has none", name, a.Format)
		}
		b.checks[name] = &assetChecks{CheckSpec: mergeChecks(b.Checks, a.Checks), keyed: f.Info().Keyed}
		if f.Info().Raw {
			// A file has no rows or columns: of the bundle's checks, only
			// size applies.
			b.checks[name] = &assetChecks{CheckSpec: CheckSpec{Size: b.checks[name].Size, MaxPartitions: DefaultMaxPartitions}}
		}
	}
	// The names the build will publish, shards included, checked as pull
	// will check them: a clash found only at publish time would leave
	// uploaded blobs and a release no box can pull.
	var planned []publish.Asset
	from := map[string]string{} // planned name -> the spec asset it comes from
	for _, name := range sortedKeys(b.Assets) {
		f, _ := reg.Lookup(b.Assets[name].Format)
		for _, n := range assetNames(name, b.configs[name]) {
			planned = append(planned, publish.Asset{Name: n, File: n + f.Info().Ext})
			if _, ok := from[strings.ToLower(n)]; !ok {
				from[strings.ToLower(n)] = name
			}
		}
		// Checked as each asset is added, so the error points at the one
		// that makes the clash.
		if err := publish.CheckAssetNames(planned); err != nil {
			var clash *publish.NameClashError
			if errors.As(err, &clash) {
				return bad(at("assets", name), "assets %q and %q would both publish %q (shards are named NAME-<i>of<N>; names are compared ignoring case); rename one",
					from[strings.ToLower(clash.Assets[0])], name, clash.Name)
			}
			return bad(at("assets", name), "%v", err)
		}
	}
	return nil
}

// canonicalJSON is a bundle's section as the digest and the manifest see
// it: JSON with sorted keys, and credentials removed from input URLs (the
// manifest goes to every box; credentials change no output byte).
func canonicalJSON(b *Bundle) []byte {
	raw, _ := json.Marshal(b)
	var sec map[string]any
	_ = json.Unmarshal(raw, &sec)
	if inputs, ok := sec["inputs"].(map[string]any); ok {
		for _, in := range inputs {
			if m, ok := in.(map[string]any); ok {
				if u, ok := m["url"].(string); ok && strings.Contains(u, "://") {
					m["url"] = publish.Redact(u)
				}
			}
		}
	}
	out, _ := json.Marshal(sec)
	return out
}

// assetNames are the assets one spec asset becomes: itself, or one per
// shard, NAME-<i>of<N>.
func assetNames(name string, cfg formats.Config) []string {
	sc, ok := cfg.(formats.ShardedConfig)
	if !ok || sc.Shards() <= 1 {
		return []string{name}
	}
	names := make([]string, sc.Shards())
	for i := range names {
		names[i] = fmt.Sprintf("%s-%dof%d", name, i+1, sc.Shards())
	}
	return names
}

// Bundle returns the named bundle; with name "" and a single bundle, that one.
func (s *Spec) Bundle(name string) (*Bundle, error) {
	if name == "" {
		if len(s.Bundles) == 1 {
			for _, b := range s.Bundles {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%w: %s has %d bundles; choose one with --bundle (%s)", ErrSpec, s.Path, len(s.Bundles), strings.Join(s.Names(), ", "))
	}
	b, ok := s.Bundles[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no bundle %q (bundles: %s)", ErrSpec, s.Path, name, strings.Join(s.Names(), ", "))
	}
	return b, nil
}

// Names lists the bundles, sorted.
func (s *Spec) Names() []string { return sortedKeys(s.Bundles) }

// InputURL resolves an input's URL; a relative local path is taken from the
// spec file's folder, so a spec works from any working directory.
func (b *Bundle) InputURL(name string) string {
	u := b.Inputs[name].URL
	if strings.Contains(u, "://") || filepath.IsAbs(u) {
		return u
	}
	return filepath.Join(b.dir, u)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineOf finds the line of a key path in a YAML document, or of the deepest
// part of it that exists.
func lineOf(n *yaml.Node, keys ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type pipeline\.(\w+)`)

// yamlError rewrites yaml's messages into ones that name the file, the line,
// the key and the keys that would have been valid.
func yamlError(path string, err error) error {
	msg := err.Error()
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return fmt.Errorf("%w: %s:%d: unknown key %q (valid here: %s)", ErrSpec, path, line, m[2], strings.Join(validKeys(m[3]), ", "))
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return fmt.Errorf("%w: %s: %s", ErrSpec, path, msg)
}

func validKeys(typeName string) []string {
	types := map[string]reflect.Type{
		"specFile":    reflect.TypeFor[specFile](),
		"Bundle":      reflect.TypeFor[Bundle](),
		"Requires":    reflect.TypeFor[Requires](),
		"InputSpec":   reflect.TypeFor[InputSpec](),
		"AssetSpec":   reflect.TypeFor[AssetSpec](),
		"CheckSpec":   reflect.TypeFor[CheckSpec](),
		"SchemaCheck": reflect.TypeFor[SchemaCheck](),
		"RowsCheck":   reflect.TypeFor[RowsCheck](),
		"BoundsCheck": reflect.TypeFor[BoundsCheck](),
		"SizeCheck":   reflect.TypeFor[SizeCheck](),
		"EventsSpec":  reflect.TypeFor[EventsSpec](),
	}
	t, ok := types[typeName]
	if !ok {
		if typeName == "NullCheck" {
			return []string{"max", "by"}
		}
		return nil
	}
	return yamlKeys(t)
}

// yamlKeys lists a struct's YAML keys, those of inlined structs included.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if strings.HasSuffix(tag, ",inline") {
			keys = append(keys, yamlKeys(f.Type)...)
			continue
		}
		if name := strings.Split(tag, ",")[0]; name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}
