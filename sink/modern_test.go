package sink

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/transform"
)

// TestBatchesOnModernEngine proves each table's batch (its column list and
// the Go types the sink fills them with) is accepted by the modern schema
// on the embedded modern engine: the batch is encoded by the driver's own
// column encoders for the types the engine reports, loaded with
// INSERT ... FORMAT Native, and read back.
func TestBatchesOnModernEngine(t *testing.T) {
	e := chdbtest.Open(t)
	ctx := context.Background()
	if _, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 23, 59, 59, 987_000_000, time.FixedZone("JST", 9*3600))
	now := time.Date(2026, 11, 21, 0, 0, 1, 0, time.UTC)

	jobs := NewJobEvents()
	jobs.Append(&transform.JobEvent{Time: at, Job: "etl", RunID: "r1", Event: "failed", Attempt: 2, Host: "h1",
		ExitCode: 3, HasExitCode: true, Error: "boom\tline\n2", ErrorClass: "E", CounterNames: []string{"in", "out"}, CounterValues: []float64{1.5, 2},
		LabelKeys: []string{"env"}, LabelValues: []string{"prod"}, ScheduledTime: at.Add(-time.Minute)}, Meta{Topic: "jobs", Partition: 3, Offset: 41}, now, 10)
	jobs.Append(&transform.JobEvent{Time: at, Job: "etl", RunID: "r2", Event: "started", Attempt: 1}, Meta{Topic: "jobs", Partition: 3, Offset: 42}, now, 10)

	cdn := NewCDNRequests()
	cdn.Append(&transform.CDNRequest{Time: at, Vendor: "fastly", Host: "www.example.jp", Method: "GET", Path: "/mypage", PathTemplate: "/mypage",
		PathClass: "personal", Status: 200, CacheStatus: "hit", FromCache: true, SessionHash: 1<<63 + 5, BytesSent: 1234, DurationMs: 1.25,
		FlagPersonalCached: true, Age: 7, UserAgent: "Mozilla/5.0 \"x\""}, Meta{Topic: "cdn", Partition: 0, Offset: 7}, now, 100)

	errs := NewIngestErrors()
	errs.Append("cdn", "fastly", 2, "bad json", []byte("{\x00oops"), 7, Meta{Topic: "cdn", Partition: 1, Offset: 9}, at)

	for _, tt := range []struct {
		b     Batch
		check string // query
		want  [][]string
	}{
		{jobs, "SELECT time, scheduled_time, run_id, exit_code, error, counter_names, counter_values, _offset FROM job_events ORDER BY _offset",
			[][]string{
				{"2026-11-20 14:59:59.987", "2026-11-20 14:58:59", "r1", "3", "boom\tline\n2", "['in','out']", "[1.5,2]", "41"},
				{"2026-11-20 14:59:59.987", "1970-01-01 00:00:00", "r2", `\N`, "", "[]", "[]", "42"},
			}},
		{cdn, "SELECT time, time_ms, path_template, session_hash, duration_ms, from_cache, user_agent FROM cdn_requests",
			[][]string{{"2026-11-20 14:59:59.987", "1795186799987", "/mypage", "9223372036854775813", "1.25", "1", "Mozilla/5.0 \"x\""}}},
		{errs, "SELECT time, reason, raw, raw_size FROM ingest_errors",
			[][]string{{"2026-11-20 14:59:59.987", "bad json", "{\x00oops", "7"}}},
	} {
		t.Run(tt.b.Table(), func(t *testing.T) {
			cols := Columns(tt.b)
			types := map[string]string{}
			for _, r := range e.MustQuery(t, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+tt.b.Table()+"'") {
				types[r[0]] = r[1]
			}
			var ts []string
			for _, c := range cols {
				typ, ok := types[c]
				if !ok {
					t.Fatalf("the sink writes column %s, which %s lacks", c, tt.b.Table())
				}
				ts = append(ts, typ)
				delete(types, c)
			}
			if len(types) > 0 {
				t.Errorf("%s has columns the sink never fills: %v", tt.b.Table(), types)
			}
			data, err := EncodeNative(tt.b, ts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "batch.native")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			e.MustExec(t, "INSERT INTO "+tt.b.Table()+" ("+strings.Join(cols, ", ")+") FROM INFILE '"+path+"' FORMAT Native")
			if got := e.MustQuery(t, tt.check); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read back %q\nwant %q", got, tt.want)
			}
		})
	}
	// The materialized views ran on the inserted rows: runs, and the
	// watermarks re-delivery is checked against.
	if got := e.MustQuery(t, "SELECT target, _topic, _partition, toString(maxMerge(max_offset)) FROM ingest_watermarks GROUP BY target, _topic, _partition ORDER BY target"); !reflect.DeepEqual(got, [][]string{
		{"cdn_requests", "cdn", "0", "7"}, {"ingest_errors", "cdn", "1", "9"}, {"job_events", "jobs", "3", "42"}}) {
		t.Errorf("ingest_watermarks = %q", got)
	}
	if got := e.MustQuery(t, "SELECT run_id, status, exit_code FROM job_runs ORDER BY run_id"); !reflect.DeepEqual(got, [][]string{{"r1", "failed", "3"}, {"r2", "running", `\N`}}) {
		t.Errorf("job_runs = %q", got)
	}
}

func TestEncodeNativeChecksTypes(t *testing.T) {
	b := NewIngestErrors()
	if _, err := EncodeNative(b, []string{"DateTime"}); err == nil || !strings.Contains(err.Error(), "1 column types for 10 columns") {
		t.Errorf("err = %v", err)
	}
	types := []string{"DateTime", "String", "String", "UInt32", "String", "String", "UInt32", "String", "Int32", "UInt8"} // _offset is Int64
	b.Append("s", "f", 1, "r", []byte("x"), 1, Meta{Offset: 1}, time.Unix(0, 0))
	if _, err := EncodeNative(b, types); err == nil || !strings.Contains(err.Error(), "_offset") {
		t.Errorf("err = %v, want one naming column _offset", err)
	}
}
