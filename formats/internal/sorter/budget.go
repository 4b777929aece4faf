package sorter

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// DefaultMemory is the build's memory budget for sorting when neither the
// spec nor the command line sets one: small and fixed, so that a bundle's
// peak memory does not depend on the machine it lands on, and larger inputs
// spill to disk (which costs little: see docs/formats.md).
const DefaultMemory = 512 << 20

// DefaultBudget is the budget of a sorter no one sized: DefaultMemory, or a
// quarter of the memory this process may use where that is less (the least
// of the machine's MemTotal, its cgroup's limit and GOMEMLIMIT), so that a
// small container does not sort itself out of memory.
func DefaultBudget() int64 {
	limit := memoryLimit(readFile("/proc/meminfo"), readFile("/sys/fs/cgroup/memory.max"),
		readFile("/sys/fs/cgroup/memory/memory.limit_in_bytes"), debug.SetMemoryLimit(-1))
	if limit <= 0 {
		return DefaultMemory
	}
	return min(DefaultMemory, limit/4)
}

func readFile(path string) []byte {
	data, _ := os.ReadFile(path)
	return data
}

// memoryLimit is the least of the limits that are set: MemTotal from
// meminfo, a cgroup v2 memory.max or v1 limit_in_bytes ("max" or an absurd
// value means none), and the Go runtime's memory limit (math.MaxInt64: none).
func memoryLimit(meminfo, cgroup2, cgroup1 []byte, goLimit int64) int64 {
	var limit int64
	take := func(n int64) {
		if n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	for _, line := range bytes.Split(meminfo, []byte("\n")) {
		var kb int64
		if _, err := fmt.Sscanf(string(line), "MemTotal: %d kB", &kb); err == nil {
			take(kb * 1024)
		}
	}
	for _, c := range [][]byte{cgroup2, cgroup1} {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(c)), 10, 64); err == nil && n < 1<<60 {
			take(n)
		}
	}
	if goLimit < math.MaxInt64 {
		take(goLimit)
	}
	return limit
}
