package chclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/internal/chtest"
)

func TestMain(m *testing.M) { chserver.Main(m) }

// TestDialSkipsHungServer: with the first address accepting connections
// and never answering, the pool still connects to the second one within
// the dial timeout, and later connections go there first.
func TestDialSkipsHungServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	srv := chserver.Shared(t)
	ctx := context.Background()
	began := time.Now()
	conn, err := chclient.Open(ctx, chclient.Options{Addr: []string{chtest.HungListener(t), srv.TCPAddr}, Database: "default", DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("open with a hung first server: %v", err)
	}
	defer conn.Close()
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("open took %s, want within the dial timeout (3s)", d)
	}
	// New connections, all at once: the hung server is tried last now.
	errs := make(chan error, 6)
	began = time.Now()
	for range 6 {
		go func() {
			_, err := conn.QueryStrings(ctx, "SELECT sleep(0.5)")
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Errorf("query: %v", err)
		}
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("6 parallel queries took %s: new connections waited for the hung server", d)
	}
}
