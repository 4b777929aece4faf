package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSchedule is issue 13's schedule acceptance: two bundles on a
// once-per-second schedule for 10 s. Runs of one bundle never overlap, the
// first publishes and the rest are unchanged, /metrics counts them, and
// SIGTERM stops the daemon cleanly.
func TestSchedule(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`bundles:
  a:
    schedule: "* * * * * *"
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places}}
  b:
    schedule: "* * * * * *"
    missed: once
    inputs: {places: {url: %s}}
    assets: {by_id: {format: kv, input: places, options: {key: id, value: json}}}
  c:
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places}}
`, places, places, places)), 0o644)
	addr := freePort(t)
	cmd := exec.Command(binary, "--store", store, "--log-format", "json", "--log-level", "info", "schedule", "--spec", spec, "--listen", addr)
	cmd.Env = append(os.Environ(), "LOCKSTEP_STAGE="+filepath.Join(dir, "stage"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	_, metrics := httpGet(t, "http://"+addr+"/metrics")
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("schedule did not stop cleanly: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("schedule did not stop on SIGTERM")
	}

	type span struct{ start, end time.Time }
	runs := map[string][]span{}
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		var ev struct {
			Msg, Bundle, Outcome, Start, End string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Msg != "run finished" || ev.Start == "" {
			continue
		}
		s, _ := time.Parse(time.RFC3339Nano, ev.Start)
		e, _ := time.Parse(time.RFC3339Nano, ev.End)
		runs[ev.Bundle] = append(runs[ev.Bundle], span{s, e})
	}
	for _, b := range []string{"a", "b"} {
		if len(runs[b]) < 5 {
			t.Errorf("bundle %s ran %d times in 10 s on a once-per-second schedule", b, len(runs[b]))
		}
		for i := 1; i < len(runs[b]); i++ {
			if runs[b][i].start.Before(runs[b][i-1].end) {
				t.Errorf("bundle %s: run %d started before run %d ended", b, i, i-1)
			}
		}
	}
	if len(runs["c"]) != 0 {
		t.Errorf("bundle c has no schedule, yet ran")
	}
	for _, want := range []string{
		`lockstep_schedule_runs_total{bundle="a",outcome="published"} 1`,
		`lockstep_schedule_runs_total{bundle="b",outcome="published"} 1`,
		`lockstep_schedule_overlaps_total 0`,
		`lockstep_schedule_rows_published_total{bundle="a"} 3000`,
		`lockstep_schedule_last_success_timestamp_seconds{bundle="a"}`,
		`lockstep_schedule_run_seconds_count{bundle="b"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	if !strings.Contains(metrics, `lockstep_schedule_runs_total{bundle="a",outcome="unchanged"}`) {
		t.Errorf("no unchanged runs counted")
	}
	var h []historyEntry
	okJSON(t, store, &h, "history", "--bundle", "a")
	if len(h) != 1 || !strings.HasPrefix(h[0].Reason, "schedule ") {
		t.Errorf("history of a: %+v", h)
	}
}

// TestScheduleGrace: SIGTERM while a scheduled run is held up (paused at a
// store operation) stops the scheduler; past --grace the run is abandoned,
// the daemon exits, and the store holds nothing partial: no channel moved,
// and it verifies clean.
func TestScheduleGrace(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`bundles:
  a:
    schedule: "* * * * * *"
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places}}
`, places)), 0o644)
	pause := filepath.Join(dir, "pause")
	cmd := exec.Command(binary, "--store", store, "schedule", "--spec", spec, "--grace", "1s")
	// Held at its 6th store operation: after the build, while publishing.
	cmd.Env = append(os.Environ(), "LOCKSTEP_STAGE="+filepath.Join(dir, "stage"), "LOCKSTEP_PAUSE_AT_OP=6", "LOCKSTEP_PAUSE_FILE="+pause)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the run held", 30*time.Second, func() bool { _, err := os.Stat(pause); return err == nil })
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("schedule: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the held run was not abandoned after --grace 1s")
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("stopped after %s, before the 1 s grace", took)
	}
	if r := lockstep(t, store, "history", "--bundle", "a"); r.code == 0 {
		t.Errorf("the abandoned run moved the channel:\n%s", r.stdout)
	}
	ok(t, store, "verify", "--all")
}
