package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Usage errors, one mechanism for all of them (exit 2, one line that says
// what is wrong and which --help to read): urfave/cli's own parse errors,
// unknown commands, missing required flags, wrong argument counts and bad
// flag values all become errUsage here.

// usageErr is a usage error for command cmd ("" for the app).
func usageErr(cmd string, format string, a ...any) error {
	help := "lockstep --help"
	if cmd != "" {
		help = "lockstep " + cmd + " --help"
	}
	return fmt.Errorf("%w: %s (see %s)", errUsage, fmt.Sprintf(format, a...), help)
}

// argSpec says how many arguments a command takes; max -1 is any number.
type argSpec struct{ min, max int }

var (
	noArgs   = argSpec{0, 0}
	oneArg   = argSpec{1, 1}
	anyArgs  = argSpec{0, -1}
	twoArgs  = argSpec{2, 2}
	optArg   = argSpec{0, 1}
	someArgs = argSpec{1, -1}
)

// strict wraps every command of app: a parse error is a usage error, its
// required flags (listed in required, by command) are checked without
// printing the whole help, and its argument count is checked against args.
func strict(app *cli.App, args map[string]argSpec, required map[string][]string) {
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageErr("", "%v", err)
	}
	app.CommandNotFound = nil
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usageErr("", "unknown command %q", c.Args().First())
		}
		return cli.ShowAppHelp(c)
	}
	for _, cmd := range app.Commands {
		name := cmd.Name
		cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return usageErr(name, "%v", err)
		}
		for _, f := range cmd.Flags {
			if r, ok := f.(interface{ IsRequired() bool }); ok && r.IsRequired() {
				panic("lockstep: flag " + f.Names()[0] + " of " + name + " uses cli's Required, which prints the whole help: list it in required")
			}
		}
		spec, ok := args[name]
		if !ok {
			spec = noArgs
		}
		need := required[name]
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			for _, flag := range need {
				if !c.IsSet(flag) {
					return usageErr(name, "missing --%s", flag)
				}
			}
			switch n := c.NArg(); {
			case n < spec.min:
				return usageErr(name, "%s needs %s", name, argWords(cmd))
			case spec.max >= 0 && n > spec.max:
				extra := c.Args().Slice()[spec.max:]
				if spec.max == 0 {
					return usageErr(name, "%s takes no arguments, got %q", name, extra)
				}
				return usageErr(name, "%s takes %s; unexpected %q", name, argWords(cmd), extra)
			}
			// Profiles start once the command line is known to be good, so
			// a usage error leaves no profile file behind.
			stop, err := startProfiles(c)
			if err != nil {
				return err
			}
			err = action(c)
			if serr := stop(); err == nil {
				err = serr
			}
			return err
		}
	}
}

func argWords(cmd *cli.Command) string {
	if cmd.ArgsUsage == "" {
		return "no arguments"
	}
	return cmd.ArgsUsage
}

// reorderArgs lets flags come after arguments, as most CLIs allow:
// `lockstep show R --bundle geo` is `lockstep show --bundle geo R`. The
// command's flags (and the app's, which may follow the command too) move
// before its arguments; a flag's value moves with it. After `--` every
// token is an argument. Arguments that look like flags (a key "-5") are
// kept as arguments by a `--` before them.
func reorderArgs(app *cli.App, argv []string) ([]string, error) {
	// Shell completion asks with a last argument urfave/cli reads only
	// there: reorder the rest, keep it last.
	const completion = "--generate-bash-completion"
	if n := len(argv); n > 1 && argv[n-1] == completion {
		out, err := reorderArgs(app, argv[:n-1])
		if err != nil {
			return argv, nil // let urfave/cli complete what it can
		}
		return append(out, completion), nil
	}
	if len(argv) < 2 {
		return argv, nil
	}
	takesValue := func(flags []cli.Flag) map[string]bool {
		m := map[string]bool{}
		for _, f := range flags {
			_, isBool := f.(*cli.BoolFlag)
			for _, n := range f.Names() {
				m[n] = !isBool
			}
		}
		m["help"], m["h"] = false, false
		return m
	}
	appFlags := takesValue(app.Flags)
	name := func(tok string) (string, bool) { // "--x=v" → "x", true when inline
		n := strings.TrimLeft(tok, "-")
		if i := strings.IndexByte(n, '='); i >= 0 {
			return n[:i], true
		}
		return n, false
	}
	// A negative number ("-5", a key) is an argument, not a flag.
	isFlag := func(tok string) bool {
		return len(tok) > 1 && tok[0] == '-' && tok != "--" && !(tok[1] >= '0' && tok[1] <= '9')
	}
	// The app's flags, up to the command.
	out := []string{argv[0]}
	i := 1
	for i < len(argv) && isFlag(argv[i]) {
		n, inline := name(argv[i])
		out = append(out, argv[i])
		if appFlags[n] && !inline && i+1 < len(argv) {
			out = append(out, argv[i+1])
			i++
		}
		i++
	}
	if i >= len(argv) {
		return out, nil
	}
	cmd := app.Command(argv[i])
	if cmd == nil || cmd.SkipFlagParsing {
		return append(out, argv[i:]...), nil
	}
	cmdFlags := takesValue(cmd.Flags)
	var global, flags, positional []string
	rest := argv[i+1:]
	for j := 0; j < len(rest); j++ {
		tok := rest[j]
		if tok == "--" {
			positional = append(positional, rest[j+1:]...)
			break
		}
		if !isFlag(tok) {
			positional = append(positional, tok)
			continue
		}
		n, inline := name(tok)
		dst := &flags
		value, known := cmdFlags[n]
		if !known {
			if v, ok := appFlags[n]; ok {
				dst, value, known = &global, v, true
			}
		}
		*dst = append(*dst, tok)
		if known && value && !inline {
			if j+1 == len(rest) {
				// Moved before the arguments, it would take one as its value.
				return nil, usageErr(cmd.Name, "flag %s needs a value", tok)
			}
			*dst = append(*dst, rest[j+1])
			j++
		}
	}
	out = append(out, global...)
	out = append(out, argv[i])
	out = append(out, flags...)
	for _, p := range positional {
		if strings.HasPrefix(p, "-") {
			out = append(out, "--")
			break
		}
	}
	return append(out, positional...), nil
}
