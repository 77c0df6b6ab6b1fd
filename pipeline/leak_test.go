package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// syncBuffer is a log destination shared by partition goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakCorpus reads transform/testdata/leak: the secrets, and per corpus
// file its stream (format, options) and lines.
func leakCorpus(t *testing.T) ([]string, []pipeline.Stream, map[string][]string) {
	t.Helper()
	dir := filepath.Join("..", "transform", "testdata", "leak")
	b, err := os.ReadFile(filepath.Join(dir, "secrets.txt"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := strings.Fields(string(b))
	files, _ := filepath.Glob(filepath.Join(dir, "corpus", "*.log"))
	if len(files) == 0 {
		t.Fatal("no leak corpus (go test ./transform -run TestLeakCorpus -update)")
	}
	var streams []pipeline.Stream
	lines := map[string][]string{}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".log")
		format, _, _ := strings.Cut(base, "__")
		topic := "leak." + strings.ReplaceAll(base, "__", ".")
		var opts transform.ParserOptions
		if ob, err := os.ReadFile(strings.TrimSuffix(f, ".log") + ".options.json"); err == nil {
			if err := json.Unmarshal(ob, &opts); err != nil {
				t.Fatal(err)
			}
		}
		streams = append(streams, pipeline.Stream{Name: base, Topic: topic, Format: format, Options: opts})
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		transform.EachLine(in, func(_ int, l []byte) { lines[topic] = append(lines[topic], string(l)) })
	}
	return secrets, streams, lines
}

// TestNoSecretLeaks sends the leak corpus (secrets in every field of every
// format, broken lines of every shape, multi-line and oversized records)
// through Kafka and the real pipeline into ClickHouse, then dumps every
// table of the database and the pipeline's debug log: no clear secret may
// appear, in any case.
func TestNoSecretLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	secrets, streams, lines := leakCorpus(t)
	var topics []string
	for _, s := range streams {
		topics = append(topics, s.Topic)
	}
	e := newEnv(t, topics...)
	total := 0
	for _, s := range streams {
		ls := lines[s.Topic]
		// One multi-line record and one oversized record per stream too.
		values := append(append([]string(nil), ls...), strings.Join(ls[:3], "\n"), strings.Repeat(ls[len(ls)-1]+" ", 4096/len(ls[len(ls)-1])+2))
		produce(t, e.broker, s.Topic, values, func(i int) string { return fmt.Sprint(i % 5) })
		total += len(values)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := pipeline.New(pipeline.Config{
		Streams: streams,
		Limits:  pipeline.Limits{MaxRows: 500, MaxBytes: 1 << 20, MaxAge: 200 * time.Millisecond, MaxRecordBytes: 4096},
		Enrich: transform.EnrichConfig{
			HashKey:         hashKey,
			SessionCookies:  []string{"session"},
			DropQueryParams: []string{"token"},
		},
	}, insertVia(sink.NewWriter(e.conn, log)), checkpoint.New(e.conn), log)
	if err != nil {
		t.Fatal(err)
	}
	e.consume(t, p, "leak", int64(total))
	if p.Stats.Rows.Load() == 0 || p.Stats.Rejected.Load() == 0 {
		t.Fatalf("%d rows and %d dead letters: the corpus must exercise both", p.Stats.Rows.Load(), p.Stats.Rejected.Load())
	}
	t.Logf("%d records: %d rows, %d dead letters", total, p.Stats.Rows.Load(), p.Stats.Rejected.Load())

	leaks := func(where, s string) {
		t.Helper()
		ls := strings.ToLower(s)
		for _, v := range secrets {
			// Whole, or its first 10 characters (a value cut short).
			if strings.Contains(ls, strings.ToLower(v[:min(len(v), 10)])) {
				t.Errorf("%s holds %q in clear: %.600s", where, v, s)
			}
		}
	}
	tables := e.query(t, "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	rowsSeen := 0
	for _, tb := range tables {
		// Aggregate states (argMax of an error message, ...) are read
		// finalized: the driver cannot decode them raw.
		var cols []string
		for _, c := range e.query(t, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '"+tb[0]+"'") {
			if strings.HasPrefix(c[1], "AggregateFunction") {
				cols = append(cols, "finalizeAggregation(`"+c[0]+"`)")
			} else {
				cols = append(cols, "`"+c[0]+"`")
			}
		}
		_, rows, err := e.conn.Query(context.Background(), "SELECT "+strings.Join(cols, ", ")+" FROM `"+tb[0]+"`")
		if err != nil {
			t.Errorf("dump %s: %v", tb[0], err)
			continue
		}
		rowsSeen += len(rows)
		for i, r := range rows {
			leaks(fmt.Sprintf("table %s row %d", tb[0], i), strings.Join(r, "\t"))
		}
	}
	if n := e.one(t, "SELECT toString(count()) FROM cdn_requests"); n == "0" || rowsSeen == 0 {
		t.Fatalf("nothing stored (%s CDN rows, %d rows in all tables)", n, rowsSeen)
	}
	// The dead letters say why and how long, and keep a redacted line.
	if n := e.one(t, "SELECT toString(countIf(reason = '' OR raw_size = 0 OR raw = '')) FROM ingest_errors"); n != "0" {
		t.Errorf("%s dead letters without reason, size or raw", n)
	}
	if n := e.one(t, "SELECT toString(countIf(position(raw, '[redacted:') > 0 OR position(raw, '[ip:') > 0)) FROM ingest_errors"); n == "0" {
		t.Errorf("no dead letter shows a redaction marker")
	}
	out := logs.String()
	if !strings.Contains(out, "line rejected") {
		t.Errorf("debug log has no rejected line: the log check saw nothing")
	}
	for i, l := range strings.Split(out, "\n") {
		leaks(fmt.Sprintf("log line %d", i+1), l)
	}
}

// TestDeadLettersWithoutRaw: with redact.dead_letter_raw: none, a dead
// letter keeps only reason, length and the keyed hash of the line.
func TestDeadLettersWithoutRaw(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	e := newEnv(t, "raw")
	bad := []string{"not a job line: password=hunter2-leak-pass from 203.0.113.77", `{"job":"x","run_id":"AKIAQLEAKTEST0000001"`}
	produce(t, e.broker, "raw", bad, func(i int) string { return "k" })
	p, err := pipeline.New(pipeline.Config{
		Streams: []pipeline.Stream{{Name: "raw", Topic: "raw", Format: "logpipe-job"}},
		Limits:  pipeline.Limits{MaxRows: 500, MaxBytes: 1 << 20, MaxAge: 200 * time.Millisecond, MaxRecordBytes: 4096},
		Enrich:  transform.EnrichConfig{HashKey: hashKey, Redact: transform.RedactRules{NoRawDeadLetters: true}},
	}, insertVia(sink.NewWriter(e.conn, e.log)), checkpoint.New(e.conn), e.log)
	if err != nil {
		t.Fatal(err)
	}
	e.consume(t, p, "raw", int64(len(bad)))
	enr, _ := transform.NewEnricher(transform.EnrichConfig{HashKey: hashKey})
	got := e.query(t, "SELECT raw, toString(raw_size), reason FROM ingest_errors ORDER BY _offset")
	if len(got) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(got), len(bad))
	}
	for i, r := range got {
		if want := fmt.Sprintf("[line:%016x]", enr.Hash(bad[i])); r[0] != want || r[1] != fmt.Sprint(len(bad[i])) || r[2] == "" {
			t.Errorf("dead letter %d = %q, want raw %s, size %d and a reason", i, r, want, len(bad[i]))
		}
	}
}
