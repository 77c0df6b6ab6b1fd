package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/partition"
	"github.com/logpipe/logpipe/transform"
	"github.com/logpipe/logpipe/transform/redact"
)

// recordLeak checks every string field of an enriched record.
func recordLeak(rec any) string {
	v := reflect.ValueOf(rec)
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			if l := redact.Residue(f.String(), t.Field(i).Name == "UserAgent"); l != "" {
				return t.Field(i).Name + ": " + l
			}
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.String {
				for j := 0; j < f.Len(); j++ {
					if l := redact.Residue(f.Index(j).String(), false); l != "" {
						return t.Field(i).Name + ": " + l
					}
				}
			}
		}
	}
	return ""
}

// fuzzWorker returns the worker of a partition of a stream of format,
// outside any claim (its records are given to add directly).
func fuzzWorker(t testing.TB, format string, maxRecordBytes int) *worker {
	t.Helper()
	p, err := New(Config{
		Streams: []Stream{{Name: "s", Topic: "t", Format: format}},
		Limits:  Limits{MaxRows: 1000, MaxBytes: 1 << 20, MaxAge: time.Second, MaxRecordBytes: maxRecordBytes},
		Enrich:  transform.EnrichConfig{HashKey: []byte("fuzz-key-0123456789abcdef")},
	}, nopStore{}, nopStore{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWorker(p, p.streams["t"], nil, partition.Info{Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// nopStore is an Inserter and Checkpointer that is never called.
type nopStore struct{}

func (nopStore) InsertAt(context.Context, Batch, string, int32, int64, uint64) error {
	return errors.New("nopStore")
}
func (nopStore) Fence(context.Context, string, int32) (uint64, error) {
	return 0, errors.New("nopStore")
}
func (nopStore) WaitInserts(context.Context, string, int32, time.Duration) error {
	return errors.New("nopStore")
}
func (nopStore) Watermarks(context.Context, string, int32) (map[string]int64, error) {
	return nil, errors.New("nopStore")
}

// referenceLine parses and enriches line on its own, through the format's
// transform.Stage, as the worker does.
func referenceLine(p transform.Parser, e *transform.Enricher, line []byte) (any, error) {
	switch p.Kind() {
	case transform.KindJob:
		return stageLine[transform.JobEvent](p, e, line)
	case transform.KindCDN:
		return stageLine[transform.CDNRequest](p, e, line)
	}
	return nil, fmt.Errorf("records of kind %s", p.Kind())
}

func stageLine[R transform.Record](p transform.Parser, e *transform.Enricher, line []byte) (any, error) {
	st, ok := transform.NewStage[R](p, "")
	if !ok {
		return nil, fmt.Errorf("%T parses no records of its kind", p)
	}
	var r R
	if err := st.Parse(line, &r); err != nil {
		return nil, err
	}
	st.Enrich(e, &r)
	return r, nil
}

// FuzzRecord drives the whole transform entry point of a partition worker
// (size limit, line splitting, every parser, enrichment, dead letters with
// redaction) with arbitrary records: it must never panic, and every line
// must end up as a row, a dead letter, or a line that carries no record.
func FuzzRecord(f *testing.F) {
	for _, s := range recordSeeds(f) {
		f.Add(s.data, s.pick)
	}
	f.Add([]byte(`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`), uint8(4))
	f.Add([]byte(`{"timestamp":"2026-11-20T01:00:00Z","url":"/u/taro@example.com?x=eyJhbGciOiJIUzI1NiJ9.e30.x&k=AKIAIOSFODNN7EXAMPLE","response_status":200,"response_state":"HIT","client_ip":"2001:db8::1","request_user_agent":"Mozilla/5.0 via fe80::1 ghp_abcdefghijklmnopqrstuvwxyz0123456789"}`), uint8(6))
	f.Add([]byte("not a line from 2001:db8:85a3::8a2e:370:7334 mail=a.b%40example.jp Bearer xoxb-123456789012-abcdefghij"), uint8(3))
	f.Add([]byte(`time=2026-11-20T01:00:00Z job=j run_id=r event=started email=x@y.co token=eyJzdWIiOiIxMjM0NTY3ODkwIn0 ip=::ffff:10.0.0.1`), uint8(8))
	formats := transform.Formats()
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		name := formats[int(pick)%len(formats)]
		parser, err := transform.NewParser(name)
		if err != nil {
			t.Skip(name, err)
		}
		w := fuzzWorker(t, name, 4096)
		p := w.p
		w.add(partition.Record{Topic: "t", Offset: 7, Value: data})
		rows := w.errs.Len()
		if b := w.dataBatch(); b != nil {
			rows += b.Len()
		}
		lines, skips := 0, 0
		enr, err := transform.NewEnricher(p.cfg.Enrich)
		if err != nil {
			t.Fatal(err)
		}
		transform.EachLine(data, func(_ int, line []byte) {
			lines++
			rec, err := referenceLine(parser, enr, line)
			if errors.Is(err, transform.ErrSkip) {
				skips++
			}
			if rec != nil {
				if l := recordLeak(rec); l != "" {
					t.Fatalf("%s row keeps %s in clear: %+v", name, l, rec)
				}
			}
		})
		switch {
		case len(data) > 4096 || lines == 0:
			if rows != 1 || w.errs.Len() != 1 {
				t.Fatalf("oversized or empty record: %d rows, %d dead letters; want 1 dead letter", rows, w.errs.Len())
			}
		case rows+skips != lines:
			t.Fatalf("%s: %d lines, %d skipped, but %d rows and dead letters", name, lines, skips, rows)
		}
		for _, raw := range w.errs.Raw() {
			if l := redact.Residue(raw, false); l != "" {
				t.Fatalf("dead letter keeps %s in clear: %q", l, raw)
			}
		}
	})
}

// seed is a fuzz input: a record and the index (in transform.Formats) of
// the format it is read with.
type seed struct {
	data []byte
	pick uint8
}

// recordSeeds pairs each format with records of its own golden inputs
// (those that need no options file): a single line, several lines in one
// record, and a line followed by garbage. Seeds picked by a format that
// rejects them would only ever fuzz the dead-letter path.
func recordSeeds(t testing.TB) []seed {
	t.Helper()
	var out []seed
	for i, name := range transform.Formats() {
		logs, _ := filepath.Glob(filepath.Join("..", "transform", "testdata", name, "*.log"))
		// nginx and apache read the combined format without options.
		more, _ := filepath.Glob(filepath.Join("..", "transform", "testdata", name+"-combined", "*.log"))
		logs = append(logs, more...)
		var lines [][]byte
		for _, l := range logs {
			if _, err := os.Stat(strings.TrimSuffix(l, ".log") + ".options.json"); err == nil {
				continue
			}
			b, err := os.ReadFile(l)
			if err != nil {
				t.Fatal(err)
			}
			transform.EachLine(b, func(_ int, line []byte) { lines = append(lines, append([]byte(nil), line...)) })
		}
		if len(lines) == 0 {
			continue
		}
		pick := uint8(i)
		out = append(out, seed{lines[0], pick})
		if len(lines) > 1 {
			out = append(out, seed{bytes.Join(lines[:min(3, len(lines))], []byte("\n")), pick})
		}
		out = append(out, seed{append(append([]byte(nil), lines[len(lines)-1]...), "\n\n\x00\xff"...), pick})
	}
	return out
}

// TestFuzzSeedsReachParsers: every format has seeds, and for each format
// at least one seed becomes rows (not only dead letters).
func TestFuzzSeedsReachParsers(t *testing.T) {
	formats := transform.Formats()
	seeds := recordSeeds(t)
	rows := map[string]int{}
	for _, s := range seeds {
		name := formats[int(s.pick)%len(formats)]
		if _, err := transform.NewParser(name); err != nil {
			continue // needs options
		}
		w := fuzzWorker(t, name, 1<<20)
		w.add(partition.Record{Topic: "t", Offset: 7, Value: s.data})
		if b := w.dataBatch(); b != nil {
			rows[name] += b.Len()
		}
	}
	for _, name := range formats {
		if _, err := transform.NewParser(name); err != nil {
			continue // needs options
		}
		if rows[name] == 0 {
			t.Errorf("format %s: no seed becomes a row", name)
		}
	}
}
