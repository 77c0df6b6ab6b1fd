package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/schedule"
)

// cmdSchedules implements "logpipe schedules sync": it writes the
// configured schedules to job_schedules and their expected run times for a
// window to job_expected_runs, where the missed_runs query finds them.
func cmdSchedules(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 || args[0] != "sync" {
		return usageError{fmt.Errorf("schedules: want 'schedules sync -config FILE [-back 1d] [-ahead 2d]'")}
	}
	fs := flag.NewFlagSet("schedules sync", flag.ContinueOnError)
	back := app.DurationFlag(fs, "back", 24*time.Hour, "expected runs from this long ago (1d, 12h)")
	ahead := app.DurationFlag(fs, "ahead", 48*time.Hour, "expected runs until this far ahead (2d, 12h)")
	cfg, err := loadClickHouseConfig(fs, args[1:])
	if err != nil {
		return err
	}
	scheds, err := schedule.FromConfig(cfg.Schedules)
	if err != nil {
		return err
	}
	if len(args) > 1 && fs.NArg() > 0 {
		return usageError{fmt.Errorf("schedules sync: unexpected argument %q", fs.Arg(0))}
	}
	conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	now := time.Now().UTC().Truncate(time.Minute)
	n, err := app.SyncSchedules(ctx, conn, scheds, cfg.Schedules, now.Add(-*back), now.Add(*ahead))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d schedules, %d expected runs written for %s .. %s\n", len(scheds), n, now.Add(-*back).Format(time.RFC3339), now.Add(*ahead).Format(time.RFC3339))
	return nil
}
