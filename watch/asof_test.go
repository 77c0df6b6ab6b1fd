package watch_test

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/watch"
)

// TestPastClockAgreesWithQueries: a watch cycle run with a past clock opens
// exactly the alerts the catalogue queries give as of that moment (at and
// until = the clock), though later events are already stored: a run that
// fell silent and resumed is stuck only while silent, a run that later
// failed is not failed before it did.
func TestPastClockAgreesWithQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	type ev struct {
		job, run, event string
		at              time.Duration
		exit            int32 // -1 = none
	}
	h, m := time.Hour, time.Minute
	evs := []ev{
		{"nightly", "n1", "started", 2 * h, -1}, // silent 02:12-03:03
		{"nightly", "n1", "heartbeat", 2*h + 12*m, -1},
		{"nightly", "n1", "heartbeat", 3*h + 3*m, -1},
		{"nightly", "n1", "finished", 3*h + 10*m, 0},
		{"report", "r1", "started", 2 * h, -1}, // fails 02:30
		{"report", "r1", "failed", 2*h + 30*m, 2},
		{"sync", "s1", "started", 2*h + 50*m, -1}, // s1 and s2 overlap from 02:52
		{"sync", "s2", "started", 2*h + 52*m, -1},
		{"sync", "s1", "finished", 3 * h, 0},
		{"sync", "s2", "finished", 3*h + 5*m, 0},
	}
	for i := 1; i <= 5; i++ { // etl history: 5 runs of 100 s, then e6 from 02:40 to 03:00
		start := time.Duration(i) * 10 * m
		evs = append(evs, ev{"etl", "e" + string(rune('0'+i)), "started", start, -1}, ev{"etl", "e" + string(rune('0'+i)), "finished", start + 100*time.Second, 0})
	}
	evs = append(evs, ev{"etl", "e6", "started", 2*h + 40*m, -1}, ev{"etl", "e6", "finished", 3 * h, 0})
	w := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i, e := range evs { // one insert each: run states split over rows
		b := tables.NewJobEvents()
		je := transform.JobEvent{Time: day.Add(e.at), Job: e.job, RunID: e.run, Event: e.event, Attempt: 1, Host: "h1"}
		if e.exit >= 0 {
			je.ExitCode, je.HasExitCode = e.exit, true
		}
		b.Append(&je, tables.Meta{Topic: "jobs", Offset: int64(i)}, day, 100)
		if err := w.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []string{"2026-11-20 02:00:00", "2026-11-20 02:45:00"} { // billing: 02:00 missed, 02:45 not yet over
		if err := conn.Exec(ctx, "INSERT INTO job_expected_runs (job, expected_time, grace_s) SELECT 'billing', toDateTime('"+at+"', 'UTC'), 600"); err != nil {
			t.Fatal(err)
		}
	}

	var rules []config.WatchRule
	for _, r := range watch.DefaultRules() {
		if r.Name == "failed_runs" || r.Name == "stuck_runs" || r.Name == "missed_runs" {
			rules = append(rules, r)
		}
	}
	rules = append(rules,
		config.WatchRule{Name: "overrunning_runs", Key: []string{"job", "run_id"}},
		config.WatchRule{Name: "overlapping_runs", Key: []string{"job", "run_id", "other_run_id"}, Params: map[string]string{"since": "now-24h"}},
	)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() []string {
		rows, err := conn.QueryStrings(ctx, "SELECT rule, alert_key FROM alerts FINAL WHERE resolved_at = toDateTime(0) ORDER BY rule, alert_key")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r[0]+": "+r[1])
		}
		return out
	}
	// fromQueries runs each rule's query with its times bound to clock.
	fromQueries := func(clock time.Time) []string {
		var out []string
		for _, r := range rules {
			q, err := schemas.LookupQuery(r.Name)
			if err != nil {
				t.Fatal(err)
			}
			params := map[string]string{}
			for k, v := range r.Params {
				params[k] = v
			}
			for _, p := range q.Params {
				switch p.Name {
				case "at", "until":
					params[p.Name] = clock.Format(time.DateTime)
				case "since":
					params[p.Name] = clock.Add(-24 * time.Hour).Format(time.DateTime)
				}
			}
			sql, err := q.Render(params)
			if err != nil {
				t.Fatal(err)
			}
			cols, rows, err := conn.Query(ctx, sql)
			if err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
			for _, row := range rows {
				var key []string
				for _, k := range r.Key {
					for i, c := range cols {
						if c == k {
							key = append(key, row[i])
						}
					}
				}
				out = append(out, r.Name+": "+strings.Join(key, " | "))
			}
		}
		sort.Strings(out)
		return out
	}
	for _, tc := range []struct {
		clock string
		want  []string // the alerts open after the cycle
	}{
		{"02:20:00", []string{"missed_runs: billing | 2026-11-20 02:00:00"}},
		{"02:44:00", []string{
			"failed_runs: report | r1", // failed at 02:30
			"missed_runs: billing | 2026-11-20 02:00:00",
			"overrunning_runs: etl | e6", // 240 s > p95 100 s
			"stuck_runs: nightly | n1",   // silent since 02:12
		}},
		{"02:55:00", []string{
			"failed_runs: report | r1",
			"missed_runs: billing | 2026-11-20 02:00:00",
			"overlapping_runs: sync | s1 | s2",
			"overrunning_runs: etl | e6",
			"stuck_runs: nightly | n1",
		}},
		{"03:05:00", []string{ // n1 resumed at 03:03, e6 finished at 03:00
			"failed_runs: report | r1",
			"missed_runs: billing | 2026-11-20 02:00:00",
			"missed_runs: billing | 2026-11-20 02:45:00",
			"overlapping_runs: sync | s1 | s2",
		}},
	} {
		clock, err := time.Parse(time.DateTime, "2026-11-20 "+tc.clock)
		if err != nil {
			t.Fatal(err)
		}
		wt, err := watch.New(conn, config.Watch{Rules: rules}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		wt.Now = func() time.Time { return clock }
		r, err := wt.Cycle(ctx)
		if err != nil || len(r.RuleErrors) > 0 {
			t.Fatalf("cycle at %s: %v %v", tc.clock, err, r.RuleErrors)
		}
		got, queried := open(), fromQueries(clock)
		if strings.Join(got, "\n") != strings.Join(queried, "\n") {
			t.Errorf("clock %s: watch has open\n  %s\nthe queries as of then give\n  %s", tc.clock, strings.Join(got, "\n  "), strings.Join(queried, "\n  "))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("clock %s: open alerts\n  %s\nwant\n  %s", tc.clock, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
}
