package main

import (
	"context"
	"log/slog"

	"github.com/logpipe/logpipe/chclient"
	"github.com/logpipe/logpipe/cmd/internal/app"
	"github.com/logpipe/logpipe/config"
	"github.com/logpipe/logpipe/ingest"
	"github.com/logpipe/logpipe/metrics"
	"github.com/logpipe/logpipe/pipeline"
	"github.com/logpipe/logpipe/sink"
	"github.com/logpipe/logpipe/transform"
)

// serveMetrics starts the /metrics, /healthz and /readyz server.
func serveMetrics(cfg config.Config, conn *chclient.Conn, p *pipeline.Pipeline, w *sink.Writer, c *ingest.Consumer, log *slog.Logger) (*metrics.Server, error) {
	m := metrics.New()
	if err := pipelineMetrics(m, p, w); err != nil {
		return nil, err
	}
	// The lag is read with the consumer's own TLS and SASL settings.
	d, err := app.KafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if err := m.Register(lagMetrics(ingest.NewLag(cfg.Kafka.Brokers, cfg.Kafka.Group, p.Topics(), d), log)); err != nil {
		return nil, err
	}
	// Stalled: a partition's records wait longer than one INSERT attempt,
	// the longest retry pause and a batch's age together.
	stall := metrics.StallCheck(progressOf(p), cfg.ClickHouse.InsertTimeout+cfg.Batch.RetryMax+cfg.Batch.MaxAge)
	return metrics.Start(cfg.HTTP.Listen, metrics.Handler(m.Registry, metrics.ClickHouseCheck(conn.Ping), metrics.ConsumerCheck(c), stall), log)
}

// pipelineMetrics feeds m from p (counters, field coverage, partition
// progress) and w (INSERT latency, errors, retries).
func pipelineMetrics(m *metrics.Metrics, p *pipeline.Pipeline, w *sink.Writer) error {
	w.Hooks = append(w.Hooks, m)
	err := m.Pipeline(func() metrics.Counts {
		s := &p.Stats
		return metrics.Counts{
			Records: s.Records.Load(), Lines: s.Lines.Load(), Rows: s.Rows.Load(), Rejected: s.Rejected.Load(),
			Batches: s.Batches.Load(), Commits: s.Commits.Load(), Skipped: s.Skipped.Load(), Fenced: s.Fenced.Load(),
		}
	})
	if err != nil {
		return err
	}
	err = m.Coverage(func() []metrics.StreamCoverage {
		var out []metrics.StreamCoverage
		for _, s := range p.Coverage() {
			sc := metrics.StreamCoverage{Stream: s.Stream, Lines: s.Lines}
			for f, n := range s.Found {
				sc.Found = append(sc.Found, metrics.FieldLines{Field: transform.CoverageName(f), Lines: n})
			}
			out = append(out, sc)
		}
		return out
	})
	if err != nil {
		return err
	}
	return m.Progress(progressOf(p))
}

// progressOf reports p's partition progress to metrics.
func progressOf(p *pipeline.Pipeline) metrics.ProgressFunc {
	return func() []metrics.PartitionProgress {
		var out []metrics.PartitionProgress
		for _, pp := range p.Progress() {
			out = append(out, metrics.PartitionProgress{Topic: pp.Topic, Partition: pp.Partition, SinceInsert: pp.SinceInsert, Waiting: pp.Waiting})
		}
		return out
	}
}

// lagMetrics exposes the consumer group's lag that l reads from the
// brokers.
func lagMetrics(l *ingest.Lag, log *slog.Logger) *metrics.Lag {
	return &metrics.Lag{Group: l.Group, Log: log, Read: func(ctx context.Context) ([]metrics.PartitionLag, error) {
		parts, err := l.Read(ctx)
		out := make([]metrics.PartitionLag, 0, len(parts))
		for _, p := range parts {
			out = append(out, metrics.PartitionLag{Topic: p.Topic, Partition: p.Partition, End: p.End, Committed: p.Committed, Lag: p.Lag})
		}
		return out, err
	}}
}
