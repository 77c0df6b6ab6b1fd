package schemas_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
)

// The modern-ClickHouse tier: the same migrations and catalogue on the
// embedded modern engine (internal/chdbtest), at the SQL level.

var testRetention = map[string]time.Duration{
	"job_events":       30 * 24 * time.Hour,
	"cdn_requests":     14 * 24 * time.Hour,
	"ingest_errors":    36 * time.Hour,
	"cdn_hourly_state": 400 * 24 * time.Hour,
}

// modernDB applies every migration to a fresh database of the embedded
// engine, rendered as logpipe migrate renders it for that server, with the
// given retention (TTL). Tables that get rows must have none: the server
// drops rows past their TTL by its real clock, and fixtures are dated.
func modernDB(t testing.TB, retention map[string]time.Duration) (*chdbtest.Engine, schemas.ServerVersion) {
	t.Helper()
	e := chdbtest.Open(t)
	ctx := context.Background()
	v, err := schemas.DetectServerVersion(ctx, e.DB())
	if err != nil {
		t.Fatal(err)
	}
	if !v.AtLeast(schemas.ModernSchema) {
		t.Fatalf("embedded engine is %s, older than the modern rendering (%s)", v, schemas.ModernSchema)
	}
	applied, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := schemas.Migrations()
	if len(applied) != len(ms) {
		t.Fatalf("applied %d of %d migrations", len(applied), len(ms))
	}
	return e, v
}

func TestModernMigrationsOnChdb(t *testing.T) {
	e, _ := modernDB(t, testRetention)
	ctx := context.Background()
	// Idempotent, like on 18.16.
	again, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{Retention: testRetention})
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %d, err %v", len(again), err)
	}
	if got := e.MustQuery(t, "SELECT DISTINCT rendering FROM schema_migrations"); len(got) != 1 || got[0][0] != "modern" {
		t.Errorf("schema_migrations.rendering = %q, want only modern", got)
	}
	show := func(table string) string {
		rows := e.MustQuery(t, "SHOW CREATE TABLE "+table)
		return rows[0][0]
	}
	for _, tt := range []struct {
		table string
		want  []string
	}{
		{"job_events", []string{
			"`time` DateTime64(3, 'UTC') COMMENT", "CODEC(Delta(8), ZSTD(1))", "`_offset` Int64 COMMENT 'Kafka offset of the record' CODEC(DoubleDelta, ZSTD(1))",
			"`message` String COMMENT 'Free text' CODEC(ZSTD(1))", "`job` LowCardinality(String)",
			"TTL toDateTime(time) + toIntervalDay(30)", "ttl_only_drop_parts = 1"}},
		{"cdn_requests", []string{
			"`time` DateTime64(3, 'UTC')", "INDEX session_hash_bloom session_hash TYPE bloom_filter GRANULARITY 4",
			"INDEX path_template_bloom path_template TYPE bloom_filter GRANULARITY 4",
			"TTL toDateTime(time) + toIntervalDay(14)", "ttl_only_drop_parts = 1"}},
		{"ingest_errors", []string{"`time` DateTime64(3, 'UTC')", "TTL toDateTime(time) + toIntervalHour(36)", "`raw` String COMMENT 'The rejected bytes (cut at max_record_bytes)' CODEC(ZSTD(1))"}},
		{"cdn_hourly_state", []string{"`hour` DateTime CODEC(Delta(4), ZSTD(1))", "TTL toDateTime(hour) + toIntervalDay(400)"}},
		{"job_expected_runs", []string{"`expected_time` DateTime COMMENT 'When a run was due (UTC)' CODEC(Delta(4), ZSTD(1))", "ttl_only_drop_parts = 1"}},
		{"alerts", []string{"`evidence` String COMMENT", "ttl_only_drop_parts = 1"}},
	} {
		ddl := show(tt.table)
		for _, w := range tt.want {
			if !strings.Contains(ddl, w) {
				t.Errorf("SHOW CREATE TABLE %s lacks %q:\n%s", tt.table, w, ddl)
			}
		}
	}
	// Tables without retention get no TTL.
	if ddl := show("job_expected_runs"); strings.Contains(ddl, "TTL") {
		t.Errorf("job_expected_runs has a TTL without a retention rule:\n%s", ddl)
	}
}

// A schema created on an old server keeps working after the server is
// upgraded: the legacy rendering applies on the modern engine too, and the
// catalogue runs on it.
func TestLegacyRenderingOnChdb(t *testing.T) {
	e := chdbtest.Open(t)
	ctx := context.Background()
	if _, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{Server: schemas.Oldest}); err != nil {
		t.Fatal(err)
	}
	if got := e.MustQuery(t, "SELECT DISTINCT rendering FROM schema_migrations"); len(got) != 1 || got[0][0] != "legacy" {
		t.Errorf("schema_migrations.rendering = %q, want only legacy", got)
	}
	v, _ := schemas.DetectServerVersion(ctx, e.DB())
	runCatalogueEmpty(t, e, v)
}

// Every catalogue query, in the text chosen for the engine's version, runs
// on the modern schema.
func TestCatalogueOnChdb(t *testing.T) {
	e, v := modernDB(t, testRetention)
	runCatalogueEmpty(t, e, v)
}

func runCatalogueEmpty(t *testing.T, e *chdbtest.Engine, v schemas.ServerVersion) {
	t.Helper()
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		sql, err := q.For(v).Render(requiredParams(q))
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		if err := e.Exec(sql); err != nil {
			t.Errorf("%s on %s: %v\n%s", q.Name, v, err, sql)
		}
		// Every variant the engine is new enough for, not only the
		// chosen one (the base text is 18.16's, run there).
		for _, vt := range q.Variants {
			if !v.AtLeast(vt.MinVersion) {
				t.Errorf("%s: variant %s is for servers newer than the embedded %s: untested", q.Name, vt.MinVersion, v)
				continue
			}
			one := q
			one.SQL, one.Variants = vt.SQL, nil
			sql, err := one.Render(requiredParams(q))
			if err != nil {
				t.Errorf("%s variant %s: %v", q.Name, vt.MinVersion, err)
				continue
			}
			if err := e.Exec(sql); err != nil {
				t.Errorf("%s variant %s on %s: %v\n%s", q.Name, vt.MinVersion, v, err, sql)
			}
		}
	}
}

// requiredParams gives every parameter without a default a valid value.
func requiredParams(q schemas.Query) map[string]string {
	params := map[string]string{}
	for _, p := range q.Params {
		if p.Default == "" {
			params[p.Name] = map[string]string{"String": "x", "DateTime": "2026-11-20 00:00:00", "Date": "2026-11-20", "UInt64": "1", "Int64": "1", "Float64": "1"}[p.Type]
		}
	}
	return params
}

// The embedded engine has no cluster to run ON CLUSTER DDL on, but its
// parser is the modern server's: every statement of the modern cluster
// rendering must parse (EXPLAIN AST).
func TestModernClusterRenderingParsesOnChdb(t *testing.T) {
	e := chdbtest.Open(t)
	var b strings.Builder
	if err := schemas.Print(&b, schemas.Target{Cluster: "logpipe", Database: "logs", Server: schemas.ServerVersion{Major: 24, Minor: 8}, Retention: testRetention}); err != nil {
		t.Fatal(err)
	}
	sts := schemas.SplitStatements(b.String())
	if len(sts) < 20 {
		t.Fatalf("only %d statements rendered", len(sts))
	}
	for _, st := range sts {
		if err := e.Exec("EXPLAIN AST " + st); err != nil {
			t.Errorf("%v\n%s", err, st)
		}
	}
}

// A schema_migrations made before it had the rendering column (any
// deployment migrated by an older logpipe) gets the column when the next
// migration is applied, and old rows read as ”.
func TestRenderingColumnAddedOnChdb(t *testing.T) {
	e := chdbtest.Open(t)
	testRenderingColumnAdded(t, e.DB(), "modern")
}

func TestRenderingColumnAdded(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	ctx := context.Background()
	for _, st := range []string{"DROP TABLE schema_migrations", "DROP DATABASE " + conn.Database(), "CREATE DATABASE " + conn.Database()} {
		if err := conn.Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	testRenderingColumnAdded(t, conn, "legacy")
}

func testRenderingColumnAdded(t *testing.T, db schemas.Execer, want string) {
	t.Helper()
	ctx := context.Background()
	ms, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// What an older logpipe left: the table without the column, the first
	// migration recorded.
	for _, st := range []string{
		"CREATE TABLE schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree() ORDER BY version",
		fmt.Sprintf("INSERT INTO schema_migrations (version, name, checksum, applied_at) SELECT %d, '%s', '%s', now()", ms[0].Version, ms[0].Name, ms[0].Checksum),
	} {
		if err := db.Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range ms[0].Statements {
		if err := db.Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	applied, err := schemas.MigrateTarget(ctx, db, schemas.Target{})
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(ms)-1 {
		t.Fatalf("applied %d migrations, want %d", len(applied), len(ms)-1)
	}
	rows, err := db.QueryStrings(ctx, "SELECT toString(version), rendering FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ms) || rows[0][1] != "" {
		t.Fatalf("schema_migrations = %q", rows)
	}
	for _, r := range rows[1:] {
		if r[1] != want {
			t.Errorf("migration %s recorded rendering %q, want %q", r[0], r[1], want)
		}
	}
}
