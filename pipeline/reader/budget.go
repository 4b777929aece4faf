package reader

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
)

// budget is one file's memory budget (invariant 8): the footer's decoded
// metadata, and the pages its columns hold at once, decompressed and
// decoded, count against it. A page is counted before it is decompressed,
// from the size its header declares, so a small file that declares huge
// pages (a decompression bomb spread over many columns) is refused before
// the memory is touched, not after.
//
// A page costs about twice its uncompressed size while it is read: the
// decompressed bytes and the values decoded from them (measured: four
// columns of one 120 MiB page each peaked at 992 MiB of RSS before this
// budget). So a page is counted twice its declared size, and the largest
// page a file may have is half the budget.
type budget struct {
	limit int64
	used  atomic.Int64
}

// reserve counts n more bytes, or says what would exceed the budget; what
// names the use in the error (called only then).
func (b *budget) reserve(n int64, what func() string) error {
	if b == nil {
		return nil
	}
	if used := b.used.Add(n); used > b.limit {
		b.used.Add(-n)
		return fmt.Errorf("%w: %s needs %d MiB with %d MiB already held, over the file's memory budget of %d MiB; rewrite the file with smaller pages or row groups, or raise the budget (file_memory: in the input spec)",
			ErrLimit, what(), mib(n), mib(used-n), mib(b.limit))
	}
	return nil
}

func (b *budget) release(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// footerCost is what a footer of n bytes is counted as: parquet-go's
// decoded metadata takes several times the encoded bytes.
func footerCost(n int64) int64 { return footerDecodeFactor * n }

const footerDecodeFactor = 4

// openMu serialises parquet.OpenFile, during which each of the file's
// columns takes its decompressor from codecTable (codec.go): the table is
// pointed at decompressors that count against this file's budget for just
// that call, so every page of the file is counted against its own budget.
var openMu sync.Mutex

// open reads no bytes through the file (its footer is served from memory),
// so the lock is held only while the footer is decoded.
func openCounted(b *budget, open func() (*parquet.File, error)) (*parquet.File, error) {
	openMu.Lock()
	defer openMu.Unlock()
	saved := codecTable
	defer func() { codecTable = saved }()
	for i, c := range codecTable {
		if bc, ok := c.(boundedCodec); ok {
			bc.budget = b
			codecTable[i] = bc
		}
	}
	return open()
}

// readPage reads the column chunk's next page within the file's budget,
// and returns the share the caller holds for it until the page is
// released (see hold). The decompressor reserved the page while decoding
// it. A page that brought the chunk's
// dictionary leaves its share with the column until the chunk is done, as
// the dictionary lives that long.
func (c *columnReader) readPage() (parquet.Page, int64, error) {
	before := c.budget.used.Load()
	p, err := c.pages.ReadPage()
	held := c.budget.used.Load() - before
	if err != nil {
		c.budget.release(held)
		return nil, 0, err
	}
	// Also counted once decoded: an uncompressed page (its bytes came from
	// the file itself, so it is no bomb) and a nested page's levels, a
	// byte a value each (small against the values the page was counted for).
	more := int64(len(p.RepetitionLevels()) + len(p.DefinitionLevels()))
	if held == 0 {
		more += 2 * p.Size()
	}
	if err := c.budget.reserve(more, func() string { return "a page's decoded values and levels" }); err != nil {
		c.budget.release(held)
		parquet.Release(p)
		return nil, 0, err
	}
	held += more
	if d := p.Dictionary(); d != nil && d != c.dict {
		c.dict = d
		c.dictHeld += held
		held = 0
	}
	return p, held, nil
}

// hold makes p the column's current page, releasing the one before it
// (its page and its share of the budget).
func (c *columnReader) hold(p parquet.Page, held int64) {
	c.releasePage()
	c.page, c.pageHeld = p, held
}
