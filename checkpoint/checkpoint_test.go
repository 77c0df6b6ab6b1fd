package checkpoint_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

func TestMain(m *testing.M) { chserver.Main(m) }

var T = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// freshDB is a new database with every migration applied on the shared
// 18.16 server.
func freshDB(t *testing.T) *chclient.Conn { return chtest.Migrated(t, "checkpoint") }

func cdn(topic string, partition int32, offsets ...int64) *tables.CDNRequests {
	b := tables.NewCDNRequests()
	for _, o := range offsets {
		b.Append(&transform.CDNRequest{Time: T, Host: "h", Path: "/p", Status: 200, CacheStatus: "hit"}, tables.Meta{Topic: topic, Partition: partition, Offset: o}, T, 10)
	}
	return b
}

func TestInsertID(t *testing.T) {
	if got, want := checkpoint.InsertID("cdn_requests", "cdn", 3, 120), "logpipe:cdn:3:cdn_requests:120"; got != want {
		t.Errorf("InsertID = %s, want %s", got, want)
	}
	p := checkpoint.Partition{Topic: "t", Partition: 1, Epoch: 7, Watermarks: map[string]int64{"cdn_requests": 10}}
	for _, tc := range []struct {
		table  string
		offset int64
		want   bool
	}{{"cdn_requests", 9, true}, {"cdn_requests", 10, true}, {"cdn_requests", 11, false}, {"job_events", 0, false}} {
		if got := p.Stored(tc.table, tc.offset); got != tc.want {
			t.Errorf("Stored(%s, %d) = %v, want %v", tc.table, tc.offset, got, tc.want)
		}
	}
	if f := p.Fence(); f != (checkpoint.Fence{Topic: "t", Partition: 1, Epoch: 7}) {
		t.Errorf("Fence = %+v", f)
	}
}

// TestFencesAndWatermarks: each fence of a partition is higher than the
// last (high 32 bits one more), a batch is stored only under the current
// one, and the watermarks read back, typed, how far each partition got in
// each table; Acquire does the three steps and keeps an epoch it is given.
func TestFencesAndWatermarks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	ctx := context.Background()
	store := checkpoint.New(conn)
	w := sink.NewWriter(conn, slog.New(slog.DiscardHandler))

	if f, err := store.Fences(ctx, "cdn", 0); err != nil || f != 0 {
		t.Fatalf("fence of a new partition: %d, %v; want 0", f, err)
	}
	if wm, err := store.Watermarks(ctx, "cdn", 0); err != nil || len(wm) != 0 {
		t.Fatalf("watermarks of a new partition: %v, %v; want none", wm, err)
	}
	e1, err := store.Fence(ctx, "cdn", 0)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := store.Fence(ctx, "cdn", 0)
	if err != nil {
		t.Fatal(err)
	}
	if e1>>32 != 1 || e2>>32 != 2 {
		t.Errorf("epochs %x then %x: want high 32 bits 1 then 2", e1, e2)
	}
	if f, err := store.Fences(ctx, "cdn", 0); err != nil || f != e2 {
		t.Errorf("Fences = %x, %v; want %x", f, err, e2)
	}
	err = w.InsertFenced(ctx, cdn("cdn", 0, 0, 1), "", checkpoint.Fence{Topic: "cdn", Partition: 0, Epoch: e1})
	if !errors.Is(err, checkpoint.ErrFenced) {
		t.Fatalf("insert under the older fence: %v, want ErrFenced", err)
	}
	if err := w.InsertFenced(ctx, cdn("cdn", 0, 5, 7, 6), checkpoint.InsertID("cdn_requests", "cdn", 0, 5), checkpoint.Fence{Topic: "cdn", Partition: 0, Epoch: e2}); err != nil {
		t.Fatal(err)
	}
	// Another partition, and a topic whose name needs quoting.
	odd := `it's a \ topic_%`
	e3, err := store.Fence(ctx, odd, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.InsertFenced(ctx, cdn(odd, 0, 41), "", checkpoint.Fence{Topic: odd, Partition: 0, Epoch: e3}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic string
		want  int64
	}{{"cdn", 7}, {odd, 41}} {
		wm, err := store.Watermarks(ctx, tc.topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(wm) != 1 || wm["cdn_requests"] != tc.want {
			t.Errorf("watermarks of %q/0 = %v, want cdn_requests: %d", tc.topic, wm, tc.want)
		}
	}

	p, err := store.Acquire(ctx, "cdn", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch>>32 != 3 || p.Watermarks["cdn_requests"] != 7 || !p.Stored("cdn_requests", 7) || p.Stored("cdn_requests", 8) {
		t.Errorf("Acquire = %+v, want epoch 3<<32|x and cdn_requests at 7", p)
	}
	again, err := store.Acquire(ctx, "cdn", 0, p.Epoch)
	if err != nil || again.Epoch != p.Epoch {
		t.Errorf("Acquire with epoch %x = %x, %v; want it kept", p.Epoch, again.Epoch, err)
	}
	if f, _ := store.Fences(ctx, "cdn", 0); f != p.Epoch {
		t.Errorf("fence after Acquire with an epoch: %x, want %x (no new fence)", f, p.Epoch)
	}
}

// TestWaitInserts: an INSERT-like query of a partition (named by its query
// id) holds WaitInserts for that partition only; past the timeout it is
// killed and WaitInserts returns once it is gone.
func TestWaitInserts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	conn := freshDB(t)
	ctx := context.Background()
	store := checkpoint.New(conn)
	topic := "wait_" + conn.Database() // the server is shared with other tests
	id := checkpoint.InsertID("cdn_requests", topic, 0, 100)
	done := make(chan error, 1)
	go func() {
		qctx := clickhouse.Context(ctx, clickhouse.WithQueryID(id), clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 1}))
		_, err := chclient.Values[uint8](qctx, conn, "SELECT sleepEachRow(0.5) FROM numbers(240)")
		done <- err
	}()
	// Wait until the server runs it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := chclient.Value[uint64](ctx, conn, "SELECT count() FROM system.processes WHERE query_id = "+chclient.String(id))
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s not in system.processes after 60 s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Partition 1 of the topic has nothing running.
	if err := store.WaitInserts(ctx, topic, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the query of partition 0 ended while waiting for partition 1: %v", err)
	default:
	}

	// Partition 0: killed after the timeout (the query would run 2 min).
	began := time.Now()
	if err := store.WaitInserts(ctx, topic, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the query of partition 0 ended without error; want it killed")
		}
		t.Logf("waited %s; the query ended with: %v", time.Since(began).Round(time.Millisecond), err)
	case <-time.After(60 * time.Second):
		t.Fatal("WaitInserts returned but the query still runs 60 s later")
	}
}
