package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/partition"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// The tests in this file drive one partition through the pipeline with
// the in-memory fakes of fake_test.go: they need no server and take
// milliseconds.

// unit is one pipeline consuming one fake partition.
type unit struct {
	p      *pipeline.Pipeline
	store  *fakeStore
	claim  *fakeClaim
	j      *journal
	cancel context.CancelFunc
	done   chan struct{}
}

// jobLine is a valid logpipe-job line.
func jobLine(run string) string {
	return fmt.Sprintf(`{"time":"2026-11-20T01:00:00Z","job":"load","run_id":%q,"event":"started"}`, run)
}

// newUnit builds a pipeline of one logpipe-job stream on topic "jobs"
// with maxRows rows per batch and batches that never age out; setup, if
// set, prepares the store before the partition is claimed.
func newUnit(t *testing.T, maxRows int, setup func(*fakeStore)) *unit {
	t.Helper()
	return newUnitWith(t, unitOptions{maxRows: maxRows, setup: setup})
}

// unitOptions vary newUnit's pipeline.
type unitOptions struct {
	j       *journal // default: a new one
	maxRows int
	maxAge  time.Duration // default: an hour
	format  string        // default: logpipe-job
	setup   func(*fakeStore)
	hooks   []pipeline.Hook
}

// newUnitWith is newUnit with options.
func newUnitWith(t *testing.T, o unitOptions) *unit {
	t.Helper()
	if o.j == nil {
		o.j = &journal{}
	}
	if o.maxAge == 0 {
		o.maxAge = time.Hour
	}
	if o.format == "" {
		o.format = "logpipe-job"
	}
	j := o.j
	u := &unit{store: newFakeStore(j), claim: newFakeClaim(j, "jobs"), j: j, done: make(chan struct{})}
	if o.setup != nil {
		o.setup(u.store)
	}
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "jobs", Topic: "jobs", Format: o.format, Vendor: "acme"}},
		Limits:  pipeline.Limits{MaxRows: o.maxRows, MaxBytes: 1 << 20, MaxAge: o.maxAge, MaxRecordBytes: 200},
		Enrich:  transform.EnrichConfig{HashKey: []byte("unit-test-key-0123456789abcdef"), SessionCookies: []string{"session"}},
		Hooks:   o.hooks,
	}, u.store, u.store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u.p = p
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go func() {
		defer close(u.done)
		p.ConsumePartition(ctx, u.claim)
	}()
	t.Cleanup(func() {
		cancel()
		<-u.done
	})
	return u
}

// returned waits until ConsumePartition has returned.
func (u *unit) returned(t *testing.T) {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ConsumePartition did not return within 10s; calls:\n%s", u.j)
	}
}

// running reports that ConsumePartition has not returned.
func (u *unit) running() bool {
	select {
	case <-u.done:
		return false
	default:
		return true
	}
}

// stop stops the partition gracefully and waits for it.
func (u *unit) stop(t *testing.T) {
	t.Helper()
	close(u.claim.stopping)
	u.returned(t)
}

// checkCommitsAfterInserts fails unless every commit comes after the
// inserts of every row built from the records before it, and the offsets
// of each table were inserted in order.
func checkCommitsAfterInserts(t *testing.T, j *journal) {
	t.Helper()
	stored := map[int64]bool{} // offsets with a row stored so far
	last := map[string]int64{}
	for _, e := range j.all() {
		switch e.kind {
		case "insert":
			for _, o := range e.offsets {
				if l, ok := last[e.table]; ok && o < l {
					t.Errorf("%s: offset %d inserted after %d; calls:\n%s", e.table, o, l, j)
				}
				last[e.table] = o
				stored[o] = true
			}
		case "commit":
			for o := int64(0); o < e.next; o++ {
				if !stored[o] {
					t.Fatalf("commit %d before any row of offset %d was stored; calls:\n%s", e.next, o, j)
				}
			}
		}
	}
}

func TestUnitCommitsAfterEveryInsertInOrder(t *testing.T) {
	u := newUnit(t, 4, nil)
	var values []string
	for i := range 10 {
		v := jobLine(fmt.Sprint("r", i))
		if i%3 == 1 {
			v = "not json " + fmt.Sprint(i) // a dead letter between good rows
		}
		values = append(values, v)
	}
	u.claim.send(0, values...)
	// Two full batches (4 records each) are flushed as they fill up.
	waitFor(t, u.j.String, func() bool { return len(u.j.of("commit")) == 2 })
	u.stop(t)
	checkCommitsAfterInserts(t, u.j)
	commits := u.j.of("commit")
	if got := commits[len(commits)-1].next; got != 10 {
		t.Errorf("last commit %d, want 10 (after the last record); calls:\n%s", got, u.j)
	}
	var jobs, errs []int64
	for _, e := range u.j.of("insert") {
		if e.epoch != 101 {
			t.Errorf("insert with epoch %d, want the fence's 101", e.epoch)
		}
		if e.first > e.offsets[0] || e.first%4 != 0 {
			t.Errorf("insert of %v named by offset %d, want the first record of its flush", e.offsets, e.first)
		}
		switch e.table {
		case "job_events":
			jobs = append(jobs, e.offsets...)
		case "ingest_errors":
			errs = append(errs, e.offsets...)
		}
	}
	if want := []int64{0, 2, 3, 5, 6, 8, 9}; !slices.Equal(jobs, want) {
		t.Errorf("job_events offsets %v, want %v", jobs, want)
	}
	if want := []int64{1, 4, 7}; !slices.Equal(errs, want) {
		t.Errorf("ingest_errors offsets %v, want %v", errs, want)
	}
	if got := u.claim.releasedBytes(); got != 10*1000 {
		t.Errorf("released %d budget bytes, want %d (every record's cost, once stored)", got, 10*1000)
	}
	if s := &u.p.Stats; s.Records.Load() != 10 || s.Rows.Load() != 7 || s.Rejected.Load() != 3 || s.Commits.Load() != 3 {
		t.Errorf("stats: records %d rows %d rejected %d commits %d, want 10 7 3 3", s.Records.Load(), s.Rows.Load(), s.Rejected.Load(), s.Commits.Load())
	}
}

func TestUnitCheckpointBeforeInserts(t *testing.T) {
	failures := 0
	u := newUnit(t, 1, func(s *fakeStore) {
		// ClickHouse does not answer at first: the pipeline retries, and
		// keeps the epoch it already has.
		s.checkpointErr = func(what string) error {
			if what == "wait" && failures < 1 {
				failures++
				return errors.New("connection refused")
			}
			return nil
		}
	})
	u.claim.send(0, jobLine("a"))
	waitFor(t, u.j.String, func() bool { return len(u.j.of("commit")) == 1 })
	var kinds []string
	for _, e := range u.j.all() {
		kinds = append(kinds, e.kind)
	}
	want := []string{"fence", "wait", "wait", "watermarks", "insert", "commit"}
	if !slices.Equal(kinds, want) {
		t.Errorf("calls %v, want %v", kinds, want)
	}
}

func TestUnitFailedInsertCommitsNothing(t *testing.T) {
	for _, table := range []string{"job_events", "ingest_errors"} {
		t.Run(table, func(t *testing.T) {
			u := newUnit(t, 2, func(s *fakeStore) {
				s.insertErr = func(n int, tb string) error {
					if tb == table {
						return errors.New("code: 16, no such column")
					}
					return nil
				}
			})
			u.claim.send(0, jobLine("a"), "garbage")
			select {
			case err := <-u.p.Fatal():
				if !strings.Contains(err.Error(), "no such column") || !strings.Contains(err.Error(), "jobs/3") {
					t.Errorf("fatal error %q does not name the cause and the partition", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no fatal error; calls:\n%s", u.j)
			}
			// The partition holds on (it is not returned to the group to be
			// read again and fail the same way) until the process stops.
			if !u.running() {
				t.Error("ConsumePartition returned before being stopped")
			}
			u.stop(t)
			if c := u.j.of("commit"); len(c) != 0 {
				t.Errorf("committed after a failed insert:\n%s", u.j)
			}
			if got := u.claim.releasedBytes(); got != 0 {
				t.Errorf("released %d budget bytes of records not stored", got)
			}
		})
	}
}

func TestUnitRevocationDropsBuffer(t *testing.T) {
	u := newUnit(t, 100, nil)
	u.claim.send(0, jobLine("a"), jobLine("b"), "garbage")
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 3 })
	u.cancel() // the generation ends: the partition is revoked
	u.returned(t)
	if ins := u.j.of("insert"); len(ins) != 0 {
		t.Errorf("revoked partition inserted its buffer:\n%s", u.j)
	}
	if c := u.j.of("commit"); len(c) != 0 {
		t.Errorf("revoked partition committed:\n%s", u.j)
	}
	if n := u.p.Stats.Fenced.Load(); n != 1 {
		t.Errorf("fenced %d, want 1 (the dropped buffer)", n)
	}
	select {
	case err := <-u.p.Fatal():
		t.Errorf("revocation reported as fatal: %v", err)
	default:
	}
}

func TestUnitDeadLetters(t *testing.T) {
	u := newUnit(t, 100, nil)
	big := jobLine(strings.Repeat("x", 300)) // over MaxRecordBytes (200)
	u.claim.send(0,
		"not json at all",
		"",
		big,
		jobLine("a")+"\n"+`{"job":"load","run_id":"x","event":"started"}`, // line 2: no time
	)
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 4 })
	u.stop(t)
	var errs event
	for _, e := range u.j.of("insert") {
		if e.table == "ingest_errors" {
			errs = e
		}
	}
	if want := []int64{0, 1, 2, 3}; !slices.Equal(errs.offsets, want) {
		t.Fatalf("dead letters of offsets %v, want %v; calls:\n%s", errs.offsets, want, u.j)
	}
	for i, want := range []string{"", "empty record", "exceeds max_record_bytes 200", "time"} {
		if !strings.Contains(errs.reasons[i], want) {
			t.Errorf("dead letter %d: reason %q, want it to mention %q", i, errs.reasons[i], want)
		}
	}
	if errs.raws[0] != "not json at all" {
		t.Errorf("dead letter keeps %q, want the line", errs.raws[0])
	}
	checkCommitsAfterInserts(t, u.j)
	if c := u.j.of("commit"); len(c) != 1 || c[0].next != 4 {
		t.Errorf("commits %v, want one of 4", c)
	}
}

func TestUnitWatermarksSkipStoredRows(t *testing.T) {
	u := newUnit(t, 100, func(s *fakeStore) {
		// A crash stored the rows up to offset 5 and the dead letters up
		// to offset 3, and committed nothing: the records come again.
		s.watermarks = map[string]int64{"job_events": 5, "ingest_errors": 3}
	})
	var values []string
	for i := range 10 {
		values = append(values, jobLine(fmt.Sprint(i)))
	}
	values[2], values[7] = "bad", "bad"
	u.claim.send(0, values...)
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 10 })
	u.stop(t)
	got := map[string][]int64{}
	for _, e := range u.j.of("insert") {
		got[e.table] = append(got[e.table], e.offsets...)
	}
	if want := []int64{6, 8, 9}; !slices.Equal(got["job_events"], want) {
		t.Errorf("job_events offsets %v, want %v (above the watermark 5)", got["job_events"], want)
	}
	if want := []int64{7}; !slices.Equal(got["ingest_errors"], want) {
		t.Errorf("ingest_errors offsets %v, want %v (above the watermark 3)", got["ingest_errors"], want)
	}
	if n := u.p.Stats.Skipped.Load(); n != 6 {
		t.Errorf("skipped %d, want 6 (offsets 0-5)", n)
	}
	if c := u.j.of("commit"); len(c) != 1 || c[0].next != 10 {
		t.Errorf("commits %v, want one of 10", c)
	}
}

func TestUnitFencedBatchDropsAndReturns(t *testing.T) {
	u := newUnit(t, 2, func(s *fakeStore) {
		s.insertErr = func(n int, table string) error {
			if n == 2 {
				// The second batch: a newer owner fenced the partition.
				return fmt.Errorf("insert 2 rows into %s (epoch 101): fenced: %w", table, partition.ErrNotOwner)
			}
			return nil
		}
	})
	u.claim.send(0, jobLine("a"), jobLine("b"), jobLine("c"), jobLine("d"), jobLine("e"))
	// The handler returns by itself (its member then joins again and
	// gets a fresh fence), without waiting for the revocation.
	u.returned(t)
	if c := u.j.of("commit"); len(c) != 1 || c[0].next != 2 {
		t.Errorf("commits %v, want only the first batch's (2)", c)
	}
	if n := u.p.Stats.Fenced.Load(); n != 1 {
		t.Errorf("fenced %d, want 1", n)
	}
	select {
	case err := <-u.p.Fatal():
		t.Errorf("fenced batch reported as fatal: %v", err)
	default:
	}
}

func TestUnitCommitRefusedAfterInsert(t *testing.T) {
	u := newUnit(t, 1, nil)
	u.claim.mu.Lock()
	u.claim.commitErr = fmt.Errorf("commit jobs/3 offset 1: %w", partition.ErrNotOwner)
	u.claim.mu.Unlock()
	u.claim.send(0, jobLine("a"), jobLine("b"))
	u.returned(t)
	// The first record's row is stored (its next owner skips it by the
	// watermark); the second is neither stored nor committed.
	if ins := u.j.of("insert"); len(ins) != 1 {
		t.Errorf("inserts after the commit was refused:\n%s", u.j)
	}
}

func TestUnitPressureFlushesEarly(t *testing.T) {
	u := newUnit(t, 100, nil)
	u.claim.send(0, jobLine("a"), jobLine("b"))
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 2 })
	if len(u.j.of("insert")) != 0 {
		t.Fatalf("flushed before the batch was full:\n%s", u.j)
	}
	u.claim.pressure <- struct{}{} // the memory budget is full
	waitFor(t, u.j.String, func() bool { return len(u.j.of("commit")) == 1 })
	if got := u.claim.releasedBytes(); got != 2000 {
		t.Errorf("released %d budget bytes, want 2000", got)
	}
	// With nothing buffered, pressure does not insert anything.
	u.claim.pressure <- struct{}{}
	u.claim.send(2, jobLine("c"))
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 3 })
	u.stop(t)
	if ins := u.j.of("insert"); len(ins) != 2 {
		t.Errorf("want 2 inserts (pressure, stop), got:\n%s", u.j)
	}
	checkCommitsAfterInserts(t, u.j)
}

func TestUnitFetchEndFlushes(t *testing.T) {
	u := newUnit(t, 100, nil)
	u.claim.send(0, jobLine("a"))
	u.claim.mu.Lock()
	u.claim.err = errors.New("broker gone")
	u.claim.mu.Unlock()
	close(u.claim.records)
	u.returned(t)
	if c := u.j.of("commit"); len(c) != 1 || c[0].next != 1 {
		t.Errorf("commits %v, want one of 1 (what was read is kept)", c)
	}
}

// recordingHook implements every pipeline hook and appends what it is
// told to the journal.
type recordingHook struct {
	name string
	j    *journal
}

func (h recordingHook) OnRecord(r *transform.JobEvent, m tables.Meta) {
	h.j.add(event{kind: h.name + " record " + r.RunID, next: m.Offset})
}

func (h recordingHook) OnBatchInserted(table, topic string, part int32, rows int) {
	h.j.add(event{kind: fmt.Sprintf("%s batch %s %s/%d %d", h.name, table, topic, part, rows)})
}

func (h recordingHook) OnCommit(topic string, part int32, next int64) {
	h.j.add(event{kind: fmt.Sprintf("%s commit %s/%d %d", h.name, topic, part, next)})
}

func TestUnitHooksStack(t *testing.T) {
	j := &journal{}
	var cdn atomic.Int64
	u := newUnitWith(t, unitOptions{j: j, maxRows: 3, hooks: []pipeline.Hook{
		recordingHook{"a", j},
		pipeline.RecordFunc[transform.CDNRequest](func(*transform.CDNRequest, tables.Meta) { cdn.Add(1) }), // another kind: never called
		recordingHook{"b", j},
	}})
	u.claim.send(0, jobLine("r0"), "bad", jobLine("r2"))
	waitFor(t, j.String, func() bool { return len(j.of("commit")) == 1 })
	var got []string
	for _, e := range j.all() {
		switch {
		case strings.Contains(e.kind, " record "):
			got = append(got, fmt.Sprintf("%s@%d", e.kind, e.next))
		case e.kind != "fence" && e.kind != "wait" && e.kind != "watermarks":
			got = append(got, e.String())
		}
	}
	want := []string{
		"a record r0@0", "b record r0@0",
		"a record r2@2", "b record r2@2",
		"insert job_events first=0 epoch=101 offsets=[0 2]",
		"a batch job_events jobs/3 2", "b batch job_events jobs/3 2",
		"insert ingest_errors first=0 epoch=101 offsets=[1]",
		"a batch ingest_errors jobs/3 1", "b batch ingest_errors jobs/3 1",
		"commit 3",
		"a commit jobs/3 3", "b commit jobs/3 3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if n := cdn.Load(); n != 0 {
		t.Errorf("CDN hook called %d times for job events", n)
	}
}

func TestUnitOldBatchFlushes(t *testing.T) {
	u := newUnitWith(t, unitOptions{maxRows: 100, maxAge: 20 * time.Millisecond})
	u.claim.send(0, jobLine("a"), jobLine("b"))
	// Neither full nor stopped: the batch is stored once it is older than
	// max_age.
	waitFor(t, u.j.String, func() bool { return len(u.j.of("commit")) == 1 })
	if c := u.j.of("commit"); c[0].next != 2 {
		t.Errorf("commit %d, want 2", c[0].next)
	}
	checkCommitsAfterInserts(t, u.j)
}

func TestUnitCDNRecordsEnrichedAndCovered(t *testing.T) {
	var seen []transform.CDNRequest
	var mu sync.Mutex
	u := newUnitWith(t, unitOptions{maxRows: 100, format: "nginx-combined", hooks: []pipeline.Hook{
		pipeline.RecordFunc[transform.CDNRequest](func(r *transform.CDNRequest, m tables.Meta) {
			mu.Lock()
			seen = append(seen, *r)
			mu.Unlock()
		}),
	}})
	u.claim.send(0,
		`192.0.2.1 - - [20/Nov/2026:01:00:00 +0000] "get /mypage/12?q=1 HTTP/1.1" 200 512 "-" "curl/8.0"`,
		`not an access log line`,
	)
	waitFor(t, u.j.String, func() bool { return u.p.Stats.Records.Load() == 2 })
	u.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("hook saw %d records, want 1", len(seen))
	}
	if r := seen[0]; r.Method != "GET" || r.PathTemplate == "" || r.Vendor == "" {
		t.Errorf("hook saw a record not enriched: method %q template %q vendor %q", r.Method, r.PathTemplate, r.Vendor)
	}
	got := map[string][]int64{}
	for _, e := range u.j.of("insert") {
		got[e.table] = append(got[e.table], e.offsets...)
	}
	if !slices.Equal(got["cdn_requests"], []int64{0}) || !slices.Equal(got["ingest_errors"], []int64{1}) {
		t.Errorf("inserted %v, want cdn_requests [0], ingest_errors [1]", got)
	}
	cov := u.p.Coverage()
	if len(cov) != 1 || cov[0].Lines != 1 {
		t.Errorf("coverage %+v, want one stream with 1 line", cov)
	}
}
