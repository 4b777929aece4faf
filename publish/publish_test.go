package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"

	"github.com/lockstep-data/lockstep/publish"
)

// stores are the backends the suite runs on here; MinIO joins with the
// object-storage issue.
func stores(t *testing.T) map[string]*publish.Store {
	ctx := context.Background()
	out := map[string]*publish.Store{}
	for name, url := range map[string]string{
		"mem":  "mem://",
		"file": "file://" + filepath.Join(t.TempDir(), "store"),
	} {
		s, err := publish.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// stage writes a staged release with the given assets (name -> content).
func stage(t *testing.T, release, fingerprint string, assets map[string]string) *publish.Staged {
	t.Helper()
	dir := t.TempDir()
	m := &publish.Manifest{
		Schema: publish.ManifestSchema, Bundle: "geo", Release: release,
		Created: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), LockstepVersion: "test",
		SpecDigest: strings.Repeat("0", 64), Fingerprint: fingerprint, Checks: []publish.Check{},
	}
	for name, content := range assets {
		sum := sha256.Sum256([]byte(content))
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		m.Assets = append(m.Assets, publish.Asset{
			Name: name, File: name + ".bin", Format: "file", Size: int64(len(content)),
			SHA256: hex.EncodeToString(sum[:]), Rows: 1,
		})
	}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, publish.StagedManifest), data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := publish.ReadStaged(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStoreConformance(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) { conformance(t, s) })
	}
}

func conformance(t *testing.T, s *publish.Store) {
	ctx := context.Background()
	a := stage(t, "r1", "fp1", map[string]string{"cities": "alpha", "ips": "beta"})
	res, err := publish.Publish(ctx, s, a, publish.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged || res.BlobsUploaded != 2 || res.BytesUploaded != 9 {
		t.Fatalf("first publish: %+v", res)
	}
	// The same fingerprint again: nothing written.
	res, err = publish.Publish(ctx, s, a, publish.PublishOptions{})
	if err != nil || !res.Unchanged || res.Release != "r1" || res.BytesUploaded != 0 {
		t.Fatalf("second publish: %+v, %v", res, err)
	}
	// A new release sharing one blob uploads only the other.
	b := stage(t, "r2", "fp2", map[string]string{"cities": "alpha", "ips": "gamma!"})
	res, err = publish.Publish(ctx, s, b, publish.PublishOptions{})
	if err != nil || res.BlobsUploaded != 1 || res.BlobsSkipped != 1 || res.BytesUploaded != 6 || res.BytesSkipped != 5 {
		t.Fatalf("publish sharing a blob: %+v, %v", res, err)
	}

	// Promote, with compare-and-swap.
	e, err := publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r1", ExpectHead: 0})
	if err != nil || e.Seq != 1 || e.Previous != "" {
		t.Fatalf("promote r1: %+v, %v", e, err)
	}
	_, err = publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r2", ExpectHead: 0})
	if !errors.Is(err, publish.ErrConflict) {
		t.Fatalf("stale expect-head: %v", err)
	}
	e, err = publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r2", ExpectHead: 1})
	if err != nil || e.Seq != 2 || e.Previous != "r1" {
		t.Fatalf("promote r2: %+v, %v", e, err)
	}
	if _, err := publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r9", ExpectHead: -1}); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("promote a release that does not exist: %v", err)
	}

	// Pull, then pull the older release by id, then the channel again.
	dest := t.TempDir()
	p, err := publish.Pull(ctx, s, publish.PullRequest{Bundle: "geo", Channel: "prod", Dest: dest})
	if err != nil || p.Release != "r2" || p.Downloaded != 11 || p.Reused {
		t.Fatalf("pull: %+v, %v", p, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "current", "ips.bin")); string(got) != "gamma!" {
		t.Fatalf("pulled ips.bin = %q", got)
	}
	p, err = publish.Pull(ctx, s, publish.PullRequest{Bundle: "geo", Release: "r1", Dest: dest})
	if err != nil || p.Previous != "r2" {
		t.Fatalf("pull r1: %+v, %v", p, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "current", "ips.bin")); string(got) != "beta" {
		t.Fatalf("pulled ips.bin = %q", got)
	}
	p, err = publish.Pull(ctx, s, publish.PullRequest{Bundle: "geo", Channel: "prod", Dest: dest})
	if err != nil || !p.Reused || p.Downloaded != 0 {
		t.Fatalf("pull again: %+v, %v", p, err)
	}

	hist, err := s.History(ctx, "geo", "prod")
	if err != nil || len(hist) != 2 || hist[0].Release != "r1" || hist[1].Release != "r2" {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	rels, err := s.Releases(ctx, "geo")
	if err != nil || strings.Join(rels, ",") != "r1,r2" {
		t.Fatalf("releases: %v, %v", rels, err)
	}
}

func TestPromoteRefusesIncompleteRelease(t *testing.T) {
	ctx := context.Background()
	s := stores(t)["file"]
	st := stage(t, "r1", "fp1", map[string]string{"cities": "alpha"})
	if _, err := publish.Publish(ctx, s, st, publish.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	sha := st.Manifest.Assets[0].SHA256
	if err := s.Bucket().Delete(ctx, "blobs/sha256/"+sha); err != nil {
		t.Fatal(err)
	}
	_, err := publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r1", ExpectHead: -1})
	if !errors.Is(err, publish.ErrVerify) || !strings.Contains(err.Error(), "cities") {
		t.Fatalf("promote with a missing blob: %v", err)
	}
	if h, _ := s.Head(ctx, "geo", "prod"); h != nil {
		t.Fatalf("channel moved to an incomplete release: %+v", h)
	}
}

// TestHostileManifest: names from a manifest become file names; none may
// escape the pulled folder, and sizes are bounded.
func TestHostileManifest(t *testing.T) {
	base := func() string {
		return `{"schema":"lockstep.manifest/v1","bundle":"geo","release":"r1","created":"2026-11-25T12:00:00Z",
"lockstep_version":"x","spec_digest":"","fingerprint":"f","inputs":[],"checks":[],
"assets":[{"name":"a","file":"FILE","format":"file","format_version":"","media_type":"","size":1,"sha256":"` + strings.Repeat("a", 64) + `","rows":0}]}`
	}
	for _, file := range []string{"../../etc/passwd", "/etc/passwd", "..", "a/b", "manifest.json", ".hidden", ""} {
		_, err := publish.DecodeManifest([]byte(strings.Replace(base(), "FILE", file, 1)))
		if !errors.Is(err, publish.ErrVerify) {
			t.Errorf("asset file %q: %v", file, err)
		}
	}
	if _, err := publish.DecodeManifest([]byte(strings.Replace(base(), "FILE", "a.bin", 1))); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(base(), `"release":"r1"`, `"release":"../r1"`, 1),
		strings.Replace(base(), `"schema":"lockstep.manifest/v1"`, `"schema":"lockstep.manifest/v9"`, 1),
		strings.Replace(base(), `"size":1`, `"size":-1`, 1),
		strings.Replace(base(), `"rows":0}`, `"rows":0,"extra":1}`, 1),
		strings.Repeat(" ", publish.MaxManifestBytes+1),
		`{"assets": [` + strings.Repeat(`{},`, 20000) + `{}]}`,
	} {
		if _, err := publish.DecodeManifest([]byte(bad)); !errors.Is(err, publish.ErrVerify) {
			t.Errorf("hostile manifest accepted (%.60s...): %v", bad, err)
		}
	}
}

func TestParseLocation(t *testing.T) {
	cases := []struct{ in, bucket, prefix string }{
		{"s3://bkt/a/b?region=us-east-1", "s3://bkt?region=us-east-1", "a/b/"},
		{"s3://bkt", "s3://bkt", ""},
		{"gs://bkt/releases/", "gs://bkt", "releases/"},
		{"mem://x", "mem://x", ""},
	}
	for _, c := range cases {
		loc, err := publish.ParseLocation(c.in)
		if err != nil || loc.BucketURL != c.bucket || loc.Prefix != c.prefix {
			t.Errorf("%s: %+v, %v", c.in, loc, err)
		}
	}
	loc, err := publish.ParseLocation("file://./rel/store")
	if err != nil || !filepath.IsAbs(loc.LocalDir) || !strings.HasSuffix(loc.LocalDir, "/rel/store") {
		t.Fatalf("relative file URL: %+v, %v", loc, err)
	}
	if got := publish.Redact("s3://user:pw@bkt/p?secret_key=abc&region=x"); strings.Contains(got, "pw") || strings.Contains(got, "abc") {
		t.Fatalf("Redact left a secret: %s", got)
	}
	if _, err := publish.ParseLocation("s3:///nobucket"); !errors.Is(err, publish.ErrBadURL) {
		t.Fatalf("URL without bucket: %v", err)
	}
}
