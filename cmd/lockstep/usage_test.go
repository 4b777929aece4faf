package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/publish"
	"github.com/lockstep-data/lockstep/publish/publishtest"
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
	r = run("help", "frobnicate")
	usage(t, r, `no command "frobnicate"`, "lockstep --help", []string{"help", "frobnicate"})
	r = run("--no-such-flag", "ls")
	usage(t, r, "no-such-flag", "lockstep --help", []string{"--no-such-flag", "ls"})

	app := newApp()
	required := map[string][]string{
		"promote": {"bundle", "release"}, "rollback": {"bundle"}, "republish": {"bundle", "release"},
		"pull": {"bundle", "dest"}, "status": {"dest"}, "show": {"bundle"}, "history": {"bundle"}, "diff": {"bundle"},
		"sign": {"bundle", "release", "sign-key"}, "rebuild": {"bundle", "release"},
	}
	key := filepath.Join(t.TempDir(), "k") // keygen's NAME: a run that gets this far writes there
	// Arguments that satisfy each command's count, and one too many.
	argsOK := map[string][]string{"show": {"R"}, "query": {"a"}, "diff": {"R1", "R2"}, "inspect": {"u"}, "completion": {"bash"}, "init": {"u"}, "keygen": {key}}
	tooMany := map[string][]string{"keygen": {key, "stray"}, "publish": {"a", "stray"}, "show": {"R", "stray"}, "diff": {"R1", "R2", "stray"}, "inspect": {"u", "stray"}, "completion": {"bash", "stray"}, "init": {"u", "stray"}, "help": {"ls", "stray"}}
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
		case name == "show" || name == "diff" || name == "inspect" || name == "publish" || name == "completion" || name == "init" || name == "help" || name == "keygen":
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
	// A spec error writes nothing: not even the store's folder.
	r = run("run", "--spec", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != exitUsage {
		t.Errorf("run with a missing spec: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(strings.TrimPrefix(store, "file://")); !os.IsNotExist(err) {
		t.Errorf("a usage or spec error created the store folder (%v)", err)
	}
	// Nor does a usage error leave a profile behind.
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	usage(t, run("--cpuprofile", prof, "ls", "stray"), "stray", "lockstep ls --help", []string{"--cpuprofile", "ls stray"})
	if _, err := os.Stat(prof); !os.IsNotExist(err) {
		t.Errorf("a usage error wrote --cpuprofile (%v)", err)
	}
	// A value flag last, with no value: an error, not the argument before it.
	usage(t, run("publish", "DIR", "--stage"), "--stage needs a value", "lockstep publish --help", []string{"publish DIR --stage"})
	// --help and -h, for the app and a command, are help (exit 0).
	for _, args := range [][]string{{"--help"}, {"-h"}, {"show", "--help"}, {"help", "show"}} {
		if r := run(args...); r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
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

// TestValidate: validate checks a spec with no input read and no store.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	spec := writeSpec(t, dir, "s3://no-such-bucket/places", "")
	var v validateOut
	okJSON(t, "file://"+filepath.Join(dir, "no-store"), &v, "validate", "--spec", spec)
	if len(v.Bundles) != 1 || v.Bundles[0].Bundle != "places" || len(v.Bundles[0].Assets) != 1 || v.Bundles[0].Assets[0].Format != "arrow" {
		t.Errorf("validate: %+v", v)
	}
	bad := writeSpec(t, dir, "/tmp/x", "{compresion: zstd}")
	r := lockstep(t, "file://"+filepath.Join(dir, "no-store"), "validate", "--spec", bad)
	if r.code != exitUsage || !strings.Contains(r.stderr, filepath.Base(bad)+":") || !strings.Contains(r.stderr, "compresion") {
		t.Errorf("validate of a misspelt option: exit %d, %q", r.code, r.stderr)
	}
}

// TestCompletion: the bash script completes commands in a real bash, and
// fish's script is generated.
func TestCompletion(t *testing.T) {
	script := ok(t, "mem://", "completion", "bash")
	bash := `source /dev/stdin; PATH="` + filepath.Dir(binary) + `:$PATH"; COMP_WORDS=(lockstep pu); COMP_CWORD=1; _lockstep_complete; echo "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "-c", bash)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "publish pull" {
		t.Errorf("bash completion of `lockstep pu`: %q, %v; want \"publish pull\"", out, err)
	}
	if fish := ok(t, "mem://", "completion", "fish"); !strings.Contains(fish, "complete -c lockstep") {
		t.Errorf("fish completion: %.200s", fish)
	}
}

// TestCLIDocs: docs/cli.md's reference part is generated from the command
// definitions, so it cannot drift. LOCKSTEP_UPDATE_DOCS=1 rewrites it.
func TestCLIDocs(t *testing.T) {
	const marker = "<!-- Generated from the command definitions by TestCLIDocs (LOCKSTEP_UPDATE_DOCS=1 go test ./cmd/lockstep -run TestCLIDocs): do not edit below. -->\n"
	path := filepath.Join(repoRoot(t), "docs", "cli.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, found := strings.Cut(string(data), marker)
	if !found {
		t.Fatalf("%s has no generated part (the marker line)", path)
	}
	app := newApp()
	app.Version = "" // the build's, not part of the reference
	md, err := app.ToMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	want := head + marker + "\n" + md + "\n" + jsonDocs()
	if want == string(data) {
		return
	}
	if os.Getenv("LOCKSTEP_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the commands: rerun with LOCKSTEP_UPDATE_DOCS=1", path)
}

// TestReorderArgs: flags move before arguments with their values; `--`
// ends flags; app flags after the command move before it; an argument
// that looks like a flag stays an argument.
func TestReorderArgs(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want string }{
		{"lockstep show R --bundle geo", "lockstep show --bundle geo R"},
		{"lockstep show R -b=geo -o json", "lockstep show -b=geo -o json R"},
		{"lockstep query names -- KEY", "lockstep query names KEY"},
		{"lockstep query --dest d names -- -5", "lockstep query --dest d -- names -5"},
		{"lockstep ls --store s3://b/p --bundle x", "lockstep --store s3://b/p ls --bundle x"},
		{"lockstep --store x verify --all R1 --deep R2", "lockstep --store x verify --all --deep R1 R2"},
		{"lockstep frobnicate --x y", "lockstep frobnicate --x y"},
		{"lockstep", "lockstep"},
		{"lockstep query --dest d ids -5", "lockstep query --dest d -- ids -5"},
		{"lockstep publish DIR --stage --generate-bash-completion", "lockstep publish DIR --stage --generate-bash-completion"},
		{"lockstep show R --bundle geo --generate-bash-completion", "lockstep show --bundle geo R --generate-bash-completion"},
	} {
		args, err := reorderArgs(app, strings.Fields(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got := strings.Join(args, " ")
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.in, got, c.want)
		}
	}
}

// TestStatus: status says what a pulled DIR serves, whether it still
// matches its manifest, and whether the channel has moved on.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	dest := filepath.Join(dir, "srv")
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	var first struct{ Release string }
	okJSON(t, store, &first, "run", "--spec", spec)
	ok(t, store, "pull", "--bundle", "places", "--dest", dest)
	var st statusOut
	okJSON(t, store, &st, "status", "--dest", dest, "--verify")
	if st.Release != first.Release || !st.UpToDate || st.Verified != "ok" || st.PulledAt.IsZero() || st.ChannelSeq != 1 {
		t.Fatalf("status after pull: %+v", st)
	}
	spec2 := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "{compression: lz4}")
	ok(t, store, "run", "--spec", spec2)
	okJSON(t, store, &st, "status", "--dest", dest)
	if st.UpToDate || st.ChannelRelease == first.Release || st.ChannelSeq != 2 || st.Verified != "at pull" {
		t.Fatalf("status after the channel moved: %+v", st)
	}
	// query --dest reads the pulled release alone: no store needed.
	if r := lockstep(t, "file://"+filepath.Join(dir, "no-store"), "query", "--dest", dest, "places"); r.code != 0 {
		t.Errorf("query --dest without a store: exit %d, %s", r.code, r.stderr)
	}
	// A pulled file changed on disk: --verify says which, exit 5.
	f := filepath.Join(dest, "current", "places.arrow")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	os.WriteFile(f, data, 0o644)
	r := lockstep(t, store, "status", "--dest", dest, "--verify")
	if r.code != exitVerify || !strings.Contains(r.stdout+r.stderr, "places.arrow") {
		t.Fatalf("status --verify of a changed file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestInit: init on the demo's Spark folders writes specs that validate
// and run accept, with an asset of each format the columns allow; it never
// overwrites a spec without --force.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	for _, c := range []struct {
		folder  string
		formats []string
	}{
		{"places", []string{"arrow", "kv", "fst"}}, // by asset name: places, places_by_id, places_name
		{"ip_ranges", []string{"arrow", "mmdb"}},
	} {
		spec := filepath.Join(dir, c.folder+".yaml")
		ok(t, store, "init", filepath.Join(repoRoot(t), "testdata", c.folder), "--spec", spec)
		var v validateOut
		okJSON(t, store, &v, "validate", "--spec", spec)
		var got []string
		for _, a := range v.Bundles[0].Assets {
			got = append(got, a.Format)
		}
		if strings.Join(got, ",") != strings.Join(c.formats, ",") {
			t.Errorf("init %s: assets of formats %v, want %v", c.folder, got, c.formats)
		}
		var res struct {
			Status   string `json:"status"`
			Promoted bool   `json:"promoted"`
		}
		okJSON(t, store, &res, "run", "--spec", spec)
		if res.Status != "published" || !res.Promoted {
			t.Errorf("run of init's %s spec: %+v", c.folder, res)
		}
		r := lockstep(t, store, "init", filepath.Join(repoRoot(t), "testdata", c.folder), "--spec", spec)
		usage(t, r, "--force", "lockstep init --help", []string{"init again"})
	}
}

// TestJSONOutputs runs every command that prints data with -o json: each
// prints one JSON value with no null in it (empty lists are [], absent
// strings ""), and diff lists option changes.
func TestJSONOutputs(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	dest := filepath.Join(dir, "srv")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := writeSpec(t, dir, places, "")
	spec2 := writeSpec(t, dir, places, "{compression: lz4}")
	var r1, r2 struct{ Release string }
	okJSON(t, store, &r1, "run", "--spec", spec)
	okJSON(t, store, &r2, "run", "--spec", spec2)
	var diff []publish.AssetChange
	okJSON(t, store, &diff, "diff", "--bundle", "places", r1.Release, r2.Release)
	if len(diff) != 1 || len(diff[0].Options) != 1 || diff[0].Options[0].Key != "compression" || diff[0].Options[0].After != "lz4" {
		t.Errorf("diff: %+v", diff)
	}
	for _, args := range [][]string{
		{"run", "--spec", spec},
		{"build", "--spec", spec, "--stage", filepath.Join(dir, "stage")},
		{"plan", "--spec", spec},
		{"publish", "--spec", spec},
		{"pull", "--bundle", "places", "--dest", dest},
		{"status", "--dest", dest},
		{"ls"},
		{"show", "--bundle", "places", r1.Release},
		{"history", "--bundle", "places"},
		{"query", "--dest", dest, "places"},
		{"diff", "--bundle", "places", r1.Release, r2.Release},
		{"verify", "--all"},
		{"gc", "--dry-run"},
		{"inspect", places},
		{"validate", "--spec", spec},
		{"init", places, "--spec", filepath.Join(dir, "init.yaml")},
		{"version"},
		{"promote", "--bundle", "places", "--release", r1.Release},
		{"rollback", "--bundle", "places"},
		{"republish", "--bundle", "places", "--release", r2.Release},
	} {
		out := ok(t, store, append([]string{args[0], "-o", "json"}, args[1:]...)...)
		dec := json.NewDecoder(strings.NewReader(out))
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Errorf("%v: not one JSON value (%v):\n%.300s", args, err, out)
			continue
		}
		// Exactly the documented type: no field docs/cli.md does not list.
		name := args[0]
		if name == "rollback" || name == "republish" {
			name = "promote"
		}
		documented := false
		for _, o := range jsonOutputs {
			if o.cmd != name {
				continue
			}
			documented = true
			typed := json.NewDecoder(strings.NewReader(out))
			typed.DisallowUnknownFields()
			if err := typed.Decode(reflect.New(reflect.TypeOf(o.typ)).Interface()); err != nil {
				t.Errorf("%v: output does not decode into its documented type %T: %v", args, o.typ, err)
			}
		}
		if !documented {
			t.Errorf("%v: no documented JSON type (jsonOutputs)", args)
		}
		if p := nullPath(v, "$"); p != "" {
			t.Errorf("%v: null at %s:\n%.500s", args, p, out)
		}
	}
}

// nullPath is the path of the first null in v, or "" (a query's rows are
// data, where null is a value).
func nullPath(v any, at string) string {
	if at == "$.result.rows" {
		return ""
	}
	switch x := v.(type) {
	case nil:
		return at
	case map[string]any:
		for _, k := range sortedNames(x) {
			if p := nullPath(x[k], at+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := nullPath(e, fmt.Sprintf("%s[%d]", at, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestREADMEExamples runs the README's examples, read from the README so
// they cannot drift: each `lockstep` line of its sh blocks, in order, in a
// temporary folder, with /data/spark/places the demo's places and
// /srv/places a temporary folder (the README's own `init` line writes
// lockstep.yaml), and `validate` on each yaml block.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "srv-places")
	store := "file://" + filepath.Join(dir, "store")
	run := func(args ...string) result {
		cmd := exec.Command(binary, append([]string{"--store", store}, args...)...)
		cmd.Dir = dir
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
	places := filepath.Join(repoRoot(t), "testdata", "places")
	if !strings.Contains(string(readme), "lockstep init /data/spark/places") {
		if r := run("init", places); r.code != 0 {
			t.Fatalf("init: %s", r.stderr)
		}
	}
	var block, lang string
	inBlock, commands, specs := false, 0, 0
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "```") {
			if inBlock && lang == "yaml" {
				path := filepath.Join(dir, fmt.Sprintf("readme-%d.yaml", specs))
				os.WriteFile(path, []byte(block), 0o644)
				if r := run("validate", "--spec", path); r.code != 0 {
					t.Errorf("README yaml block %d: validate exit %d: %s", specs, r.code, r.stderr)
				}
				specs++
			}
			inBlock, lang, block = !inBlock, strings.TrimPrefix(line, "```"), ""
			continue
		}
		if !inBlock {
			continue
		}
		block += line + "\n"
		if lang != "sh" || !strings.HasPrefix(line, "lockstep ") {
			continue
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.ReplaceAll(strings.ReplaceAll(line, "/srv/places", dest), "/data/spark/places", places)
		args := strings.Fields(line)[1:]
		if r := run(args...); r.code != 0 {
			t.Errorf("README: %s: exit %d\n%s%s", line, r.code, r.stdout, r.stderr)
		}
		commands++
	}
	if commands < 3 || specs < 1 {
		t.Fatalf("ran %d commands and %d specs from the README: its examples moved", commands, specs)
	}
}

// TestStoreErrors: on a real S3 server (MinIO), a mistyped bucket, refused
// credentials and a dead endpoint each give one line that says what to
// check; the SDK prints nothing of its own.
func TestStoreErrors(t *testing.T) {
	good := publishtest.MinIO(t, "releases")
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	noBucket := *u
	noBucket.Host = "no-such-bucket-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	q := u.Query()
	q.Set("endpoint", "http://127.0.0.1:1")
	deadEndpoint := *u
	deadEndpoint.RawQuery = q.Encode()
	for _, c := range []struct {
		store string
		env   []string
		want  string
	}{
		{noBucket.String(), nil, "the bucket (or container) does not exist"},
		{good, []string{"AWS_SECRET_ACCESS_KEY=wrong"}, "the store refused the credentials"},
		{deadEndpoint.String(), nil, "the store's endpoint did not answer"},
		// No credentials at all: the SDK tries the EC2 metadata service,
		// and prints no WARN line of its own (IMDSv1 fallback is off).
		{good, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, "no cloud credentials were found"},
		{good, []string{"AWS_PROFILE=lockstep-none", "AWS_CONFIG_FILE=/dev/null"}, "AWS_PROFILE names a profile"},
	} {
		r := cliEnv(t, c.store, c.env, "ls")
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != exitError || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("ls on %s %v: exit %d, want one line saying %q:\n%s", c.store, c.env, r.code, c.want, r.stderr)
		}
	}
}

// TestCellQuoting: text tables quote the strings plain text would confuse.
func TestCellQuoting(t *testing.T) {
	for in, want := range map[string]string{"Ba": "Ba", "Ba ": `"Ba "`, "": `""`, "a\tb": `"a\tb"`, "null": `"null"`, "Zürich": "Zürich"} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestSchemaSpecErrors: options the input's schema cannot satisfy (a kv
// key or an arrow column the input lacks) are spec errors found before any
// asset is written: exit 2, the spec's file and line, the input's columns,
// and no release in the store.
func TestSchemaSpecErrors(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	for _, asset := range []string{"{format: kv, input: places, options: {key: nosuch}}", "{format: arrow, input: places, options: {columns: [id, nosuch]}}"} {
		spec := filepath.Join(dir, "s.yaml")
		os.WriteFile(spec, []byte("bundles:\n  places:\n    inputs:\n      places: {url: "+places+"}\n    assets:\n      a: "+asset+"\n"), 0o644)
		r := lockstep(t, store, "run", "--spec", spec)
		if r.code != exitUsage || !strings.Contains(r.stderr, "s.yaml:6:") || !strings.Contains(r.stderr, `"nosuch"`) || !strings.Contains(r.stderr, `"population" (int64)`) {
			t.Errorf("%s: exit %d, %q", asset, r.code, r.stderr)
		}
	}
	var ls []lsBundle
	okJSON(t, store, &ls, "ls")
	if len(ls) != 0 {
		t.Errorf("the store holds %+v after spec errors", ls)
	}
}
