package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
	"github.com/lockstep-data/lockstep/publish/publishtest"
)

// published builds and publishes the committed demo data into a fresh file
// store, and returns the store URL, its folder and the release.
func published(t *testing.T, options string) (store, dir, release string) {
	t.Helper()
	dir = t.TempDir()
	return publishedTo(t, "file://"+filepath.Join(dir, "store"), dir, options)
}

// publishedTo publishes the demo data into store, using dir for specs and staging.
func publishedTo(t *testing.T, store, dir, options string) (string, string, string) {
	t.Helper()
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), options)
	var res publish.PublishResult
	okJSON(t, store, &res, "publish", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	if res.Unchanged || res.Release == "" {
		t.Fatalf("publish: %+v", res)
	}
	return store, dir, res.Release
}

func history(t *testing.T, store string) []publish.Entry {
	t.Helper()
	var h []publish.Entry
	okJSON(t, store, &h, "history", "--bundle", "places", "--channel", "production")
	return h
}

// cliBackends are the stores the CLI tests run on: local, S3 and Azure.
var cliBackends = []struct {
	name string
	url  func(t *testing.T, dir string) string
}{
	{"file", func(t *testing.T, dir string) string {
		os.MkdirAll(dir, 0o755) // run creates a store whose parent folder exists
		return "file://" + filepath.Join(dir, "store")
	}},
	{"minio", func(t *testing.T, dir string) string { return publishtest.MinIO(t, "lockstep") }},
	{"azurite", func(t *testing.T, dir string) string { return publishtest.Azurite(t, "lockstep") }},
}

// TestRacingPromoters: 8 processes x 50 rounds promote one channel with
// --retry-on-conflict. Every promotion lands exactly once, in 400 entries.
func TestRacingPromoters(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			racingPromoters(t, b.url(t, dir), dir)
		})
	}
}

func racingPromoters(t *testing.T, store, dir string) {
	store, _, rel := publishedTo(t, store, dir, "")
	const procs, rounds = 8, 50
	var wg sync.WaitGroup
	errs := make(chan string, procs*rounds)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				res := lockstep(t, store, "promote", "--bundle", "places", "--channel", "production",
					"--release", rel, "--retry-on-conflict", "--reason", fmt.Sprintf("p%d-r%d", p, r))
				if res.code != 0 {
					errs <- fmt.Sprintf("p%d-r%d: exit %d: %s", p, r, res.code, res.stderr)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	h := history(t, store)
	if len(h) != procs*rounds {
		t.Fatalf("log has %d entries, want %d", len(h), procs*rounds)
	}
	seen := map[string]bool{}
	for i, e := range h {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if seen[e.Reason] {
			t.Fatalf("%s promoted twice", e.Reason)
		}
		seen[e.Reason] = true
	}
	for p := range procs {
		for r := range rounds {
			if !seen[fmt.Sprintf("p%d-r%d", p, r)] {
				t.Fatalf("p%d-r%d is missing from the log", p, r)
			}
		}
	}
}

// TestRacingPromotersNoRetry: without --retry-on-conflict a loser exits 4,
// and every winner, and only a winner, is in the log.
func TestRacingPromotersNoRetry(t *testing.T) {
	store, _, rel := published(t, "")
	const procs, rounds = 8, 10
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  = map[string]bool{}
		lost int
	)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				reason := fmt.Sprintf("p%d-r%d", p, r)
				res := lockstep(t, store, "promote", "--bundle", "places", "--channel", "production", "--release", rel, "--reason", reason)
				mu.Lock()
				switch res.code {
				case 0:
					won[reason] = true
				case exitConflict:
					lost++
					if !strings.Contains(res.stderr, "channel conflict") {
						t.Errorf("%s: exit 4 without saying why: %s", reason, res.stderr)
					}
				default:
					t.Errorf("%s: exit %d: %s", reason, res.code, res.stderr)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	h := history(t, store)
	if len(h) != len(won) || len(won)+lost != procs*rounds {
		t.Fatalf("log has %d entries, %d promotions won and %d lost", len(h), len(won), lost)
	}
	for i, e := range h {
		if e.Seq != int64(i+1) || !won[e.Reason] {
			t.Fatalf("entry %d: seq %d, reason %q", i, e.Seq, e.Reason)
		}
	}
	t.Logf("%d won, %d lost with exit 4", len(won), lost)
}

func TestExpectHead(t *testing.T) {
	store, _, rel := published(t, "")
	promote := func(expect string) result {
		return lockstep(t, store, "promote", "--bundle", "places", "--channel", "production", "--release", rel, "--expect-head", expect)
	}
	if r := promote("0"); r.code != 0 {
		t.Fatalf("expect-head 0 on a new channel: exit %d: %s", r.code, r.stderr)
	}
	if r := promote("0"); r.code != exitConflict || !strings.Contains(r.stderr, "is at 1, not 0") {
		t.Fatalf("stale expect-head: exit %d: %s", r.code, r.stderr)
	}
	if r := promote("1"); r.code != 0 {
		t.Fatalf("expect-head 1: exit %d: %s", r.code, r.stderr)
	}
	if h := history(t, store); len(h) != 2 {
		t.Fatalf("history has %d entries, want 2", len(h))
	}
}

// TestTamper: a flipped byte in a blob makes pull fail with exit 5, naming
// the asset, and the release pulled before stays current.
func TestTamper(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			tamper(t, b.url(t, dir), dir)
		})
	}
}

func tamper(t *testing.T, store, dir string) {
	store, _, relA := publishedTo(t, store, dir, "{compression: zstd}")
	ok(t, store, "promote", "--bundle", "places", "--release", relA)
	serve := filepath.Join(dir, "serve")
	ok(t, store, "pull", "--bundle", "places", "--dest", serve)

	// Release B: the same data, another option, so another blob.
	specB := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "{compression: none}")
	var b pipeline.RunResult
	okJSON(t, store, &b, "run", "--spec", specB, "--stage", filepath.Join(dir, "stage"))
	if b.Release == relA || !b.Promoted {
		t.Fatalf("run B: %+v", b)
	}
	var m publish.Manifest
	okJSON(t, store, &m, "show", "--bundle", "places", b.Release)
	blob := "blobs/sha256/" + m.Assets[0].SHA256
	flipByte(t, store, blob, 1000)

	r := lockstep(t, store, "pull", "--bundle", "places", "--dest", serve)
	if r.code != exitVerify || !strings.Contains(r.stderr, `asset "places"`) || !strings.Contains(r.stderr, "sha256") {
		t.Fatalf("pull of a tampered blob: exit %d: %s", r.code, r.stderr)
	}
	assertCurrent(t, serve, relA)

	// A tampered manifest is refused the same way.
	flipByte(t, store, blob, 1000) // restore the blob
	editObject(t, store, "bundles/places/releases/"+b.Release+".json", func(data []byte) []byte {
		return []byte(strings.Replace(string(data), `"rows": 3000`, `"rows": 3001`, 1))
	})
	r = lockstep(t, store, "pull", "--bundle", "places", "--dest", serve)
	if r.code != exitVerify || !strings.Contains(r.stderr, "manifest") {
		t.Fatalf("pull of a tampered manifest: exit %d: %s", r.code, r.stderr)
	}
	assertCurrent(t, serve, relA)
	if left, _ := filepath.Glob(filepath.Join(serve, "releases", ".partial-*")); len(left) != 0 {
		t.Fatalf("pull left partial folders: %v", left)
	}
}

func flipByte(t *testing.T, store, key string, at int) {
	t.Helper()
	editObject(t, store, key, func(b []byte) []byte { b[at] ^= 0xff; return b })
}

// editObject rewrites an object in place, as an attacker or a bad disk would.
func editObject(t *testing.T, store, key string, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	b := testBucket(t, store)
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, key, edit(data), nil); err != nil {
		t.Fatal(err)
	}
}

// testBucket opens the store's bucket directly, bypassing lockstep, and
// closes it when the test ends.
func testBucket(t *testing.T, store string) *blob.Bucket {
	t.Helper()
	loc, err := publish.ParseLocation(store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loc.OpenBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func assertCurrent(t *testing.T, serve, release string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(serve, "current"))
	if err != nil || filepath.Base(target) != release {
		t.Fatalf("current -> %q (%v), want %s", target, err, release)
	}
	st, err := publish.Current(serve)
	if err != nil || st.Manifest.Release != release {
		t.Fatalf("current serves %v (%v), want %s", st, err, release)
	}
}

// TestRunTwice: the same inputs give one release and one channel entry.
func TestRunTwice(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	var first, second pipeline.RunResult
	okJSON(t, store, &first, "run", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	okJSON(t, store, &second, "run", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	if first.Status != "published" || !first.Promoted {
		t.Fatalf("first run: %+v", first)
	}
	if second.Status != "unchanged" || second.Promoted || second.Release != first.Release || second.BytesUploaded != 0 {
		t.Fatalf("second run: %+v", second)
	}
	if h := history(t, store); len(h) != 1 {
		t.Fatalf("history has %d entries, want 1", len(h))
	}
	rels, _ := filepath.Glob(filepath.Join(dir, "store", "bundles", "places", "releases", "*.json"))
	if len(rels) != 1 {
		t.Fatalf("%d releases, want 1", len(rels))
	}
}

// TestRunFinishesInterruptedJob: a release published but never promoted (the
// run died in between) is promoted by the next run; a release the channel
// has named before is never promoted again by a trigger.
func TestRunFinishesInterruptedJob(t *testing.T) {
	store, dir, rel := published(t, "")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	var res pipeline.RunResult
	okJSON(t, store, &res, "run", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	if res.Status != "unchanged" || !res.Promoted || res.Release != rel {
		t.Fatalf("run after publish: %+v", res)
	}
	// Another release takes the channel; replaying the old trigger must not
	// roll it back.
	specB := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "{compression: lz4}")
	okJSON(t, store, &res, "run", "--spec", specB, "--stage", filepath.Join(dir, "stage"))
	okJSON(t, store, &res, "run", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	if res.Promoted {
		t.Fatalf("a replayed trigger moved the channel: %+v", res)
	}
	if h := history(t, store); len(h) != 2 || h[1].Release == rel {
		t.Fatalf("history: %+v", h)
	}
}

// TestMalformedSpec: a bad spec exits 2 with a message naming the problem,
// and writes nothing to the store.
func TestMalformedSpec(t *testing.T) {
	places := filepath.Join(repoRoot(t), "testdata", "places")
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"unknown key", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets: {places: {format: arrow, input: places}}
    schedul: "@hourly"
`, []string{":5:", `unknown key "schedul"`, "valid here: channel"}},
		{"missing input", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      places: {format: arrow, input: cities}
`, []string{":5:", `input "cities"`, "inputs: places"}},
		{"unknown format", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      places: {format: parquet, input: places}
`, []string{":5:", `unknown format "parquet"`, "valid: arrow"}},
		{"unknown option", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      places:
        format: arrow
        input: places
        options: {compresion: zstd}
`, []string{`no option "compresion"`, "(valid: ", " compression"}},
		{"bad memory", `bundles:
  places:
    memory: 2 gigs
    inputs: {places: {url: ` + places + `}}
    assets: {places: {format: arrow, input: places}}
`, []string{":3:", "memory:", `"2 gigs" is not a size`, "512MiB"}},
		{"tiny memory", `bundles:
  places:
    memory: 1MiB
    inputs: {places: {url: ` + places + `}}
    assets: {places: {format: arrow, input: places}}
`, []string{":3:", "below the 16MiB"}},
		{"shard name clash", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      by_id: {format: kv, input: places, options: {key: id, shards: 2}}
      by_id-1of2: {format: fst, input: places, options: {key: name}}
`, []string{"assets", `"by_id-1of2"`, "rename one"}},
		{"case clash", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      Places: {format: arrow, input: places}
      places: {format: arrow, input: places}
`, []string{"ignoring case", "rename one"}},
		{"shard name too long", `bundles:
  places:
    inputs: {places: {url: ` + places + `}}
    assets:
      ` + strings.Repeat("n", 126) + `: {format: kv, input: places, options: {key: id, shards: 12}}
`, []string{strings.Repeat("n", 126) + "-1of12", "at most 128"}},
		{"bad yaml", "bundles: [\n", []string{"spec error"}},
		{"no bundles", "other: 1\n", []string{`unknown key "other"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := filepath.Join(dir, "spec.yaml")
			os.WriteFile(spec, []byte(c.spec), 0o644)
			storeDir := filepath.Join(dir, "store")
			for _, cmd := range []string{"build", "publish", "run"} {
				r := lockstep(t, "file://"+storeDir, cmd, "--spec", spec, "--stage", filepath.Join(dir, "stage"))
				if r.code != exitUsage {
					t.Fatalf("%s: exit %d, want 2: %s", cmd, r.code, r.stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: error %q does not mention %q", cmd, strings.TrimSpace(r.stderr), w)
					}
				}
			}
			var files []string
			filepath.Walk(storeDir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 0 {
				t.Fatalf("a bad spec wrote to the store: %v", files)
			}
		})
	}
}

// TestRollbackRepublish: rollback goes back one release at a time as new
// entries; republish points at any complete release, refuses one whose blobs
// are gone (exit 5, naming them); unchanged assets upload 0 bytes.
func TestRollbackRepublish(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			places := filepath.Join(repoRoot(t), "testdata", "places")
			var rels []string
			for _, opt := range []string{"{compression: none}", "{compression: zstd}", "{compression: lz4}"} {
				var r pipeline.RunResult
				okJSON(t, store, &r, "run", "--spec", writeSpec(t, dir, places, opt), "--stage", filepath.Join(dir, "stage"))
				rels = append(rels, r.Release)
			}
			// The same assets as release 2, in a new release: nothing to upload.
			var again publish.PublishResult
			okJSON(t, store, &again, "publish", "--spec", writeSpec(t, dir, places, "{compression: zstd, columns: null}"), "--stage", filepath.Join(dir, "stage"))
			if again.Unchanged || again.BytesUploaded != 0 || again.BlobsUploaded != 0 || again.BlobsSkipped != 1 || again.BytesSkipped == 0 {
				t.Fatalf("publish of unchanged assets: %+v", again)
			}

			var e publish.Entry
			okJSON(t, store, &e, "rollback", "--bundle", "places", "--reason", "bad data")
			if e.Release != rels[1] || e.Action != "rollback" || e.Previous != rels[2] {
				t.Fatalf("first rollback: %+v", e)
			}
			okJSON(t, store, &e, "rollback", "--bundle", "places")
			if e.Release != rels[0] {
				t.Fatalf("second rollback went to %s, want %s", e.Release, rels[0])
			}
			okJSON(t, store, &e, "rollback", "--bundle", "places", "--to", rels[2])
			if e.Release != rels[2] {
				t.Fatalf("rollback --to: %+v", e)
			}
			okJSON(t, store, &e, "republish", "--bundle", "places", "--release", rels[1], "--reason", "fixed upstream")
			if e.Release != rels[1] || e.Action != "republish" || e.Seq != 7 {
				t.Fatalf("republish: %+v", e)
			}
			h := history(t, store)
			var got []string
			for _, x := range h {
				got = append(got, x.Action)
			}
			if strings.Join(got, ",") != "run,run,run,rollback,rollback,rollback,republish" {
				t.Fatalf("history actions: %v", got)
			}

			// Delete release 1's blob: republishing it is refused, naming it.
			var m publish.Manifest
			okJSON(t, store, &m, "show", "--bundle", "places", rels[0])
			deleteObject(t, store, "blobs/sha256/"+m.Assets[0].SHA256)
			r := lockstep(t, store, "republish", "--bundle", "places", "--release", rels[0])
			if r.code != exitVerify || !strings.Contains(r.stderr, "missing or corrupt blobs: places (sha256") || !strings.Contains(r.stderr, m.Assets[0].SHA256) {
				t.Fatalf("republish of an incomplete release: exit %d: %s", r.code, r.stderr)
			}
			if h2 := history(t, store); len(h2) != len(h) {
				t.Fatalf("a refused republish wrote to the log")
			}
			v := lockstep(t, store, "verify", "--all", "--output", "json")
			if v.code != exitVerify || !strings.Contains(v.stdout, rels[0]) || !strings.Contains(v.stdout, `"missing"`) {
				t.Fatalf("verify --all: exit %d: %s", v.code, v.stdout)
			}
		})
	}
}

func deleteObject(t *testing.T, store, key string) {
	t.Helper()
	if err := testBucket(t, store).Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// TestServerVersion: a box refuses a release its server binary cannot load,
// and keeps serving what it had.
func TestServerVersion(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := filepath.Join(dir, "req.yaml")
	os.WriteFile(spec, []byte(`bundles:
  places:
    requires: {server: ">=1.4.0, <2"}
    inputs: {places: {url: `+places+`}}
    assets: {places: {format: arrow, input: places}}
`), 0o644)
	var first pipeline.RunResult
	okJSON(t, store, &first, "run", "--spec", writeSpec(t, dir, places, ""), "--stage", filepath.Join(dir, "stage"))
	serve := filepath.Join(dir, "serve")
	ok(t, store, "pull", "--bundle", "places", "--dest", serve, "--server-version", "1.3.0")

	var second pipeline.RunResult
	okJSON(t, store, &second, "run", "--spec", spec, "--stage", filepath.Join(dir, "stage"))
	r := lockstep(t, store, "pull", "--bundle", "places", "--dest", serve, "--server-version", "1.3.0")
	if r.code != exitVerify || !strings.Contains(r.stderr, "requires server >=1.4.0, <2") || !strings.Contains(r.stderr, "1.3.0") {
		t.Fatalf("pull by an old server: exit %d: %s", r.code, r.stderr)
	}
	assertCurrent(t, serve, first.Release)
	ok(t, store, "pull", "--bundle", "places", "--dest", serve, "--server-version", "1.4.2")
	assertCurrent(t, serve, second.Release)
	if r := lockstep(t, store, "pull", "--bundle", "places", "--dest", serve, "--server-version", "2.0.0"); r.code != exitVerify {
		t.Fatalf("pull by a newer major: exit %d", r.code)
	}
}
