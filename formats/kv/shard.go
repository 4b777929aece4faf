package kv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/cockroachdb/pebble/sstable"

	"github.com/lockstep-data/lockstep/formats"
	"github.com/lockstep-data/lockstep/formats/internal/sst"
)

// maxShards bounds the shards option.
const maxShards = 256

// Sharding: the sorter emits every entry in key order, after the duplicate
// policy; the stream is cut into Shards() contiguous ranges of
// ceil(records/shards) entries each, so shards are balanced and shard i's
// last key is below shard i+1's first. (With duplicates: first or last the
// later shards hold fewer entries, and may be empty.) The merge stages each
// shard's entries in a file of its own under temp_dir; as soon as a shard is
// staged its own goroutine builds the table (blocks, compression, filter),
// up to GOMAXPROCS at once, while the merge goes on with the next shard. So
// the shards are written concurrently with each other and with the merge,
// for the cost of one sequential copy of the entries on disk.

var _ formats.ShardedConfig = (*config)(nil)

func (c *config) Shards() int { return int(c.shards) }

func (c *config) NewShardedWriter(open func(shard int) (io.Writer, error), schema *arrow.Schema) (formats.ShardedWriter, error) {
	w, err := c.newWriter(nil, schema)
	if err != nil {
		return nil, err
	}
	return &shardedWriter{writer: w, open: open, rows: make([]int64, c.shards), tempDir: c.tempDir}, nil
}

type shardedWriter struct {
	*writer
	open    func(shard int) (io.Writer, error)
	rows    []int64
	tempDir string
}

func (s *shardedWriter) ShardRows() []int64 { return s.rows }

func (s *shardedWriter) Close(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dir, err := os.MkdirTemp(s.tempDir, "lockstep-shards-")
	if err != nil {
		return fmt.Errorf("kv: shard folder: %w (set temp_dir to a writable folder)", err)
	}
	defer os.RemoveAll(dir)
	n := len(s.rows)
	per := (s.writer.rows + int64(n) - 1) / int64(n)
	var wg sync.WaitGroup
	defer wg.Wait() // before the folder goes
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var (
		shard   = -1
		f       *os.File
		bw      *bufio.Writer
		inShard int64
		hdr     [2 * binary.MaxVarintLen64]byte
	)
	// seal ends the current shard's staged entries and starts its writer.
	seal := func() error {
		if f == nil {
			return nil
		}
		err := bw.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("kv: stage shard %d of %d: %w (is temp_dir full?)", shard+1, n, err)
		}
		out, err := s.open(shard)
		if err != nil {
			return fmt.Errorf("kv: shard %d of %d: %w", shard+1, n, err)
		}
		wg.Add(1)
		go func(i int, path string) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			if err := writeShard(ctx, path, out, s.opts); err != nil {
				cancel(fmt.Errorf("kv: shard %d of %d: %w", i+1, n, err))
			}
		}(shard, f.Name())
		f = nil
		return nil
	}
	next := func() error {
		if err := seal(); err != nil {
			return err
		}
		shard++
		inShard = 0
		var err error
		if f, err = os.Create(filepath.Join(dir, fmt.Sprintf("shard-%04d", shard))); err != nil {
			return fmt.Errorf("kv: %w", err)
		}
		if bw == nil {
			bw = bufio.NewWriterSize(f, 1<<20)
		} else {
			bw.Reset(f)
		}
		return nil
	}
	err = next()
	if err == nil {
		err = s.finish(ctx, func(key, val []byte) error {
			if inShard == per && shard < n-1 {
				if err := next(); err != nil {
					return err
				}
			}
			k := binary.PutUvarint(hdr[:], uint64(len(key)))
			k += binary.PutUvarint(hdr[k:], uint64(len(val)))
			bw.Write(hdr[:k])
			bw.Write(key)
			bw.Write(val)
			s.rows[shard]++
			s.entries++
			inShard++
			return nil
		})
	}
	for err == nil && shard < n-1 {
		err = next() // empty shards, still valid tables
	}
	if err == nil {
		err = seal()
	} else if f != nil {
		f.Close()
	}
	wg.Wait()
	if cause := context.Cause(ctx); err == nil && cause != nil {
		err = cause
	}
	return err
}

// writeShard writes one shard's table from its staged entries.
func writeShard(ctx context.Context, path string, out io.Writer, opts sstable.WriterOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	sw := sstable.NewWriter(&sst.Writable{W: out}, opts)
	var buf []byte
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				sw.Close()
				return err
			}
		}
		kl, err := binary.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		vl, err2 := binary.ReadUvarint(br)
		if err = errors.Join(err, err2); err == nil {
			buf = slices.Grow(buf[:0], int(kl+vl))[:kl+vl]
			_, err = io.ReadFull(br, buf)
		}
		if err == nil {
			err = sw.Set(buf[:kl], buf[kl:])
		}
		if err != nil {
			sw.Close()
			return err
		}
	}
	return sw.Close()
}
