package watch_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/watch"
)

// TestAlertBodiesLeakNoSecret stores failed runs whose error, run id and
// host carry secrets, one through the Enricher (redacted at ingest) and
// one stored in clear (a row from before redaction existed): no webhook
// body, Slack text or stored alert may hold a clear value, and the
// evidence SQL of the redacted row still selects it.
func TestAlertBodiesLeakNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	conn := newDB(t)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	secrets := []string{"taro.yamada@example.com", "203.0.113.77", "hunter2-leak-pass", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "AKIAQLEAKTEST0000001", "2001:db8::77"}
	e, err := transform.NewEnricher(transform.EnrichConfig{HashKey: []byte("watch-test-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	jobs := tables.NewJobEvents()
	for i, redact := range []bool{true, false} {
		run := "etl-" + string(rune('a'+i)) + "-AKIAQLEAKTEST0000001"
		for j, ev := range []transform.JobEvent{
			{Time: t0, Job: "etl", RunID: run, Event: "started", Host: "2001:db8::77", Attempt: 1},
			{Time: t0.Add(time.Minute), Job: "etl", RunID: run, Event: "failed", ExitCode: 1, HasExitCode: true,
				Error: "login failed for taro.yamada@example.com from 203.0.113.77 with password=hunter2-leak-pass bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"},
		} {
			if redact {
				e.Job(&ev)
			}
			jobs.Append(&ev, tables.Meta{Topic: "jobs", Offset: int64(2*i + j)}, t0, 100)
		}
	}
	if err := sink.NewWriter(conn, slog.New(slog.DiscardHandler)).Insert(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	rec := newReceiver(t)
	w, err := watch.New(conn, config.Watch{
		Rules: []config.WatchRule{{Name: "failed_runs", Query: "failed_runs"}},
		Channels: []config.WatchChannel{
			{Name: "ops", Type: "webhook", URL: rec.srv.URL + "/hook"},
			{Name: "chat", Type: "slack", URL: rec.srv.URL + "/slack"},
		},
	}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w.Now = func() time.Time { return t0.Add(20 * time.Minute) }
	r, err := w.Cycle(ctx)
	if err != nil || len(r.RuleErrors) > 0 {
		t.Fatalf("cycle: %v %v", err, r.RuleErrors)
	}
	_, hooks, slack := rec.take()
	if len(hooks) != 2 || len(slack) != 2 {
		t.Fatalf("%d webhook events and %d slack messages, want 2 each", len(hooks), len(slack))
	}
	body, _ := json.Marshal(hooks)
	_, stored, err := conn.Query(ctx, "SELECT * FROM alerts")
	if err != nil {
		t.Fatal(err)
	}
	all := string(body) + strings.Join(slack, "\n")
	for _, row := range stored {
		all += strings.Join(row, "\t")
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(all), strings.ToLower(s)) {
			t.Errorf("alert bodies hold %q in clear:\n%s", s, all)
		}
	}
	matched := 0
	for _, h := range hooks {
		rows, err := conn.QueryStrings(ctx, h.Evidence.SQL)
		if err != nil {
			t.Fatalf("evidence SQL: %v\n%s", err, h.Evidence.SQL)
		}
		if len(rows) == 1 && strings.Join(rows[0], "\t") == strings.Join(h.Evidence.Values, "\t") {
			matched++
		}
	}
	if matched != 1 {
		t.Errorf("%d evidence queries select their row, want 1 (the row redacted at ingest)", matched)
	}
}
