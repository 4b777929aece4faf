package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/publish"
)

// buildServer compiles a tiny server binary that prints its version.
func buildServer(t *testing.T, dir, version string) string {
	t.Helper()
	src := filepath.Join(dir, "src-"+version)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module server\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(`package main

import "fmt"

var version = "dev"

func main() { fmt.Println("server", version) }
`), 0o644)
	out := filepath.Join(dir, "bin-"+version, "server")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build server: %v\n%s", err, b)
	}
	return out
}

func binarySpec(t *testing.T, dir, server, requires, compression string) string {
	t.Helper()
	spec := fmt.Sprintf(`bundles:
  places:
    requires: {server: %q}
    inputs:
      places: {url: %s}
      server: {url: %s, format: file}
    assets:
      places: {format: arrow, input: places, options: {compression: %s}}
      server: {format: file, input: server}
`, requires, filepath.Join(repoRoot(t), "testdata", "places"), server, compression)
	path := filepath.Join(dir, "binary-"+compression+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBinaryAndData is issue 14's "lockstep pull" acceptance, on a local
// store and on MinIO: a bundle carries a server binary the test builds and
// its data; the pulled binary keeps its executable bit and runs; a box
// refuses a release its server version cannot load; after a rollback the
// binary and the data are both the previous release's.
func TestBinaryAndData(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := buildServer(t, dir, "1.0.0"), buildServer(t, dir, "2.0.0")
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			dest := filepath.Join(dir, "srv")
			runServer := func() string {
				t.Helper()
				out, err := exec.Command(filepath.Join(dest, "current", "server")).Output()
				if err != nil {
					t.Fatalf("the pulled server does not run: %v", err)
				}
				return strings.TrimSpace(string(out))
			}
			dataSum := func() string {
				data, err := os.ReadFile(filepath.Join(dest, "current", "places.arrow"))
				if err != nil {
					t.Fatal(err)
				}
				s := sha256.Sum256(data)
				return hex.EncodeToString(s[:])
			}

			var r1, r2 struct{ Release string }
			okJSON(t, store, &r1, "run", "--spec", binarySpec(t, dir, v1, ">=1.0.0, <2", "zstd"))
			var m publish.Manifest
			okJSON(t, store, &m, "show", "--bundle", "places", r1.Release)
			srv, err := m.Asset("server")
			if err != nil || srv.Mode != "0755" || srv.Format != "file" || srv.File != "server" {
				t.Fatalf("server asset: %+v %v", srv, err)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", dest, "--server-version", "1.0.0")
			if got := runServer(); got != "server 1.0.0" {
				t.Fatalf("pulled server says %q", got)
			}
			data1 := dataSum()

			okJSON(t, store, &r2, "run", "--spec", binarySpec(t, dir, v2, ">=2.0.0", "lz4"))
			r := lockstep(t, store, "pull", "--bundle", "places", "--dest", dest, "--server-version", "1.0.0")
			if r.code != 5 || !strings.Contains(r.stderr, "requires server >=2.0.0") || runServer() != "server 1.0.0" {
				t.Fatalf("an incompatible release: exit %d: %s", r.code, r.stderr)
			}
			ok(t, store, "pull", "--bundle", "places", "--dest", dest)
			if got := runServer(); got != "server 2.0.0" || dataSum() == data1 {
				t.Fatalf("after the new release: %q, data unchanged %v", got, dataSum() == data1)
			}

			ok(t, store, "rollback", "--bundle", "places")
			ok(t, store, "pull", "--bundle", "places", "--dest", dest)
			if got := runServer(); got != "server 1.0.0" || dataSum() != data1 {
				t.Fatalf("after the rollback: %q, data is the first release's: %v", got, dataSum() == data1)
			}
		})
	}
}
