package tables_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/internal/chdbtest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// table is what the tests need of a table type.
type table interface {
	sink.Batch
	Types(modern bool) []string
}

type tableCase struct {
	b     table
	check string // query reading the rows back
	want  [][]string
}

// cases returns one batch of each table, with rows covering each column
// kind (NULL and set, empty and filled arrays, LowCardinality values
// repeated), and what reading them back gives on the modern engine (with
// the event time's milliseconds) or on 18.16.
func cases(modern bool) []tableCase {
	at := time.Date(2026, 11, 20, 23, 59, 59, 987_000_000, time.FixedZone("JST", 9*3600))
	now := time.Date(2026, 11, 21, 0, 0, 1, 0, time.UTC)
	tm := "2026-11-20 14:59:59"
	if modern {
		tm += ".987"
	}

	jobs := tables.NewJobEvents()
	jobs.Append(&transform.JobEvent{Time: at, Job: "etl", RunID: "r1", Event: "failed", Attempt: 2, Host: "h1",
		ExitCode: 3, HasExitCode: true, Error: "boom\tline\n2", ErrorClass: "E", CounterNames: []string{"in", "out"}, CounterValues: []float64{1.5, 2},
		LabelKeys: []string{"env"}, LabelValues: []string{"prod"}, ScheduledTime: at.Add(-time.Minute)}, tables.Meta{Topic: "jobs", Partition: 3, Offset: 41}, now, 10)
	jobs.Append(&transform.JobEvent{Time: at, Job: "etl", RunID: "r2", Event: "started", Attempt: 1}, tables.Meta{Topic: "jobs", Partition: 3, Offset: 42}, now, 10)

	cdn := tables.NewCDNRequests()
	cdn.Append(&transform.CDNRequest{Time: at, Vendor: "fastly", Host: "www.example.jp", Method: "GET", Path: "/mypage", PathTemplate: "/mypage",
		PathClass: "personal", Status: 200, CacheStatus: "hit", FromCache: true, SessionHash: 1<<63 + 5, BytesSent: 1234, DurationMs: 1.25,
		FlagPersonalCached: true, Age: 7, UserAgent: "Mozilla/5.0 \"x\""}, tables.Meta{Topic: "cdn", Partition: 0, Offset: 7}, now, 100)
	cdn.Append(&transform.CDNRequest{Time: at, Vendor: "fastly", Host: "img.example.jp", Method: "GET", Path: "/a.png", PathTemplate: "/a.png",
		Status: 304, CacheStatus: "hit"}, tables.Meta{Topic: "cdn", Partition: 0, Offset: 8}, now, 100)

	errs := tables.NewIngestErrors()
	errs.Append("cdn", "fastly", 2, "bad json", []byte("{\x00oops"), 7, tables.Meta{Topic: "cdn", Partition: 1, Offset: 9}, at)

	return []tableCase{
		{jobs, "SELECT time, scheduled_time, job, run_id, exit_code, error, counter_names, counter_values, label_values, _topic, _offset FROM job_events ORDER BY _offset",
			[][]string{
				{tm, "2026-11-20 14:58:59", "etl", "r1", "3", "boom\tline\n2", "['in','out']", "[1.5,2]", "['prod']", "jobs", "41"},
				{tm, "1970-01-01 00:00:00", "etl", "r2", `\N`, "", "[]", "[]", "[]", "jobs", "42"},
			}},
		{cdn, "SELECT time, time_ms, vendor, host, path_template, session_hash, duration_ms, from_cache, user_agent, status FROM cdn_requests ORDER BY _offset",
			[][]string{
				{tm, "1795186799987", "fastly", "www.example.jp", "/mypage", "9223372036854775813", "1.25", "1", "Mozilla/5.0 \"x\"", "200"},
				{tm, "1795186799987", "fastly", "img.example.jp", "/a.png", "0", "0", "0", "", "304"},
			}},
		{errs, "SELECT time, stream, reason, raw, raw_size FROM ingest_errors",
			[][]string{{tm, "cdn", "bad json", "{\x00oops", "7"}}},
	}
}

// checkColumns compares a table's column list and types with what the
// engine's system.columns holds for it (rows of name, type in order).
func checkColumns(t *testing.T, b table, modern bool, got [][]string) {
	t.Helper()
	var want [][]string
	types := b.Types(modern)
	for i, name := range b.Columns() {
		want = append(want, []string{name, types[i]})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: system.columns has\n%q\nthe table type defines\n%q", b.Table(), got, want)
	}
}

// TestTablesOnModernEngine proves each table type (its column list, its
// column types and the Go values it fills them with) is the table the
// migrations create on the embedded modern engine: the columns match
// system.columns, and a batch encoded by the driver's own column encoders
// for those types loads with INSERT ... FORMAT Native and reads back.
func TestTablesOnModernEngine(t *testing.T) {
	e := chdbtest.Open(t)
	ctx := context.Background()
	if _, err := schemas.MigrateTarget(ctx, e.DB(), schemas.Target{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range cases(true) {
		t.Run(tt.b.Table(), func(t *testing.T) {
			checkColumns(t, tt.b, true, e.MustQuery(t, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+tt.b.Table()+"' ORDER BY position"))
			data, err := sink.EncodeNative(tt.b, tt.b.Types(true))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "batch.native")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			e.MustExec(t, "INSERT INTO "+tt.b.Table()+" ("+strings.Join(tt.b.Columns(), ", ")+") FROM INFILE '"+path+"' FORMAT Native")
			if got := e.MustQuery(t, tt.check); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read back %q\nwant %q", got, tt.want)
			}
		})
	}
	// The materialized views ran on the inserted rows: runs, and the
	// watermarks re-delivery is checked against.
	if got := e.MustQuery(t, "SELECT target, _topic, _partition, toString(maxMerge(max_offset)) FROM ingest_watermarks GROUP BY target, _topic, _partition ORDER BY target"); !reflect.DeepEqual(got, [][]string{
		{"cdn_requests", "cdn", "0", "8"}, {"ingest_errors", "cdn", "1", "9"}, {"job_events", "jobs", "3", "42"}}) {
		t.Errorf("ingest_watermarks = %q", got)
	}
	if got := e.MustQuery(t, "SELECT run_id, status, exit_code FROM job_runs ORDER BY run_id"); !reflect.DeepEqual(got, [][]string{{"r1", "failed", "3"}, {"r2", "running", `\N`}}) {
		t.Errorf("job_runs = %q", got)
	}
}

// TestTablesOn1816 is the same on ClickHouse 18.16 over the native
// protocol: the columns match system.columns, and each batch goes through
// sink.Writer, plainly and through the fence, and reads back.
func TestTablesOn1816(t *testing.T) {
	ctx := context.Background()
	conn := chtest.Migrated(t, "tables")
	w := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range cases(false) {
		t.Run(tt.b.Table(), func(t *testing.T) {
			for _, name := range []string{tt.b.Table(), tt.b.Table() + sink.FenceSuffix} {
				rows, err := conn.QueryStrings(ctx, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+name+"' AND name != '_epoch'")
				if err != nil {
					t.Fatal(err)
				}
				checkColumns(t, tt.b, false, rows)
			}
			if err := w.Insert(ctx, tt.b); err != nil {
				t.Fatal(err)
			}
			got, err := conn.QueryStrings(ctx, tt.check)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read back %q\nwant %q", got, tt.want)
			}
			// Through the fence, with the partition's current epoch: the
			// rows are stored a second time.
			topic, part, _, ok := tt.b.Span()
			if !ok {
				t.Fatalf("span of %s: rows of several partitions", tt.b.Table())
			}
			epoch, err := checkpoint.New(conn).Fence(ctx, topic, part)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.InsertFenced(ctx, tt.b, "", checkpoint.Fence{Topic: topic, Partition: part, Epoch: epoch}); err != nil {
				t.Fatal(err)
			}
			n, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM "+tt.b.Table())
			if err != nil {
				t.Fatal(err)
			}
			if want := 2 * len(tt.want); n[0][0] != strconv.Itoa(want) {
				t.Errorf("%s holds %s rows after the fenced insert, want %d", tt.b.Table(), n[0][0], want)
			}
		})
	}
}

func TestEncodeNativeChecksTypes(t *testing.T) {
	b := tables.NewIngestErrors()
	if _, err := sink.EncodeNative(b, []string{"DateTime"}); err == nil || !strings.Contains(err.Error(), "1 column types for 10 columns") {
		t.Errorf("err = %v", err)
	}
	types := b.Types(false)
	types[len(types)-1] = "UInt8" // _offset is Int64
	b.Append("s", "f", 1, "r", []byte("x"), 1, tables.Meta{Offset: 1}, time.Unix(0, 0))
	if _, err := sink.EncodeNative(b, types); err == nil || !strings.Contains(err.Error(), "_offset") {
		t.Errorf("err = %v, want one naming column _offset", err)
	}
}
