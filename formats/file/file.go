// Package file is the `file` format: any file shipped as is, such as the
// server binary, a model or a config. Its input is one file (an input with
// format: file), not Spark output; the pipeline copies its bytes, and
// records its mode so that a pull restores it (the executable bit of a
// binary).
package file

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lockstep-data/lockstep/formats"
)

// Format is the file format.
type Format struct{}

func (Format) Info() formats.Info {
	return formats.Info{
		Name:      "file",
		Version:   "1",
		MediaType: "application/octet-stream",
		Ext:       "", // pulled under the asset's name
		Raw:       true,
	}
}

// Config is a file asset's options.
type Config struct {
	mode fs.FileMode // 0: the input file's own (0644 where it has none)
}

// Configure reads `mode` (an octal string such as "0755").
func (Format) Configure(opts map[string]any) (formats.Config, error) {
	o := formats.NewOptions("file", opts)
	s := o.String("mode", "")
	if err := o.Finish(); err != nil {
		return nil, err
	}
	c := &Config{}
	if s != "" {
		m, err := ParseMode(s)
		if err != nil {
			return nil, fmt.Errorf("%w: file: mode %q: %v", formats.ErrBadOption, s, err)
		}
		c.mode = m
	}
	return c, nil
}

// ParseMode reads a permission mode such as "0755": the permission bits
// only, never setuid, setgid or sticky.
func ParseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 || n&0o400 == 0 {
		return 0, fmt.Errorf("give the permission bits in octal, readable by the owner, such as \"0755\" or \"0644\"")
	}
	return fs.FileMode(n), nil
}

// Mode is the mode the spec sets, and whether it sets one.
func (c *Config) Mode() (fs.FileMode, bool) { return c.mode, c.mode != 0 }

// NewWriter refuses: a file asset's bytes are its input's, copied by the
// pipeline, not written from records.
func (c *Config) NewWriter(io.Writer, *arrow.Schema) (formats.Writer, error) {
	return nil, fmt.Errorf("%w: file: a file asset copies a file input (format: file on the input), not Spark output", formats.ErrBadInput)
}

func (c *Config) Options() map[string]any {
	if c.mode == 0 {
		return map[string]any{}
	}
	return map[string]any{"mode": fmt.Sprintf("%04o", uint32(c.mode))}
}

// Open reads any file: it has no structure to check beyond its sha256,
// which pull and verify check.
func (Format) Open(r io.ReaderAt, size int64) (formats.Reader, error) {
	return &reader{size: size}, nil
}

type reader struct{ size int64 }

func (r *reader) Rows() int64                     { return 0 }
func (r *reader) Describe() map[string]any        { return map[string]any{"bytes": r.size} }
func (r *reader) Check(ctx context.Context) error { return nil }
func (r *reader) Close() error                    { return nil }

func (r *reader) Query(ctx context.Context, args []string, limit int) (*formats.Result, error) {
	return &formats.Result{Columns: []string{"bytes"}, Rows: [][]any{{r.size}}}, nil
}
