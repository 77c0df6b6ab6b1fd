package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// TestClusterStops stops parts of a 1x2 cluster (processes gone, not hung)
// while records arrive, and starts them again:
//
//   - ZooKeeper killed (SIGKILL) for hangFor(): the replicated tables turn
//     read-only, inserts fail and are retried until it is started again
//     (same port, same data);
//   - replica s1 stopped, then replica s2 restarted while s1 is still down
//     (records arrive while s2 is stopped): writes fail until s2 is back
//     and then go on through it.
//
// Each window gets a third of the records; at the end both replicas hold
// every record exactly once.
func TestClusterStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two ClickHouse servers")
	}
	if os.Getenv(chserver.EnvSkip) != "" {
		t.Skipf("%s is set", chserver.EnvSkip)
	}
	down := hangFor()
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := chserver.StartCluster(ctx, t.TempDir(), "1x2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	s1, s2 := c.Servers[0], c.Servers[1]
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range c.Servers {
				out, err := s.Query(context.Background(), "SELECT table, inserts_in_queue, queue_size, is_readonly, is_session_expired FROM system.replicas")
				t.Logf("on failure, replicas on %s: %v\n%s", s.TCPAddr, err, out)
				t.Logf("on failure, end of the log of %s:\n%s", s.TCPAddr, s.LogTail(30))
			}
		}
	})

	const records = 12_000
	topics := []string{"cdn", "jobs"}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 4, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	cdn, jobs := testRecords(records)
	nc, nj := 0, 0
	produce := func(thirds int) {
		t.Helper()
		c, j := len(cdn)*thirds/3, len(jobs)*thirds/3
		if err := broker.Produce(ctx, "cdn", cdn[nc:c]...); err != nil {
			t.Fatal(err)
		}
		if err := broker.Produce(ctx, "jobs", jobs[nj:j]...); err != nil {
			t.Fatal(err)
		}
		nc, nj = c, j
	}
	produce(1)

	dir := t.TempDir()
	if d := os.Getenv("LOGPIPE_TEST_LOGS"); d != "" {
		dir = d
	}
	cfg := filepath.Join(dir, "stops.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: stops, session_timeout: 6s, rebalance_timeout: 10s}
clickhouse: {addr: [%q, %q], database: logs, cluster: logpipe, insert_timeout: 5s, dial_timeout: 2s}
batch: {max_rows: 1000, max_age: 100ms, retry_max: 2s}
http: {listen: "127.0.0.1:0"}
streams:
  - {name: cdn, topic: cdn, format: fastly-json}
  - {name: jobs, topic: jobs, format: logpipe-job}
`, broker.Addrs[0], s1.TCPAddr, s2.TCPAddr)), 0o600)
	env := []string{"LOGPIPE_HASH_KEY=cluster-test-key-0123456789", "LOGPIPE_LOG_LEVEL=info"}
	if out, err := runLogged(ctx, bin, env, "migrate", "-config", cfg); err != nil {
		t.Fatalf("migrate on the cluster: %v\n%s", err, out)
	}
	logFile := filepath.Join(dir, "stops.log")
	a := &proc{startLogged(t, logFile, bin, env, "run", "-config", cfg)}
	defer func() {
		if a.cmd.ProcessState == nil {
			a.kill()
		}
	}()
	committed := func() (int64, error) { return committedOffsets(ctx, broker.Addrs[0], "stops", topics, 4) }
	explain := func() string {
		n, err := committed()
		return fmt.Sprintf("committed %d (%v) of %d produced\n%s", n, err, nc+nj, processMetrics(logFile))
	}
	caughtUp := func(limit time.Duration, what string) time.Duration {
		t.Helper()
		want := int64(nc + nj)
		return waitSeen(t, limit, what, func() (bool, string) {
			n, err := committed()
			return n >= want, fmt.Sprintf("%d of %d records committed (%v)", n, want, err)
		}, explain)
	}
	failing := func(before float64, what string) {
		t.Helper()
		waitSeen(t, down+60*time.Second, what, func() (bool, string) {
			n := metricSum(logFile, "logpipe_insert_errors_total")
			return n > before, fmt.Sprintf("%v failed insert attempts, %v before", n, before)
		}, explain)
	}
	waitSeen(t, 120*time.Second, "every partition owned and ready", func() (bool, string) { return settled([]string{logFile}, 8) }, explain)
	caughtUp(120*time.Second, "first third stored")

	// 1. ZooKeeper killed, then started again with the same data.
	zkPID := func() int {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "zk", "pid"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}()
	if zkPID == 0 {
		t.Fatal("no ZooKeeper pid in", filepath.Join(c.Dir, "zk", "pid"))
	}
	errsBefore := metricSum(logFile, "logpipe_insert_errors_total")
	if err := syscall.Kill(zkPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	zkAddr := fmt.Sprintf("127.0.0.1:%d", c.ZKPort)
	waitSeen(t, 60*time.Second, "ZooKeeper gone", func() (bool, string) {
		conn, err := net.DialTimeout("tcp", zkAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil, fmt.Sprintf("dial %s: %v", zkAddr, err)
	})
	produce(2)
	failing(errsBefore, "inserts failing while ZooKeeper is down")
	if d := down - time.Since(killed); d > 0 {
		time.Sleep(d) // the fault lasts its length; the check above saw it overlap ingestion
	}
	if err := c.StartZooKeeper(ctx); err != nil {
		t.Fatal(err)
	}
	gone := time.Since(killed)
	took := caughtUp(240*time.Second, "every record stored after ZooKeeper started again")
	t.Logf("ZooKeeper killed, started again %s later: every record stored %s after it served again", gone.Round(100*time.Millisecond), took.Round(100*time.Millisecond))

	// 2. Replica s1 stopped; then s2, the only one left, restarted.
	replicasHoldAll(t, ctx, c, nc+nj)
	if err := s1.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}
	errsBefore = metricSum(logFile, "logpipe_insert_errors_total")
	produce(3)
	failing(errsBefore, "inserts failing while both replicas are down")
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	took = caughtUp(240*time.Second, "every record stored through s2 after its restart, s1 still down")
	t.Logf("replica s1 stopped, s2 restarted while s1 is down: every record stored through s2 %s after s2 was back", took.Round(100*time.Millisecond))
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}

	a.stop(t)
	replicasHoldAll(t, ctx, c, records)
	for _, s := range c.Servers {
		conn, err := chclient.Open(ctx, chclient.Options{Addr: []string{s.TCPAddr}, Database: "logs"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := conn.QueryStrings(ctx, "SELECT toString((SELECT count() FROM cdn_requests_local) + (SELECT count() FROM job_events_local) + (SELECT count() FROM ingest_errors_local)), "+
			"toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests_local) + (SELECT uniqExact(_partition, _offset) FROM job_events_local) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors_local))")
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r[0][0] != strconv.Itoa(records) || r[0][1] != strconv.Itoa(records) {
			rows, _ := strconv.Atoi(r[0][0])
			distinct, _ := strconv.Atoi(r[0][1])
			t.Errorf("replica %s: %d rows, %d distinct offsets; want %d each (lost %d, duplicated %d)", s.TCPAddr, rows, distinct, records, records-distinct, rows-distinct)
		}
	}
}
