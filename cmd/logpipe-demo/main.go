// Command logpipe-demo runs logpipe on this machine with everything it
// needs started locally: an in-process Kafka-protocol broker (kfake) and
// a local ClickHouse server (installed with apt-get when missing).
//
//	logpipe-demo demo   [-dir DIR]        sample logs, the pipeline, the analysts' answers
//	logpipe-demo bench  [-records N] ...  CPU, RSS, throughput, latency of the whole path
//
// It is a binary of its own so that the production binary, logpipe,
// links neither the test rig (testing, kfake, internal/chserver) nor
// anything that installs packages; both build their pipeline with
// cmd/internal/app.
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

const usage = `logpipe-demo: logpipe with Kafka (kfake, in-process) and ClickHouse started locally.

Usage:
  logpipe-demo demo  [-dir DIR] [-cdn N] [-days N]     run the whole pipeline on sample data locally
  logpipe-demo bench [-records N] [-partitions 4,16,64] [-runs 3] [-gomemlimit 450MiB]
                                                      CPU, RSS, throughput, latency locally

Stop the demo's ClickHouse with: make demo-stop
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
		fmt.Fprintf(os.Stderr, "logpipe-demo: %v\n\n%s", err, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "logpipe-demo: %s\n", app.RedactError(err))
		os.Exit(1)
	}
}

// usageError is a command line that cannot be run (exit status 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("no command")}
	}
	log := app.RedactingLogger(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: app.LogLevel()}))
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return cmdDemo(ctx, rest, stdout, log)
	case "bench":
		return cmdBench(ctx, rest, stdout, log)
	case "bench-broker": // the bench's child processes
		return cmdBenchBroker(rest, stdout)
	case "bench-consume":
		return cmdBenchConsume(ctx, rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}
