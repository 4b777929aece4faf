package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
)

// batchesPerFile is how many conformed batches one file's reader may hold
// ready before it waits for the consumer.
const batchesPerFile = 1

// fileScan is one part file's reader: its batches, in order, then its error.
type fileScan struct {
	recs         chan arrow.RecordBatch
	err          error // set before recs is closed
	sparkVersion string
}

// maxDefaultParallelism caps the readers Scan starts by default.
const maxDefaultParallelism = 4

// Scan streams every record of the source in the canonical order, each
// conformed to schema (from Schema): missing columns are null, widened ones
// cast, partition values appended. fn owns a record only for the call and is
// called from one goroutine at a time.
//
// Part files are read by up to Parallelism goroutines (when 0, one per core
// up to maxDefaultParallelism: each reader holds a row group's batch, about
// 100 MB for Spark's default row groups, so memory stays bounded on big
// machines too), and their batches handed to fn file by file, so the order is the same as a
// sequential read (invariant 10). Memory is bounded: at most Parallelism
// files are open, each with at most batchesPerFile batches waiting.
// It returns the row count and the Spark version named in the footers.
func (s *Source) Scan(ctx context.Context, schema *arrow.Schema, fn func(arrow.RecordBatch) error) (rows int64, sparkVersion string, err error) {
	n := s.Parallelism
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), maxDefaultParallelism)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	files := make([]*fileScan, len(s.Files))
	for i := range files {
		files[i] = &fileScan{recs: make(chan arrow.RecordBatch, batchesPerFile)}
	}
	slots := make(chan struct{}, n) // a slot is freed when the consumer finishes a file
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the launcher: starts file i's reader once a slot is free
		defer wg.Done()
		for i := range files {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				for _, f := range files[i:] {
					f.err = ctx.Err()
					close(f.recs)
				}
				return
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				s.readFile(ctx, schema, i, files[i])
			}(i)
		}
	}()
	defer func() {
		cancel()
		for _, f := range files { // drain what readers left, so they finish
			for rec := range f.recs {
				rec.Release()
			}
		}
		wg.Wait()
	}()
	for i, f := range files {
		if s.onFile != nil {
			s.onFile(s.URL + "/" + s.Files[i].Path)
		}
		for rec := range f.recs {
			rows += rec.NumRows()
			err := fn(rec)
			rec.Release()
			if err != nil {
				return 0, "", err // the consumer's own error, not the input's
			}
		}
		if f.err != nil {
			return 0, "", s.scanErr(f.err)
		}
		if f.sparkVersion != "" {
			sparkVersion = f.sparkVersion
		}
		<-slots
	}
	return rows, sparkVersion, nil
}

func (s *Source) scanErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrInput) {
		return err
	}
	return fmt.Errorf("%w: input %q: %w", ErrInput, s.Name, err)
}

// readFile reads file i into out.recs, closing it when done.
func (s *Source) readFile(ctx context.Context, schema *arrow.Schema, i int, out *fileScan) {
	in := s.Files[i]
	defer close(out.recs)
	defer func() {
		if p := recover(); p != nil {
			out.err = fmt.Errorf("%w: %s: panic while conforming: %v", errConform, in.Path, p)
		}
	}()
	f, err := s.open(ctx, in)
	if err != nil {
		out.err = err
		return
	}
	conform, err := s.conformer(f.Schema(), schema, i)
	if err != nil {
		out.err = fmt.Errorf("%w: input %q: %s: %v", ErrInput, s.Name, in.Path, err)
		return
	}
	if v, ok := f.KeyValue("org.apache.spark.version"); ok {
		out.sparkVersion = v
	}
	out.err = f.Records(ctx, 0, func(rec arrow.RecordBatch) error {
		c, err := conform(ctx, rec)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errConform, in.Path, err)
		}
		select {
		case out.recs <- c:
			return nil
		case <-ctx.Done():
			c.Release()
			return ctx.Err()
		}
	})
}
