package chclient

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrNoRows is the error of QueryRow and Value when the query returned no
// row.
var ErrNoRows = errors.New("chclient: the query returned no rows")

// Rows is a query's result, read row by row into typed Go values.
type Rows struct {
	r      driver.Rows
	cancel context.CancelFunc
}

// Rows runs a query. Options.QueryTimeout bounds it when ctx has no
// deadline. The caller must Close the rows.
func (c *Conn) Rows(ctx context.Context, query string, args ...any) (*Rows, error) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok && c.opts.QueryTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.opts.QueryTimeout)
	}
	r, err := c.conn.Query(ctx, query, args...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Rows{r: r, cancel: cancel}, nil
}

// Next advances to the next row; false at the end or on an error (Err).
func (r *Rows) Next() bool { return r.r.Next() }

// Scan reads the current row into dest, one pointer per column, of the
// column's Go type (ScanTypes) or one clickhouse-go converts to.
func (r *Rows) Scan(dest ...any) error { return r.r.Scan(dest...) }

// ScanText reads the current row as text, each value formatted as
// clickhouse-client prints it (FormatValue; a Date as 2006-01-02).
func (r *Rows) ScanText() ([]string, error) {
	types := r.r.ColumnTypes()
	dest := make([]any, len(types))
	for i, t := range types {
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	if err := r.r.Scan(dest...); err != nil {
		return nil, err
	}
	row := make([]string, len(dest))
	for i, d := range dest {
		row[i] = FormatValue(reflect.ValueOf(d).Elem().Interface())
		if tn := types[i].DatabaseTypeName(); (tn == "Date" || tn == "Nullable(Date)") && len(row[i]) == 19 {
			row[i] = row[i][:10]
		}
	}
	return row, nil
}

// Columns returns the column names.
func (r *Rows) Columns() []string { return r.r.Columns() }

// ScanTypes returns the Go type each column scans into.
func (r *Rows) ScanTypes() []reflect.Type {
	ts := r.r.ColumnTypes()
	out := make([]reflect.Type, len(ts))
	for i, t := range ts {
		out[i] = t.ScanType()
	}
	return out
}

// DatabaseTypes returns the ClickHouse type of each column.
func (r *Rows) DatabaseTypes() []string {
	ts := r.r.ColumnTypes()
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.DatabaseTypeName()
	}
	return out
}

// Err is the error that ended Next, if any.
func (r *Rows) Err() error { return r.r.Err() }

// Close releases the connection.
func (r *Rows) Close() error {
	err := r.r.Close()
	r.cancel()
	return err
}

// Row is the first row of a query (QueryRow).
type Row struct {
	c     *Conn
	ctx   context.Context
	query string
	args  []any
}

// QueryRow runs a query for its first row, read by Row.Scan.
func (c *Conn) QueryRow(ctx context.Context, query string, args ...any) *Row {
	return &Row{c: c, ctx: ctx, query: query, args: args}
}

// Scan reads the first row into dest; ErrNoRows if there is none.
func (r *Row) Scan(dest ...any) error {
	rows, err := r.c.Rows(r.ctx, r.query, r.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return nil
}

// Value returns the single value a query returns (one row, one column),
// scanned into T; ErrNoRows if there is no row.
func Value[T any](ctx context.Context, c *Conn, query string, args ...any) (T, error) {
	var v T
	err := c.QueryRow(ctx, query, args...).Scan(&v)
	return v, err
}

// Values returns the single column of every row of a query, each scanned
// into T.
func Values[T any](ctx context.Context, c *Conn, query string, args ...any) ([]T, error) {
	rows, err := c.Rows(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if n := len(rows.Columns()); n != 1 {
		return nil, fmt.Errorf("chclient: Values of a query with %d columns", n)
	}
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
