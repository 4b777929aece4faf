package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// profileFlags are global flags that write pprof profiles of one command,
// for `go tool pprof`: where a build spends its time and memory.
func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the command to `FILE`"},
		&cli.StringFlag{Name: "memprofile", Usage: "write a heap profile (allocations) at the end of the command to `FILE`"},
	}
}

// startProfiles starts the CPU profile; the returned stop writes both
// profiles and is safe to call when neither was asked for.
func startProfiles(c *cli.Context) (stop func() error, err error) {
	cpu, mem := c.String("cpuprofile"), c.String("memprofile")
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("%w: --cpuprofile: %v", errUsage, err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if mem != "" {
		runtime.MemProfileRate = 512 << 10
	}
	return func() error {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				return err
			}
		}
		if mem == "" {
			return nil
		}
		f, err := os.Create(mem)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.Lookup("allocs").WriteTo(f, 0)
	}, nil
}
