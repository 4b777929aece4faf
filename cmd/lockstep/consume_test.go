package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func produce(t *testing.T, brokers, topic string, values ...string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, AllowAutoTopicCreation: true, RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond) // the topic is being created
	}
}

// readTopic reads n messages from a topic's first partition, from the start.
func readTopic(t *testing.T, brokers, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	// And no more: one more read must time out.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if m, err := r.ReadMessage(ctx2); err == nil {
		t.Errorf("%s has more than %d messages: %s", topic, n, m.Value)
	}
	return out
}

type consumer struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan error
}

func startConsumer(t *testing.T, store, spec, brokers, topic, group string, extra ...string) *consumer {
	t.Helper()
	c := &consumer{addr: freePort(t), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	args := append([]string{"--store", store, "--log-level", "info", "consume", "--spec", spec, "--brokers", brokers,
		"--topic", topic, "--group", group, "--listen", c.addr}, extra...)
	c.cmd = exec.Command(binary, args...)
	c.cmd.Env = append(os.Environ(), "LOCKSTEP_STAGE="+stageDir(t))
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.cmd.Process.Kill() })
	return c
}

var eventsTotal = regexp.MustCompile(`lockstep_consume_events_total\{bundle="([^"]*)",outcome="([^"]+)"\} (\d+)`)

// handled counts the events the consumer handled, by bundle/outcome.
func (c *consumer) handled(t *testing.T) map[string]int {
	_, body := httpGet(t, "http://"+c.addr+"/metrics")
	out := map[string]int{}
	for _, m := range eventsTotal.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[3])
		out[m[1]+"/"+m[2]] += n
		out["all"] += n
	}
	return out
}

func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("consume did not stop cleanly: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("consume did not stop on SIGTERM")
	}
}

func event(bundle string, inputs map[string]string) string {
	b, _ := json.Marshal(map[string]any{"schema": "lockstep.rebuild/v1", "bundle": bundle, "inputs": inputs, "reason": "spark done", "requested_by": "test"})
	return string(b)
}

// TestConsume is issue 13's Kafka acceptance against a real broker:
// replays, poison events of each kind, a burst, and release events out.
func TestConsume(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	os.MkdirAll(filepath.Join(dir, "spark"), 0o755)
	src := filepath.Join(repoRoot(t), "testdata", "places")
	ents, _ := os.ReadDir(src)
	for _, v := range []string{"v1", "v2"} {
		os.MkdirAll(filepath.Join(dir, "spark", v), 0o755)
		for i, e := range ents {
			if v == "v2" && i == len(ents)-1 {
				continue // v2: one part file fewer
			}
			data, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dir, "spark", v, e.Name()), data, 0o644)
		}
	}
	v1, v2 := filepath.Join(dir, "spark", "v1"), filepath.Join(dir, "spark", "v2")
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`bundles:
  places:
    allow_overrides: {places: ["%s/"]}
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places}}
  gated:
    checks: {rows: {min: 1000000}}
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places}}
  other:
    inputs: {places: {url: %s}}
    assets: {by_id: {format: kv, input: places, options: {key: id, value: json}}}
`, filepath.Join(dir, "spark"), v1, src, src)), 0o644)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, events := "rebuild-"+suffix, "promoted-"+suffix

	e1, e2 := event("places", map[string]string{"places": v1}), event("places", map[string]string{"places": v2})
	produce(t, brokers, topic,
		e1, e1, e1, e2, e2, e2, // each replayed 3 times
		`{not json`,        // poison: unparseable
		event("nope", nil), // poison: an unknown bundle
		event("places", map[string]string{"places": "/etc/"}), // poison: a forbidden override
		event("gated", nil), // poison: a failed gate
		event("other", nil), // good, after the poison
	)
	c := startConsumer(t, store, spec, brokers, topic, "g1-"+suffix, "--events-topic", events)
	waitUntil(t, "the events handled", 60*time.Second, func() bool { return c.handled(t)["all"] >= 11 })
	c.stop(t)

	var h []historyEntry
	okJSON(t, store, &h, "history", "--bundle", "places")
	var rels []lsBundle
	okJSON(t, store, &rels, "ls", "--bundle", "places")
	if len(rels) != 1 || len(rels[0].Releases) != 2 || len(h) != 2 {
		t.Fatalf("two distinct inputs, each 3 times: %d releases, %d entries, want 2 and 2: %+v", len(rels[0].Releases), len(h), h)
	}
	head := h[len(h)-1]
	var show struct{ Inputs []struct{ URL string } }
	okJSON(t, store, &show, "show", "--bundle", "places", head.Release)
	if len(show.Inputs) != 1 || !strings.HasSuffix(show.Inputs[0].URL, "/spark/v2") {
		t.Errorf("the channel serves %s, not the newest input's release: %+v", head.Release, show)
	}
	dlq := readTopic(t, brokers, topic+".dlq", 4)
	for i, want := range []string{"not a lockstep.rebuild/v1 event", `unknown bundle "nope"`, "may not be overridden with /etc/", "data-quality gate failed"} {
		var errText string
		for _, hd := range dlq[i].Headers {
			if hd.Key == "lockstep-error" {
				errText = string(hd.Value)
			}
		}
		if !strings.Contains(errText, want) {
			t.Errorf("dead letter %d: error %q, want %q", i, errText, want)
		}
	}
	var oh []historyEntry
	okJSON(t, store, &oh, "history", "--bundle", "other")
	if len(oh) != 1 {
		t.Errorf("the good event after the poison: %+v", oh)
	}
	// Release events out: one per promotion, read back by another consumer.
	out := readTopic(t, brokers, events, 3)
	var promoted []string
	for _, m := range out {
		var pe promotedEvent
		if err := json.Unmarshal(m.Value, &pe); err != nil || pe.Schema != PromotedEventSchema {
			t.Fatalf("release event %s: %v", m.Value, err)
		}
		promoted = append(promoted, fmt.Sprintf("%s#%d", pe.Bundle, pe.Seq))
	}
	if strings.Join(promoted, " ") != "places#1 places#2 other#1" {
		t.Errorf("release events: %v", promoted)
	}

	// Replaying everything from the earliest offset (a new group) adds no
	// channel entry.
	c = startConsumer(t, store, spec, brokers, topic, "g2-"+suffix)
	waitUntil(t, "the replay handled", 60*time.Second, func() bool { return c.handled(t)["all"] >= 11 })
	c.stop(t)
	okJSON(t, store, &h, "history", "--bundle", "places")
	if len(h) != 2 || h[1].Release != head.Release {
		t.Errorf("the replay moved the channel: %+v", h)
	}

	// A burst of 20 events for one bundle: at most 2 builds.
	burst := make([]string, 20)
	for i := range burst {
		burst[i] = event("other", nil)
	}
	topic2 := topic + "-burst"
	produce(t, brokers, topic2, burst...)
	c = startConsumer(t, store, spec, brokers, topic2, "g3-"+suffix)
	waitUntil(t, "the burst handled", 60*time.Second, func() bool { return c.handled(t)["all"] >= 20 })
	got := c.handled(t)
	c.stop(t)
	if builds := got["all"] - got["other/coalesced"]; builds > 2 {
		t.Errorf("20 events gave %d builds: %v", builds, got)
	}
}

// TestConsumeKilled: a consumer killed with SIGKILL mid-run (half way
// through its store operations: the build done, its blobs being uploaded;
// and just before its channel entry) and restarted processes the event
// once in effect: one release, one entry, nothing lost.
func TestConsumeKilled(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	dir := t.TempDir()
	spec := writeSpec(t, dir, filepath.Join(repoRoot(t), "testdata", "places"), "")
	// How many store operations a run of this bundle makes, on a twin store.
	ops := storeOps(t, "file://"+filepath.Join(dir, "twin"), "run", "--spec", spec)
	for _, at := range []int{ops / 2, ops - 1} { // the last operation releases the lease
		t.Run(fmt.Sprintf("op%dof%d", at, ops), func(t *testing.T) {
			store := "file://" + filepath.Join(t.TempDir(), "store")
			suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
			topic, group := "killed-"+suffix, "gk-"+suffix
			produce(t, brokers, topic, event("places", nil))
			cmd := exec.Command(binary, "--store", store, "consume", "--spec", spec, "--brokers", brokers, "--topic", topic, "--group", group)
			cmd.Env = append(os.Environ(), "LOCKSTEP_STAGE="+stageDir(t), fmt.Sprintf("LOCKSTEP_CRASH_AT_OP=%d", at))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
				t.Fatalf("the consumer was not killed: %v\n%s", err, stderr.String())
			}
			if r := lockstep(t, store, "history", "--bundle", "places"); r.code == 0 {
				t.Fatalf("the killed run moved the channel:\n%s", r.stdout)
			}
			c := startConsumer(t, store, spec, brokers, topic, group)
			waitUntil(t, "the event handled again", 60*time.Second, func() bool { return c.handled(t)["all"] >= 1 })
			c.stop(t)
			var h []historyEntry
			okJSON(t, store, &h, "history", "--bundle", "places")
			var rels []lsBundle
			okJSON(t, store, &rels, "ls", "--bundle", "places")
			if len(h) != 1 || len(rels) != 1 || len(rels[0].Releases) != 1 || h[0].Release != rels[0].Releases[0] {
				t.Fatalf("after the restart: entries %+v, releases %+v", h, rels)
			}
			ok(t, store, "verify", "--all")
		})
	}
}

// TestMoveEvents: run, promote and rollback each write one "release
// promoted" event to --events-topic, the channel entry's fields.
func TestMoveEvents(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	topic := "moves-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ev := []string{"--events-topic", topic, "--brokers", brokers}
	var a, b struct{ Release string }
	okJSON(t, store, &a, append([]string{"run", "--spec", writeSpec(t, dir, places, "{compression: zstd}")}, ev...)...)
	okJSON(t, store, &b, append([]string{"run", "--spec", writeSpec(t, dir, places, "{compression: lz4}")}, ev...)...)
	ok(t, store, append([]string{"rollback", "--bundle", "places"}, ev...)...)
	ok(t, store, append([]string{"promote", "--bundle", "places", "--release", b.Release}, ev...)...)
	var got []string
	for _, m := range readTopic(t, brokers, topic, 4) {
		var pe promotedEvent
		json.Unmarshal(m.Value, &pe)
		if string(m.Key) != "places" || pe.Schema != PromotedEventSchema || pe.Channel != "production" || len(pe.ManifestSHA256) != 64 {
			t.Errorf("event %s (key %s)", m.Value, m.Key)
		}
		got = append(got, fmt.Sprintf("%d %s %s", pe.Seq, pe.Action, pe.Release))
	}
	want := []string{"1 run " + a.Release, "2 run " + b.Release, "3 rollback " + a.Release, "4 promote " + b.Release}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events:\n%v\nwant\n%v", got, want)
	}
	if r := lockstep(t, store, "promote", "--bundle", "places", "--release", a.Release, "--events-topic", topic); r.code != 2 || !strings.Contains(r.stderr, "needs brokers") {
		t.Errorf("--events-topic without brokers: exit %d: %s", r.code, r.stderr)
	}
	// events: in the spec, for a run without the flag.
	spec := filepath.Join(dir, "events.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`bundles:
  places:
    events: {topic: %s-spec, brokers: [%q]}
    inputs: {places: {url: %s}}
    assets: {places: {format: arrow, input: places, options: {compression: none}}}
`, topic, brokers, places)), 0o644)
	var c struct{ Release string }
	okJSON(t, store, &c, "run", "--spec", spec)
	var pe promotedEvent
	if m := readTopic(t, brokers, topic+"-spec", 1); json.Unmarshal(m[0].Value, &pe) != nil || pe.Release != c.Release || pe.Seq != 5 {
		t.Errorf("the spec's events: %s", m[0].Value)
	}
}

// TestConsumeBrokerRestart: the broker is restarted while the consumer
// runs; the consumer recovers by itself and handles the next event within
// 60 s. /metrics shows the group's lag per partition.
func TestConsumeBrokerRestart(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	testenv := needService(t, "LOCKSTEP_TESTENV", "scripts/testenv, to restart the broker")
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	spec := writeSpec(t, dir, places, "")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "restart-" + suffix
	produce(t, brokers, topic, event("places", nil))
	c := startConsumer(t, store, spec, brokers, topic, "gr-"+suffix, "--lag-interval", "200ms")
	waitUntil(t, "the first event", 60*time.Second, func() bool { return c.handled(t)["all"] >= 1 })
	waitUntil(t, "the lag of partition 0 at 0", 20*time.Second, func() bool {
		_, body := httpGet(t, "http://"+c.addr+"/metrics")
		return strings.Contains(body, `lockstep_consume_lag{partition="0"} 0`)
	})
	if out, err := exec.Command(testenv, "kafka-restart").CombinedOutput(); err != nil {
		t.Fatalf("restart the broker: %v\n%s", err, out)
	}
	restarted := time.Now()
	produce(t, brokers, topic, event("places", nil))
	waitUntil(t, "the event after the restart", 60*time.Second, func() bool { return c.handled(t)["all"] >= 2 })
	t.Logf("recovered %s after the restart", time.Since(restarted).Round(time.Second))
	c.stop(t)
}

// TestPullAgentEvents: an agent polling once a minute, subscribed to the
// release events, swaps a new promotion in seconds after its event.
func TestPullAgentEvents(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	topic := "promoted-agent-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var r1, r2 struct{ Release string }
	okJSON(t, store, &r1, "run", "--spec", writeSpec(t, dir, places, "{compression: zstd}"))
	dest := filepath.Join(dir, "srv")
	produce(t, brokers, topic, `{"schema": "lockstep.promoted/v1", "bundle": "other"}`) // the topic exists, as in production
	agent := exec.Command(binary, "--store", store, "pull", "--bundle", "places", "--dest", dest, "--watch",
		"--interval", "1m", "--events-topic", topic, "--brokers", brokers)
	var stderr bytes.Buffer
	agent.Stderr = &stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	waitUntil(t, "the first release", 20*time.Second, func() bool { return currentRelease(dest) == r1.Release })
	time.Sleep(5 * time.Second) // the agent's reader joins its group, at the newest offset
	okJSON(t, store, &r2, "run", "--spec", writeSpec(t, dir, places, "{compression: lz4}"), "--events-topic", topic, "--brokers", brokers)
	took := waitUntil(t, "the promotion, on its event", 30*time.Second, func() bool { return currentRelease(dest) == r2.Release })
	t.Logf("swapped %s after the event", took.Round(100*time.Millisecond))
	if t.Failed() {
		t.Log(stderr.String())
	}
}

// TestConsumeSASL: consume and its release events through the broker's
// SASL listener, with PLAIN and both SCRAM mechanisms; a wrong password
// gets nothing.
func TestConsumeSASL(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	sasl := needService(t, "LOCKSTEP_KAFKA_SASL", "the broker's SASL listener")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	for _, c := range []struct{ mech, password string }{
		{"plain", "lockstep-secret"}, {"scram-sha-256", "lockstep-secret"}, {"scram-sha-512", "lockstep-secret"}, {"plain", "wrong"},
	} {
		t.Run(c.mech+"-"+c.password, func(t *testing.T) {
			dir := t.TempDir()
			store := "file://" + filepath.Join(dir, "store")
			spec := writeSpec(t, dir, places, "")
			suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
			topic, events := "sasl-"+suffix, "sasl-promoted-"+suffix
			produce(t, brokers, topic, event("places", nil)) // through the plain listener
			cons := &consumer{addr: freePort(t), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
			cons.cmd = exec.Command(binary, "--store", store, "consume", "--spec", spec, "--brokers", sasl, "--topic", topic,
				"--group", "gs-"+suffix, "--listen", cons.addr, "--kafka-sasl", c.mech, "--kafka-user", "lockstep", "--events-topic", events)
			cons.cmd.Env = append(os.Environ(), "LOCKSTEP_STAGE="+stageDir(t), "LOCKSTEP_KAFKA_PASSWORD="+c.password)
			cons.cmd.Stderr = cons.stderr
			if err := cons.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { cons.done <- cons.cmd.Wait() }()
			t.Cleanup(func() { cons.cmd.Process.Kill() })
			if c.password == "wrong" {
				time.Sleep(5 * time.Second)
				if n := cons.handled(t)["all"]; n != 0 {
					t.Errorf("a wrong password handled %d events", n)
				}
				cons.stop(t)
				return
			}
			waitUntil(t, "the event, through SASL", 60*time.Second, func() bool { return cons.handled(t)["all"] >= 1 })
			cons.stop(t)
			var pe promotedEvent
			if m := readTopic(t, brokers, events, 1); json.Unmarshal(m[0].Value, &pe) != nil || pe.Seq != 1 {
				t.Errorf("the release event written through SASL: %s", m[0].Value)
			}
		})
	}
}

// TestConsumeTLS: consume and its release events through the broker's TLS
// listener, trusting the test CA (--kafka-tls-ca); without it, the
// system's roots refuse the broker and nothing is handled.
func TestConsumeTLS(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	tlsAddr := needService(t, "LOCKSTEP_KAFKA_TLS", "the broker's TLS listener")
	ca := needService(t, "LOCKSTEP_KAFKA_TLS_CA", "the test CA")
	places := filepath.Join(repoRoot(t), "testdata", "places")
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("ca-%v", trusted), func(t *testing.T) {
			dir := t.TempDir()
			store := "file://" + filepath.Join(dir, "store")
			spec := writeSpec(t, dir, places, "")
			suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
			topic, events := "tls-"+suffix, "tls-promoted-"+suffix
			produce(t, brokers, topic, event("places", nil))
			args := []string{"--kafka-tls"} // the system's roots
			if trusted {
				args = []string{"--kafka-tls-ca", ca}
			}
			cons := startConsumer(t, store, spec, tlsAddr, topic, "gt-"+suffix, append(args, "--events-topic", events)...)
			if !trusted {
				time.Sleep(5 * time.Second)
				if n := cons.handled(t)["all"]; n != 0 {
					t.Errorf("an untrusted broker: %d events handled", n)
				}
				cons.stop(t)
				return
			}
			waitUntil(t, "the event, through TLS", 60*time.Second, func() bool { return cons.handled(t)["all"] >= 1 })
			cons.stop(t)
			var pe promotedEvent
			if m := readTopic(t, brokers, events, 1); json.Unmarshal(m[0].Value, &pe) != nil || pe.Seq != 1 {
				t.Errorf("the release event written through TLS: %s", m[0].Value)
			}
		})
	}
}

// TestConsumeRetries: a build that fails for a passing reason (its input
// folder not there yet) is retried with backoff, not dead-lettered, and
// succeeds once the folder appears.
func TestConsumeRetries(t *testing.T) {
	brokers := needService(t, "LOCKSTEP_KAFKA", "a Kafka broker")
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	in := filepath.Join(dir, "spark", "late")
	spec := writeSpec(t, dir, in, "")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "retry-" + suffix
	produce(t, brokers, topic, event("places", nil))
	c := startConsumer(t, store, spec, brokers, topic, "gy-"+suffix)
	waitUntil(t, "a failed attempt", 30*time.Second, func() bool { return strings.Contains(c.stderr.String(), "build failed; retrying") })
	if n := c.handled(t)["all"]; n != 0 {
		t.Fatalf("the event was handled (%d) before its input existed", n)
	}
	os.MkdirAll(in, 0o755)
	src := filepath.Join(repoRoot(t), "testdata", "places")
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(in, e.Name()), data, 0o644)
	}
	waitUntil(t, "the retried build", 30*time.Second, func() bool { return c.handled(t)["places/published"] == 1 })
	c.stop(t)
}
