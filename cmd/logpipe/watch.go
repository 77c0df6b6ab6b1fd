package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/metrics"
	"github.com/logpipe/logpipe/watch"
)

func cmdWatch(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	once := fs.Bool("once", false, "run every rule once, print what happened, and exit")
	migrate := fs.Bool("migrate", false, "apply pending migrations first (the alerts table)")
	cfg, err := loadClickHouseConfig(fs, args)
	if err != nil {
		return err
	}
	// Rules, channels and silences are checked before connecting.
	if errs := watch.Check(cfg.Watch, true); len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	if *migrate {
		if err := app.Migrate(ctx, cfg, io.Discard, log); err != nil {
			return err
		}
	}
	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	w, err := watch.New(conn, cfg.Watch, nil, log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if w.Redact, err = app.NewRedactor(cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(cfg.Watch.Channels) == 0 {
		log.Warn("watch: no channels configured: alerts are tracked in the alerts table but nobody is told")
	}
	if !*once {
		if cfg.HTTP.Listen != "" {
			m := metrics.New()
			w.Hooks = append(w.Hooks, watchMetrics{m.Watch(w.Rules())})
			srv, err := metrics.Start(cfg.HTTP.Listen, metrics.Handler(m.Registry, metrics.ClickHouseCheck(conn.Ping)), log)
			if err != nil {
				return err
			}
			defer srv.Close()
		}
		log.Info("watching", "rules", w.Rules(), "interval", w.Interval())
		return w.Run(ctx)
	}
	r, err := w.Cycle(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "open %d, opened %d, resolved %d, notifications sent %d, failed %d\n", r.Open, r.Opened, r.Resolved, r.Sent, r.Failed)
	var names []string
	for n := range r.RuleErrors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "rule %s failed: %v\n", n, r.RuleErrors[n])
	}
	if len(names) > 0 {
		return fmt.Errorf("%d rules failed", len(names))
	}
	return nil
}

// watchMetrics feeds a watch process's metrics from its cycles.
type watchMetrics struct{ m *metrics.WatchMetrics }

// OnCycle implements watch.CycleHook.
func (w watchMetrics) OnCycle(r watch.Report, d time.Duration, err error) {
	c := metrics.Cycle{Sent: r.Sent, Failed: r.Failed, OpenByRule: r.OpenByRule, Duration: d, Err: err}
	for rule := range r.RuleErrors {
		c.RuleErrors = append(c.RuleErrors, rule)
	}
	w.m.OnCycle(c)
}
