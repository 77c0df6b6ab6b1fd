package schemas

import (
	"strings"
	"testing"
	"time"
)

func TestModernize(t *testing.T) {
	ret := map[string]time.Duration{"ev": 7 * 24 * time.Hour, "nopart": time.Hour, "st": 90 * time.Minute, "long": 100 * 365 * 24 * time.Hour}
	tests := []struct {
		name, in string
		want     []string // substrings of the result, in order
		not      []string // must not appear
		wantErr  string
	}{
		{
			name: "event table: DateTime64 time, codecs, TTL, settings",
			in:   "-- c\nCREATE TABLE IF NOT EXISTS ev\n(\n    time DateTime COMMENT 'x (UTC, seconds)',\n    -- a comment, with a comma\n    s String,\n    n UInt8,\n    q Nullable(String),\n    l LowCardinality(String),\n    c String CODEC(LZ4),\n    _partition Int32,\n    _offset Int64\n)\nENGINE = MergeTree()\nPARTITION BY toDate(time)\nORDER BY (time)",
			want: []string{"-- c\nCREATE TABLE IF NOT EXISTS ev\n(", "time DateTime64(3, 'UTC') COMMENT 'x (UTC, milliseconds)' CODEC(Delta, ZSTD(1)),",
				"-- a comment, with a comma\n    s String CODEC(ZSTD(1)),", "n UInt8,", "q Nullable(String),", "l LowCardinality(String),", "c String CODEC(LZ4),",
				"_offset Int64 CODEC(DoubleDelta, ZSTD(1))\n)", "ORDER BY (time)\nTTL toDateTime(time) + toIntervalDay(7)\nSETTINGS ttl_only_drop_parts = 1"},
		},
		{
			name: "existing SETTINGS kept, TTL before them; time of a non-event table stays DateTime",
			in:   "CREATE TABLE IF NOT EXISTS st (time DateTime, v UInt64) ENGINE = ReplacingMergeTree(v) PARTITION BY toYYYYMM(time) ORDER BY v SETTINGS index_granularity = 1024",
			want: []string{"time DateTime CODEC(Delta, ZSTD(1))", "ORDER BY v\nTTL toDateTime(time) + toIntervalSecond(5400)\nSETTINGS ttl_only_drop_parts = 1, index_granularity = 1024"},
			not:  []string{"DateTime64"},
		},
		{
			name:    "retention without a time partition",
			in:      "CREATE TABLE IF NOT EXISTS nopart (v UInt64) ENGINE = MergeTree() ORDER BY v",
			wantErr: "names no time column",
		},
		{
			name:    "retention too long for a TTL",
			in:      "CREATE TABLE IF NOT EXISTS long (time DateTime) ENGINE = MergeTree() PARTITION BY toDate(time) ORDER BY time",
			wantErr: "longer than 50 years",
		},
		{
			name: "non-MergeTree unchanged",
			in:   "CREATE TABLE IF NOT EXISTS m (s String) ENGINE = Memory",
			want: []string{"CREATE TABLE IF NOT EXISTS m (s String) ENGINE = Memory"},
			not:  []string{"CODEC", "SETTINGS"},
		},
		{
			name: "added columns get codecs",
			in:   "ALTER TABLE ev ADD COLUMN IF NOT EXISTS note String DEFAULT '' COMMENT 'n'",
			want: []string{"ALTER TABLE ev ADD COLUMN IF NOT EXISTS note String DEFAULT '' COMMENT 'n' CODEC(ZSTD(1))"},
		},
		{
			name: "views unchanged",
			in:   "CREATE VIEW IF NOT EXISTS v AS SELECT time FROM ev",
			want: []string{"CREATE VIEW IF NOT EXISTS v AS SELECT time FROM ev"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := modernize(tt.in, "", ret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("result lacks %q (in order) in:\n%s", w, got)
				}
				at += i + len(w)
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("result has %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestTargetModern(t *testing.T) {
	for v, want := range map[ServerVersion]string{{}: "legacy", Oldest: "legacy", {23, 8}: "legacy", {24, 1}: "modern", {26, 5}: "modern"} {
		if got := (Target{Server: v}).Rendering(); got != want {
			t.Errorf("server %s: rendering %s, want %s", v, got, want)
		}
	}
}

// On a cluster the modern extras go to the local tables only: the
// Distributed table stores nothing (no codecs, no skip indexes, no TTL).
func TestModernClusterDistributedPlain(t *testing.T) {
	tg := Target{Cluster: "c", Database: "db", Server: ServerVersion{24, 8}, Retention: map[string]time.Duration{"cdn_requests": 24 * time.Hour}}
	managed := map[string]Kind{"cdn_requests": KindTable}
	out, err := tg.Render("ALTER TABLE cdn_requests ADD COLUMN note String COMMENT 'n'", managed)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !strings.Contains(out[0], "cdn_requests_local ON CLUSTER c ADD COLUMN note String COMMENT 'n' CODEC(ZSTD(1))") || strings.Contains(out[1], "CODEC") {
		t.Errorf("ALTER rendered as %q", out)
	}
	out, err = tg.Render("CREATE TABLE IF NOT EXISTS cdn_requests (time DateTime, session_hash UInt64, path_template String, _topic String, _partition Int32) ENGINE = MergeTree() PARTITION BY toDate(time) ORDER BY time", managed)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("CREATE rendered as %q", out)
	}
	for _, w := range []string{"DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))", "INDEX session_hash_bloom", "TTL toDateTime(time) + toIntervalDay(1)", "ttl_only_drop_parts = 1"} {
		if !strings.Contains(out[0], w) {
			t.Errorf("local table lacks %q:\n%s", w, out[0])
		}
	}
	if !strings.Contains(out[1], "time DateTime64(3, 'UTC')") || strings.Contains(out[1], "CODEC") || strings.Contains(out[1], "INDEX") || strings.Contains(out[1], "TTL") {
		t.Errorf("Distributed table:\n%s", out[1])
	}
}
