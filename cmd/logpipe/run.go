package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/budget"
	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/metrics"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
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

func sinkOptions(cfg config.Config) chclient.Options {
	// An unreadable CA or key file was reported by checkTLS at start.
	tlsCfg, _ := cfg.ClickHouse.TLS.Config()
	return chclient.Options{
		Addr:        cfg.ClickHouse.Addr,
		Database:    cfg.ClickHouse.Database,
		User:        cfg.ClickHouse.User,
		Password:    cfg.ClickHouse.Password,
		DialTimeout: cfg.ClickHouse.DialTimeout,
		TLS:         tlsCfg,
		Cluster:     cfg.ClickHouse.Cluster,
	}
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
		if err := migrateDB(ctx, cfg, io.Discard, log); err != nil {
			return err
		}
	}
	o := sinkOptions(cfg)
	// No wait on the server may outlast one INSERT attempt, the
	// handshake of a new connection included.
	o.ReadTimeout = cfg.ClickHouse.InsertTimeout
	o.QueryTimeout = cfg.ClickHouse.InsertTimeout
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		return err
	}
	defer conn.Close()
	p, err := newPipeline(cfg, conn, log)
	if err != nil {
		return err
	}
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	stopDetector, err := startDetector(ctx, cfg, conn, p, log)
	if err != nil {
		return err
	}
	defer stopDetector()
	defer stopAll() // runs first: the detector stores what it holds, then returns
	rules, err := retentionRules(cfg)
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
	c, err := newConsumer(cfg, p, log)
	if err != nil {
		return err
	}
	if cfg.HTTP.Listen != "" {
		srv, err := serveMetrics(cfg, conn, p, c, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	return consumeWith(ctx, cfg, p, c, log)
}

// serveMetrics starts the /metrics, /healthz and /readyz server.
func serveMetrics(cfg config.Config, conn *chclient.Conn, p *pipeline.Pipeline, c *ingest.Consumer, log *slog.Logger) (*metrics.Server, error) {
	m := metrics.New()
	m.Writer(p.Writer())
	if err := m.Pipeline(&p.Stats); err != nil {
		return nil, err
	}
	if err := m.Coverage(p); err != nil {
		return nil, err
	}
	lag := metrics.NewLag(cfg.Kafka.Brokers, cfg.Kafka.Group, p.Topics(), log)
	// The lag is read with the consumer's own TLS and SASL settings.
	d, err := kafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if d != nil {
		lag.Client.Transport = &kafka.Transport{TLS: d.TLS, SASL: d.SASLMechanism, DialTimeout: d.Timeout}
	}
	if err := m.Register(lag); err != nil {
		return nil, err
	}
	if err := m.Progress(p); err != nil {
		return nil, err
	}
	// Stalled: a partition's records wait longer than one INSERT attempt,
	// the longest retry pause and a batch's age together.
	stall := metrics.StallCheck(p, cfg.ClickHouse.InsertTimeout+cfg.Batch.RetryMax+cfg.Batch.MaxAge)
	return metrics.Start(cfg.HTTP.Listen, metrics.Handler(m.Registry, metrics.ClickHouseCheck(conn), metrics.ConsumerCheck(c), stall), log)
}

// newPipeline builds the pipeline that cfg describes, writing through conn.
func newPipeline(cfg config.Config, conn *chclient.Conn, log *slog.Logger) (*pipeline.Pipeline, error) {
	w := sink.NewWriter(conn, log)
	w.Timeout = cfg.ClickHouse.InsertTimeout
	w.RetryMax = cfg.Batch.RetryMax
	pc := pipeline.Config{
		Limits: pipeline.Limits{
			MaxRows:        cfg.Batch.MaxRows,
			MaxBytes:       cfg.Batch.MaxBytes,
			MaxAge:         cfg.Batch.MaxAge,
			MaxRecordBytes: cfg.Kafka.MaxRecordBytes,
		},
		Enrich: transform.EnrichConfig{
			HashKey:         cfg.HashKey(),
			SessionCookies:  cfg.Enrich.SessionCookies,
			DropQueryParams: cfg.Enrich.DropQueryParams,
		},
	}
	pc.Enrich.Redact = redactRules(cfg)
	for _, c := range cfg.Enrich.PathClasses {
		pc.Enrich.PathClasses = append(pc.Enrich.PathClasses, transform.PathClassRule{Class: c.Class, Patterns: c.Patterns})
	}
	for _, t := range cfg.Enrich.PathTemplates {
		pc.Enrich.PathTemplates = append(pc.Enrich.PathTemplates, transform.PathTemplateRule{Match: t.Match, Replace: t.Replace})
	}
	for i, s := range cfg.Streams {
		name := s.Name
		if name == "" {
			name = s.Topic
		}
		opts := transform.ParserOptions{LogFormat: s.LogFormat, Fields: s.Fields, FieldMap: s.FieldMap}
		if _, err := transform.NewParserWith(s.Format, opts); err != nil {
			return nil, fmt.Errorf("config: streams[%d] (format %s): %w", i, s.Format, err)
		}
		pc.Streams = append(pc.Streams, pipeline.Stream{Name: name, Topic: s.Topic, Format: s.Format, Vendor: s.Vendor, Options: opts})
	}
	return pipeline.New(pc, w, log)
}

// consume runs the consumer group until ctx is done or the pipeline
// reports a fatal error.
func consume(ctx context.Context, cfg config.Config, p *pipeline.Pipeline, log *slog.Logger) error {
	c, err := newConsumer(cfg, p, log)
	if err != nil {
		return err
	}
	return consumeWith(ctx, cfg, p, c, log)
}

// newConsumer builds the consumer-group member that cfg describes for p.
func newConsumer(cfg config.Config, p *pipeline.Pipeline, log *slog.Logger) (*ingest.Consumer, error) {
	dialer, err := kafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	return ingest.NewConsumer(ingest.Config{
		Budget:            memoryBudget(cfg, log),
		Dialer:            dialer,
		Brokers:           cfg.Kafka.Brokers,
		Group:             cfg.Kafka.Group,
		Topics:            p.Topics(),
		StartEarliest:     cfg.Kafka.StartOffset == "earliest",
		FetchMaxBytes:     cfg.Kafka.FetchMaxBytes,
		FetchMaxWait:      cfg.Kafka.FetchMaxWait,
		SessionTimeout:    cfg.Kafka.SessionTimeout,
		HeartbeatInterval: cfg.Kafka.SessionTimeout / 4,
		RebalanceTimeout:  cfg.Kafka.RebalanceTimeout,
	}, log)
}

// memoryBudget is the process's one memory budget (memory.limit, or
// derived from the memory limit).
// Unless GOMEMLIMIT is set, the Go soft memory limit is set to match it.
func memoryBudget(cfg config.Config, log *slog.Logger) *budget.Budget {
	d := budget.Derived{Bytes: cfg.Memory.Limit, From: "memory.limit"}
	if d.Bytes <= 0 {
		d = budget.Default()
	}
	goLimit := budget.ApplyGoLimit(d)
	log.Info("memory budget", "bytes", d.Bytes, "from", d.From, "process_limit", d.ProcessLimit, "go_memory_limit", goLimit)
	return budget.New(d.Bytes)
}

// consumeWith runs c until ctx is done or the pipeline reports a fatal
// error.
func consumeWith(ctx context.Context, cfg config.Config, p *pipeline.Pipeline, c *ingest.Consumer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fatal error
	go func() {
		select {
		case fatal = <-p.Fatal():
			log.Error("stopping: a stream cannot go on", "err", fatal)
			cancel()
		case <-ctx.Done():
		}
	}()
	log.Info("consuming", "brokers", strings.Join(cfg.Kafka.Brokers, ","), "group", cfg.Kafka.Group, "topics", strings.Join(p.Topics(), ","))
	start := time.Now()
	err := c.Run(ctx, p)
	log.Info("stopped", "records", p.Stats.Records.Load(), "rows", p.Stats.Rows.Load(), "rejected", p.Stats.Rejected.Load(), "elapsed", time.Since(start).Round(time.Millisecond))
	if fatal != nil {
		return fatal
	}
	return err
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
	return migrateDB(ctx, cfg, stdout, log)
}

// migrationTarget is where migrateDB applies the migrations.
func migrationTarget(cfg config.Config) (schemas.Target, error) {
	rules, err := retentionRules(cfg)
	if err != nil {
		return schemas.Target{}, err
	}
	return schemas.Target{Cluster: cfg.ClickHouse.Cluster, Database: cfg.ClickHouse.Database, Retention: rules}, nil
}

// printMigrations is migrate -print: the DDL for the given server version,
// or for the configured server's.
func printMigrations(ctx context.Context, cfg config.Config, version string, stdout io.Writer) error {
	t, err := migrationTarget(cfg)
	if err != nil {
		return err
	}
	if version != "" {
		if t.Server, err = schemas.ParseServerVersion(version); err != nil {
			return usageError{fmt.Errorf("migrate: -server-version: %w", err)}
		}
	} else {
		conn, err := chclient.Open(ctx, sinkOptions(cfg))
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

// migrateDB creates the database if needed and applies the migrations.
func migrateDB(ctx context.Context, cfg config.Config, out io.Writer, log *slog.Logger) error {
	o := sinkOptions(cfg)
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	t, err := migrationTarget(cfg)
	if err != nil {
		return err
	}
	applied, err := schemas.MigrateTarget(ctx, conn, t)
	for _, m := range applied {
		fmt.Fprintf(out, "applied %04d_%s\n", m.Version, m.Name)
		log.Info("migration applied", "version", m.Version, "name", m.Name)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "schema is up to date")
	}
	return nil
}
