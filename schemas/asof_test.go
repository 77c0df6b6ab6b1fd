package schemas_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
)

// lookBackEvents are runs whose later events change earlier answers: a
// run that falls silent and resumes, a run that later fails, history that
// grows, a run that starts overlapping another, a run whose start event
// comes late, a log line after a run finished.
func lookBackEvents() []jobEv {
	h := time.Hour
	m := time.Minute
	s := time.Second
	ev := func(job, id, event string, at time.Duration, exit int32) jobEv {
		return jobEv{job, id, event, at, -1, 1, exit}
	}
	var evs []jobEv
	// nightly/n1: silent from 02:12, resumes 03:03, finishes 03:10.
	evs = append(evs,
		ev("nightly", "n1", "started", 2*h, -1),
		ev("nightly", "n1", "heartbeat", 2*h+12*m, -1),
		ev("nightly", "n1", "heartbeat", 3*h+3*m, -1),
		ev("nightly", "n1", "finished", 3*h+10*m, 0))
	// report/r1: started 02:00, failed 02:30.
	evs = append(evs, run("report", "r1", 2*h, 30*m, "failed", 0, 1)...)
	// etl: four 100 s runs, a fifth finishing at 10:00:40, and e6 from
	// 09:59:30 to 10:20:30 (overrunning while it runs).
	for i := 1; i <= 4; i++ {
		evs = append(evs, run("etl", fmt.Sprintf("e%d", i), time.Duration(i)*h, 100*s, "finished", 0, 1)...)
	}
	evs = append(evs, ev("etl", "e2", "log", 2*h+30*m, -1)) // a log line after e2 finished
	evs = append(evs, run("etl", "e5", 9*h+59*m, 100*s, "finished", 0, 1)...)
	evs = append(evs,
		ev("etl", "e6", "started", 9*h+59*m+30*s, -1),
		ev("etl", "e6", "heartbeat", 10*h+10*m, -1),
		ev("etl", "e6", "finished", 10*h+20*m+30*s, 0))
	// sync: s1 05:00-05:10, s2 05:05-05:20.
	evs = append(evs, run("sync", "s1", 5*h, 10*m, "finished", 0, 1)...)
	evs = append(evs, run("sync", "s2", 5*h+5*m, 15*m, "finished", 0, 1)...)
	// billing (expected 07:00, 12:00 and 15:00, grace 600 s): nothing at
	// 07:00; for 12:00 a log line at 12:05 and the started event at 12:30;
	// for 15:00 a start 30 s early.
	evs = append(evs,
		ev("billing", "b2", "log", 12*h+5*m, -1),
		ev("billing", "b2", "started", 12*h+30*m, -1),
		ev("billing", "b2", "finished", 12*h+31*m, 0))
	evs = append(evs, run("billing", "b3", 15*h-30*s, time.Minute, "finished", 0, 1)...)
	return evs
}

// insertOneByOne inserts every event in its own block, so that run states
// stay split over several rows (as they are before merges).
func insertOneByOne(t *testing.T, conn *chclient.Conn, evs []jobEv) {
	t.Helper()
	for _, e := range evs {
		insertJobs(t, conn, []jobEv{e})
	}
}

func insertBillingSchedule(t *testing.T, conn *chclient.Conn) {
	t.Helper()
	for _, h := range []time.Duration{7 * time.Hour, 12 * time.Hour, 15 * time.Hour} {
		if err := conn.Exec(context.Background(), fmt.Sprintf("INSERT INTO job_expected_runs (job, expected_time, grace_s) SELECT 'billing', toDateTime('%s', 'UTC'), 600", ts(h))); err != nil {
			t.Fatal(err)
		}
	}
}

func runQuery(t *testing.T, conn *chclient.Conn, name string, params map[string]string) string {
	t.Helper()
	q, err := schemas.LookupQuery(name)
	if err != nil {
		t.Fatal(err)
	}
	sql, err := q.Render(params)
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, sql)
	}
	var lines []string
	for _, r := range rows {
		lines = append(lines, strings.Join(r, "|"))
	}
	got := strings.Join(lines, "\n")
	if len(q.Lets) > 0 {
		// The lets computed first (as logpipe query and watch run it):
		// the same answer as the one statement.
		if two := runLets(t, q, params, conn.Scalar, func(sql string) ([][]string, error) {
			_, rows, err := conn.Query(context.Background(), sql)
			return rows, err
		}); two != got {
			t.Errorf("%s(%v) with the lets computed first:\n%s\nin one statement:\n%s", name, params, two, got)
		}
	}
	return got
}

// runLets runs q with its lets computed first by scalar.
func runLets(t *testing.T, q schemas.Query, params map[string]string, scalar schemas.Scalar, query func(string) ([][]string, error)) string {
	t.Helper()
	sql, err := q.RenderWith(context.Background(), scalar, params)
	if err != nil {
		t.Fatalf("%s: %v", q.Name, err)
	}
	rows, err := query(sql)
	if err != nil {
		t.Fatalf("%s: %v\n%s", q.Name, err, sql)
	}
	var lines []string
	for _, r := range rows {
		lines = append(lines, strings.Join(r, "|"))
	}
	return strings.Join(lines, "\n")
}

type asOfCase struct {
	query  string
	params map[string]string
	want   string
}

// lookBackCases: each query at several moments of lookBackEvents.
func lookBackCases() []asOfCase {
	h := time.Hour
	m := time.Minute
	s := time.Second
	return []asOfCase{
		// stuck_runs: n1 is silent from 02:12 to 03:03.
		{"stuck_runs", map[string]string{"idle_minutes": "30", "at": ts(2*h + 40*m)}, ""},
		{"stuck_runs", map[string]string{"idle_minutes": "30", "at": ts(2*h + 55*m)},
			"nightly|n1|h1|" + ts(2*h) + "|" + ts(2*h+12*m) + "|43"},
		{"stuck_runs", map[string]string{"idle_minutes": "30", "at": ts(3*h + 5*m)}, ""},
		{"stuck_runs", map[string]string{"idle_minutes": "10", "at": ts(2*h + 25*m)},
			"report|r1|h1|" + ts(2*h) + "|" + ts(2*h) + "|25\nnightly|n1|h1|" + ts(2*h) + "|" + ts(2*h+12*m) + "|13"},
		{"stuck_runs", map[string]string{"idle_minutes": "10", "at": ts(3*h + 30*m)}, ""},
		// overrunning_runs: e6 runs from 09:59:30; the fifth finished run
		// (e5) ends at 10:00:40; e6 finishes at 10:20:30.
		{"overrunning_runs", map[string]string{"at": ts(10*h + 30*s)}, ""},
		{"overrunning_runs", map[string]string{"at": ts(10*h + 4*m)},
			"etl|e6|" + ts(9*h+59*m+30*s) + "|270|100|5"},
		{"overrunning_runs", map[string]string{"at": ts(10*h + 4*m), "min_history": "6"}, ""},
		{"overrunning_runs", map[string]string{"at": ts(10*h + 25*m)}, ""},
		// failed_runs: r1 fails at 02:30.
		{"failed_runs", map[string]string{"since": ts(0), "until": ts(2*h + 20*m)}, ""},
		{"failed_runs", map[string]string{"since": ts(0), "until": ts(2*h + 40*m)},
			"report|r1|1|h1|" + ts(2*h) + "|1800|2|RuntimeError|boom"},
		// slowest_jobs: finished runs as of until.
		{"slowest_jobs", map[string]string{"since": ts(0), "until": ts(2*h + 20*m)}, "etl|2|100|100|100"},
		{"slowest_jobs", map[string]string{"since": ts(0), "until": ts(4 * h)},
			"nightly|1|4200|4200|4200\nreport|1|1800|1800|1800\netl|3|100|100|100"},
		// overlapping_runs: s2 starts 05:05 while s1 runs until 05:10.
		{"overlapping_runs", map[string]string{"since": ts(4*h + 30*m), "at": ts(5*h + 3*m)}, ""},
		{"overlapping_runs", map[string]string{"since": ts(4*h + 30*m), "at": ts(5*h + 7*m)},
			"sync|s1|s2|" + ts(5*h) + "|" + ts(5*h+5*m) + "|120"},
		{"overlapping_runs", map[string]string{"since": ts(4*h + 30*m), "at": ts(6 * h)},
			"sync|s1|s2|" + ts(5*h) + "|" + ts(5*h+5*m) + "|300"},
		{"overlapping_runs", map[string]string{"since": ts(4*h + 30*m), "at": ts(11 * h)},
			"sync|s1|s2|" + ts(5*h) + "|" + ts(5*h+5*m) + "|300\netl|e5|e6|" + ts(9*h+59*m) + "|" + ts(9*h+59*m+30*s) + "|70"},
		// missed_runs: billing at 07:00 never ran; the 12:00 run's first
		// event (12:05) is its start until its started event (12:30) comes.
		{"missed_runs", map[string]string{"since": ts(6 * h), "at": ts(7*h + 9*m)}, ""},
		{"missed_runs", map[string]string{"since": ts(6 * h), "at": ts(7*h + 11*m)}, "billing|" + ts(7*h) + "|600"},
		{"missed_runs", map[string]string{"since": ts(6 * h), "at": ts(12*h + 20*m)}, "billing|" + ts(7*h) + "|600"},
		{"missed_runs", map[string]string{"since": ts(6 * h), "at": ts(13 * h)},
			"billing|" + ts(7*h) + "|600\nbilling|" + ts(12*h) + "|600"},
		// b3 starts 30 s before 15:00: that run's start unless early_s < 30.
		{"missed_runs", map[string]string{"since": ts(14 * h), "at": ts(16 * h)}, ""},
		{"missed_runs", map[string]string{"since": ts(14 * h), "at": ts(16 * h), "early_s": "10"}, "billing|" + ts(15*h) + "|600"},
	}
}

// TestLookBack: every query with `at`/`until` answers as of that moment,
// with run states split over several rows as before merges.
func TestLookBack(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	insertOneByOne(t, conn, lookBackEvents())
	insertBillingSchedule(t, conn)
	for _, c := range lookBackCases() {
		if got := runQuery(t, conn, c.query, c.params); got != c.want {
			t.Errorf("%s(%v):\ngot:\n%s\nwant:\n%s", c.query, c.params, got, c.want)
		}
	}
}

// TestLookBackOnModern: the same cases on the embedded modern engine
// (modern schema rendering: job_events.time is DateTime64(3)), with the
// events copied one insert each (run states split over rows) and one
// event 700 ms into the second of a moment: it counts as of that second.
func TestLookBackOnModern(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	insertOneByOne(t, conn, lookBackEvents())
	insertBillingSchedule(t, conn)
	modern, v := modernDB(t, nil)
	srv := chserver.Shared(t)
	events, err := httpTSV(srv, conn.Database(), "SELECT * FROM job_events ORDER BY time_ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(events), "\n") {
		modern.MustExec(t, "INSERT INTO job_events FORMAT TabSeparated\n"+line+"\n")
	}
	expected, err := httpTSV(srv, conn.Database(), "SELECT * FROM job_expected_runs")
	if err != nil {
		t.Fatal(err)
	}
	modern.MustExec(t, "INSERT INTO job_expected_runs FORMAT TabSeparated\n"+expected)
	if got := modern.MustQuery(t, "SELECT count() > count(DISTINCT job, run_id) FROM job_runs_state"); got[0][0] != "1" {
		t.Fatalf("run states are not split over rows: %v", got)
	}
	check := func(c asOfCase) {
		t.Helper()
		q, err := schemas.LookupQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		sql, err := q.For(v).Render(c.params)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := modern.Query(sql)
		if err != nil {
			t.Fatalf("%s on %s: %v\n%s", c.query, v, err, sql)
		}
		var lines []string
		for _, r := range rows {
			lines = append(lines, strings.Join(r, "|"))
		}
		if got := strings.Join(lines, "\n"); got != c.want {
			t.Errorf("%s(%v) on %s:\ngot:\n%s\nwant:\n%s", c.query, c.params, v, got, c.want)
		}
		if len(q.Lets) > 0 {
			scalar := func(_ context.Context, sql string) (string, error) {
				rows, err := modern.Query(sql)
				if err != nil || len(rows) != 1 || len(rows[0]) != 1 {
					return "", fmt.Errorf("%v: %v", rows, err)
				}
				return rows[0][0], nil
			}
			if got := runLets(t, q.For(v), c.params, scalar, modern.Query); got != c.want {
				t.Errorf("%s(%v) on %s with the lets computed first:\ngot:\n%s\nwant:\n%s", c.query, c.params, v, got, c.want)
			}
		}
	}
	for _, c := range lookBackCases() {
		check(c)
	}
	// A heartbeat of n1 at 02:50:00.700 counts as of 02:50:00, not 02:49:59.
	hb := ts(2*time.Hour + 50*time.Minute)
	modern.MustExec(t, "INSERT INTO job_events (time, time_ms, job, run_id, event, attempt, host) SELECT toDateTime64('"+hb+".700', 3, 'UTC'), toUInt64(toUnixTimestamp(toDateTime('"+hb+"', 'UTC'))) * 1000 + 700, 'nightly', 'n1', 'heartbeat', 1, 'h1'")
	check(asOfCase{"stuck_runs", map[string]string{"idle_minutes": "1", "at": hb}, ""})
	check(asOfCase{"stuck_runs", map[string]string{"idle_minutes": "1", "at": ts(2*time.Hour + 49*time.Minute + 59*time.Second)},
		"nightly|n1|h1|" + ts(2*time.Hour) + "|" + ts(2*time.Hour+12*time.Minute) + "|37"})
	// A run failing at 01:29:59.700 has failed as of `until` 01:30:00.
	start, fail := ts(time.Hour), ts(time.Hour+29*time.Minute+59*time.Second)
	modern.MustExec(t, "INSERT INTO job_events (time, time_ms, job, run_id, event, attempt, host) SELECT toDateTime64('"+start+"', 3, 'UTC'), toUInt64(toUnixTimestamp(toDateTime('"+start+"', 'UTC'))) * 1000, 'report', 'r9', 'started', 1, 'h1'")
	modern.MustExec(t, "INSERT INTO job_events (time, time_ms, job, run_id, event, attempt, host, exit_code) SELECT toDateTime64('"+fail+".700', 3, 'UTC'), toUInt64(toUnixTimestamp(toDateTime('"+fail+"', 'UTC'))) * 1000 + 700, 'report', 'r9', 'failed', 1, 'h1', 2")
	check(asOfCase{"failed_runs", map[string]string{"since": ts(time.Hour), "until": ts(time.Hour + 30*time.Minute)},
		"report|r9|1|h1|" + start + "|1799.7|2||"})
	check(asOfCase{"failed_runs", map[string]string{"since": ts(time.Hour), "until": fail}, ""})
}

// TestAsOfEqualsTruncatedHistory: an answer as of a moment is the answer
// on a database that holds only the events up to that moment (before it,
// for `until`), at many moments, over both fixtures.
func TestAsOfEqualsTruncatedHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	var evs []jobEv
	evs = append(evs, lookBackEvents()...)
	for _, e := range catalogueJobEvents() {
		e.job = "cat-" + e.job // keep the catalogue fixture's runs apart
		evs = append(evs, e)
	}
	full := freshDB(t)
	insertOneByOne(t, full, evs)
	insertBillingSchedule(t, full)
	moments := []time.Duration{2*time.Hour + 25*time.Minute, 2*time.Hour + 55*time.Minute, 5*time.Hour + 7*time.Minute,
		10*time.Hour + 4*time.Minute, 10*time.Hour + 5*time.Minute + 300*time.Second, 12*time.Hour + 20*time.Minute, 20 * time.Hour}
	for _, moment := range moments {
		for _, inclusive := range []bool{true, false} { // at: events <= at; until: events < until
			var kept []jobEv
			for _, e := range evs {
				if e.at < moment || (inclusive && e.at == moment) {
					kept = append(kept, e)
				}
			}
			part := freshDB(t)
			insertJobs(t, part, kept)
			insertBillingSchedule(t, part)
			at := ts(moment)
			var cases []asOfCase
			if inclusive {
				cases = []asOfCase{
					{query: "stuck_runs", params: map[string]string{"at": at, "idle_minutes": "0"}},
					{query: "stuck_runs", params: map[string]string{"at": at, "idle_minutes": "10"}},
					{query: "overrunning_runs", params: map[string]string{"at": at, "min_history": "1"}},
					{query: "overlapping_runs", params: map[string]string{"at": at, "since": ts(0)}},
					{query: "missed_runs", params: map[string]string{"at": at, "since": ts(0)}},
				}
			} else {
				cases = []asOfCase{
					{query: "failed_runs", params: map[string]string{"since": ts(0), "until": at}},
					{query: "slowest_jobs", params: map[string]string{"since": ts(0), "until": at}},
				}
			}
			for _, c := range cases {
				got, want := runQuery(t, full, c.query, c.params), runQuery(t, part, c.query, c.params)
				if c.query == "overlapping_runs" || c.query == "failed_runs" {
					got, want = sortedLines(got), sortedLines(want)
				}
				if got != want {
					t.Errorf("%s(%v) on all events:\n%s\non the events up to then:\n%s", c.query, c.params, got, want)
				}
			}
		}
	}
}

func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}
