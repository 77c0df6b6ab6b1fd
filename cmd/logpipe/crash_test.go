package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// TestCrashLoop kills logpipe with SIGKILL at random moments while it
// ingests, restarts it each time, and checks that at the end every record
// is stored exactly once: offsets are committed only after inserts, and
// the watermarks skip what an uncommitted insert already stored.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	records, kills := 60_000, 5
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_SOAK_RECORDS")); v > 0 {
		records = v
	}
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_SOAK_KILLS")); v > 0 {
		kills = v
	}
	srv := chserver.Shared(t)
	bin := buildBinary(t)
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 3, Topics: []string{"cdn", "jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	ctx := context.Background()
	cdn, jobs := testRecords(records)
	if err := broker.Produce(ctx, "cdn", cdn...); err != nil {
		t.Fatal(err)
	}
	if err := broker.Produce(ctx, "jobs", jobs...); err != nil {
		t.Fatal(err)
	}

	b := make([]byte, 4)
	rand.Read(b)
	db := "crash_" + hex.EncodeToString(b)
	cfg := filepath.Join(t.TempDir(), "logpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: crash, session_timeout: 6s, rebalance_timeout: 10s}
clickhouse: {addr: [%q], database: %s}
batch: {max_rows: 1500, max_age: 200ms}
streams:
  - {name: cdn, topic: cdn, format: fastly-json}
  - {name: jobs, topic: jobs, format: logpipe-job}
`, broker.Addrs[0], srv.TCPAddr, db)), 0o600)
	logs := t.TempDir()
	if d := os.Getenv("LOGPIPE_TEST_LOGS"); d != "" {
		logs = d // keep the processes' logs
	}
	start := func(k int) *exec.Cmd {
		return startLogged(t, filepath.Join(logs, fmt.Sprintf("run%d.log", k)), bin, []string{"LOGPIPE_HASH_KEY=crash-test-key-0123456789", "LOGPIPE_LOG_LEVEL=" + cmp.Or(os.Getenv("LOGPIPE_TEST_LOG_LEVEL"), "info")}, "run", "-config", cfg, "-migrate")
	}
	if err := chclient.CreateDatabase(ctx, chclient.Options{Addr: []string{srv.TCPAddr}, Database: db}); err != nil {
		t.Fatal(err)
	}
	conn := openDB(t, srv.TCPAddr, db)
	stored := func() (rows, distinct int) {
		r, err := conn.QueryStrings(ctx, "SELECT toString((SELECT count() FROM cdn_requests) + (SELECT count() FROM job_events) + (SELECT count() FROM ingest_errors)), toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests) + (SELECT uniqExact(_partition, _offset) FROM job_events) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors))")
		if err != nil {
			return -1, -1
		}
		rows, _ = strconv.Atoi(r[0][0])
		distinct, _ = strconv.Atoi(r[0][1])
		return rows, distinct
	}
	// The kill moments are random; the seed is logged so that a failing
	// run can be replayed with LOGPIPE_CRASH_SEED.
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("LOGPIPE_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("kill moments from seed %d (LOGPIPE_CRASH_SEED=%d replays them)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 7))
	for k := 0; k < kills; k++ {
		cmd := start(k)
		// Let it join the group and store something new, then kill it at
		// a random moment. (Killed in the middle of joining, a member can
		// linger in kfake's group with partitions assigned and never
		// expire, which a real broker does not do: the test waits for the
		// join to complete.)
		waitFor(t, 120*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(logs, fmt.Sprintf("run%d.log", k)))
			return bytes.Contains(b, []byte("generation started"))
		})
		before, _ := stored()
		waitFor(t, 120*time.Second, func() bool { n, _ := stored(); return n > before || n >= records })
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n, d := stored()
		t.Logf("kill %d: %d rows stored, %d distinct offsets", k+1, n, d)
	}
	cmd := start(kills)
	for deadline := time.Now().Add(240 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n, _ := stored(); n >= records {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every record stored within 240 s after the last restart; per partition:\n%s", partitionReport(ctx, conn, broker.Addrs[0], "crash"))
		}
	}
	time.Sleep(time.Second) // anything duplicated would land now
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	rows, distinct := stored()
	if rows != records || distinct != records {
		t.Fatalf("after %d kills: %d rows, %d distinct offsets; want %d each (lost %d, duplicated %d)",
			kills, rows, distinct, records, records-distinct, rows-distinct)
	}
	for _, tbl := range []string{"cdn_requests", "ingest_errors"} {
		r, _ := conn.QueryStrings(ctx, "SELECT toString(count()) FROM "+tbl+" WHERE position(toString(tuple(*)), '192.0.2.') > 0")
		if r[0][0] != "0" {
			t.Errorf("%s holds client IPs in clear", tbl)
		}
	}
	t.Logf("crash loop: %d records, %d kills, %d rows stored, 0 lost, 0 duplicated", records, kills, rows)
}

// partitionReport tells, per Kafka partition, what ClickHouse stores of it
// (rows, highest offset, watermarks) and where the group's committed offset
// and the partition's end are: what a stuck or lossy run needs explained.
func partitionReport(ctx context.Context, conn *chclient.Conn, broker, group string) string {
	var b strings.Builder
	rows, err := conn.QueryStrings(ctx, `SELECT _topic, toString(_partition), toString(count()), toString(max(_offset)) FROM
		(SELECT _topic, _partition, _offset FROM cdn_requests UNION ALL SELECT _topic, _partition, _offset FROM job_events UNION ALL SELECT _topic, _partition, _offset FROM ingest_errors)
		GROUP BY _topic, _partition ORDER BY _topic, _partition`)
	fmt.Fprintf(&b, "stored (topic, partition, rows, max offset): %v %v\n", rows, err)
	rows, err = conn.QueryStrings(ctx, "SELECT target, _topic, toString(_partition), toString(maxMerge(max_offset)) FROM ingest_watermarks GROUP BY target, _topic, _partition ORDER BY 2, 3, 1")
	fmt.Fprintf(&b, "watermarks: %v %v\n", rows, err)
	rows, err = conn.QueryStrings(ctx, "SELECT query_id, toString(elapsed) FROM system.processes WHERE query_id LIKE 'logpipe:%'")
	fmt.Fprintf(&b, "inserts running: %v %v\n", rows, err)
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 5 * time.Second}
	parts := map[string][]int{"cdn": {0, 1, 2}, "jobs": {0, 1, 2}}
	if r, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts}); err != nil {
		fmt.Fprintf(&b, "committed: %v\n", err)
	} else {
		for topic, ps := range r.Topics {
			for _, p := range ps {
				fmt.Fprintf(&b, "committed %s/%d: %d\n", topic, p.Partition, p.CommittedOffset)
			}
		}
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for topic, ps := range parts {
		for _, p := range ps {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	if r, err := client.ListOffsets(ctx, req); err != nil {
		fmt.Fprintf(&b, "end offsets: %v\n", err)
	} else {
		for topic, ps := range r.Topics {
			for _, p := range ps {
				fmt.Fprintf(&b, "end %s/%d: %d\n", topic, p.Partition, p.LastOffset)
			}
		}
	}
	return b.String()
}

// testRecords returns n records spread over a CDN topic (Fastly JSON, one
// in 997 garbage for the dead-letter table) and a job topic (one run per
// record), keyed so that they spread over partitions.
func testRecords(n int) (cdn, jobs []kafka.Message) {
	for i := 0; i < n; i++ {
		if i%4 == 0 {
			jobs = append(jobs, kafka.Message{Key: []byte(fmt.Sprint(i % 13)), Value: []byte(fmt.Sprintf(
				`{"time":"2026-11-20T01:%02d:%02dZ","job":"j%d","run_id":"r%d","event":"started"}`, i/60%60, i%60, i%10, i))})
			continue
		}
		v := fmt.Sprintf(`{"timestamp":"2026-11-20T02:%02d:%02dZ","url":"/items/%d","response_status":200,"response_state":"HIT","client_ip":"192.0.2.%d"}`, i/60%60, i%60, i, i%200)
		if i%997 == 0 {
			v = "garbage " + fmt.Sprint(i)
		}
		cdn = append(cdn, kafka.Message{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(v)})
	}
	return cdn, jobs
}
