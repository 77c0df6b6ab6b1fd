// Command logpipe reads batch-job logs and CDN access logs from Kafka,
// parses and enriches them, and writes them to ClickHouse.
//
//	logpipe run     -config FILE          consume and store until stopped
//	logpipe migrate -config FILE          apply pending schema migrations
//	logpipe check   -format NAME FILE|-   parse lines locally and show the rows
//	logpipe query   -config FILE NAME     run a catalogue query
//	logpipe watch   -config FILE          alert on catalogue query results
//
// The demo and the bench (Kafka and ClickHouse started locally) are the
// separate binary logpipe-demo, so that this one links no test rig.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/logpipe/logpipe/cmd/internal/app"
)

const usage = `logpipe: Kafka -> parse and enrich -> ClickHouse, for batch-job and CDN logs.

Usage:
  logpipe run     -config FILE [-migrate]        consume and store until SIGTERM/SIGINT
  logpipe migrate -config FILE [-print [-server-version 24.8]]  apply pending migrations (-print: show the DDL)
  logpipe check   -format NAME [-json] [-field-map k=v,...] [-config FILE] FILE|-
                                                 parse lines without Kafka or ClickHouse, with field coverage
  logpipe validate -config FILE                  check a config offline: every error with its field path
  logpipe query   -config FILE [-format table|csv|json] NAME [-param k=v ...]
  logpipe queries                                list the query catalogue
  logpipe schedules sync -config FILE            write expected run times for missed-run detection
  logpipe watch   -config FILE [-once] [-migrate] run alert rules (catalogue queries) and notify webhooks
  logpipe formats [NAME [-vendor-config]]        list the log formats; a format's fields and vendor-side config
  logpipe version                                print the version
  logpipe tables    -config FILE [-all] [-window 30d]   tables with size and reads (system.query_log)
  logpipe retention -config FILE [-apply]             partitions past retention (dropped with -apply)
  logpipe retire    -config FILE TABLE | -restore NAME | -drop [-apply]
  logpipe hash    -key-file FILE < ids.txt       print the stored keyed hash of each id (join incident reports back)

Every config field can be overridden by an environment variable, e.g.
LOGPIPE_CLICKHOUSE_ADDR, LOGPIPE_KAFKA_BROKERS, LOGPIPE_HASH_KEY; a
LOGPIPE_* name that is no field is an error. Durations take 90m, 12h, 30d, 1d12h.
Exit status: 0 done, 1 failure, 2 usage error.
The demo and the bench are the separate binary logpipe-demo (make demo, make bench).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "logpipe: %v\n\n%s", err, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "logpipe: %s\n", app.RedactError(err))
		os.Exit(1)
	}
}

// usageError is a command line that cannot be run (exit status 2);
// other errors are failures (exit status 1).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("no command")}
	}
	log := app.RedactingLogger(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: app.LogLevel()}))
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, log)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, log)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "query":
		return cmdQuery(ctx, rest, stdout, log)
	case "queries":
		return cmdQueries(stdout)
	case "retention":
		return cmdRetention(ctx, rest, stdout, log)
	case "tables":
		return cmdTables(ctx, rest, stdout, log)
	case "retire":
		return cmdRetire(ctx, rest, stdout, log)
	case "schedules":
		return cmdSchedules(ctx, rest, stdout, log)
	case "watch":
		return cmdWatch(ctx, rest, stdout, log)
	case "formats":
		return cmdFormats(rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(stdout)
	case "hash":
		return cmdHash(ctx, rest, os.Stdin, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}
