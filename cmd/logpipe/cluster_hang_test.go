package main

import (
	"context"
	"fmt"
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

// hangFor is how long the fault rows keep a process hung: 10 s in make
// test, LOGPIPE_SOAK_HANG (30s in make soak) otherwise.
func hangFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LOGPIPE_SOAK_HANG")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

// TestClusterHangs hangs parts of a 1x2 cluster with SIGSTOP (connections
// stay open, nothing answers) while records arrive, then resumes them:
//
//   - the replica logpipe writes through: inserts time out and go to the
//     other replica;
//   - ZooKeeper: the replicated tables cannot insert; inserts fail and
//     are retried until it is back.
//
// Each window gets a third of the records; at the end every record is
// stored exactly once.
func TestClusterHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two ClickHouse servers")
	}
	if os.Getenv(chserver.EnvSkip) != "" {
		t.Skipf("%s is set", chserver.EnvSkip)
	}
	hang := hangFor()
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c, err := chserver.StartCluster(ctx, t.TempDir(), "1x2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	s1, s2 := c.Servers[0], c.Servers[1]
	zkPID := func() int {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "zk", "pid"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}()
	if zkPID == 0 {
		t.Fatal("no ZooKeeper pid in", filepath.Join(c.Dir, "zk", "pid"))
	}

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
	cfg := filepath.Join(dir, "hangs.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: hangs, session_timeout: 6s, rebalance_timeout: 10s}
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
	logFile := filepath.Join(dir, "hangs.log")
	a := &proc{startLogged(t, logFile, bin, env, "run", "-config", cfg)}
	committed := func() (int64, error) { return committedOffsets(ctx, broker.Addrs[0], "hangs", topics, 4) }
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
	// stalled reads the longest a partition has been waiting, as the
	// process reports it.
	stalled := func() float64 {
		out := processMetrics(logFile)
		var worst float64
		for _, l := range strings.Split(out, "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "logpipe_partition_waiting_seconds") {
				v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
				worst = max(worst, v)
			}
		}
		return worst
	}
	waitSeen(t, 120*time.Second, "every partition owned and ready", func() (bool, string) { return settled([]string{logFile}, 8) }, explain)
	caughtUp(120*time.Second, "first third stored")

	// 1. The replica logpipe writes through hangs.
	pid := s1.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	produce(2)
	took := caughtUp(hang+120*time.Second, "second third stored while replica s1 is hung")
	during := time.Since(hung) < hang
	time.Sleep(hang - time.Since(hung))
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if hang >= 20*time.Second && !during {
		t.Errorf("with replica s1 hung %s, the writes went on only after it resumed (%s)", hang, took)
	}
	t.Logf("replica s1 hung %s: the second third stored through s2 %s after the hang began (during the hang: %v)", hang, took.Round(100*time.Millisecond), during)

	// 2. ZooKeeper hangs: replicated inserts fail until it is back.
	errsBefore := metricSum(logFile, "logpipe_insert_errors_total")
	if err := syscall.Kill(zkPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung = time.Now()
	defer syscall.Kill(zkPID, syscall.SIGCONT)
	produce(3)
	waitSeen(t, hang+60*time.Second, "inserts failing while ZooKeeper is hung", func() (bool, string) {
		n := metricSum(logFile, "logpipe_insert_errors_total")
		return n > errsBefore, fmt.Sprintf("%v failed insert attempts, %v before", n, errsBefore)
	}, explain)
	var worst float64
	for time.Since(hung) < hang {
		worst = max(worst, stalled())
		time.Sleep(time.Second)
	}
	if err := syscall.Kill(zkPID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took = caughtUp(240*time.Second, "every record stored after ZooKeeper resumed")
	t.Logf("ZooKeeper hung %s: partitions reported up to %.0f s waiting; every record stored %s after it resumed", hang, worst, took.Round(100*time.Millisecond))

	// Exactly once, through the Distributed tables, once replication has
	// caught up on both replicas.
	a.stop(t)
	// A replica that was hung (or lost ZooKeeper) copies the replication
	// log into its queue only after it reconnects: an empty queue does
	// not mean caught up, the row count does.
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
