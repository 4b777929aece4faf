package main

import (
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/formats/all"
	"github.com/lockstep-data/lockstep/pipeline"
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

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

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
   lockstep completion zsh > "${fpath[1]}/_lockstep"
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

const zshCompletion = `#compdef lockstep
# lockstep completion for zsh: lockstep completion zsh > "${fpath[1]}/_lockstep"
_lockstep() {
  local -a opts
  opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  _describe 'values' opts
}
compdef _lockstep lockstep
`
