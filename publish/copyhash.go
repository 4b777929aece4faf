package publish

import (
	"hash"
	"io"
)

// copyBuffer is the chunk copyHashed reads, hashes and writes at a time.
const copyBuffer = 1 << 20

// copyHashed copies src to dst and feeds h the same bytes, hashing each
// chunk on a second goroutine while it is written: on a pull, SHA-256 and
// the write syscalls cost about the same, and doing them one after the
// other left a large blob at half the speed the disk takes. dst may be nil
// (hash only).
func copyHashed(dst io.Writer, src io.Reader, h hash.Hash) (int64, error) {
	if dst == nil {
		return io.CopyBuffer(h, src, make([]byte, copyBuffer))
	}
	todo := make(chan []byte)
	done := make(chan struct{})
	go func() {
		for b := range todo {
			h.Write(b)
			done <- struct{}{}
		}
	}()
	defer close(todo)
	buf := make([]byte, copyBuffer)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			todo <- buf[:k]
			_, werr := dst.Write(buf[:k])
			<-done // buf is read again only after h is done with it
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
