// Package inputs remembers which input file each record ordinal came from,
// so that a writer's errors can name files (a duplicate key names both).
package inputs

import (
	"fmt"
	"sort"
)

// Files maps record ordinals to the input file they were read from. The
// pipeline tells a writer where each file starts (formats.FileStarter); a
// writer fed without it names records by ordinal only.
type Files struct {
	starts []int64
	paths  []string
}

// Start records that the record with ordinal ord is the first of path.
func (f *Files) Start(ord int64, path string) {
	if n := len(f.starts); n > 0 && f.starts[n-1] == ord {
		f.paths[n-1] = path // the previous file had no records
		return
	}
	f.starts = append(f.starts, ord)
	f.paths = append(f.paths, path)
}

// Name describes the record with ordinal ord: "record 12 of FILE" where the
// file is known ("record 12" counts from 0 within that file), else "record 12".
func (f *Files) Name(ord int64) string {
	i := sort.Search(len(f.starts), func(i int) bool { return f.starts[i] > ord }) - 1
	if i < 0 {
		return fmt.Sprintf("record %d", ord)
	}
	return fmt.Sprintf("record %d of %s", ord-f.starts[i], f.paths[i])
}
