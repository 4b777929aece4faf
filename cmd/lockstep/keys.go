package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// signKeyFlag is the private key that signs manifests and channel entries.
var signKeyFlag = &cli.StringFlag{Name: "sign-key", EnvVars: []string{"LOCKSTEP_SIGN_KEY"},
	Usage: "sign with this ed25519 private key: a `FILE` (lockstep keygen), or env:VAR for the PEM in a variable"}

// signer loads --sign-key, or nil when it is not given.
func signer(c *cli.Context) (*publish.Signer, error) {
	ref := c.String("sign-key")
	if ref == "" {
		return nil, nil
	}
	s, err := publish.LoadSigner(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: --sign-key: %v", errUsage, err)
	}
	return s, nil
}

// trust loads --trust-key, or nil when none is given.
func trust(c *cli.Context) (publish.Keyring, error) {
	refs := c.StringSlice("trust-key")
	if len(refs) == 0 {
		return nil, nil
	}
	k, err := publish.LoadKeyring(refs)
	if err != nil {
		return nil, fmt.Errorf("%w: --trust-key: %v", errUsage, err)
	}
	return k, nil
}

// keygenOut is what keygen prints.
type keygenOut struct {
	KeyID   string `json:"key_id"`
	Private string `json:"private"` // the private key's file (mode 0600)
	Public  string `json:"public"`
}

// runKeygen writes NAME.key and NAME.pub, refusing to overwrite either.
func runKeygen(c *cli.Context) error {
	name := c.Args().First()
	if name == "" {
		return fmt.Errorf("%w: keygen needs a NAME: it writes NAME.key and NAME.pub", errUsage)
	}
	out, err := newPrinter(c)
	if err != nil {
		return err
	}
	priv, pub, id, err := publish.GenerateKey()
	if err != nil {
		return err
	}
	res := keygenOut{KeyID: id, Private: name + ".key", Public: name + ".pub"}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{res.Private, priv, 0o600}, {res.Public, pub, 0o644}} {
		fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s exists: keygen never overwrites a key; choose another NAME", errUsage, f.path)
		}
		if err != nil {
			return err
		}
		_, err = fd.Write(f.data)
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return out.print(res, func(w *tw) {
		w.line("key %s: private %s (keep it secret: publish, run and channel moves sign with it), public %s (pull --trust-key)", id, res.Private, res.Public)
	})
}

// signOut is what sign prints.
type signOut struct {
	Bundle  string `json:"bundle"`
	Release string `json:"release"`
	KeyID   string `json:"key_id"`
}

// runSign signs a published release's manifest with --sign-key: a
// release published unsigned, or one that a new key must vouch for while
// keys rotate.
func runSign(c *cli.Context, e *env) error {
	s, err := signer(c)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("%w: sign needs --sign-key", errUsage)
	}
	_, raw, err := e.store.ReadManifestBytes(e.ctx, c.String("bundle"), c.String("release"))
	if err != nil {
		return err
	}
	keys, err := trust(c)
	if err != nil {
		return err
	}
	if keys != nil {
		// A new key vouches only for what a trusted key already signed:
		// a manifest changed in the store since is refused.
		if err := e.store.VerifyRelease(e.ctx, c.String("bundle"), c.String("release"), raw, keys); err != nil {
			return err
		}
	}
	if err := e.store.SignRelease(e.ctx, c.String("bundle"), c.String("release"), raw, s); err != nil {
		return err
	}
	out := signOut{Bundle: c.String("bundle"), Release: c.String("release"), KeyID: s.ID()}
	return e.out.print(out, func(w *tw) { w.line("signed %s release %s with key %s", out.Bundle, out.Release, out.KeyID) })
}

// runRebuild is `rebuild`: build a published release again from its
// manifest and prove its assets byte-identical.
func runRebuild(c *cli.Context, e *env) error {
	bld := &pipeline.Builder{Registry: e.reg, Version: version, StageDir: c.String("stage"), Logger: e.log}
	res, err := pipeline.Rebuild(e.ctx, bld, e.store, c.String("bundle"), c.String("release"),
		pipeline.RebuildOptions{AllowVersionChange: c.Bool("allow-version-change")})
	if res == nil {
		return err
	}
	if perr := e.out.print(res, func(w *tw) {
		w.line("  ASSET\tRESULT\tSIZE\tSHA256")
		for _, a := range res.Assets {
			if a.Identical {
				w.line("  %s\tidentical\t%s\t%.12s", a.Name, bytesText(a.Size), a.SHA256)
				continue
			}
			w.line("  %s\tDIFFERS at byte %d\t%s -> %s\t%.12s -> %.12s", a.Name, a.FirstDiff, bytesText(a.Size), bytesText(a.RebuiltSize), a.SHA256, a.RebuiltSHA256)
		}
		if res.Identical {
			w.line("rebuilt %s release %s from its manifest: every asset byte-identical", res.Bundle, res.Release)
		}
	}); perr != nil {
		return perr
	}
	return err
}
