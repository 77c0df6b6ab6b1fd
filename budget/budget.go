// Package budget holds the process's one memory budget: a byte semaphore
// that every partition charges for the records it has fetched, queued,
// parsed and not yet stored. When it is full, fetching waits
// (backpressure) and the partition holding the most bytes is asked to
// flush early. It never drops anything: a blocked fetch only waits.
package budget

import (
	"context"
	"errors"
	"sync"
	"time"
)

// RecordCost is the bytes charged for one record of valueLen bytes while
// it is queued and buffered: the record itself, the rows parsed from it
// (strings alias the record; the column slots, their growth slack and the
// driver's copy of the block during the INSERT come on top), and a fixed
// part for the per-row column headers.
func RecordCost(valueLen int) int64 { return 2*int64(valueLen) + 1024 }

// squeezeEvery is how often a blocked acquire asks again for an early
// flush while it waits.
const squeezeEvery = 50 * time.Millisecond

// ErrClosed is returned by Acquire on a closed Account.
var ErrClosed = errors.New("budget: account closed")

// Budget is a byte semaphore shared by every partition of the process.
// Waiters are served first come, first served, so a large request is not
// overtaken for ever by small ones.
type Budget struct {
	limit int64

	mu       sync.Mutex
	used     int64
	peak     int64
	waiters  []*waiter
	accounts map[*Account]struct{}
	waits    int64 // acquires that had to wait
}

type waiter struct {
	a     *Account
	n     int64
	ready chan struct{} // closed when granted
}

// New returns a budget of limit bytes (at least 1).
func New(limit int64) *Budget {
	return &Budget{limit: max(limit, 1), accounts: map[*Account]struct{}{}}
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Stats is a snapshot of the budget.
type Stats struct {
	Limit int64 // bytes
	Used  int64 // bytes charged now
	// Peak is the most bytes ever charged at once. It exceeds Limit only
	// while a single record larger than the whole budget is held.
	Peak  int64
	Waits int64 // acquires that had to wait for bytes (backpressure)
}

// Stats returns the current figures.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Limit: b.limit, Used: b.used, Peak: b.peak, Waits: b.waits}
}

// fits reports whether n more bytes may be charged now. A request larger
// than the whole budget fits only when nothing else is charged, so a
// single huge record still passes, alone.
func (b *Budget) fits(n int64) bool {
	return b.used+min(n, b.limit) <= b.limit
}

func (b *Budget) charge(a *Account, n int64) {
	b.used += n
	a.held += n
	b.peak = max(b.peak, b.used)
}

// grant serves waiters in order while the first one fits. Called with
// b.mu held.
func (b *Budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if !b.fits(w.n) {
			return
		}
		b.charge(w.a, w.n)
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}

// squeeze asks the account holding the most bytes to flush early.
func (b *Budget) squeeze() {
	b.mu.Lock()
	var fullest *Account
	for a := range b.accounts {
		if a.held > 0 && (fullest == nil || a.held > fullest.held) {
			fullest = a
		}
	}
	b.mu.Unlock()
	if fullest != nil {
		select {
		case fullest.pressure <- struct{}{}:
		default: // already asked
		}
	}
}

// Account is one partition's share of the budget: what it holds, and the
// channel on which it is asked to flush early.
type Account struct {
	b        *Budget
	held     int64 // under b.mu
	closed   bool  // under b.mu
	pressure chan struct{}
}

// Account opens an account for one partition. Close it when the partition
// ends (revoked or stopped): whatever it still holds is released.
func (b *Budget) Account() *Account {
	a := &Account{b: b, pressure: make(chan struct{}, 1)}
	b.mu.Lock()
	b.accounts[a] = struct{}{}
	b.mu.Unlock()
	return a
}

// Pressure receives when the budget is full and this account holds the
// most bytes: flush what is buffered, so its bytes can be released.
func (a *Account) Pressure() <-chan struct{} { return a.pressure }

// Held is the bytes this account holds.
func (a *Account) Held() int64 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.held
}

// Acquire charges n bytes to the account, waiting while the budget is
// full. It returns ctx's error if ctx is done first (nothing is charged
// then), and ErrClosed on a closed account.
func (a *Account) Acquire(ctx context.Context, n int64) error {
	b := a.b
	b.mu.Lock()
	if a.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if len(b.waiters) == 0 && b.fits(n) {
		b.charge(a, n)
		b.mu.Unlock()
		return nil
	}
	w := &waiter{a: a, n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.waits++
	b.mu.Unlock()
	b.squeeze()
	t := time.NewTicker(squeezeEvery)
	defer t.Stop()
	for {
		select {
		case <-w.ready:
			return nil
		case <-t.C:
			b.squeeze()
		case <-ctx.Done():
			b.mu.Lock()
			select {
			case <-w.ready:
				// Granted meanwhile: give it back.
				a.held -= n
				b.used -= n
			default:
				for i, x := range b.waiters {
					if x == w {
						b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
						break
					}
				}
			}
			// Removing a waiter (or returning bytes) may let the next in.
			b.grant()
			b.mu.Unlock()
			return ctx.Err()
		}
	}
}

// Release gives n bytes back (at most what the account holds).
func (a *Account) Release(n int64) {
	b := a.b
	b.mu.Lock()
	n = min(n, a.held)
	a.held -= n
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// Close releases everything the account holds and closes it.
func (a *Account) Close() {
	b := a.b
	b.mu.Lock()
	b.used -= a.held
	a.held = 0
	a.closed = true
	delete(b.accounts, a)
	b.grant()
	b.mu.Unlock()
}
