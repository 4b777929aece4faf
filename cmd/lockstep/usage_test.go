package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// usage checks a run is a usage error: exit 2, nothing on stdout, and one
// line on stderr that says what is wrong (want) and which --help to read.
func usage(t *testing.T, r result, want, help string, args []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	switch {
	case r.code != exitUsage:
		t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
	case r.stdout != "":
		t.Errorf("%v: printed to stdout on a usage error:\n%s", args, r.stdout)
	case len(lines) != 1:
		t.Errorf("%v: %d lines on stderr, want one:\n%s", args, len(lines), r.stderr)
	case !strings.Contains(lines[0], want) || !strings.Contains(lines[0], help):
		t.Errorf("%v: %q, want it to mention %q and %q", args, lines[0], want, help)
	}
}

// TestUsageErrors walks every command: an unknown flag, a bad flag value,
// a missing required flag and an extra argument are each exit 2 with one
// line naming the problem and the command's --help; so is an unknown
// command. None touches a store (the store given does not exist).
func TestUsageErrors(t *testing.T) {
	store := "file://" + filepath.Join(t.TempDir(), "none")
	run := func(args ...string) result { return lockstep(t, store, args...) }

	r := run("frobnicate")
	usage(t, r, `unknown command "frobnicate"`, "lockstep --help", []string{"frobnicate"})
	r = run("--no-such-flag", "ls")
	usage(t, r, "no-such-flag", "lockstep --help", []string{"--no-such-flag", "ls"})

	app := newApp()
	required := map[string][]string{
		"promote": {"bundle", "release"}, "rollback": {"bundle"}, "republish": {"bundle", "release"},
		"pull": {"bundle", "dest"}, "show": {"bundle"}, "history": {"bundle"}, "diff": {"bundle"},
	}
	// Arguments that satisfy each command's count, and one too many.
	argsOK := map[string][]string{"show": {"R"}, "query": {"a"}, "diff": {"R1", "R2"}, "inspect": {"u"}}
	tooMany := map[string][]string{"publish": {"a", "stray"}, "show": {"R", "stray"}, "diff": {"R1", "R2", "stray"}, "inspect": {"u", "stray"}}
	for _, cmd := range app.Commands {
		name := cmd.Name
		help := "lockstep " + name + " --help"
		// What satisfies the required flags.
		var req []string
		for _, f := range required[name] {
			req = append(req, "--"+f, "x")
		}
		args := append([]string{name, "--no-such-flag"}, argsOK[name]...)
		usage(t, run(args...), "no-such-flag", help, args)
		for _, f := range required[name] {
			var others []string
			for _, g := range required[name] {
				if g != f {
					others = append(others, "--"+g, "x")
				}
			}
			args := append(append([]string{name}, others...), argsOK[name]...)
			usage(t, run(args...), "missing --"+f, help, args)
		}
		extra := tooMany[name]
		switch {
		case extra == nil && name != "verify" && name != "query":
			extra = []string{"stray"} // commands of no arguments
		case name == "show" || name == "diff" || name == "inspect" || name == "publish":
		default:
			extra = nil // any number
		}
		if extra != nil {
			args := append(append([]string{name}, req...), extra...)
			usage(t, run(args...), "stray", help, args)
		}
		for _, f := range cmd.Flags {
			switch f.(type) {
			case *cli.IntFlag, *cli.Int64Flag, *cli.DurationFlag:
				args := append(append([]string{name}, req...), "--"+f.Names()[0], "abc")
				args = append(args, argsOK[name]...)
				usage(t, run(args...), "abc", help, args)
			}
		}
	}
	usage(t, run("pull", "--bundle", "b", "--dest", t.TempDir(), "--keep", "0"), "--keep 0", "lockstep pull --help", []string{"pull --keep 0"})
}

// TestFlagsAfterArguments: flags may follow arguments, `--` ends flags, and
// app flags may follow the command.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	var res struct {
		Release string `json:"release"`
	}
	okJSON(t, store, &res, "run", "--spec", spec)
	// show R --bundle places -o json: the flags after R are flags.
	var m struct {
		Release string `json:"release"`
	}
	okJSON(t, store, &m, "show", res.Release, "--bundle", "places")
	if m.Release != res.Release {
		t.Fatalf("show %s: %+v", res.Release, m)
	}
	// The app's --store after the command.
	r := cliEnv(t, "file:///nonexistent-store", nil, "ls", "--store", store, "-o", "json")
	if r.code != 0 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, res.Release) {
		t.Fatalf("ls --store after the command: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestTyposAreErrors: a mistyped store, bundle or channel is an error that
// names it and what exists, not an empty answer.
func TestTyposAreErrors(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	ok(t, store, "run", "--spec", spec)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "file://" + filepath.Join(dir, "stor"), "ls"}, "does not exist"},
		{[]string{"--store", "file:///nonexistent/dir", "run", "--spec", spec}, "parent folder"},
		{[]string{"ls", "--bundle", "nobundle"}, `no bundle "nobundle" (it has: "places")`},
		{[]string{"history", "--bundle", "places", "--channel", "prod"}, `no channel "prod" (it has: "production")`},
		{[]string{"history", "--bundle", "place"}, `no bundle "place"`},
	} {
		r := lockstep(t, store, c.args...)
		if r.code != exitError || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 1 naming %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// A mistyped input scheme is a spec error with the spec's file and line.
	bad := writeSpec(t, dir, "s4://bucket/places", "{compression: lz4}")
	r := lockstep(t, store, "build", "--spec", bad)
	if r.code != exitUsage || !strings.Contains(r.stderr, `unknown scheme "s4"`) || !strings.Contains(r.stderr, filepath.Base(bad)+":") {
		t.Errorf("s4:// input: exit %d, %q", r.code, r.stderr)
	}
}

// TestStageCleaned: run removes the staged copy once the store holds the
// release, unless --keep-stage; build keeps its output, and creates no
// store.
func TestStageCleaned(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	staged := func(stage string) int {
		entries, _ := filepath.Glob(filepath.Join(stage, "*", "*"))
		return len(entries)
	}
	ok(t, store, "run", "--spec", spec, "--stage", filepath.Join(dir, "s1"))
	if n := staged(filepath.Join(dir, "s1")); n != 0 {
		t.Errorf("run left %d staged releases", n)
	}
	spec2 := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "{compression: lz4}")
	ok(t, store, "run", "--keep-stage", "--spec", spec2, "--stage", filepath.Join(dir, "s2"))
	if n := staged(filepath.Join(dir, "s2")); n != 1 {
		t.Errorf("run --keep-stage kept %d staged releases, want 1", n)
	}
	other := filepath.Join(dir, "other-store")
	ok(t, "file://"+other, "build", "--spec", spec, "--stage", filepath.Join(dir, "s3"))
	if n := staged(filepath.Join(dir, "s3")); n != 1 {
		t.Errorf("build kept %d staged releases, want 1", n)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("build created the store folder %s (%v)", other, err)
	}
	var v struct {
		Version string `json:"version"`
	}
	okJSON(t, store, &v, "version")
	if v.Version != "test" {
		t.Errorf("version -o json: %+v", v)
	}
}
