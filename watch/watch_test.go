package watch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/watch"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// receiver records what the webhooks receive.
type receiver struct {
	mu    sync.Mutex
	hooks []watch.Event
	slack []string
	fail  bool // answer 500
	srv   *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			http.Error(w, "receiver down", http.StatusInternalServerError)
			return
		}
		switch req.URL.Path {
		case "/hook":
			var e watch.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Errorf("webhook body %s: %v", b, err)
			}
			r.hooks = append(r.hooks, e)
		case "/slack":
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 || m["text"] == "" {
				t.Errorf("slack body %s: want {\"text\": ...} (%v)", b, err)
			}
			r.slack = append(r.slack, m["text"])
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// take returns and forgets what was received, webhook events as
// "status rule key" sorted.
func (r *receiver) take() (events []string, full []watch.Event, slack []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.hooks {
		s := e.Status + " " + e.Rule + " " + e.Key
		if e.Reminder {
			s += " (reminder)"
		}
		events = append(events, s)
	}
	sort.Strings(events)
	full, slack = r.hooks, r.slack
	r.hooks, r.slack = nil, nil
	return events, full, slack
}

func newDB(t testing.TB) *chclient.Conn { return chtest.Migrated(t, "watch") }

// insertFixture stores, through the parsers, enricher and sink batches the
// pipeline uses, one failed run of job "etl" starting at t0 and one
// personal page (/mypage) served from cache to a session at t0+10m.
func insertFixture(t testing.TB, conn *chclient.Conn, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	e, err := transform.NewEnricher(transform.EnrichConfig{
		HashKey: []byte("watch-test-key-0123456789abcdef"), SessionCookies: []string{"session"},
		PathClasses: []transform.PathClassRule{{Class: "personal", Patterns: []string{"/mypage*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := sink.NewWriter(conn, log)
	jp, _ := transform.NewParserWith("logpipe-job", transform.ParserOptions{})
	jobs := tables.NewJobEvents()
	for i, line := range []string{
		`{"time":"` + t0.Format(time.RFC3339) + `","job":"etl","run_id":"etl-0001","event":"started","host":"batch-01","attempt":1}`,
		`{"time":"` + t0.Add(95*time.Second).Format(time.RFC3339) + `","job":"etl","run_id":"etl-0001","event":"failed","exit_code":3,"error":"disk full","error_class":"IOError"}`,
		`{"time":"` + t0.Add(-time.Hour).Format(time.RFC3339) + `","job":"etl","run_id":"etl-0000","event":"started","host":"batch-01","attempt":1}`,
		`{"time":"` + t0.Add(-time.Hour+80*time.Second).Format(time.RFC3339) + `","job":"etl","run_id":"etl-0000","event":"finished","exit_code":0}`,
	} {
		var ev transform.JobEvent
		if err := jp.(transform.JobParser).Parse([]byte(line), &ev); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		e.Job(&ev)
		jobs.Append(&ev, tables.Meta{Topic: "jobs", Offset: int64(i)}, t0, len(line))
	}
	cp, _ := transform.NewParserWith("fastly-json", transform.ParserOptions{})
	cdn := tables.NewCDNRequests()
	ts := t0.Add(10 * time.Minute).Format("2006-01-02T15:04:05.000Z")
	for i, line := range []string{
		`{"timestamp":"` + ts + `","client_ip":"192.0.2.7","host":"www.example.jp","url":"/mypage","request_method":"GET","request_cookie":"session=abc","response_state":"HIT","response_status":200,"response_body_size":1234}`,
		`{"timestamp":"` + ts + `","client_ip":"192.0.2.8","host":"www.example.jp","url":"/items/m123","request_method":"GET","response_state":"HIT","response_status":200,"response_body_size":99}`,
	} {
		var r transform.CDNRequest
		if err := cp.(transform.CDNParser).Parse([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		r.Vendor = "fastly"
		e.CDN(&r)
		cdn.Append(&r, tables.Meta{Topic: "cdn", Offset: int64(i)}, t0, len(line))
	}
	for _, b := range []sink.Batch{jobs, cdn} {
		if err := w.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatchEndToEnd runs the default rules against a failed run and a
// cached personal page: one alert each, no repeats, state kept across a
// restart, reminders after renotify, resolves once the condition is gone.
func TestWatchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	insertFixture(t, conn, t0)
	rec := newReceiver(t)
	cfg := config.Watch{
		Renotify:    4 * time.Hour,
		MinSeverity: "info", // cache_anomalies (info) is sent too
		Channels: []config.WatchChannel{
			{Name: "ops", Type: "webhook", URL: rec.srv.URL + "/hook"},
			{Name: "chat", Type: "slack", URL: rec.srv.URL + "/slack"},
		},
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	now := t0.Add(20 * time.Minute)
	newWatcher := func() *watch.Watcher {
		w, err := watch.New(conn, cfg, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		w.Now = func() time.Time { return now }
		return w
	}
	cycle := func(w *watch.Watcher) watch.Report {
		t.Helper()
		r, err := w.Cycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.RuleErrors) > 0 {
			t.Fatalf("rule errors: %v", r.RuleErrors)
		}
		return r
	}
	var lastSlack []string
	expect := func(step string, want ...string) []watch.Event {
		t.Helper()
		got, full, slack := rec.take()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: webhook got\n  %s\nwant\n  %s", step, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if len(slack) != len(want) {
			t.Errorf("%s: slack got %d messages, want %d", step, len(slack), len(want))
		}
		lastSlack = slack
		return full
	}

	w := newWatcher()
	if got := strings.Join(w.Rules(), ","); got != "failed_runs,stuck_runs,missed_runs,session_mixing,cache_anomalies,hit_ratio_jumps" {
		t.Fatalf("default rules: %s", got)
	}
	r := cycle(w)
	if r.Opened != 2 || r.Open != 2 || r.Sent != 4 || r.Failed != 0 {
		t.Errorf("first cycle: %+v, want 2 opened, 2 open, 4 sent", r)
	}
	events := expect("first cycle",
		"firing cache_anomalies www.example.jp | /mypage",
		"firing failed_runs etl | etl-0001")
	slackFailed := ""
	for _, m := range lastSlack {
		if strings.Contains(m, "failed_runs") {
			slackFailed = m
		}
	}
	for _, want := range []string{":rotating_light: *FIRING* [warning] failed_runs: etl | etl-0001\n", "_Which runs failed?", "\nexit_code: 3\n", "\nerror: disk full\n", "Dig further:\n```\nSELECT *\nFROM\n(\nSELECT\n    job,", "WHERE CAST(`job` AS String) = 'etl'\n  AND CAST(`run_id` AS String) = 'etl-0001'\n```"} {
		if !strings.Contains(slackFailed, want) {
			t.Errorf("slack message lacks %q:\n%s", want, slackFailed)
		}
	}
	// The evidence SQL names the database: it runs from a connection to
	// another one, as when pasted into clickhouse-client without -d.
	other, err := chclient.Open(ctx, chclient.Options{Addr: []string{chserver.Shared(t).TCPAddr}, Database: "default", User: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, e := range events {
		if !strings.Contains(e.Evidence.SQL, "FROM "+conn.Database()+".") {
			t.Errorf("%s evidence SQL does not name database %s:\n%s", e.Rule, conn.Database(), e.Evidence.SQL)
		}
		// The evidence SQL selects exactly this row again.
		rows, err := other.QueryStrings(ctx, e.Evidence.SQL)
		if err != nil {
			t.Fatalf("%s evidence SQL: %v\n%s", e.Rule, err, e.Evidence.SQL)
		}
		if len(rows) != 1 || strings.Join(rows[0], "\t") != strings.Join(e.Evidence.Values, "\t") {
			t.Errorf("%s evidence SQL returned %v, want %v", e.Rule, rows, e.Evidence.Values)
		}
		if e.Rule != "failed_runs" {
			continue
		}
		if e.Severity != "warning" || !e.OpenedAt.Equal(now) {
			t.Errorf("failed_runs event: severity %s opened %v", e.Severity, e.OpenedAt)
		}
		row := map[string]string{}
		for i, c := range e.Evidence.Columns {
			row[c] = e.Evidence.Values[i]
		}
		if row["exit_code"] != "3" || row["error_class"] != "IOError" || row["start_time"] != "2026-11-25 03:00:00" || row["duration_s"] != "95" {
			t.Errorf("failed_runs evidence: %v", row)
		}
	}

	// Same condition a minute later: nothing new.
	now = now.Add(time.Minute)
	if r := cycle(w); r.Sent != 0 || r.Opened != 0 || r.Open != 2 {
		t.Errorf("second cycle: %+v", r)
	}
	expect("second cycle")

	// A restarted watch reads the state back: still nothing to send.
	w = newWatcher()
	now = now.Add(time.Minute)
	if r := cycle(w); r.Sent != 0 || r.Open != 2 {
		t.Errorf("after restart: %+v", r)
	}
	expect("after restart")

	// Past renotify the open alerts are sent again, as reminders. Move the
	// failed run's window so it is still found (the cache window is 1h,
	// so the cached page is gone by then: it resolves).
	now = t0.Add(20*time.Minute + 4*time.Hour)
	r = cycle(w)
	expect("after renotify",
		"firing failed_runs etl | etl-0001 (reminder)",
		"resolved cache_anomalies www.example.jp | /mypage")
	if r.Resolved != 1 || r.Open != 1 {
		t.Errorf("renotify cycle: %+v", r)
	}

	// Two days later the failed run has left the 24h window: resolved.
	now = t0.Add(48 * time.Hour)
	if r := cycle(w); r.Resolved != 1 || r.Open != 0 {
		t.Errorf("resolve cycle: %+v", r)
	}
	expect("resolve cycle", "resolved failed_runs etl | etl-0001")
	now = now.Add(time.Minute)
	cycle(w)
	expect("after resolve")

	rows, err := conn.QueryStrings(ctx, "SELECT rule, alert_key, severity, opened_at, resolved_at FROM alerts FINAL ORDER BY rule")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"cache_anomalies", "www.example.jp | /mypage", "info", "2026-11-25 03:20:00", "2026-11-25 07:20:00"},
		{"failed_runs", "etl | etl-0001", "warning", "2026-11-25 03:20:00", "2026-11-27 03:00:00"},
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(want[0], ",") || strings.Join(rows[1], ",") != strings.Join(want[1], ",") {
		t.Errorf("alerts table:\n%v\nwant\n%v", rows, want)
	}

	// Back to the incident time: the same keys open again as new alerts.
	now = t0.Add(30 * time.Minute)
	if r := cycle(w); r.Opened != 2 {
		t.Errorf("reopen: %+v", r)
	}
	expect("reopen",
		"firing cache_anomalies www.example.jp | /mypage",
		"firing failed_runs etl | etl-0001")
}

// TestWatchSilenceAndDeliveryFailure: a silenced rule is tracked but not
// sent until the silence ends; a notification the receiver refused is
// sent again next cycle (and only then marked notified).
func TestWatchSilenceAndDeliveryFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	insertFixture(t, conn, t0)
	rec := newReceiver(t)
	cfg := config.Watch{
		Channels: []config.WatchChannel{{Name: "ops", URL: rec.srv.URL + "/hook"}},
		Rules: []config.WatchRule{
			{Name: "failed_runs", Params: map[string]string{"since": "now-24h"}, Key: []string{"job", "run_id"}},
			{Name: "cache_anomalies", Severity: "critical", Params: map[string]string{"since": "now-1h"}},
		},
		Silence: []config.WatchSilence{{Rule: "cache_anomalies", Until: t0.Add(time.Hour), Reason: "known, fix deploying"}},
	}
	w, err := watch.New(conn, cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(20 * time.Minute)
	w.Now = func() time.Time { return now }

	rec.fail = true
	r, err := w.Cycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Opened != 2 || r.Sent != 0 || r.Failed != 1 {
		t.Errorf("receiver down: %+v, want 2 opened, 1 failed (the other silenced)", r)
	}
	rec.take()

	rec.fail = false
	now = now.Add(time.Minute)
	if r, err = w.Cycle(ctx); err != nil || r.Sent != 1 {
		t.Errorf("receiver back: %+v %v, want 1 sent", r, err)
	}
	if got, _, _ := rec.take(); strings.Join(got, ";") != "firing failed_runs etl | etl-0001" {
		t.Errorf("receiver back: got %v", got)
	}

	// The silence ends while the condition holds: sent once, as new.
	now = t0.Add(61 * time.Minute)
	if r, err = w.Cycle(ctx); err != nil || r.Sent != 1 {
		t.Errorf("silence over: %+v %v, want 1 sent", r, err)
	}
	if got, _, _ := rec.take(); strings.Join(got, ";") != "firing cache_anomalies www.example.jp | /mypage" {
		t.Errorf("silence over: got %v", got)
	}

	// cache_anomalies is dropped from the config: its open alert is
	// closed without a notification.
	cfg.Rules, cfg.Silence = cfg.Rules[:1], nil
	if w, err = watch.New(conn, cfg, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	w.Now = func() time.Time { return now }
	if r, err = w.Cycle(ctx); err != nil || r.Sent != 0 || r.Open != 1 {
		t.Errorf("rule dropped: %+v %v, want 1 open, nothing sent", r, err)
	}
	rows, err := conn.QueryStrings(ctx, "SELECT rule, resolved_at FROM alerts FINAL ORDER BY rule")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rows) != "[[cache_anomalies 2026-11-25 04:01:00] [failed_runs 1970-01-01 00:00:00]]" {
		t.Errorf("alerts after dropping a rule: %v", rows)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Watch
		want string
	}{
		{"unknown query", config.Watch{Rules: []config.WatchRule{{Name: "nope"}}}, `watch.rules[0].query: no query "nope"`},
		{"bad param", config.Watch{Rules: []config.WatchRule{{Name: "failed_runs", Params: map[string]string{"limit": "ten"}}}}, `watch.rules[0].params: query failed_runs: parameter limit: "ten" is not an unsigned integer`},
		{"unknown param", config.Watch{Rules: []config.WatchRule{{Name: "failed_runs", Params: map[string]string{"sinse": "now"}}}}, `watch.rules[0].params: query failed_runs has no parameter "sinse"`},
		{"bad severity", config.Watch{Rules: []config.WatchRule{{Name: "failed_runs", Severity: "page"}}}, `watch.rules[0].severity: "page" is not one of info, warning, critical`},
		{"unknown channel", config.Watch{Rules: []config.WatchRule{{Name: "failed_runs", Channels: []string{"pager"}}}}, `watch.rules[0].channels: no channel named "pager"`},
		{"bad channel type", config.Watch{Channels: []config.WatchChannel{{Name: "x", Type: "email", URL: "http://x"}}}, `watch.channels[0].type: "email" is neither webhook nor slack`},
		{"channel without url", config.Watch{Channels: []config.WatchChannel{{Name: "x"}}}, `watch.channels[0].url: an http(s) URL is required`},
		{"silence unknown rule", config.Watch{Silence: []config.WatchSilence{{Rule: "failed_run"}}}, `watch.silence[0].rule: no rule named "failed_run"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := watch.New(nil, tc.cfg, nil, slog.New(slog.DiscardHandler))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want %s...", err, tc.want)
			}
		})
	}
}

// BenchmarkCycle measures one cycle of the six default rules on the
// fixture (two open alerts, no notifications after the first cycle).
func BenchmarkCycle(b *testing.B) {
	conn := newDB(b)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	insertFixture(b, conn, t0)
	w, err := watch.New(conn, config.Watch{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	w.Now = func() time.Time { return t0.Add(20 * time.Minute) }
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := w.Cycle(ctx); err != nil || len(r.RuleErrors) > 0 || r.Open != 2 {
			b.Fatalf("%+v %v", r, err)
		}
	}
}

// TestIntervalDefault: the interval logged at start is the one in use.
func TestIntervalDefault(t *testing.T) {
	for _, tc := range []struct{ set, want time.Duration }{{0, time.Minute}, {10 * time.Second, 10 * time.Second}} {
		w, err := watch.New(nil, config.Watch{Interval: tc.set}, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if w.Interval() != tc.want {
			t.Errorf("interval %v: Interval() = %v, want %v", tc.set, w.Interval(), tc.want)
		}
	}
}

// TestWatchUserRulesSilencesGrouping: a rule from rules_dir runs beside
// the built-in ones; silences by template and by class; an alert whose
// key another rule's open, notified, at least as severe alert already
// has is grouped under it (tracked, not sent).
func TestWatchUserRulesSilencesGrouping(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	insertFixture(t, conn, t0)
	rec := newReceiver(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/templates_seen.sql", []byte(`-- question: Which templates were requested?
-- severity: info
-- key: host, path_template
-- param: since DateTime = now() - INTERVAL 1 HOUR
SELECT host, path_template, any(CAST(path_class AS String)) AS path_class, count() AS requests
FROM cdn_requests
WHERE time >= {since:DateTime}
GROUP BY host, path_template
ORDER BY host, path_template
`), 0o644); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(20 * time.Minute)
	cycle := func(cfg config.Watch) []string {
		t.Helper()
		w, err := watch.New(conn, cfg, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		w.Now = func() time.Time { return now }
		r, err := w.Cycle(ctx)
		if err != nil || len(r.RuleErrors) > 0 {
			t.Fatalf("cycle: %v %v", err, r.RuleErrors)
		}
		got, full, _ := rec.take()
		for _, e := range full {
			if e.Rule == "templates_seen" && e.Severity != "info" {
				t.Errorf("user rule severity %s, want info", e.Severity)
			}
		}
		return got
	}
	cfg := config.Watch{
		RulesDir:    dir,
		MinSeverity: "info",
		Channels:    []config.WatchChannel{{Name: "ops", URL: rec.srv.URL + "/hook"}},
		Rules:       []config.WatchRule{{Name: "cache_anomalies", Severity: "warning", Key: []string{"host", "path_template"}, Params: map[string]string{"since": "now-1h"}}},
		Silence: []config.WatchSilence{
			{Template: "/items/m123", Until: t0.Add(time.Hour)},
			{Class: "personal", Until: t0.Add(time.Hour)},
		},
	}
	// The template silence mutes every rule's alert on /items/m123; the
	// class silence the user rule's on /mypage (its rows have a
	// path_class); cache_anomalies has none: it is sent.
	if got := strings.Join(cycle(cfg), ";"); got != "firing cache_anomalies www.example.jp | /mypage" {
		t.Errorf("with silences: %s", got)
	}
	// Silences over: the user rule's alert on /items/m123 is sent; the one
	// on /mypage joins the open, told, more severe cache_anomalies alert
	// with the same key (one incident, one page).
	cfg.Silence = nil
	now = now.Add(time.Minute)
	if got := strings.Join(cycle(cfg), ";"); got != "firing templates_seen www.example.jp | /items/m123" {
		t.Errorf("after silences: %s", got)
	}
	// A user rule file with the name of a built-in query is refused.
	if err := os.WriteFile(dir+"/failed_runs.sql", []byte("-- question: x?\nSELECT 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.New(conn, cfg, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "a built-in query is called failed_runs") {
		t.Errorf("built-in name: %v", err)
	}
}

// TestWatchReshapedKeyClosesQuietly: alerts stored under an older key
// shape of a rule (session_mixing was keyed host | path | query) are
// closed without a resolve notification.
func TestWatchReshapedKeyClosesQuietly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	rec := newReceiver(t)
	old := []watch.Alert{
		{Rule: "session_mixing", Key: "www.example.jp | /items/m1 | ", Severity: "critical", OpenedAt: t0, LastSeen: t0, NotifiedAt: t0, Version: 1},
		{Rule: "session_mixing", Key: "www.example.jp | /mypage", Severity: "critical", OpenedAt: t0, LastSeen: t0, NotifiedAt: t0, Version: 1},
	}
	if err := watch.SaveAlerts(ctx, conn, old); err != nil {
		t.Fatal(err)
	}
	w, err := watch.New(conn, config.Watch{Channels: []config.WatchChannel{{Name: "ops", URL: rec.srv.URL + "/hook"}},
		Rules: []config.WatchRule{{Name: "session_mixing", Severity: "critical", Key: []string{"host", "path_template"}}}}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w.Now = func() time.Time { return t0.Add(time.Minute) }
	r, err := w.Cycle(ctx)
	if err != nil || len(r.RuleErrors) > 0 {
		t.Fatalf("%v %v", err, r.RuleErrors)
	}
	if got, _, _ := rec.take(); strings.Join(got, ";") != "resolved session_mixing www.example.jp | /mypage" || r.Resolved != 2 || r.Open != 0 {
		t.Errorf("got %v, %+v; want only the current-shape alert's resolve, both closed", got, r)
	}
}
