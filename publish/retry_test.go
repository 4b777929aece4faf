package publish

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gocloud.dev/gcerrors"
)

// s3Error stands in for the AWS SDK's smithy.APIError: S3 itself cannot be
// made to answer 409 ConditionalRequestConflict on demand, so this is the
// one fake in the suite.
type s3Error struct{ code string }

func (e s3Error) Error() string     { return "api error " + e.code }
func (e s3Error) ErrorCode() string { return e.code }

func TestTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("blob: %w", s3Error{"ConditionalRequestConflict"}), true},
		{fmt.Errorf("blob: %w", s3Error{"PreconditionFailed"}), false},
		{fmt.Errorf("key: %w", ErrExists), false},
		{context.Canceled, false},
		{errors.New("plain"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if gcerrors.Code(errors.New("x")) != gcerrors.Unknown {
		t.Fatal("gcerrors changed")
	}
}

func TestRetryTransient(t *testing.T) {
	calls := 0
	err := retryTransient(context.Background(), func() error {
		calls++
		if calls < 3 {
			return s3Error{"ConditionalRequestConflict"}
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	err = retryTransient(context.Background(), func() error { calls++; return ErrExists })
	if !errors.Is(err, ErrExists) || calls != 1 {
		t.Fatalf("a lost race was retried: %v, %d calls", err, calls)
	}
}
