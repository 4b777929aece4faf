package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ManifestSchema names the manifest's version. A reader refuses any other.
const ManifestSchema = "lockstep.manifest/v1"

// Size limits for objects read from a store, which may be hostile.
const (
	MaxManifestBytes = 16 << 20
	MaxEntryBytes    = 64 << 10
	maxAssets        = 10_000
	maxInputFiles    = 1_000_000
	maxChecks        = 100_000
)

// Manifest describes one sealed release. It is written once and never changed.
type Manifest struct {
	Schema          string    `json:"schema"`
	Bundle          string    `json:"bundle"`
	Release         string    `json:"release"`
	Created         time.Time `json:"created"`
	LockstepVersion string    `json:"lockstep_version"`
	SpecDigest      string    `json:"spec_digest"`
	// Spec is the bundle's spec section in canonical JSON, whose sha256 is
	// SpecDigest once compacted: what `rebuild` builds from.
	Spec        json.RawMessage `json:"spec,omitempty"`
	Fingerprint string          `json:"fingerprint"`
	Parent      string          `json:"parent,omitempty"`
	ParentSeq   int64           `json:"parent_seq,omitempty"` // the channel entry Parent was read from; 0: the channel had none
	Requires    *Requires       `json:"requires,omitempty"`
	Inputs      []Input         `json:"inputs"`
	Assets      []Asset         `json:"assets"`
	Checks      []Check         `json:"checks"`
	// Overrides are the failed checks a person pushed through, and why.
	Overrides []Override `json:"overrides,omitempty"`
	// Partitions are the rows per value of a column, for the assets whose
	// row checks ask for it (by:); the next build compares its own with them.
	Partitions []PartitionRows `json:"partitions,omitempty"`
}

// Requires states what a server needs to load the release.
type Requires struct {
	Server string `json:"server,omitempty"` // a version constraint, such as ">=1.4.0"
}

// Input is one input of the build, resolved to exact files.
type Input struct {
	Name         string      `json:"name"`
	URL          string      `json:"url"` // credentials stripped
	Files        []InputFile `json:"files"`
	Rows         int64       `json:"rows"`
	SparkVersion string      `json:"spark_version,omitempty"`
	DeltaVersion *int64      `json:"delta_version,omitempty"`
	// IcebergSnapshot is an Iceberg table's snapshot read (0: it had none
	// yet), and IcebergMetadata the metadata file it was read from,
	// relative to URL.
	IcebergSnapshot *int64 `json:"iceberg_snapshot_id,omitempty"`
	IcebergMetadata string `json:"iceberg_metadata,omitempty"`
	IcebergSchema   *int   `json:"iceberg_schema_id,omitempty"` // the table schema read
	SparkSchema     string `json:"spark_schema,omitempty"`      // org.apache.spark.sql.parquet.row.metadata
}

// InputFile is one file read, relative to its input's URL.
type InputFile struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"` // "sha256:<hex>", "md5:<hex>" or "etag:<etag>"
	// DeletionVector names the rows of the file its table deletes: a Delta
	// file's deletion vector (its file and offset, or the digest of an
	// inline one), an Iceberg file's position delete files ("pos:" and
	// their paths) or deletion vector ("dv:" path@offset); DeletedRows is
	// how many rows they delete.
	DeletionVector string `json:"deletion_vector,omitempty"`
	DeletedRows    int64  `json:"deleted_rows,omitempty"`
}

// Asset is one file a server loads.
type Asset struct {
	Name          string         `json:"name"`
	File          string         `json:"file"` // name + the format's extension, as pulled
	Format        string         `json:"format"`
	FormatVersion string         `json:"format_version"`
	MediaType     string         `json:"media_type"`
	Size          int64          `json:"size"`
	SHA256        string         `json:"sha256"`
	Rows          int64          `json:"rows"`
	Schema        string         `json:"schema,omitempty"` // Arrow schema of the records written
	Options       map[string]any `json:"options,omitempty"`
	// Mode is the file mode a pull gives the asset, in octal ("0755" for
	// a server binary); "" for the default, 0644.
	Mode string `json:"mode,omitempty"`
	// Stats are counts a format reports beyond rows, such as the features
	// geo skipped as invalid (formats.StatsReporter).
	Stats map[string]int64 `json:"stats,omitempty"`
}

// Check is the outcome of one data-quality gate.
type Check struct {
	Name       string `json:"name"` // ASSET/KIND, such as places/rows.max_drop
	Passed     bool   `json:"passed"`
	Overridden bool   `json:"overridden,omitempty"` // failed, and pushed through with --override
	Expected   string `json:"expected,omitempty"`
	Actual     string `json:"actual,omitempty"`
	Detail     string `json:"detail,omitempty"`
	// Worst are the failing values of a by: check, worst first (at most
	// MaxWorst of them).
	Worst []CheckValue `json:"worst,omitempty"`
}

// MaxWorst is how many failing values a by: check records.
const MaxWorst = 20

// CheckValue is one value of a by: check's column and its outcome.
type CheckValue struct {
	Value  string `json:"value"`
	Null   bool   `json:"null,omitempty"` // the column's null value (Value is "")
	Actual string `json:"actual"`
}

// Override is a failed check a person pushed through, and why.
type Override struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
	Who    string `json:"who"`
}

// PartitionRows counts an asset's records per value of a column. Truncated
// says the column had more values than the build counts; Values then holds
// none.
type PartitionRows struct {
	Asset     string           `json:"asset"`
	Column    string           `json:"column"`
	Values    []PartitionValue `json:"values"`
	Truncated bool             `json:"truncated,omitempty"`
}

// PartitionValue is one value of a column and its records.
type PartitionValue struct {
	Value string `json:"value"`
	Null  bool   `json:"null,omitempty"` // the column's null value (Value is "")
	Rows  int64  `json:"rows"`
}

// Encode gives the manifest's canonical bytes: indented JSON with a final
// newline. encoding/json sorts map keys, so the bytes depend only on the values.
func (m *Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeManifest parses and validates a manifest read from a store or a
// folder. Every name in it is checked, since names become file names.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest of %d bytes (limit %d)", ErrVerify, len(data), MaxManifestBytes)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrVerify, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

var hexSHA = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks names, digests and sizes.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest %s: %s", ErrVerify, m.Release, fmt.Sprintf(format, args...))
	}
	if m.Schema != ManifestSchema {
		return bad("schema %q, want %q (a newer lockstep may be needed)", m.Schema, ManifestSchema)
	}
	for kind, name := range map[string]string{"bundle": m.Bundle, "release": m.Release} {
		if err := CheckName(kind, name); err != nil {
			return bad("%v", err)
		}
	}
	if m.ParentSeq < 0 {
		return bad("negative parent_seq")
	}
	if m.Parent != "" {
		if err := CheckName("parent release", m.Parent); err != nil {
			return bad("%v", err)
		}
	}
	if len(m.Assets) > maxAssets {
		return bad("%d assets (limit %d)", len(m.Assets), maxAssets)
	}
	files := 0
	for _, in := range m.Inputs {
		files += len(in.Files)
	}
	if files > maxInputFiles {
		return bad("%d input files (limit %d)", files, maxInputFiles)
	}
	if err := CheckAssetNames(m.Assets); err != nil {
		return bad("%v", err)
	}
	if len(m.Checks) > maxChecks || len(m.Overrides) > maxChecks || len(m.Partitions) > maxChecks {
		return bad("more than %d checks, overrides or partition counts", maxChecks)
	}
	for _, a := range m.Assets {
		if !hexSHA.MatchString(a.SHA256) {
			return bad("asset %q: sha256 %q is not 64 lowercase hex digits", a.Name, a.SHA256)
		}
		if a.Size < 0 || a.Rows < 0 {
			return bad("asset %q: negative size or rows", a.Name)
		}
		if _, err := a.FileMode(); err != nil {
			return bad("asset %q: %v", a.Name, err)
		}
	}
	return nil
}

// CheckAssetNames checks the names and file names of a release's assets as
// pull will: each a valid name (CheckName: at most 128 characters, shard
// suffixes included), none reserved, and no two equal ignoring case, since
// a pulled folder may sit on a case-insensitive file system. The spec runs
// it on the names a build will produce, so a bad one fails before any work.
func CheckAssetNames(assets []Asset) error {
	seen := map[string]string{}
	for _, a := range assets {
		if err := CheckName("asset", a.Name); err != nil {
			return err
		}
		if err := CheckName("asset file", a.File); err != nil {
			return err
		}
		names := []string{a.Name} // checked in this order, so the error is the same every time
		if !strings.EqualFold(a.File, a.Name) {
			names = append(names, a.File)
		}
		for _, n := range names {
			key := strings.ToLower(n)
			if key == StagedManifest || key == CurrentLink || key == ReleasesDir {
				return fmt.Errorf("asset %q: file name %q is reserved", a.Name, n)
			}
			if other, ok := seen[key]; ok {
				return &NameClashError{Name: n, Assets: [2]string{other, a.Name}}
			}
		}
		for _, n := range names {
			seen[strings.ToLower(n)] = a.Name
		}
	}
	return nil
}

// NameClashError is two assets that would take one name in a pulled release.
type NameClashError struct {
	Name   string
	Assets [2]string
}

func (e *NameClashError) Error() string {
	return fmt.Sprintf("assets %q and %q would both be %q in a pulled release (names are compared ignoring case); rename one", e.Assets[0], e.Assets[1], e.Name)
}

// Asset returns the named asset.
func (m *Manifest) Asset(name string) (*Asset, error) {
	for i := range m.Assets {
		if m.Assets[i].Name == name {
			return &m.Assets[i], nil
		}
	}
	names := make([]string, len(m.Assets))
	for i, a := range m.Assets {
		names[i] = a.Name
	}
	return nil, fmt.Errorf("release %s has no asset %q (assets: %v): %w", m.Release, name, names, ErrNotFound)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// FileMode is the mode a pulled asset gets: Mode's permission bits, or
// 0644. A pulled file is always readable and writable by its owner (pull
// verifies and resumes it) and never writable by group or others, setuid,
// setgid or sticky, whatever the manifest says.
func (a *Asset) FileMode() (os.FileMode, error) {
	if a.Mode == "" {
		return 0o644, nil
	}
	n, err := strconv.ParseUint(a.Mode, 8, 32)
	if err != nil || n > 0o777 || len(a.Mode) > 4 {
		return 0, fmt.Errorf("mode %q is not permission bits in octal, such as 0755", a.Mode)
	}
	return os.FileMode(n)&0o755 | 0o600, nil
}
