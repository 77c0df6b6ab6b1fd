package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/internal/chserver"
)

// rows is an in-memory Batch of ch-go proto columns: a String, a
// LowCardinality(String) and an Int64 column (tables defines logpipe's
// own; this one only exercises the writer's paths).
type rows struct {
	table string
	s     proto.ColStr
	lc    *proto.ColLowCardinality[string]
	n     proto.ColInt64
}

func newRows(table string, vals ...string) *rows {
	r := &rows{table: table, lc: proto.NewLowCardinality[string](new(proto.ColStr))}
	for i, v := range vals {
		r.s.Append(v)
		r.lc.Append(v[:1])
		r.n.Append(int64(i))
	}
	return r
}

func (r *rows) Table() string     { return r.table }
func (r *rows) Columns() []string { return []string{"s", "lc", "_offset"} }
func (r *rows) Len() int          { return r.s.Rows() }
func (r *rows) Bytes() int        { return 0 }
func (r *rows) Reset()            {}
func (r *rows) Span() (string, int32, int64, bool) {
	return "t", 0, int64(r.Len() - 1), r.Len() > 0
}

func (r *rows) Input() proto.Input {
	return proto.Input{{Name: "s", Data: &r.s}, {Name: "lc", Data: r.lc}, {Name: "_offset", Data: &r.n}}
}

func (r *rows) Values(i int) any {
	var out []string
	switch i {
	case 0:
		for j := range r.Len() {
			out = append(out, r.s.Row(j))
		}
	case 1:
		out = append(out, r.lc.Values...)
	default:
		return []int64(r.n)
	}
	return out
}

func testConn(t *testing.T) *chclient.Conn {
	t.Helper()
	srv := chserver.Shared(t)
	ctx := context.Background()
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: fmt.Sprintf("ins_%d", time.Now().UnixNano())}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		t.Fatal(err)
	}
	c, err := chclient.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Database)
		c.Close()
	})
	return c
}

// TestNativeInsert: the writer's INSERTs go through the native path
// (chclient.Conn.InsertInput; its connection reuse is chclient's
// TestInsertInputPool), rows read back, a server error arrives as the
// driver's Exception with its code, and a table whose column types differ
// from the batch's gets its rows through the driver.
func TestNativeInsert(t *testing.T) {
	ctx := context.Background()
	c := testConn(t)
	if err := c.Exec(ctx, "CREATE TABLE r (s String, lc LowCardinality(String), _offset Int64) ENGINE = MergeTree ORDER BY _offset"); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(c, slog.New(slog.DiscardHandler))
	for i := range 2 {
		if err := w.InsertAs(ctx, newRows("r", "apple", "avocado", "banana"), fmt.Sprintf("logpipe-test:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.QueryStrings(ctx, "SELECT s, lc, toString(count()) FROM r GROUP BY s, lc ORDER BY s")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"apple", "a", "2"}, {"avocado", "a", "2"}, {"banana", "b", "2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("read back %q, want %q", got, want)
	}

	// A block larger than a frame goes out in several.
	big := make([]string, 5000)
	for i := range big {
		big[i] = fmt.Sprintf("%c%0600d", 'k'+i%3, i)
	}
	if err := w.Insert(ctx, newRows("r", big...)); err != nil {
		t.Fatal(err)
	}
	got, err = c.QueryStrings(ctx, "SELECT toString(count()), toString(sum(length(s))), toString(uniqExact(lc)), toString(max(_offset)) FROM r WHERE length(s) > 600")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"5000", "3005000", "3", "4999"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("large block read back as %q, want %q", got, want)
	}

	err = w.Insert(ctx, newRows("missing", "x"))
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 60 || chclient.Retryable(err) {
		t.Errorf("insert into a missing table: %v (%T), want the server's exception 60 (UNKNOWN_TABLE), not retryable", err, errors.Unwrap(err))
	}

	// lc is a plain String here: the batch cannot send its
	// LowCardinality column as one, clickhouse-go converts.
	if err := c.Exec(ctx, "CREATE TABLE p (s String, lc String, _offset Int64) ENGINE = MergeTree ORDER BY _offset"); err != nil {
		t.Fatal(err)
	}
	if err := w.Insert(ctx, newRows("p", "cherry")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.QueryStrings(ctx, "SELECT s, lc FROM p"); err != nil || !reflect.DeepEqual(got, [][]string{{"cherry", "c"}}) {
		t.Errorf("read back %q (%v), want cherry, c", got, err)
	}
}

// TestNativeOffUsesDriver: with the native path off for a Conn
// (chclient.Options.NoNativeInsert; chclient also switches it off once a
// server answered what it does not understand), INSERTs go through
// clickhouse-go and store the same rows.
func TestNativeOffUsesDriver(t *testing.T) {
	ctx := context.Background()
	srv := chserver.Shared(t)
	o := chclient.Options{Addr: []string{srv.TCPAddr}, Database: fmt.Sprintf("insoff_%d", time.Now().UnixNano()), NoNativeInsert: true}
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		t.Fatal(err)
	}
	c, err := chclient.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Database)
		c.Close()
	})
	if err := c.Exec(ctx, "CREATE TABLE r (s String, lc LowCardinality(String), _offset Int64) ENGINE = MergeTree ORDER BY _offset"); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(c, slog.New(slog.DiscardHandler))
	if err := w.InsertAs(ctx, newRows("r", "apple", "banana"), "logpipe-test:off"); err != nil {
		t.Fatal(err)
	}
	got, err := c.QueryStrings(ctx, "SELECT s, lc FROM r ORDER BY s")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"apple", "a"}, {"banana", "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("read back %q, want %q", got, want)
	}
}

// TestNativeExceptionAfterData: a view that refuses the rows (as the
// fence's does) answers after the data was sent, possibly before the
// server read all of it: the connection is dropped, not reused, and the
// next INSERT goes through a clean one (chclient's TestInsertInputPool
// checks the pool).
func TestNativeExceptionAfterData(t *testing.T) {
	ctx := context.Background()
	c := testConn(t)
	for _, q := range []string{
		"CREATE TABLE r (s String, lc LowCardinality(String), _offset Int64) ENGINE = MergeTree ORDER BY _offset",
		"CREATE MATERIALIZED VIEW rv ENGINE = Memory AS SELECT throwIf(_offset > 1) AS x FROM r",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	w := NewWriter(c, slog.New(slog.DiscardHandler))
	big := make([]string, 5000)
	for i := range big {
		big[i] = fmt.Sprintf("x%0600d", i)
	}
	for i := range 3 {
		err := w.Insert(ctx, newRows("r", big...))
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || ex.Code != 395 {
			t.Fatalf("refused insert %d: %v, want the view's throwIf (395)", i, err)
		}
	}
	if err := w.Insert(ctx, newRows("r", "ok")); err != nil {
		t.Fatal(err)
	}
}
