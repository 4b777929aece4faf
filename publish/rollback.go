package publish

import (
	"context"
	"fmt"
)

// RollbackTarget picks the release a rollback returns to: going back through
// the log, the newest release that is neither the current one nor one that
// an earlier rollback moved away from. So repeated rollbacks walk further
// back (C, B, A) instead of swinging between the last two releases.
func RollbackTarget(hist []*Entry) (string, error) {
	if len(hist) == 0 {
		return "", fmt.Errorf("the channel has never been promoted, so there is nothing to roll back to: %w", ErrNotFound)
	}
	skip := map[string]bool{hist[len(hist)-1].Release: true}
	for i := len(hist) - 1; i >= 0; i-- {
		e := hist[i]
		if e.Action == "rollback" && e.Previous != "" {
			skip[e.Previous] = true
		}
		if !skip[e.Release] {
			return e.Release, nil
		}
	}
	return "", fmt.Errorf("no release before %s in the channel's log: %w", hist[len(hist)-1].Release, ErrNotFound)
}

// Rollback points a channel back at an earlier release, by appending an
// entry: history is never rewritten. With req.Release empty, the target is
// RollbackTarget of the log.
func Rollback(ctx context.Context, s *Store, req PromoteRequest) (*Entry, error) {
	req.Action = "rollback"
	if req.Release == "" {
		hist, err := s.History(ctx, req.Bundle, req.Channel)
		if err != nil {
			return nil, err
		}
		if req.Release, err = RollbackTarget(hist); err != nil {
			return nil, fmt.Errorf("rollback %s/%s: %w", req.Bundle, req.Channel, err)
		}
		if req.ExpectHead < 0 {
			// The target was chosen from this log: a move in between is a
			// conflict. The head is the log's last entry even if it could not
			// be read (History skips it), so a rollback is also the fix for a
			// corrupt head.
			seqs, err := s.Seqs(ctx, req.Bundle, req.Channel)
			if err != nil {
				return nil, err
			}
			req.ExpectHead = seqs[len(seqs)-1]
			req.RetryOnConflict = false
		}
	}
	return Promote(ctx, s, req)
}
