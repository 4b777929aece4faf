package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/lockstep-data/lockstep/formats/all"
)

// Every way an event can be poison is an ErrPoison naming why; an
// override is allowed only as a plain folder URL under an allowed prefix.
func TestParseEvent(t *testing.T) {
	spec, err := ParseSpec("spec.yaml", []byte(`bundles:
  places:
    allow_overrides: {places: ["s3://bucket/spark/places/"]}
    inputs: {places: {url: "s3://bucket/spark/places/current/"}}
    assets: {t: {format: arrow, input: places}}
`), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	ev := func(inputs string) string {
		return `{"schema": "lockstep.rebuild/v1", "bundle": "places", "inputs": {"places": "` + inputs + `"}}`
	}
	_, b, err := ParseEvent(spec, []byte(ev("s3://bucket/spark/places/2026-12-01/")))
	if err != nil || b.Inputs["places"].URL != "s3://bucket/spark/places/2026-12-01/" || spec.Bundles["places"].Inputs["places"].URL != "s3://bucket/spark/places/current/" {
		t.Fatalf("an allowed override: %v", err)
	}
	for _, c := range []struct{ event, want string }{
		{`{not json`, "not a lockstep.rebuild/v1 event"},
		{`{"schema": "lockstep.rebuild/v2", "bundle": "places"}`, `schema "lockstep.rebuild/v2"`},
		{`{"schema": "lockstep.rebuild/v1", "bundle": "places", "extra": 1}`, "unknown field"},
		{`{"schema": "lockstep.rebuild/v1", "bundle": "nope"}`, `unknown bundle "nope"`},
		{`{"schema": "lockstep.rebuild/v1", "bundle": "places", "inputs": {"other": "s3://bucket/spark/places/x/"}}`, `no input "other"`},
		{ev("s3://bucket/spark/other/"), "may not be overridden"},
		{ev("s3://bucket/spark/places/../../secrets/"), "may not be overridden"},
		{ev("s3://bucket/spark/places/%2e%2e/%2e%2e/secrets/"), "may not be overridden"},
		{ev("s3://bucket/spark/places/x/?endpoint=http://evil:9000"), "may not be overridden"},
		{strings.Repeat(" ", maxEventBytes+1), "bytes (limit"},
	} {
		_, _, err := ParseEvent(spec, []byte(c.event))
		if !errors.Is(err, ErrPoison) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s: %v, want %q", c.event, err, c.want)
		}
	}
}
