package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A cut-off download resumes after the bytes it kept; bytes that do not
// belong are fetched again; a release the disk cannot hold is refused
// before anything is fetched.
func TestPullResumesAndChecksSpace(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	content := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte(content), 0o644)
	m := &Manifest{Schema: ManifestSchema, Bundle: "geo", Release: "r1", Created: time.Now().UTC(), LockstepVersion: "test",
		SpecDigest: strings.Repeat("0", 64), Fingerprint: "fp", Checks: []Check{},
		Assets: []Asset{{Name: "a", File: "a.bin", Format: "file", Size: int64(len(content)), SHA256: sha256Hex([]byte(content))}}}
	data, _ := m.Encode()
	os.WriteFile(filepath.Join(dir, StagedManifest), data, 0o644)
	st, err := ReadStaged(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, s, st, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(ctx, s, PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r1", ExpectHead: -1}); err != nil {
		t.Fatal(err)
	}
	req := func(dest string) PullRequest { return PullRequest{Bundle: "geo", Channel: "prod", Dest: dest} }
	for _, c := range []struct {
		name string
		kept string
		want int64
	}{
		{"resumed", content[:100000], int64(len(content) - 100000)},
		{"foreign bytes", strings.Repeat("x", 100000), int64(2*len(content) - 100000)}, // the resumed tail, then all of it again
		{"whole and wrong", strings.Repeat("x", len(content)), int64(len(content))},
		{"complete", content, 0},
		{"too long", content + "extra", int64(len(content))},
	} {
		dest := t.TempDir()
		part := filepath.Join(dest, ReleasesDir, partialPrefix+"r1")
		os.MkdirAll(part, 0o755)
		os.WriteFile(filepath.Join(part, "a.bin"), []byte(c.kept), 0o644)
		res, err := Pull(ctx, s, req(dest))
		if err != nil || res.Downloaded != c.want {
			t.Errorf("%s: %+v %v, want %d bytes downloaded", c.name, res, err, c.want)
			continue
		}
		if got, _ := os.ReadFile(filepath.Join(dest, CurrentLink, "a.bin")); string(got) != content {
			t.Errorf("%s: the served file differs", c.name)
		}
	}

	old := freeSpace
	defer func() { freeSpace = old }()
	freeSpace = func(string) (uint64, error) { return 1 << 20, nil }
	dest := t.TempDir()
	_, err = Pull(ctx, s, req(dest))
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "needs 0.3 MiB more") {
		t.Fatalf("a full disk: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, CurrentLink)); err == nil {
		t.Errorf("current was set on a full disk")
	}
}
