package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// validateCommand checks a spec alone: its syntax, keys, formats, options
// and URLs, with no input read and no store opened (for CI).
func validateCommand(specFlag, bundleFlag, output cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "check a spec (keys, formats, options, URLs) without reading inputs or a store",
		Description: `Exits 0 when the spec is valid, 2 with the file, line and what to fix when not.

Examples:
   lockstep validate --spec lockstep.yaml
   lockstep validate --spec lockstep.yaml --bundle places -o json`,
		Flags: []cli.Flag{specFlag, bundleFlag, output},
		Action: func(c *cli.Context) error {
			p, err := newPrinter(c)
			if err != nil {
				return err
			}
			spec, err := pipeline.LoadSpec(c.String("spec"), all.Registry())
			if err != nil {
				return err
			}
			names := make([]string, 0, len(spec.Bundles))
			for n := range spec.Bundles {
				names = append(names, n)
			}
			if n := c.String("bundle"); n != "" {
				if _, err := spec.Bundle(n); err != nil {
					return err
				}
				names = []string{n}
			}
			sort.Strings(names)
			out := validateOut{Spec: spec.Path, Bundles: []validBundle{}}
			for _, n := range names {
				b := spec.Bundles[n]
				vb := validBundle{Bundle: n, Channel: b.Channel, Inputs: []validInput{}, Assets: []validAsset{}}
				for _, in := range sortedNames(b.Inputs) {
					vb.Inputs = append(vb.Inputs, validInput{Name: in, URL: b.Inputs[in].URL})
				}
				for _, a := range sortedNames(b.Assets) {
					vb.Assets = append(vb.Assets, validAsset{Name: a, Format: b.Assets[a].Format, Input: b.Assets[a].Input})
				}
				out.Bundles = append(out.Bundles, vb)
			}
			return p.print(out, func(w *tw) {
				w.line("%s is valid: %d %s", out.Spec, len(out.Bundles), plural(len(out.Bundles), "bundle", "bundles"))
				for _, b := range out.Bundles {
					w.line("bundle %q (channel %q): %d %s, %d %s", b.Bundle, b.Channel,
						len(b.Inputs), plural(len(b.Inputs), "input", "inputs"), len(b.Assets), plural(len(b.Assets), "asset", "assets"))
					for _, a := range b.Assets {
						w.line("  asset %q: %s from input %q", a.Name, a.Format, a.Input)
					}
				}
			})
		},
	}
}

type validateOut struct {
	Spec    string        `json:"spec"`
	Bundles []validBundle `json:"bundles"`
}

type validBundle struct {
	Bundle  string       `json:"bundle"`
	Channel string       `json:"channel"`
	Inputs  []validInput `json:"inputs"`
	Assets  []validAsset `json:"assets"`
}

type validInput struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type validAsset struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Input  string `json:"input"`
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// completionCommand prints a shell completion script; the completions
// themselves come from the binary (urfave/cli's --generate-bash-completion).
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Examples:
   source <(lockstep completion bash)               # this shell
   lockstep completion bash > /etc/bash_completion.d/lockstep
   source <(lockstep completion zsh)                # in ~/.zshrc
   lockstep completion fish > ~/.config/fish/completions/lockstep.fish`,
		Action: func(c *cli.Context) error {
			var script string
			switch sh := c.Args().First(); sh {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				script = s
			default:
				return usageErr("completion", "unknown shell %q: give bash, zsh or fish", sh)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

const bashCompletion = `# lockstep completion for bash: source <(lockstep completion bash)
_lockstep_complete() {
  local cur opts
  cur="${COMP_WORDS[COMP_CWORD]}"
  opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _lockstep_complete lockstep
`

// zshCompletion runs the bash completion through zsh's bashcompinit.
const zshCompletion = `# lockstep completion for zsh: source <(lockstep completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

// statusCommand shows what a box serves: the release in DIR/current, when
// it was swapped in, whether its files still match the manifest (with
// --verify), and what the channel names now.
func statusCommand(output cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what a pulled DIR serves: the release, when it was pulled, verified or not, and what its channel names now",
		Description: `Examples:
   lockstep status --dest /srv/places
   lockstep --store s3://bucket/releases status --dest /srv/places --channel production --verify -o json`,
		Flags: []cli.Flag{output,
			&cli.StringFlag{Name: "dest", Aliases: []string{"d"}, Usage: "serving `DIR` (required)"},
			&cli.StringFlag{Name: "channel", Aliases: []string{"c"}, Value: "production", Usage: "channel `NAME` to compare with"},
			&cli.BoolFlag{Name: "verify", Usage: "hash every file of the release against its manifest now (exit 5 on a mismatch)"},
		},
		Action: withStore(storeIfExists, runStatus),
	}
}

type statusOut struct {
	Dest     string    `json:"dest"`
	Bundle   string    `json:"bundle"`
	Release  string    `json:"release"`
	PulledAt time.Time `json:"pulled_at"`
	// Verified is "at pull" (pull checks every byte before the swap), "ok"
	// or "failed" (--verify, now).
	Verified string   `json:"verified"`
	Problems []string `json:"problems"`
	Channel  string   `json:"channel"`
	// ChannelRelease is what the channel names now ("" when it could not
	// be read: ChannelError says why); UpToDate compares it.
	ChannelRelease string `json:"channel_release"`
	ChannelSeq     int64  `json:"channel_seq"`
	ChannelError   string `json:"channel_error"`
	UpToDate       bool   `json:"up_to_date"`
}

func runStatus(c *cli.Context, e *env) error {
	dest := c.String("dest")
	st, err := publish.Current(dest)
	if err != nil {
		return err
	}
	out := statusOut{Dest: dest, Bundle: st.Manifest.Bundle, Release: st.Manifest.Release, Verified: "at pull",
		Problems: []string{}, Channel: c.String("channel")}
	if fi, err := os.Lstat(filepath.Join(dest, publish.CurrentLink)); err == nil {
		out.PulledAt = fi.ModTime().UTC()
	}
	if c.Bool("verify") {
		out.Verified = "ok"
		for _, a := range st.Manifest.Assets {
			if p := checkFile(filepath.Join(st.Dir, a.File), a); p != "" {
				out.Problems = append(out.Problems, a.File+": "+p)
				out.Verified = "failed"
			}
		}
	}
	switch {
	case e.store == nil:
		out.ChannelError = "the store " + c.String("store") + " does not exist"
	default:
		head, err := e.store.Head(e.ctx, out.Bundle, out.Channel)
		switch {
		case err != nil:
			out.ChannelError = err.Error()
		case head == nil:
			out.ChannelError = "the channel names no release"
		default:
			out.ChannelRelease, out.ChannelSeq = head.Release, head.Seq
			out.UpToDate = head.Release == out.Release
		}
	}
	if err := e.out.print(out, func(w *tw) {
		w.line("%s serves %s release %s, pulled %s", dest, out.Bundle, out.Release, out.PulledAt.Format(time.RFC3339))
		switch out.Verified {
		case "at pull":
			w.line("verified when pulled (every byte against the manifest); --verify checks again now")
		case "ok":
			w.line("verified now: every file matches the manifest")
		default:
			w.line("verification FAILED: %s; pull again: lockstep pull --bundle %s --release %s --dest %s", strings.Join(out.Problems, "; "), out.Bundle, out.Release, dest)
		}
		switch {
		case out.ChannelError != "":
			w.line("channel %q: unknown (%s)", out.Channel, out.ChannelError)
		case out.UpToDate:
			w.line("channel %q #%d names this release: up to date", out.Channel, out.ChannelSeq)
		default:
			w.line("channel %q #%d now names %s: lockstep pull --bundle %s --channel %s --dest %s", out.Channel, out.ChannelSeq, out.ChannelRelease, out.Bundle, out.Channel, dest)
		}
	}); err != nil {
		return err
	}
	if out.Verified == "failed" {
		return fmt.Errorf("%w: %s: %s", publish.ErrVerify, dest, strings.Join(out.Problems, "; "))
	}
	return nil
}

// checkFile hashes a pulled file against its manifest entry; "" when it
// matches.
func checkFile(path string, a publish.Asset) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	switch {
	case err != nil:
		return err.Error()
	case n != a.Size:
		return fmt.Sprintf("%d bytes, the manifest says %d", n, a.Size)
	case hex.EncodeToString(h.Sum(nil)) != a.SHA256:
		return "content differs from the manifest's sha256"
	}
	return ""
}
