package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/warehouse"
)

func openWarehouse(ctx context.Context, cfg config.Config) (*warehouse.Warehouse, *chclient.Conn, error) {
	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return nil, nil, err
	}
	w := warehouse.New(conn)
	w.Cluster = cfg.ClickHouse.Cluster
	return w, conn, nil
}

// cmdRetention shows (and with -apply drops) the partitions past each
// table's retention.
func cmdRetention(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	apply := fs.Bool("apply", false, "drop the partitions (default: only show them)")
	cfg, err := loadClickHouseConfig(fs, args)
	if err != nil {
		return err
	}
	rules, err := app.RetentionRules(cfg)
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return errors.New("retention: no retention.tables in the config: nothing to do")
	}
	w, conn, err := openWarehouse(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	changes, err := w.SyncTTL(ctx, rules, *apply)
	for _, c := range changes {
		state := "dry run: add -apply to set it"
		if c.Applied {
			state = "set"
		}
		fmt.Fprintf(stdout, "table %s: TTL %s differs from the retention rule, %s (%s)\n", c.Table, c.From, c.To, state)
	}
	if err != nil {
		return err
	}
	ps, err := w.Retention(ctx, rules, *apply)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "table\tpartition\trows\tbytes\tnewest possible data\tstate")
	for _, p := range ps {
		state := "would drop (dry run: add -apply)"
		switch {
		case p.TTL:
			state = "past retention: the table's TTL drops it (server-side)"
		case p.Dropped:
			state = "dropped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", p.Table, p.Partition, p.Rows, p.Bytes, p.Newest.Format(time.DateTime), state)
	}
	if len(ps) == 0 {
		fmt.Fprintln(tw, "(nothing past retention)")
	}
	tw.Flush()
	return err
}

func cmdTables(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("tables", flag.ContinueOnError)
	all := fs.Bool("all", false, "every table of the database, not only logpipe's")
	window := fs.String("window", "30d", "count reads within this period")
	cfg, err := loadClickHouseConfig(fs, args)
	if err != nil {
		return err
	}
	win, err := warehouse.ParseAge(*window)
	if err != nil {
		return usageError{fmt.Errorf("tables: -window: %w", err)}
	}
	w, conn, err := openWarehouse(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !w.QueryLogEnabled(ctx) {
		fmt.Fprintln(stdout, "note: system.query_log is empty or off, so reads cannot be counted: set log_queries=1 in the users' profile (users.xml) and wait for queries")
	}
	cols, rows, err := app.TableRows(ctx, w, *all, win)
	if err != nil {
		return err
	}
	return app.PrintRows(stdout, "table", cols, rows)
}

func cmdRetire(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("retire", flag.ContinueOnError)
	quiet := fs.String("quiet", "30d", "refuse when the table was read within this period")
	grace := fs.String("grace", "14d", "with -drop: drop only tables retired longer ago than this")
	reason := fs.String("reason", "", "why (recorded)")
	restore := fs.String("restore", "", "rename this retired table back")
	drop := fs.Bool("drop", false, "drop tables retired longer ago than -grace")
	scheduled := fs.Bool("scheduled", false, "list tables that migrations replaced, waiting to be retired")
	apply := fs.Bool("apply", false, "with -drop: really drop (default: only show)")
	cfg, err := loadClickHouseConfig(fs, args)
	if err != nil {
		return err
	}
	w, conn, err := openWarehouse(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	by := "unknown"
	if u, err := user.Current(); err == nil {
		by = u.Username
	}
	switch {
	case *scheduled:
		q, err := warehouse.ParseAge(*quiet)
		if err != nil {
			return usageError{fmt.Errorf("retire: -quiet: %w", err)}
		}
		ts, err := w.Scheduled(ctx, q)
		for _, t := range ts {
			verdict := "unread: retire it with  logpipe retire -config ... " + t.Name
			if t.Reads > 0 {
				verdict = "still read (" + t.Usage.String() + "): find the readers first"
			}
			fmt.Fprintf(stdout, "%s: replaced by a migration; %s\n", t.Name, verdict)
		}
		if len(ts) == 0 && err == nil {
			fmt.Fprintln(stdout, "no tables waiting to be retired")
		}
		return err
	case *restore != "":
		table, err := w.Restore(ctx, *restore, by)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s as %s\n", *restore, table)
		return nil
	case *drop:
		g, err := warehouse.ParseAge(*grace)
		if err != nil {
			return usageError{fmt.Errorf("retire: -grace: %w", err)}
		}
		rs, err := w.DropRetired(ctx, g, by, *apply)
		for _, r := range rs {
			switch {
			case r.Dropped:
				fmt.Fprintf(stdout, "dropped %s (retired %s)\n", r.RetiredName, r.Since.Format(time.DateTime))
			case r.Since.IsZero():
				fmt.Fprintf(stdout, "kept %s: not retired through logpipe (no record in table_retirements)\n", r.RetiredName)
			case r.Droppable:
				fmt.Fprintf(stdout, "would drop %s (retired %s); keep a copy first:\n  clickhouse-client --query \"SELECT * FROM %s.%s FORMAT Native\" > %s.native\n  then run again with -apply\n",
					r.RetiredName, r.Since.Format(time.DateTime), cfg.ClickHouse.Database, r.RetiredName, r.RetiredName)
			default:
				fmt.Fprintf(stdout, "kept %s: retired %s, grace period not over\n", r.RetiredName, r.Since.Format(time.DateTime))
			}
		}
		if len(rs) == 0 {
			fmt.Fprintln(stdout, "no retired tables")
		}
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("retire: want TABLE, -restore RETIRED_NAME, or -drop")}
	}
	q, err := warehouse.ParseAge(*quiet)
	if err != nil {
		return usageError{fmt.Errorf("retire: -quiet: %w", err)}
	}
	name, err := w.Retire(ctx, fs.Arg(0), q, by, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "retired %s as %s (no reads in the last %s)\nundo:  logpipe retire -config ... -restore %s\ndrop after the grace period:  logpipe retire -config ... -drop -apply\n", fs.Arg(0), name, *quiet, name)
	return nil
}
