package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lag reports, at scrape time, how far the consumer group is behind each
// partition of its topics, as Read tells (ingest.Lag asks the brokers:
// every partition of the group, not only those this process owns).
type Lag struct {
	// Read returns the group's position in every partition.
	Read    func(ctx context.Context) ([]PartitionLag, error)
	Group   string        // for logs
	Timeout time.Duration // per scrape; default 5s
	Log     *slog.Logger

	failures atomic.Int64
}

// PartitionLag is the group's position in one partition.
type PartitionLag struct {
	Topic     string
	Partition int
	End       int64 // offset of the next record to be produced
	Committed int64 // -1 = the group never committed
	Lag       int64
}

var (
	lagDesc       = prometheus.NewDesc(Namespace+"_consumer_lag", "Records in the partition not yet committed by the consumer group (end offset - committed offset).", []string{"topic", "partition"}, nil)
	endDesc       = prometheus.NewDesc(Namespace+"_partition_end_offset", "Offset the next record produced to the partition will get.", []string{"topic", "partition"}, nil)
	committedDesc = prometheus.NewDesc(Namespace+"_consumer_committed_offset", "Offset committed by the consumer group (next record to read); -1 when none.", []string{"topic", "partition"}, nil)
	lagErrDesc    = prometheus.NewDesc(Namespace+"_consumer_lag_scrape_errors_total", "Scrapes where the lag could not be read from the brokers.", nil, nil)
)

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- endDesc
	ch <- committedDesc
	ch <- lagErrDesc
}

// Collect implements prometheus.Collector. When the brokers do not answer,
// only the error counter is reported (a stale lag would mislead).
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	timeout := l.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	parts, err := l.Read(ctx)
	if err != nil {
		l.failures.Add(1)
		if l.Log != nil {
			l.Log.Warn("consumer lag: reading offsets failed", "group", l.Group, "err", err)
		}
	}
	for _, p := range parts {
		labels := []string{p.Topic, fmt.Sprint(p.Partition)}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), labels...)
		ch <- prometheus.MustNewConstMetric(endDesc, prometheus.GaugeValue, float64(p.End), labels...)
		ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(p.Committed), labels...)
	}
	ch <- prometheus.MustNewConstMetric(lagErrDesc, prometheus.CounterValue, float64(l.failures.Load()))
}
