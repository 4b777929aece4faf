package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/lockstep-data/lockstep/publish"
	"github.com/lockstep-data/lockstep/publish/publishtest"
)

func open(t testing.TB, url string) *publish.Store {
	t.Helper()
	s, err := publish.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stage writes a staged release with the given assets (name -> content).
func stage(t testing.TB, release, fingerprint string, assets map[string]string) *publish.Staged {
	t.Helper()
	dir := t.TempDir()
	m := &publish.Manifest{
		Schema: publish.ManifestSchema, Bundle: "geo", Release: release,
		Created: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), LockstepVersion: "test",
		SpecDigest: strings.Repeat("0", 64), Fingerprint: fingerprint, Checks: []publish.Check{},
	}
	for _, name := range slices.Sorted(maps.Keys(assets)) {
		content := assets[name]
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

// TestStoreConformance runs the whole release path on every backend.
func TestStoreConformance(t *testing.T) {
	for _, b := range publishtest.Backends {
		t.Run(b.Name, func(t *testing.T) { conformance(t, open(t, b.URL(t))) })
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

	// Rollback appends an entry naming the release before; republish names any.
	e, err = publish.Rollback(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", ExpectHead: -1, Reason: "bad data"})
	if err != nil || e.Seq != 3 || e.Release != "r1" || e.Action != "rollback" || e.Previous != "r2" {
		t.Fatalf("rollback: %+v, %v", e, err)
	}
	if _, err := publish.Rollback(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", ExpectHead: -1}); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("rollback past the first release: %v", err)
	}
	e, err = publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r2", Action: "republish", ExpectHead: -1})
	if err != nil || e.Seq != 4 || e.Release != "r2" {
		t.Fatalf("republish: %+v, %v", e, err)
	}
	hist, err := s.History(ctx, "geo", "prod")
	if err != nil || len(hist) != 4 || hist[0].Release != "r1" || hist[1].Release != "r2" || hist[2].Release != "r1" || hist[3].Action != "republish" {
		t.Fatalf("history: %+v, %v", hist, err)
	}

	// Verify re-hashes each blob once; diff compares assets.
	rep, err := publish.Verify(ctx, s, publish.VerifyRequest{All: true})
	if err != nil || !rep.OK || rep.ReleasesChecked != 2 || rep.BlobsChecked != 3 || rep.BytesChecked != 15 || rep.ChannelsChecked != 1 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	m1, _, _ := s.ReadManifest(ctx, "geo", "r1")
	m2, _, _ := s.ReadManifest(ctx, "geo", "r2")
	d := publish.Diff(m1, m2)
	if len(d) != 2 || d[0].Name != "cities" || d[0].Change != "unchanged" || d[1].Change != "changed" || d[1].BytesAfter != 6 {
		t.Fatalf("diff: %+v", d)
	}
	rels, err := s.Releases(ctx, "geo")
	if err != nil || strings.Join(rels, ",") != "r1,r2" {
		t.Fatalf("releases: %v, %v", rels, err)
	}
}

func TestPromoteRefusesIncompleteRelease(t *testing.T) {
	ctx := context.Background()
	s := open(t, "file://"+filepath.Join(t.TempDir(), "store"))
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

// TestVerifyFindsDamage: verify names each missing or corrupt blob, the
// assets that use it and the releases it breaks.
func TestVerifyFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	s := open(t, "file://"+dir)
	a := stage(t, "r1", "fp1", map[string]string{"cities": "alpha", "ips": "beta"})
	b := stage(t, "r2", "fp2", map[string]string{"cities": "alpha", "ips": "gamma"})
	for _, st := range []*publish.Staged{a, b} {
		if _, err := publish.Publish(ctx, s, st, publish.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r2", ExpectHead: -1}); err != nil {
		t.Fatal(err)
	}
	shared := a.Manifest.Assets[0].SHA256 // cities, in both releases
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", shared), []byte("alphA"), 0o644)
	os.Remove(filepath.Join(dir, "blobs", "sha256", b.Manifest.Assets[1].SHA256))

	rep, err := publish.Verify(ctx, s, publish.VerifyRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || !errors.Is(rep.Err(), publish.ErrVerify) || len(rep.Blobs) != 2 {
		t.Fatalf("verify: %+v", rep)
	}
	got := map[string]publish.BlobProblem{}
	for _, p := range rep.Blobs {
		got[p.Problem] = p
	}
	if c := got["corrupt"]; c.SHA256 != shared || strings.Join(c.Releases, ",") != "geo/r1,geo/r2" || len(c.Assets) != 2 {
		t.Fatalf("corrupt blob: %+v", c)
	}
	if m := got["missing"]; strings.Join(m.Assets, ",") != "geo/r2/ips" {
		t.Fatalf("missing blob: %+v", m)
	}
	if strings.Join(rep.BrokenReleases, ",") != "geo/r1,geo/r2" || len(rep.BrokenChannels) != 1 {
		t.Fatalf("broken: %v, channels %v", rep.BrokenReleases, rep.BrokenChannels)
	}
}

// TestChangedSourceIsNotStored: a staged file that no longer matches its
// manifest is refused, and no object appears under its content address.
func TestChangedSourceIsNotStored(t *testing.T) {
	for _, b := range publishtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, b.URL(t))
			st := stage(t, "r1", "fp1", map[string]string{"cities": "alpha"})
			os.WriteFile(filepath.Join(st.Dir, "cities.bin"), []byte("alphX"), 0o644)
			_, err := publish.Publish(ctx, s, st, publish.PublishOptions{})
			if !errors.Is(err, publish.ErrVerify) || !strings.Contains(err.Error(), "cities") {
				t.Fatalf("publish of a changed file: %v", err)
			}
			if ok, _ := s.Bucket().Exists(ctx, "blobs/sha256/"+st.Manifest.Assets[0].SHA256); ok {
				t.Fatal("a blob with the wrong bytes was stored")
			}
			if rels, _ := s.Releases(ctx, "geo"); len(rels) != 0 {
				t.Fatalf("a manifest was written: %v", rels)
			}
		})
	}
}

// TestPullRepairsDamagedCurrent: a damaged copy of the served release is
// replaced by a fresh one beside it, never deleted while it is current.
func TestPullRepairsDamagedCurrent(t *testing.T) {
	ctx := context.Background()
	s := open(t, "mem://")
	st := stage(t, "r1", "fp1", map[string]string{"cities": "alpha"})
	publish.Publish(ctx, s, st, publish.PublishOptions{})
	publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: "r1", ExpectHead: -1})
	dest := t.TempDir()
	if _, err := publish.Pull(ctx, s, publish.PullRequest{Bundle: "geo", Channel: "prod", Dest: dest}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dest, "current", "cities.bin"), []byte("ALPHA"), 0o644)
	p, err := publish.Pull(ctx, s, publish.PullRequest{Bundle: "geo", Channel: "prod", Dest: dest})
	if err != nil || p.Reused || p.Downloaded != 5 || p.Previous != "r1" {
		t.Fatalf("pull over a damaged copy: %+v, %v", p, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "current", "cities.bin")); string(got) != "alpha" {
		t.Fatalf("current serves %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dest, "releases")); len(ents) != 2 {
		t.Fatalf("releases folder: %v", ents) // the new copy, and the damaged one kept as the previous release
	}
}

// TestGC: GC keeps the newest releases, what channels named recently and
// anything in its grace period; deletes the rest and the blobs only they
// used; never touches channel logs; and leaves a store that verifies clean.
func TestGC(t *testing.T) {
	for _, b := range publishtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, b.URL(t))
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var rels []*publish.Staged
			for i := range 6 {
				st := stage(t, fmt.Sprintf("r%d", i), fmt.Sprintf("fp%d", i), map[string]string{
					"shared": "the same in every release", "own": fmt.Sprintf("release %d's own bytes", i)})
				st.Manifest.Created = base.Add(time.Duration(i) * time.Hour)
				st.Raw = nil // publish the edited manifest
				if _, err := publish.Publish(ctx, s, st, publish.PublishOptions{}); err != nil {
					t.Fatal(err)
				}
				rels = append(rels, st)
			}
			// prod named r0, r1, r2, then rolled back to r1: its last two entries name r2 and r1.
			for _, r := range []string{"r0", "r1", "r2"} {
				if _, err := publish.Promote(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", Release: r, ExpectHead: -1}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := publish.Rollback(ctx, s, publish.PromoteRequest{Bundle: "geo", Channel: "prod", ExpectHead: -1}); err != nil {
				t.Fatal(err)
			}
			// Keep: the newest two (r5, r4), prod's last two entries (r1, r2); r3 is in its grace period.
			// Blobs carry real write times, later than this clock: none can go yet.
			opts := publish.GCOptions{KeepReleases: 2, KeepHistory: 2, Grace: 3*time.Hour + time.Minute, Now: func() time.Time { return base.Add(6 * time.Hour) }}
			dry := opts
			dry.DryRun = true
			rep, err := publish.GC(ctx, s, dry)
			if err != nil || strings.Join(rep.ReleasesDeleted, ",") != "geo/r0" || rep.BlobsDeleted != 0 {
				t.Fatalf("dry run: %+v, %v", rep, err)
			}
			if got, _ := s.Releases(ctx, "geo"); len(got) != 6 {
				t.Fatalf("a dry run deleted releases: %v", got)
			}
			// Now with a clock past every blob's write time, so blobs can go too.
			opts.Now = func() time.Time { return time.Now().Add(time.Hour) }
			opts.Grace = time.Minute
			rep, err = publish.GC(ctx, s, opts)
			if err != nil {
				t.Fatal(err)
			}
			// r3 is no longer in its grace period: r0 and r3 go, with their own blobs.
			if strings.Join(rep.ReleasesDeleted, ",") != "geo/r0,geo/r3" || rep.BlobsDeleted != 2 || rep.ReleasesKept != 4 || rep.BlobsKept != 5 {
				t.Fatalf("gc: %+v", rep)
			}
			for _, st := range rels {
				own := st.Manifest.Assets[0] // "own" sorts before "shared"
				ok, _ := s.Bucket().Exists(ctx, "blobs/sha256/"+own.SHA256)
				gone := st.Manifest.Release == "r0" || st.Manifest.Release == "r3"
				if ok == gone {
					t.Errorf("%s's own blob exists=%v after gc", st.Manifest.Release, ok)
				}
			}
			if v, err := publish.Verify(ctx, s, publish.VerifyRequest{All: true}); err != nil || !v.OK {
				t.Fatalf("verify after gc: %+v, %v", v, err)
			}
			if h, _ := s.History(ctx, "geo", "prod"); len(h) != 4 {
				t.Fatalf("gc touched the channel log: %d entries", len(h))
			}
			// The deleted fingerprint can be published again.
			res, err := publish.Publish(ctx, s, stage(t, "r0b", "fp0", map[string]string{"own": "back"}), publish.PublishOptions{})
			if err != nil || res.Unchanged {
				t.Fatalf("republishing a collected fingerprint: %+v, %v", res, err)
			}
		})
	}
}

// TestStagingLeftovers: on a file:// store, a write killed mid-copy leaves
// its bytes in .tmp/. verify reports them and gc removes them once they are
// older than the grace. (The killed write is simulated by writing the file
// and back-dating it: SIGKILL at a chosen byte is not reproducible.)
func TestStagingLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, "file://"+dir)
	if _, err := publish.Publish(ctx, s, stage(t, "r1", "fp1", map[string]string{"a": "bytes"}), publish.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, ".tmp", "0123456789abcdef")
	if err := os.WriteFile(left, make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(left, old, old); err != nil {
		t.Fatal(err)
	}
	v, err := publish.Verify(ctx, s, publish.VerifyRequest{All: true})
	if err != nil || !v.OK || v.Leftovers == nil || v.Leftovers.Staging != 1 || v.Leftovers.StagingBytes != 5000 {
		t.Fatalf("verify: %+v %+v, %v", v, v.Leftovers, err)
	}
	rep, err := publish.GC(ctx, s, publish.GCOptions{KeepReleases: 1, Grace: 3 * time.Hour})
	if err != nil || rep.StagingDeleted != 0 {
		t.Fatalf("gc within the grace: %+v, %v", rep, err)
	}
	rep, err = publish.GC(ctx, s, publish.GCOptions{KeepReleases: 1, Grace: time.Hour})
	if err != nil || rep.StagingDeleted != 1 || rep.StagingBytes != 5000 {
		t.Fatalf("gc: %+v, %v", rep, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("the staging file is still there: %v", err)
	}
}

// TestLeaseExcludes: an exclusive lease waits for a shared one and the other
// way round; shared leases do not exclude each other; a lease of a process
// that is gone does not count.
func TestLeaseExcludes(t *testing.T) {
	ctx := context.Background()
	s := open(t, "file://"+t.TempDir())
	_, a, err := s.Lock(ctx, publish.LeaseShared, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := s.Lock(ctx, publish.LeaseShared, "b", 0)
	if err != nil {
		t.Fatalf("a second shared lease: %v", err)
	}
	if _, _, err := s.Lock(ctx, publish.LeaseExclusive, "gc", 100*time.Millisecond); !errors.Is(err, publish.ErrConflict) {
		t.Fatalf("exclusive beside shared ones: %v", err)
	}
	a.Release()
	b.Release()
	_, g, err := s.Lock(ctx, publish.LeaseExclusive, "gc", 0)
	if err != nil {
		t.Fatalf("exclusive once the shared ones are gone: %v", err)
	}
	if _, _, err := s.Lock(ctx, publish.LeaseShared, "c", 100*time.Millisecond); !errors.Is(err, publish.ErrConflict) {
		t.Fatalf("shared beside an exclusive one: %v", err)
	}
	g.Release()
	if _, _, err := s.Lock(ctx, publish.LeaseShared, "c", 0); err != nil {
		t.Fatalf("shared once gc is done: %v", err)
	}
}
