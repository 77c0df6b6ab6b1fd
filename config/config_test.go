package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const valid = `
kafka: {brokers: ["k1:9092"], group: g}
clickhouse: {addr: ["c1:9000"], database: logs}
hash: {key: "0123456789abcdef0123456789abcdef"}
streams:
  - {name: jobs, topic: jobs, format: logpipe-job}
`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantErr string // substring; "" = valid
		check   func(t *testing.T, c Config)
	}{
		{name: "valid", yaml: valid, check: func(t *testing.T, c Config) {
			if c.Batch.MaxRows != 100_000 || c.Batch.MaxAge != time.Second {
				t.Errorf("defaults not applied: %+v", c.Batch)
			}
			if len(c.HashKey()) != 16 {
				t.Errorf("hex key decoded to %d bytes, want 16", len(c.HashKey()))
			}
		}},
		{name: "env overrides", yaml: valid, env: []string{"LOGPIPE_CLICKHOUSE_ADDR=a:1,b:2", "LOGPIPE_BATCH_MAX_AGE=250ms", "LOGPIPE_STREAMS_0_TOPIC=other", "LOGPIPE_BATCH_MAX_ROWS=7"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.ClickHouse.Addr, ",") != "a:1,b:2" || c.Batch.MaxAge != 250*time.Millisecond || c.Streams[0].Topic != "other" || c.Batch.MaxRows != 7 {
					t.Errorf("env not applied: %+v %+v %+v", c.ClickHouse.Addr, c.Batch, c.Streams)
				}
			}},
		{name: "unknown field", yaml: valid + "\nbogus: 1\n", wantErr: "field bogus not found"},
		{name: "no brokers", yaml: strings.Replace(valid, `brokers: ["k1:9092"], `, "", 1), wantErr: "kafka.brokers"},
		{name: "bad broker", yaml: strings.Replace(valid, "k1:9092", "k1", 1), wantErr: "kafka.brokers[0]"},
		{name: "short key", yaml: strings.Replace(valid, "0123456789abcdef0123456789abcdef", "short", 1), wantErr: "hash.key"},
		{name: "bad database", yaml: strings.Replace(valid, "database: logs", "database: 'a-b'", 1), wantErr: "clickhouse.database"},
		{name: "no format", yaml: strings.Replace(valid, ", format: logpipe-job", "", 1), wantErr: "streams[0].format"},
		{name: "unknown detect channel", yaml: valid + "\nwatch: {channels: [{name: ops, url: 'https://example.invalid/'}]}\ndetect: {channels: [ops, pager]}\n", wantErr: `detect.channels[1]: no watch channel named "pager"`},
		{name: "detect channels when disabled", yaml: valid + "\ndetect: {disabled: true, channels: [pager]}\n"},
		{name: "bad env duration", yaml: valid, env: []string{"LOGPIPE_BATCH_MAX_AGE=soon"}, wantErr: "LOGPIPE_BATCH_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(write(tt.name+".yaml", tt.yaml), tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	os.WriteFile(kf, []byte("a-long-enough-secret-key\n"), 0o600)
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte(strings.Replace(valid, `hash: {key: "0123456789abcdef0123456789abcdef"}`, "hash: {key_file: "+kf+"}", 1)), 0o600)
	c, err := Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.HashKey()) != "a-long-enough-secret-key" {
		t.Errorf("key from file = %q", c.HashKey())
	}
}

func TestEnvNames(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(valid+"retention: {tables: {cdn_requests: 30d}}\n"), 0o600)
	_, err := Load(p, []string{"LOGPIPE_CLICKHOUSE_ADRR=x:9000"})
	if err == nil || !strings.Contains(err.Error(), "LOGPIPE_CLICKHOUSE_ADRR names no config field (did you mean LOGPIPE_CLICKHOUSE_ADDR?)") {
		t.Errorf("misspelt variable: err = %v", err)
	}
	c, err := Load(p, []string{"LOGPIPE_RETENTION_TABLES=cdn_requests=7d, job_events=90d", "LOGPIPE_STREAMS_0_FIELD_MAP=job=service", "LOGPIPE_BATCH_MAX_AGE=1d", "LOGPIPE_LOG_LEVEL=debug", "LOGPIPE_TEST_LOGS=/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Tables["cdn_requests"] != "7d" || c.Retention.Tables["job_events"] != "90d" || len(c.Retention.Tables) != 2 {
		t.Errorf("retention.tables from env = %v", c.Retention.Tables)
	}
	if c.Streams[0].FieldMap["job"] != "service" || c.Batch.MaxAge != 24*time.Hour {
		t.Errorf("field_map %v, max_age %v", c.Streams[0].FieldMap, c.Batch.MaxAge)
	}
	if _, err := Load(p, []string{"LOGPIPE_RETENTION_TABLES=cdn_requests"}); err == nil || !strings.Contains(err.Error(), "LOGPIPE_RETENTION_TABLES") {
		t.Errorf("bad map value: err = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90m", 90 * time.Minute, true},
		{"1d", 24 * time.Hour, true},
		{"30d", 720 * time.Hour, true},
		{"1w", 168 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"250ms", 250 * time.Millisecond, true},
		{"30x", 0, false},
		{"d", 0, false},
		{"", 0, false},
		{"1d-1h", 0, false},
	} {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestYAMLDays: durations in the file take days like everywhere else,
// and errors keep their line numbers.
func TestYAMLDays(t *testing.T) {
	var c Config
	y := valid + "batch: {max_age: 1d}\nschedules:\n  - {job: a, cron: '@daily', grace: \"2d\"}\nwatch:\n  renotify: 1d12h\n"
	if err := Parse([]byte(y), &c); err != nil {
		t.Fatal(err)
	}
	if c.Batch.MaxAge != 24*time.Hour || c.Schedules[0].Grace != 48*time.Hour || c.Watch.Renotify != 36*time.Hour {
		t.Errorf("max_age %v grace %v renotify %v", c.Batch.MaxAge, c.Schedules[0].Grace, c.Watch.Renotify)
	}
	err := Parse([]byte(valid+"batch: {max_age: 1d}\nbogus: 1\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "line 8: field bogus not found") {
		t.Errorf("err = %v", err)
	}
}
