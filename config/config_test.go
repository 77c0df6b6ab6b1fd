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
