package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports bytes moved for long transfers: a bar when a person is
// watching (stderr is a terminal), one plain line per finished asset
// otherwise, so that logs in CI and cron stay readable.
type progress struct {
	mu    sync.Mutex
	verb  string
	w     io.Writer
	bar   *progressbar.ProgressBar
	done  map[string]int64
	total map[string]int64
	quiet bool
}

func newProgress(verb string, quiet bool) *progress {
	p := &progress{verb: verb, w: os.Stderr, done: map[string]int64{}, total: map[string]int64{}, quiet: quiet}
	if !quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(verb),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// update is the callback publish and pull call as bytes move.
func (p *progress) update(asset string, done, total int64) {
	if p == nil || p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first := p.total[asset] == 0
	p.done[asset], p.total[asset] = done, total
	if p.bar != nil {
		var d, t int64
		for k := range p.total {
			d, t = d+p.done[k], t+p.total[k]
		}
		if first {
			p.bar.ChangeMax64(t)
		}
		_ = p.bar.Set64(d)
		return
	}
	if done == total && total > 0 && p.done[asset+"\x00reported"] == 0 {
		p.done[asset+"\x00reported"] = 1
		fmt.Fprintf(p.w, "lockstep: %s %s (%s)\n", p.verb, asset, bytesText(total))
	}
}

func (p *progress) finish() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
	}
}
