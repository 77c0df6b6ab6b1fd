package chclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"reflect"
	"strings"
	"sync"
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
	// NoNativeInsert sends every INSERT through clickhouse-go's batch
	// instead of the native INSERT path (insert.go).
	NoNativeInsert bool
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
	ins      *insertPool // the native INSERT path (insert.go)
	database string
	opts     Options

	mu      sync.Mutex
	cluster []server          // opened on first use, with Options.Cluster
	hashes  map[string]uint64 // values of sharding keys (ShardOf)
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
	c := &Conn{conn: conn, database: o.Database, opts: o}
	if !o.NoNativeInsert {
		c.ins = newInsertPool(d, o)
	}
	return c, nil
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
	q := "CREATE DATABASE IF NOT EXISTS " + QuotedIdent(db)
	if o.Cluster != "" {
		q += " ON CLUSTER " + QuotedIdent(o.Cluster)
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

// Cluster is the cluster the connection's tables are spread over
// (Options.Cluster), "" for a single server.
func (c *Conn) Cluster() string { return c.opts.Cluster }

// Ping checks that the server answers.
func (c *Conn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

// PrepareBatch starts a columnar INSERT (query is "INSERT INTO t (cols)").
func (c *Conn) PrepareBatch(ctx context.Context, query string) (driver.Batch, error) {
	return c.conn.PrepareBatch(ctx, query)
}

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
// value formatted as text (FormatValue; NULL as "\N"), as
// clickhouse-client would print them. It is meant for small results shown
// to people or compared as text: the catalogue, admin commands, tests, and
// code that also runs on the embedded engine (which answers in text).
// Code that reads values to use them scans them typed (Rows, QueryRow,
// Value, Values).
func (c *Conn) Query(ctx context.Context, query string, args ...any) (cols []string, out [][]string, err error) {
	rows, err := c.Rows(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols = rows.Columns()
	for rows.Next() {
		row, err := rows.ScanText()
		if err != nil {
			return cols, out, err
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
				parts[i] = String(s)
			} else {
				parts[i] = FormatValue(e)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// KillQuery kills the queries of system.processes that where (an SQL
// condition on its columns, such as query_id LIKE 'x%') selects, without
// waiting for them to end (KILL QUERY ... ASYNC): the caller watches
// system.processes for them to go.
func (c *Conn) KillQuery(ctx context.Context, where string) error {
	if err := c.Exec(ctx, "KILL QUERY WHERE "+where+" ASYNC"); err != nil {
		return fmt.Errorf("kill queries where %s: %w", where, err)
	}
	return nil
}
