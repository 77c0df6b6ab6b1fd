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
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
)

// BenchmarkCatalogue loads a data set (by default 10M CDN requests in one
// day and 1M job runs over 30 days, generated inside ClickHouse) and times
// every catalogue query on it: `make bench` prints the s/query of each.
//
//	LOGPIPE_BENCH_CDN_ROWS=10000000 LOGPIPE_BENCH_JOB_RUNS=1000000 \
//	  go test -run '^$' -bench BenchmarkCatalogue -benchtime 3x ./schemas/
//
// The data set is kept in the database bench_<cdn>_<runs> of the server
// and reused when it already holds the rows (LOGPIPE_CLICKHOUSE_ADDR
// points the test binary at a long-lived server).
func BenchmarkCatalogue(b *testing.B) {
	cdnRows := envInt(b, "LOGPIPE_BENCH_CDN_ROWS", 10_000_000)
	jobRuns := envInt(b, "LOGPIPE_BENCH_JOB_RUNS", 1_000_000)
	conn := benchData(b, cdnRows, jobRuns)
	day := benchDay.Format("2006-01-02 15:04:05")
	next := benchDay.Add(24 * time.Hour).Format("2006-01-02 15:04:05")
	values := map[string]string{
		"since": day, "until": next, "at": next, "job": "job7",
	}
	type run struct {
		name   string
		query  schemas.Query
		params map[string]string
	}
	qs, err := schemas.Queries()
	if err != nil {
		b.Fatal(err)
	}
	var runs []run
	for _, q := range qs {
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
			runs = append(runs, run{q.Name + "/5h", q, w})
			runs = append(runs, run{q.Name + "/24h", q, p})
			continue
		}
		runs = append(runs, run{q.Name, q, p})
	}
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			var rows int
			for i := 0; i < b.N; i++ {
				// The lets' queries first, as `logpipe query` runs them:
				// their time counts.
				sql, err := r.query.RenderWith(context.Background(), conn.Scalar, r.params)
				if err != nil {
					b.Fatal(err)
				}
				_, out, err := conn.Query(context.Background(), sql)
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

func benchData(b *testing.B, cdnRows, jobRuns int) *chclient.Conn {
	b.Helper()
	ctx := context.Background()
	srv := chserver.Shared(b)
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: fmt.Sprintf("bench_%d_%d", cdnRows, jobRuns)}
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
	start := time.Now()
	if n := have("cdn_requests"); n != cdnRows {
		if err := conn.Exec(ctx, "TRUNCATE TABLE cdn_requests"); err != nil {
			b.Fatal(err)
		}
		// In chunks of 1M rows: each INSERT ... SELECT stays within the
		// server's memory limits.
		for from := 0; from < cdnRows; from += 1_000_000 {
			n := min(1_000_000, cdnRows-from)
			if err := conn.Exec(ctx, cdnLoadSQL(from, n, cdnRows)); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("loaded %d CDN rows in %s", cdnRows, time.Since(start).Round(time.Second))
	}
	start = time.Now()
	if n := have("job_events"); n != 2*jobRuns {
		for _, t := range []string{"job_events", "job_runs_state"} {
			if err := conn.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
				b.Fatal(err)
			}
		}
		for from := 0; from < jobRuns; from += 250_000 {
			n := min(250_000, jobRuns-from)
			if err := conn.Exec(ctx, jobLoadSQL(from, n, jobRuns)); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("loaded %d job runs in %s", jobRuns, time.Since(start).Round(time.Second))
	}
	return conn
}

// cdnLoadSQL generates rows [from, from+n) of a day of Fastly logs with
// personal pages fetched, collapsed and served from cache (the 2017
// shape), public items and static files mostly from cache.
func cdnLoadSQL(from, n, total int) string {
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
