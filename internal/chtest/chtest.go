// Package chtest is a test rig: a new database of its own for each test on
// the shared local ClickHouse 18.16 server (internal/chserver), dropped when
// the test ends, with every migration applied when asked.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"testing"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
	"github.com/logpipe/logpipe/schemas"
)

// DB creates the database prefix_RANDOM on the shared server and returns a
// connection to it; the database is dropped and the connection closed when
// the test ends.
func DB(t testing.TB, prefix string) *chclient.Conn {
	t.Helper()
	srv := chserver.Shared(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: prefix + "_" + hex.EncodeToString(b)}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chclient.QuotedIdent(o.Database))
		conn.Close()
	})
	return conn
}

// Migrated is DB with every migration of package schemas applied.
func Migrated(t testing.TB, prefix string) *chclient.Conn {
	t.Helper()
	conn := DB(t, prefix)
	if _, err := schemas.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// HungListener accepts TCP connections and never answers: a server that
// is stopped (SIGSTOP), deadlocked, or behind a half-open path. It returns
// the listener's address; everything is closed when the test ends.
func HungListener(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
