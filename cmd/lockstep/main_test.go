package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The CLI tests run the real binary, as cron, Airflow or a person would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockstep-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lockstep")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=test", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs lockstep against store with args.
func lockstep(t *testing.T, store string, args ...string) result {
	t.Helper()
	return cliEnv(t, store, nil, args...)
}

func cliEnv(t *testing.T, store string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--store", store}, args...)...)
	// Staged releases go to a temporary folder unless a test says --stage,
	// not to .lockstep/ in the package folder.
	cmd.Env = append(append(os.Environ(), "LOCKSTEP_STAGE="+stageDir(t)), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run lockstep %v: %v", args, err)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, store string, args ...string) string {
	t.Helper()
	r := lockstep(t, store, args...)
	if r.code != 0 {
		t.Fatalf("lockstep %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// okJSON runs the binary with --output json and decodes its output into v.
func okJSON(t *testing.T, store string, v any, args ...string) {
	t.Helper()
	// urfave/cli stops reading flags at the first argument: put it first.
	full := append([]string{args[0], "--output", "json"}, args[1:]...)
	out := ok(t, store, full...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("lockstep %v: output is not JSON: %v\n%s", args, err, out)
	}
}

// repoRoot is the module root, for testdata.
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// writeSpec writes a one-bundle spec reading the Spark output folder input.
func writeSpec(t *testing.T, dir, input, options string) string {
	t.Helper()
	if options == "" {
		options = "{compression: zstd}"
	}
	spec := fmt.Sprintf(`bundles:
  places:
    channel: production
    inputs:
      places:
        url: %s
    assets:
      places:
        format: arrow
        input: places
        options: %s
`, input, options)
	path := filepath.Join(dir, fmt.Sprintf("spec-%d.yaml", len(options)))
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needService fails under CI=true when a service the test needs is missing,
// and skips when the test is run bare.
func needService(t *testing.T, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is unset under CI=true: %s is missing (run `make test`)", env, what)
	}
	t.Skipf("%s unset: run `make test` for %s", env, what)
	return ""
}

// stageDir is the test's default staging folder.
func stageDir(t *testing.T) string {
	stageDirs.Lock()
	defer stageDirs.Unlock()
	if d, ok := stageDirs.m[t.Name()]; ok {
		return d
	}
	d := t.TempDir()
	stageDirs.m[t.Name()] = d
	return d
}

var stageDirs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}
