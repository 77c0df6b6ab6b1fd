// Package grafana holds the generated Grafana dashboard for logpipe
// (logpipe.json) and the test that generates it: its ClickHouse panels'
// SQL is the query catalogue's, rendered, so the dashboard cannot drift
// from schemas/queries. Regenerate with
//
//	go test ./deploy/grafana -run TestDashboard -update
package grafana

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
)

func TestMain(m *testing.M) { chserver.Main(m) }

var update = flag.Bool("update", false, "rewrite logpipe.json")

const dashboardFile = "logpipe.json"

// Grafana ClickHouse data source (grafana-clickhouse-datasource) macros
// for the dashboard's time range.
const (
	fromMacro = "$__fromTime"
	toMacro   = "$__toTime"
	// Sentinels rendered by Query.Render and then replaced by the macros.
	fromSentinel = "2001-01-01 00:00:01"
	toSentinel   = "2001-01-01 00:00:02"
)

// catalogue panels, in dashboard order: query name, panel width (of 24).
var cataloguePanels = []struct {
	query string
	width int
}{
	{"failed_runs", 24}, {"stuck_runs", 12}, {"missed_runs", 12},
	{"overrunning_runs", 12}, {"retry_storms", 12}, {"slowest_jobs", 24},
	{"cache_anomalies", 24}, {"session_mixing", 24}, {"hit_ratio_jumps", 24}, {"hit_ratio_hourly", 24},
}

// panelSQL renders q for Grafana: since -> dashboard start, until and at
// -> dashboard end, every other parameter at its catalogue default.
func panelSQL(q schemas.Query) (string, error) {
	values := map[string]string{}
	for _, p := range q.Params {
		switch {
		case p.Type == "DateTime" && p.Name == "since":
			values[p.Name] = fromSentinel
		case p.Type == "DateTime" && (p.Name == "until" || p.Name == "at"):
			values[p.Name] = toSentinel
		case p.Default == "":
			return "", fmt.Errorf("query %s: parameter %s has no default and no dashboard mapping", q.Name, p.Name)
		}
	}
	sql, err := q.Render(values)
	if err != nil {
		return "", err
	}
	sql = strings.ReplaceAll(sql, "toDateTime('"+fromSentinel+"', 'UTC')", fromMacro)
	sql = strings.ReplaceAll(sql, "toDateTime('"+toSentinel+"', 'UTC')", toMacro)
	return sql, nil
}

type obj = map[string]any

func dashboard(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	prom := obj{"type": "prometheus", "uid": "${prometheus}"}
	ch := obj{"type": "grafana-clickhouse-datasource", "uid": "${clickhouse}"}
	var panels []obj
	id, y := 1, 0
	add := func(p obj, w, h int, x *int) {
		if *x+w > 24 {
			*x = 0
			y += h
		}
		p["id"] = id
		p["gridPos"] = obj{"x": *x, "y": y, "w": w, "h": h}
		id++
		*x += w
		panels = append(panels, p)
	}
	row := func(title string, x *int) {
		if *x > 0 {
			y += 8
		}
		*x = 0
		panels = append(panels, obj{"id": id, "type": "row", "title": title, "collapsed": false, "gridPos": obj{"x": 0, "y": y, "w": 24, "h": 1}})
		id++
		y++
	}
	ts := func(title, unit string, exprs ...[2]string) obj {
		var targets []obj
		for i, e := range exprs {
			targets = append(targets, obj{"refId": string(rune('A' + i)), "datasource": prom, "expr": e[0], "legendFormat": e[1]})
		}
		return obj{"type": "timeseries", "title": title, "datasource": prom, "targets": targets,
			"fieldConfig": obj{"defaults": obj{"unit": unit}, "overrides": []any{}}}
	}
	x := 0
	row("logpipe health", &x)
	add(ts("Records consumed / s", "ops", [2]string{`sum(rate(logpipe_records_total[5m]))`, "records"}, [2]string{`sum(rate(logpipe_rows_total[5m]))`, "rows stored"}), 8, 8, &x)
	add(ts("Rejected lines (share)", "percentunit", [2]string{`sum(rate(logpipe_rejected_total[15m])) / sum(rate(logpipe_lines_total[15m]))`, "rejected"}), 8, 8, &x)
	add(ts("Consumer lag", "short", [2]string{`max by (topic) (logpipe_consumer_lag)`, "{{topic}}"}), 8, 8, &x)
	add(ts("INSERT latency p50 / p99", "s",
		[2]string{`histogram_quantile(0.5, sum by (le, table) (rate(logpipe_insert_duration_seconds_bucket[5m])))`, "p50 {{table}}"},
		[2]string{`histogram_quantile(0.99, sum by (le, table) (rate(logpipe_insert_duration_seconds_bucket[5m])))`, "p99 {{table}}"}), 12, 8, &x)
	add(ts("INSERT errors and retries / s", "ops",
		[2]string{`sum by (table) (rate(logpipe_insert_errors_total[5m]))`, "errors {{table}}"},
		[2]string{`sum by (table) (rate(logpipe_insert_retries_total[5m]))`, "retries {{table}}"}), 12, 8, &x)

	sqls := map[string]string{}
	section := ""
	for _, cp := range cataloguePanels {
		q, err := schemas.LookupQuery(cp.query)
		if err != nil {
			t.Fatal(err)
		}
		s := "Batch jobs (ClickHouse)"
		if strings.Contains(q.SQL, "cdn_") {
			s = "CDN (ClickHouse)"
		}
		if s != section {
			row(s, &x)
			section = s
		}
		sql, err := panelSQL(q)
		if err != nil {
			t.Fatal(err)
		}
		sqls[cp.query] = sql
		add(obj{"type": "table", "title": cp.query, "description": q.Question + " (schemas/queries/" + cp.query + ".sql)", "datasource": ch,
			"targets": []obj{{"refId": "A", "datasource": ch, "editorType": "sql", "queryType": "table", "format": 1, "rawSql": sql}}}, cp.width, 8, &x)
	}
	d := obj{
		"uid": "logpipe", "title": "logpipe", "tags": []string{"logpipe"},
		"schemaVersion": 39, "version": 1, "editable": true,
		"time":     obj{"from": "now-24h", "to": "now"},
		"timezone": "utc",
		"refresh":  "1m",
		"templating": obj{"list": []obj{
			{"name": "prometheus", "label": "Prometheus", "type": "datasource", "query": "prometheus"},
			{"name": "clickhouse", "label": "ClickHouse", "type": "datasource", "query": "grafana-clickhouse-datasource"},
		}},
		"annotations": obj{"list": []any{}},
		"description": "Generated by deploy/grafana/dashboard_test.go from schemas/queries; do not edit by hand.",
		"panels":      panels,
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n'), sqls
}

// TestDashboard checks logpipe.json is what the catalogue generates
// (-update rewrites it), and that every ClickHouse panel's SQL runs on the
// real server with the time macros bound.
func TestDashboard(t *testing.T) {
	b, sqls := dashboard(t)
	if *update {
		if err := os.WriteFile(dashboardFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b) {
		t.Fatalf("%s is stale: the catalogue or the generator changed; run go test ./deploy/grafana -run TestDashboard -update", dashboardFile)
	}
	if testing.Short() {
		return
	}
	srv := chserver.Shared(t)
	ctx := context.Background()
	rb := make([]byte, 4)
	rand.Read(rb)
	opts := chclient.Options{Addr: []string{srv.TCPAddr}, Database: "grafana_" + hex.EncodeToString(rb), User: "default"}
	if err := chclient.CreateDatabase(ctx, opts); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+opts.Database)
		conn.Close()
	}()
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	for name, sql := range sqls {
		if !strings.Contains(sql, "$__") && strings.Contains(sql, "now()") {
			t.Errorf("%s: panel SQL ignores the dashboard time range", name)
		}
		bound := strings.NewReplacer(fromMacro, "toDateTime('2026-11-24 00:00:00')", toMacro, "toDateTime('2026-11-25 00:00:00')").Replace(sql)
		if _, err := conn.QueryStrings(ctx, bound); err != nil {
			t.Errorf("%s: panel SQL fails on ClickHouse: %v\n%s", name, err, bound)
		}
	}
}
