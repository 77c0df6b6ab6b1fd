package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// TestClusterEndToEnd runs two logpipe processes in one consumer group
// against a real ClickHouse cluster (ZooKeeper and two servers, started
// by deploy/local/cluster.sh) with the schema from migrate -cluster, in
// both layouts, and breaks things mid-run:
//
//   - 2x1 (two shards): one consumer is killed with SIGKILL and restarted
//     (its partitions move to the other and back), and shard 2 is stopped
//     for a while (inserts bound for it retry; nothing else stalls);
//   - 1x2 (one shard, two replicas): the replica logpipe connects to is
//     stopped (logpipe fails over to the other), a consumer is killed and
//     restarted while it is down, then the replica comes back and catches
//     up by replication.
//
// At the end the Distributed tables hold every record exactly once, each
// Kafka partition's rows are on one shard, and both replicas hold all.
func TestClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and two ClickHouse servers")
	}
	if os.Getenv(chserver.EnvSkip) != "" {
		t.Skipf("%s is set", chserver.EnvSkip)
	}
	bin := buildBinary(t)
	for _, layout := range []string{"2x1", "1x2"} {
		t.Run(layout, func(t *testing.T) { clusterRun(t, bin, layout) })
	}
}

func clusterRun(t *testing.T, bin, layout string) {
	// Longer than every wait below put together (about 13 minutes if each
	// ran to its limit), so that a wait that fails reports what it saw
	// instead of the context expiring under it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := chserver.StartCluster(ctx, t.TempDir(), layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() }) // after the failure report below
	s1, s2 := c.Servers[0], c.Servers[1]
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range c.Servers {
				out, err := s.Query(context.Background(), "SELECT query_id, elapsed, substring(query, 1, 120) FROM system.processes")
				t.Logf("on failure, processes on %s: %v\n%s", s.TCPAddr, err, out)
				out, err = s.Query(context.Background(), "SELECT table, inserts_in_queue, queue_size, log_max_index, log_pointer, is_readonly, is_session_expired FROM system.replicas")
				t.Logf("on failure, replicas on %s: %v\n%s", s.TCPAddr, err, out)
				t.Logf("on failure, end of the log of %s:\n%s", s.TCPAddr, s.LogTail(30))
			}
		}
	})

	const records = 24_000
	topics := []string{"cdn", "jobs"}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 4, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	cdn, jobs := testRecords(records)
	// A third now, a third with each fault: every fault window certainly
	// has records to write.
	produced, nc, nj := 0, 0, 0 // thirds produced; cdn and jobs records produced
	produce := func(thirds int) {
		t.Helper()
		c, j := len(cdn)*thirds/3, len(jobs)*thirds/3
		if err := broker.Produce(ctx, "cdn", cdn[nc:c]...); err != nil {
			t.Fatal(err)
		}
		if err := broker.Produce(ctx, "jobs", jobs[nj:j]...); err != nil {
			t.Fatal(err)
		}
		produced, nc, nj = thirds, c, j
	}
	produce(1)

	dir := t.TempDir()
	if d := os.Getenv("LOGPIPE_TEST_LOGS"); d != "" {
		dir = d // keep the processes' logs
	}
	cfg := filepath.Join(dir, "logpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: cluster, session_timeout: 10s, rebalance_timeout: 10s}
clickhouse: {addr: [%q, %q], database: logs, cluster: logpipe, insert_timeout: 20s}
batch: {max_rows: 1000, max_age: 100ms, retry_max: 2s}
http: {listen: "127.0.0.1:0"}
streams:
  - {name: cdn, topic: cdn, format: fastly-json}
  - {name: jobs, topic: jobs, format: logpipe-job}
`, broker.Addrs[0], s1.TCPAddr, s2.TCPAddr)), 0o600)
	// Info: the processes log where they serve /metrics, which the
	// failure output reads.
	env := []string{"LOGPIPE_HASH_KEY=cluster-test-key-0123456789", "LOGPIPE_LOG_LEVEL=" + cmp.Or(os.Getenv("LOGPIPE_TEST_LOG_LEVEL"), "info")}

	if out, err := runLogged(ctx, bin, env, "migrate", "-config", cfg); err != nil || !strings.Contains(out, "applied 0001_core") {
		t.Fatalf("migrate on the cluster: %v\n%s", err, out)
	}
	if out, err := runLogged(ctx, bin, env, "migrate", "-config", cfg); err != nil || !strings.Contains(out, "schema is up to date") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}

	conn, err := chclient.Open(ctx, chclient.Options{Addr: []string{s1.TCPAddr, s2.TCPAddr}, Database: "logs", DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// stored counts through the Distributed tables. While a replica is
	// down, the other cannot count the parts only the stopped one holds
	// (acknowledged inserts it had not fetched yet): progress is read
	// from the group's commits instead, which logpipe makes only after
	// ClickHouse acknowledged the rows.
	stored := func() (rows, distinct int, err error) {
		q := "SELECT toString((SELECT count() FROM cdn_requests) + (SELECT count() FROM job_events) + (SELECT count() FROM ingest_errors)), " +
			"toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests) + (SELECT uniqExact(_partition, _offset) FROM job_events) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors))"
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := conn.QueryStrings(qctx, q)
		if err != nil {
			return -1, -1, err
		}
		rows, _ = strconv.Atoi(r[0][0])
		distinct, _ = strconv.Atoi(r[0][1])
		return rows, distinct, nil
	}
	committed := func() (int64, error) { return committedOffsets(ctx, broker.Addrs[0], "cluster", topics, 4) }
	var logs []string
	explain := func() string {
		var b strings.Builder
		n, err := committed()
		fmt.Fprintf(&b, "committed offsets: %d (%v) of %d produced (%d thirds)\n", n, err, nc+nj, produced)
		rows, distinct, err := stored()
		fmt.Fprintf(&b, "stored through the Distributed tables: %d rows, %d distinct (%v)\n", rows, distinct, err)
		for _, l := range logs {
			b.WriteString(processMetrics(l))
		}
		return b.String()
	}
	// caughtUp waits until logpipe has stored and committed every record
	// produced so far, and returns how long that took.
	caughtUp := func(limit time.Duration, what string) time.Duration {
		t.Helper()
		want := int64(nc + nj)
		return waitSeen(t, limit, what, func() (bool, string) {
			n, err := committed()
			return n >= want, fmt.Sprintf("%d of %d records committed (%v)", n, want, err)
		}, explain)
	}
	live := map[string]bool{}
	start := func(name string) *proc {
		log := filepath.Join(dir, name+".log")
		logs = append(logs, log)
		live[log] = true
		return &proc{startLogged(t, log, bin, env, "run", "-config", cfg)}
	}
	// settle waits until the group is stable with both members and every
	// partition has read its watermarks: the faults below hit a running
	// generation, not one still starting.
	settle := func() {
		t.Helper()
		waitMembers(t, broker.Addrs[0], "cluster", 2)
		waitSeen(t, 120*time.Second, "every partition owned and ready", func() (bool, string) {
			var ls []string
			for l, ok := range live {
				if ok {
					ls = append(ls, l)
				}
			}
			return settled(ls, 8)
		}, explain)
	}
	a, b := start("a1"), start("b")
	settle()
	caughtUp(120*time.Second, "first third stored")

	switch layout {
	case "2x1":
		a.kill()
		live[logs[0]] = false
		produce(2)
		a = start("a2")
		caughtUp(120*time.Second, "second third stored after a member was killed and replaced")
		settle()
		errsBefore := metricSum(logs[len(logs)-1], "logpipe_insert_errors_total") + metricSum(logs[1], "logpipe_insert_errors_total")
		if err := s2.Stop(); err != nil {
			t.Fatal(err)
		}
		// Shard 2 is down while the last third arrives: inserts fail and
		// are retried (on 18.16 a synchronous Distributed insert connects
		// to every shard, so the partitions bound for shard 1 wait too).
		produce(3)
		waitSeen(t, 120*time.Second, "inserts failing while shard 2 is down", func() (bool, string) {
			n := metricSum(logs[len(logs)-1], "logpipe_insert_errors_total") + metricSum(logs[1], "logpipe_insert_errors_total")
			return n > errsBefore, fmt.Sprintf("%v failed insert attempts, %v before", n, errsBefore)
		}, explain)
		time.Sleep(5 * time.Second)
		if err := s2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		caughtUp(240*time.Second, "every record stored after shard 2 came back")
		t.Logf("2x1: shard 2 down for a while: every record stored %s after it came back", time.Since(restarted).Round(100*time.Millisecond))
	case "1x2":
		if err := s1.Stop(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		// Writes go on through the other replica: every record produced
		// now is stored and committed while s1 is down.
		produce(2)
		caughtUp(120*time.Second, "second third stored through replica s2 while s1 is down")
		t.Logf("1x2: replica s1 down, the second third stored through s2 %s after the stop", time.Since(stopped).Round(100*time.Millisecond))
		// A consumer dies while the replica is down: its partitions may
		// have to wait for the replica (parts only it holds), never be
		// stored twice.
		a.kill()
		produce(3)
		a = start("a2")
		waitMembers(t, broker.Addrs[0], "cluster", 2)
		if err := s1.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp(240*time.Second, "every record committed")
	waitSeen(t, 240*time.Second, "every record stored", func() (bool, string) {
		n, d, err := stored()
		return n >= records, fmt.Sprintf("%d rows, %d distinct (%v)", n, d, err)
	}, explain)
	time.Sleep(time.Second) // anything duplicated would land now
	a.stop(t)
	b.stop(t)
	// A replica that was down answers reads as soon as it is up, with
	// what it has fetched so far: let replication finish before checking
	// answers that may come from either replica.
	waitSeen(t, 90*time.Second, "replication queues empty", func() (bool, string) {
		var seen []string
		behind := 0
		for _, s := range c.Servers {
			out, err := s.Query(ctx, "SELECT sum(queue_size) + sum(inserts_in_queue) FROM system.replicas WHERE database = 'logs'")
			if n, _ := strconv.Atoi(strings.TrimSpace(out)); err != nil || n > 0 {
				behind++
			}
			seen = append(seen, fmt.Sprintf("%s: %q %v", s.TCPAddr, strings.TrimSpace(out), err))
		}
		return behind == 0, strings.Join(seen, "; ")
	})
	if layout == "1x2" {
		replicasHoldAll(t, ctx, c, records)
	}
	rows, distinct, err := stored()
	if err != nil {
		t.Fatal(err)
	}
	if rows != records || distinct != records {
		t.Fatalf("%s: %d rows, %d distinct offsets through the Distributed tables; want %d each (lost %d, duplicated %d)",
			layout, rows, distinct, records, records-distinct, rows-distinct)
	}

	local := func(s *chserver.Server, q string) string {
		out, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return strings.TrimSpace(out)
	}
	const localCount = "SELECT (SELECT count() FROM logs.cdn_requests_local) + (SELECT count() FROM logs.job_events_local) + (SELECT count() FROM logs.ingest_errors_local)"
	switch layout {
	case "2x1":
		// Each batch is one partition's, sharded by partition: a Kafka
		// partition's rows live on exactly one shard.
		const parts = "SELECT arrayStringConcat(groupArray(p), ' ') FROM (SELECT DISTINCT concat(toString(_topic), '/', toString(_partition)) AS p FROM (SELECT _topic, _partition FROM logs.cdn_requests_local UNION ALL SELECT _topic, _partition FROM logs.job_events_local) ORDER BY p)"
		p1, p2 := strings.Fields(local(s1, parts)), strings.Fields(local(s2, parts))
		if len(p1) == 0 || len(p2) == 0 {
			t.Errorf("shards hold partitions %v and %v: want both some", p1, p2)
		}
		all := append(append([]string{}, p1...), p2...)
		sort.Strings(all)
		for i := 1; i < len(all); i++ {
			if all[i] == all[i-1] {
				t.Errorf("partition %s has rows on both shards", all[i])
			}
		}
		n1, _ := strconv.Atoi(local(s1, localCount))
		n2, _ := strconv.Atoi(local(s2, localCount))
		if n1+n2 != records {
			t.Errorf("shards hold %d + %d rows, want %d in all", n1, n2, records)
		}
	case "1x2":
		// The replica that was down catches up by replication.
		deadline := time.Now().Add(60 * time.Second)
		for local(s1, localCount) != strconv.Itoa(records) && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
		if n1, n2 := local(s1, localCount), local(s2, localCount); n1 != strconv.Itoa(records) || n2 != strconv.Itoa(records) {
			t.Errorf("replicas hold %s and %s rows, want %d each", n1, n2, records)
		}
	}
	// The run view, from either server.
	for i, s := range c.Servers {
		if got := local(s, "SELECT count() FROM logs.job_runs"); got != strconv.Itoa(len(jobs)) {
			t.Errorf("job_runs through server %d: %s runs, want %d", i+1, got, len(jobs))
		}
	}
	// Every catalogue query runs on the cluster, over the Distributed
	// tables and views (a subquery on a Distributed table inside a
	// distributed query is refused by default: none may need that).
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		params := map[string]string{}
		for _, p := range q.Params {
			if p.Default == "" {
				params[p.Name] = map[string]string{"String": "j1", "DateTime": "2026-11-19 00:00:00", "Date": "2026-11-19", "UInt64": "1", "Int64": "1", "Float64": "1"}[p.Type]
			}
		}
		if _, ok := params["until"]; ok {
			params["until"] = "2026-11-21 00:00:00"
		}
		sql, err := q.Render(params)
		if err == nil {
			_, _, err = conn.Query(ctx, sql)
		}
		if err != nil {
			t.Errorf("catalogue query %s on the cluster: %v", q.Name, err)
		}
		if len(q.Lets) > 0 { // and as logpipe query runs it: the lets first
			sql, err := q.RenderWith(ctx, conn.Scalar, params)
			if err == nil {
				_, _, err = conn.Query(ctx, sql)
			}
			if err != nil {
				t.Errorf("catalogue query %s on the cluster, lets first: %v", q.Name, err)
			}
		}
	}
	// The warehouse commands on a cluster: tables shows the local parts;
	// retire refuses a table the catalogue queries above just read,
	// with the evidence gathered from every server.
	if out, err := runLogged(ctx, bin, env, "tables", "-config", cfg); err != nil || !strings.Contains(out, "cdn_requests_local") || !strings.Contains(out, "Distributed") {
		t.Errorf("tables on the cluster: %v\n%s", err, out)
	}
	if out, err := runLogged(ctx, bin, env, "retire", "-config", cfg, "cdn_config_changes"); err == nil || !strings.Contains(out, "refused, it was read within") {
		t.Errorf("retire on the cluster: want a refusal, got %v\n%s", err, out)
	}

	// A retried INSERT sends the identical block: when the first attempt
	// did land (a timeout after the server stored it), the replicated
	// table drops the second.
	b1 := tables.NewJobEvents()
	for i := range 50 {
		b1.Append(&transform.JobEvent{Time: time.Date(2026, 11, 21, 3, 0, i, 0, time.UTC), Job: "retry", RunID: "r", Event: "heartbeat"},
			tables.Meta{Topic: "retry", Partition: 0, Offset: int64(i)}, time.Date(2026, 11, 21, 3, 1, 0, 0, time.UTC), 10)
	}
	wconn, err := chclient.Open(ctx, chclient.Options{Addr: []string{s1.TCPAddr, s2.TCPAddr}, Database: "logs", Cluster: "logpipe"})
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close()
	w := sink.NewWriter(wconn, slog.New(slog.DiscardHandler))
	for range 2 {
		if err := w.Insert(ctx, b1); err != nil {
			t.Fatal(err)
		}
	}
	// Either replica may answer: wait until the block is everywhere.
	retried := func() string {
		r, err := conn.QueryStrings(ctx, "SELECT toString(count()) FROM job_events WHERE job = 'retry'")
		if err != nil {
			return err.Error()
		}
		return r[0][0]
	}
	for deadline := time.Now().Add(30 * time.Second); retried() != "50" && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	for i := 0; i < 4; i++ { // a few reads, landing on either replica
		if got := retried(); got != "50" {
			t.Errorf("the same block inserted twice: %s rows, want 50 (de-duplicated)", got)
			break
		}
	}
	// The fence on the cluster: written on every server, checked by the
	// replica of the partition's shard that stores the batch.
	for p := int32(0); p < 4; p++ {
		fb := func(off int64) *tables.IngestErrors {
			b := tables.NewIngestErrors()
			b.Append("s", "f", 1, "fence", []byte("x"), 1, tables.Meta{Topic: "fence", Partition: p, Offset: off}, time.Now().UTC())
			return b
		}
		e1, err := checkpoint.New(wconn).Fence(ctx, "fence", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.InsertFenced(ctx, fb(0), "", checkpoint.Fence{Topic: "fence", Partition: p, Epoch: e1}); err != nil {
			t.Fatalf("fenced insert into partition %d: %v", p, err)
		}
		e2, err := checkpoint.New(wconn).Fence(ctx, "fence", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.InsertFenced(ctx, fb(1), "", checkpoint.Fence{Topic: "fence", Partition: p, Epoch: e1}); !errors.Is(err, checkpoint.ErrFenced) {
			t.Errorf("partition %d: insert with the epoch before the last fence: %v, want ErrFenced", p, err)
		}
		if err := w.InsertFenced(ctx, fb(2), "", checkpoint.Fence{Topic: "fence", Partition: p, Epoch: e2}); err != nil {
			t.Fatalf("fenced insert into partition %d: %v", p, err)
		}
	}
	for i, s := range c.Servers {
		// Either replica answers; wait for replication to bring the rows.
		q := "SELECT arrayStringConcat(groupArray(toString(_offset)), ',') FROM (SELECT _offset FROM logs.ingest_errors WHERE _topic = 'fence' GROUP BY _partition, _offset ORDER BY _partition, _offset)"
		got := local(s, q)
		for deadline := time.Now().Add(30 * time.Second); got != "0,2,0,2,0,2,0,2" && time.Now().Before(deadline); got = local(s, q) {
			time.Sleep(200 * time.Millisecond)
		}
		if got != "0,2,0,2,0,2,0,2" {
			t.Errorf("offsets per partition stored through the fence, read through server %d: %s, want 0,2 in each of 4", i+1, got)
		}
		if n := local(s, "SELECT count() FROM logs.ingest_errors WHERE _topic = 'fence'"); n != "8" {
			t.Errorf("rows stored through the fence, read through server %d: %s, want 8", i+1, n)
		}
	}
	t.Logf("%s: %d records through 2 consumers, a kill -9 and a server stop: %d rows, 0 lost, 0 duplicated", layout, records, rows)
}

// waitMembers waits until the consumer group is stable with n members, so
// that what a test breaks next happens to a settled group.
func waitMembers(t *testing.T, broker, group string, n int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 5 * time.Second}
	waitFor(t, 120*time.Second, func() bool {
		r, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		return err == nil && len(r.Groups) == 1 && r.Groups[0].GroupState == "Stable" && len(r.Groups[0].Members) == n
	})
}

// proc is a logpipe process started by a test.
type proc struct{ cmd *exec.Cmd }

// kill ends it with SIGKILL, as a crash would.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// stop ends it with SIGTERM and checks that it exits 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("logpipe after SIGTERM: %v", err)
	}
}

// runLogged runs the logpipe binary to the end and returns its output.
func runLogged(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
