package schemas_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
)

// BenchmarkCatalogue loads a data set (by default 10M CDN requests in one
// day and 1M job runs over 30 days, generated inside ClickHouse) and times
// every catalogue query on it: `make bench` prints the s/query of each.
//
//	LOGPIPE_BENCH_CDN_ROWS=10000000 LOGPIPE_BENCH_JOB_RUNS=1000000 \
//	  go test -run '^$' -bench '^BenchmarkCatalogue$' -benchtime 3x ./schemas/
//
// The CDN day is the 2017 incident's (cdnDayLoadSQL); the incident_*
// queries also run on a worst case (rows named worst/..., cdnWorstLoadSQL).
// The data sets are kept in the databases bench_day_<cdn>_<runs> and
// bench_worst_<cdn> of the server and reused when they already hold the
// rows (LOGPIPE_CLICKHOUSE_ADDR points the test binary at a long-lived
// server).
func BenchmarkCatalogue(b *testing.B) {
	cdnRows := envInt(b, "LOGPIPE_BENCH_CDN_ROWS", 10_000_000)
	jobRuns := envInt(b, "LOGPIPE_BENCH_JOB_RUNS", 1_000_000)
	day := benchData(b, fmt.Sprintf("bench_day_%d_%d", cdnRows, jobRuns), cdnRows, jobRuns, cdnDayLoadSQL)
	var worst benchDB
	if cdnRows > 0 {
		worst = benchData(b, fmt.Sprintf("bench_worst_%d", cdnRows), cdnRows, 0, cdnWorstLoadSQL)
	}
	// The zero version: every query's base text, the one 18.16 runs.
	runCatalogue(b, schemas.ServerVersion{}, day, worst)
}

// BenchmarkCatalogueModern is BenchmarkCatalogue on the embedded modern
// ClickHouse (chdb 26.5, internal/chdbtest): the same data sets made by the
// same SQL, in the modern rendering of the schema (without TTL: the data
// are dated), and each query in its text for the engine's version. `make
// bench-queries-modern` prints the s/query of each:
//
//	LOGPIPE_BENCH_CDN_ROWS=10000000 LOGPIPE_BENCH_JOB_RUNS=1000000 \
//	  go test -run '^$' -bench '^BenchmarkCatalogueModern$' -benchtime 3x ./schemas/
//
// The engine runs inside the benchmark's process (no server, no network),
// with its default settings. Its data directory belongs to the process and
// goes with it, so every run loads the data sets afresh; the queries are
// timed once the background merges of the load are over (they would
// otherwise share the cores with the first queries).
// LOGPIPE_BENCH_CHDB_SETTINGS (e.g. "enable_analyzer = 0") is SET for the
// queries instead of the defaults.
func BenchmarkCatalogueModern(b *testing.B) {
	if err := chdbtest.Available(); err != nil {
		b.Skipf("embedded modern ClickHouse not available (make chdb installs it): %v", err)
	}
	cdnRows := envInt(b, "LOGPIPE_BENCH_CDN_ROWS", 10_000_000)
	jobRuns := envInt(b, "LOGPIPE_BENCH_JOB_RUNS", 1_000_000)
	day, v := modernBenchData(b, cdnRows, jobRuns, cdnDayLoadSQL)
	var worst benchDB
	if cdnRows > 0 {
		worst, _ = modernBenchData(b, cdnRows, 0, cdnWorstLoadSQL)
	}
	// Settings to compare with the defaults, e.g. enable_analyzer = 0: the
	// session is the process's, so they apply to both data sets.
	ctx := context.Background()
	if set := os.Getenv("LOGPIPE_BENCH_CHDB_SETTINGS"); set != "" {
		if err := day.Exec(ctx, "SET "+set); err != nil {
			b.Fatalf("LOGPIPE_BENCH_CHDB_SETTINGS: %v", err)
		}
	}
	settings, err := day.Scalar(ctx, "SELECT concat('max_threads ', toString(getSetting('max_threads')), ', enable_analyzer ', toString(getSetting('enable_analyzer')))")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("ClickHouse %s embedded: %s", v, settings)
	runCatalogue(b, v, day, worst)
}

// modernBenchData loads a data set into a fresh database of the embedded
// engine and waits for the merges the load started.
func modernBenchData(b *testing.B, cdnRows, jobRuns int, cdnLoad func(from, n, total int) string) (chdbtest.DB, schemas.ServerVersion) {
	b.Helper()
	e, v := modernDB(b, nil)
	db := e.DB()
	if cdnRows > 0 {
		loadChunks(b, db, "CDN rows", cdnRows, cdnChunk, cdnLoad)
	}
	if jobRuns > 0 {
		loadChunks(b, db, "job runs", jobRuns, jobChunk, jobLoadSQL)
	}
	// Quiet for a few seconds in a row: a finished merge can be followed
	// by the next one of the same partition.
	ctx := context.Background()
	start := time.Now()
	for quiet := 0; quiet < 5; {
		n, err := db.Scalar(ctx, "SELECT count() FROM system.merges WHERE database = currentDatabase()")
		if err != nil {
			b.Fatal(err)
		}
		if quiet++; n != "0" {
			quiet = 0
		}
		if time.Since(start) > 10*time.Minute {
			b.Logf("merges still running after %s; timing anyway", time.Since(start).Round(time.Second))
			break
		}
		time.Sleep(time.Second)
	}
	parts, err := db.QueryStrings(ctx, "SELECT table, toString(count()) FROM system.parts WHERE database = currentDatabase() AND active AND rows > 0 GROUP BY table ORDER BY table")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("merges over after %s; active parts %v", time.Since(start).Round(time.Second), parts)
	return db, v
}

// benchDB is a bench data set's database: the 18.16 server's
// (*chclient.Conn) or the embedded modern engine's (chdbtest.DB).
type benchDB interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (cols []string, rows [][]string, err error)
	QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error)
	Scalar(ctx context.Context, query string) (string, error)
}

// runCatalogue times every catalogue query, in its text for version, on
// day, and the incident_* queries on worst too when there is one (rows
// worst/...): one sub-benchmark each, reporting s/query and the rows of
// the answer.
func runCatalogue(b *testing.B, version schemas.ServerVersion, day, worst benchDB) {
	values := map[string]string{
		"since": benchDay.Format("2006-01-02 15:04:05"), "until": benchDay.Add(24 * time.Hour).Format("2006-01-02 15:04:05"),
		"at": benchDay.Add(24 * time.Hour).Format("2006-01-02 15:04:05"), "job": "job7",
	}
	type run struct {
		name   string
		query  schemas.Query
		params map[string]string
		db     benchDB
	}
	qs, err := schemas.Queries()
	if err != nil {
		b.Fatal(err)
	}
	var runs []run
	for _, q := range qs {
		q = q.For(version)
		p := map[string]string{}
		for _, par := range q.Params {
			if v, ok := values[par.Name]; ok {
				if par.Type == "Date" {
					v = benchDay.Add(-29 * 24 * time.Hour).Format("2006-01-02")
				}
				p[par.Name] = v
			}
		}
		if strings.HasPrefix(q.Name, "incident_") {
			// The 2017 incident's five hours, then the whole day.
			w := map[string]string{"since": benchDay.Add(9*time.Hour + 41*time.Minute).Format("2006-01-02 15:04:05"),
				"until": benchDay.Add(14*time.Hour + 41*time.Minute).Format("2006-01-02 15:04:05")}
			runs = append(runs, run{q.Name + "/5h", q, w, day}, run{q.Name + "/24h", q, p, day})
			if worst != nil {
				runs = append(runs, run{"worst/" + q.Name + "/5h", q, w, worst}, run{"worst/" + q.Name + "/24h", q, p, worst})
			}
			continue
		}
		runs = append(runs, run{q.Name, q, p, day})
	}
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			var rows int
			for i := 0; i < b.N; i++ {
				// The lets' queries first, as `logpipe query` runs them:
				// their time counts.
				sql, err := r.query.RenderWith(context.Background(), r.db.Scalar, r.params)
				if err != nil {
					b.Fatal(err)
				}
				_, out, err := r.db.Query(context.Background(), sql)
				if err != nil {
					b.Fatalf("%s: %v", r.name, err)
				}
				rows = len(out)
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/query")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// benchDay is the CDN data set's day (UTC); job runs cover the 30 days
// before its end.
var benchDay = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

func benchData(b *testing.B, db string, cdnRows, jobRuns int, cdnLoad func(from, n, total int) string) *chclient.Conn {
	b.Helper()
	ctx := context.Background()
	srv := chserver.Shared(b)
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: db}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		b.Fatal(err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		b.Fatal(err)
	}
	have := func(table string) int {
		r, err := conn.QueryStrings(ctx, "SELECT count() FROM "+table)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.Atoi(r[0][0])
		return n
	}
	// cdn_hourly_state and job_runs_state are filled by materialized
	// views: emptied with their sources.
	truncate := func(tables ...string) {
		for _, t := range tables {
			if err := conn.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n := have("cdn_requests"); n != cdnRows {
		truncate("cdn_requests", "cdn_hourly_state")
		loadChunks(b, conn, "CDN rows", cdnRows, cdnChunk, cdnLoad)
	}
	if n := have("job_events"); n != 2*jobRuns {
		truncate("job_events", "job_runs_state")
		loadChunks(b, conn, "job runs", jobRuns, jobChunk, jobLoadSQL)
	}
	return conn
}

// Rows per INSERT ... SELECT of the bench loaders: each stays within the
// server's memory limits (and, on the embedded engine, keeps the
// benchmark's own process small).
const (
	cdnChunk = 1_000_000
	jobChunk = 250_000 // runs: two events each
)

// loadChunks inserts rows [0, total) made by gen, chunk rows per statement,
// into empty tables.
func loadChunks(b testing.TB, db benchDB, what string, total, chunk int, gen func(from, n, total int) string) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for from := 0; from < total; from += chunk {
		if err := db.Exec(ctx, gen(from, min(chunk, total-from), total)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d %s in %s", total, what, time.Since(start).Round(time.Second))
}

// cdnDayLoadSQL generates rows [from, from+n) of a day of Fastly logs of a
// marketplace with the 2017 incident in it. 95% of the rows are the day's
// ordinary traffic: static files (70%) and public item pages (25%) mostly
// from cache, personal pages that say private (order details, settings:
// 3%) and the login page (1%) passed to the origin. The last 5% are the
// incident: from 09:41 to 15:05 /mypage (www and api) and ten pages of
// /mypage/orders were cached with a TTL of 0 at three POPs, so per page and
// POP one origin fetch (20-1500 ms) at a time, 0-3 other users' requests
// collapsed onto it, a fetch every 5.6 s or so (fetches of one page at
// different POPs overlap); the group's unused rows are static hits.
func cdnDayLoadSQL(from, n, total int) string {
	incident := total / 20
	groups := incident / 4
	perLane := max(1, (groups+35)/36)
	slot := max(2000, int64(5*time.Hour+24*time.Minute)/int64(time.Millisecond)/int64(perLane))
	return strings.NewReplacer("{from}", strconv.Itoa(from), "{n}", strconv.Itoa(n),
		"{na}", strconv.Itoa(total-incident), "{slot}", strconv.FormatInt(slot, 10), "{slot_free}", strconv.FormatInt(slot-1600, 10),
		"{day_ms}", strconv.FormatInt(benchDay.UnixMilli(), 10),
		"{inc_ms}", strconv.FormatInt(benchDay.Add(9*time.Hour+41*time.Minute).UnixMilli(), 10)).Replace(`
INSERT INTO cdn_requests (time, time_ms, vendor, service, config_version, pop, host, method, path, path_template,
    path_class, query, status, origin_status, cache_status, cache_status_raw, collapsed, from_cache, bytes_sent,
    duration_ms, origin_ms, has_session_cookie, session_hash, flag_personal_cached, flag_auth_cached,
    _topic, _partition, _offset, _ingested_at)
SELECT
    toDateTime(intDiv(ms, 1000)), ms, 'fastly', 'svc', '42', ['NRT', 'KIX', 'HND'][1 + pop_i], host, 'GET', path, template,
    class, query, 200, if(st IN ('MISS', 'PASS'), 200, 0),
    multiIf(st = 'HIT', 'hit', st = 'PASS', 'pass', 'miss'), st,
    st = 'MISS-WAIT', st = 'HIT', size, 5 + h3 % 100,
    if(st IN ('MISS', 'PASS'), toFloat64(origin), 0),
    sess != 0, sess,
    class = 'personal' AND st IN ('HIT', 'MISS-WAIT'), sess != 0 AND class != 'static' AND st IN ('HIT', 'MISS-WAIT'),
    'cdn', 0, toInt64(number), now()
FROM
(
    SELECT
        number,
        number >= {na} AS inc,
        cityHash64(number, 1) AS h, cityHash64(number, 2) AS h2, cityHash64(number, 3) AS h3,
        -- ordinary traffic
        h % 100 AS k,
        -- the incident: groups of 4 rows (a fetch, then up to 3 collapsed), 36 lanes (page x POP)
        toUInt64(if(inc, number - {na}, 0)) AS r, intDiv(r, 4) AS g, r % 4 AS j, g % 36 AS lane, intDiv(lane, 3) AS page,
        toUInt64({inc_ms}) + intDiv(g, 36) * {slot} + cityHash64(g) % {slot_free} AS fetch_ms,
        20 + cityHash64(g, 1) % 1480 AS fetch_len,
        j > 0 AND j <= cityHash64(g, 2) % 4 AS waiter,
        inc AND (j = 0 OR waiter) AS mine,
        multiIf(NOT inc, toUInt64({day_ms}) + intDiv(number * 86400000, {na}) + cityHash64(number) % 7,
                j = 0, fetch_ms, waiter, fetch_ms + cityHash64(number) % (fetch_len + 1), fetch_ms + cityHash64(number) % {slot}) AS ms,
        if(inc, lane % 3, h % 3) AS pop_i,
        if(mine, if(page = 1, 'api.example.jp', 'www.example.jp'), if(h % 5 = 0, 'api.example.jp', 'www.example.jp')) AS host,
        multiIf(mine, if(page < 2, '/mypage', '/mypage/orders'),
                inc OR k >= 30, concat('/static/app', toString(h2 % 200), '.js'),
                k < 2, concat('/orders/', toString(h2 % 100000)), k < 3, '/mypage/settings', k < 4, '/login',
                concat('/items/', toString(h2 % 50000))) AS path,
        multiIf(mine, path, inc OR k >= 30, '/static/app:id.js', k < 2, '/orders/:id', k < 4, path, '/items/:id') AS template,
        multiIf(mine, 'personal', inc OR k >= 30, 'static', k < 3, 'personal', k < 4, 'auth', 'other') AS class,
        if(mine AND page >= 2, concat('page=', toString(page - 1)), '') AS query,
        multiIf(mine, if(j = 0, 'MISS', 'MISS-WAIT'), NOT inc AND k < 4, 'PASS',
                NOT inc AND k < 30, if(h3 % 100 < 80, 'HIT', 'MISS'), inc OR h3 % 100 < 95, 'HIT', 'MISS') AS st,
        multiIf(st = 'MISS' AND mine, fetch_len, 20 + h3 % 1500) AS origin,
        -- a page's size: the same for everyone, but for personal pages per session (the owner's)
        1000 + (cityHash64(path, query) + if(class = 'personal', if(mine, cityHash64(g, 3) % 1000000, sess), 0)) % 50000 AS size,
        multiIf(mine AND j = 0, cityHash64(cityHash64(g, 3) % 1000000), mine, cityHash64(cityHash64(number, 4) % 1000000),
                class IN ('personal', 'auth') OR h2 % 2 = 0, cityHash64(h2 % 1000000), 0) AS sess
    FROM numbers({from}, {n})
)`)
}

// cdnWorstLoadSQL generates rows [from, from+n) of a worst case for the
// incident pairing: a whole day of Fastly logs in which a third of all
// requests are personal or login pages with random cache states, 60%
// origin fetches of random length (20-1520 ms) that overlap each other
// (about five fetches of /mypage in flight at any moment), 25% collapsed
// and 15% hits; public items and static files mostly from cache. No CDN
// behaves like this (collapsing leaves one fetch per key and POP in
// flight), which is what makes it the worst case.
func cdnWorstLoadSQL(from, n, total int) string {
	return strings.NewReplacer("{from}", strconv.Itoa(from), "{n}", strconv.Itoa(n), "{total}", strconv.Itoa(total),
		"{day_ms}", strconv.FormatInt(benchDay.UnixMilli(), 10)).Replace(`
INSERT INTO cdn_requests (time, time_ms, vendor, service, config_version, pop, host, method, path, path_template,
    path_class, query, status, origin_status, cache_status, cache_status_raw, collapsed, from_cache, bytes_sent,
    duration_ms, origin_ms, has_session_cookie, session_hash, flag_personal_cached, flag_auth_cached,
    _topic, _partition, _offset, _ingested_at)
SELECT
    toDateTime(intDiv(ms, 1000)), ms, 'fastly', 'svc', '42', ['NRT', 'KIX', 'HND'][1 + h % 3],
    if(h % 5 = 0, 'api.example.jp', 'www.example.jp'), 'GET',
    multiIf(k < 10, '/mypage', k < 20, '/mypage/orders', k < 28, concat('/orders/', toString(h2 % 100000)), k < 32, '/login',
            k < 65, concat('/items/', toString(h2 % 50000)), concat('/static/app', toString(h2 % 200), '.js')),
    multiIf(k < 10, '/mypage', k < 20, '/mypage/orders', k < 28, '/orders/:id', k < 32, '/login', k < 65, '/items/:id', '/static/app:id.js'),
    multiIf(k < 28, 'personal', k < 32, 'auth', k < 65, 'other', 'static') AS class,
    if(k >= 10 AND k < 20, concat('page=', toString(h2 % 20)), ''),
    200, if(st IN ('MISS', 'PASS'), 200, 0),
    multiIf(st = 'HIT', 'hit', st = 'PASS', 'pass', 'miss'), st,
    st = 'MISS-WAIT', st = 'HIT', 1000 + h2 % 50000, 5 + h3 % 100,
    if(st IN ('MISS', 'PASS'), toFloat64(20 + h3 % 1500), 0),
    sess != 0, sess,
    class = 'personal' AND st IN ('HIT', 'MISS-WAIT'), sess != 0 AND class != 'static' AND st IN ('HIT', 'MISS-WAIT'),
    'cdn', 0, toInt64(number), now()
FROM
(
    SELECT
        number,
        toUInt64({day_ms}) + intDiv(number * 86400000, {total}) + cityHash64(number) % 7 AS ms,
        cityHash64(number, 1) AS h, cityHash64(number, 2) AS h2, cityHash64(number, 3) AS h3,
        h % 100 AS k,
        multiIf(k < 32, multiIf(h3 % 100 < 60, 'MISS', h3 % 100 < 85, 'MISS-WAIT', 'HIT'),
                k < 65, if(h3 % 100 < 80, 'HIT', 'MISS'),
                if(h3 % 100 < 95, 'HIT', 'PASS')) AS st,
        if(k < 32 OR h2 % 2 = 0, cityHash64(h2 % 1000000), 0) AS sess
    FROM numbers({from}, {n})
)`)
}

// jobLoadSQL generates runs [from, from+n): a start and an end event each,
// 200 jobs, over the 30 days before the CDN day's end; 3% fail.
func jobLoadSQL(from, n, total int) string {
	return strings.NewReplacer("{from}", strconv.Itoa(from), "{n}", strconv.Itoa(n), "{total}", strconv.Itoa(total),
		"{start_ms}", strconv.FormatInt(benchDay.Add(-29*24*time.Hour).UnixMilli(), 10)).Replace(`
INSERT INTO job_events (time, time_ms, job, run_id, event, scheduled_time, attempt, host, exit_code, error_class,
    counter_names, counter_values, label_keys, label_values, _topic, _partition, _offset, _ingested_at)
SELECT
    toDateTime(intDiv(t, 1000)), t, concat('job', toString(number % 200)), concat('r', toString(number)), ev,
    toDateTime(intDiv(start, 1000)), 1, concat('host', toString(number % 7)),
    if(ev = 'started', NULL, toNullable(toInt32(failed))), if(ev = 'failed', 'RuntimeError', ''),
    [], [], [], [], 'jobs', 0, toInt64(number), now()
FROM
(
    SELECT
        number,
        toUInt64({start_ms}) + intDiv(number * 2592000000, {total}) AS start,
        cityHash64(number) % 100 < 3 AS failed,
        arrayJoin([('started', start), (if(failed, 'failed', 'finished'), start + 1000 + cityHash64(number, 1) % 600000)]) AS e,
        e.1 AS ev, e.2 AS t
    FROM numbers({from}, {n})
)`)
}
