package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep-data/lockstep/pipeline"
)

// gcSpec writes a two-asset bundle. Specs with the same key share the
// asset "shared" byte for byte, so a run of one reuses the other's blob.
func gcSpec(t *testing.T, dir, name, sharedCodec, ownCodec string) string {
	t.Helper()
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := fmt.Sprintf(`bundles:
  places:
    channel: production
    inputs: {places: {url: %s}}
    assets:
      shared: {format: arrow, input: places, options: {compression: %s, columns: [id, name]}}
      own: {format: arrow, input: places, options: {compression: %s}}
`, places, sharedCodec, ownCodec)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGCInterleaving pauses republish, promote and run before each of their
// store operations in turn and runs `gc --grace 0` meanwhile, which wants to
// delete exactly what the paused command is about to rely on: the old
// release it points the channel at, or the old blob it reuses. However the
// two interleave, the store must verify clean afterwards and every channel
// head must pull (invariant 11). The old timing-based protocol failed this
// (a republish left the channel naming a deleted manifest; a run promoted a
// release whose reused blob gc had deleted).
func TestGCInterleaving(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, cmd := range []string{"republish", "promote", "run"} {
				t.Run(cmd, func(t *testing.T) { gcInterleaving(t, cmd, b.url) })
			}
		})
	}
}

func gcInterleaving(t *testing.T, command string, newStore func(*testing.T, string) string) {
	dir := t.TempDir()
	stage := filepath.Join(dir, "stage")
	// A: shared+ownA, then B: other shared+ownB. C reuses A's shared blob.
	specA := gcSpec(t, dir, "a", "zstd", "none")
	specB := gcSpec(t, dir, "b", "lz4", "lz4")
	specC := gcSpec(t, dir, "c", "zstd", "zstd")
	// fresh: a store whose channel went A then B, so A (its manifest and
	// blobs) is garbage to `gc --keep-releases 0 --keep-history 1 --grace 0`.
	fresh := func(n int) (store, relA string) {
		store = newStore(t, filepath.Join(dir, strconv.Itoa(n)))
		var a, b pipeline.RunResult
		okJSON(t, store, &a, "run", "--spec", specA, "--stage", stage)
		okJSON(t, store, &b, "run", "--spec", specB, "--stage", stage)
		if !a.Promoted || !b.Promoted {
			t.Fatalf("setup: %+v %+v", a, b)
		}
		return store, a.Release
	}
	args := func(relA string) []string {
		switch command {
		case "run":
			return []string{"run", "--spec", specC, "--stage", stage}
		default:
			return []string{command, "--bundle", "places", "--channel", "production", "--release", relA}
		}
	}
	ran, busy := 0, 0
	for n := 1; ; n++ {
		store, relA := fresh(n)
		pause := filepath.Join(dir, fmt.Sprintf("pause-%d", n))
		w := start(t, store, []string{fmt.Sprintf("LOCKSTEP_PAUSE_AT_OP=%d", n), "LOCKSTEP_PAUSE_FILE=" + pause}, args(relA)...)
		paused := waitFor(pause, w)
		if !paused { // the command made fewer than n store operations
			if r := w.wait(); r.code != 0 {
				t.Fatalf("%s without a pause: exit %d: %s", command, r.code, r.stderr)
			}
			if n < 5 {
				t.Fatalf("%s made only %d store operations", command, n-1)
			}
			t.Logf("%s: gc interleaved before each of %d store operations (%d ran, %d found the store busy at first)", command, n-1, ran, busy)
			return
		}
		gc := start(t, store, nil, "gc", "--keep-releases", "0", "--keep-history", "1", "--grace", "0", "--lock-wait", "30s")
		gcDone := make(chan struct{})
		go func() { <-gc.done; close(gcDone) }()
		select { // let gc finish while the command is paused, if it can
		case <-gcDone:
			ran++
		case <-time.After(300 * time.Millisecond):
			busy++
		}
		if err := os.Remove(pause); err != nil {
			t.Fatal(err)
		}
		wr, gr := w.wait(), gc.wait()
		if gr.code != 0 {
			t.Fatalf("op %d: gc: exit %d: %s", n, gr.code, gr.stderr)
		}
		switch {
		case wr.code == 0:
		case command != "run" && wr.code == 1 && strings.Contains(wr.stderr, "has no release"):
			// gc deleted A before the command took its lease: a clean refusal.
		default:
			t.Fatalf("op %d: %s: exit %d: %s", n, command, wr.code, wr.stderr)
		}
		if v := lockstep(t, store, "verify", "--all"); v.code != 0 {
			t.Fatalf("op %d: verify --all after %s and gc: exit %d\n%s%s", n, command, v.code, v.stdout, v.stderr)
		}
		if p := lockstep(t, store, "pull", "--bundle", "places", "--channel", "production", "--dest", filepath.Join(dir, "pull", strconv.Itoa(n))); p.code != 0 {
			t.Fatalf("op %d: pull of the head after %s and gc: exit %d\n%s", n, command, p.code, p.stderr)
		}
	}
}

// proc is a lockstep process running in the background.
type proc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	res      result
}

func start(t *testing.T, store string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, append([]string{"--store", store}, args...)...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = result{stdout: p.out.String(), stderr: p.err.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.res.code = ee.ExitCode()
		} else if err != nil {
			p.res.code = -2
		}
		close(p.done)
	}()
	return p
}

func (p *proc) wait() result {
	<-p.done
	return p.res
}

// waitFor waits until file exists (true) or p exits (false).
func waitFor(file string, p *proc) bool {
	for {
		if _, err := os.Stat(file); err == nil {
			return true
		}
		select {
		case <-p.done:
			_, err := os.Stat(file)
			return err == nil
		case <-time.After(2 * time.Millisecond):
		}
	}
}
