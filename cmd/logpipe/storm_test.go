package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// stormFor is how long TestRebalanceStorm keeps killing consumers: 30 s in
// make test, LOGPIPE_SOAK_STORM (longer in make soak) otherwise.
func stormFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LOGPIPE_SOAK_STORM")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

// TestRebalanceStorm runs three logpipe processes in one group and, for a
// while, kills one of them (SIGKILL, in turn) and starts it again as soon
// as the group has settled after the previous kill, while records keep
// arriving: every kill and every restart moves partitions. At the end every
// record is stored exactly once.
func TestRebalanceStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	storm := stormFor()
	srv := chserver.Shared(t)
	bin := buildBinary(t)
	// About 500 records/s flow during the storm, and more are left for
	// after it.
	records := max(30_000, int(storm.Seconds())*800)
	topics := []string{"cdn", "jobs"}
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 4, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	ctx := context.Background()
	cdn, jobs := testRecords(records)
	// Records flow during the whole storm: a producer sends a slice every
	// 100 ms (about 500 records/s) until the storm ends, the rest after.
	var mu sync.Mutex
	nc, nj := 0, 0
	produced := func() int { mu.Lock(); defer mu.Unlock(); return nc + nj }
	produce := func(n int) error { // the next n records of each topic's share, all that is left when n is 0
		mu.Lock()
		defer mu.Unlock()
		c, j := len(cdn), len(jobs)
		if nc == c && nj == j {
			return nil
		}
		if n > 0 {
			c, j = min(nc+n*3/4, len(cdn)), min(nj+n/4, len(jobs))
		}
		if err := broker.Produce(ctx, "cdn", cdn[nc:c]...); err != nil {
			return err
		}
		if err := broker.Produce(ctx, "jobs", jobs[nj:j]...); err != nil {
			return err
		}
		nc, nj = c, j
		return nil
	}
	if err := produce(records / 10); err != nil {
		t.Fatal(err)
	}

	b := make([]byte, 4)
	rand.Read(b)
	db := "storm_" + hex.EncodeToString(b)
	dir := t.TempDir()
	if d := os.Getenv("LOGPIPE_TEST_LOGS"); d != "" {
		dir = d // keep the processes' logs
	}
	cfg := filepath.Join(dir, "storm.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: storm, session_timeout: 6s, rebalance_timeout: 10s}
clickhouse: {addr: [%q], database: %s}
batch: {max_rows: 1000, max_age: 200ms}
http: {listen: "127.0.0.1:0"}
streams:
  - {name: cdn, topic: cdn, format: fastly-json}
  - {name: jobs, topic: jobs, format: logpipe-job}
`, broker.Addrs[0], srv.TCPAddr, db)), 0o600)
	env := []string{"LOGPIPE_HASH_KEY=storm-test-key-0123456789", "LOGPIPE_LOG_LEVEL=info"}
	if err := chclient.CreateDatabase(ctx, chclient.Options{Addr: []string{srv.TCPAddr}, Database: db}); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, srv.TCPAddr, db)
	if out, err := runLogged(ctx, bin, env, "migrate", "-config", cfg); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	stored := func() (rows, distinct int, err error) {
		r, err := conn.QueryStrings(ctx, "SELECT toString((SELECT count() FROM cdn_requests) + (SELECT count() FROM job_events) + (SELECT count() FROM ingest_errors)), toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests) + (SELECT uniqExact(_partition, _offset) FROM job_events) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors))")
		if err != nil {
			return -1, -1, err
		}
		rows, _ = strconv.Atoi(r[0][0])
		distinct, _ = strconv.Atoi(r[0][1])
		return rows, distinct, nil
	}
	committed := func() (int64, error) { return committedOffsets(ctx, broker.Addrs[0], "storm", topics, 4) }

	// Three members; members[i] is the process in slot i, logs[i] its
	// current log.
	var members [3]*proc
	var logs [3]string
	runs := 0
	start := func(i int) {
		runs++
		logs[i] = filepath.Join(dir, fmt.Sprintf("storm%d-run%d.log", i, runs))
		members[i] = &proc{startLogged(t, logs[i], bin, env, "run", "-config", cfg)}
	}
	defer func() {
		for _, m := range members {
			if m != nil && m.cmd.ProcessState == nil {
				m.kill()
			}
		}
	}()
	explain := func() string {
		var s strings.Builder
		n, err := committed()
		rows, distinct, serr := stored()
		fmt.Fprintf(&s, "committed %d (%v) of %d produced; stored %d rows, %d distinct (%v)\n", n, err, produced(), rows, distinct, serr)
		for _, l := range logs {
			s.WriteString(processMetrics(l))
		}
		s.WriteString(partitionReport(ctx, conn, broker.Addrs[0], "storm"))
		return s.String()
	}
	// joined waits until the process in slot i has joined a generation and
	// the group is stable with three members. A member killed in the
	// middle of joining can linger in kfake's group forever (a real broker
	// expires it), so a kill waits for this; and a restarted member's
	// generation can start only once the killed one has left.
	joined := func(i int) {
		t.Helper()
		waitSeen(t, 120*time.Second, fmt.Sprintf("slot %d joined", i), func() (bool, string) {
			b, _ := os.ReadFile(logs[i])
			n := strings.Count(string(b), "generation started")
			return n > 0, fmt.Sprintf("%d generations started in %s", n, logs[i])
		}, explain)
		waitMembers(t, broker.Addrs[0], "storm", 3)
	}
	for i := range members {
		start(i)
	}
	for i := range members {
		joined(i)
	}

	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("LOGPIPE_STORM_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("kill moments from seed %d (LOGPIPE_STORM_SEED=%d replays them)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 11))
	began := time.Now()
	stop, flowed := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				flowed <- nil
				return
			case <-tick.C:
				if err := produce(50); err != nil {
					flowed <- err
					return
				}
			}
		}
	}()
	kills := 0
	var stormEnd time.Time
	for {
		// The members store some records after each restart before the
		// next kill: the kill lands on a group at work.
		before, _ := committed()
		waitSeen(t, 120*time.Second, "progress before the kill", func() (bool, string) {
			n, err := committed()
			return n > before, fmt.Sprintf("%d committed, %d before (%v)", n, before, err)
		}, explain)
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		i := kills % 3
		members[i].kill()
		kills++
		n, _ := committed()
		t.Logf("kill %d (slot %d) at %s: %d of %d produced committed", kills, i, time.Since(began).Round(100*time.Millisecond), n, produced())
		start(i)
		if time.Since(began) >= storm {
			stormEnd = time.Now()
			break
		}
		joined(i)
	}
	close(stop)
	if err := <-flowed; err != nil {
		t.Fatal(err)
	}
	if err := produce(0); err != nil {
		t.Fatal(err)
	}
	want := int64(produced())
	waitSeen(t, 240*time.Second, "every record committed after the storm", func() (bool, string) {
		n, err := committed()
		return n >= want, fmt.Sprintf("%d of %d committed (%v)", n, want, err)
	}, explain)
	took := time.Since(stormEnd) // from the last kill and restart
	joined((kills - 1) % 3)      // the last one started: stopped after it joined, not mid-join
	// A graceful stop of every member: nothing is in flight when counting.
	for _, m := range members {
		m.stop(t)
	}
	rows, distinct, err := stored()
	if err != nil {
		t.Fatal(err)
	}
	if rows != records || distinct != records {
		t.Fatalf("after %d kills: %d rows, %d distinct offsets; want %d each (lost %d, duplicated %d)\n%s",
			kills, rows, distinct, records, records-distinct, rows-distinct, explain())
	}
	if kills < 3 {
		t.Errorf("only %d kills in %s: the storm did not storm", kills, storm)
	}
	t.Logf("rebalance storm: %d kills in %s among 3 members, %d records: every record stored %s after the last restart; %d rows, 0 lost, 0 duplicated",
		kills, stormEnd.Sub(began).Round(100*time.Millisecond), records, took.Round(100*time.Millisecond), rows)
}
