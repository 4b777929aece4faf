package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// crashSpec writes a bundle of many assets, so that one run makes dozens of
// store operations; variant changes half of them, so releases A and B share
// some blobs and not others.
func crashSpec(t *testing.T, dir string, variant int) string {
	t.Helper()
	cols := []string{"id", "name", "country", "lat", "lon", "population", "tags", "updated"}
	codecs := []string{"none", "zstd", "lz4"}
	var b strings.Builder
	fmt.Fprintf(&b, "bundles:\n  places:\n    inputs: {places: {url: %s}}\n    assets:\n", filepath.Join(repoRoot(t), "testdata", "places"))
	// Every asset differs from every other (columns x codec), so no two
	// share a blob and the number of store operations is the same each run.
	for i := range 20 {
		codec := codecs[i/8]
		if i%2 == 1 && variant == 1 {
			codec = codecs[(i/8+1)%len(codecs)]
		}
		fmt.Fprintf(&b, "      a%02d: {format: arrow, input: places, options: {compression: %s, columns: [%s]}}\n",
			i, codec, strings.Join(cols[:1+i%len(cols)], ", "))
	}
	path := filepath.Join(dir, fmt.Sprintf("crash-%d.yaml", variant))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var opsLine = regexp.MustCompile(`store operations: (\d+)`)

// TestCrashConsistency kills `run` with SIGKILL before each of its store
// operations in turn. After every kill the store verifies clean, the channel
// serves the previous release or the new one (never one with a missing
// blob), and a rerun completes.
func TestCrashConsistency(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) { crashConsistency(t, b.name, b.url) })
	}
}

func crashConsistency(t *testing.T, backend string, newStore func(*testing.T, string) string) {
	dir := t.TempDir()
	specA, specB := crashSpec(t, dir, 0), crashSpec(t, dir, 1)
	stage := filepath.Join(dir, "stage")

	// A store serving release A, rebuilt fresh for every crash point.
	fresh := func(n int) (string, string) {
		store := newStore(t, filepath.Join(dir, strconv.Itoa(n)))
		var a pipeline.RunResult
		okJSON(t, store, &a, "run", "--spec", specA, "--stage", stage)
		return store, a.Release
	}
	var wantB pipeline.BuildResult
	store0, _ := fresh(0)
	okJSON(t, store0, &wantB, "build", "--spec", specB, "--stage", stage)
	ops := storeOps(t, store0, "run", "--spec", specB, "--stage", stage)
	if backend != "file" && ops < 50 {
		t.Fatalf("a run makes only %d store operations; the test needs at least 50 crash points", ops)
	}
	t.Logf("%s: a run makes %d store operations; crashing at each", backend, ops)

	for n := 1; n <= ops; n++ {
		store, relA := fresh(n)
		r := lockstepEnv(t, store, []string{fmt.Sprintf("LOCKSTEP_CRASH_AT_OP=%d", n)}, "run", "--spec", specB, "--stage", stage)
		if r.code != -1 {
			t.Fatalf("op %d: the run was not killed: exit %d: %s", n, r.code, r.stderr)
		}
		if v := lockstep(t, store, "verify", "--all"); v.code != 0 {
			t.Fatalf("op %d: verify --all after the crash: exit %d\n%s%s", n, v.code, v.stdout, v.stderr)
		}
		head := history(t, store)
		served := head[len(head)-1].Release
		if served != relA {
			var sm publish.Manifest
			okJSON(t, store, &sm, "show", "--bundle", "places", served)
			if sm.Fingerprint != wantB.Fingerprint {
				t.Fatalf("op %d: the channel serves %s, neither A nor B", n, served)
			}
		}
		var rerun pipeline.RunResult
		okJSON(t, store, &rerun, "run", "--spec", specB, "--stage", stage)
		head = history(t, store)
		var sm publish.Manifest
		okJSON(t, store, &sm, "show", "--bundle", "places", head[len(head)-1].Release)
		if sm.Fingerprint != wantB.Fingerprint {
			t.Fatalf("op %d: after the rerun the channel serves %s, not B", n, sm.Release)
		}
		if v := lockstep(t, store, "verify", "--all"); v.code != 0 {
			t.Fatalf("op %d: verify --all after the rerun: exit %d\n%s%s", n, v.code, v.stdout, v.stderr)
		}
	}
}

// storeOps runs a command to its end with the op counter on and returns
// how many store operations it made (a crash point past them all).
func storeOps(t *testing.T, store string, args ...string) int {
	t.Helper()
	probe := lockstepEnv(t, store, []string{"LOCKSTEP_CRASH_AT_OP=1000000"}, args...)
	m := opsLine.FindStringSubmatch(probe.stderr)
	if probe.code != 0 || m == nil {
		t.Fatalf("probe %v: exit %d: %s", args, probe.code, probe.stderr)
	}
	ops, _ := strconv.Atoi(m[1])
	return ops
}

// lockstepEnv is lockstep with extra environment.
func lockstepEnv(t *testing.T, store string, env []string, args ...string) result {
	t.Helper()
	return cliEnv(t, store, env, args...)
}
