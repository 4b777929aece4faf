package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduleSpec is when the scheduler runs a bundle:
//
//	schedule: "*/15 * * * *"   # cron: 5 fields, or 6 with seconds first
//	timezone: Europe/Zurich    # the zone the expression is read in (default UTC)
//	jitter: 30s                # a random delay up to this, so fleets of schedulers spread out
//	missed: skip               # runs due while one ran: skip them, or run once right after
//
// None of it changes an output byte, so it stays out of the spec digest.
type ScheduleSpec struct {
	Schedule string `yaml:"schedule" json:"-"`
	Timezone string `yaml:"timezone" json:"-"`
	Jitter   string `yaml:"jitter" json:"-"`
	Missed   string `yaml:"missed" json:"-"`

	cron   cron.Schedule
	jitter time.Duration
}

// cronParser reads standard 5-field expressions, an optional leading
// seconds field, and descriptors such as @hourly.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (s *ScheduleSpec) validate(where func(...string) string, bad func(where, format string, args ...any) error) error {
	if s.Schedule == "" {
		if s.Timezone != "" || s.Jitter != "" || s.Missed != "" {
			return bad(where("schedule"), "timezone, jitter and missed need a schedule: such as schedule: \"*/15 * * * *\"")
		}
		return nil
	}
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return bad(where("timezone"), "timezone %q: %v (use an IANA name such as Europe/Zurich)", s.Timezone, err)
		}
		loc = l
	}
	c, err := cronParser.Parse("CRON_TZ=" + loc.String() + " " + s.Schedule)
	if err != nil {
		return bad(where("schedule"), "schedule %q: %v (5 fields, minute first, or 6 with seconds first, or @hourly, @daily ...)", s.Schedule, err)
	}
	s.cron = c
	if s.Jitter != "" {
		d, err := time.ParseDuration(s.Jitter)
		if err != nil || d < 0 {
			return bad(where("jitter"), "jitter %q: give a duration such as 30s", s.Jitter)
		}
		s.jitter = d
	}
	switch s.Missed {
	case "", "skip", "once":
	default:
		return bad(where("missed"), "missed %q: use skip (drop runs due while one ran) or once (run once right after)", s.Missed)
	}
	return nil
}

// Scheduled reports whether the bundle has a schedule.
func (b *Bundle) Scheduled() bool { return b.cron != nil }

// nextRun is when a bundle runs next, given when its last run was due and
// when it finished: the first time due after due, unless that passed while
// the run ran, when skip takes the first due after finished and once runs
// right away.
func (s *ScheduleSpec) nextRun(due, finished time.Time) time.Time {
	next := s.cron.Next(due)
	if !next.After(finished) {
		if s.Missed == "once" {
			return finished
		}
		next = s.cron.Next(finished)
	}
	return next
}

// ScheduleEvent is one scheduled run, for logs and metrics.
type ScheduleEvent struct {
	Bundle          string
	Due             time.Time // when the schedule said
	Start, Finished time.Time
	Result          *RunResult
	Err             error
}

// Schedule runs each bundle on its schedule until ctx is done: never two
// runs of one bundle at once (each bundle has one loop, which waits for
// its run), different bundles side by side. run does one run; it gets
// runCtx, which outlives ctx by grace so that a run in flight may finish
// after a stop, and is then cancelled (a cancelled run leaves nothing
// partial: the store's invariants). onEvent, when set, sees each run.
func Schedule(ctx context.Context, bundles []*Bundle, grace time.Duration, run func(ctx context.Context, b *Bundle) (*RunResult, error), onEvent func(ScheduleEvent)) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(grace, cancel)
	})
	defer stop()
	var wg sync.WaitGroup
	for _, b := range bundles {
		if !b.Scheduled() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			due := b.cron.Next(time.Now())
			for {
				wait := time.Until(due)
				if b.jitter > 0 {
					wait += rand.N(b.jitter)
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				if ctx.Err() != nil {
					return // both were ready: stopping wins
				}
				ev := ScheduleEvent{Bundle: b.Name, Due: due, Start: time.Now()}
				ev.Result, ev.Err = run(runCtx, b)
				ev.Finished = time.Now()
				if onEvent != nil {
					onEvent(ev)
				}
				due = b.nextRun(due, ev.Finished)
			}
		}()
	}
	wg.Wait()
}

// ScheduleText describes a bundle's schedule for a person.
func (b *Bundle) ScheduleText() string {
	if !b.Scheduled() {
		return "no schedule"
	}
	tz := b.Timezone
	if tz == "" {
		tz = "UTC"
	}
	s := fmt.Sprintf("%q in %s, next at %s", b.Schedule, tz, b.cron.Next(time.Now()).Format(time.RFC3339))
	if b.Missed == "once" {
		s += ", missed runs: once"
	}
	return s
}
