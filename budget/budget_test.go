package budget

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAcquireRelease(t *testing.T) {
	b := New(100)
	a := b.Account()
	ctx := context.Background()
	if err := a.Acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(ctx, 40); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Used != 100 || s.Peak != 100 || a.Held() != 100 {
		t.Fatalf("stats %+v held %d, want used=peak=held=100", s, a.Held())
	}
	a.Release(30)
	if s := b.Stats(); s.Used != 70 {
		t.Fatalf("used %d after release, want 70", s.Used)
	}
	a.Release(1000) // more than held: capped
	if s := b.Stats(); s.Used != 0 || a.Held() != 0 {
		t.Fatalf("used %d held %d after releasing everything", s.Used, a.Held())
	}
}

// A full budget blocks, asks the fullest account to flush, and lets the
// waiter in once that account releases.
func TestFullBudgetWaitsAndSqueezesFullest(t *testing.T) {
	b := New(100)
	small, big, fetcher := b.Account(), b.Account(), b.Account()
	ctx := context.Background()
	must(t, small.Acquire(ctx, 20))
	must(t, big.Acquire(ctx, 80))
	got := make(chan error, 1)
	go func() { got <- fetcher.Acquire(ctx, 10) }()
	select {
	case <-big.Pressure():
	case <-time.After(20 * time.Second):
		t.Fatal("the fullest account was not asked to flush")
	}
	select {
	case <-small.Pressure():
		t.Fatal("the smaller account was asked to flush first")
	default:
	}
	select {
	case err := <-got:
		t.Fatalf("acquire returned %v on a full budget", err)
	default:
	}
	big.Release(80)
	select {
	case err := <-got:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("acquire still blocked after a release")
	}
	if s := b.Stats(); s.Used != 30 || s.Peak != 100 || s.Waits != 1 {
		t.Fatalf("stats %+v, want used 30, peak 100, 1 wait", s)
	}
}

// A record larger than the whole budget passes alone, once nothing else
// is held.
func TestOversizeRequestPassesAlone(t *testing.T) {
	b := New(100)
	a, other := b.Account(), b.Account()
	ctx := context.Background()
	must(t, other.Acquire(ctx, 1))
	got := make(chan error, 1)
	go func() { got <- a.Acquire(ctx, 500) }()
	waitFor(t, "the oversize acquire to wait", func() bool { return b.Stats().Waits == 1 })
	other.Release(1)
	select {
	case err := <-got:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("oversize acquire blocked on an empty budget")
	}
	if s := b.Stats(); s.Used != 500 {
		t.Fatalf("used %d, want 500", s.Used)
	}
	a.Release(500)
}

// A blocked acquire returns on cancellation, charges nothing, and does
// not hold up the waiters behind it.
func TestAcquireHonoursCancellation(t *testing.T) {
	b := New(100)
	holder, first, second := b.Account(), b.Account(), b.Account()
	must(t, holder.Acquire(context.Background(), 95))
	ctx, cancel := context.WithCancel(context.Background())
	got1 := make(chan error, 1)
	go func() { got1 <- first.Acquire(ctx, 50) }() // cannot fit while holder holds
	waitFor(t, "first to wait", func() bool { return b.Stats().Waits == 1 })
	got2 := make(chan error, 1)
	go func() { got2 <- second.Acquire(context.Background(), 5) }() // fits, but queued behind first
	waitFor(t, "second to wait", func() bool { return b.Stats().Waits == 2 })
	cancel()
	if err := <-got1; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire returned %v", err)
	}
	select {
	case err := <-got2:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the waiter behind a cancelled one stayed blocked")
	}
	if first.Held() != 0 || b.Stats().Used != 100 {
		t.Fatalf("cancelled account holds %d, used %d; want 0 and 100", first.Held(), b.Stats().Used)
	}
}

// Closing an account (a revoked partition) releases what it holds and
// lets waiters in; acquiring on it afterwards fails.
func TestCloseReleasesOnRevoke(t *testing.T) {
	b := New(100)
	revoked, other := b.Account(), b.Account()
	must(t, revoked.Acquire(context.Background(), 100))
	got := make(chan error, 1)
	go func() { got <- other.Acquire(context.Background(), 70) }()
	waitFor(t, "the other partition to wait", func() bool { return b.Stats().Waits == 1 })
	revoked.Close()
	select {
	case err := <-got:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("bytes of a closed account were not released")
	}
	if err := revoked.Acquire(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire on a closed account: %v, want ErrClosed", err)
	}
	revoked.Release(10) // after close: no effect
	if s := b.Stats(); s.Used != 70 {
		t.Fatalf("used %d, want 70", s.Used)
	}
}

// Many partitions acquire and release concurrently, each flushing when
// asked: no deadlock, never more than the limit charged, and all bytes
// back at the end.
func TestConcurrentPartitions(t *testing.T) {
	const limit, parts, perPart = 10_000, 32, 2_000
	b := New(limit)
	var over atomic.Bool
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			a := b.Account()
			defer a.Close()
			var held int64
			for i := 0; i < perPart; i++ {
				n := int64(1 + (i*7+p)%400)
				// The consumer side: flush when asked or when "full".
				select {
				case <-a.Pressure():
					a.Release(held)
					held = 0
				default:
				}
				if held > 2_000 {
					a.Release(held)
					held = 0
				}
				if err := acquireFlushing(a, n, &held); err != nil {
					t.Error(err)
					return
				}
				held += n
				if b.Stats().Used > limit {
					over.Store(true)
				}
			}
		}(p)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("deadlock: %+v", b.Stats())
	}
	s := b.Stats()
	if over.Load() || s.Peak > limit {
		t.Errorf("peak %d over the limit %d", s.Peak, limit)
	}
	if s.Used != 0 {
		t.Errorf("%d bytes still charged after every account closed", s.Used)
	}
	t.Logf("stats: %+v", s)
}

// acquireFlushing acquires n bytes while answering pressure, as the
// pipeline does: its fetcher and its flusher are separate goroutines.
func acquireFlushing(a *Account, n int64, held *int64) error {
	got := make(chan error, 1)
	go func() { got <- a.Acquire(context.Background(), n) }()
	for {
		select {
		case err := <-got:
			return err
		case <-a.Pressure():
			a.Release(*held)
			*held = 0
		}
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},
		{"9223372036854771712\n", 0, false}, // cgroup v1 "unlimited"
		{"", 0, false},
	} {
		n, ok := parseLimit(tc.in)
		if n != tc.want || ok != tc.ok {
			t.Errorf("parseLimit(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGoLimit(t *testing.T) {
	for _, tc := range []struct {
		d    Derived
		want int64
	}{
		{Derived{Bytes: 128 << 20, From: "/sys/fs/cgroup/memory.max", ProcessLimit: 512 << 20}, 483183820}, // 90 % of the cgroup limit
		{Derived{Bytes: Fallback, From: "fallback"}, 258848475},                                            // 96 MiB × 0.9 / 0.35 ≈ 247 MiB
	} {
		if got := GoLimit(tc.d); got != tc.want {
			t.Errorf("GoLimit(%+v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}
