package sst

import (
	"github.com/cockroachdb/pebble/sstable"
)

// Feeder hands entries to a Pebble table writer on its own goroutine, in
// batches of about feedBatch bytes, so that building and compressing blocks
// (a quarter to a half of a kv build) runs on another core than reading,
// encoding and merging. Pebble's own Parallelism option only moves the
// writes of finished blocks. Entries reach the table in the order given;
// the bytes are the same as calling Set directly.
type Feeder struct {
	sw   *sstable.Writer
	cur  *feedBatch
	todo chan *feedBatch
	free chan *feedBatch
	done chan error
}

// feedBatch is entries back to back, with the end of each key and value.
type feedBatch struct {
	buf  []byte
	ends []int
}

const feedBytes = 256 << 10

// NewFeeder starts feeding sw.
func NewFeeder(sw *sstable.Writer) *Feeder {
	f := &Feeder{sw: sw, cur: &feedBatch{}, todo: make(chan *feedBatch, 1), free: make(chan *feedBatch, 2), done: make(chan error, 1)}
	f.free <- &feedBatch{}
	go f.run()
	return f
}

func (f *Feeder) run() {
	var err error
	for b := range f.todo {
		start := 0
		for i := 0; err == nil && i < len(b.ends); i += 2 {
			k, v := b.ends[i], b.ends[i+1]
			err = f.sw.Set(b.buf[start:k], b.buf[k:v])
			start = v
		}
		b.buf, b.ends = b.buf[:0], b.ends[:0]
		f.free <- b
	}
	f.done <- err
}

// Set queues an entry; an error from the table shows at Close.
func (f *Feeder) Set(key, val []byte) error {
	b := f.cur
	b.buf = append(b.buf, key...)
	b.ends = append(b.ends, len(b.buf))
	b.buf = append(b.buf, val...)
	b.ends = append(b.ends, len(b.buf))
	if len(b.buf) >= feedBytes {
		return f.flush()
	}
	return nil
}

func (f *Feeder) flush() error {
	f.todo <- f.cur
	f.cur = <-f.free
	return nil
}

// Close writes what is queued and finishes the table; after a failure it
// only releases the table.
func (f *Feeder) Close(failed bool) error {
	if !failed && len(f.cur.ends) > 0 {
		f.todo <- f.cur
	}
	close(f.todo)
	err := <-f.done
	if failed || err != nil {
		f.sw.Close()
		return err
	}
	return f.sw.Close()
}
