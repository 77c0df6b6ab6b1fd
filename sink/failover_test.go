package sink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// TestInsertFailsOverFromHungReplica: a pool to two servers inserts
// through the first; the first is then hung (SIGSTOP, connections stay
// open). The attempt under way times out, the pool's other connections to
// the hung server are dropped, and the retry goes to the second server:
// the writer stores the batch within about one attempt timeout.
func TestInsertFailsOverFromHungReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	hung, other := chserver.Private(t), chserver.Shared(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	db := "failover_" + hex.EncodeToString(b)
	for _, s := range []*chserver.Server{hung, other} {
		o := chclient.Options{Addr: []string{s.TCPAddr}, Database: db}
		if err := chclient.CreateDatabase(ctx, o); err != nil {
			t.Fatal(err)
		}
		c, err := chclient.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := schemas.Migrate(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	t.Cleanup(func() { other.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	const timeout = 5 * time.Second
	conn, err := chclient.Open(ctx, chclient.Options{Addr: []string{hung.TCPAddr, other.TCPAddr}, Database: db, DialTimeout: 2 * time.Second, ReadTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := sink.NewWriter(conn, slog.New(slog.DiscardHandler))
	w.Timeout, w.RetryMax = timeout, time.Second
	batch := func(job string) *tables.JobEvents {
		jb := tables.NewJobEvents()
		for i := range 100 {
			jb.Append(&transform.JobEvent{Time: time.Date(2026, 11, 21, 3, 0, i%60, 0, time.UTC), Job: job, RunID: "r", Event: "heartbeat"},
				tables.Meta{Topic: "t", Partition: 0, Offset: int64(i)}, time.Now(), 10)
		}
		return jb
	}
	// Fill the pool with connections to the first server.
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- w.Insert(ctx, batch("warm"+string(rune('a'+i)))) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := hung.Query(ctx, "SELECT count() FROM "+db+".job_events"); strings.TrimSpace(n) != "400" {
		t.Fatalf("warm-up rows on the first server: %q, want 400", n)
	}

	pid := hung.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	attempts := 0
	w.Hooks = append(w.Hooks, sink.InsertFunc(func(string, int, time.Duration, error) { attempts++ }))
	began := time.Now()
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := w.Insert(ictx, batch("after")); err != nil {
		t.Fatalf("insert with the first server hung: %v after %s, %d attempts", err, time.Since(began), attempts)
	}
	took := time.Since(began)
	out, err := other.Query(ctx, "SELECT count() FROM "+db+".job_events WHERE job = 'after'")
	if err != nil || strings.TrimSpace(out) != "100" {
		t.Errorf("rows on the second server: %q %v, want 100", out, err)
	}
	// One attempt on the hung server times out; the retry must not pick
	// another hung connection from the pool.
	if took > 2*timeout+3*time.Second || attempts > 2 {
		t.Errorf("stored after %s and %d attempts; want within one attempt timeout (%s) and a retry", took, attempts, timeout)
	}
	t.Logf("one server hung: batch stored through the other after %s, %d attempts", took.Round(100*time.Millisecond), attempts)
}
