package pipeline

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/logpipe/logpipe/ingest"
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

// FuzzRecord drives the whole transform entry point of a partition worker
// (size limit, line splitting, every parser, enrichment, dead letters with
// redaction) with arbitrary records: it must never panic, and every line
// must end up as a row, a dead letter, or a line that carries no record.
func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-20T01:00:00Z","job":"j","run_id":"r","event":"started"}`), uint8(0))
	f.Add([]byte(`{"timestamp":"2026-11-20T01:00:00Z","url":"/mypage","response_status":200,"response_state":"HIT-WAIT","client_ip":"192.0.2.1","request_cookie":"session=abc"}`), uint8(1))
	f.Add([]byte("#Version: 1.0\n#Fields: date time\n2026-11-20\t01:00:00\tNRT\n"), uint8(2))
	f.Add([]byte("192.0.2.1 - - [20/Nov/2026:01:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n\n\x00\xff"), uint8(3))
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
		p := &Pipeline{
			cfg: Config{
				Limits: Limits{MaxRows: 1000, MaxBytes: 1 << 20, MaxAge: time.Second, MaxRecordBytes: 4096},
				Enrich: transform.EnrichConfig{HashKey: []byte("fuzz-key-0123456789abcdef")},
			},
			log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			fatal: make(chan error, 1),
		}
		w, err := newWorker(p, stream{Stream: Stream{Name: "s", Topic: "t", Format: name}, parser: parser}, &ingest.Claim{Topic: "t"})
		if err != nil {
			t.Fatal(err)
		}
		w.add(ingest.Record{Topic: "t", Offset: 7, Value: data})
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
			var err error
			var rec any
			switch pp := parser.(type) {
			case transform.JobParser:
				var e transform.JobEvent
				if err = pp.ParseJob(line, &e); err == nil {
					enr.Job(&e)
					rec = e
				}
			case transform.CDNParser:
				var r transform.CDNRequest
				if err = pp.ParseCDN(line, &r); err == nil {
					enr.CDN(&r)
					rec = r
				}
			}
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
