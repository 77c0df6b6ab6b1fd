package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migrate -print -server-version renders without a server: the modern DDL
// for 24.8 (with TTL from the config's retention), the 18.16 forms for 18.16.
func TestMigratePrint(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "logpipe.yaml")
	if err := os.WriteFile(cfg, []byte("clickhouse:\n  addr: [\"127.0.0.1:1\"]\nretention:\n  tables:\n    cdn_requests: 14d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		version   string
		want, not []string
	}{
		{"24.8", []string{"modern rendering for ClickHouse 24.8", "time             DateTime64(3, 'UTC')", "INDEX session_hash_bloom", "TTL toDateTime(time) + toIntervalDay(14)", "SETTINGS ttl_only_drop_parts = 1"}, nil},
		{"18.16", []string{"legacy rendering for ClickHouse 18.16", "time             DateTime "}, []string{"DateTime64(3", "TTL toDateTime", "CODEC(", "INDEX session_hash_bloom", "ttl_only_drop_parts"}},
	} {
		var out strings.Builder
		if err := cmdMigrate(context.Background(), []string{"-config", cfg, "-print", "-server-version", tt.version}, &out, log); err != nil {
			t.Fatalf("%s: %v", tt.version, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q", tt.version, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out.String(), n) {
				t.Errorf("%s: output has %q", tt.version, n)
			}
		}
	}
	if err := cmdMigrate(context.Background(), []string{"-config", cfg, "-server-version", "24.8"}, io.Discard, log); err == nil {
		t.Error("-server-version without -print accepted")
	}
}
