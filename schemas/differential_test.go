package schemas_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// TestDifferentialCatalogue loads the same rows into the 18.16 server
// (legacy rendering) and the embedded modern engine (modern rendering) and
// runs every catalogue query on both, in the text each engine gets; the
// answers must be the same, row for row. The rows are the TestCatalogue
// fixtures plus edgeFixtures (ties, a run across midnight, a session that
// sees two owners' pages); the cases add empty windows.
//
// Both answers are ClickHouse's own TabSeparated text (18.16 over HTTP).
// The one difference allowed is the modern event times' milliseconds:
// "2026-11-20 20:00:01.000" on the modern engine is "2026-11-20 20:00:01"
// on 18.16 (the fixtures' times are whole seconds).
func TestDifferentialCatalogue(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	jobFixtures(t, conn)
	cdnFixtures(t, conn)
	edgeFixtures(t, conn)
	modern, v := modernDB(t, nil) // no TTL: the fixtures are dated
	copyBaseTables(t, chserver.Shared(t), conn.Database(), modern)

	c := func(d time.Duration) string { return C.Add(d).Format(time.DateTime) }
	empty := map[string]string{"since": "2020-01-01 00:00:00", "until": "2020-01-02 00:00:00", "at": "2020-01-02 00:00:00"}
	day := map[string]string{"since": ts(0), "until": ts(48 * time.Hour), "at": ts(48 * time.Hour)}
	cases := []struct {
		query  string
		params map[string]string
	}{
		{"failed_runs", pick(day, "since", "until")},
		{"failed_runs", map[string]string{"since": ts(0), "until": ts(48 * time.Hour), "limit": "1"}},
		{"failed_runs", pick(empty, "since", "until")},
		{"slowest_jobs", pick(day, "since", "until")},
		{"slowest_jobs", pick(empty, "since", "until")},
		{"stuck_runs", map[string]string{"idle_minutes": "4", "at": ts(10*time.Hour + 300*time.Second)}},
		{"stuck_runs", map[string]string{"idle_minutes": "1", "at": ts(48 * time.Hour)}},
		{"overrunning_runs", map[string]string{"at": ts(10*time.Hour + 300*time.Second)}},
		{"overrunning_runs", map[string]string{"at": ts(10*time.Hour + 300*time.Second), "min_history": "1", "factor": "0.5"}},
		{"overlapping_runs", pick(day, "since", "at")},
		{"overlapping_runs", pick(empty, "since", "at")},
		{"late_starts", map[string]string{"since": ts(0), "min_delay_s": "300"}},
		{"late_starts", map[string]string{"since": ts(0), "min_delay_s": "0"}},
		{"missed_runs", map[string]string{"since": ts(0), "at": ts(12 * time.Hour)}},
		{"missed_runs", pick(day, "since", "at")},
		{"missed_runs", pick(empty, "since", "at")},
		{"retry_storms", map[string]string{"since": ts(0), "min_attempts": "3"}},
		{"retry_storms", map[string]string{"since": ts(0), "min_attempts": "1"}},
		{"duration_trend", map[string]string{"job": "sync", "since": "2026-11-01"}},
		{"duration_trend", map[string]string{"job": "nightly", "since": "2026-11-01"}},
		{"duration_trend", map[string]string{"job": "none", "since": "2026-11-01"}},
		{"session_mixing", map[string]string{"since": c(-time.Hour), "until": c(time.Hour)}},
		{"session_mixing", map[string]string{"since": c(-time.Hour), "until": c(time.Hour), "window_s": "600", "min_sessions": "3"}},
		{"session_mixing", pick(empty, "since", "until")},
		{"incident_pairs", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"incident_pairs", pick(empty, "since", "until")},
		{"incident_owners", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"incident_owners", pick(empty, "since", "until")},
		{"incident_summary", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"incident_summary", pick(empty, "since", "until")},
		{"personal_cache_hits", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"personal_cache_hits", pick(empty, "since", "until")},
		{"cache_anomalies", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"cache_anomalies", pick(empty, "since", "until")},
		{"cookie_cached", map[string]string{"since": c(0), "until": c(time.Hour)}},
		{"cookie_cached", pick(empty, "since", "until")},
		{"hit_ratio_hourly", map[string]string{"since": c(-3 * time.Hour)}},
		{"hit_ratio_hourly", map[string]string{"since": c(-3 * time.Hour), "host": "www.example.jp"}},
		{"hit_ratio_jumps", map[string]string{"at": c(0), "recent_hours": "1", "baseline_hours": "24"}},
		{"hit_ratio_jumps", map[string]string{"at": c(time.Hour), "recent_hours": "1", "baseline_hours": "24", "min_requests": "1", "min_change": "0"}},
		{"config_changes", map[string]string{"since": c(-3 * time.Hour)}},
		{"config_changes", map[string]string{"since": "2030-01-01 00:00:00"}},
	}
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]schemas.Query{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	answered := map[string]bool{} // query -> some case had rows
	for _, tc := range cases {
		q, ok := byName[tc.query]
		if !ok {
			t.Fatalf("no catalogue query %s", tc.query)
		}
		old, err := q.Render(tc.params)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := q.For(v).Render(tc.params)
		if err != nil {
			t.Fatal(err)
		}
		want, err := httpTSV(chserver.Shared(t), conn.Database(), old)
		if err != nil {
			t.Errorf("%s(%v) on 18.16: %v", tc.query, tc.params, err)
			continue
		}
		out, err := modern.Raw(cur, "TabSeparated")
		if err != nil {
			t.Errorf("%s(%v) on %s: %v", tc.query, tc.params, v, err)
			continue
		}
		got := ms.ReplaceAllString(string(out), "$1")
		if got != want {
			t.Errorf("%s(%v): answers differ\n18.16:\n%s%s:\n%s", tc.query, tc.params, want, v, got)
		}
		if len(q.Lets) > 0 {
			// And as logpipe query and watch run it: the lets first,
			// their values bound as literals (another text: a String
			// let's list filters with IN, not GLOBAL IN).
			old, err := q.RenderWith(context.Background(), conn.Scalar, tc.params)
			if err != nil {
				t.Fatalf("%s(%v) on 18.16, lets first: %v", tc.query, tc.params, err)
			}
			cur, err := q.For(v).RenderWith(context.Background(), modern.DB().Scalar, tc.params)
			if err != nil {
				t.Fatalf("%s(%v) on %s, lets first: %v", tc.query, tc.params, v, err)
			}
			if got, err := httpTSV(chserver.Shared(t), conn.Database(), old); err != nil || got != want {
				t.Errorf("%s(%v) on 18.16, lets first: %v\ngot:\n%swant:\n%s", tc.query, tc.params, err, got, want)
			}
			out, err := modern.Raw(cur, "TabSeparated")
			if got := ms.ReplaceAllString(string(out), "$1"); err != nil || got != want {
				t.Errorf("%s(%v) on %s, lets first: %v\ngot:\n%swant:\n%s", tc.query, tc.params, v, err, got, want)
			}
		}
		answered[tc.query] = answered[tc.query] || want != ""
	}
	for _, q := range qs {
		if strings.HasPrefix(q.Name, "watch_") {
			continue
		}
		if !answered[q.Name] {
			t.Errorf("catalogue query %s has no differential case with rows", q.Name)
		}
	}
}

// ms matches a DateTime64(3) value, capturing its seconds part.
var ms = regexp.MustCompile(`(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d{3}`)

func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

// edgeFixtures adds the rows the differential cases need beyond
// TestCatalogue's: a run across midnight, ties, a session served two other
// sessions' pages.
func edgeFixtures(t *testing.T, conn *chclient.Conn) {
	t.Helper()
	var evs []jobEv
	evs = append(evs, run("nightly", "n1", 23*time.Hour+50*time.Minute, 1200*time.Second, "finished", 0, 1)...) // crosses midnight
	evs = append(evs, run("nightly", "n2", 47*time.Hour+50*time.Minute, 0, "", 0, 1)...)                        // still running at T+48h
	evs = append(evs, run("tie_a", "a1", 5*time.Hour, 50*time.Second, "finished", 0, 1)...)                     // same durations as tie_b
	evs = append(evs, run("tie_b", "b1", 5*time.Hour, 50*time.Second, "failed", 0, 1)...)
	evs = append(evs, run("tie_b", "b2", 5*time.Hour, 50*time.Second, "failed", 0, 1)...) // same start as b1: overlap, failed tie
	insertJobs(t, conn, evs)
	for _, h := range []time.Duration{23*time.Hour + 50*time.Minute, 47*time.Hour + 50*time.Minute, 30 * time.Hour} {
		if err := conn.Exec(context.Background(), fmt.Sprintf("INSERT INTO job_expected_runs (job, expected_time, grace_s) SELECT 'nightly', toDateTime('%s', 'UTC'), 300", ts(h))); err != nil {
			t.Fatal(err)
		}
	}
	// Session 7 is served /other (generated for session 8) and /mypage
	// (generated for session 1 in cdnFixtures).
	b := tables.NewCDNRequests()
	for i, r := range []req{
		{5 * time.Minute, "/other", "personal", "MISS", 8, "42", false},
		{5*time.Minute + time.Second, "/other", "personal", "HIT", 7, "42", false},
		{5*time.Minute + 2*time.Second, "/mypage", "personal", "HIT", 7, "42", false},
		{6 * time.Minute, "/tie", "personal", "MISS", 9, "42", false},
		{6 * time.Minute, "/tie", "personal", "MISS", 10, "42", false},
		{6*time.Minute + time.Second, "/tie", "personal", "HIT", 9, "42", false},
		{6*time.Minute + time.Second, "/tie", "personal", "HIT", 10, "42", false},
		{7 * time.Minute, "/items/3", "other", "HIT", 11, "42", false}, // a logged-in visitor on a public page
	} {
		cr := transform.CDNRequest{
			Time: C.Add(r.at), Vendor: "fastly", Host: "www.example.jp", Method: "GET", Path: r.path, PathTemplate: r.path,
			PathClass: r.class, Status: 200, CacheRaw: r.state, ConfigVersion: r.version,
			SessionHash: r.session, HasSessionCookie: true, BytesSent: 1000, DurationMs: 10,
		}
		cr.CacheStatus, cr.Collapsed = transform.FastlyState(r.state)
		cr.FromCache = transform.FromCache(cr.CacheStatus)
		cr.FlagPersonalCached = (cr.FromCache || cr.Collapsed) && r.class == "personal"
		cr.FlagAuthCached = cr.FlagPersonalCached
		b.Append(&cr, tables.Meta{Topic: "cdn", Partition: 1, Offset: int64(i)}, C, 100)
	}
	if err := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil))).Insert(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// copyBaseTables copies every table the migrations create that is not a
// materialized view's target from the 18.16 database into the modern
// engine, whose materialized views then build their tables from the rows as
// the 18.16 ones did.
func copyBaseTables(t *testing.T, srv *chserver.Server, db string, modern *chdbtest.Engine) {
	t.Helper()
	ms, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{"schema_migrations": true}
	for _, m := range ms {
		for _, st := range m.Statements {
			// Tables that views fill are rebuilt by the views, except
			// the data tables their fence views (0019_fences) fill.
			if mv := mvTarget.FindStringSubmatch(st); mv != nil && !strings.Contains(st, "FROM "+mv[1]+"_in\n") {
				targets[mv[1]] = true
			}
		}
	}
	copied := 0
	for name, kind := range schemas.Managed(ms) {
		if kind != schemas.KindTable || targets[name] {
			continue
		}
		data, err := httpTSV(srv, db, "SELECT * FROM "+name)
		if err != nil {
			t.Fatal(err)
		}
		if data == "" {
			continue
		}
		modern.MustExec(t, "INSERT INTO "+name+" FORMAT TabSeparated\n"+data)
		copied++
	}
	if copied < 3 {
		t.Fatalf("copied only %d tables", copied)
	}
}

var mvTarget = regexp.MustCompile(`(?is)CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?\w+\s+TO\s+(\w+)`)

// httpTSV runs a query in database db of the 18.16 server over HTTP and
// returns ClickHouse's TabSeparated answer.
func httpTSV(srv *chserver.Server, db, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := srv.HTTPURL() + "?" + url.Values{"database": {db}, "default_format": {"TabSeparated"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
