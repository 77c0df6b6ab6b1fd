package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/detect"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/watch"
)

// startDetector starts the streaming leak detector's alerter (watch
// channels, alerts and leak_findings tables) and returns the pipeline hook
// that feeds the detector the CDN records. The returned stop waits for
// the alerter to store what it holds once ctx is done. Nothing starts
// (and the hook is nil) when detect.disabled is set or no stream carries
// CDN logs.
func startDetector(ctx context.Context, cfg config.Config, conn *chclient.Conn, log *slog.Logger) (hook pipeline.Hook, stop func(), err error) {
	stop = func() {}
	cdn := false
	for _, s := range cfg.Streams {
		if parser, err := transform.NewParserWith(s.Format, s.ParserOptions()); err == nil && parser.Kind() == transform.KindCDN {
			cdn = true
		}
	}
	if cfg.Detect.Disabled || !cdn {
		return nil, stop, nil
	}
	o, err := detectOptions(cfg)
	if err != nil {
		return nil, stop, err
	}
	d := detect.New(detect.Options{MaxObjects: cfg.Detect.MaxObjects, Window: cfg.Detect.Window, BodySessions: cfg.Detect.BodySessions})
	a := detect.NewAlerter(conn, o, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx, d.Findings())
	}()
	go func() {
		// Findings the alerter could not take in time are lost for the
		// stream (the scheduled session_mixing rule still sees them).
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		var reported int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n := d.Dropped.Load(); n > reported {
					log.Warn("leak detector: findings dropped, the alerter is behind", "dropped", n-reported, "total", n)
					reported = n
				}
			}
		}
	}()
	if len(o.Names) == 0 {
		log.Warn("leak detector: no watch channels configured: leaks are stored in leak_findings and alerts, nobody is told")
	}
	log.Info("leak detector on", "channels", strings.Join(o.Names, ","), "max_objects", cfg.Detect.MaxObjects)
	return pipeline.RecordFunc[transform.CDNRequest](d.Observe), func() { <-done }, nil
}

// detectOptions builds the alerter's options: thresholds from detect,
// channels and silences from watch.
func detectOptions(cfg config.Config) (detect.AlertOptions, error) {
	chans, err := watch.NewNotifiers(cfg.Watch.Channels, nil)
	if err != nil {
		return detect.AlertOptions{}, fmt.Errorf("config: %w", err)
	}
	o := detect.AlertOptions{
		MinSessions: cfg.Detect.MinSessions, UpdateEvery: cfg.Detect.UpdateEvery, Renotify: cfg.Watch.Renotify,
		Channels: chans, SendWarnings: cfg.Watch.MinSeverity != "critical",
	}
	names := cfg.Detect.Channels // config.Validate checked that each is a channel
	if len(names) == 0 {
		for _, c := range cfg.Watch.Channels {
			names = append(names, c.Name)
		}
	}
	o.Names = names
	for _, s := range cfg.Watch.Silence {
		if s.Rule != "" && s.Rule != detect.Rule {
			continue
		}
		ds := detect.Silence{Host: s.Host, Template: s.Template, Class: s.Class, Until: s.Until, Reason: s.Reason}
		if s.Key != "" {
			host, template, ok := strings.Cut(s.Key, " | ")
			if !ok {
				continue // not a host | path_template key
			}
			ds.Host, ds.Template = host, template
		}
		o.Silences = append(o.Silences, ds)
	}
	return o, nil
}
