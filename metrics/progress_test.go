package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logpipe/logpipe/metrics"
)

type fixedProgress []metrics.PartitionProgress

func (f fixedProgress) Progress() []metrics.PartitionProgress { return f }

// TestStallCheck: /readyz fails, naming the partition, once records have
// waited longer than the limit, and only then.
func TestStallCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    fixedProgress
		want string // "" = ready
	}{
		{"nothing owned", nil, ""},
		{"caught up long ago", fixedProgress{{Topic: "cdn", Partition: 1, SinceInsert: time.Hour}}, ""},
		{"a retry under way", fixedProgress{{Topic: "cdn", Partition: 1, SinceInsert: 40 * time.Second, Waiting: 40 * time.Second}}, ""},
		{"stalled", fixedProgress{
			{Topic: "cdn", Partition: 0, SinceInsert: time.Second},
			{Topic: "cdn", Partition: 3, SinceInsert: 200 * time.Second, Waiting: 95 * time.Second},
		}, "writes stalled (over 1m30s): cdn/3 waiting 1m35s, 3m20s since the last insert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := metrics.StallCheck(tc.p, 90*time.Second).Func(context.Background())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want ready, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
