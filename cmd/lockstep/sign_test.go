package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/publish"
)

// storeObject reads or replaces one object of a store, as someone with
// write access to the bucket could.
func storeObject(t *testing.T, store, key string, data []byte) []byte {
	t.Helper()
	ctx := context.Background()
	b := openBucket(t, store)
	defer b.Close()
	if data == nil {
		old, err := b.ReadAll(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return old
	}
	if len(data) == 0 {
		if err := b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	if err := b.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	return data
}

func entryKeyOf(seq int) string {
	return "bundles/places/channels/production/" + strings.Repeat("0", 10-len(itoa(seq))) + itoa(seq) + ".json"
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestSignedReleases is issue 14's "tamper and replay" and "key rotation"
// acceptance, on a local store and on MinIO: a box pulling with
// --trust-key refuses an unsigned release, a bad signature, a tampered
// manifest, an entry by an untrusted key, an old head replayed as a new
// entry and a log cut back below what it accepted, each with exit 5, and
// keeps serving what it had; an intentional rollback (a newer entry)
// passes; a new key is accepted once trusted, and the old one can go.
func TestSignedReleases(t *testing.T) {
	for _, b := range cliBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			signed(t, b.url(t, dir), dir)
		})
	}
}

func signed(t *testing.T, store, dir string) {
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	var kg keygenOut
	okJSON(t, store, &kg, "keygen", k1)
	if fi, err := os.Stat(k1 + ".key"); err != nil || fi.Mode().Perm() != 0o600 || len(kg.KeyID) != 16 {
		t.Fatalf("keygen: %+v, %v %v", kg, fi, err)
	}
	ok(t, store, "keygen", k2)
	if r := lockstep(t, store, "keygen", k1); r.code != 2 || !strings.Contains(r.stderr, "never overwrites") {
		t.Errorf("keygen over an existing key: exit %d: %s", r.code, r.stderr)
	}
	places := filepath.Join(repoRoot(t), "testdata", "places")
	specA := writeSpec(t, dir, places, "{compression: zstd}")
	specB := writeSpec(t, dir, places, "{compression: lz4}")
	specC := writeSpec(t, dir, places, "{compression: none, batch_rows: 100}")
	dest := filepath.Join(dir, "srv")
	pull := func(keys ...string) result {
		args := []string{"pull", "--bundle", "places", "--dest", dest}
		for _, k := range keys {
			args = append(args, "--trust-key", k)
		}
		return lockstep(t, store, args...)
	}
	serves := func() string {
		t.Helper()
		target, err := os.Readlink(filepath.Join(dest, "current"))
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Base(target)
	}
	refused := func(what, want string, keys ...string) {
		t.Helper()
		before := serves()
		r := pull(keys...)
		if r.code != 5 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, want 5 and %q:\n%s", what, r.code, want, r.stderr)
		}
		if serves() != before {
			t.Errorf("%s: the box swapped to %s", what, serves())
		}
	}

	// Signed: accepted, and the accepted seq is kept in DEST.
	var a struct{ Release string }
	okJSON(t, store, &a, "run", "--spec", specA, "--sign-key", k1+".key")
	if r := pull(k1 + ".pub"); r.code != 0 {
		t.Fatalf("signed pull: exit %d: %s", r.code, r.stderr)
	}
	if serves() != a.Release {
		t.Fatalf("serves %s, want %s", serves(), a.Release)
	}

	// Unsigned: a run without a key.
	var b struct{ Release string }
	okJSON(t, store, &b, "run", "--spec", specB)
	refused("unsigned entry", "channel production entry 2 is not signed", k1+".pub")

	// Signed by a key the box does not trust.
	ok(t, store, "promote", "--bundle", "places", "--release", b.Release, "--sign-key", k2+".key")
	refused("untrusted key", "which is not trusted", k1+".pub")
	// Rotation, first step: both keys trusted; the manifest is signed by
	// neither yet (run published it unsigned), then by the new key.
	refused("unsigned manifest", "release "+b.Release+" is not signed by a trusted key", k1+".pub", k2+".pub")
	ok(t, store, "sign", "--bundle", "places", "--release", b.Release, "--sign-key", k2+".key")
	if r := pull(k1+".pub", k2+".pub"); r.code != 0 || serves() != b.Release {
		t.Fatalf("rotation: exit %d, serves %s: %s", r.code, serves(), r.stderr)
	}

	// A bad signature: entry 3's reason changed after signing.
	key3 := entryKeyOf(3)
	good3 := storeObject(t, store, key3, nil)
	var e publish.Entry
	if err := json.Unmarshal(good3, &e); err != nil || e.Signature == nil {
		t.Fatalf("entry 3: %v %+v", err, e)
	}
	storeObject(t, store, key3, []byte(strings.Replace(string(good3), `"action": "promote"`, `"action": "promote", "reason": "forged"`, 1)))
	refused("bad entry signature", "does not match its content", k1+".pub", k2+".pub")
	storeObject(t, store, key3, good3)

	// A tampered manifest, pulled by release id (no entry vouches for it).
	mkey := "bundles/places/releases/" + b.Release + ".json"
	goodM := storeObject(t, store, mkey, nil)
	storeObject(t, store, mkey, []byte(strings.Replace(string(goodM), `"lockstep_version": "test"`, `"lockstep_version": "evil"`, 1)))
	r := lockstep(t, store, "pull", "--bundle", "places", "--dest", dest, "--release", b.Release, "--trust-key", k2+".pub")
	if r.code != 5 || !strings.Contains(r.stderr, "does not match its content") {
		t.Errorf("tampered manifest: exit %d: %s", r.code, r.stderr)
	}
	storeObject(t, store, mkey, goodM)

	// An old head replayed as a new entry: entry 1's bytes as entry 4.
	storeObject(t, store, entryKeyOf(4), storeObject(t, store, entryKeyOf(1), nil))
	refused("replayed head", "entry 4 does not match its key", k1+".pub", k2+".pub")
	storeObject(t, store, entryKeyOf(4), []byte{})

	// An intentional rollback is a newer entry, and passes (signed by the
	// new key; the release it names is signed by the old one).
	ok(t, store, "rollback", "--bundle", "places", "--sign-key", k2+".key")
	if r := pull(k1+".pub", k2+".pub"); r.code != 0 || serves() != a.Release {
		t.Fatalf("rollback: exit %d, serves %s: %s", r.code, serves(), r.stderr)
	}
	// The log cut back below what the box accepted (entry 4 removed).
	good4 := storeObject(t, store, entryKeyOf(4), nil)
	storeObject(t, store, entryKeyOf(4), []byte{})
	refused("log cut back", "this box accepted entry 4 before", k1+".pub", k2+".pub")
	storeObject(t, store, entryKeyOf(4), good4)

	// Rotation: the new key vouches only for what the old one signed. A
	// manifest changed in the store since is refused.
	goodA := storeObject(t, store, "bundles/places/releases/"+a.Release+".json", nil)
	storeObject(t, store, "bundles/places/releases/"+a.Release+".json", []byte(strings.Replace(string(goodA), `"lockstep_version": "test"`, `"lockstep_version": "evil"`, 1)))
	if r := lockstep(t, store, "sign", "--bundle", "places", "--release", a.Release, "--sign-key", k2+".key", "--trust-key", k1+".pub"); r.code != 5 {
		t.Errorf("sign over a changed manifest: exit %d: %s", r.code, r.stderr)
	}
	storeObject(t, store, "bundles/places/releases/"+a.Release+".json", goodA)
	ok(t, store, "sign", "--bundle", "places", "--release", a.Release, "--sign-key", k2+".key", "--trust-key", k1+".pub")

	// Rotation, last step: the old key removed. A release and entry signed
	// by the new key alone are accepted.
	var c struct{ Release string }
	okJSON(t, store, &c, "run", "--spec", specC, "--sign-key", k2+".key")
	if r := pull(k2 + ".pub"); r.code != 0 || serves() != c.Release {
		t.Fatalf("new key alone: exit %d, serves %s, want %s: %s\n%+v", r.code, serves(), c.Release, r.stderr, history(t, store))
	}
	// Keys never reach logs or manifests.
	priv, _ := os.ReadFile(k2 + ".key")
	body := strings.Split(string(priv), "\n")[1]
	for _, args := range [][]string{{"show", "--bundle", "places", c.Release}, {"history", "--bundle", "places"}} {
		if out := ok(t, store, args...); strings.Contains(out, body) {
			t.Errorf("%v shows the private key", args)
		}
	}
}
