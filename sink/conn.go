// Package sink writes records to ClickHouse in columnar batches over the
// native protocol (clickhouse-go/v2), with retries for the errors that are
// worth retrying.
package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options says how to reach ClickHouse.
type Options struct {
	Addr        []string
	Database    string
	User        string
	Password    string
	DialTimeout time.Duration
	TLS         *tls.Config
	// MaxOpenConns bounds the connections kept open; default 8.
	MaxOpenConns int
	// ReadTimeout bounds waiting for the server when the context has no
	// deadline, the handshake of a new connection included (a server that
	// is shutting down may accept connections and never answer them);
	// default 5 minutes.
	ReadTimeout time.Duration
	// QueryTimeout, if set, bounds a whole Query (and QueryStrings) whose
	// context has no deadline: the reads logpipe makes on its write path
	// (watermarks, running inserts) are then never stuck on a server that
	// stopped answering mid-query.
	QueryTimeout time.Duration
	// Cluster, when set, is the ClickHouse cluster the tables are spread
	// over (schemas.Target): inserts into its Distributed tables are then
	// synchronous (insert_distributed_sync = 1), so an acknowledged batch
	// is on its shard, and the checks made when a partition is assigned
	// (running inserts, watermarks) ask every server of the cluster.
	Cluster string
}

// Conn is a connection pool to one ClickHouse server (or cluster entry).
type Conn struct {
	conn     driver.Conn
	ins      *insertPool // the INSERT path (insert.go)
	database string
	opts     Options

	mu      sync.Mutex
	cluster []server          // opened on first use, with Options.Cluster
	hashes  map[string]uint64 // sharding key of topic/partition (shardOf)
}

// Open connects to ClickHouse and checks that the server answers.
func Open(ctx context.Context, o Options) (*Conn, error) {
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = 8
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	d := newDialer(o.DialTimeout, o.TLS) // TLS is set up by d (dial.go)
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         o.Addr,
		Auth:         clickhouse.Auth{Database: o.Database, Username: o.User, Password: o.Password},
		DialContext:  d.dialContext,
		DialStrategy: d.strategy,
		Compression: &clickhouse.Compression{
			Method: clickhouse.CompressionLZ4,
		},
		DialTimeout:     o.DialTimeout,
		MaxOpenConns:    o.MaxOpenConns,
		MaxIdleConns:    o.MaxOpenConns,
		ConnMaxLifetime: time.Hour,
		ReadTimeout:     o.ReadTimeout,
		Settings:        settings(o),
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %v: %w", o.Addr, err)
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 5 * time.Minute
	}
	return &Conn{conn: conn, ins: newInsertPool(d, o), database: o.Database, opts: o}, nil
}

func settings(o Options) clickhouse.Settings {
	if o.Cluster == "" {
		return nil
	}
	return clickhouse.Settings{"insert_distributed_sync": 1}
}

// CreateDatabase creates the database if it is missing, using a
// connection to the server's default database.
func CreateDatabase(ctx context.Context, o Options) error {
	db := o.Database
	o.Database = "default"
	c, err := Open(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(db)
	if o.Cluster != "" {
		q += " ON CLUSTER " + quoteIdent(o.Cluster)
	}
	return c.Exec(ctx, q)
}

// Close closes the pool.
func (c *Conn) Close() error {
	c.closeServers()
	if c.ins != nil {
		c.ins.close()
	}
	return c.conn.Close()
}

// Database is the database the connection works in.
func (c *Conn) Database() string { return c.database }

// Driver returns the underlying clickhouse-go connection.
func (c *Conn) Driver() driver.Conn { return c.conn }

// Exec runs a statement that returns no rows.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) error {
	return c.conn.Exec(ctx, query, args...)
}

// ServerVersion returns the server's version as major, minor.
func (c *Conn) ServerVersion(ctx context.Context) (major, minor int, err error) {
	v, err := c.conn.ServerVersion()
	if err != nil {
		return 0, 0, err
	}
	return int(v.Version.Major), int(v.Version.Minor), nil
}

// Query runs a query and returns the column names and every row, each
// value formatted as text (NULL as "\N"). It is meant for small results:
// the catalogue, tests and admin commands.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (cols []string, out [][]string, err error) {
	if _, ok := ctx.Deadline(); !ok && c.opts.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.QueryTimeout)
		defer cancel()
	}
	rows, err := c.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols = rows.Columns()
	types := rows.ColumnTypes()
	dest := make([]any, len(types))
	for i, t := range types {
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return cols, out, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = FormatValue(reflect.ValueOf(d).Elem().Interface())
			if tn := types[i].DatabaseTypeName(); (tn == "Date" || tn == "Nullable(Date)") && len(row[i]) == 19 {
				row[i] = row[i][:10]
			}
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// QueryStrings is Query without the column names.
func (c *Conn) QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error) {
	_, rows, err := c.Query(ctx, query, args...)
	return rows, err
}

// Scalar runs a query that returns one row with one value and returns the
// value as text (schemas.Scalar: how catalogue queries compute their lets).
func (c *Conn) Scalar(ctx context.Context, query string) (string, error) {
	rows, err := c.QueryStrings(ctx, query)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return "", fmt.Errorf("want one value, got %d rows", len(rows))
	}
	return rows[0][0], nil
}

// FormatValue formats one scanned value as ClickHouse's TSV output would.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return `\N`
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case string:
		return x
	case []byte:
		return string(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return `\N`
		}
		return FormatValue(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		parts := make([]string, rv.Len())
		for i := range parts {
			e := rv.Index(i).Interface()
			if s, ok := e.(string); ok {
				parts[i] = "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
			} else {
				parts[i] = FormatValue(e)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// Retryable reports whether an insert that failed with err may succeed if
// sent again: network failures, timeouts, a restarting server, too many
// parts, memory pressure. Schema errors and authentication failures are
// not retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 3, // UNEXPECTED_END_OF_FILE
			159, // TIMEOUT_EXCEEDED
			164, // READONLY (replica in read-only mode)
			202, // TOO_MANY_SIMULTANEOUS_QUERIES
			216, // QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING (an earlier attempt still runs)
			209, // SOCKET_TIMEOUT
			210, // NETWORK_ERROR
			241, // MEMORY_LIMIT_EXCEEDED
			242, // TABLE_IS_READ_ONLY
			252, // TOO_MANY_PARTS
			225, // NO_ZOOKEEPER
			279, // ALL_CONNECTION_TRIES_FAILED (a shard of a Distributed table is down)
			285, // TOO_FEW_LIVE_REPLICAS
			319, // UNKNOWN_STATUS_OF_INSERT
			425, // SYSTEM_ERROR
			999: // KEEPER_EXCEPTION
			return true
		case 1000: // POCO_EXCEPTION: retryable when it is the network
			return strings.Contains(ex.Message, "Connection refused") || strings.Contains(ex.Message, "Timeout") ||
				strings.Contains(ex.Message, "Net Exception") || strings.Contains(ex.Message, "Connection reset")
		}
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *protocolError // the next attempt goes through clickhouse-go
	if errors.As(err, &pe) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "EOF", "acquire conn timeout", "bad connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "\\`") + "`"
}
