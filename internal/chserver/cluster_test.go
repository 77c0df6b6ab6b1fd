package chserver

import (
	"context"
	"testing"
	"time"
)

// TestCluster starts the two layouts and checks what tests built on them
// rely on: ON CLUSTER DDL, Distributed tables spreading rows over shards,
// and replication between the replicas of one shard.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two ClickHouse servers")
	}
	skipIfDisabled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, layout := range []string{"2x1", "1x2"} {
		t.Run(layout, func(t *testing.T) {
			c, err := StartCluster(ctx, t.TempDir(), layout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			s1, s2 := c.Servers[0], c.Servers[1]
			for _, q := range []string{
				"CREATE DATABASE IF NOT EXISTS lp ON CLUSTER logpipe",
				"CREATE TABLE IF NOT EXISTS lp.t_local ON CLUSTER logpipe (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/lp/t_local', '{replica}') ORDER BY x",
				"CREATE TABLE IF NOT EXISTS lp.t ON CLUSTER logpipe AS lp.t_local ENGINE = Distributed(logpipe, lp, t_local, rand())",
				"INSERT INTO lp.t SELECT number FROM numbers(1000)",
			} {
				if err := s1.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			count := func(s *Server, table string) string {
				out, err := s.Query(ctx, "SELECT count() FROM "+table)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			deadline := time.Now().Add(30 * time.Second)
			for count(s2, "lp.t") != "1000\n" && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			if got := count(s2, "lp.t"); got != "1000\n" {
				t.Fatalf("Distributed table on server 2 counts %q, want 1000", got)
			}
			local1, local2 := count(s1, "lp.t_local"), count(s2, "lp.t_local")
			switch layout {
			case "2x1": // rows spread over the two shards
				if local1 == "0\n" || local2 == "0\n" || local1 == "1000\n" {
					t.Errorf("2 shards hold %q and %q rows, want both some", local1, local2)
				}
			case "1x2": // each replica holds every row
				for local2 != "1000\n" && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
					local2 = count(s2, "lp.t_local")
				}
				if local1 != "1000\n" || local2 != "1000\n" {
					t.Errorf("replicas hold %q and %q rows, want 1000 each", local1, local2)
				}
			}
		})
	}
}
