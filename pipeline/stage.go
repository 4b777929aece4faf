package pipeline

import (
	"io"
)

// stageWriter is what a format writes an asset to: it fills 1 MiB buffers
// and hands each full one to a goroutine that hashes it, counts it and
// writes it to the staging file, so that SHA-256 and the write syscalls run
// beside the format's own work instead of after it, and never as a second
// pass over the file. Flush waits for everything written so far; the first
// error of the goroutine is returned by the next Write or Flush.
type stageWriter struct {
	out  io.Writer
	cur  []byte
	todo chan []byte
	free chan []byte
	errc chan error
	err  error
}

const stageBuffer = 1 << 20

func newStageWriter(out io.Writer) *stageWriter {
	w := &stageWriter{out: out, cur: make([]byte, 0, stageBuffer), todo: make(chan []byte, 1),
		free: make(chan []byte, 2), errc: make(chan error, 1)}
	w.free <- make([]byte, 0, stageBuffer)
	go w.run()
	return w
}

func (w *stageWriter) run() {
	var err error
	for b := range w.todo {
		if b == nil { // a flush marker
			w.errc <- err
			continue
		}
		if err == nil {
			_, err = w.out.Write(b)
		}
		w.free <- b[:0]
	}
}

func (w *stageWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur = w.cur[:len(w.cur)+k]
		p = p[k:]
		if len(w.cur) == cap(w.cur) {
			w.todo <- w.cur
			w.cur = <-w.free
		}
	}
	return n, nil
}

// Flush writes out what is buffered and waits until the goroutine has
// written it all.
func (w *stageWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.cur) > 0 {
		w.todo <- w.cur
		w.cur = <-w.free
	}
	w.todo <- nil
	w.err = <-w.errc
	return w.err
}

// Close stops the goroutine; the writer is not used afterwards.
func (w *stageWriter) Close() {
	if w.todo != nil {
		close(w.todo)
		w.todo = nil
	}
}
