package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/sample"
	"github.com/logpipe/logpipe/schedule"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/warehouse"
)

// cmdDemo runs the whole path on this machine: an in-process Kafka broker
// (kfake), a local ClickHouse server, sample job and CDN logs with a
// simulated cache incident, the pipeline, and the analysts' answers.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", ".logpipe-demo", "directory for the local ClickHouse server's data")
	cdnLines := fs.Int("cdn", 20000, "CDN requests to generate")
	days := fs.Int("days", 3, "days of batch-job history to generate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	quiet := log
	if os.Getenv("LOGPIPE_LOG_LEVEL") == "" {
		quiet = app.RedactingLogger(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }

	const jobsTopic, cdnTopic = "batch-jobs", "cdn-fastly"
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 3, Topics: []string{jobsTopic, cdnTopic}})
	if err != nil {
		return err
	}
	defer broker.Close()
	say("Kafka (in-process kfake broker) listening on %s", broker.Addrs[0])

	chDir, err := filepath.Abs(filepath.Join(*dir, "clickhouse"))
	if err != nil {
		return err
	}
	say("starting ClickHouse in %s (first run installs clickhouse-server with apt-get)", chDir)
	ch, err := chserver.Start(ctx, chDir)
	if err != nil {
		return err
	}
	version, _ := ch.Version(ctx)
	say("ClickHouse %s listening on %s", version, ch.TCPAddr)

	key := make([]byte, 32)
	rand.Read(key)
	cfg := config.Default()
	cfg.Kafka.Brokers = broker.Addrs
	cfg.Kafka.Group = "logpipe-demo"
	cfg.ClickHouse.Addr = []string{ch.TCPAddr}
	cfg.ClickHouse.Database = "logpipe_demo"
	cfg.Hash.Key = hex.EncodeToString(key) // a fresh key each demo, never stored
	cfg.Batch.MaxAge = 500 * time.Millisecond
	cfg.Streams = []config.Stream{
		{Name: "jobs", Topic: jobsTopic, Format: "logpipe-job"},
		{Name: "cdn-fastly", Topic: cdnTopic, Format: "fastly-json"},
	}
	cfg.Schedules = []config.JobSchedule{
		{Job: "payout-close", Cron: "0 0 * * *", Calendar: "business-days", Grace: 30 * time.Minute},
		{Job: "search-index", Cron: "@hourly", Grace: 10 * time.Minute},
		{Job: "mail-digest", Cron: "*/15 * * * *", Grace: 5 * time.Minute},
		{Job: "report-export", Cron: "0 */6 * * *", Grace: 15 * time.Minute},
		{Job: "image-gc", Cron: "*/30 * * * *", Grace: 10 * time.Minute},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Start from an empty database so the answers are the demo's own.
	if err := chclient.CreateDatabase(ctx, app.SinkOptions(cfg)); err != nil {
		return err
	}
	if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS logpipe_demo"); err != nil {
		return err
	}
	if err := app.Migrate(ctx, cfg, io.Discard, quiet); err != nil {
		return err
	}
	say("schema migrated into database logpipe_demo")

	now := time.Now().UTC().Truncate(time.Minute)
	incidentFrom, incidentTo := now.Add(-50*time.Minute), now.Add(-20*time.Minute)
	jobs, jsum := sample.Jobs(1, now.Add(-time.Duration(*days)*24*time.Hour), time.Duration(*days)*24*time.Hour)
	cdn, csum := sample.CDN(2, sample.CDNOptions{
		Requests:     *cdnLines,
		Start:        now.Add(-2 * time.Hour),
		Span:         2 * time.Hour,
		IncidentFrom: incidentFrom,
		IncidentTo:   incidentTo,
	})
	// A few lines that cannot be parsed: they must land in ingest_errors.
	bad := []sample.Line{
		{Key: []byte("bad"), Value: []byte(`{"job":"payout-close","run_id":"x","event":"started"}`)},
		{Key: []byte("bad"), Value: []byte(`not json at all, client 198.51.100.7 cookie=session=abc`)},
	}
	start := time.Now()
	if err := broker.Produce(ctx, jobsTopic, messages(append(jobs, bad[0]))...); err != nil {
		return err
	}
	if err := broker.Produce(ctx, cdnTopic, messages(append(cdn, bad[1]))...); err != nil {
		return err
	}
	total := int64(len(jobs) + len(cdn) + len(bad))
	say("produced %d job events (%d runs, %d failed) and %d CDN requests (%d personal pages served from cache) in %s",
		len(jobs), jsum.Runs, jsum.Failed, len(cdn), csum.PersonalCached, time.Since(start).Round(time.Millisecond))

	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	p, _, err := app.NewPipeline(cfg, conn, quiet)
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- app.Consume(runCtx, cfg, p, quiet) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	// The progress line is redrawn in place on a terminal, and only when
	// the count moved (it stays at the total while the last commit is
	// awaited); a log file gets the summary line only.
	tty := isTerminal(stdout)
	shown := int64(-1)
wait:
	for {
		select {
		case <-tick.C:
			n := p.Stats.Records.Load()
			if tty && n != shown {
				fmt.Fprintf(stdout, "\r    ingesting: %d/%d records", n, total)
				shown = n
			}
			if n >= total && p.Stats.Commits.Load() > 0 {
				break wait
			}
			if time.Since(start) > 2*time.Minute {
				stopRun()
				return errors.New("demo: ingest did not finish within 2 minutes")
			}
		case err := <-done:
			stopRun()
			return fmt.Errorf("demo: pipeline stopped early: %w", err)
		}
	}
	stopRun() // graceful: flush, commit, leave the group
	if err := <-done; err != nil {
		return err
	}
	elapsed := time.Since(start)
	if shown >= 0 {
		fmt.Fprintln(stdout)
	}
	say("ingested %d records in %s (%.0f records/s): %d rows stored, %d lines rejected into ingest_errors",
		p.Stats.Records.Load(), elapsed.Round(time.Millisecond), float64(p.Stats.Records.Load())/elapsed.Seconds(),
		p.Stats.Rows.Load(), p.Stats.Rejected.Load())

	scheds, err := schedule.FromConfig(cfg.Schedules)
	if err != nil {
		return err
	}
	if _, err := app.SyncSchedules(ctx, conn, scheds, cfg.Schedules, now.Add(-time.Duration(*days)*24*time.Hour), now); err != nil {
		return err
	}
	say("schedules synced: expected run times written to job_expected_runs (%d run left out on purpose: %v)", len(jsum.Missed), jsum.Missed)

	window := map[string]string{"since": incidentFrom.Add(-10 * time.Minute).Format(time.DateTime), "until": now.Format(time.DateTime)}
	for _, a := range []struct {
		title, query string
		params       map[string]string
	}{
		{"Slowest jobs (p50/p95 of finished runs)", "slowest_jobs", nil},
		{"Failed runs (newest first)", "failed_runs", map[string]string{"limit": "8"}},
		{"Runs expected by the schedule but never started", "missed_runs", map[string]string{"since": now.Add(-time.Duration(*days) * 24 * time.Hour).Format(time.DateTime)}},
		{"Personal pages served from cache or collapsed (the incident signature)", "personal_cache_hits", nil},
		{"Incident report: owners (whose page went to someone else), viewers (who got it), leaks, unknown producers", "incident_summary", window},
		{"Incident notification list: each exposed owner, how many sessions saw their page", "incident_owners", window},
		{"Incident evidence: which response went to whom", "incident_pairs", window},
		{"Hit-ratio jumps against the trailing baseline", "hit_ratio_jumps", map[string]string{"at": incidentTo.Format(time.DateTime), "min_requests": "20"}},
		{"CDN configuration versions (first seen in the logs)", "config_changes", nil},
	} {
		q, err := schemas.LookupQuery(a.query)
		if err != nil {
			return err
		}
		sql, err := q.RenderWith(ctx, conn.Scalar, a.params)
		if err != nil {
			return err
		}
		cols, rows, err := conn.Query(ctx, sql)
		if err != nil {
			return fmt.Errorf("demo: query %s: %w", a.query, err)
		}
		fmt.Fprintf(stdout, "\n--- %s  [logpipe query %s]\n", a.title, a.query)
		if len(rows) > 10 {
			fmt.Fprintf(stdout, "(first 10 of %d rows)\n", len(rows))
			rows = rows[:10]
		}
		if err := app.PrintRows(stdout, "table", cols, rows); err != nil {
			return err
		}
	}
	// Which tables are read: the evidence `logpipe tables` gives before a
	// table is retired.
	ch.FlushLogs(ctx)
	cols, rows, err := app.TableRows(ctx, warehouse.New(conn), false, 24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n--- Tables, their size and who read them today  [logpipe tables]\n")
	if err := app.PrintRows(stdout, "table", cols, rows); err != nil {
		return err
	}
	script, _ := chserver.ScriptPath()
	fmt.Fprintf(stdout, `
ClickHouse keeps running so you can go on asking:
  %[1]s client %[2]s --database logpipe_demo
  e.g. SELECT status, count() FROM job_runs GROUP BY status
Stop it with:
  %[1]s stop %[2]s
`, relPath(script), relPath(chDir))
	return nil
}

func messages(lines []sample.Line) []kafka.Message {
	ms := make([]kafka.Message, len(lines))
	for i, l := range lines {
		ms[i] = kafka.Message{Key: l.Key, Value: l.Value}
	}
	return ms
}

func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && len(r) < len(p) {
		return r
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
