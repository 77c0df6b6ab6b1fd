package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/warehouse"
)

// loadConfig loads and validates the config for run: every error that
// can be found without a connection (logpipe validate's list) fails it,
// before anything connects.
func loadConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	path := fs.String("config", os.Getenv("LOGPIPE_CONFIG"), "config file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return config.Config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	cfg, err := config.LoadOnly(*path, os.Environ())
	if err != nil {
		return cfg, err
	}
	if errs := validationErrors(cfg, false); len(errs) > 0 {
		return cfg, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// loadClickHouseConfig is loadConfig for commands that only need the
// clickhouse section (no brokers, streams or hash key).
func loadClickHouseConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	path := fs.String("config", os.Getenv("LOGPIPE_CONFIG"), "config file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return config.Config{}, usageError{err}
	}
	return config.LoadClickHouse(*path, os.Environ())
}

// parseFlags parses flags given before or after the other arguments
// (logpipe retire -config F TABLE -reason R), which fs.Args returns.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// checkConfig reports what loading found worth a warning and fails on TLS
// files that cannot be read.
func checkConfig(cfg config.Config, log *slog.Logger) error {
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if _, err := cfg.ClickHouse.TLS.Config(); err != nil {
		return fmt.Errorf("config: clickhouse.%w", err)
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	migrate := fs.Bool("migrate", false, "apply pending migrations before consuming")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if err := checkConfig(cfg, log); err != nil {
		return err
	}
	if *migrate {
		if err := app.Migrate(ctx, cfg, io.Discard, log); err != nil {
			return err
		}
	}
	o := app.SinkOptions(cfg)
	// No wait on the server may outlast one INSERT attempt, the
	// handshake of a new connection included.
	o.ReadTimeout = cfg.ClickHouse.InsertTimeout
	o.QueryTimeout = cfg.ClickHouse.InsertTimeout
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	detector, stopDetector, err := startDetector(ctx, cfg, conn, log)
	if err != nil {
		return err
	}
	defer stopDetector()
	defer stopAll() // runs first: the detector stores what it holds, then returns
	var hooks []pipeline.Hook
	if detector != nil {
		hooks = append(hooks, detector)
	}
	p, w, err := app.NewPipeline(cfg, conn, log, hooks...)
	if err != nil {
		return err
	}
	rules, err := app.RetentionRules(cfg)
	if err != nil {
		return err
	}
	if len(rules) > 0 {
		interval := cfg.Retention.Interval
		if interval <= 0 {
			interval = time.Hour
		}
		wh := warehouse.New(conn)
		wh.Cluster = cfg.ClickHouse.Cluster
		go wh.Run(ctx, rules, interval, func(ps []warehouse.Partition, err error) {
			for _, p := range ps {
				if !p.Dropped {
					continue // the table's TTL drops it
				}
				log.Info("retention: partition dropped", "table", p.Table, "partition", p.Partition, "rows", p.Rows)
			}
			if err != nil {
				log.Error("retention failed", "err", err)
			}
		})
	}
	c, err := app.NewConsumer(cfg, p, log)
	if err != nil {
		return err
	}
	if cfg.HTTP.Listen != "" {
		srv, err := serveMetrics(cfg, conn, p, w, c, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	return app.ConsumeWith(ctx, cfg, p, c, log)
}

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cluster := fs.String("cluster", "", "apply the migrations ON CLUSTER `name`: replicated local tables plus Distributed tables under the usual names (default: clickhouse.cluster from the config, else one server)")
	printDDL := fs.Bool("print", false, "print the DDL the migrations send instead of applying them (all of them, rendered for the server)")
	serverVersion := fs.String("server-version", "", "with -print: render for this ClickHouse version (e.g. 24.8, 18.16) without connecting")
	cfg, err := loadClickHouseConfig(fs, args)
	if err != nil {
		return err
	}
	if *cluster != "" {
		cfg.ClickHouse.Cluster = *cluster
		if err := cfg.ValidateClickHouse(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if err := checkConfig(cfg, log); err != nil {
		return err
	}
	if *serverVersion != "" && !*printDDL {
		return usageError{errors.New("migrate: -server-version goes with -print (applying reads the version from the server)")}
	}
	if *printDDL {
		return printMigrations(ctx, cfg, *serverVersion, stdout)
	}
	return app.Migrate(ctx, cfg, stdout, log)
}

// printMigrations is migrate -print: the DDL for the given server version,
// or for the configured server's.
func printMigrations(ctx context.Context, cfg config.Config, version string, stdout io.Writer) error {
	t, err := app.MigrationTarget(cfg)
	if err != nil {
		return err
	}
	if version != "" {
		if t.Server, err = schemas.ParseServerVersion(version); err != nil {
			return usageError{fmt.Errorf("migrate: -server-version: %w", err)}
		}
	} else {
		conn, err := chclient.Open(ctx, app.SinkOptions(cfg))
		if err != nil {
			return fmt.Errorf("migrate: %w (or give -server-version)", err)
		}
		defer conn.Close()
		if t.Server, err = schemas.DetectServerVersion(ctx, conn); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if t.OnCluster() {
		t.LocalWithoutComments = !t.Server.AtLeast(schemas.ServerVersion{Major: 19, Minor: 1})
	}
	return schemas.Print(stdout, t)
}
