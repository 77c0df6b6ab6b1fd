package warehouse_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/warehouse"
)

// TestRetentionOnCluster drops old partitions of the replicated local
// tables on a real cluster (ZooKeeper + two servers), in both layouts: on
// two shards every shard loses them, on two replicas both replicas do.
// Then it retires, restores and drops a table there.
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
			o := chclient.Options{Addr: []string{c.Servers[0].TCPAddr}, Database: "wh", Cluster: "logpipe"}
			if err := chclient.CreateDatabase(ctx, o); err != nil {
				t.Fatal(err)
			}
			conn, err := chclient.Open(ctx, o)
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

			// Retirement on the cluster: the Distributed table and its
			// local part are renamed together on every server, restored
			// together, and dropped together after the grace period.
			names := func(s *chserver.Server) string {
				out, err := s.Query(ctx, "SELECT arrayStringConcat(groupArray(name), ',') FROM (SELECT name FROM system.tables WHERE database = 'wh' AND startsWith(name, 'job_schedules') ORDER BY name)")
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(out)
			}
			expect := func(step, want string) {
				t.Helper()
				for i, s := range c.Servers {
					if got := names(s); got != want {
						t.Errorf("%s: server %d has %q, want %q", step, i+1, got, want)
					}
				}
			}
			if _, err := w.Retire(ctx, "cdn_hourly_state", 24*time.Hour, "test", ""); err == nil || !strings.Contains(err.Error(), "cdn_hourly_mv") {
				t.Errorf("retiring a table a materialized view writes into (through its local part): %v, want a refusal", err)
			}
			day := w.Now()
			retired, err := w.Retire(ctx, "job_schedules", 24*time.Hour, "test", "cluster test")
			if err != nil {
				t.Fatal(err)
			}
			stamp := day.Format("20060102")
			expect("retire", "job_schedules__retired_"+stamp+",job_schedules_local__retired_"+stamp)
			if _, err := w.Restore(ctx, retired, "test"); err != nil {
				t.Fatal(err)
			}
			expect("restore", "job_schedules,job_schedules_local")
			if _, err := w.Retire(ctx, "job_schedules", 24*time.Hour, "test", "cluster test"); err != nil {
				t.Fatal(err)
			}
			w.Now = func() time.Time { return day.Add(20 * 24 * time.Hour) }
			dropped, err := w.DropRetired(ctx, 14*24*time.Hour, "test", true)
			if err != nil {
				t.Fatal(err)
			}
			if len(dropped) != 1 || !dropped[0].Dropped || dropped[0].Table != "job_schedules" {
				t.Errorf("DropRetired = %+v, want job_schedules dropped (its local part with it, not listed apart)", dropped)
			}
			expect("drop", "")
		})
	}
}
