package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// memLimit is the peak RSS a scan of any input size must stay under.
const memLimit = 512 << 20

// TestScanMemory writes a Spark-layout input (part-*.parquet + _SUCCESS,
// six columns, snappy) and reads it through Discover/Schema/Scan in a child
// process, whose peak RSS (VmHWM) must stay under 512 MB. The input is
// 2 GB (about 30 s to write on two cores) unless LOCKSTEP_MEM_INPUT_MB says
// otherwise; -short skips it.
func TestScanMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes hundreds of MB")
	}
	mb := 2048
	if v := os.Getenv("LOCKSTEP_MEM_INPUT_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			t.Fatalf("LOCKSTEP_MEM_INPUT_MB=%q: %v", v, err)
		}
	}
	const rowsPerFile, groupRows = 1_000_000, 500_000
	const bytesPerRow = 60 // measured: about 64 bytes a row of layoutRow, snappy
	files := (mb<<20)/(rowsPerFile*bytesPerRow) + 1
	dir := t.TempDir()
	t0 := time.Now()
	size := writeSparkLayout(t, dir, files, rowsPerFile, groupRows)
	t.Logf("wrote %d files, %d MB in %s", files, size>>20, time.Since(t0).Round(time.Millisecond))
	if size < int64(mb)<<20 {
		t.Fatalf("wrote %d MB, wanted at least %d", size>>20, mb)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScanMemoryChild$", "-test.v")
	readers := "4" // one per core on a 4-core machine
	if v := os.Getenv("LOCKSTEP_MEM_READERS"); v != "" {
		readers = v
	}
	cmd.Env = append(os.Environ(), "LOCKSTEP_MEM_CHILD="+dir, "GOMAXPROCS="+readers)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var rows, hwm int64
	var secs float64
	i := strings.Index(string(out), "scan: ")
	if i < 0 {
		t.Fatalf("child printed no result:\n%s", out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "scan: rows=%d hwm=%d secs=%g", &rows, &hwm, &secs); err != nil {
		t.Fatalf("child output: %v\n%s", err, out)
	}
	if rows != int64(files*rowsPerFile) {
		t.Errorf("child read %d rows, want %d", rows, files*rowsPerFile)
	}
	t.Logf("read %d MB, %d rows in %.1fs: %.2fM rows/s, peak RSS %d MB (%s readers)", size>>20, rows, secs, float64(rows)/secs/1e6, hwm>>20, readers)
	if hwm >= memLimit {
		t.Errorf("peak RSS %d MB reading %d MB, limit %d MB", hwm>>20, size>>20, memLimit>>20)
	}
}

// TestScanMemoryChild is TestScanMemory's child: it scans LOCKSTEP_MEM_CHILD
// and prints the rows, its peak RSS and the time taken.
func TestScanMemoryChild(t *testing.T) {
	dir := os.Getenv("LOCKSTEP_MEM_CHILD")
	if dir == "" {
		t.Skip("run by TestScanMemory")
	}
	ctx := context.Background()
	t0 := time.Now()
	src, _, err := Discover(ctx, "mem", "file://"+dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := src.Scan(ctx, schema, func(arrow.RecordBatch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	secs := time.Since(t0).Seconds()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var hwm int64
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			hwm = kb << 10
		}
	}
	fmt.Printf("scan: rows=%d hwm=%d secs=%g\n", rows, hwm, secs)
}
