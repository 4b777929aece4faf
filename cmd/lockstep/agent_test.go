package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep-data/lockstep/publish"
)

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// garbageRelease stages a release of spec whose places.arrow is random
// bytes with a manifest that matches them, and publishes it: its digests
// verify, but no Arrow reader can open it.
func garbageRelease(t *testing.T, store, dir, spec string) string {
	t.Helper()
	stage := filepath.Join(dir, "garbage-stage")
	var b struct{ Dir, Release string }
	okJSON(t, store, &b, "build", "--spec", spec, "--stage", stage)
	junk := make([]byte, 4096)
	rand.Read(junk)
	if err := os.WriteFile(filepath.Join(b.Dir, "places.arrow"), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(b.Dir, publish.StagedManifest))
	m, err := publish.DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(junk)
	m.Assets[0].Size, m.Assets[0].SHA256 = int64(len(junk)), hex.EncodeToString(sum[:])
	data, _ := m.Encode()
	os.WriteFile(filepath.Join(b.Dir, publish.StagedManifest), data, 0o644)
	ok(t, store, "publish", b.Dir)
	return b.Release
}

// TestPullAgent is issue 14's agent acceptance, on a local store and on
// MinIO: pull --watch picks up a promotion within 2 intervals, /metrics
// and /healthz show it, --on-swap runs once per swap, --check refuses a
// garbage asset whose digest matches and the box keeps serving, and
// SIGTERM stops the agent cleanly.
func TestPullAgent(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			places := filepath.Join(repoRoot(t), "testdata", "places")
			specA := writeSpec(t, dir, places, "{compression: zstd}")
			specB := writeSpec(t, dir, places, "{compression: lz4}")
			specC := writeSpec(t, dir, places, "{compression: none, batch_rows: 100}")
			dest, hooks := filepath.Join(dir, "srv"), filepath.Join(dir, "hooks.log")
			var r1, r2 struct{ Release string }
			okJSON(t, store, &r1, "run", "--spec", specA)

			addr := freePort(t)
			const interval = time.Second
			agent := exec.Command(binary, "--store", store, "pull", "--bundle", "places", "--dest", dest,
				"--watch", "--interval", interval.String(), "--listen", addr, "--check",
				"--on-swap", `echo "$LOCKSTEP_RELEASE $LOCKSTEP_SEQ" >> `+hooks)
			agent.Env = append(os.Environ(), "LOCKSTEP_STAGE="+stageDir(t))
			var stderr bytes.Buffer
			agent.Stderr = &stderr
			if err := agent.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- agent.Wait() }()
			defer func() {
				agent.Process.Kill()
				if t.Failed() {
					t.Logf("agent stderr:\n%s", stderr.String())
				}
			}()
			waitUntil(t, "the first release", 10*time.Second, func() bool { return currentRelease(dest) == r1.Release })

			okJSON(t, store, &r2, "run", "--spec", specB)
			took := waitUntil(t, "the new promotion", 3*interval, func() bool { return currentRelease(dest) == r2.Release })
			if took > 2*interval {
				t.Errorf("picked up the promotion after %s, more than 2 intervals", took)
			}
			waitUntil(t, "metrics", 2*interval, func() bool {
				_, body := httpGet(t, "http://"+addr+"/metrics")
				return strings.Contains(body, "lockstep_agent_channel_seq 2") &&
					strings.Contains(body, `lockstep_agent_release_info{bundle="places",channel="production",release="`+r2.Release+`"} 1`)
			})
			code, body := httpGet(t, "http://"+addr+"/healthz")
			if code != 200 || !strings.Contains(body, r2.Release) {
				t.Errorf("healthz: %d %s", code, body)
			}

			// A garbage asset whose digest matches: --check refuses it.
			bad := garbageRelease(t, store, dir, specC)
			ok(t, store, "promote", "--bundle", "places", "--release", bad)
			waitUntil(t, "the refusal counted", 4*interval, func() bool {
				_, body := httpGet(t, "http://"+addr+"/metrics")
				return strings.Contains(body, "lockstep_agent_failures_total 1") || strings.Contains(body, "lockstep_agent_failures_total 2")
			})
			if currentRelease(dest) != r2.Release {
				t.Fatalf("the garbage release was swapped in")
			}
			if _, err := os.Stat(filepath.Join(dest, "releases", bad)); err == nil {
				t.Errorf("the refused release stayed on disk")
			}

			agent.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("the agent did not stop cleanly: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the agent did not stop on SIGTERM")
			}
			log, _ := os.ReadFile(hooks)
			if want := fmt.Sprintf("%s 1\n%s 2\n", r1.Release, r2.Release); string(log) != want {
				t.Errorf("--on-swap ran:\n%s\nwant once per swap:\n%s", log, want)
			}
		})
	}
}

// TestPullResume is the agent's crash acceptance, on a local store and on
// MinIO: the agent, serving R1, is killed with SIGKILL while it downloads
// R2 (after three of its four assets, before the last); current still
// points at R1, never at an incomplete release; restarted, it downloads
// only the unfinished asset and swaps R2 in.
func TestPullResume(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			demo := filepath.Join(repoRoot(t), "testdata", "demo.yaml")
			var r1, r2 struct{ Release string }
			okJSON(t, store, &r1, "run", "--spec", demo)
			dest := filepath.Join(dir, "srv")
			ok(t, store, "pull", "--bundle", "places", "--dest", dest)
			// R2: the demo with other compression, so every asset differs.
			text, _ := os.ReadFile(demo)
			spec2 := filepath.Join(filepath.Dir(demo), ".resume-test-"+b.name+".yaml")
			os.WriteFile(spec2, []byte(strings.ReplaceAll(string(text), "compression: zstd", "compression: none")), 0o644)
			defer os.Remove(spec2)
			okJSON(t, store, &r2, "run", "--spec", spec2)
			var m publish.Manifest
			okJSON(t, store, &m, "show", "--bundle", "places", r2.Release)
			last := m.Assets[len(m.Assets)-1]
			// The agent's first poll reads the head (2 store operations),
			// then pulls: its last operation is the last asset's read.
			ops := 2 + storeOps(t, store, "pull", "--bundle", "places", "--dest", filepath.Join(dir, "probe"))

			pause := filepath.Join(dir, "pause")
			agent := func(env ...string) *exec.Cmd {
				cmd := exec.Command(binary, "--store", store, "pull", "--bundle", "places", "--dest", dest, "--watch", "--interval", "200ms", "--listen", freePort(t))
				cmd.Env = append(os.Environ(), env...)
				return cmd
			}
			cmd := agent(fmt.Sprintf("LOCKSTEP_PAUSE_AT_OP=%d", ops), "LOCKSTEP_PAUSE_FILE="+pause)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the pause before the last asset", 20*time.Second, func() bool { _, err := os.Stat(pause); return err == nil })
			part := filepath.Join(dest, "releases", ".partial-"+r2.Release)
			waitUntil(t, "the other assets downloaded", 20*time.Second, func() bool {
				for _, a := range m.Assets[:len(m.Assets)-1] {
					if fi, err := os.Stat(filepath.Join(part, a.File)); err != nil || fi.Size() != a.Size {
						return false
					}
				}
				return true
			})
			cmd.Process.Kill()
			cmd.Wait()
			if got := currentRelease(dest); got != r1.Release {
				t.Fatalf("after the kill, current is %q, want %s", got, r1.Release)
			}
			cmd = agent()
			addr := cmd.Args[len(cmd.Args)-1]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			waitUntil(t, "R2 swapped in", 20*time.Second, func() bool { return currentRelease(dest) == r2.Release })
			want := fmt.Sprintf("lockstep_agent_bytes_downloaded_total %d", last.Size)
			waitUntil(t, "the metrics", 5*time.Second, func() bool {
				_, body := httpGet(t, "http://"+addr+"/metrics")
				return strings.Contains(body, want)
			})
			ok(t, store, "status", "--dest", dest, "--verify")
		})
	}
}

// TestSwapHook: a failing --on-swap with --rollback-on-hook-failure swaps
// back, running the hook for both swaps; pull --rollback works with the
// store gone.
func TestSwapHook(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	var r1, r2 struct{ Release string }
	okJSON(t, store, &r1, "run", "--spec", writeSpec(t, dir, places, "{compression: zstd}"))
	dest, hooks := filepath.Join(dir, "srv"), filepath.Join(dir, "hooks.log")
	ok(t, store, "pull", "--bundle", "places", "--dest", dest)
	okJSON(t, store, &r2, "run", "--spec", writeSpec(t, dir, places, "{compression: lz4}"))
	hook := `echo "$LOCKSTEP_RELEASE" >> ` + hooks + `; test "$LOCKSTEP_RELEASE" != ` + r2.Release
	res := lockstep(t, store, "pull", "--bundle", "places", "--dest", dest, "-o", "json", "--on-swap", hook, "--rollback-on-hook-failure")
	var out pullOut
	json.Unmarshal([]byte(res.stdout), &out)
	if res.code != 1 || out.Hook == nil || out.Hook.Exit != 1 || out.Hook.RolledBack != r1.Release || currentRelease(dest) != r1.Release {
		t.Fatalf("failing hook: exit %d, %+v, serves %s: %s", res.code, out.Hook, currentRelease(dest), res.stderr)
	}
	if log, _ := os.ReadFile(hooks); string(log) != r2.Release+"\n"+r1.Release+"\n" {
		t.Errorf("hook runs: %q", log)
	}
	// Offline: forward to r2 again, then back, with no store at all.
	ok(t, store, "pull", "--bundle", "places", "--dest", dest)
	os.RemoveAll(filepath.Join(dir, "store"))
	gone := "s3://no-such-bucket?endpoint=http://127.0.0.1:1&region=us-east-1"
	if r := lockstep(t, gone, "pull", "--bundle", "places", "--dest", dest, "--rollback"); r.code != 0 || currentRelease(dest) != r1.Release {
		t.Fatalf("offline rollback: exit %d, serves %s: %s", r.code, currentRelease(dest), r.stderr)
	}
}
