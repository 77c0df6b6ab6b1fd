package schemas_test

import (
	"context"
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
// engine, rendered as logpipe migrate renders it for that server.
func modernDB(t *testing.T) (*chdbtest.Engine, schemas.ServerVersion) {
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
	applied, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{Retention: testRetention})
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
	e, _ := modernDB(t)
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
	e, v := modernDB(t)
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
