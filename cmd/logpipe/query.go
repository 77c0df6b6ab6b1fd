package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/schemas"
)

// params collects repeated -param k=v flags.
type params map[string]string

func (p params) String() string { return fmt.Sprint(map[string]string(p)) }
func (p params) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want -param name=value, got %q", s)
	}
	p[k] = v
	return nil
}

func cmdQuery(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	format := fs.String("format", "table", "output: table, csv or json")
	show := fs.Bool("sql", false, "print the SQL instead of running it")
	ps := params{}
	fs.Var(ps, "param", "query parameter name=value (repeatable)")
	serverVersion := fs.String("server-version", "", "with -sql: print the text for this server version (e.g. 24.8); default the oldest supported")
	// Allow the query name before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	cfg, err := loadClickHouseConfig(fs, args)
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
		if err == nil && fs.NArg() > 1 {
			err = fs.Parse(fs.Args()[1:])
		}
	}
	if name == "" {
		return usageError{fmt.Errorf("query: which query? (logpipe queries lists them)")}
	}
	if !slices.Contains(app.OutputFormats, *format) {
		return usageError{fmt.Errorf("unknown output format %q (table, csv, json)", *format)}
	}
	q, qerr := schemas.LookupQuery(name)
	if qerr != nil {
		return qerr
	}
	if err := relativeTimes(q, ps, time.Now()); err != nil {
		return usageError{fmt.Errorf("query %s: %w", name, err)}
	}
	if *serverVersion != "" {
		v, verr := schemas.ParseServerVersion(*serverVersion)
		if verr != nil {
			return usageError{verr}
		}
		q = q.For(v)
	}
	sql, rerr := q.Render(ps)
	if rerr != nil {
		return rerr
	}
	if *show {
		fmt.Fprintln(stdout, sql)
		return nil
	}
	if err != nil {
		return err
	}
	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	// The catalogue may carry a text for this server's version.
	if v, verr := schemas.DetectServerVersion(ctx, conn); verr != nil {
		log.Debug("server version unknown, running the catalogue's base text", "err", verr)
	} else {
		q = q.For(v)
	}
	// The lets first, each with a query of its own, then the query with
	// their values (the same answer as the text -sql prints, for less work).
	if sql, err = q.RenderWith(ctx, conn.Scalar, ps); err != nil {
		return err
	}
	cols, rows, err := conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	return app.PrintRows(stdout, *format, cols, rows)
}

func cmdQueries(stdout io.Writer) error {
	qs, err := schemas.Queries()
	if err != nil {
		return err
	}
	for _, q := range qs {
		fmt.Fprintf(stdout, "%s\n    %s\n", q.Name, q.Question)
		for _, p := range q.Params {
			def := p.Default
			if def == "" {
				def = "required"
			}
			fmt.Fprintf(stdout, "    -param %s=%s (default: %s) %s\n", p.Name, p.Type, def, p.Doc)
		}
	}
	return nil
}

// relativeTimes replaces DateTime parameters written relative to now
// ("now", "now-24h", "now-1d12h", "now+30m"), as watch rules take them,
// by the time they stand for (UTC).
func relativeTimes(q schemas.Query, ps params, now time.Time) error {
	for _, p := range q.Params {
		v, ok := ps[p.Name]
		if !ok || (p.Type != "DateTime" && p.Type != "Date") {
			continue
		}
		rest, ok := strings.CutPrefix(strings.TrimSpace(v), "now")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		t := now
		if rest != "" {
			sign := rest[0]
			if sign != '-' && sign != '+' {
				return fmt.Errorf("-param %s=%s: want now, now-DURATION or now+DURATION", p.Name, v)
			}
			d, err := config.ParseDuration(strings.TrimSpace(rest[1:]))
			if err != nil {
				return fmt.Errorf("-param %s=%s: %w", p.Name, v, err)
			}
			if sign == '-' {
				d = -d
			}
			t = now.Add(d)
		}
		if p.Type == "Date" {
			ps[p.Name] = t.UTC().Format(time.DateOnly)
		} else {
			ps[p.Name] = t.UTC().Format(time.DateTime)
		}
	}
	return nil
}
