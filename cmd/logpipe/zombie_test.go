package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/kafkabroker"
)

// zombieRecords is how many CDN records each zombie test stores
// (LOGPIPE_ZOMBIE_RECORDS for make soak).
func zombieRecords() int {
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_ZOMBIE_RECORDS")); v > 0 {
		return v
	}
	return 4000
}

// zombieRuns is how many times make soak repeats each zombie scenario.
func zombieRuns() int {
	if v, _ := strconv.Atoi(os.Getenv("LOGPIPE_ZOMBIE_RUNS")); v > 0 {
		return v
	}
	return 1
}

// zombieEnv is one zombie scenario: a kfake broker with a 4-partition CDN
// topic holding n records (one in 997 garbage, for ingest_errors), a
// fresh database, and the logpipe binary run as members of one group.
type zombieEnv struct {
	t      *testing.T
	srv    *chserver.Server
	bin    string
	broker *kafkabroker.Broker
	conn   *chclient.Conn
	db     string
	n      int
	logs   string
	procs  []*exec.Cmd
}

func newZombieEnv(t *testing.T, bin string) *zombieEnv {
	t.Helper()
	srv := chserver.Shared(t)
	broker, err := kafkabroker.Start(kafkabroker.Options{Partitions: 4, Topics: []string{"cdn"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	n := zombieRecords()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := fmt.Sprintf(`{"timestamp":"2026-11-20T02:%02d:%02dZ","url":"/items/%d","response_status":200,"response_state":"HIT","client_ip":"192.0.2.%d"}`, i/60%60, i%60, i, i%200)
		if i%997 == 0 {
			v = "garbage " + fmt.Sprint(i)
		}
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(v)}
	}
	if err := broker.Produce(context.Background(), "cdn", msgs...); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	e := &zombieEnv{t: t, srv: srv, bin: bin, broker: broker, db: "zombie_" + hex.EncodeToString(b), n: n, logs: t.TempDir()}
	if d := os.Getenv("LOGPIPE_TEST_LOGS"); d != "" {
		e.logs = d
	}
	ctx := context.Background()
	if err := chclient.CreateDatabase(ctx, chclient.Options{Addr: []string{srv.TCPAddr}, Database: e.db}); err != nil {
		t.Fatal(err)
	}
	// Migrated once, before any member starts (members run without
	// -migrate, so none of them is busy with DDL when the test acts).
	if out, err := exec.Command(bin, "migrate", "-config", e.config("migrate", srv.TCPAddr, "1s", "")).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	e.conn = openDB(t, srv.TCPAddr, e.db)
	t.Cleanup(func() {
		for _, p := range e.procs {
			if p.ProcessState == nil {
				p.Process.Signal(syscall.SIGCONT)
			}
		}
		if !t.Failed() {
			e.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+e.db)
		}
	})
	return e
}

// config writes a member's config: ClickHouse at chAddr, batches flushed
// after maxAge (never by size), metrics on listen if set.
func (e *zombieEnv) config(name, chAddr, maxAge, listen string) string {
	http := ""
	if listen != "" {
		http = fmt.Sprintf("http: {listen: %q}\n", listen)
	}
	p := filepath.Join(e.logs, name+".yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`
kafka: {brokers: [%q], group: zombie, session_timeout: 6s, rebalance_timeout: 10s}
clickhouse: {addr: [%q], database: %s}
batch: {max_rows: 1000000, max_bytes: 1073741824, max_age: %s}
hash: {key: zombie-test-key-0123456789abcdef}
streams: [{name: cdn, topic: cdn, format: fastly-json}]
%s`, e.broker.Addrs[0], chAddr, e.db, maxAge, http)), 0o600)
	return p
}

// start runs a member; its log is name.log.
func (e *zombieEnv) start(name, chAddr, maxAge, listen string) *exec.Cmd {
	cmd := startLogged(e.t, filepath.Join(e.logs, name+".log"), e.bin, []string{"LOGPIPE_LOG_LEVEL=info"}, "run", "-config", e.config(name, chAddr, maxAge, listen))
	e.procs = append(e.procs, cmd)
	return cmd
}

// metricsListen waits until process name logged where it serves /metrics
// (http.listen 127.0.0.1:0: the kernel picks the port, so none is chosen,
// released and reused by the test).
func (e *zombieEnv) metricsListen(name string) string {
	var addr string
	e.wait(name+" serves metrics", 60*time.Second, func() bool {
		if m := metricsAddr.FindAllStringSubmatch(e.log(name), -1); len(m) > 0 {
			addr = m[len(m)-1][1]
		}
		return addr != ""
	})
	return addr
}

func (e *zombieEnv) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.logs, name+".log"))
	return string(b)
}

// stored counts rows and distinct (partition, offset) pairs over the
// tables a CDN record can land in.
func (e *zombieEnv) stored() (rows, distinct int) {
	r, err := e.conn.QueryStrings(context.Background(), "SELECT toString((SELECT count() FROM cdn_requests) + (SELECT count() FROM ingest_errors)), toString((SELECT uniqExact(_partition, _offset) FROM cdn_requests) + (SELECT uniqExact(_partition, _offset) FROM ingest_errors))")
	if err != nil {
		return -1, -1
	}
	rows, _ = strconv.Atoi(r[0][0])
	distinct, _ = strconv.Atoi(r[0][1])
	return rows, distinct
}

// committed reports whether the group has committed every partition's end.
func (e *zombieEnv) committed() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(e.broker.Addrs[0]), Timeout: 5 * time.Second}
	parts := []int{0, 1, 2, 3}
	r, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "zombie", Topics: map[string][]int{"cdn": parts}})
	if err != nil {
		return false
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics["cdn"] = append(req.Topics["cdn"], kafka.LastOffsetOf(p))
	}
	ends, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false
	}
	end := map[int]int64{}
	for _, p := range ends.Topics["cdn"] {
		end[p.Partition] = p.LastOffset
	}
	n := 0
	for _, p := range r.Topics["cdn"] {
		if p.CommittedOffset != end[p.Partition] {
			return false
		}
		n++
	}
	return n == len(parts)
}

// wait polls ok until it holds, failing after limit with what state()
// describes.
func (e *zombieEnv) wait(what string, limit time.Duration, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			rows, distinct := e.stored()
			e.t.Fatalf("%s: not within %s (stored %d rows, %d distinct offsets of %d records; committed all: %v)\n%s",
				what, limit, rows, distinct, e.n, e.committed(), partitionReport(context.Background(), e.conn, e.broker.Addrs[0], "zombie"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finish waits until every offset is committed, stops every member
// gracefully and checks rows = distinct offsets = records.
func (e *zombieEnv) finish(scenario string) {
	e.t.Helper()
	e.wait("every offset committed", 120*time.Second, e.committed)
	time.Sleep(time.Second) // a duplicate would land now
	for _, p := range e.procs {
		if p.ProcessState == nil {
			p.Process.Signal(syscall.SIGCONT)
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}
	rows, distinct := e.stored()
	if rows != e.n || distinct != e.n {
		e.t.Fatalf("%s: %d rows, %d distinct offsets; want %d each (lost %d, duplicated %d)", scenario, rows, distinct, e.n, e.n-distinct, rows-distinct)
	}
}

// recordsConsumed reads logpipe_records_total from a member's /metrics.
func recordsConsumed(listen string) int {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "logpipe_records_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return -1
}

// zombieOutcome describes from a zombie's log how its stale batches ended.
func zombieOutcome(log string) string {
	return fmt.Sprintf("refused by the fence: %d, dropped as not owner: %d", strings.Count(log, "fenced: the partition has a newer owner"), strings.Count(log, "partition no longer assigned"))
}

// TestZombieFrozenConsumer is the reported case: member A buffers every
// record (max_age 10 s) and is frozen with SIGSTOP; B joins, is given
// every partition once A's session expired, and stores everything; A is
// resumed with its flush overdue. A's stale batches must not be stored
// again: the fence refuses them (or A sees its generation is over first).
func TestZombieFrozenConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	bin := buildBinary(t)
	for run := 0; run < zombieRuns(); run++ {
		e := newZombieEnv(t, bin)
		a := e.start("a", e.srv.TCPAddr, "10s", "127.0.0.1:0")
		listen := e.metricsListen("a")
		e.wait("A consumes every record", 120*time.Second, func() bool { return recordsConsumed(listen) == e.n })
		consumed := time.Now()
		if rows, _ := e.stored(); rows != 0 {
			t.Fatalf("A stored %d rows before its batch was due", rows)
		}
		a.Process.Signal(syscall.SIGSTOP)
		e.start("b", e.srv.TCPAddr, "200ms", "")
		e.wait("B stores every record", 120*time.Second, func() bool { n, _ := e.stored(); return n >= e.n })
		// Resume A with its flush overdue.
		time.Sleep(time.Until(consumed.Add(11 * time.Second)))
		a.Process.Signal(syscall.SIGCONT)
		e.wait("A joins the group again", 120*time.Second, func() bool { return strings.Count(e.log("a"), "generation started") >= 2 })
		e.finish("frozen consumer")
		t.Logf("run %d: %d records, A's stale batches: %s", run+1, e.n, zombieOutcome(e.log("a")))
	}
}

// TestZombiePausedInsert pauses A in the middle of its INSERTs: a proxy
// in front of ClickHouse holds the bytes A sends (the INSERT queries are
// on their way and have not reached the server), and A is frozen. B takes
// over and stores everything. Then the proxy lets A's INSERTs through and
// A is resumed, so they reach the server after B fenced the partitions:
// they must be refused.
func TestZombiePausedInsert(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	bin := buildBinary(t)
	for run := 0; run < zombieRuns(); run++ {
		e := newZombieEnv(t, bin)
		proxy := startHoldProxy(t, e.srv.TCPAddr)
		a := e.start("a", proxy.addr, "10s", "127.0.0.1:0")
		listen := e.metricsListen("a")
		e.wait("A consumes every record", 120*time.Second, func() bool { return recordsConsumed(listen) == e.n })
		proxy.hold()
		if rows, _ := e.stored(); rows != 0 {
			t.Fatalf("A stored %d rows before its batch was due", rows)
		}
		e.wait("A's four INSERTs are on their way", 60*time.Second, func() bool { return proxy.heldInserts() >= 4 })
		a.Process.Signal(syscall.SIGSTOP)
		e.start("b", e.srv.TCPAddr, "200ms", "")
		e.wait("B stores every record", 120*time.Second, func() bool { n, _ := e.stored(); return n >= e.n })
		proxy.release()
		a.Process.Signal(syscall.SIGCONT)
		e.wait("A joins the group again", 120*time.Second, func() bool { return strings.Count(e.log("a"), "generation started") >= 2 })
		e.finish("paused insert")
		t.Logf("run %d: %d records, A's stale batches: %s", run+1, e.n, zombieOutcome(e.log("a")))
	}
}

// holdProxy forwards TCP connections to a ClickHouse server; while held,
// a connection that sends an INSERT query stalls there (a network that
// stops delivering), with the query not yet forwarded, until release.
// Other traffic (new connections' handshakes, reads) flows.
type holdProxy struct {
	addr    string
	mu      sync.Mutex
	cond    *sync.Cond
	held    bool
	inserts int // INSERT queries held so far
}

func startHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{addr: l.Addr().String()}
	p.cond = sync.NewCond(&p.mu)
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		p.release()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, s)
			cmu.Unlock()
			go func() { io.Copy(c, s); c.Close() }()
			go func() {
				buf := make([]byte, 64<<10)
				stuck := false
				for {
					n, err := c.Read(buf)
					if n > 0 {
						p.mu.Lock()
						if p.held && !stuck && bytes.Contains(buf[:n], []byte("INSERT INTO")) {
							stuck = true
							p.inserts++
						}
						for stuck && p.held {
							p.cond.Wait()
						}
						stuck = false
						p.mu.Unlock()
						if _, err := s.Write(buf[:n]); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				s.Close()
			}()
		}
	}()
	return p
}

func (p *holdProxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

func (p *holdProxy) release() {
	p.mu.Lock()
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// heldInserts counts the INSERT queries held.
func (p *holdProxy) heldInserts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inserts
}
