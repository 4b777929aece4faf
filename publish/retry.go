package publish

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"gocloud.dev/gcerrors"
)

// transient reports whether err is worth retrying: the service said so, or S3
// answered a conditional write with 409 ConditionalRequestConflict (which
// gocloud reports as Unknown), meaning "another conditional write to this key
// is in flight; try again".
func transient(err error) bool {
	if err == nil || errors.Is(err, ErrExists) || errors.Is(err, context.Canceled) {
		return false
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) && coded.ErrorCode() == "ConditionalRequestConflict" {
		return true
	}
	switch gcerrors.Code(err) {
	case gcerrors.ResourceExhausted, gcerrors.Internal:
		return true
	}
	return false
}

const retryAttempts = 6

// retryTransient runs fn until it succeeds, fails for good, or has tried
// retryAttempts times, with jittered exponential backoff.
func retryTransient(ctx context.Context, fn func() error) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if !transient(err) || attempt == retryAttempts {
			return err
		}
		if err := sleep(ctx, jitter(delay)); err != nil {
			return err
		}
		delay *= 2
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// opHooks are the crash and interleaving test hooks.
//   - LOCKSTEP_CRASH_AT_OP=N: the process kills itself with SIGKILL just
//     before its Nth store operation, as a power cut would. Tests use it to
//     prove that a crash at any point leaves the store readable.
//   - LOCKSTEP_PAUSE_AT_OP=N with LOCKSTEP_PAUSE_FILE=F: just before its Nth
//     store operation the process creates F and waits until F is removed.
//     Tests run another command (gc) meanwhile, to prove the protocol holds
//     however the two interleave.
//
// The count is per process, across stores.
type opHooks struct {
	crashAt, pauseAt int64
	pauseFile        string
}

var opCount atomic.Int64

func hooksFromEnv() *opHooks {
	crash, _ := strconv.ParseInt(os.Getenv("LOCKSTEP_CRASH_AT_OP"), 10, 64)
	pause, _ := strconv.ParseInt(os.Getenv("LOCKSTEP_PAUSE_AT_OP"), 10, 64)
	file := os.Getenv("LOCKSTEP_PAUSE_FILE")
	if crash <= 0 && (pause <= 0 || file == "") {
		return nil
	}
	return &opHooks{crashAt: crash, pauseAt: pause, pauseFile: file}
}

func (h *opHooks) op(ctx context.Context, _ string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h == nil {
		return nil
	}
	n := opCount.Add(1)
	if n == h.crashAt {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	if n == h.pauseAt && h.pauseFile != "" {
		if err := os.WriteFile(h.pauseFile, nil, 0o644); err != nil {
			return err
		}
		for {
			if _, err := os.Stat(h.pauseFile); errors.Is(err, os.ErrNotExist) {
				break
			}
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// StoreOps is how many store operations the process has made, counted only
// while a test hook is set.
func StoreOps() int64 { return opCount.Load() }
