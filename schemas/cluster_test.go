package schemas

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/cluster.golden.sql")

// TestRenderClusterGolden renders every embedded migration for a cluster
// and compares the DDL with a reviewed golden file.
func TestRenderClusterGolden(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{Cluster: "logpipe", Database: "logs"}
	managed := Managed(ms)
	var b strings.Builder
	for _, m := range ms {
		for i, st := range m.Statements {
			out, err := tg.Render(st, managed)
			if err != nil {
				t.Fatalf("%04d_%s statement %d: %v", m.Version, m.Name, i+1, err)
			}
			for _, o := range out {
				b.WriteString("-- " + m.Name + "\n" + o + "\n;\n")
			}
		}
	}
	golden := filepath.Join("testdata", "cluster.golden.sql")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./schemas -run Golden -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("rendered cluster DDL differs from %s (review, then -update)", golden)
	}
}

func TestRenderCluster(t *testing.T) {
	managed := map[string]Kind{"ev": KindTable, "state": KindTable, "runs": KindView, "daily": KindView}
	tg := Target{Cluster: "c1", Database: "db"}
	tests := []struct {
		name, in string
		want     []string // each must be one rendered statement, in order
		wantErr  string
	}{
		{
			name: "kafka table: replicated local + Distributed sharded by partition",
			in:   "-- c\nCREATE TABLE IF NOT EXISTS ev\n(\n    x UInt8 COMMENT 'it''s x',\n    _topic String,\n    _partition Int32\n)\nENGINE = MergeTree()\nPARTITION BY x\nORDER BY (x)",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.ev_local ON CLUSTER c1\n(\n    x UInt8 COMMENT 'it''s x',\n    _topic String,\n    _partition Int32\n)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/ev_local', '{replica}')\nPARTITION BY x\nORDER BY (x)",
				"CREATE TABLE IF NOT EXISTS db.ev ON CLUSTER c1\n(\n    x UInt8 COMMENT 'it''s x',\n    _topic String,\n    _partition Int32\n)\nENGINE = Distributed(c1, db, ev_local, cityHash64(_topic, _partition))",
			},
		},
		{
			name: "engine arguments kept, sharded by ORDER BY",
			in:   "CREATE TABLE IF NOT EXISTS state (job String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY (job, v)",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.state_local ON CLUSTER c1\n(job String, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/state_local', '{replica}', v) ORDER BY (job, v)",
				"CREATE TABLE IF NOT EXISTS db.state ON CLUSTER c1\n(job String, v UInt64)\nENGINE = Distributed(c1, db, state_local, cityHash64(job, v))",
			},
		},
		{
			name: "materialized view reads and writes local tables",
			in:   "CREATE MATERIALIZED VIEW IF NOT EXISTS ev_mv TO state AS\nSELECT job, count() FROM ev GROUP BY job",
			want: []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS db.ev_mv ON CLUSTER c1 TO db.state_local AS\nSELECT job, count() FROM db.ev_local GROUP BY job"},
		},
		{
			name: "view reads Distributed tables and views, leaves others alone",
			in:   "CREATE VIEW IF NOT EXISTS daily AS SELECT * FROM runs JOIN state USING job WHERE x IN (SELECT x FROM ev) AND y IN (SELECT y FROM other) AND z IN (SELECT number FROM numbers(3))",
			want: []string{"CREATE VIEW IF NOT EXISTS db.daily ON CLUSTER c1 AS\nSELECT * FROM db.runs JOIN db.state USING job WHERE x IN (SELECT x FROM db.ev) AND y IN (SELECT y FROM other) AND z IN (SELECT number FROM numbers(3))"},
		},
		{
			name: "column change goes to local then Distributed",
			in:   "ALTER TABLE ev ADD COLUMN y UInt8 COMMENT 'y'",
			want: []string{"ALTER TABLE db.ev_local ON CLUSTER c1 ADD COLUMN y UInt8 COMMENT 'y'", "ALTER TABLE db.ev ON CLUSTER c1 ADD COLUMN y UInt8 COMMENT 'y'"},
		},
		{name: "other ALTER refused", in: "ALTER TABLE ev DROP PARTITION 1", wantErr: "only ADD, DROP, MODIFY and COMMENT COLUMN"},
		{name: "non-MergeTree refused", in: "CREATE TABLE IF NOT EXISTS m (x UInt8) ENGINE = Memory", wantErr: "only MergeTree-family"},
		{name: "replicated engine refused", in: "CREATE TABLE IF NOT EXISTS m (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x", wantErr: "already ReplicatedMergeTree"},
		{name: "MV into a foreign table refused", in: "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO other AS SELECT 1", wantErr: "not a table the migrations create"},
		{name: "anything else refused", in: "INSERT INTO ev SELECT 1", wantErr: "cannot render for a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tg.Render(tt.in, managed)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d statements, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n;\n"))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("statement %d:\ngot  %q\nwant %q", i+1, got[i], tt.want[i])
				}
			}
		})
	}
	// Old servers: comments off the replicated table, kept on the
	// Distributed one analysts read.
	old := Target{Cluster: "c1", Database: "db", LocalWithoutComments: true}
	got, err := old.Render(tests[0].in, managed)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got[0], "COMMENT") || !strings.Contains(got[1], "COMMENT 'it''s x'") {
		t.Errorf("LocalWithoutComments: got\n%s", strings.Join(got, "\n;\n"))
	}
	// One server: unchanged.
	if got, _ := (Target{}).Render(tests[0].in, managed); len(got) != 1 || got[0] != tests[0].in {
		t.Errorf("single-server render changed the statement: %q", got)
	}
}

// TestRenderModernGolden renders every migration for a modern server, on
// one server and on a cluster, and compares with reviewed golden files
// (what logpipe migrate -print -server-version 24.8 prints).
func TestRenderModernGolden(t *testing.T) {
	retention := map[string]time.Duration{"job_events": 30 * 24 * time.Hour, "cdn_requests": 14 * 24 * time.Hour}
	for _, tt := range []struct {
		file string
		tg   Target
	}{
		{"modern.golden.sql", Target{Server: ServerVersion{24, 8}, Retention: retention}},
		{"cluster_modern.golden.sql", Target{Cluster: "logpipe", Database: "logs", Server: ServerVersion{24, 8}, Retention: retention}},
	} {
		var b strings.Builder
		if err := Print(&b, tt.tg); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", tt.file)
		if *update {
			if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./schemas -run Golden -update)", err)
		}
		if b.String() != string(want) {
			t.Errorf("rendered DDL differs from %s (review, then -update)", golden)
		}
	}
}
