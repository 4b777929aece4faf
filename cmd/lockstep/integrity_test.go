package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// TestReplayedTrigger: a run killed just before its channel entry, a newer
// run promoted after it, then the old trigger replayed. The channel must
// stay on the newer release and the replay must say "superseded".
func TestReplayedTrigger(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			stage := filepath.Join(dir, "stage")
			specA := gcSpec(t, dir, "a", "zstd", "none")
			specOld := gcSpec(t, dir, "old", "lz4", "lz4")
			specNew := gcSpec(t, dir, "new", "zstd", "zstd")

			// How many store operations the old trigger's run makes, on a twin store.
			twin := b.url(t, filepath.Join(dir, "twin"))
			ok(t, twin, "run", "--spec", specA, "--stage", stage)
			ops := storeOps(t, twin, "run", "--spec", specOld, "--stage", stage)

			store := b.url(t, filepath.Join(dir, "store"))
			ok(t, store, "run", "--spec", specA, "--stage", stage)
			// The last operation releases the lease; the one before writes the entry.
			r := lockstepEnv(t, store, []string{fmt.Sprintf("LOCKSTEP_CRASH_AT_OP=%d", ops-1)}, "run", "--spec", specOld, "--stage", stage)
			if r.code != -1 {
				t.Fatalf("the old run was not killed: exit %d: %s", r.code, r.stderr)
			}
			if h := history(t, store); len(h) != 1 {
				t.Fatalf("the killed run moved the channel: %+v", h)
			}
			var newer pipeline.RunResult
			okJSON(t, store, &newer, "run", "--spec", specNew, "--stage", stage)
			if !newer.Promoted || newer.Seq != 2 || !newer.Published {
				t.Fatalf("newer run: %+v", newer)
			}
			var replay pipeline.RunResult
			okJSON(t, store, &replay, "run", "--spec", specOld, "--stage", stage)
			if replay.Promoted || replay.Status != "superseded" || replay.Published || replay.Release == newer.Release {
				t.Fatalf("replayed trigger: %+v", replay)
			}
			h := history(t, store)
			if len(h) != 2 || h[1].Release != newer.Release {
				t.Fatalf("history after the replay: %+v", h)
			}
			// The same run again, with nothing in between, is not superseded:
			// it still serves the newer release and says unchanged.
			var again pipeline.RunResult
			okJSON(t, store, &again, "run", "--spec", specNew, "--stage", stage)
			if again.Status != "unchanged" || again.Promoted || again.Release != newer.Release {
				t.Fatalf("rerun of the newer trigger: %+v", again)
			}
		})
	}
}

// TestCorruptBlobRepaired: one byte of a blob two releases share is flipped
// in the store. A run that reuses it detects it (by hash, with
// --verify-existing) and replaces it; a blob truncated in place is caught
// by its size without the flag; `verify --repair` fixes one from a staged
// copy. Afterwards `verify --all --deep` exits 0 and the head pulls.
func TestCorruptBlobRepaired(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			stage := filepath.Join(dir, "stage")
			store := b.url(t, dir)
			specA := gcSpec(t, dir, "a", "zstd", "none")
			specC := gcSpec(t, dir, "c", "zstd", "zstd") // shares A's "shared" asset
			var a pipeline.RunResult
			okJSON(t, store, &a, "run", "--keep-stage", "--spec", specA, "--stage", stage) // kept: verify --repair reads it
			var ma publish.Manifest
			okJSON(t, store, &ma, "show", "--bundle", "places", a.Release)
			shared, err := ma.Asset("shared")
			if err != nil {
				t.Fatal(err)
			}
			key := "blobs/sha256/" + shared.SHA256
			flipByte(t, store, key, 100)

			// Same size: only a hash finds it.
			var c pipeline.RunResult
			okJSON(t, store, &c, "run", "--verify-existing", "--spec", specC, "--stage", stage)
			if !c.Promoted {
				t.Fatalf("run C: %+v", c)
			}
			if v := lockstep(t, store, "verify", "--all", "--deep"); v.code != 0 {
				t.Fatalf("verify after the repairing run: exit %d\n%s%s", v.code, v.stdout, v.stderr)
			}

			// Truncated: the size check of an ordinary run (here the rerun of
			// A, whose fingerprint is published) finds it and puts it back.
			editObject(t, store, key, func(b []byte) []byte { return b[:len(b)-10] })
			// production serves C, which shares the blob: the channel is broken too.
			if v := lockstep(t, store, "verify", "--all"); v.code != exitVerify || !strings.Contains(v.stdout, shared.SHA256) ||
				!strings.Contains(v.stdout, "broken channel places/production #") {
				t.Fatalf("verify of a truncated blob: exit %d\n%s", v.code, v.stdout)
			}
			var again pipeline.RunResult
			okJSON(t, store, &again, "run", "--spec", specA, "--stage", filepath.Join(dir, "stage2"))
			if again.Release != a.Release || again.Status == "published" {
				t.Fatalf("rerun of A: %+v", again)
			}
			if v := lockstep(t, store, "verify", "--all", "--deep"); v.code != 0 {
				t.Fatalf("verify after the healing rerun: exit %d\n%s%s", v.code, v.stdout, v.stderr)
			}

			// verify --repair, from the staged copies.
			flipByte(t, store, key, 200)
			v := lockstep(t, store, "verify", "--all", "--repair", "--from", stage)
			if v.code != 0 || !strings.Contains(v.stdout, "repaired 1 blobs") {
				t.Fatalf("verify --repair: exit %d\n%s%s", v.code, v.stdout, v.stderr)
			}
			if v := lockstep(t, store, "verify", "--all", "--deep"); v.code != 0 {
				t.Fatalf("verify after --repair: exit %d\n%s%s", v.code, v.stdout, v.stderr)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", filepath.Join(dir, "serve"))
		})
	}
}

// TestHostileChannelLog: objects an attacker or a bad disk leaves in a
// channel's folder never brick it. Each gives a typed error or is skipped,
// verify names it, and a new entry fixes what needs fixing.
func TestHostileChannelLog(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			stage := filepath.Join(dir, "stage")
			store := b.url(t, dir)
			specA := gcSpec(t, dir, "a", "zstd", "none")
			specB := gcSpec(t, dir, "b", "lz4", "lz4")
			var a, bb pipeline.RunResult
			okJSON(t, store, &a, "run", "--spec", specA, "--stage", stage)
			okJSON(t, store, &bb, "run", "--spec", specB, "--stage", stage)
			prefix := "bundles/places/channels/production/"
			serve := filepath.Join(dir, "serve")

			// A non-canonical name and an entry far past a gap: skipped.
			putObject(t, store, prefix+"+000000003.json", entryJSON(3, a.Release, ""))
			putObject(t, store, prefix+"9999999999.json", entryJSON(9999999999, a.Release, ""))
			if h := history(t, store); len(h) != 2 || h[1].Release != bb.Release {
				t.Fatalf("history with stray names: %+v", h)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", serve)
			assertCurrent(t, serve, bb.Release)
			var e publish.Entry
			okJSON(t, store, &e, "promote", "--bundle", "places", "--release", a.Release)
			if e.Seq != 3 {
				t.Fatalf("promote over stray names wrote #%d, want 3", e.Seq)
			}
			v := lockstep(t, store, "verify", "--all")
			if v.code != exitVerify || !strings.Contains(v.stdout, "+000000003.json") || !strings.Contains(v.stdout, "9999999999.json") {
				t.Fatalf("verify does not name the stray entries: exit %d\n%s", v.code, v.stdout)
			}
			// A stray right after the next entry would join the log if that
			// entry were written: promote refuses (exit 5, naming it), and
			// the channel still reads and pulls.
			putObject(t, store, prefix+"0000000005.json", entryJSON(5, a.Release, ""))
			r := lockstep(t, store, "promote", "--bundle", "places", "--release", bb.Release)
			if r.code != exitVerify || !strings.Contains(r.stderr, "0000000005.json") {
				t.Fatalf("promote next to a stray entry: exit %d: %s", r.code, r.stderr)
			}
			if h := history(t, store); len(h) != 3 || h[2].Release != a.Release {
				t.Fatalf("history next to a stray entry: %+v", h)
			}
			// A folder named like an entry is not one. (It stays: a file://
			// store keeps the empty folder after the object below it goes.)
			putObject(t, store, prefix+"0000000099.json/x", []byte("x"))
			if h := history(t, store); len(h) != 3 {
				t.Fatalf("history beside a folder named like an entry: %d entries", len(h))
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", serve)
			assertCurrent(t, serve, a.Release)
			v = lockstep(t, store, "verify", "--all")
			if v.code != exitVerify || !strings.Contains(v.stdout, "0000000099.json/") || !strings.Contains(v.stdout, "0000000005.json") {
				t.Fatalf("verify does not name the folder and the stray: exit %d\n%s", v.code, v.stdout)
			}
			for _, k := range []string{"+000000003.json", "9999999999.json", "0000000005.json"} {
				deleteObject(t, store, prefix+k)
			}

			// Garbage at the head: pull and verify say so (exit 5) with the
			// fix, ls still lists, and a promote writes the next entry,
			// which heals it.
			putObject(t, store, prefix+"0000000004.json", []byte("{not json"))
			if l := lockstep(t, store, "ls"); l.code != 0 || !strings.Contains(l.stdout, "entry 4") {
				t.Fatalf("ls beside a garbage head: exit %d\n%s%s", l.code, l.stdout, l.stderr)
			}
			r = lockstep(t, store, "pull", "--bundle", "places", "--dest", serve)
			if r.code != exitVerify || !strings.Contains(r.stderr, "entry 4") || !strings.Contains(r.stderr, "lockstep promote") {
				t.Fatalf("pull of a garbage head: exit %d: %s", r.code, r.stderr)
			}
			v = lockstep(t, store, "verify", "--all")
			if v.code != exitVerify || !strings.Contains(v.stdout, "0000000004.json") {
				t.Fatalf("verify of a garbage head: exit %d\n%s", v.code, v.stdout)
			}
			okJSON(t, store, &e, "promote", "--bundle", "places", "--release", bb.Release)
			if e.Seq != 5 {
				t.Fatalf("promote over a garbage head wrote #%d, want 5", e.Seq)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", serve)
			assertCurrent(t, serve, bb.Release)
			if h := history(t, store); len(h) != 4 {
				t.Fatalf("history skips only the garbage entry: %d entries", len(h))
			}

			// A head naming a release that is not in the store: exit 5 everywhere.
			putObject(t, store, prefix+"0000000006.json", entryJSON(6, "20200101T000000Z-deadbeef", ""))
			r = lockstep(t, store, "pull", "--bundle", "places", "--dest", serve)
			if r.code != exitVerify || !strings.Contains(r.stderr, "20200101T000000Z-deadbeef") {
				t.Fatalf("pull of a head naming a missing release: exit %d: %s", r.code, r.stderr)
			}
			if v := lockstep(t, store, "verify", "--all"); v.code != exitVerify || !strings.Contains(v.stdout, "#6") {
				t.Fatalf("verify of a head naming a missing release: exit %d\n%s", v.code, v.stdout)
			}
			assertCurrent(t, serve, bb.Release)
		})
	}
}

func entryJSON(seq int64, release, previous string) []byte {
	return []byte(fmt.Sprintf(`{"seq": %d, "bundle": "places", "channel": "production", "release": %q, "manifest_sha256": "%s", "time": "2026-01-01T00:00:00Z", "who": "mallory", "action": "promote", "previous": %q}`,
		seq, release, strings.Repeat("0", 64), previous))
}

// putObject writes an object as an attacker with write access would.
func putObject(t *testing.T, store, key string, data []byte) {
	t.Helper()
	if err := testBucket(t, store).WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLeftovers: a publish killed after its uploads and before its manifest,
// and a pull killed mid-download, leave nothing unreported: verify and
// `gc --dry-run` count the unreferenced blobs and the dead process's lease,
// gc removes them, and the next pull removes the dead pull's folder.
func TestLeftovers(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			stage := filepath.Join(dir, "stage")
			specA := gcSpec(t, dir, "a", "zstd", "none")
			specB := gcSpec(t, dir, "b", "lz4", "lz4")
			twin := b.url(t, filepath.Join(dir, "twin"))
			ok(t, twin, "run", "--spec", specA, "--stage", stage)
			ops := storeOps(t, twin, "publish", "--spec", specB, "--stage", stage)

			store := b.url(t, filepath.Join(dir, "store"))
			var a pipeline.RunResult
			okJSON(t, store, &a, "run", "--spec", specA, "--stage", stage)
			// The last three operations: the manifest, the build record, the lease's release.
			r := lockstepEnv(t, store, []string{fmt.Sprintf("LOCKSTEP_CRASH_AT_OP=%d", ops-2)}, "publish", "--spec", specB, "--stage", stage)
			if r.code != -1 {
				t.Fatalf("publish was not killed: exit %d: %s", r.code, r.stderr)
			}
			var rep publish.VerifyReport
			okJSON(t, store, &rep, "verify", "--all")
			if l := rep.Leftovers; l == nil || l.Blobs != 2 || l.BlobBytes == 0 || l.StaleLeases != 1 {
				t.Fatalf("verify after a killed publish: leftovers %+v", rep.Leftovers)
			}
			var dry publish.GCReport
			okJSON(t, store, &dry, "gc", "--dry-run", "--grace", "0")
			if dry.BlobsDeleted != 2 || dry.LeasesDeleted != 1 || len(dry.ReleasesDeleted) != 0 {
				t.Fatalf("gc --dry-run: %+v", dry)
			}
			var young publish.GCReport
			okJSON(t, store, &young, "gc", "--dry-run")
			if young.BlobsDeleted != 0 || young.BlobsYoung != 2 {
				t.Fatalf("gc --dry-run within the grace: %+v", young)
			}
			var gc publish.GCReport
			okJSON(t, store, &gc, "gc", "--grace", "0")
			if gc.BlobsDeleted != 2 || gc.LeasesDeleted != 1 {
				t.Fatalf("gc: %+v", gc)
			}
			okJSON(t, store, &rep, "verify", "--all")
			if l := rep.Leftovers; l == nil || l.Blobs != 0 || l.StaleLeases != 0 {
				t.Fatalf("verify after gc: leftovers %+v", rep.Leftovers)
			}

			// A pull killed before its last blob read leaves a partial folder;
			// the next pull removes it.
			serve := filepath.Join(dir, "serve")
			r = lockstepEnv(t, store, []string{"LOCKSTEP_CRASH_AT_OP=4"}, "pull", "--bundle", "places", "--dest", serve)
			if r.code != -1 {
				t.Fatalf("pull was not killed: exit %d: %s", r.code, r.stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(serve, "releases", ".partial-*")); len(left) != 1 {
				t.Fatalf("the killed pull left %v, want one partial folder", left)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", serve)
			assertCurrent(t, serve, a.Release)
			left, _ := filepath.Glob(filepath.Join(serve, "releases", ".partial-*"))
			links, _ := filepath.Glob(filepath.Join(serve, ".current-*"))
			if len(left)+len(links) != 0 {
				t.Fatalf("after a good pull, leftovers remain: %v %v", left, links)
			}
		})
	}
}

// TestInterruptedPublish: Ctrl-C (SIGINT) after a publish has uploaded its
// blobs and before its manifest. The publish exits 130 and says what it left;
// verify and `gc --dry-run` report those blobs, gc removes them, and a
// rerun publishes. (The interrupt comes while the command is paused before
// its manifest write, so the test does not depend on timing; a cancel in
// the middle of a blob's copy stops at the next MiB.)
func TestInterruptedPublish(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			stage := filepath.Join(dir, "stage")
			specB := gcSpec(t, dir, "b", "lz4", "lz4")
			twin := b.url(t, filepath.Join(dir, "twin"))
			ops := storeOps(t, twin, "publish", "--spec", specB, "--stage", stage)

			store := b.url(t, filepath.Join(dir, "store"))
			pause := filepath.Join(dir, "pause")
			p := start(t, store, []string{fmt.Sprintf("LOCKSTEP_PAUSE_AT_OP=%d", ops-2), "LOCKSTEP_PAUSE_FILE=" + pause}, "publish", "--spec", specB, "--stage", stage)
			if !waitFor(pause, p) {
				t.Fatalf("publish did not pause: %+v", p.wait())
			}
			if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			r := p.wait()
			if r.code != 130 || !strings.Contains(r.stderr, "2 blobs") || !strings.Contains(r.stderr, "gc removes them") {
				t.Fatalf("interrupted publish: exit %d: %s", r.code, r.stderr)
			}
			var rep publish.VerifyReport
			okJSON(t, store, &rep, "verify", "--all")
			if l := rep.Leftovers; l == nil || l.Blobs != 2 || l.StaleLeases != 0 {
				t.Fatalf("verify after the interrupt: leftovers %+v", rep.Leftovers)
			}
			var dry publish.GCReport
			okJSON(t, store, &dry, "gc", "--dry-run", "--grace", "0")
			if dry.BlobsDeleted != 2 {
				t.Fatalf("gc --dry-run: %+v", dry)
			}
			var gc publish.GCReport
			okJSON(t, store, &gc, "gc", "--grace", "0")
			okJSON(t, store, &rep, "verify", "--all")
			if gc.BlobsDeleted != 2 || rep.Leftovers == nil || rep.Leftovers.Blobs != 0 {
				t.Fatalf("gc: %+v; leftovers after it: %+v", gc, rep.Leftovers)
			}
			var res publish.PublishResult
			okJSON(t, store, &res, "publish", "--spec", specB, "--stage", stage)
			if res.Unchanged || res.BlobsUploaded != 2 {
				t.Fatalf("publish after gc: %+v", res)
			}
		})
	}
}
