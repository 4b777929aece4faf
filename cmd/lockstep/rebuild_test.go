package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/pipeline"
)

// TestRebuild is issue 13's rebuild acceptance, on a local store and on
// MinIO: a release made earlier is rebuilt from its manifest alone (its
// recorded spec, its pinned inputs, a file input among them) byte for
// byte; after an input file is replaced, or removed, rebuild names it.
func TestRebuild(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			store := b.url(t, dir)
			in := filepath.Join(dir, "in")
			os.MkdirAll(in, 0o755)
			src := filepath.Join(repoRoot(t), "testdata", "places")
			ents, _ := os.ReadDir(src)
			var parts []string
			for _, e := range ents {
				data, _ := os.ReadFile(filepath.Join(src, e.Name()))
				os.WriteFile(filepath.Join(in, e.Name()), data, 0o644)
				if strings.HasSuffix(e.Name(), ".parquet") {
					parts = append(parts, e.Name())
				}
			}
			cfg := filepath.Join(dir, "server.conf")
			os.WriteFile(cfg, []byte("threads = 8\n"), 0o644)
			spec := filepath.Join(dir, "spec.yaml")
			os.WriteFile(spec, []byte(`bundles:
  places:
    inputs:
      places: {url: in}
      conf: {url: server.conf, format: file}
    assets:
      places: {format: arrow, input: places, options: {compression: zstd}}
      by_id: {format: kv, input: places, options: {key: id, value: json}}
      conf: {format: file, input: conf}
`), 0o644)
			var r struct{ Release string }
			okJSON(t, store, &r, "run", "--spec", spec)
			os.Remove(spec) // the manifest alone is enough

			var res pipeline.RebuildResult
			okJSON(t, store, &res, "rebuild", "--bundle", "places", "--release", r.Release)
			if !res.Identical || len(res.Assets) != 3 {
				t.Fatalf("rebuild: %+v", res)
			}
			for _, a := range res.Assets {
				if !a.Identical || a.FirstDiff != -1 || a.SHA256 != a.RebuiltSHA256 {
					t.Errorf("asset %+v", a)
				}
			}

			// One part file replaced by another's bytes: named.
			data, _ := os.ReadFile(filepath.Join(in, parts[1]))
			os.WriteFile(filepath.Join(in, parts[0]), data, 0o644)
			rr := lockstep(t, store, "rebuild", "--bundle", "places", "--release", r.Release)
			if rr.code != 1 || !strings.Contains(rr.stderr, parts[0]+" changed since release "+r.Release) {
				t.Errorf("a replaced input: exit %d: %s", rr.code, rr.stderr)
			}
			os.Remove(filepath.Join(in, parts[0]))
			rr = lockstep(t, store, "rebuild", "--bundle", "places", "--release", r.Release)
			if rr.code != 1 || !strings.Contains(rr.stderr, parts[0]+", which release "+r.Release+" read, is gone") {
				t.Errorf("a removed input: exit %d: %s", rr.code, rr.stderr)
			}
		})
	}
}
