package chserver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// startBudget bounds a test helper's start, including a possible apt-get install.
const startBudget = 5 * time.Minute

var shared struct {
	started bool
	srv     *Server
	err     error
	tmp     string
}

// sharedMu serialises SharedServer and StopShared.
var sharedMu sync.Mutex

// SharedServer returns the process-wide server, starting it on first use in
// a temporary directory (with a watchdog that stops it when the process
// exits). If LOGPIPE_CLICKHOUSE_ADDR is set, that server is used instead and
// nothing is started. A failed start is remembered and returned to every
// caller.
func SharedServer() (*Server, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared.started {
		return shared.srv, shared.err
	}
	shared.started = true
	if v := os.Getenv(EnvAddr); v != "" {
		shared.srv, shared.err = ParseExternal(v)
		return shared.srv, shared.err
	}
	dir, err := os.MkdirTemp("", "logpipe-clickhouse-")
	if err != nil {
		shared.err = fmt.Errorf("chserver: %w", err)
		return nil, shared.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startBudget)
	defer cancel()
	s, err := StartWithOptions(ctx, dir, Options{StopWithProcess: true})
	if err != nil {
		os.RemoveAll(dir)
		shared.err = err
		return nil, err
	}
	s.shared = true
	shared.srv, shared.tmp = s, dir
	return s, nil
}

// Shared returns the server shared by all tests of the binary (see
// SharedServer), failing the test if it cannot be started, or skipping it if
// LOGPIPE_SKIP_CLICKHOUSE is set. Do not stop, kill or restart it (those
// methods return ErrShared); use Private for that. Tests sharing it should use
// their own database or unique table names.
//
// Pair it with Main (or call StopShared at the end of your own TestMain).
func Shared(t testing.TB) *Server {
	t.Helper()
	skipIfDisabled(t)
	s, err := SharedServer()
	if err != nil {
		t.Fatalf("chserver: shared ClickHouse server: %v", err)
	}
	return s
}

// Private starts a server of the test's own in t.TempDir() and stops it when
// the test ends. Use it for tests that stop, kill or restart the server.
// Skipped when LOGPIPE_SKIP_CLICKHOUSE is set or when LOGPIPE_CLICKHOUSE_ADDR
// points at an external server (a private server can't be provided then).
func Private(t testing.TB) *Server {
	t.Helper()
	skipIfDisabled(t)
	if os.Getenv(EnvAddr) != "" {
		t.Skipf("chserver: %s is set; test needs a private local server", EnvAddr)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startBudget)
	defer cancel()
	s, err := StartWithOptions(ctx, dir, Options{StopWithProcess: true})
	if err != nil {
		t.Fatalf("chserver: starting private ClickHouse server: %v", err)
	}
	// Registered after t.TempDir's cleanup, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("chserver: stopping private server: %v", err)
		}
	})
	return s
}

func skipIfDisabled(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvSkip) != "" {
		t.Skipf("chserver: %s is set", EnvSkip)
	}
}

// StopShared stops the shared server if this process started it and removes
// its directory (unless LOGPIPE_CLICKHOUSE_KEEP is set). Safe to call when no
// shared server was started.
func StopShared() error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	s := shared.srv
	if s == nil || s.External {
		return nil
	}
	err := s.stop()
	if os.Getenv(EnvKeep) == "" {
		os.RemoveAll(shared.tmp)
	} else {
		fmt.Fprintf(os.Stderr, "chserver: kept shared server directory %s\n", shared.tmp)
	}
	shared.srv, shared.err = nil, fmt.Errorf("chserver: shared server already stopped")
	return err
}

// Main runs the tests and stops the shared server afterwards:
//
//	func TestMain(m *testing.M) { chserver.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
