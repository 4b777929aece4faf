package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/lockstep-data/lockstep/pipeline"
	"github.com/lockstep-data/lockstep/publish"
)

// scheduleMetrics are what the scheduler's /metrics shows.
type scheduleMetrics struct {
	reg      *prometheus.Registry
	runs     *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	lastOK   *prometheus.GaugeVec
	running  *prometheus.GaugeVec
	rows     *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	overlaps prometheus.Counter
}

func newScheduleMetrics() *scheduleMetrics {
	m := &scheduleMetrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_schedule_runs_total",
			Help: "Scheduled runs by outcome: published, unchanged, superseded, gate_failed, error."}, []string{"bundle", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lockstep_schedule_run_seconds",
			Help: "How long scheduled runs took.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)}, []string{"bundle"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_schedule_last_success_timestamp_seconds",
			Help: "When a run of the bundle last succeeded (published, unchanged or superseded)."}, []string{"bundle"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockstep_schedule_running",
			Help: "Runs of the bundle in flight (never more than 1)."}, []string{"bundle"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_schedule_rows_published_total",
			Help: "Rows of the assets of the releases published."}, []string{"bundle"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_schedule_bytes_published_total",
			Help: "Bytes uploaded for the releases published."}, []string{"bundle"}),
		overlaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_schedule_overlaps_total",
			Help: "Runs started while another run of the same bundle was in flight (always 0)."}),
	}
	m.reg.MustRegister(m.runs, m.seconds, m.lastOK, m.running, m.rows, m.bytes, m.overlaps)
	return m
}

// outcome names a run's result for the metrics.
func outcome(res *pipeline.RunResult, err error) string {
	switch {
	case errors.Is(err, pipeline.ErrGateFailed):
		return "gate_failed"
	case err != nil:
		return "error"
	case res.Published:
		return "published"
	}
	return res.Status // unchanged or superseded
}

// runSchedule is `schedule`: a daemon running each bundle on its cron.
func runSchedule(c *cli.Context, e *env) error {
	spec, err := pipeline.LoadSpec(c.String("spec"), e.reg)
	if err != nil {
		return err
	}
	names := c.StringSlice("bundle")
	if len(names) == 0 {
		names = spec.Names()
	}
	var bundles []*pipeline.Bundle
	slices.Sort(names)
	names = slices.Compact(names) // one loop per bundle, however often it is named
	for _, n := range names {
		b, err := spec.Bundle(n)
		if err != nil {
			return err
		}
		if b.Scheduled() {
			bundles = append(bundles, b)
		} else if c.IsSet("bundle") {
			return fmt.Errorf("%w: bundle %s has no schedule: add schedule: \"*/15 * * * *\" to it in %s", errUsage, n, spec.Path)
		}
	}
	if len(bundles) == 0 {
		return fmt.Errorf("%w: no bundle of %s has a schedule: add schedule: \"*/15 * * * *\" to one", errUsage, spec.Path)
	}
	events := newEventWriters(c)
	defer events.close()
	for _, b := range bundles {
		if _, err := events.forBundle(b); err != nil {
			return err
		}
	}
	m := newScheduleMetrics()
	stopMetrics, err := serveMetrics(c, e, m.reg, nil)
	if err != nil {
		return err
	}
	defer stopMetrics()
	for _, b := range bundles {
		e.log.Info("scheduled", "bundle", b.Name, "when", b.ScheduleText())
		m.running.WithLabelValues(b.Name).Set(0)
	}
	var mu sync.Mutex
	inFlight := map[string]bool{}
	run := func(ctx context.Context, b *pipeline.Bundle) (*pipeline.RunResult, error) {
		mu.Lock()
		if inFlight[b.Name] { // cannot happen: one loop per bundle; counted if it ever does
			m.overlaps.Inc()
		}
		inFlight[b.Name] = true
		mu.Unlock()
		m.running.WithLabelValues(b.Name).Inc()
		defer func() {
			mu.Lock()
			inFlight[b.Name] = false
			mu.Unlock()
			m.running.WithLabelValues(b.Name).Dec()
		}()
		bld, err := e.builder(c, b)
		if err != nil {
			return nil, err
		}
		sign, err := signer(c)
		if err != nil {
			return nil, err
		}
		e.log.Info("run started", "bundle", b.Name)
		res, err := pipeline.Run(ctx, bld, b, pipeline.RunOptions{
			Publish: publish.PublishOptions{Parallel: c.Int("parallel"), Logger: e.log, LockWait: c.Duration("lock-wait"), Signer: sign},
			Reason:  "schedule " + b.Schedule, Logger: e.log,
		})
		if err == nil {
			w, _ := events.forBundle(b)
			announceRun(ctx, e, w, res)
		}
		return res, err
	}
	pipeline.Schedule(e.ctx, bundles, c.Duration("grace"), run, func(ev pipeline.ScheduleEvent) {
		o := outcome(ev.Result, ev.Err)
		m.runs.WithLabelValues(ev.Bundle, o).Inc()
		m.seconds.WithLabelValues(ev.Bundle).Observe(ev.Finished.Sub(ev.Start).Seconds())
		if ev.Err != nil {
			e.log.Warn("run finished", "bundle", ev.Bundle, "outcome", o, "seconds", ev.Finished.Sub(ev.Start).Seconds(), "err", strings.SplitN(ev.Err.Error(), "\n", 2)[0])
			return
		}
		m.lastOK.WithLabelValues(ev.Bundle).Set(float64(ev.Finished.Unix()))
		if ev.Result.Published {
			m.bytes.WithLabelValues(ev.Bundle).Add(float64(ev.Result.BytesUploaded))
			m.rows.WithLabelValues(ev.Bundle).Add(float64(ev.Result.Rows))
		}
		e.log.Info("run finished", "bundle", ev.Bundle, "outcome", o, "release", ev.Result.Release,
			"start", ev.Start.Format(time.RFC3339Nano), "end", ev.Finished.Format(time.RFC3339Nano))
	})
	e.log.Info("scheduler stopped")
	return nil
}
