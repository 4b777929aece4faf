package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/publish"
)

// pullFlags are pull's agent flags, beside the one-shot ones.
func pullFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.BoolFlag{Name: "watch", Usage: "keep running: follow the channel, pulling each new release as it is promoted"},
		&cli.DurationFlag{Name: "interval", Value: 30 * time.Second, Usage: "with --watch, how often to look at the channel"},
		&cli.StringFlag{Name: "listen", Usage: "with --watch, serve /healthz and Prometheus /metrics on `ADDR` (such as 127.0.0.1:9464)"},
		&cli.BoolFlag{Name: "check", Usage: "open each asset with its format's reader before swapping it in (the verify --deep code)"},
		&cli.StringFlag{Name: "on-swap", Usage: "run `CMD` (with sh -c) once per swap, such as telling the server to reload; LOCKSTEP_RELEASE, LOCKSTEP_PREVIOUS, LOCKSTEP_DEST, LOCKSTEP_BUNDLE, LOCKSTEP_CHANNEL and LOCKSTEP_SEQ are set"},
		&cli.BoolFlag{Name: "rollback-on-hook-failure", Usage: "when --on-swap fails, swap back to the release served before (and run the hook for that swap)"},
		&cli.BoolFlag{Name: "rollback", Usage: "swap back to the release served before, from the copies DIR keeps, without the store (works offline)"},
		&cli.StringFlag{Name: "events-topic", EnvVars: []string{"LOCKSTEP_EVENTS_TOPIC"}, Usage: "with --watch, also look at the channel as soon as a \"release promoted\" event for it arrives on Kafka `TOPIC` (polling stays the fallback); needs --brokers"},
		&cli.StringFlag{Name: "events-group", Usage: "the Kafka consumer `GROUP` of --events-topic (default: one per box and DIR, so every box sees every event)"},
	}, kafkaFlags()...)
}

// pullOut is what pull prints: the pull, and the hook it ran.
type pullOut struct {
	*publish.PullResult
	Hook *hookOut `json:"hook,omitempty"`
}

// hookOut is one run of --on-swap.
type hookOut struct {
	Command    string `json:"command"`
	Release    string `json:"release"`
	Exit       int    `json:"exit"`
	RolledBack string `json:"rolled_back,omitempty"` // the release swapped back to after it failed
}

// errHook is an --on-swap command that failed.
var errHook = errors.New("--on-swap failed")

func deepCheck(e *env) publish.DeepCheck {
	return func(ctx context.Context, a publish.Asset, f *os.File) error {
		format, err := e.reg.Lookup(a.Format)
		if err != nil {
			return err
		}
		r, err := format.Open(f, a.Size)
		if err != nil {
			return err
		}
		defer r.Close()
		if r.Rows() != a.Rows {
			return fmt.Errorf("holds %d rows, the manifest says %d", r.Rows(), a.Rows)
		}
		return r.Check(ctx)
	}
}

func pullRequest(c *cli.Context, e *env, prog *progress) (publish.PullRequest, error) {
	keys, err := trust(c)
	if err != nil {
		return publish.PullRequest{}, err
	}
	req := publish.PullRequest{
		Bundle: c.String("bundle"), Channel: c.String("channel"), Release: c.String("release"),
		Dest: c.String("dest"), Keep: c.Int("keep"), Logger: e.log,
		ServerVersion: c.String("server-version"), Trust: keys,
	}
	if prog != nil {
		req.Progress = prog.update
	}
	if c.Bool("check") {
		req.Check = deepCheck(e)
	}
	return req, nil
}

// runPull is the one-shot pull, --watch (the agent) or --rollback.
func runPull(c *cli.Context, e *env) error {
	if c.Bool("watch") {
		return runAgent(c, e)
	}
	prog := newProgress("downloaded", e.out.json)
	req, err := pullRequest(c, e, prog)
	if err != nil {
		return err
	}
	res, err := publish.Pull(e.ctx, e.store, req)
	prog.finish()
	if err != nil {
		return err
	}
	return swapped(c, e, res)
}

// swapped runs the hook of a one-shot swap and prints the result.
func swapped(c *cli.Context, e *env, res *publish.PullResult) error {
	out := &pullOut{PullResult: res}
	herr := afterSwap(c, e, out)
	if perr := e.out.print(out, func(w *tw) { pullText(w, c, out) }); perr != nil {
		return perr
	}
	return herr
}

// runRollbackLocal is pull --rollback: no store needed.
func runRollbackLocal(c *cli.Context) error {
	e, err := setup(c, storeIfExists)
	if err != nil {
		return err
	}
	defer e.closer()
	res, err := publish.RollbackLocal(e.ctx, c.String("dest"))
	if err != nil {
		return err
	}
	return swapped(c, e, res)
}

func pullText(w *tw, c *cli.Context, out *pullOut) {
	res := out.PullResult
	how := fmt.Sprintf("downloaded and verified %s", bytesText(res.Downloaded))
	if res.Reused {
		how = "already on disk, re-verified"
	}
	w.line("pulled %s: %s", res.Release, how)
	was := "was " + orNone(res.Previous)
	if res.Previous == res.Release {
		was = "already current"
	}
	w.line("%s/current -> %s (%s)", strings.TrimSuffix(c.String("dest"), "/"), res.Path, was)
	if h := out.Hook; h != nil {
		w.line("on-swap %q for %s: exit %d", h.Command, h.Release, h.Exit)
		if h.RolledBack != "" {
			w.line("rolled back to %s", h.RolledBack)
		}
	}
}

// afterSwap runs --on-swap when the pull changed what DIR/current serves,
// and with --rollback-on-hook-failure swaps back when it fails.
func afterSwap(c *cli.Context, e *env, out *pullOut) error {
	cmd := c.String("on-swap")
	res := out.PullResult
	if cmd == "" || res.Previous == res.Release {
		return nil
	}
	code := runHook(e.ctx, e.log, cmd, c, res)
	out.Hook = &hookOut{Command: cmd, Release: res.Release, Exit: code}
	if code == 0 {
		return nil
	}
	err := fmt.Errorf("%w: %q exited %d after release %s was swapped in", errHook, cmd, code, res.Release)
	if !c.Bool("rollback-on-hook-failure") || res.Previous == "" {
		return err
	}
	back, rerr := publish.ServeLocal(e.ctx, c.String("dest"), res.Previous)
	if rerr != nil {
		return fmt.Errorf("%w; swapping back to %s failed too: %v", err, res.Previous, rerr)
	}
	out.Hook.RolledBack = back.Release
	runHook(e.ctx, e.log, cmd, c, back) // once per swap, the swap back too
	return fmt.Errorf("%w; swapped back to %s", err, back.Release)
}

// runHook runs cmd with sh -c and the release in its environment, and
// returns its exit status (-1 when it could not run).
func runHook(ctx context.Context, log *slog.Logger, cmd string, c *cli.Context, res *publish.PullResult) int {
	h := exec.CommandContext(ctx, "sh", "-c", cmd)
	h.Stdout, h.Stderr = os.Stderr, os.Stderr
	h.Env = append(os.Environ(),
		"LOCKSTEP_RELEASE="+res.Release, "LOCKSTEP_PREVIOUS="+res.Previous,
		"LOCKSTEP_DEST="+c.String("dest"), "LOCKSTEP_BUNDLE="+c.String("bundle"),
		"LOCKSTEP_CHANNEL="+c.String("channel"), "LOCKSTEP_SEQ="+strconv.FormatInt(res.Seq, 10))
	err := h.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
	}
	log.Info("on-swap ran", "release", res.Release, "exit", code)
	return code
}

// serveMetrics serves /metrics from reg and /healthz from health (plain
// "ok" when nil) on --listen, when it is set; stop shuts the server down.
func serveMetrics(c *cli.Context, e *env, reg *prometheus.Registry, health http.HandlerFunc) (stop func(), err error) {
	addr := c.String("listen")
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	if health == nil {
		health = func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", health)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	e.log.Info("listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// agentMetrics are what /metrics shows.
type agentMetrics struct {
	reg       *prometheus.Registry
	release   *prometheus.GaugeVec
	seq       prometheus.Gauge
	lastOK    prometheus.Gauge
	failures  prometheus.Counter
	bytes     prometheus.Counter
	swaps     prometheus.Counter
	hookFails prometheus.Counter
	refused   prometheus.Gauge
}

func newAgentMetrics() *agentMetrics {
	m := &agentMetrics{
		reg:       prometheus.NewRegistry(),
		release:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_agent_release_info", Help: "The release DIR/current serves (value 1)."}, []string{"bundle", "channel", "release"}),
		seq:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_agent_channel_seq", Help: "The channel entry of the release served."}),
		lastOK:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_agent_last_success_timestamp_seconds", Help: "When the channel was last checked successfully."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_agent_failures_total", Help: "Checks or pulls that failed; the box kept serving."}),
		bytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_agent_bytes_downloaded_total", Help: "Asset bytes downloaded."}),
		swaps:     prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_agent_swaps_total", Help: "Releases swapped in."}),
		hookFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_agent_hook_failures_total", Help: "--on-swap runs that failed."}),
		refused:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_agent_refused_seq", Help: "The channel entry the box last refused (0: none); it is not fetched again until the channel moves."}),
	}
	m.reg.MustRegister(m.release, m.seq, m.lastOK, m.failures, m.bytes, m.swaps, m.hookFails, m.refused)
	return m
}

// agentState is what /healthz reports.
type agentState struct {
	mu          sync.Mutex
	Release     string    `json:"release"`
	Seq         int64     `json:"seq"`
	LastSuccess time.Time `json:"last_success"`
	LastError   string    `json:"last_error"`
}

// runAgent is pull --watch: poll the channel every --interval, pull what
// is new, swap it in, run the hook; a failure is logged and counted, the
// box keeps serving, and the next interval tries again. SIGTERM stops it
// between pulls (a pull in flight is cancelled and leaves nothing half
// swapped).
func runAgent(c *cli.Context, e *env) error {
	if c.String("release") != "" {
		return fmt.Errorf("%w: --watch follows a channel; drop --release", errUsage)
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return fmt.Errorf("%w: --interval %s: give a positive duration such as 30s", errUsage, interval)
	}
	m := newAgentMetrics()
	st := &agentState{}
	stop, err := serveMetrics(c, e, m.reg, func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		// Healthy while it serves a release and its last check is
		// recent; a store outage shows here before the box is stale.
		if st.Release == "" || time.Since(st.LastSuccess) > 3*interval {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	})
	if err != nil {
		return err
	}
	defer stop()
	req, err := pullRequest(c, e, nil)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	if topic := c.String("events-topic"); topic != "" {
		if err := followEvents(c, e, topic, req, wake); err != nil {
			return err
		}
	}
	for {
		err := agentPoll(c, e, req, m, st)
		st.mu.Lock()
		if err != nil {
			st.LastError = err.Error()
			m.failures.Inc()
			e.log.Warn("agent: the box keeps serving what it had", "err", err)
		} else {
			st.LastError, st.LastSuccess = "", time.Now().UTC()
			m.lastOK.SetToCurrentTime()
		}
		st.mu.Unlock()
		select {
		case <-e.ctx.Done():
			e.log.Info("agent stopped")
			return nil
		case <-time.After(interval):
		case <-wake: // a promotion was announced: look now
		}
	}
}

// followEvents reads "release promoted" events and wakes the agent for
// those of its bundle and channel. Each box reads every event (a group of
// its own, from the newest offset): an event only says "look now"; what
// to serve still comes from the channel, verified as ever.
func followEvents(c *cli.Context, e *env, topic string, req publish.PullRequest, wake chan<- struct{}) error {
	brokers := c.StringSlice("brokers")
	if len(brokers) == 0 {
		return fmt.Errorf("%w: --events-topic needs --brokers (or LOCKSTEP_KAFKA_BROKERS)", errUsage)
	}
	dialer, _, err := kafkaConn(c)
	if err != nil {
		return err
	}
	group := c.String("events-group")
	if group == "" {
		host, _ := os.Hostname()
		abs, _ := filepath.Abs(req.Dest)
		sum := sha256.Sum256([]byte(abs))
		group = fmt.Sprintf("lockstep-agent-%s-%x", host, sum[:8])
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: group, Dialer: dialer,
		StartOffset: kafka.LastOffset, MaxWait: 500 * time.Millisecond, ReadBackoffMax: 2 * time.Second})
	go func() {
		defer r.Close()
		for {
			m, err := r.ReadMessage(e.ctx)
			if err != nil {
				if e.ctx.Err() != nil {
					return
				}
				e.log.Warn("agent: reading release events; polling goes on", "err", err)
				time.Sleep(time.Second)
				continue
			}
			var ev promotedEvent
			if json.Unmarshal(m.Value, &ev) != nil || ev.Schema != PromotedEventSchema {
				continue // not ours to judge: the channel is what counts
			}
			if ev.Bundle == req.Bundle && ev.Channel == req.Channel {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	return nil
}

// agentPoll looks at the channel once and pulls when its head is new. A
// head the box refused (recorded in DEST, so a restart remembers it) is
// not fetched again until the channel moves; meanwhile the box serves what
// it had and stays healthy.
func agentPoll(c *cli.Context, e *env, req publish.PullRequest, m *agentMetrics, st *agentState) error {
	head, err := e.store.Head(e.ctx, req.Bundle, req.Channel)
	if err != nil {
		return err
	}
	if head == nil {
		return fmt.Errorf("channel %s of bundle %s has never been promoted", req.Channel, req.Bundle)
	}
	st.mu.Lock()
	same := head.Seq == st.Seq && head.Release == st.Release && currentRelease(req.Dest) == head.Release
	st.mu.Unlock()
	if same {
		return nil // nothing new: no re-hashing every interval
	}
	refused, err := publish.Refused(req.Dest, req.Bundle, req.Channel)
	if err != nil {
		return err
	}
	if refused != nil && refused.Seq == head.Seq && refused.Release == head.Release {
		m.refused.Set(float64(head.Seq))
		return nil
	}
	res, err := publish.Pull(e.ctx, e.store, req)
	if err != nil {
		if errors.Is(err, publish.ErrVerify) || errors.Is(err, publish.ErrIncompatible) {
			m.refused.Set(float64(head.Seq))
			if rerr := publish.Refuse(req.Dest, req.Bundle, req.Channel, publish.Refusal{Seq: head.Seq, Release: head.Release, Reason: err.Error()}); rerr != nil {
				e.log.Warn("agent: cannot record the refusal", "err", rerr)
			}
		}
		return err
	}
	m.bytes.Add(float64(res.Downloaded))
	out := &pullOut{PullResult: res}
	herr := afterSwap(c, e, out)
	served := res.Release
	if out.Hook != nil && out.Hook.Exit != 0 {
		m.hookFails.Inc()
		if out.Hook.RolledBack != "" {
			served = out.Hook.RolledBack
			m.refused.Set(float64(head.Seq))
			if rerr := publish.Refuse(req.Dest, req.Bundle, req.Channel, publish.Refusal{Seq: head.Seq, Release: head.Release, Reason: herr.Error()}); rerr != nil {
				e.log.Warn("agent: cannot record the refusal", "err", rerr)
			}
		}
	}
	if res.Previous != res.Release {
		m.swaps.Inc()
	}
	m.release.Reset()
	m.release.WithLabelValues(req.Bundle, req.Channel, served).Set(1)
	m.seq.Set(float64(res.Seq))
	st.mu.Lock()
	st.Release, st.Seq = served, res.Seq
	st.mu.Unlock()
	e.log.Info("agent: release served", "release", served, "seq", res.Seq, "bytes", res.Downloaded)
	return herr
}

// currentRelease is the release DIR/current points at, "" for none.
func currentRelease(dest string) string {
	target, err := os.Readlink(filepath.Join(dest, publish.CurrentLink))
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(filepath.Base(target), "~")
	return name
}
