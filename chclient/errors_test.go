package chclient

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestRetryable: which failures the writer retries (the server or the
// network may recover) and which stop the partition for good (retrying
// cannot help and would hide the error). The kind comes from the
// exception's code, or from the Go error the connection failed with,
// never from the text of a message (but for POCO_EXCEPTION, which has
// only its class prefix to tell).
func TestRetryable(t *testing.T) {
	ex := func(code int32, msg string) error { return &clickhouse.Exception{Code: code, Message: msg} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"cancelled (partition revoked, shutdown)", context.Canceled, false},
		{"cancelled, wrapped", fmt.Errorf("insert: %w", context.Canceled), false},
		{"attempt deadline", context.DeadlineExceeded, true},
		{"read deadline (hung server)", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"EOF", io.EOF, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"closed connection", net.ErrClosed, true},
		{"pool exhausted", fmt.Errorf("acquire: %w", clickhouse.ErrAcquireConnTimeout), true},
		{"bad connection", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"handshake cut (server restarting)", &ConnectError{Err: errors.New("127.0.0.1:9000: could not read server name: EOF")}, true},
		{"login refused at connect", &ConnectError{Err: ex(516, "Authentication failed")}, false},
		{"connection refused by text only", errors.New("dial tcp: connection refused"), false},
		{"native insert path: answer not understood", fmt.Errorf("insert: %w", protoErrorf("unexpected packet %d", 9)), true},
		{"timeout exceeded", ex(159, "Timeout exceeded"), true},
		{"replica read-only", ex(164, "Table is in readonly mode"), true},
		{"table read-only (ZooKeeper lost)", ex(242, "Table is in readonly mode"), true},
		{"no ZooKeeper", ex(225, "Cannot use ZooKeeper"), true},
		{"keeper exception", ex(999, "Session expired"), true},
		{"too many parts", ex(252, "Too many parts"), true},
		{"memory limit", ex(241, "Memory limit exceeded"), true},
		{"same query id still running", ex(216, "Query with id = logpipe:... is already running"), true},
		{"all connection tries failed (a shard down)", ex(279, "All connection tries failed"), true},
		{"too few live replicas", ex(285, "Number of alive replicas"), true},
		{"unknown status of insert", ex(319, "Unknown status"), true},
		{"network error", ex(210, "Connection refused"), true},
		{"poco connection refused", ex(1000, "Net Exception: Connection refused"), true},
		{"poco other", ex(1000, "Invalid argument"), false},
		{"unknown table (schema)", ex(60, "Table logs.cdn_requests doesn't exist"), false},
		{"no such column (schema)", ex(16, "No such column x"), false},
		{"type mismatch", ex(53, "Type mismatch"), false},
		{"authentication failed", ex(516, "Authentication failed"), false},
		{"not enough privileges", ex(497, "Not enough privileges"), false},
		{"syntax error", ex(62, "Syntax error"), false},
		{"a bug of ours", errors.New("column cdn_requests.status: unexpected type"), false},
		{"unexpected end of file", ex(3, "Attempt to read after eof"), true},
		{"connection out of step", ex(101, "Unexpected packet Data received from client"), true},
		{"too many simultaneous queries", ex(202, "Too many simultaneous queries"), true},
		{"socket timeout", ex(209, "Timeout exceeded while reading from socket"), true},
		{"system error", ex(425, "System error"), true},
		{"wrapped exception", fmt.Errorf("insert: %w", ex(252, "Too many parts")), true},
		{"fence refused a batch (throwIf)", ex(395, "Value passed to 'throwIf' function is non zero"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if want := tc.want; (KindOf(tc.err) == Transient) != want {
				t.Errorf("KindOf(%v) = %v", tc.err, KindOf(tc.err))
			}
		})
	}
}

// TestKindOf: cancellation is its own kind (the caller gave up; neither
// retried nor reported as a failure of the server).
func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{context.Canceled, Canceled},
		{fmt.Errorf("insert: %w", context.Canceled), Canceled},
		{context.DeadlineExceeded, Transient},
		{&clickhouse.Exception{Code: 241}, Transient},
		{&clickhouse.Exception{Code: 60}, Permanent},
		{errors.New("anything else"), Permanent},
		{nil, Permanent},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
