package chdbtest

import (
	"context"
	"errors"
	"fmt"
)

// DB adapts an Engine to the context-taking methods code under test calls
// on *chclient.Conn (Exec, Query, QueryStrings), so it satisfies interfaces such
// as schemas.Execer. Query arguments are refused: bind values into the SQL.
type DB struct{ e *Engine }

// DB returns the Engine as a DB.
func (e *Engine) DB() DB { return DB{e} }

var errArgs = errors.New("chdbtest: query arguments are not supported; bind values into the SQL text")

// Exec runs a statement.
func (d DB) Exec(ctx context.Context, query string, args ...any) error {
	if len(args) > 0 {
		return errArgs
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.e.Exec(query)
}

// Query returns the column names and rows (TabSeparated text, NULL as \N).
func (d DB) Query(ctx context.Context, query string, args ...any) (cols []string, rows [][]string, err error) {
	if len(args) > 0 {
		return nil, nil, errArgs
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	out, err := d.e.Raw(query, "TabSeparatedWithNames")
	if err != nil {
		return nil, nil, err
	}
	all := ParseTSV(out)
	if len(all) == 0 {
		return nil, nil, nil
	}
	return all[0], all[1:], nil
}

// QueryStrings is Query without the column names.
func (d DB) QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error) {
	_, rows, err := d.Query(ctx, query, args...)
	return rows, err
}

// Scalar runs a query that returns one row with one value and returns the
// value as text, as *chclient.Conn's Scalar does (schemas.Scalar: how
// catalogue queries compute their lets).
func (d DB) Scalar(ctx context.Context, query string) (string, error) {
	rows, err := d.QueryStrings(ctx, query)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return "", fmt.Errorf("chdbtest: want one value, got %d rows", len(rows))
	}
	return rows[0][0], nil
}
