package ingest

import (
	"log/slog"
	"testing"

	"github.com/logpipe/logpipe/budget"
)

// The per-partition queues shrink as partitions share one budget,
// within bounds, and keep the configured sizes without a budget.
func TestReaderSizes(t *testing.T) {
	for _, tc := range []struct {
		budget     int64
		partitions int
		fetch      int
		queue      int
	}{
		{0, 4, 16 << 20, 1024},       // no budget: as configured
		{96 << 20, 4, 6 << 20, 1024}, // 96 MiB / 4 / 4 fetch; queue capped
		{96 << 20, 16, 6 << 20, 384}, // fetch: 96 MiB / 4 / 4 fetch tokens; queue: 96 MiB / 16 / 16 / 1 KiB
		{96 << 20, 64, 6 << 20, 96},
		{1 << 20, 64, 64 << 10, 16}, // floors
	} {
		cfg := Config{Brokers: []string{"b:9092"}, Group: "g", Topics: []string{"t"}}
		if tc.budget > 0 {
			cfg.Budget = budget.New(tc.budget)
		}
		c, err := NewConsumer(cfg, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		fetch, queue := c.readerSizes(tc.partitions)
		if fetch != tc.fetch || queue != tc.queue {
			t.Errorf("budget %d, %d partitions: fetch %d queue %d; want %d, %d", tc.budget, tc.partitions, fetch, queue, tc.fetch, tc.queue)
		}
	}
}
