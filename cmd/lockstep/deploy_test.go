package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// checkAgentArgs checks a deployment's lockstep command line against the
// app itself: every flag exists (globally or on pull), value flags have
// values, and it runs the agent. It returns the flag values.
func checkAgentArgs(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	app := newApp()
	flags := map[string]cli.Flag{}
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			flags[n] = f
		}
	}
	for _, c := range app.Commands {
		if c.Name == "pull" {
			for _, f := range c.Flags {
				for _, n := range f.Names() {
					flags[n] = f
				}
			}
		}
	}
	vals := map[string]string{}
	sawPull := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "pull" {
			sawPull = true
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := flags[name]
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("%s: %q is not a flag of lockstep pull", where, a)
			continue
		}
		if _, isBool := f.(*cli.BoolFlag); !isBool && !hasVal {
			if i+1 >= len(args) {
				t.Errorf("%s: %s has no value", where, a)
				continue
			}
			i++
			val = args[i]
		}
		vals[name] = val
	}
	if !sawPull {
		t.Errorf("%s: the command is not lockstep pull", where)
	}
	for _, need := range []string{"watch", "bundle", "dest", "trust-key", "listen"} {
		if _, ok := vals[need]; !ok {
			t.Errorf("%s: no --%s", where, need)
		}
	}
	return vals
}

// splitCommand splits a systemd ExecStart line: words, "quoted words".
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, in := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// TestDeployFiles: the systemd unit and the Kubernetes sidecar in docs/
// parse, run `lockstep pull --watch` with flags lockstep has, and agree
// with themselves (the probe's port is --listen's, the volume is --dest).
func TestDeployFiles(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "docs", "deploy")
	f, err := os.Open(filepath.Join(dir, "lockstep-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]map[string]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = strings.Trim(line, "[]")
			sections[sec] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("unit: %q is not KEY=VALUE in a section", line)
			}
			sections[sec][k] = v
		}
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if sections[s] == nil {
			t.Errorf("unit: no [%s]", s)
		}
	}
	exec := splitCommand(sections["Service"]["ExecStart"])
	if len(exec) == 0 || filepath.Base(exec[0]) != "lockstep" {
		t.Fatalf("unit: ExecStart %v", exec)
	}
	vals := checkAgentArgs(t, "unit", exec[1:])
	if rw := sections["Service"]["ReadWritePaths"]; rw != vals["dest"] {
		t.Errorf("unit: ReadWritePaths %q is not --dest %q", rw, vals["dest"])
	}

	data, err := os.ReadFile(filepath.Join(dir, "lockstep-agent-sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Kind string
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name         string
						Args         []string
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
						ReadinessProbe struct {
							HTTPGet struct {
								Path string
								Port int
							} `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &d); err != nil || d.Kind != "Deployment" {
		t.Fatalf("sidecar: %v (kind %q)", err, d.Kind)
	}
	found := false
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "lockstep-agent" {
			continue
		}
		found = true
		vals := checkAgentArgs(t, "sidecar", c.Args)
		if _, port, _ := strings.Cut(vals["listen"], ":"); port != "9464" || c.ReadinessProbe.HTTPGet.Port != 9464 || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("sidecar: --listen %q, readiness probe %+v", vals["listen"], c.ReadinessProbe.HTTPGet)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.MountPath == vals["dest"]
		}
		if !mounted {
			t.Errorf("sidecar: --dest %q is not a mounted volume", vals["dest"])
		}
	}
	if !found {
		t.Errorf("sidecar: no lockstep-agent container")
	}
}
