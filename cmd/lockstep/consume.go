package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// kafkaFlags connect to a cluster: brokers, TLS and SASL.
func kafkaFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "brokers", EnvVars: []string{"LOCKSTEP_KAFKA_BROKERS"}, Usage: "Kafka bootstrap `HOST:PORT` (repeatable or comma-separated)"},
		&cli.BoolFlag{Name: "kafka-tls", Usage: "connect with TLS"},
		&cli.StringFlag{Name: "kafka-tls-ca", Usage: "CA certificates (PEM `FILE`) for the brokers' TLS; default: the system's"},
		&cli.StringFlag{Name: "kafka-sasl", Usage: "SASL mechanism: plain, scram-sha-256 or scram-sha-512"},
		&cli.StringFlag{Name: "kafka-user", EnvVars: []string{"LOCKSTEP_KAFKA_USER"}, Usage: "SASL user"},
		&cli.StringFlag{Name: "kafka-password", EnvVars: []string{"LOCKSTEP_KAFKA_PASSWORD"}, Usage: "SASL password (prefer the environment variable)"},
	}
}

// kafkaConn builds the dialer (for readers) and transport (for writers).
func kafkaConn(c *cli.Context) (*kafka.Dialer, *kafka.Transport, error) {
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	t := &kafka.Transport{DialTimeout: 10 * time.Second}
	if c.Bool("kafka-tls") || c.String("kafka-tls-ca") != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if f := c.String("kafka-tls-ca"); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: --kafka-tls-ca: %v", errUsage, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("%w: --kafka-tls-ca %s holds no PEM certificate", errUsage, f)
			}
			cfg.RootCAs = pool
		}
		d.TLS, t.TLS = cfg, cfg
	}
	var mech sasl.Mechanism
	switch m := c.String("kafka-sasl"); m {
	case "":
	case "plain":
		mech = plain.Mechanism{Username: c.String("kafka-user"), Password: c.String("kafka-password")}
	case "scram-sha-256", "scram-sha-512":
		algo := scram.SHA256
		if m == "scram-sha-512" {
			algo = scram.SHA512
		}
		var err error
		if mech, err = scram.Mechanism(algo, c.String("kafka-user"), c.String("kafka-password")); err != nil {
			return nil, nil, fmt.Errorf("%w: --kafka-sasl %s: %v", errUsage, m, err)
		}
	default:
		return nil, nil, fmt.Errorf("%w: --kafka-sasl %q: use plain, scram-sha-256 or scram-sha-512", errUsage, m)
	}
	d.SASLMechanism, t.SASL = mech, mech
	return d, t, nil
}

// eventsFlags are the flags of every command that moves a channel: where
// its "release promoted" events go.
func eventsFlags() []cli.Flag {
	return append([]cli.Flag{&cli.StringFlag{Name: "events-topic", EnvVars: []string{"LOCKSTEP_EVENTS_TOPIC"},
		Usage: "write a \"release promoted\" event (docs/events.md) to Kafka `TOPIC` for each channel move; needs --brokers"}}, kafkaFlags()...)
}

// eventsWriter opens the writer of --events-topic; nil when it is unset.
func eventsWriter(c *cli.Context) (*kafka.Writer, error) { return eventsWriterFor(c, nil) }

// eventsWriterFor is eventsWriter, falling back on the bundle's events:
// (its topic, and its brokers unless --brokers names them).
func eventsWriterFor(c *cli.Context, b *pipeline.Bundle) (*kafka.Writer, error) {
	topic, brokers := c.String("events-topic"), c.StringSlice("brokers")
	if topic == "" && b != nil && b.Events != nil {
		topic = b.Events.Topic
		if len(brokers) == 0 {
			brokers = b.Events.Brokers
		}
	}
	if topic == "" {
		return nil, nil
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: the events topic %s needs brokers: give --brokers, set LOCKSTEP_KAFKA_BROKERS, or list brokers in the events of the bundle", errUsage, topic)
	}
	_, transport, err := kafkaConn(c)
	if err != nil {
		return nil, err
	}
	return &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Transport: transport, AllowAutoTopicCreation: true,
		RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}, nil
}

// eventWriters keeps one events writer per bundle of a daemon.
type eventWriters struct {
	c  *cli.Context
	mu sync.Mutex
	ws map[string]*kafka.Writer
}

func newEventWriters(c *cli.Context) *eventWriters {
	return &eventWriters{c: c, ws: map[string]*kafka.Writer{}}
}

func (e *eventWriters) forBundle(b *pipeline.Bundle) (*kafka.Writer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w, ok := e.ws[b.Name]; ok {
		return w, nil
	}
	w, err := eventsWriterFor(e.c, b)
	if err == nil {
		e.ws[b.Name] = w
	}
	return w, err
}

func (e *eventWriters) close() {
	for _, w := range e.ws {
		if w != nil {
			w.Close()
		}
	}
}

// announce writes the event of a channel entry when w is set. A failure is
// logged, not returned: the channel has moved, and boxes that poll see it.
func announce(ctx context.Context, e *env, w *kafka.Writer, ent *publish.Entry) {
	if w == nil || ent == nil {
		return
	}
	if err := emitEntry(ctx, w, ent); err != nil {
		e.log.Warn("the release promoted event was not written; boxes that poll still see the move", "bundle", ent.Bundle, "channel", ent.Channel, "seq", ent.Seq, "err", err)
	}
}

// PromotedEventSchema names the version of the events lockstep writes when
// it moves a channel.
const PromotedEventSchema = "lockstep.promoted/v1"

// promotedEvent is a "release promoted" event (docs/events.md).
type promotedEvent struct {
	Schema         string    `json:"schema"`
	Bundle         string    `json:"bundle"`
	Channel        string    `json:"channel"`
	Seq            int64     `json:"seq"`
	Release        string    `json:"release"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	Previous       string    `json:"previous"`
	Action         string    `json:"action"`
	Time           time.Time `json:"time"`
}

// runConsume is `consume`: build on the rebuild events of a topic.
func runConsume(c *cli.Context, e *env) error {
	spec, err := pipeline.LoadSpec(c.String("spec"), e.reg)
	if err != nil {
		return err
	}
	brokers := c.StringSlice("brokers")
	if len(brokers) == 0 || c.String("topic") == "" || c.String("group") == "" {
		return fmt.Errorf("%w: consume needs --brokers, --topic and --group", errUsage)
	}
	dialer, transport, err := kafkaConn(c)
	if err != nil {
		return err
	}
	sign, err := signer(c)
	if err != nil {
		return err
	}
	dlq := c.String("dead-letter-topic")
	if dlq == "" {
		dlq = c.String("topic") + ".dlq"
	}
	events := newEventWriters(c)
	defer events.close()
	for _, b := range spec.Bundles {
		if _, err := events.forBundle(b); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_consume_events_total",
		Help: "Events by outcome: published, unchanged, superseded, coalesced, dead-lettered."}, []string{"bundle", "outcome"})
	lastOK := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_consume_last_success_timestamp_seconds",
		Help: "When an event of the bundle was last handled."}, []string{"bundle"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_consume_lag",
		Help: "Events of the partition not yet committed by the group."}, []string{"partition"})
	reg.MustRegister(outcomes, lastOK, lag)
	stopMetrics, err := serveMetrics(c, e, reg, nil)
	if err != nil {
		return err
	}
	defer stopMetrics()
	run := func(ctx context.Context, b *pipeline.Bundle, ev *pipeline.RebuildEvent) (*pipeline.RunResult, error) {
		bld, err := e.builder(c, b)
		if err != nil {
			return nil, err
		}
		reason := ev.Reason
		if reason == "" {
			reason = "kafka event"
		}
		if ev.RequestedBy != "" {
			reason += " (requested by " + ev.RequestedBy + ")"
		}
		res, err := pipeline.Run(ctx, bld, b, pipeline.RunOptions{
			Publish: publish.PublishOptions{Parallel: c.Int("parallel"), Logger: e.log, LockWait: c.Duration("lock-wait"), Signer: sign},
			Reason:  reason, Logger: e.log,
		})
		if err == nil && res.Promoted {
			w, _ := events.forBundle(b)
			announceRun(ctx, e, w, res)
		}
		return res, err
	}
	e.log.Info("consuming", "topic", c.String("topic"), "group", c.String("group"), "dead_letters", dlq)
	return pipeline.Consume(e.ctx, spec, pipeline.ConsumeOptions{
		Brokers: brokers, Topic: c.String("topic"), Group: c.String("group"), DeadLetters: dlq,
		Dialer: dialer, Transport: transport, Logger: e.log, Run: run, LagInterval: c.Duration("lag-interval"),
		OnLag: func(p int, n int64) { lag.WithLabelValues(strconv.Itoa(p)).Set(float64(n)) },
		OnEvent: func(ce pipeline.ConsumeEvent) {
			outcomes.WithLabelValues(ce.Bundle, ce.Outcome).Inc()
			if ce.Err == nil {
				lastOK.WithLabelValues(ce.Bundle).SetToCurrentTime()
			}
			e.log.Info("event handled", "bundle", ce.Bundle, "partition", ce.Partition, "offset", ce.Offset, "outcome", ce.Outcome)
		},
	})
}

// announceRun writes the event of the entry a run wrote.
func announceRun(ctx context.Context, e *env, w *kafka.Writer, res *pipeline.RunResult) {
	if w == nil || !res.Promoted {
		return
	}
	ent, err := e.store.ReadEntry(ctx, res.Bundle, res.Channel, res.Seq)
	if err != nil {
		e.log.Warn("the release promoted event was not written", "err", err)
		return
	}
	announce(ctx, e, w, ent)
}

// emitEntry writes the "release promoted" event of a channel entry, keyed
// by bundle so that one partition orders one bundle's events.
func emitEntry(ctx context.Context, w *kafka.Writer, ent *publish.Entry) error {
	data, _ := json.Marshal(promotedEvent{Schema: PromotedEventSchema, Bundle: ent.Bundle, Channel: ent.Channel, Seq: ent.Seq,
		Release: ent.Release, ManifestSHA256: ent.ManifestSHA256, Previous: ent.Previous, Action: ent.Action, Time: ent.Time})
	// Retried a little: the first write to a topic being created fails.
	for i := 0; ; i++ {
		err := w.WriteMessages(ctx, kafka.Message{Key: []byte(ent.Bundle), Value: data})
		if err == nil || i == 20 || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
