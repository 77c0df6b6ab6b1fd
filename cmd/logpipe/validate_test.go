package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badConfig holds each invalid setting issue 17 tried as a new user; the
// ClickHouse address is a port nothing listens on, so an error that came
// from connecting would show.
const badConfig = `
kafka: {brokers: ["127.0.0.1:1"], group: g}
clickhouse: {addr: ["127.0.0.1:1"], database: logs}
hash: {key: "0123456789abcdef0123456789abcdef"}
streams:
  - {name: cdn, topic: cdn, format: fastly-jsn}
  - {name: cdn2, topic: cdn2, format: fastly-json, log_format: '$remote_addr'}
  - {name: cdn3, topic: cdn3, format: fastly-json, field_map: {cache_stat: cache_status}}
retention:
  tables: {cdn_requests: 30x}
enrich:
  path_templates:
    - {match: '^/items/(\d+', replace: '/items/:id'}
watch:
  channels:
    - {name: ops, type: teams, url: "https://example.invalid/hook"}
  rules:
    - {name: personal_cache_hit, severity: critical}
`

var badFields = []string{
	"streams[0].format: unknown format \"fastly-jsn\"",
	"streams[1].log_format: format \"fastly-json\" takes no log_format option",
	"streams[2].field_map: unknown field \"cache_stat\" for format fastly-json",
	"retention.tables.cdn_requests: \"30x\" is not a positive duration",
	"enrich.path_templates[0].match:",
	"watch.channels[0].type: \"teams\" is neither webhook nor slack",
	"watch.rules[0].query: no query \"personal_cache_hit\" in the catalogue", "(did you mean personal_cache_hits?)",
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "logpipe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateReportsEveryError(t *testing.T) {
	p := writeConfig(t, badConfig)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "-config", p}, &stdout, &stderr)
	if err == nil {
		t.Fatalf("validate accepted the config; stderr:\n%s", stderr.String())
	}
	for _, want := range badFields {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("validate does not report %q; stderr:\n%s", want, stderr.String())
		}
	}
	// One line per invalid setting (the hint shares the rule's line).
	if got, want := strings.Count(stderr.String(), "\n"), 7; got != want {
		t.Errorf("%d lines reported, want %d:\n%s", got, want, stderr.String())
	}

	good := writeConfig(t, `
kafka: {brokers: ["127.0.0.1:1"], group: g}
hash: {key: "0123456789abcdef0123456789abcdef"}
batch: {max_age: 1d}
streams:
  - {name: cdn, topic: cdn, format: fastly-json, field_map: {cache_status: cache_status, duration: "time_elapsed:ms"}}
`)
	stdout.Reset()
	stderr.Reset()
	if err := run(context.Background(), []string{"validate", "-config", good}, &stdout, &stderr); err != nil {
		t.Fatalf("validate refused a good config: %v\n%s", err, stderr.String())
	}
}

// TestRunValidatesBeforeConnecting: run names every invalid field and
// never gets to dial ClickHouse or Kafka.
func TestRunValidatesBeforeConnecting(t *testing.T) {
	p := writeConfig(t, badConfig)
	err := cmdRun(context.Background(), []string{"-config", p}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("run accepted the config")
	}
	for _, want := range badFields {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("run error does not name %q:\n%v", want, err)
		}
	}
	for _, conn := range []string{"dial", "connection refused", "127.0.0.1:1"} {
		if strings.Contains(err.Error(), conn) {
			t.Errorf("run connected before validating (%q in the error):\n%v", conn, err)
		}
	}
}

func TestUsageAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "logpipe ") {
		t.Errorf("version: %v %q", err, stdout.String())
	}
	for _, args := range [][]string{
		{"check", "-nosuchflag", "x"},
		{"check", "-format", "fastly-json"},
		{"validate"},
		{"run", "-config", "x.yaml", "extra"},
		{"formats", "no-such-format"},
		{"bogus"},
	} {
		err := run(context.Background(), args, &stdout, &stderr)
		var ue usageError
		if !asUsage(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error (exit 2)", args, err)
		}
	}
	// A failure is no usage error (exit 1).
	p := writeConfig(t, badConfig)
	if err := run(context.Background(), []string{"validate", "-config", p}, &stdout, &stderr); err == nil || asUsage(err, new(usageError)) {
		t.Errorf("invalid config: err = %v, want a failure", err)
	}
}

func TestFormatsVendorConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"formats", "fastly-json", "-vendor-config"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"%{fastly_info.state}V", "X-Logpipe-Origin-Ms", `"response_state"`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("vendor config lacks %q:\n%s", want, stdout.String())
		}
	}
}

func asUsage(err error, ue *usageError) bool {
	return err != nil && errors.As(err, ue)
}

func TestQueryRelativeTimes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"query", "-sql", "cache_anomalies", "-param", "since=now-24h", "-param", "until=now+1d"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "now-24h") || !strings.Contains(stdout.String(), time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02")) {
		t.Errorf("now-24h not resolved:\n%s", stdout.String())
	}
	err := run(context.Background(), []string{"query", "-sql", "cache_anomalies", "-param", "since=now-24x"}, &stdout, &stderr)
	if err == nil || !asUsage(err, new(usageError)) {
		t.Errorf("now-24x: err = %v, want a usage error", err)
	}
}

// TestExampleConfigValid: the documented example passes validate (with
// the secrets from the environment, as documented).
func TestExampleConfigValid(t *testing.T) {
	t.Setenv("LOGPIPE_HASH_KEY", "0123456789abcdef0123456789abcdef")
	// run sends no alerts: the watch channels' secret files need not be
	// there.
	if _, err := loadConfig(flag.NewFlagSet("run", flag.ContinueOnError), []string{"-config", "../../deploy/logpipe.example.yaml"}); err != nil {
		t.Fatalf("run refuses the example: %v", err)
	}
	t.Setenv("LOGPIPE_WATCH_CHANNELS_0_URL", "https://hooks.example.invalid/x")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"validate", "-config", "../../deploy/logpipe.example.yaml"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs := flag.NewFlagSet("retire", flag.ContinueOnError)
	reason := fs.String("reason", "", "")
	apply := fs.Bool("apply", false, "")
	if err := parseFlags(fs, []string{"old_table", "-reason", "replaced", "-apply"}); err != nil {
		t.Fatal(err)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "old_table" || *reason != "replaced" || !*apply {
		t.Errorf("args %v reason %q apply %v", fs.Args(), *reason, *apply)
	}
}

// TestValidateChecksFilesAndEverySchedule: validate (and run, through the
// same list) reports unreadable TLS files, and every invalid field of
// every schedule and retention rule, not only the first.
func TestValidateChecksFilesAndEverySchedule(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
	p := writeConfig(t, `
kafka: {brokers: ["127.0.0.1:1"], group: g, tls: {enabled: true, ca_file: "`+missing+`"}}
clickhouse: {addr: ["127.0.0.1:1"], database: logs}
hash: {key: "0123456789abcdef0123456789abcdef"}
streams:
  - {name: cdn, topic: cdn, format: fastly-json}
retention:
  tables: {cdn_requests: 30x, job_events: 1y}
schedules:
  - {job: a, cron: "0 0 * * *", timezone: Mars/Olympus}
  - {job: b, cron: "61 * * * *", calendar: weekends}
`)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"validate", "-config", p}, &stdout, &stderr); err == nil {
		t.Fatalf("validate accepted the config; stderr:\n%s", stderr.String())
	}
	want := []string{
		"kafka.tls ca_file: open " + missing,
		"retention.tables.cdn_requests: \"30x\"",
		"retention.tables.job_events: \"1y\"",
		"schedules[0].timezone: unknown time zone Mars/Olympus",
		"schedules[1].calendar: \"weekends\" is neither all nor business-days",
		"schedules[1].cron: ",
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("validate does not report %q; stderr:\n%s", w, stderr.String())
		}
	}
	if got := strings.Count(stderr.String(), "\n"); got != len(want) {
		t.Errorf("%d lines reported, want %d:\n%s", got, len(want), stderr.String())
	}
	err := cmdRun(context.Background(), []string{"-config", p}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("run error does not name %q:\n%v", w, err)
		}
	}
}
