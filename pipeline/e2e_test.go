package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

func TestMain(m *testing.M) { chserver.Main(m) }

var hashKey = []byte("e2e-test-key-0123456789abcdef")

// env is one end-to-end setup: a kfake broker and a fresh database on the
// shared local ClickHouse server.
type env struct {
	broker *kafkabroker.Broker
	conn   *chclient.Conn
	db     string
	log    *slog.Logger
}

func newEnv(t *testing.T, topics ...string) *env {
	t.Helper()
	srv := chserver.Shared(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	db := "e2e_" + hex.EncodeToString(b)
	opts := chclient.Options{Addr: []string{srv.TCPAddr}, Database: db, User: "default"}
	if err := chclient.CreateDatabase(ctx, opts); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	if _, err := schemas.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var broker *kafkabroker.Broker
	if len(topics) > 0 {
		var err error
		broker, err = kafkabroker.Start(kafkabroker.Options{Partitions: 3, Topics: topics})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return &env{broker: broker, conn: conn, db: db, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
}

func (e *env) pipeline(t *testing.T, streams ...pipeline.Stream) *pipeline.Pipeline {
	t.Helper()
	w := sink.NewWriter(e.conn, e.log)
	p, err := pipeline.New(pipeline.Config{
		Streams: streams,
		Limits:  pipeline.Limits{MaxRows: 500, MaxBytes: 1 << 20, MaxAge: 200 * time.Millisecond, MaxRecordBytes: 4096},
		Enrich: transform.EnrichConfig{
			HashKey:         hashKey,
			SessionCookies:  []string{"session"},
			DropQueryParams: []string{"token"},
			PathClasses:     []transform.PathClassRule{{Class: "personal", Patterns: []string{"/mypage*"}}},
		},
	}, insertVia(w), checkpoint.New(w.Conn()), e.log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// consume runs one consumer-group member until want records were consumed
// and committed, then stops it gracefully.
func (e *env) consume(t *testing.T, p *pipeline.Pipeline, group string, want int64) {
	t.Helper()
	c, err := ingest.NewConsumer(ingest.Config{
		Brokers: e.broker.Addrs, Group: group, Topics: p.Topics(), StartEarliest: true,
		FetchMaxWait: 100 * time.Millisecond,
	}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, p) }()
	deadline := time.After(90 * time.Second)
	for p.Stats.Records.Load() < want {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("consumer stopped early: %v", err)
		case err := <-p.Fatal():
			cancel()
			t.Fatalf("pipeline failed: %v", err)
		case <-deadline:
			cancel()
			t.Fatalf("consumed %d of %d records in 90s", p.Stats.Records.Load(), want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	select {
	case err := <-p.Fatal():
		t.Fatalf("pipeline failed: %v", err)
	default:
	}
}

func (e *env) query(t *testing.T, q string) [][]string {
	t.Helper()
	rows, err := e.conn.QueryStrings(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func (e *env) one(t *testing.T, q string) string {
	t.Helper()
	rows := e.query(t, q)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: want one value, got %v", q, rows)
	}
	return rows[0][0]
}

func produce(t *testing.T, b *kafkabroker.Broker, topic string, values []string, key func(i int) string) {
	t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte(key(i)), Value: []byte(v)}
	}
	if err := b.Produce(context.Background(), topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEnd produces job events and CDN lines (some malformed) to
// Kafka, runs the pipeline against the real ClickHouse server, and checks
// exact row counts, derived run durations and statuses, hashed cookies and
// the dead letters.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t, "jobs", "cdn")
	base := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)

	// 40 runs of "etl": run i starts at base+i h and lasts 60+i seconds.
	// Runs i%10==3 fail with exit code 3; runs 37..39 are still running.
	// Events are produced newest-run first and finish-before-start for even
	// runs: the run table must not depend on arrival order.
	var jobs []string
	var keys []string
	wantFailed, wantSucceeded, wantRunning := 0, 0, 0
	for i := 39; i >= 0; i-- {
		runID := fmt.Sprintf("etl-%02d", i)
		start := base.Add(time.Duration(i) * time.Hour)
		started := fmt.Sprintf(`{"time":%q,"job":"etl","run_id":%q,"event":"started","scheduled_time":%q,"host":"h1","attempt":1}`,
			start.Add(2*time.Second).Format(time.RFC3339Nano), runID, start.Format(time.RFC3339))
		var evs []string
		switch {
		case i >= 37:
			wantRunning++
			evs = []string{started}
		case i%10 == 3:
			wantFailed++
			evs = []string{fmt.Sprintf(`{"time":%q,"job":"etl","run_id":%q,"event":"failed","exit_code":3,"error":"disk full","error_class":"IOError"}`,
				start.Add(2*time.Second+time.Duration(60+i)*time.Second).Format(time.RFC3339Nano), runID), started}
		default:
			wantSucceeded++
			evs = []string{fmt.Sprintf(`{"time":%q,"job":"etl","run_id":%q,"event":"finished","exit_code":0,"counters":{"rows":%d}}`,
				start.Add(2*time.Second+time.Duration(60+i)*time.Second).Format(time.RFC3339Nano), runID, i*100), started}
			if i%2 == 1 {
				evs[0], evs[1] = evs[1], evs[0]
			}
		}
		for _, ev := range evs {
			jobs = append(jobs, ev)
			keys = append(keys, runID)
		}
	}
	badJobs := []string{
		`{"job":"etl","run_id":"x","event":"started"}`,                                // no time
		`{"time":"2026-11-20T00:00:00Z","job":"etl","run_id":"x","event":"exploded"}`, // unknown event
		`{"time":"2026-11-20T00:00:00Z","job":"etl","run_id":"x"`,                     // truncated JSON
	}
	for _, b := range badJobs {
		jobs = append(jobs, b)
		keys = append(keys, "bad")
	}
	produce(t, e.broker, "jobs", jobs, func(i int) string { return keys[i] })

	// 300 CDN requests: every third carries a session cookie; /mypage hits
	// are the incident signature.
	var cdn []string
	const secret = "S3CRET-COOKIE-VALUE"
	wantPersonalCached := 0
	for i := 0; i < 300; i++ {
		cookie := ""
		if i%3 == 0 {
			cookie = fmt.Sprintf("lang=ja; session=%s-%d", secret, i%30)
		}
		path, state := "/items/m"+fmt.Sprint(10000000000+i), "MISS"
		if i%5 == 0 {
			path, state = "/mypage", "HIT-WAIT"
			if cookie != "" {
				wantPersonalCached++
			} else {
				state = "PASS"
			}
		}
		cdn = append(cdn, fmt.Sprintf(`{"timestamp":"2026-11-20T05:00:%02d.000Z","client_ip":"192.0.2.%d","host":"www.example.jp","url":"%s?token=abc&page=2","request_method":"GET","request_cookie":%q,"response_state":%q,"response_status":200,"response_body_size":1234,"response_cache_control":"no-cache","response_expires":"Thu, 01 Jan 1970 00:00:00 GMT"}`,
			i%60, i%250, path, cookie, state))
	}
	badCDN := []string{
		`{"timestamp":"2026-11-20T05:00:00Z","url":"/x","response_status":"abc","client_ip":"192.0.2.77"}`,
		"\x00\x01\x02 binary garbage",
		`{"timestamp":"yesterday","url":"/x","response_status":200,"request_cookie":"session=` + secret + `"}`,
		`{"timestamp":"2026-11-20T05:00:00Z","url":"/big","response_status":200,"pad":"` + strings.Repeat("x", 5000) + `"}`, // over MaxRecordBytes
	}
	cdn = append(cdn, badCDN...)
	produce(t, e.broker, "cdn", cdn, func(i int) string { return fmt.Sprint(i % 7) })

	p := e.pipeline(t,
		pipeline.Stream{Name: "jobs", Topic: "jobs", Format: "logpipe-job"},
		pipeline.Stream{Name: "cdn", Topic: "cdn", Format: "fastly-json"},
	)
	total := int64(len(jobs) + len(cdn))
	e.consume(t, p, "e2e", total)

	// Rows: every good line stored once, every bad one in ingest_errors.
	if got, want := e.one(t, "SELECT count() FROM job_events"), fmt.Sprint(len(jobs)-len(badJobs)); got != want {
		t.Errorf("job_events: %s rows, want %s", got, want)
	}
	if got, want := e.one(t, "SELECT count() FROM cdn_requests"), "300"; got != want {
		t.Errorf("cdn_requests: %s rows, want %s", got, want)
	}
	if got, want := e.one(t, "SELECT count() FROM ingest_errors"), fmt.Sprint(len(badJobs)+len(badCDN)); got != want {
		t.Errorf("ingest_errors: %s rows, want %s", got, want)
	}
	// Each dead letter says where it came from and why.
	for _, r := range e.query(t, "SELECT stream, _topic, toString(_offset >= 0), reason FROM ingest_errors ORDER BY stream, reason") {
		if r[0] != r[1] || r[2] != "1" || r[3] == "" {
			t.Errorf("ingest_errors row %v lacks stream/topic/offset/reason", r)
		}
	}
	if got := e.one(t, "SELECT count() FROM ingest_errors WHERE reason LIKE '%exceeds max_record_bytes%'"); got != "1" {
		t.Errorf("oversized record: %s rows with the size reason, want 1", got)
	}

	// Runs: derived inside ClickHouse, whatever the arrival order.
	got := e.query(t, "SELECT status, toString(count()) FROM job_runs GROUP BY status ORDER BY status")
	want := [][]string{{"failed", fmt.Sprint(wantFailed)}, {"running", fmt.Sprint(wantRunning)}, {"succeeded", fmt.Sprint(wantSucceeded)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("job_runs statuses = %v, want %v", got, want)
	}
	for _, r := range e.query(t, "SELECT run_id, toString(duration_s), toString(start_delay_s), toString(exit_code), error_class FROM job_runs WHERE status != 'running' ORDER BY run_id") {
		var i int
		fmt.Sscanf(r[0], "etl-%d", &i)
		if r[1] != fmt.Sprint(60+i) {
			t.Errorf("run %s: duration %s s, want %d", r[0], r[1], 60+i)
		}
		if r[2] != "2" {
			t.Errorf("run %s: start delay %s s, want 2", r[0], r[2])
		}
		wantCode, wantClass := "0", ""
		if i%10 == 3 {
			wantCode, wantClass = "3", "IOError"
		}
		if r[3] != wantCode || r[4] != wantClass {
			t.Errorf("run %s: exit code %s class %q, want %s %q", r[0], r[3], r[4], wantCode, wantClass)
		}
	}
	if got := e.one(t, "SELECT toString(duration_s IS NULL) FROM job_runs WHERE run_id = 'etl-38'"); got != "1" {
		t.Errorf("running run has a duration")
	}

	// Personal data: hashed with the key, never in clear anywhere.
	for _, tbl := range []string{"cdn_requests", "ingest_errors", "job_events"} {
		if n := e.one(t, fmt.Sprintf("SELECT count() FROM %s WHERE positionCaseInsensitive(toString(tuple(*)), '%s') > 0 OR position(toString(tuple(*)), '192.0.2.') > 0", tbl, secret)); n != "0" {
			t.Errorf("%s: %s rows hold a cookie value or client IP in clear", tbl, n)
		}
	}
	enr, _ := transform.NewEnricher(transform.EnrichConfig{HashKey: hashKey})
	wantHash := fmt.Sprint(enr.Hash(secret + "-0"))
	if got := e.one(t, "SELECT toString(session_hash) FROM cdn_requests WHERE has_session_cookie AND _offset IN (SELECT min(_offset) FROM cdn_requests WHERE has_session_cookie) LIMIT 1"); got == "0" {
		t.Errorf("session cookie not hashed")
	}
	if got := e.one(t, fmt.Sprintf("SELECT toString(count() > 0) FROM cdn_requests WHERE session_hash = %s", wantHash)); got != "1" {
		t.Errorf("no row has the keyed hash of session %s-0", secret)
	}
	if got := e.one(t, "SELECT toString(countIf(has_session_cookie)) FROM cdn_requests"); got != "100" {
		t.Errorf("%s rows with a session cookie, want 100", got)
	}
	if got := e.one(t, "SELECT toString(countIf(query LIKE '%token%')) FROM cdn_requests"); got != "0" {
		t.Errorf("%s rows kept the token query parameter", got)
	}
	if got := e.one(t, "SELECT toString(countIf(flag_personal_cached)) FROM cdn_requests"); got != fmt.Sprint(wantPersonalCached) {
		t.Errorf("%s personal pages flagged as cached, want %d", got, wantPersonalCached)
	}

	// Offsets were committed after the rows were stored: a new member of
	// the same group finds nothing to read and stores nothing again.
	p2 := e.pipeline(t,
		pipeline.Stream{Name: "jobs", Topic: "jobs", Format: "logpipe-job"},
		pipeline.Stream{Name: "cdn", Topic: "cdn", Format: "fastly-json"},
	)
	produce(t, e.broker, "jobs", []string{fmt.Sprintf(`{"time":"2026-11-25T00:00:00Z","job":"marker","run_id":"m","event":"started"}`)}, func(int) string { return "m" })
	e.consume(t, p2, "e2e", 1)
	if n := p2.Stats.Records.Load(); n != 1 {
		t.Errorf("second member read %d records, want only the 1 new one", n)
	}
	if got, want := e.one(t, "SELECT count() FROM job_events"), fmt.Sprint(len(jobs)-len(badJobs)+1); got != want {
		t.Errorf("after restart job_events has %s rows, want %s", got, want)
	}
}

// TestRedeliveryStoresNothingTwice re-reads a whole topic that is already
// stored (a new consumer group: as if every commit had been lost in a
// crash): the watermarks make the pipeline skip every row, good or bad.
func TestRedeliveryStoresNothingTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t, "jobs")
	var values []string
	for i := 0; i < 900; i++ {
		values = append(values, fmt.Sprintf(`{"time":"2026-11-20T01:00:%02dZ","job":"j%d","run_id":"r%d","event":"started"}`, i%60, i%7, i))
		if i%100 == 0 {
			values = append(values, "not json "+fmt.Sprint(i))
		}
	}
	produce(t, e.broker, "jobs", values, func(i int) string { return fmt.Sprint(i % 11) })
	stream := pipeline.Stream{Name: "jobs", Topic: "jobs", Format: "logpipe-job"}
	first := e.pipeline(t, stream)
	e.consume(t, first, "first", int64(len(values)))
	if n := first.Stats.Skipped.Load(); n != 0 {
		t.Fatalf("first read skipped %d rows", n)
	}
	second := e.pipeline(t, stream)
	e.consume(t, second, "second", int64(len(values)))
	if n := second.Stats.Skipped.Load(); n != int64(len(values)) {
		t.Errorf("second read skipped %d rows, want all %d", n, len(values))
	}
	if n := second.Stats.Rows.Load() + second.Stats.Rejected.Load(); n != 0 {
		t.Errorf("second read stored %d rows again", n)
	}
	got := e.query(t, "SELECT toString(count()), toString(uniqExact(_partition, _offset)) FROM job_events")
	if got[0][0] != "900" || got[0][1] != "900" {
		t.Errorf("job_events: %v rows/distinct offsets, want 900/900", got[0])
	}
	if n := e.one(t, "SELECT count() FROM ingest_errors"); n != "9" {
		t.Errorf("ingest_errors: %s rows, want 9", n)
	}
}

// writerInserter is a sink.Writer as the pipeline's Inserter (as
// cmd/internal/app wires it): the pipeline names its batches by their
// methods, not by sink's type.
type writerInserter struct{ w *sink.Writer }

func (i writerInserter) InsertAt(ctx context.Context, b pipeline.Batch, topic string, part int32, firstOffset int64, epoch uint64) error {
	return i.w.InsertAt(ctx, b, topic, part, firstOffset, epoch)
}

func insertVia(w *sink.Writer) pipeline.Inserter { return writerInserter{w} }
