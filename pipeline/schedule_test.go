package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/lockstep-data/lockstep/formats/all"
)

func scheduled(t *testing.T, keys string) (*Bundle, error) {
	t.Helper()
	s, err := ParseSpec("spec.yaml", []byte("bundles:\n  b:\n"+keys+"    inputs: {in: {url: /tmp/in}}\n    assets: {t: {format: arrow, input: in}}\n"), all.Registry())
	if err != nil {
		return nil, err
	}
	return s.Bundles["b"], nil
}

// The next run after one that overran: skip drops what was due meanwhile,
// once runs right away; timezones and seconds are honoured; bad keys name
// their line.
func TestScheduleSpec(t *testing.T) {
	b, err := scheduled(t, "    schedule: \"0 * * * *\"\n    timezone: Asia/Kolkata\n")
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC) // 16:00 in Kolkata (+05:30): the top of its hour
	for _, c := range []struct {
		missed   string
		finished time.Time
		want     time.Time
	}{
		{"", due.Add(10 * time.Minute), due.Add(time.Hour)},
		{"skip", due.Add(150 * time.Minute), due.Add(3 * time.Hour)},
		{"once", due.Add(150 * time.Minute), due.Add(150 * time.Minute)},
	} {
		b.Missed = c.missed
		if got := b.nextRun(due, c.finished); !got.Equal(c.want) {
			t.Errorf("missed %q, finished %s: next %s, want %s", c.missed, c.finished, got, c.want)
		}
	}
	if b.Digest != mustDigest(t, "") {
		t.Errorf("the schedule changed the spec digest")
	}
	s, err := scheduled(t, "    schedule: \"*/2 * * * * *\"\n    jitter: 1s\n    missed: once\n")
	if err != nil || !s.Scheduled() || s.jitter != time.Second {
		t.Fatalf("seconds: %+v %v", s, err)
	}
	if got := s.cron.Next(due); !got.Equal(due.Add(2 * time.Second)) {
		t.Errorf("every 2 s: next %s", got)
	}
	for _, c := range []struct{ keys, want string }{
		{"    schedule: \"61 * * * *\"\n", `spec.yaml:3: bundle "b": schedule "61 * * * *"`},
		{"    schedule: \"@daily\"\n    timezone: Mars/Olympus\n", `timezone "Mars/Olympus"`},
		{"    schedule: \"@daily\"\n    missed: all\n", `missed "all": use skip`},
		{"    schedule: \"@daily\"\n    jitter: soon\n", `jitter "soon"`},
		{"    timezone: UTC\n", "need a schedule"},
		{"    schedul: \"@daily\"\n", "valid here: channel, requires, inputs, assets, memory, checks, schedule, timezone, jitter, missed"},
	} {
		if _, err := scheduled(t, c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.keys, err, c.want)
		}
	}
}

func mustDigest(t *testing.T, keys string) string {
	b, err := scheduled(t, keys)
	if err != nil {
		t.Fatal(err)
	}
	return b.Digest
}
