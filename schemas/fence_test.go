package schemas_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// TestFenceRefusesStaleEpoch checks the fence on the server: a batch with
// the partition's current epoch is stored (and every view of its table
// runs exactly once), a batch with an older epoch, or for a partition
// nobody fenced, is refused whole with checkpoint.ErrFenced and stores nothing.
func TestFenceRefusesStaleEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	ctx := context.Background()
	w := sink.NewWriter(conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cdn := func(offsets ...int64) *tables.CDNRequests {
		b := tables.NewCDNRequests()
		for _, o := range offsets {
			b.Append(&transform.CDNRequest{Time: T, Host: "h", Path: "/p", Status: 200, CacheStatus: "hit", FromCache: true}, tables.Meta{Topic: "cdn", Partition: 1, Offset: o}, T, 10)
		}
		return b
	}
	e1, err := checkpoint.New(conn).Fence(ctx, "cdn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.InsertFenced(ctx, cdn(0, 1), "", checkpoint.Fence{Topic: "cdn", Partition: 1, Epoch: e1}); err != nil {
		t.Fatalf("insert with the current epoch: %v", err)
	}
	e2, err := checkpoint.New(conn).Fence(ctx, "cdn", 1)
	if err != nil {
		t.Fatal(err)
	}
	if e2 <= e1 {
		t.Fatalf("second fence %d not above the first %d", e2, e1)
	}
	err = w.InsertFenced(ctx, cdn(2, 3), "", checkpoint.Fence{Topic: "cdn", Partition: 1, Epoch: e1})
	if !errors.Is(err, checkpoint.ErrFenced) {
		t.Fatalf("insert with the old epoch: %v, want ErrFenced", err)
	}
	// A partition that nobody fenced refuses every epoch.
	b := tables.NewCDNRequests()
	b.Append(&transform.CDNRequest{Time: T, Host: "h"}, tables.Meta{Topic: "cdn", Partition: 2, Offset: 0}, T, 10)
	if err := w.InsertFenced(ctx, b, "", checkpoint.Fence{Topic: "cdn", Partition: 2, Epoch: e2}); !errors.Is(err, checkpoint.ErrFenced) {
		t.Fatalf("insert into an unfenced partition: %v, want ErrFenced", err)
	}
	if err := w.InsertFenced(ctx, cdn(2), "", checkpoint.Fence{Topic: "cdn", Partition: 1, Epoch: e2}); err != nil {
		t.Fatalf("insert with the new epoch: %v", err)
	}
	jobs := tables.NewJobEvents()
	jobs.Append(&transform.JobEvent{Time: T, Job: "j", RunID: "r", Event: "started"}, tables.Meta{Topic: "jobs", Partition: 0, Offset: 7}, T, 10)
	if err := w.InsertFenced(ctx, jobs, "", checkpoint.Fence{Topic: "jobs", Epoch: 5}); !errors.Is(err, checkpoint.ErrFenced) {
		t.Fatalf("job insert with an epoch nobody recorded: %v, want ErrFenced", err)
	}
	ej, err := checkpoint.New(conn).Fence(ctx, "jobs", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.InsertFenced(ctx, jobs, "", checkpoint.Fence{Topic: "jobs", Epoch: ej}); err != nil {
		t.Fatal(err)
	}
	errs := tables.NewIngestErrors()
	errs.Append("s", "f", 1, "bad", []byte("x"), 1, tables.Meta{Topic: "jobs", Partition: 0, Offset: 8}, T)
	if err := w.InsertFenced(ctx, errs, "", checkpoint.Fence{Topic: "jobs", Epoch: ej}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ query, want string }{
		{"SELECT toString(count()) FROM cdn_requests", "3"},
		{"SELECT arrayStringConcat(groupArray(toString(_offset)), ',') FROM (SELECT _offset FROM cdn_requests ORDER BY _offset)", "0,1,2"},
		// Every view of the table ran once per stored row: on 18.16 the
		// twins reading the fence views, on modern servers the views of
		// the tables themselves.
		{"SELECT toString(sum(requests)) FROM cdn_hourly", "3"},
		{"SELECT toString(sum(events)) FROM job_runs", "1"},
		{"SELECT toString(count()) FROM ingest_errors", "1"},
		{"SELECT arrayStringConcat(groupArray(concat(target, ':', toString(o))), ',') FROM (SELECT target, maxMerge(max_offset) AS o FROM ingest_watermarks GROUP BY target ORDER BY target)", "cdn_requests:2,ingest_errors:8,job_events:7"},
	} {
		rows, err := conn.QueryStrings(ctx, c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if got := rows[0][0]; got != c.want {
			t.Errorf("%s = %s, want %s", c.query, got, c.want)
		}
	}
	if f, err := checkpoint.New(conn).Fences(ctx, "cdn", 1); err != nil || f != e2 {
		t.Errorf("Fences = %d, %v; want %d", f, err, e2)
	}
}

// TestFencePathMatchesTables checks that every data table can be written
// through its fence: NAME_in has NAME's columns (plus _epoch) and
// NAME_fence_mv selects every one of them, and every materialized view
// reading NAME has a twin reading NAME_fence_mv into the same table (see
// migration 0019_fences). A column or view added to a data table without
// its fence counterpart fails here.
func TestFencePathMatchesTables(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	ctx := context.Background()
	columns := func(table string) string {
		rows, err := conn.QueryStrings(ctx, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+table+"' AND name != '_epoch'")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r[0]+" "+r[1])
		}
		return strings.Join(out, ", ")
	}
	for _, tbl := range []string{"job_events", "cdn_requests", "ingest_errors"} {
		want := columns(tbl)
		if got := columns(tbl + sink.FenceSuffix); got != want {
			t.Errorf("%s_in columns:\n%s\nwant (%s):\n%s", tbl, got, tbl, want)
		}
		if got := columns(tbl + "_fence_mv"); got != want {
			t.Errorf("%s_fence_mv selects:\n%s\nwant (%s):\n%s", tbl, got, tbl, want)
		}
	}
	ms, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	mv := regexp.MustCompile(`(?is)CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+TO\s+(\w+)\s+AS\s.*?\bFROM\s+(\w+)`)
	reads := map[string]map[string]string{} // source -> target -> view
	for _, m := range ms {
		for _, st := range m.Statements {
			if g := mv.FindStringSubmatch(st); g != nil {
				if reads[g[3]] == nil {
					reads[g[3]] = map[string]string{}
				}
				reads[g[3]][g[2]] = g[1]
			}
		}
	}
	for _, tbl := range []string{"job_events", "cdn_requests", "ingest_errors"} {
		for target, view := range reads[tbl] {
			if _, ok := reads[tbl+"_fence_mv"][target]; !ok {
				t.Errorf("view %s reads %s into %s, but no view reads %s_fence_mv into %s: rows stored through the fence would miss it on ClickHouse 18.16", view, tbl, target, tbl, target)
			}
		}
		for target, view := range reads[tbl+"_fence_mv"] {
			if _, ok := reads[tbl][target]; !ok {
				t.Errorf("view %s reads %s_fence_mv into %s, but no view reads %s into %s: modern servers would miss it", view, tbl, target, tbl, target)
			}
		}
	}
}

// TestFenceOnChdb runs the fence on the embedded modern ClickHouse, with
// the migrations rendered as logpipe migrate renders them for it: entry
// tables match their tables (event times in milliseconds included), a
// stale epoch or an unfenced partition is refused whole, and every view
// runs once per stored row (there the views of the tables fire, not their
// twins).
func TestFenceOnChdb(t *testing.T) {
	e, _ := modernDB(t, nil)
	columns := func(table string) string {
		rows := e.MustQuery(t, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+table+"' AND name != '_epoch' ORDER BY position")
		var out []string
		for _, r := range rows {
			out = append(out, r[0]+" "+r[1])
		}
		return strings.Join(out, ", ")
	}
	for _, tbl := range []string{"job_events", "cdn_requests", "ingest_errors"} {
		want := columns(tbl)
		if got := columns(tbl + sink.FenceSuffix); got != want {
			t.Errorf("%s_in columns:\n%s\nwant (%s):\n%s", tbl, got, tbl, want)
		}
		if got := columns(tbl + "_fence_mv"); got != want {
			t.Errorf("%s_fence_mv selects:\n%s\nwant (%s):\n%s", tbl, got, tbl, want)
		}
	}
	// Recent times, so that the rows would survive a retention TTL too.
	now := time.Now().UTC().Truncate(time.Second)
	at := now.Format(time.DateTime)
	fence := func(topic string, partition int, epoch uint64) {
		e.MustExec(t, fmt.Sprintf("INSERT INTO ingest_fences (_topic, _partition, epoch) SELECT '%s', toInt32(%d), maxState(toUInt64(%d))", topic, partition, epoch))
	}
	cdn := func(partition, offset int, epoch uint64) error {
		return e.Exec(fmt.Sprintf("INSERT INTO cdn_requests_in (time, host, path, status, from_cache, _topic, _partition, _offset, _epoch) VALUES ('%s.123', 'h', '/p', 200, 1, 'cdn', %d, %d, %d)", at, partition, offset, epoch))
	}
	fence("cdn", 1, 1<<32|7)
	if err := cdn(1, 0, 1<<32|7); err != nil {
		t.Fatal(err)
	}
	fence("cdn", 1, 2<<32|3)
	if err := cdn(1, 1, 1<<32|7); err == nil || !strings.Contains(err.Error(), "Code: 395") {
		t.Errorf("stale epoch: %v, want code 395", err)
	}
	if err := cdn(2, 0, 2<<32|3); err == nil || !strings.Contains(err.Error(), "Code: 395") {
		t.Errorf("unfenced partition: %v, want code 395", err)
	}
	if err := cdn(1, 2, 2<<32|3); err != nil {
		t.Fatal(err)
	}
	fence("jobs", 0, 5)
	e.MustExec(t, "INSERT INTO job_events_in (time, time_ms, job, run_id, event, _topic, _partition, _offset, _epoch) VALUES ('"+at+"', 1, 'j', 'r', 'started', 'jobs', 0, 7, 5)")
	e.MustExec(t, "INSERT INTO ingest_errors_in (time, reason, _topic, _partition, _offset, _epoch) VALUES ('"+at+"', 'bad', 'jobs', 0, 8, 5)")
	for _, c := range []struct{ query, want string }{
		{"SELECT arrayStringConcat(groupArray(toString(_offset)), ',') FROM (SELECT _offset FROM cdn_requests ORDER BY _offset)", "0,2"},
		{"SELECT toString(min(time)) FROM cdn_requests", at + ".123"},
		{"SELECT toString(sum(requests)) FROM cdn_hourly", "2"},
		{"SELECT toString(sum(events)) FROM job_runs", "1"},
		{"SELECT toString(count()) FROM ingest_errors", "1"},
		{"SELECT arrayStringConcat(groupArray(concat(target, ':', toString(o))), ',') FROM (SELECT target, maxMerge(max_offset) AS o FROM ingest_watermarks GROUP BY target ORDER BY target)", "cdn_requests:2,ingest_errors:8,job_events:7"},
	} {
		if got := e.MustQuery(t, c.query)[0][0]; got != c.want {
			t.Errorf("%s = %s, want %s", c.query, got, c.want)
		}
	}
}
