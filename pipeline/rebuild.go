package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/publish"
)

// ErrNotReproduced is a rebuild whose assets differ from the release's.
// It is a publish.ErrVerify.
var ErrNotReproduced = fmt.Errorf("%w: the rebuild differs from the release", publish.ErrVerify)

// RebuildResult says whether a release was rebuilt byte for byte.
type RebuildResult struct {
	Bundle    string         `json:"bundle"`
	Release   string         `json:"release"`
	Identical bool           `json:"identical"`
	Assets    []RebuiltAsset `json:"assets"`
}

// RebuiltAsset is one asset of the release against its rebuild.
type RebuiltAsset struct {
	Name      string `json:"name"`
	Identical bool   `json:"identical"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	// Rebuilt* are the rebuild's, FirstDiff the first byte offset where the
	// two differ (-1 when identical; the shorter one's length when one is a
	// prefix of the other).
	RebuiltSize   int64  `json:"rebuilt_size"`
	RebuiltSHA256 string `json:"rebuilt_sha256"`
	FirstDiff     int64  `json:"first_diff"`
}

// RebuildOptions tunes Rebuild.
type RebuildOptions struct {
	// AllowVersionChange rebuilds with this lockstep although the release
	// was built by another version.
	AllowVersionChange bool
}

// Rebuild builds a published release again from its manifest alone (the
// spec section it records, its input files pinned, its Delta versions) and
// proves every asset byte-identical, or reports where each differs. An
// input file that changed or vanished since is an error naming it. The
// builder's StageDir takes the rebuild, which is removed afterwards; the
// store is only read.
func Rebuild(ctx context.Context, b *Builder, store *publish.Store, bundleName, release string, opts RebuildOptions) (*RebuildResult, error) {
	m, _, err := store.ReadManifest(ctx, bundleName, release)
	if err != nil {
		return nil, err
	}
	if len(m.Spec) == 0 {
		return nil, fmt.Errorf("%w: release %s does not record its spec section (lockstep recorded it from the Gates release on): it cannot be rebuilt from its manifest", ErrSpec, release)
	}
	var canon bytes.Buffer
	if err := json.Compact(&canon, m.Spec); err != nil || hexSum(canon.Bytes()) != m.SpecDigest {
		return nil, fmt.Errorf("%w: release %s: its recorded spec does not match its spec_digest", publish.ErrVerify, release)
	}
	if m.LockstepVersion != b.Version && !opts.AllowVersionChange {
		return nil, fmt.Errorf("%w: release %s was built by lockstep %s, this is %s: a rebuild proves nothing across versions unless you mean it (--allow-version-change)",
			ErrSpec, release, m.LockstepVersion, b.Version)
	}
	bundle, err := pinnedBundle(b.Registry, m, canon.Bytes())
	if err != nil {
		return nil, err
	}
	// The inputs must still be the files the release read.
	srcs, err := b.resolve(ctx, bundle)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		s.Close()
	}
	if err := sameInputs(m, srcs); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.StageDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(b.StageDir, ".rebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rb := *b
	rb.Store, rb.StageDir, rb.NoGate = nil, tmp, true
	built, err := rb.Build(ctx, bundle)
	if err != nil {
		return nil, err
	}
	res := &RebuildResult{Bundle: bundleName, Release: release, Identical: true, Assets: []RebuiltAsset{}}
	rebuilt := map[string]publish.Asset{}
	for _, a := range built.Manifest.Assets {
		rebuilt[a.Name] = a
	}
	for _, a := range m.Assets {
		r, ok := rebuilt[a.Name]
		ra := RebuiltAsset{Name: a.Name, Size: a.Size, SHA256: a.SHA256, RebuiltSize: r.Size, RebuiltSHA256: r.SHA256, FirstDiff: -1}
		switch {
		case !ok:
			ra.FirstDiff = 0
		case r.SHA256 != a.SHA256:
			ra.FirstDiff, err = firstDiff(ctx, store, a, filepath.Join(built.Dir, r.File))
			if err != nil {
				return nil, err
			}
		}
		ra.Identical = ra.FirstDiff < 0
		res.Identical = res.Identical && ra.Identical
		res.Assets = append(res.Assets, ra)
	}
	if len(built.Manifest.Assets) != len(m.Assets) {
		res.Identical = false
	}
	if !res.Identical {
		return res, ErrNotReproduced
	}
	return res, nil
}

// pinnedBundle is the release's recorded bundle section, with each input at
// the URL and Delta version or Iceberg snapshot the release read.
func pinnedBundle(reg *formats.Registry, m *publish.Manifest, canon []byte) (*Bundle, error) {
	var sec map[string]any
	if err := json.Unmarshal(canon, &sec); err != nil {
		return nil, fmt.Errorf("%w: release %s: recorded spec: %v", publish.ErrVerify, m.Release, err)
	}
	inputs, _ := sec["inputs"].(map[string]any)
	for _, in := range m.Inputs {
		spec, ok := inputs[in.Name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: release %s: input %q is not in its recorded spec", publish.ErrVerify, m.Release, in.Name)
		}
		spec["url"] = in.URL
		if in.DeltaVersion != nil {
			spec["delta_version"] = *in.DeltaVersion
		}
		if in.IcebergSnapshot != nil && *in.IcebergSnapshot != 0 {
			spec["snapshot_id"] = *in.IcebergSnapshot
			delete(spec, "as_of")
		}
		if in.IcebergSchema != nil {
			spec["schema_id"] = *in.IcebergSchema // as read, not the snapshot's own
		}
	}
	doc, _ := json.Marshal(map[string]any{"bundles": map[string]any{m.Bundle: sec}})
	s, err := ParseSpec("the manifest of release "+m.Release, doc, reg)
	if err != nil {
		return nil, err
	}
	return s.Bundles[m.Bundle], nil
}

// sameInputs names the first input file that changed, vanished or appeared
// since the release read its inputs.
func sameInputs(m *publish.Manifest, srcs []*Source) error {
	for _, in := range m.Inputs {
		var now []publish.InputFile
		for _, s := range srcs {
			if s.Name == in.Name {
				now = s.Files
			}
		}
		had := map[string]publish.InputFile{}
		for _, f := range in.Files {
			had[f.Path] = f
		}
		seen := map[string]bool{}
		for _, f := range now {
			seen[f.Path] = true
			old, ok := had[f.Path]
			switch {
			case !ok:
				return fmt.Errorf("%w: input %q: %s is new since release %s read its inputs; the release cannot be rebuilt from what is there now", ErrInput, in.Name, f.Path, m.Release)
			case old.Size != f.Size || old.Checksum != f.Checksum || old.DeletionVector != f.DeletionVector:
				return fmt.Errorf("%w: input %q: %s changed since release %s read it (%d bytes, %s; now %d bytes, %s)", ErrInput, in.Name, f.Path, m.Release, old.Size, old.Checksum, f.Size, f.Checksum)
			}
		}
		for _, f := range in.Files {
			if !seen[f.Path] {
				return fmt.Errorf("%w: input %q: %s, which release %s read, is gone", ErrInput, in.Name, f.Path, m.Release)
			}
		}
	}
	return nil
}

// firstDiff is the first byte offset where a release's blob and a rebuilt
// file differ.
func firstDiff(ctx context.Context, store *publish.Store, a publish.Asset, path string) (int64, error) {
	r, err := store.Bucket().NewReader(ctx, "blobs/sha256/"+a.SHA256, nil)
	if err != nil {
		return 0, fmt.Errorf("asset %q: the release's blob: %w", a.Name, err)
	}
	defer r.Close()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return diffOffset(bufio.NewReader(r), bufio.NewReader(f))
}

// diffOffset is the offset of the first byte where x and y differ, or -1.
func diffOffset(x, y io.ByteReader) (int64, error) {
	for off := int64(0); ; off++ {
		a, errA := x.ReadByte()
		b, errB := y.ReadByte()
		switch {
		case errA == io.EOF && errB == io.EOF:
			return -1, nil
		case errA == io.EOF || errB == io.EOF:
			return off, nil
		case errA != nil:
			return 0, errA
		case errB != nil:
			return 0, errB
		case a != b:
			return off, nil
		}
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
