package formatstest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// ChildEnv is set in a child that PeakRSS starts.
const ChildEnv = "LOCKSTEP_RSS_CHILD"

// PeakRSS reruns the current test binary for the test or benchmark named
// run, with ChildEnv=child, and returns the child's output and its peak
// resident set (VmHWM), which the child prints with PrintPeakRSS.
func PeakRSS(t testing.TB, run, child string, env ...string) (string, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.bench=^$", "-test.v", "-test.timeout=30m")
	if strings.HasPrefix(run, "^Benchmark") {
		cmd = exec.Command(os.Args[0], "-test.run=^$", "-test.bench="+run, "-test.benchtime=1x", "-test.v", "-test.timeout=30m")
	}
	cmd.Env = append(append(os.Environ(), ChildEnv+"="+child), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", child, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "peak_rss_bytes="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return string(out), n
		}
	}
	t.Fatalf("child %s printed no peak_rss_bytes:\n%s", child, out)
	return "", 0
}

// PrintPeakRSS prints this process's peak resident set for PeakRSS.
func PrintPeakRSS() {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			fmt.Printf("\npeak_rss_bytes=%d\n", kb*1024)
		}
	}
}
