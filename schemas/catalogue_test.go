package schemas_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// T is the fixtures' day; every query gets explicit times so that the
// answers do not depend on when the test runs.
var T = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func freshDB(t *testing.T) *chclient.Conn { return chtest.Migrated(t, "cat") }

type jobEv struct {
	job, run, event string
	at              time.Duration // after T
	sched           time.Duration // after T; -1 = none
	attempt         uint16
	exit            int32 // -1 = none
}

func insertJobs(t *testing.T, conn *chclient.Conn, evs []jobEv) {
	t.Helper()
	b := tables.NewJobEvents()
	for i, e := range evs {
		ev := transform.JobEvent{Time: T.Add(e.at), Job: e.job, RunID: e.run, Event: e.event, Attempt: max(e.attempt, 1), Host: "h1"}
		if e.sched >= 0 {
			ev.ScheduledTime = T.Add(e.sched)
		}
		if e.exit >= 0 {
			ev.ExitCode, ev.HasExitCode = e.exit, true
		}
		if e.event == transform.EventFailed {
			ev.Error, ev.ErrorClass = "boom", "RuntimeError"
		}
		b.Append(&ev, tables.Meta{Topic: "jobs", Offset: int64(i)}, T, 100)
	}
	if err := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil))).Insert(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// run returns the events of one run: started (and finished/failed when
// dur > 0).
func run(job, id string, start, dur time.Duration, outcome string, delay time.Duration, attempt uint16) []jobEv {
	evs := []jobEv{{job, id, "started", start + delay, start, attempt, -1}}
	if outcome != "" {
		code := int32(0)
		if outcome == "failed" {
			code = 2
		}
		evs = append(evs, jobEv{job, id, outcome, start + delay + dur, start, attempt, code})
	}
	return evs
}

func jobFixtures(t *testing.T, conn *chclient.Conn) {
	insertJobs(t, conn, catalogueJobEvents())
	ctx := context.Background()
	for _, h := range []int{1, 8, 10} {
		if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO job_expected_runs (job, expected_time, grace_s) SELECT 'etl', toDateTime('%s', 'UTC'), 600", T.Add(time.Duration(h)*time.Hour).Format("2006-01-02 15:04:05"))); err != nil {
			t.Fatal(err)
		}
	}
}

// catalogueJobEvents are the job events of TestCatalogue's fixture.
func catalogueJobEvents() []jobEv {
	var evs []jobEv
	for i := 1; i <= 6; i++ { // etl history: durations 100..105 s
		delay := time.Duration(0)
		if i == 3 {
			delay = 400 * time.Second // a late start
		}
		evs = append(evs, run("etl", fmt.Sprintf("e%d", i), time.Duration(i)*time.Hour, time.Duration(99+i)*time.Second, "finished", delay, 1)...)
	}
	evs = append(evs, run("etl", "e7", 10*time.Hour, 0, "", 0, 1)...)                     // still running
	evs = append(evs, run("sync", "s1", time.Hour, 600*time.Second, "finished", 0, 1)...) // overlaps s2 by 300 s
	evs = append(evs, run("sync", "s2", time.Hour+300*time.Second, 600*time.Second, "finished", 0, 1)...)
	evs = append(evs, run("sync", "s3", 3*time.Hour, 60*time.Second, "finished", 0, 1)...)
	evs = append(evs, run("report", "r1", 2*time.Hour, 30*time.Second, "failed", 0, 1)...)
	evs = append(evs, run("report", "r2", 4*time.Hour, 30*time.Second, "finished", 0, 4)...) // fourth attempt
	return evs
}

type req struct {
	at        time.Duration // after C
	path      string
	class     string
	state     string // fastly state
	session   uint64
	version   string
	setCookie bool
}

// C is the CDN fixtures' hour.
var C = T.Add(20 * time.Hour)

func cdnFixtures(t *testing.T, conn *chclient.Conn) {
	var rs []req
	// /mypage: session 1's origin fetch, then 2 (collapsed) and 3 get it
	// from cache, and 1 again (its own page: no leak).
	rs = append(rs,
		req{0, "/mypage", "personal", "MISS", 1, "42", false},
		req{1 * time.Second, "/mypage", "personal", "HIT-WAIT", 2, "42", false},
		req{2 * time.Second, "/mypage", "personal", "HIT", 3, "42", false},
		req{3 * time.Second, "/mypage", "personal", "HIT", 1, "42", false},
		req{30 * time.Second, "/mypage/points", "personal", "MISS-WAIT", 4, "42", false}, // generator unknown
		req{40 * time.Second, "/app.css", "static", "HIT", 5, "42", false},
		req{41 * time.Second, "/app.css", "static", "HIT", 6, "42", false},
		req{50 * time.Second, "/items/2", "other", "HIT", 0, "42", true},
	)
	// /items/1: 60 misses two hours earlier (version 41), 54 of 60 hits now.
	for i := 0; i < 60; i++ {
		rs = append(rs, req{-2*time.Hour + time.Duration(i)*time.Second, "/items/1", "other", "MISS", 0, "41", false})
		state := "HIT"
		if i < 6 {
			state = "MISS"
		}
		rs = append(rs, req{time.Minute + time.Duration(i)*time.Second, "/items/1", "other", state, 0, "42", false})
	}
	b := tables.NewCDNRequests()
	for i, r := range rs {
		cr := transform.CDNRequest{
			Time: C.Add(r.at), Vendor: "fastly", Host: "www.example.jp", Method: "GET", Path: r.path, PathTemplate: r.path,
			PathClass: r.class, Status: 200, CacheRaw: r.state, ConfigVersion: r.version, SetCookie: r.setCookie,
			SessionHash: r.session, HasSessionCookie: r.session != 0, BytesSent: 1000, DurationMs: 10,
		}
		cr.CacheStatus, cr.Collapsed = transform.FastlyState(r.state)
		if r.state == "MISS" {
			cr.OriginMs = 1500 // the origin fetch of /mypage is in flight until 1.5 s
		}
		cr.FromCache = transform.FromCache(cr.CacheStatus)
		shared := cr.FromCache || cr.Collapsed
		cr.FlagPersonalCached = shared && r.class == "personal"
		cr.FlagSetCookieCached = shared && r.setCookie
		cr.FlagAuthCached = shared && r.session != 0 && (r.class == "personal" || r.setCookie)
		b.Append(&cr, tables.Meta{Topic: "cdn", Offset: int64(i)}, C, 100)
	}
	if err := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil))).Insert(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(context.Background(), fmt.Sprintf("INSERT INTO cdn_config_changes (time, vendor, service, config_version, description, author) SELECT toDateTime('%s', 'UTC'), 'fastly', 'svc', '42', 'cache by origin headers', 'ops'", C.Add(-10*time.Minute).Format("2006-01-02 15:04:05"))); err != nil {
		t.Fatal(err)
	}
}

func msOf(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }

func ts(d time.Duration) string { return T.Add(d).Format("2006-01-02 15:04:05") }

// TestCatalogue runs every catalogue query on fixtures built to have one
// known answer and compares the whole result.
func TestCatalogue(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	jobFixtures(t, conn)
	cdnFixtures(t, conn)
	c := func(d time.Duration) string { return C.Add(d).Format("2006-01-02 15:04:05") }
	tests := []struct {
		query  string
		params map[string]string
		want   string // rows, cells joined by |, rows by newline
	}{
		{"failed_runs", map[string]string{"since": ts(0), "until": ts(24 * time.Hour)},
			"report|r1|1|h1|" + ts(2*time.Hour) + "|30|2|RuntimeError|boom"},
		{"slowest_jobs", map[string]string{"since": ts(0), "until": ts(24 * time.Hour)},
			"sync|3|600|600|600\netl|6|102.5|104.8|105\nreport|2|30|30|30"},
		{"stuck_runs", map[string]string{"idle_minutes": "4", "at": ts(10*time.Hour + 300*time.Second)},
			"etl|e7|h1|" + ts(10*time.Hour) + "|" + ts(10*time.Hour) + "|5"},
		{"stuck_runs", map[string]string{"idle_minutes": "30", "at": ts(10*time.Hour + 300*time.Second)}, ""},
		{"overrunning_runs", map[string]string{"at": ts(10*time.Hour + 300*time.Second)},
			"etl|e7|" + ts(10*time.Hour) + "|300|104.8|6"},
		{"overrunning_runs", map[string]string{"at": ts(10*time.Hour + 60*time.Second)}, ""},
		{"overlapping_runs", map[string]string{"since": ts(0), "at": ts(24 * time.Hour)},
			"sync|s1|s2|" + ts(time.Hour) + "|" + ts(time.Hour+300*time.Second) + "|300"},
		{"late_starts", map[string]string{"since": ts(0), "min_delay_s": "300"},
			"etl|e3|" + ts(3*time.Hour) + "|" + ts(3*time.Hour+400*time.Second) + "|400"},
		{"missed_runs", map[string]string{"since": ts(0), "at": ts(12 * time.Hour)},
			"etl|" + ts(8*time.Hour) + "|600"},
		{"retry_storms", map[string]string{"since": ts(0), "min_attempts": "3"},
			"report|2|1|4|5"},
		{"duration_trend", map[string]string{"job": "sync", "since": "2026-11-01"},
			"2026-11-20|3|0|0|600|600|600|600"},
		{"session_mixing", map[string]string{"since": c(-time.Hour), "until": c(time.Hour)},
			"www.example.jp|/mypage|personal|1|2|1|2|1|class|critical|" + c(time.Second) + "|" + c(2*time.Second)},
		{"incident_pairs", map[string]string{"since": c(0), "until": c(time.Hour)},
			c(time.Second) + "|" + msOf(C.Add(time.Second)) + "|1|2|www.example.jp|/mypage|personal||collapsed|" + msOf(C) +
				"\n" + c(2*time.Second) + "|" + msOf(C.Add(2*time.Second)) + "|1|3|www.example.jp|/mypage|personal||hit|" + msOf(C)},
		{"incident_owners", map[string]string{"since": c(0), "until": c(time.Hour)},
			"1|2|0|2|1|" + c(time.Second) + "|" + c(2*time.Second)},
		{"incident_summary", map[string]string{"since": c(0), "until": c(time.Hour)},
			"all|all|1|2|2|0|1|" + c(time.Second) + "|" + c(2*time.Second) + "|1" +
				"\npersonal|all|1|2|2|0|1|" + c(time.Second) + "|" + c(2*time.Second) + "|1" +
				"\npersonal|/mypage|1|2|2|0|1|" + c(time.Second) + "|" + c(2*time.Second) + "|0" +
				"\npersonal|/mypage/points|0|0|0|0|0|\\N|\\N|1"},
		{"personal_cache_hits", map[string]string{"since": c(0), "until": c(time.Hour)},
			"/mypage|hit|0|2|2|" + c(2*time.Second) + "|" + c(3*time.Second) +
				"\n/mypage|hit|1|1|1|" + c(time.Second) + "|" + c(time.Second) +
				"\n/mypage/points|miss|1|1|1|" + c(30*time.Second) + "|" + c(30*time.Second)},
		{"cache_anomalies", map[string]string{"since": c(0), "until": c(time.Hour)},
			"www.example.jp|/mypage|3|0|0|3|0|3|" + c(time.Second) + "|" + c(3*time.Second) +
				"\nwww.example.jp|/mypage/points|1|0|0|1|0|1|" + c(30*time.Second) + "|" + c(30*time.Second) +
				"\nwww.example.jp|/items/2|0|1|0|0|0|1|" + c(50*time.Second) + "|" + c(50*time.Second)},
		// Personal (/mypage), static (/app.css) and cookie-less (/items)
		// responses are not listed; detect's precision test lists public
		// pages served to logged-in sessions.
		{"cookie_cached", map[string]string{"since": c(0), "until": c(time.Hour)}, ""},
		{"hit_ratio_hourly", map[string]string{"since": c(-3 * time.Hour)},
			c(-2*time.Hour) + "|60|0|60000|0|0\n" + c(0) + "|68|0.8824|68000|0|5"},
		{"hit_ratio_jumps", map[string]string{"at": c(0), "recent_hours": "1", "baseline_hours": "24"},
			"www.example.jp|/items/1|0|0.9|0.9|60|60|['42']"},
		{"config_changes", map[string]string{"since": c(-3 * time.Hour)},
			c(-2*time.Hour) + "|fastly|41|first seen in logs|\n" + c(-10*time.Minute) + "|fastly|42|recorded|cache by origin headers\n" + c(0) + "|fastly|42|first seen in logs|"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.query] = true
		t.Run(tt.query, func(t *testing.T) {
			q, err := schemas.LookupQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			sql, err := q.Render(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			_, rows, err := conn.Query(context.Background(), sql)
			if err != nil {
				t.Fatalf("%v\n%s", err, sql)
			}
			var lines []string
			for _, r := range rows {
				lines = append(lines, strings.Join(r, "|"))
			}
			if got := strings.Join(lines, "\n"); got != tt.want {
				t.Errorf("%s(%v):\ngot:\n%s\nwant:\n%s", tt.query, tt.params, got, tt.want)
			}
		})
	}
	// Every catalogue query (other than the watch_ rules, tested with
	// watch) has a fixture test.
	qs, _ := schemas.Queries()
	for _, q := range qs {
		if !covered[q.Name] && !strings.HasPrefix(q.Name, "watch_") {
			t.Errorf("catalogue query %s has no fixture test", q.Name)
		}
	}
}

// TestCatalogueOnEmptySchema runs every query with its defaults on empty
// tables: each must be valid SQL for this server.
func TestCatalogueOnEmptySchema(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		params := map[string]string{}
		for _, p := range q.Params {
			if p.Default == "" {
				params[p.Name] = map[string]string{"String": "x", "DateTime": "2026-11-20 00:00:00", "Date": "2026-11-20", "UInt64": "1", "Int64": "1", "Float64": "1"}[p.Type]
			}
		}
		sql, err := q.Render(params)
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		if _, _, err := conn.Query(context.Background(), sql); err != nil {
			t.Errorf("%s: %v", q.Name, err)
		}
	}
}
