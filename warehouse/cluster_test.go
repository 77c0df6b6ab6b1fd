package warehouse_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/warehouse"
)

// TestRetentionOnCluster drops old partitions of the replicated local
// tables on a real cluster (ZooKeeper + two servers), in both layouts: on
// two shards every shard loses them, on two replicas both replicas do.
func TestRetentionOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two ClickHouse servers")
	}
	if os.Getenv(chserver.EnvSkip) != "" {
		t.Skipf("%s is set", chserver.EnvSkip)
	}
	for _, layout := range []string{"2x1", "1x2"} {
		t.Run(layout, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			c, err := chserver.StartCluster(ctx, t.TempDir(), layout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			o := sink.Options{Addr: []string{c.Servers[0].TCPAddr}, Database: "wh", Cluster: "logpipe"}
			if err := sink.CreateDatabase(ctx, o); err != nil {
				t.Fatal(err)
			}
			conn, err := sink.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := schemas.MigrateTarget(ctx, conn, schemas.Target{Cluster: "logpipe", Database: "wh"}); err != nil {
				t.Fatal(err)
			}
			// 40 rows a day over 4 Kafka partitions: spread over both
			// shards in 2x1.
			for _, day := range []string{"2026-11-17", "2026-11-18", "2026-11-20"} {
				if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO cdn_requests (time, host, path, _topic, _partition, _offset) SELECT toDateTime('%s 10:00:00', 'UTC') + number, 'h', '/', 'cdn', toInt32(number %% 4), toInt64(number) FROM numbers(40)", day)); err != nil {
					t.Fatal(err)
				}
			}
			days := func(s *chserver.Server) string {
				out, err := s.Query(ctx, "SELECT arrayStringConcat(groupArray(d), ',') FROM (SELECT DISTINCT toString(toDate(time)) AS d FROM wh.cdn_requests_local ORDER BY d)")
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(out)
			}
			waitDays := func(s *chserver.Server, want string) string {
				deadline := time.Now().Add(30 * time.Second)
				for days(s) != want && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
				}
				return days(s)
			}
			all := "2026-11-17,2026-11-18,2026-11-20"
			if layout == "2x1" {
				for i, s := range c.Servers {
					if got := days(s); got != all {
						t.Fatalf("shard %d holds days %q before retention, want %s (rows on both shards)", i+1, got, all)
					}
				}
			} else if got := waitDays(c.Servers[1], all); got != all {
				t.Fatalf("replica 2 holds days %q before retention, want %s", got, all)
			}

			w := warehouse.New(conn)
			w.Cluster = "logpipe"
			w.Now = func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
			rules := map[string]time.Duration{"cdn_requests": 36 * time.Hour}
			dry, err := w.Retention(ctx, rules, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(dry); got != "2026-11-17 40 kept; 2026-11-18 40 kept" {
				t.Errorf("dry run = %s (rows summed over shards, not replicas)", got)
			}
			done, err := w.Retention(ctx, rules, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(done); got != "2026-11-17 40 dropped; 2026-11-18 40 dropped" {
				t.Errorf("apply = %s", got)
			}
			for i, s := range c.Servers {
				if got := waitDays(s, "2026-11-20"); got != "2026-11-20" {
					t.Errorf("server %d holds days %q after retention, want 2026-11-20", i+1, got)
				}
			}
			r, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM cdn_requests")
			if err != nil || r[0][0] != "40" {
				t.Errorf("Distributed table after retention: %v %v, want 40 rows", r, err)
			}
		})
	}
}
