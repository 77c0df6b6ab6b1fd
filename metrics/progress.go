package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PartitionProgress is where one partition owned by this process stands
// (pipeline.PartitionProgress).
type PartitionProgress struct {
	Topic     string
	Partition int32
	// SinceInsert is the time since the partition's rows were last
	// stored (or, before its first insert, since it was assigned).
	SinceInsert time.Duration
	// Waiting is how long the partition has had work it has not
	// finished; zero when it is caught up.
	Waiting time.Duration
}

// Progresser reports the progress of the partitions this process owns.
type Progresser interface {
	Progress() []PartitionProgress
}

// ProgressFunc is a function used as a Progresser.
type ProgressFunc func() []PartitionProgress

// Progress implements Progresser.
func (f ProgressFunc) Progress() []PartitionProgress { return f() }

var (
	sinceInsertDesc = prometheus.NewDesc(Namespace+"_partition_seconds_since_insert",
		"Seconds since the partition's rows were last stored in ClickHouse (before the first insert: since it was assigned), per partition this process owns.",
		[]string{"topic", "partition"}, nil)
	waitingDesc = prometheus.NewDesc(Namespace+"_partition_waiting_seconds",
		"Seconds the partition has had records read and not yet stored (or, after assignment, watermarks not yet read); 0 when caught up. Grows without bound while writes are stalled.",
		[]string{"topic", "partition"}, nil)
)

// progressCollector reads the partitions' progress at scrape time.
type progressCollector struct{ p Progresser }

func (c progressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinceInsertDesc
	ch <- waitingDesc
}

func (c progressCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.p.Progress() {
		labels := []string{p.Topic, fmt.Sprint(p.Partition)}
		ch <- prometheus.MustNewConstMetric(sinceInsertDesc, prometheus.GaugeValue, p.SinceInsert.Seconds(), labels...)
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, p.Waiting.Seconds(), labels...)
	}
}

// Progress registers logpipe_partition_seconds_since_insert and
// logpipe_partition_waiting_seconds for the partitions p owns.
func (m *Metrics) Progress(p Progresser) error {
	return m.Register(progressCollector{p: p})
}

// StallCheck fails while a partition has had work waiting for longer than
// limit: records read that no INSERT has stored (every attempt failing or
// hanging), or watermarks that cannot be read. Choose limit above one
// INSERT attempt plus the longest retry pause, so that a retry that
// succeeds never shows.
func StallCheck(p Progresser, limit time.Duration) Check {
	return Check{Name: "insert", Func: func(context.Context) error {
		var stalled []string
		for _, pp := range p.Progress() {
			if pp.Waiting > limit {
				stalled = append(stalled, fmt.Sprintf("%s/%d waiting %s, %s since the last insert",
					pp.Topic, pp.Partition, pp.Waiting.Round(time.Second), pp.SinceInsert.Round(time.Second)))
			}
		}
		if len(stalled) > 0 {
			return fmt.Errorf("writes stalled (over %s): %s", limit, strings.Join(stalled, "; "))
		}
		return nil
	}}
}
