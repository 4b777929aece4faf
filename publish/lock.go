package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Store leases: the one mechanism that keeps gc from deleting what a writer
// relies on (invariant 11).
//
// A writer that relies on objects already in the store (publish reusing a
// blob, a channel move naming a release, run doing both, repair) holds a
// shared lease; gc, the only command that deletes, holds an exclusive one.
// A lease is an object locks/<kind>-<random>.json. To take one, a process creates
// its object and then lists locks/: if it sees a live lease that conflicts
// (any other lease, for an exclusive one; an exclusive one, for a shared
// one), it deletes its own and tries again later. Of two conflicting
// processes, the one that created its object second lists after the first's
// object exists (every backend lists what was written before), so it always
// sees the first and backs off: gc's decide-then-delete never overlaps a
// writer's check-then-reference, whatever the timing. Both may back off;
// jittered retries settle it. This is restic's lock protocol.
//
// A lease lives LeaseTTL past its last refresh. The holder refreshes it
// every LeaseTTL/4 (a new object, then the old one deleted) and cancels its
// own work if it cannot, so it never acts on a lease others may think has
// expired. A lease whose holder crashed stops counting after LeaseTTL, or at
// once when it names a process on this host that is gone.

// LeaseTTL is how long a lease counts after its last refresh.
var LeaseTTL = 2 * time.Minute

const lockPrefix = "locks/"

// Lease kinds.
const (
	LeaseShared    = "shared"
	LeaseExclusive = "exclusive"
)

// lockRecord is a lease object's content.
type lockRecord struct {
	Kind    string    `json:"kind"`
	Op      string    `json:"op"`
	Who     string    `json:"who"`
	Host    string    `json:"host"`
	Node    string    `json:"node"` // boot id and pid namespace: where PID means something
	PID     int       `json:"pid"`
	Expires time.Time `json:"expires"` // by the holder's clock
}

// Lease is a lease held on a store.
type Lease struct {
	s      *Store
	kind   string
	rec    lockRecord
	key    string // set before the refresher starts, then only read
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelCauseFunc
}

type leaseKey struct{}

// ErrLocked is ErrConflict for a lease that could not be taken in time.
var ErrLocked = fmt.Errorf("%w: the store is locked", ErrConflict)

// Lock takes a lease of kind on the store for op, waiting up to wait for
// conflicting leases to go. It returns a context that carries the lease
// (Publish, Promote and GC called with it take no lease of their own) and
// that is cancelled if the lease cannot be refreshed. Release the lease
// when done. A shared lease inside a context that already holds one on
// this store is that one.
func (s *Store) Lock(ctx context.Context, kind, op string, wait time.Duration) (context.Context, *Lease, error) {
	if l, ok := ctx.Value(leaseKey{}).(*Lease); ok && l.s == s && (l.kind == kind || kind == LeaseShared) {
		return ctx, &Lease{}, nil // already held: the nested Release is a no-op
	}
	host, _ := os.Hostname()
	l := &Lease{s: s, kind: kind, rec: lockRecord{Kind: kind, Op: op, Who: Who(), Host: host, Node: thisNode(), PID: os.Getpid()},
		stop: make(chan struct{}), done: make(chan struct{})}
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		holder, err := l.try(ctx)
		if err != nil {
			return nil, nil, err
		}
		if holder == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w: %s holds a %s lease for %s (until %s unless refreshed); try again later, or wait longer with --lock-wait",
				ErrLocked, holder.Who, holder.Kind, holder.Op, holder.Expires.Format(time.RFC3339))
		}
		if err := sleep(ctx, jitter(delay)); err != nil {
			return nil, nil, err
		}
		delay = min(2*delay, 2*time.Second)
	}
	lctx, cancel := context.WithCancelCause(context.WithValue(ctx, leaseKey{}, l))
	l.cancel = cancel
	go l.refresh(lctx)
	return lctx, l, nil
}

// try creates the lease's object and lists the others. It returns a
// conflicting live lease (after removing its own object), or nil when the
// lease is held.
func (l *Lease) try(ctx context.Context) (*lockRecord, error) {
	key, err := l.write(ctx)
	if err != nil {
		return nil, err
	}
	// A shared lease conflicts only with exclusive ones: it reads only those.
	others, err := l.s.leases(ctx, l.kind == LeaseShared)
	if err != nil {
		_ = l.s.delete(ctx, key)
		return nil, err
	}
	for k, r := range others {
		if k == key || !r.live() {
			continue
		}
		if l.kind == LeaseExclusive || r.Kind == LeaseExclusive {
			_ = l.s.delete(context.WithoutCancel(ctx), key)
			return r, nil
		}
	}
	l.key = key
	return nil, nil
}

// write creates a new lease object good for LeaseTTL.
func (l *Lease) write(ctx context.Context) (string, error) {
	key := lockPrefix + l.kind + "-" + randHex(12) + ".json"
	if err := l.s.createBytes(ctx, key, l.record()); err != nil {
		return "", fmt.Errorf("take a %s lease: %w", l.kind, err)
	}
	return key, nil
}

func (l *Lease) record() []byte {
	rec := l.rec
	rec.Expires = time.Now().Add(LeaseTTL).UTC()
	data, _ := json.Marshal(rec)
	return data
}

// refresh rewrites the lease object in place every LeaseTTL/4. In place,
// not as a new object: a reader that listed the old name and then found it
// gone would take the lease for released. If a rewrite does not land in
// time, the holder's work is cancelled before others may see the lease as
// expired.
func (l *Lease) refresh(ctx context.Context) {
	defer close(l.done)
	valid := time.Now().Add(LeaseTTL)
	t := time.NewTicker(LeaseTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wctx, cancel := context.WithDeadline(ctx, valid.Add(-LeaseTTL/4))
		err := l.s.overwrite(wctx, l.key, l.record())
		cancel()
		if err == nil {
			valid = time.Now().Add(LeaseTTL)
			continue
		}
		if time.Until(valid) <= LeaseTTL/4 {
			l.cancel(fmt.Errorf("%w: the store lease could not be refreshed (%v); nothing more was written, rerun the command", ErrLocked, err))
			return
		}
	}
}

// Release gives the lease up.
func (l *Lease) Release() {
	if l == nil || l.s == nil {
		return
	}
	close(l.stop)
	<-l.done
	l.cancel(nil)
	key := l.key
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = l.s.delete(ctx, key)
}

// live says whether a lease still counts: not expired, with LeaseTTL of
// slack for clocks that disagree, and not naming a process that is gone
// on this very machine and PID namespace.
func (r *lockRecord) live() bool {
	if time.Now().After(r.Expires.Add(LeaseTTL)) {
		return false
	}
	if r.Node != "" && r.Node == thisNode() && r.PID > 0 {
		if err := syscall.Kill(r.PID, 0); errors.Is(err, syscall.ESRCH) {
			return false
		}
	}
	return true
}

// thisNode names the kernel boot and PID namespace this process runs in, so
// that a PID in a lease is checked only where it means the same process:
// containers sharing a host name have PID spaces of their own.
var thisNode = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
})

// leases reads the lease objects, named <kind>-<random>.json; with
// exclusiveOnly, only the exclusive ones. One that does not parse was not
// written by lockstep (a lease object appears whole or not at all) and is
// ignored.
func (s *Store) leases(ctx context.Context, exclusiveOnly bool) (map[string]*lockRecord, error) {
	names, err := s.list(ctx, lockPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]*lockRecord{}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") || exclusiveOnly && !strings.HasPrefix(n, LeaseExclusive+"-") {
			continue
		}
		key := lockPrefix + n
		data, err := s.read(ctx, key, MaxEntryBytes)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrVerify) {
			continue // released meanwhile, or too big to be a lease
		}
		if err != nil {
			return nil, err
		}
		var r lockRecord
		if json.Unmarshal(data, &r) != nil || (r.Kind != LeaseShared && r.Kind != LeaseExclusive) {
			continue
		}
		out[key] = &r
	}
	return out, nil
}

// delete removes key; a key already gone is not an error.
func (s *Store) delete(ctx context.Context, key string) error {
	if err := s.hooks.op(ctx, "delete "+key); err != nil {
		return err
	}
	err := retryTransient(ctx, func() error { return s.bucket.Delete(ctx, key) })
	if isNotFound(err) {
		return nil
	}
	return err
}

// LeaseErr turns an error caused by losing ctx's lease into that loss
// (ErrLocked, exit 4) instead of a plain cancellation.
func LeaseErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrLocked) {
			return cause
		}
	}
	return err
}
