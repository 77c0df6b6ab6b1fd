// Package app builds logpipe's parts from a config.Config — the
// ClickHouse connection options, the pipeline, the Kafka consumer, the
// migrations, the schedules — and renders results, for the two binaries:
// logpipe (production) and logpipe-demo (demo and bench). Besides the
// binaries it is the one package that knows Kafka and ClickHouse together
// (docs/architecture.md).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/logpipe/logpipe/budget"
	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/checkpoint"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/schemas"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/warehouse"
)

// SinkOptions are the ClickHouse connection options of cfg.
func SinkOptions(cfg config.Config) chclient.Options {
	// An unreadable CA or key file was reported before: run and validate
	// check the TLS files (cmd/logpipe validate.go), migrate and the other
	// commands in checkConfig.
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

// NewPipeline builds the pipeline that cfg describes, with hooks, writing
// through conn with the writer it returns (to attach metrics to).
func NewPipeline(cfg config.Config, conn *chclient.Conn, log *slog.Logger, hooks ...pipeline.Hook) (*pipeline.Pipeline, *sink.Writer, error) {
	w := sink.NewWriter(conn, log)
	w.Timeout = cfg.ClickHouse.InsertTimeout
	w.RetryMax = cfg.Batch.RetryMax
	pc := pipeline.Config{
		// One attempt at taking a partition over waits for inserts of its
		// earlier owners (up to 30s, then kills them).
		AttemptTimeout: 30*time.Second + 2*w.Timeout,
		Hooks:          hooks,
		Limits: pipeline.Limits{
			MaxRows:        cfg.Batch.MaxRows,
			MaxBytes:       cfg.Batch.MaxBytes,
			MaxAge:         cfg.Batch.MaxAge,
			MaxRecordBytes: cfg.Kafka.MaxRecordBytes,
		},
		Enrich: cfg.EnrichConfig(),
	}
	// pipeline.New checks the streams' formats and options and the
	// enrichment (transform.CheckParser, EnrichConfig.Check), as logpipe
	// validate does before.
	for _, s := range cfg.Streams {
		pc.Streams = append(pc.Streams, pipeline.Stream{Name: s.DisplayName(), Topic: s.Topic, Format: s.Format, Vendor: s.Vendor, Options: s.ParserOptions()})
	}
	p, err := pipeline.New(pc, WriterInserter{w}, checkpoint.New(conn), log)
	return p, w, err
}

// WriterInserter is a sink.Writer as the pipeline's Inserter: the
// pipeline names its batches by their methods (pipeline.Batch), not by
// sink's type, so that it does not import sink.
type WriterInserter struct{ W *sink.Writer }

// InsertAt implements pipeline.Inserter.
func (i WriterInserter) InsertAt(ctx context.Context, b pipeline.Batch, topic string, part int32, firstOffset int64, epoch uint64) error {
	return i.W.InsertAt(ctx, b, topic, part, firstOffset, epoch)
}

// Consume runs the consumer group until ctx is done or the pipeline
// reports a fatal error.
func Consume(ctx context.Context, cfg config.Config, p *pipeline.Pipeline, log *slog.Logger) error {
	c, err := NewConsumer(cfg, p, log)
	if err != nil {
		return err
	}
	return ConsumeWith(ctx, cfg, p, c, log)
}

// NewConsumer builds the consumer-group member that cfg describes for p.
func NewConsumer(cfg config.Config, p *pipeline.Pipeline, log *slog.Logger) (*ingest.Consumer, error) {
	dialer, err := KafkaDialer(cfg.Kafka)
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

// ConsumeWith runs c until ctx is done or the pipeline reports a fatal
// error.
func ConsumeWith(ctx context.Context, cfg config.Config, p *pipeline.Pipeline, c *ingest.Consumer, log *slog.Logger) error {
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

// MigrationTarget is where Migrate applies the migrations.
func MigrationTarget(cfg config.Config) (schemas.Target, error) {
	rules, err := RetentionRules(cfg)
	if err != nil {
		return schemas.Target{}, err
	}
	return schemas.Target{Cluster: cfg.ClickHouse.Cluster, Database: cfg.ClickHouse.Database, Retention: rules}, nil
}

// Migrate creates the database if needed and applies the migrations.
func Migrate(ctx context.Context, cfg config.Config, out io.Writer, log *slog.Logger) error {
	o := SinkOptions(cfg)
	if err := chclient.CreateDatabase(ctx, o); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := chclient.Open(ctx, o)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	t, err := MigrationTarget(cfg)
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

// RetentionRules are the retention.tables ages of cfg. Its error names
// every invalid age (config: retention.tables.NAME: ...), joined.
func RetentionRules(cfg config.Config) (map[string]time.Duration, error) {
	rules := map[string]time.Duration{}
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(cfg.Retention.Tables)) {
		d, err := warehouse.ParseAge(cfg.Retention.Tables[t])
		if err != nil {
			errs = append(errs, fmt.Errorf("retention.tables.%s: %w", t, err))
		}
		rules[t] = d
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return rules, nil
}
