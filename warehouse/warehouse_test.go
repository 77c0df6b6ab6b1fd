package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/warehouse"
)

func TestMain(m *testing.M) { chserver.Main(m) }

func fresh(t *testing.T) (*chclient.Conn, *chserver.Server) {
	t.Helper()
	return chtest.Migrated(t, "wh"), chserver.Shared(t)
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := warehouse.ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "-1d", "soon", "0d"} {
		if _, err := warehouse.ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) accepted", in)
		}
	}
}

// TestRetention keeps one day of cdn_requests out of three: the dry run
// drops nothing, apply drops exactly the two old days.
func TestRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn, _ := fresh(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, day := range []string{"2026-11-17", "2026-11-18", "2026-11-20"} {
		if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO cdn_requests (time, host, path) SELECT toDateTime('%s 10:00:00', 'UTC') + number, 'h', '/' FROM numbers(10)", day)); err != nil {
			t.Fatal(err)
		}
	}
	w := warehouse.New(conn)
	w.Now = func() time.Time { return now }
	rules := map[string]time.Duration{"cdn_requests": 36 * time.Hour} // keeps 2026-11-19 00:00 onwards
	dry, err := w.Retention(ctx, rules, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(dry); got != "2026-11-17 10 kept; 2026-11-18 10 kept" {
		t.Errorf("dry run = %s", got)
	}
	days := func() string {
		r, _ := conn.QueryStrings(ctx, "SELECT arrayStringConcat(groupArray(d), ',') FROM (SELECT DISTINCT toString(toDate(time)) AS d FROM cdn_requests ORDER BY d)")
		return r[0][0]
	}
	if got := days(); got != "2026-11-17,2026-11-18,2026-11-20" {
		t.Fatalf("dry run changed the data: %s", got)
	}
	done, err := w.Retention(ctx, rules, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(done); got != "2026-11-17 10 dropped; 2026-11-18 10 dropped" {
		t.Errorf("apply = %s", got)
	}
	if got := days(); got != "2026-11-20" {
		t.Errorf("after retention the table holds %s, want 2026-11-20", got)
	}
}

func describe(ps []warehouse.Partition) string {
	var s []string
	for _, p := range ps {
		state := "kept"
		if p.Dropped {
			state = "dropped"
		}
		s = append(s, fmt.Sprintf("%s %d %s", p.Partition, p.Rows, state))
	}
	return strings.Join(s, "; ")
}

// TestRetireLifecycle: a table read inside the quiet period is refused
// with the evidence; an unread one is renamed, restored, retired again, and
// dropped only once the grace period is over.
func TestRetireLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn, srv := fresh(t)
	ctx := context.Background()
	db := conn.Database()
	for _, tbl := range []string{"old_report", "busy_report"} {
		if err := conn.Exec(ctx, "CREATE TABLE "+tbl+" (x UInt8) ENGINE = MergeTree() ORDER BY x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Query(ctx, "SELECT count() FROM "+db+".busy_report"); err != nil {
		t.Fatal(err)
	}
	if err := srv.FlushLogs(ctx); err != nil {
		t.Fatal(err)
	}
	w := warehouse.New(conn)
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) // midday: steps below stay on one date
	w.Now = func() time.Time { return now }

	_, err := w.Retire(ctx, "busy_report", 30*24*time.Hour, "test", "unused?")
	var refused *warehouse.RefusedError
	if !errors.As(err, &refused) || refused.Usage.Reads != 1 || refused.Usage.Readers[0] != "default" {
		t.Fatalf("retiring a table read just now: err = %v, want a refusal with 1 read by default", err)
	}
	name, err := w.Retire(ctx, "old_report", 30*24*time.Hour, "test", "replaced by job_daily")
	if err != nil {
		t.Fatal(err)
	}
	if want := "old_report__retired_" + now.Format("20060102"); name != want {
		t.Errorf("retired name %s, want %s", name, want)
	}
	exists := func(tbl string) bool {
		r, _ := conn.QueryStrings(ctx, fmt.Sprintf("SELECT toString(count()) FROM system.tables WHERE database = '%s' AND name = '%s'", db, tbl))
		return r[0][0] == "1"
	}
	if exists("old_report") || !exists(name) {
		t.Fatal("retire did not rename")
	}
	w.Now = func() time.Time { return now.Add(time.Minute) }
	if _, err := w.Restore(ctx, name, "test"); err != nil {
		t.Fatal(err)
	}
	if !exists("old_report") || exists(name) {
		t.Fatal("restore did not rename back")
	}
	w.Now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, err := w.Retire(ctx, "old_report", 30*24*time.Hour, "test", "again"); err != nil {
		t.Fatal(err)
	}
	grace := 14 * 24 * time.Hour
	w.Now = func() time.Time { return now.Add(24 * time.Hour) }
	rs, err := w.DropRetired(ctx, grace, "test", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Droppable || rs[0].Dropped || !exists(name) {
		t.Fatalf("a day after retiring: %+v; want it kept", rs)
	}
	w.Now = func() time.Time { return now.Add(grace + time.Hour) }
	if rs, _ := w.DropRetired(ctx, grace, "test", false); len(rs) != 1 || !rs[0].Droppable || rs[0].Dropped || !exists(name) {
		t.Fatalf("dry run after the grace period: %+v; want droppable, not dropped", rs)
	}
	if rs, err := w.DropRetired(ctx, grace, "test", true); err != nil || len(rs) != 1 || !rs[0].Dropped || exists(name) {
		t.Fatalf("after the grace period: %+v, %v; want it dropped", rs, err)
	}
	r, _ := conn.QueryStrings(ctx, "SELECT arrayStringConcat(groupArray(action), ',') FROM (SELECT action FROM table_retirements WHERE table_name = 'old_report' ORDER BY time)")
	if r[0][0] != "rename,restore,rename,drop" {
		t.Errorf("table_retirements records %s, want rename,restore,rename,drop", r[0][0])
	}
}

// TestMigrationSchedulesRetirement: a migration that replaces a table
// says so ("-- retire: old"), and the old table is listed for retirement
// until it is retired.
func TestMigrationSchedulesRetirement(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn, _ := fresh(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE old_totals (x UInt8) ENGINE = MergeTree() ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	ms, err := schemas.LoadMigrations(fstest.MapFS{"m/0099_new_totals.sql": {Data: []byte(
		"-- retire: old_totals\nCREATE TABLE IF NOT EXISTS new_totals (x UInt8) ENGINE = MergeTree() ORDER BY x\n")}}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || len(ms[0].Retire) != 1 || ms[0].Retire[0] != "old_totals" {
		t.Fatalf("retire directive not read: %+v", ms)
	}
	if _, err := schemas.Apply(ctx, conn, ms); err != nil {
		t.Fatal(err)
	}
	w := warehouse.New(conn)
	list := func() string {
		ts, err := w.Scheduled(ctx, 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tb := range ts {
			names = append(names, tb.Name)
		}
		return strings.Join(names, ",")
	}
	if got := list(); got != "old_totals" {
		t.Fatalf("scheduled = %q, want old_totals", got)
	}
	w.Now = func() time.Time { return time.Now().UTC().Add(time.Minute) }
	if _, err := w.Retire(ctx, "old_totals", 30*24*time.Hour, "test", "replaced"); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "" {
		t.Errorf("after retiring, scheduled = %q, want none", got)
	}
}

// TestRetireRefusesTablesWithViews: a table that views read or that a
// materialized view writes into is not renamed (it would break the views,
// or every INSERT into the view's source).
func TestRetireRefusesTablesWithViews(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn, _ := fresh(t)
	ctx := context.Background()
	w := warehouse.New(conn)
	tests := []struct {
		table string
		want  []string
	}{
		// read by materialized views, written by its fence view (0019_fences)
		{"cdn_requests", []string{"cdn_hourly_mv", "cdn_requests_fence_mv", "cdn_requests_watermark_fenced_mv", "cdn_requests_watermark_mv"}},
		// written by two (the view and its fenced twin), read by views
		{"cdn_hourly_state", []string{"cdn_config_versions", "cdn_hourly", "cdn_hourly_fenced_mv", "cdn_hourly_mv"}},
		{"job_schedules", nil}, // only logpipe itself reads it
	}
	for _, tt := range tests {
		deps, err := w.Dependents(ctx, tt.table)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(deps, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Dependents(%s) = %v, want %v", tt.table, deps, tt.want)
		}
		if len(tt.want) == 0 {
			continue
		}
		_, err = w.Retire(ctx, tt.table, time.Hour, "test", "")
		if err == nil || !strings.Contains(err.Error(), "views depend on it: "+strings.Join(tt.want, ", ")) {
			t.Errorf("Retire(%s) = %v, want a refusal naming %v", tt.table, err, tt.want)
		}
		r, _ := conn.QueryStrings(ctx, "SELECT toString(count()) FROM system.tables WHERE database = currentDatabase() AND name = '"+tt.table+"'")
		if r[0][0] != "1" {
			t.Errorf("%s was renamed after all", tt.table)
		}
	}
}
