package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// RebuildEventSchema names the version of the events `consume` reads.
const RebuildEventSchema = "lockstep.rebuild/v1"

// RebuildEvent asks for a build of a bundle (docs/events.md).
type RebuildEvent struct {
	Schema string `json:"schema"`
	Bundle string `json:"bundle"`
	// Inputs override input URLs (such as the folder a Spark job has just
	// written), each under a prefix the bundle's allow_overrides permits.
	Inputs         map[string]string `json:"inputs,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	RequestedBy    string            `json:"requested_by,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

// ErrPoison is an event that can never succeed: unparseable, for an unknown
// bundle, with a forbidden override, or failing a gate. It goes to the
// dead-letter topic, and the partition moves on.
var ErrPoison = errors.New("poison event")

// maxEventBytes bounds an event's size.
const maxEventBytes = 64 << 10

// maxBatch bounds the events that coalesce after one build (and the memory
// they hold: the reader fetches at most 1 MiB at a time).
const maxBatch = 100

// maxAttempts is how often a build that fails for another reason than a
// poison one is tried before its event is dead-lettered too.
const maxAttempts = 8

// ParseEvent reads an event and resolves the bundle it asks for, with its
// overrides applied. Every error is an ErrPoison.
func ParseEvent(spec *Spec, data []byte) (*RebuildEvent, *Bundle, error) {
	if len(data) > maxEventBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrPoison, len(data), maxEventBytes)
	}
	var ev RebuildEvent
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, nil, fmt.Errorf("%w: not a %s event: %v", ErrPoison, RebuildEventSchema, err)
	}
	if ev.Schema != RebuildEventSchema {
		return &ev, nil, fmt.Errorf("%w: schema %q, want %q", ErrPoison, ev.Schema, RebuildEventSchema)
	}
	b, ok := spec.Bundles[ev.Bundle]
	if !ok {
		return &ev, nil, fmt.Errorf("%w: unknown bundle %q (bundles: %s)", ErrPoison, ev.Bundle, strings.Join(spec.Names(), ", "))
	}
	if len(ev.Inputs) == 0 {
		return &ev, b, nil
	}
	c := *b
	c.Inputs = map[string]*InputSpec{}
	for name, in := range b.Inputs {
		cp := *in
		c.Inputs[name] = &cp
	}
	for _, name := range sortedKeys(ev.Inputs) {
		url := ev.Inputs[name]
		in, ok := c.Inputs[name]
		if !ok {
			return &ev, nil, fmt.Errorf("%w: bundle %s has no input %q (inputs: %s)", ErrPoison, ev.Bundle, name, strings.Join(sortedKeys(b.Inputs), ", "))
		}
		if !b.overrideAllowed(name, url) {
			return &ev, nil, fmt.Errorf("%w: bundle %s: input %q may not be overridden with %s; the spec's allow_overrides permits %s", ErrPoison, ev.Bundle, name, url, b.allowedText(name))
		}
		in.URL = url
	}
	return &ev, &c, nil
}

// AllowOverrides permits rebuild events to point a bundle's inputs at other
// URLs, under these prefixes (input name -> URL prefixes).
type AllowOverrides map[string][]string

func (b *Bundle) overrideAllowed(input, url string) bool {
	// No escapes, no query (an endpoint= would read from elsewhere), no
	// ".." to climb out of the prefix: a plain folder URL under it.
	if strings.Contains(url, "..") || strings.ContainsAny(url, "%?#\\") {
		return false
	}
	for _, p := range b.AllowOverrides[input] {
		if strings.HasPrefix(url, p) {
			return true
		}
	}
	return false
}

func (b *Bundle) allowedText(input string) string {
	if len(b.AllowOverrides[input]) == 0 {
		return "none for it"
	}
	return strings.Join(b.AllowOverrides[input], ", ")
}

// ConsumeOptions configures Consume.
type ConsumeOptions struct {
	Brokers                   []string
	Topic, Group, DeadLetters string
	Dialer                    *kafka.Dialer
	Transport                 *kafka.Transport
	Logger                    *slog.Logger
	// Run runs one build of a bundle for an event.
	Run func(ctx context.Context, b *Bundle, ev *RebuildEvent) (*RunResult, error)
	// OnEvent sees what became of each event (for metrics).
	OnEvent func(ConsumeEvent)
	// MaxBackoff caps the wait between retries of a transient failure.
	MaxBackoff time.Duration
	// OnLag, when set, gets each partition's lag (its last offset minus the
	// group's committed one) every LagInterval (default 5s).
	OnLag       func(partition int, lag int64)
	LagInterval time.Duration
}

// watchLag reports the group's lag per partition until ctx is done.
func watchLag(ctx context.Context, opts ConsumeOptions, log *slog.Logger) {
	interval := opts.LagInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	client := &kafka.Client{Addr: kafka.TCP(opts.Brokers...), Transport: opts.Transport, Timeout: 10 * time.Second}
	for sleep(ctx, interval) == nil {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{opts.Topic}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
			continue
		}
		var parts []int
		var reqs []kafka.OffsetRequest
		for _, p := range md.Topics[0].Partitions {
			parts = append(parts, p.ID)
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
		last, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{opts.Topic: reqs}})
		if err != nil {
			continue
		}
		committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: opts.Group, Topics: map[string][]int{opts.Topic: parts}})
		if err != nil || committed.Error != nil {
			continue
		}
		done := map[int]int64{}
		for _, p := range committed.Topics[opts.Topic] {
			done[p.Partition] = p.CommittedOffset
		}
		for _, p := range last.Topics[opts.Topic] {
			if p.Error != nil {
				continue
			}
			c, ok := done[p.Partition]
			if !ok || c < 0 { // nothing committed yet: all of it is lag
				c = p.FirstOffset
			}
			opts.OnLag(p.Partition, max(p.LastOffset-c, 0))
		}
		log.Debug("consume: lag measured", "partitions", len(parts))
	}
}

// ConsumeEvent is what became of one event.
type ConsumeEvent struct {
	Bundle    string
	Partition int
	Offset    int64
	Outcome   string // published, unchanged, superseded, coalesced, dead-lettered
	Err       error
	Result    *RunResult
}

// Consume reads rebuild events from a consumer group until ctx is done.
// Each batch of events already fetched is processed in order: events for a
// bundle that arrive while it builds coalesce into one follow-up build
// (the newest event's), a poison event goes to the dead-letter topic with
// its error, a transient failure is retried with backoff, and only then
// are the batch's offsets committed (in offset order per partition, as
// kafka-go commits the highest of each). A replayed event builds inputs
// already published: it publishes nothing and, the channel having moved
// on, promotes nothing.
func Consume(ctx context.Context, spec *Spec, opts ConsumeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: opts.Brokers, Topic: opts.Topic, GroupID: opts.Group, Dialer: opts.Dialer,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond,
		StartOffset:    kafka.FirstOffset,
		CommitInterval: 0, // synchronous commits
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second,
		ReadBackoffMax: 2 * time.Second,
	})
	defer r.Close()
	dlq := &kafka.Writer{Addr: kafka.TCP(opts.Brokers...), Topic: opts.DeadLetters, Transport: opts.Transport,
		AllowAutoTopicCreation: true, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	defer dlq.Close()
	if opts.OnLag != nil {
		go watchLag(ctx, opts, log)
	}
	var next []kafka.Message // what arrived while the last batch built
	for {
		batch := next
		next = nil
		if len(batch) == 0 {
			// Idle: the next event is built as soon as it comes, alone.
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("consume: fetch failed; retrying", "err", err)
				if sleep(ctx, time.Second) != nil {
					return nil
				}
				continue
			}
			batch = []kafka.Message{m}
		}
		if err := processBatch(ctx, spec, opts, dlq, batch, log); err != nil {
			if ctx.Err() != nil {
				return nil // stopped: nothing committed, the events come again
			}
			return err // the dead-letter topic cannot be written: stop, loudly
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("consume: commit failed; the events may come again (harmless: replays do nothing)", "err", err)
		}
		// Events that came during the build coalesce: one follow-up build
		// per bundle, with its newest event.
		for len(next) < maxBatch {
			fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			m, err := r.FetchMessage(fctx)
			cancel()
			if err != nil {
				break
			}
			next = append(next, m)
		}
	}
}

// processBatch handles fetched events, coalescing each bundle's into one
// build with its newest event, and returns only when every event is done
// (built, or dead-lettered) or ctx is done.
func processBatch(ctx context.Context, spec *Spec, opts ConsumeOptions, dlq *kafka.Writer, batch []kafka.Message, log *slog.Logger) error {
	type job struct {
		ev        *RebuildEvent
		bundle    *Bundle
		msg       kafka.Message
		coalesced []kafka.Message // older events of the bundle this one replaces
	}
	newest := map[string]job{}
	var order []string
	report := func(ce ConsumeEvent) {
		if opts.OnEvent != nil {
			opts.OnEvent(ce)
		}
	}
	for _, m := range batch {
		ev, b, err := ParseEvent(spec, m.Value)
		if err != nil {
			if err := deadLetter(ctx, dlq, m, err); err != nil {
				return err
			}
			report(ConsumeEvent{Partition: m.Partition, Offset: m.Offset, Outcome: "dead-lettered", Err: err})
			log.Warn("consume: poison event dead-lettered", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		j := job{ev: ev, bundle: b, msg: m}
		if old, ok := newest[b.Name]; ok {
			report(ConsumeEvent{Bundle: b.Name, Partition: old.msg.Partition, Offset: old.msg.Offset, Outcome: "coalesced"})
			j.coalesced = append(old.coalesced, old.msg)
		} else {
			order = append(order, b.Name)
		}
		newest[b.Name] = j
	}
	for _, name := range order {
		j := newest[name]
		backoff := 200 * time.Millisecond
		for attempt := 1; ; attempt++ {
			res, err := opts.Run(ctx, j.bundle, j.ev)
			if err == nil {
				report(ConsumeEvent{Bundle: name, Partition: j.msg.Partition, Offset: j.msg.Offset, Outcome: outcomeOf(res), Result: res})
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			poison := errors.Is(err, ErrGateFailed) || errors.Is(err, ErrSpec) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrDeltaFeature)
			if poison || attempt == maxAttempts {
				perr := fmt.Errorf("%w: %v", ErrPoison, err)
				if !poison {
					perr = fmt.Errorf("%w: still failing after %d attempts: %v", ErrPoison, attempt, err)
				}
				// The events it replaced go with it: nothing is lost.
				for _, m := range append(j.coalesced, j.msg) {
					if err := deadLetter(ctx, dlq, m, perr); err != nil {
						return err
					}
				}
				report(ConsumeEvent{Bundle: name, Partition: j.msg.Partition, Offset: j.msg.Offset, Outcome: "dead-lettered", Err: perr})
				log.Warn("consume: event dead-lettered", "bundle", name, "offset", j.msg.Offset, "coalesced", len(j.coalesced), "err", firstLine(err))
				break
			}
			log.Warn("consume: build failed; retrying", "bundle", name, "attempt", attempt, "in", backoff, "err", firstLine(err))
			if sleep(ctx, backoff) != nil {
				return ctx.Err()
			}
			backoff = min(2*backoff, opts.MaxBackoff)
		}
	}
	return nil
}

func outcomeOf(res *RunResult) string {
	if res.Published {
		return "published"
	}
	return res.Status
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// deadLetter writes a poison event to the dead-letter topic with its error
// and origin in headers, retrying until it lands or ctx is done.
func deadLetter(ctx context.Context, w *kafka.Writer, m kafka.Message, cause error) error {
	dm := kafka.Message{Key: m.Key, Value: m.Value, Headers: append(slices.Clone(m.Headers),
		kafka.Header{Key: "lockstep-error", Value: []byte(cause.Error())},
		kafka.Header{Key: "lockstep-topic", Value: []byte(m.Topic)},
		kafka.Header{Key: "lockstep-partition", Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: "lockstep-offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)}
	for attempt := 1; ; attempt++ {
		err := w.WriteMessages(ctx, dm)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if attempt == 30 {
			return fmt.Errorf("dead-letter topic %s: %w; the event at %s/%d/%d is not committed and comes again after a restart", w.Topic, err, m.Topic, m.Partition, m.Offset)
		}
		if sleep(ctx, time.Second) != nil {
			return ctx.Err()
		}
	}
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
