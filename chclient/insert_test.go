package chclient

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/logpipe/logpipe/internal/chserver"
)

// TestInsertInputPool: INSERTs in turn reuse one connection of the native
// path; a server error keeps the connection (the server ended the query)
// and arrives as the driver's Exception with its code; a table whose
// column types differ fails with ErrTypes, having sent nothing, and
// leaves the path on; an exception after the data was sent drops the
// connection.
func TestInsertInputPool(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	srv := chserver.Shared(t)
	ctx := context.Background()
	o := Options{Addr: []string{srv.TCPAddr}, Database: fmt.Sprintf("insinput_%d", time.Now().UnixNano())}
	if err := CreateDatabase(ctx, o); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+Ident(o.Database))
		c.Close()
	})
	if err := c.Exec(ctx, "CREATE TABLE r (s String, n Int64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	input := func() proto.Input {
		var s proto.ColStr
		var n proto.ColInt64
		for i, v := range []string{"a", "b", "c"} {
			s.Append(v)
			n.Append(int64(i))
		}
		return proto.Input{{Name: "s", Data: &s}, {Name: "n", Data: &n}}
	}
	for i := range 2 {
		if err := c.InsertInput(ctx, "INSERT INTO r (s, n) VALUES", fmt.Sprintf("chclient-test:%d", i), input(), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ins.disabled(); err != nil {
		t.Fatalf("native path off: %v", err)
	}
	if n := len(c.ins.idle); n != 1 {
		t.Errorf("%d idle INSERT connections after two inserts in turn, want 1 (reused)", n)
	}
	if n, err := Value[uint64](ctx, c, "SELECT count() FROM r"); err != nil || n != 6 {
		t.Errorf("rows stored: %d, %v; want 6", n, err)
	}

	err = c.InsertInput(ctx, "INSERT INTO missing (s, n) VALUES", "", input(), 3)
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != CodeUnknownTable || KindOf(err) != Permanent {
		t.Errorf("insert into a missing table: %v (%T), want the server's exception 60, permanent", err, err)
	}
	if n := len(c.ins.idle); n != 1 {
		t.Errorf("%d idle INSERT connections after a server error, want 1 (the connection stays usable)", n)
	}

	if err := c.Exec(ctx, "CREATE TABLE p (s String, n String) ENGINE = MergeTree ORDER BY s"); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertInput(ctx, "INSERT INTO p (s, n) VALUES", "", input(), 3); !errors.Is(err, ErrTypes) {
		t.Errorf("insert of an Int64 column into a String one: %v, want ErrTypes", err)
	}
	if n, err := Value[uint64](ctx, c, "SELECT count() FROM p"); err != nil || n != 0 {
		t.Errorf("rows stored after ErrTypes: %d, %v; want 0", n, err)
	}
	if err := c.ins.disabled(); err != nil {
		t.Errorf("native path off after a type mismatch: %v", err)
	}

	// A view that refuses the rows (as the fence's does): the exception
	// comes after the data was sent, the connection is dropped, and the
	// next INSERT works on a new one.
	if err := c.Exec(ctx, "CREATE MATERIALIZED VIEW rv ENGINE = Memory AS SELECT throwIf(n > 100) AS x FROM r"); err != nil {
		t.Fatal(err)
	}
	var big proto.ColInt64
	var bs proto.ColStr
	big.Append(101)
	bs.Append("z")
	err = c.InsertInput(ctx, "INSERT INTO r (s, n) VALUES", "", proto.Input{{Name: "s", Data: &bs}, {Name: "n", Data: &big}}, 1)
	if code, ok := Code(err); !ok || code != CodeThrowIfValueIsNonZero {
		t.Fatalf("insert the view refuses: %v, want exception %d", err, CodeThrowIfValueIsNonZero)
	}
	if n := len(c.ins.idle); n != 0 {
		t.Errorf("%d idle INSERT connections after an exception that followed the data, want 0 (dropped)", n)
	}
	for i := range 3 {
		if err := c.InsertInput(ctx, "INSERT INTO r (s, n) VALUES", "", input(), 3); err != nil {
			t.Fatalf("insert %d after the refused one: %v", i, err)
		}
	}
	// 6 + 9, and the refused row: r stores its block before its views
	// run (the fence puts its view in front of the table for that).
	if n, err := Value[uint64](ctx, c, "SELECT count() FROM r"); err != nil || n != 16 {
		t.Errorf("rows stored: %d, %v; want 16", n, err)
	}
}

// TestInsertInputOff: with the path off (Options.NoNativeInsert, or once a
// server answered what it does not understand) InsertInput sends nothing
// and says ErrNativeOff, opening no connection; a server that refuses the
// path's handshake (here: a user that does not exist, which only the
// path's connections use) gets ErrNativeOff too, for the driver to answer,
// and the path stays on for the next connection.
func TestInsertInputOff(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ClickHouse")
	}
	ctx := context.Background()
	srv := chserver.Shared(t)
	var s proto.ColStr
	s.Append("x")
	input := proto.Input{{Name: "s", Data: &s}}

	off, err := Open(ctx, Options{Addr: []string{srv.TCPAddr}, NoNativeInsert: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if err := off.InsertInput(ctx, "INSERT INTO missing_table (s) VALUES", "", input, 1); !errors.Is(err, ErrNativeOff) {
		t.Errorf("InsertInput with NoNativeInsert: %v, want ErrNativeOff", err)
	}

	c, err := Open(ctx, Options{Addr: []string{srv.TCPAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ins.disable(protoErrorf("test"))
	if err := c.InsertInput(ctx, "INSERT INTO missing_table (s) VALUES", "", input, 1); !errors.Is(err, ErrNativeOff) {
		t.Errorf("InsertInput with the path switched off: %v, want ErrNativeOff", err)
	}
	if n := len(c.ins.idle); n != 0 {
		t.Errorf("%d INSERT connections opened with the path off", n)
	}

	r, err := Open(ctx, Options{Addr: []string{srv.TCPAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.ins.o.User = "nobody_h14t"
	if err := r.InsertInput(ctx, "INSERT INTO missing_table (s) VALUES", "", input, 1); !errors.Is(err, ErrNativeOff) {
		t.Errorf("InsertInput with the handshake refused: %v, want ErrNativeOff", err)
	}
	if err := r.ins.disabled(); err != nil {
		t.Errorf("path off after a refused handshake: %v", err)
	}
}
