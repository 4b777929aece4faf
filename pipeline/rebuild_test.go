package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "gocloud.dev/blob/memblob"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/publish"
)

// A rebuild that differs names the asset and the first differing byte;
// another lockstep version is refused unless allowed.
func TestRebuildReportsTheFirstDifference(t *testing.T) {
	ctx := context.Background()
	s, err := publish.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	places, _ := filepath.Abs(filepath.Join("..", "testdata", "places"))
	spec, err := ParseSpec("spec.yaml", []byte("bundles:\n  b:\n    inputs: {in: {url: "+places+"}}\n    assets: {t: {format: arrow, input: in}}\n"), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{Store: s, Registry: all.Registry(), Version: "v1", StageDir: t.TempDir()}
	built, err := b.Build(ctx, spec.Bundles["b"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Publish(ctx, s, built.Staged, publish.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := Rebuild(ctx, b, s, "b", built.Release, RebuildOptions{}); err != nil || !res.Identical {
		t.Fatalf("rebuild: %+v %v", res, err)
	}
	other := *b
	other.Version = "v2"
	if _, err := Rebuild(ctx, &other, s, "b", built.Release, RebuildOptions{}); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "--allow-version-change") {
		t.Errorf("another version: %v", err)
	}
	if res, err := Rebuild(ctx, &other, s, "b", built.Release, RebuildOptions{AllowVersionChange: true}); err != nil || !res.Identical {
		t.Errorf("another version, allowed: %+v %v", res, err)
	}

	// Make the store claim other bytes for the asset: byte 100 flipped.
	m := built.Staged.Manifest
	a := m.Assets[0]
	blob, err := s.Bucket().ReadAll(ctx, "blobs/sha256/"+a.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	blob[100] ^= 0xff
	sum := sha256.Sum256(blob)
	m.Assets[0].SHA256 = hex.EncodeToString(sum[:])
	s.Bucket().WriteAll(ctx, "blobs/sha256/"+m.Assets[0].SHA256, blob, nil)
	data, _ := m.Encode()
	s.Bucket().WriteAll(ctx, "bundles/b/releases/"+built.Release+".json", data, nil)
	res, err := Rebuild(ctx, b, s, "b", built.Release, RebuildOptions{})
	if !errors.Is(err, ErrNotReproduced) || !errors.Is(err, publish.ErrVerify) || res == nil || res.Identical ||
		res.Assets[0].Identical || res.Assets[0].FirstDiff != 100 || res.Assets[0].RebuiltSHA256 != a.SHA256 {
		t.Fatalf("a differing asset: %+v %v", res, err)
	}
	if got, _ := diffOffset(strings.NewReader("abc"), strings.NewReader("ab")); got != 2 {
		t.Errorf("a prefix differs at its length, got %d", got)
	}
}

// A build record edited to name another release is refused: a run must
// never promote, or sign, a release of other inputs as "unchanged".
func TestTamperedBuildRecord(t *testing.T) {
	ctx := context.Background()
	s, err := publish.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	places, _ := filepath.Abs(filepath.Join("..", "testdata", "places"))
	build := func(compression string) *BuildResult {
		spec, err := ParseSpec("spec.yaml", []byte("bundles:\n  b:\n    inputs: {in: {url: "+places+"}}\n    assets: {t: {format: arrow, input: in, options: {compression: "+compression+"}}}\n"), all.Registry())
		if err != nil {
			t.Fatal(err)
		}
		res, err := (&Builder{Store: s, Registry: all.Registry(), Version: "v1", StageDir: t.TempDir()}).Build(ctx, spec.Bundles["b"])
		if err != nil {
			return &BuildResult{Fingerprint: err.Error()}
		}
		if res.Staged != nil {
			if _, err := publish.Publish(ctx, s, res.Staged, publish.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	a, b := build("zstd"), build("lz4")
	rec, _ := s.Bucket().ReadAll(ctx, "bundles/b/builds/"+b.Fingerprint+".json")
	s.Bucket().WriteAll(ctx, "bundles/b/builds/"+a.Fingerprint+".json", rec, nil) // a's inputs now "are" b's release
	if got := build("zstd"); got.Unchanged || !strings.Contains(got.Fingerprint, "changed by hand") {
		t.Fatalf("a tampered build record: %+v", got)
	}
}
