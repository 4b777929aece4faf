package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lockstep-data/lockstep/publish"
)

// Publish a staged release, point a channel at it, and pull it onto a box.
func Example() {
	ctx := context.Background()
	store, _ := publish.Open(ctx, "mem://")
	defer store.Close()

	// A staged release: asset files and manifest.json in one folder, as
	// `lockstep build` leaves it.
	dir, _ := os.MkdirTemp("", "staged-")
	defer os.RemoveAll(dir)
	data := []byte("the server's data")
	sum := sha256.Sum256(data)
	os.WriteFile(filepath.Join(dir, "cities.bin"), data, 0o644)
	m := &publish.Manifest{
		Schema: publish.ManifestSchema, Bundle: "geo", Release: "20261125T120000Z-abcd1234",
		Created: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Fingerprint: "abcd1234",
		Assets: []publish.Asset{{Name: "cities", File: "cities.bin", Format: "file",
			Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}},
	}
	raw, _ := m.Encode()
	os.WriteFile(filepath.Join(dir, publish.StagedManifest), raw, 0o644)
	staged, _ := publish.ReadStaged(dir)

	res, _ := publish.Publish(ctx, store, staged, publish.PublishOptions{})
	fmt.Println("uploaded", res.BytesUploaded, "bytes")

	e, _ := publish.Promote(ctx, store, publish.PromoteRequest{
		Bundle: "geo", Channel: "production", Release: m.Release, ExpectHead: -1, Reason: "example"})
	fmt.Println("production #", e.Seq, "->", e.Release)

	serve, _ := os.MkdirTemp("", "serve-")
	defer os.RemoveAll(serve)
	p, _ := publish.Pull(ctx, store, publish.PullRequest{Bundle: "geo", Channel: "production", Dest: serve})
	got, _ := os.ReadFile(filepath.Join(serve, publish.CurrentLink, "cities.bin"))
	fmt.Println("pulled", p.Release, string(got))
	// Output:
	// uploaded 17 bytes
	// production # 1 -> 20261125T120000Z-abcd1234
	// pulled 20261125T120000Z-abcd1234 the server's data
}
