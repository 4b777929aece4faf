// Package sst holds what the SSTable formats (kv, geo) share around Pebble
// v1.1's sstable package: the output and input adapters, lockstep's table
// properties, and the feeder that builds blocks on another core.
package sst

import (
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/sstable"
)

// Writable is Pebble's output interface over the pipeline's writer; the
// pipeline owns flushing and closing.
type Writable struct{ W io.Writer }

func (o *Writable) Write(p []byte) error {
	_, err := o.W.Write(p)
	return err
}
func (o *Writable) Finish() error { return nil }
func (o *Writable) Abort()        {}

// Properties returns a collector that writes props into the table's user
// properties when the table is finished: a caller may still change the
// map until then (counts known only at the end).
func Properties(props map[string]string) func() sstable.TablePropertyCollector {
	return func() sstable.TablePropertyCollector { return &propCollector{props: props} }
}

type propCollector struct{ props map[string]string }

func (p *propCollector) Add(sstable.InternalKey, []byte) error { return nil }
func (p *propCollector) Name() string                          { return "lockstep" }
func (p *propCollector) Finish(user map[string]string) error {
	for k, v := range p.props {
		user[k] = v
	}
	return nil
}

// Open opens a table for reading, with the bloom filter lockstep writes.
func Open(r io.ReaderAt, size int64) (*sstable.Reader, error) {
	readable, err := sstable.NewSimpleReadable(&readerAt{r: r, size: size})
	if err != nil {
		return nil, err
	}
	return sstable.NewReader(readable, sstable.ReaderOptions{
		Filters: map[string]sstable.FilterPolicy{bloom.FilterPolicy(10).Name(): bloom.FilterPolicy(10)},
	})
}

// readerAt gives Pebble the file interface it asks for.
type readerAt struct {
	r    io.ReaderAt
	size int64
}

func (f *readerAt) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *readerAt) Close() error                            { return nil }
func (f *readerAt) Stat() (os.FileInfo, error)              { return fileInfo(f.size), nil }

type fileInfo int64

func (s fileInfo) Name() string       { return "asset.sst" }
func (s fileInfo) Size() int64        { return int64(s) }
func (s fileInfo) Mode() os.FileMode  { return 0o444 }
func (s fileInfo) ModTime() time.Time { return time.Time{} }
func (s fileInfo) IsDir() bool        { return false }
func (s fileInfo) Sys() any           { return nil }
