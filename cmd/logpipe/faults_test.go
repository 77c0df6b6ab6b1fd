package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/logpipe/logpipe/internal/chserver"
)

// committedOffsets sums the offsets group has committed on topics (each
// with partitions 0..parts-1): the count of records logpipe has stored
// and acknowledged, as Kafka sees it. logpipe commits only after
// ClickHouse acknowledged the rows, so this is its own progress,
// independent of which server a test's count goes through.
func committedOffsets(ctx context.Context, broker, group string, topics []string, parts int) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 5 * time.Second}
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, tp := range topics {
		for p := range parts {
			req.Topics[tp] = append(req.Topics[tp], p)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := client.OffsetFetch(ctx, req)
	if err == nil {
		err = r.Error
	}
	if err != nil {
		return -1, err
	}
	var sum int64
	for _, ps := range r.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return -1, p.Error
			}
			sum += max(p.CommittedOffset, 0)
		}
	}
	return sum, nil
}

// waitSeen waits until ok holds, checking every 200 ms for up to limit.
// ok also says what it saw; on timeout the test fails with the last
// observation and whatever more explain adds (logs, metrics).
func waitSeen(t *testing.T, limit time.Duration, what string, ok func() (bool, string), explain ...func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		done, seen := ok()
		if done {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			var more []string
			for _, e := range explain {
				more = append(more, e())
			}
			t.Fatalf("%s: not within %s; last seen: %s\n%s", what, limit, seen, strings.Join(more, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics and health" addr=(\S+)`)

// processMetrics reads, from a logpipe process's log, where it serves
// /metrics and /readyz, and returns its progress metrics and readiness:
// what the process itself says about whether it is writing.
func processMetrics(logFile string) string {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return fmt.Sprintf("%s: %v", logFile, err)
	}
	m := metricsAddr.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return logFile + ": no metrics address in the log"
	}
	base := "http://" + string(m[len(m)-1][1])
	c := &http.Client{Timeout: 5 * time.Second}
	var out strings.Builder
	fmt.Fprintf(&out, "%s (%s):\n", logFile, base)
	if res, err := c.Get(base + "/readyz"); err != nil {
		fmt.Fprintf(&out, "  readyz: %v\n", err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Fprintf(&out, "  readyz: %d %s", res.StatusCode, body)
	}
	res, err := c.Get(base + "/metrics")
	if err != nil {
		fmt.Fprintf(&out, "  metrics: %v\n", err)
		return out.String()
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, l := range bytes.Split(body, []byte("\n")) {
		for _, p := range []string{"logpipe_records_total", "logpipe_rows_total", "logpipe_batches_total", "logpipe_commits_total",
			"logpipe_skipped_total", "logpipe_insert_errors_total", "logpipe_insert_retries_total", "logpipe_partition_"} {
			if bytes.HasPrefix(l, []byte(p)) {
				fmt.Fprintf(&out, "  %s\n", l)
			}
		}
	}
	return out.String()
}

// metricSum scrapes a logpipe process (found from its log) and sums the
// samples of the metrics whose name starts with prefix; -1 when it does
// not answer.
func metricSum(logFile, prefix string) float64 {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return -1
	}
	m := metricsAddr.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return -1
	}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + string(m[len(m)-1][1]) + "/metrics")
	if err != nil {
		return -1
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix) {
			var v float64
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// settled reports whether the live processes (by their logs) own parts
// partitions between them, every one past its watermark read and with
// nothing waiting: a fault started before that would hit a generation
// still starting, which waits for every replica (a different row).
func settled(logFiles []string, parts int) (bool, string) {
	owned, waiting := 0, 0
	for _, f := range logFiles {
		for _, l := range strings.Split(processMetrics(f), "\n") {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "logpipe_partition_waiting_seconds{") {
				continue
			}
			owned++
			if !strings.HasSuffix(l, " 0") {
				waiting++
			}
		}
	}
	return owned == parts && waiting == 0, fmt.Sprintf("%d partitions owned (want %d), %d waiting", owned, parts, waiting)
}

// replicasHoldAll waits until every server of a one-shard cluster holds
// at least n rows in its local tables (replication caught up).
func replicasHoldAll(t *testing.T, ctx context.Context, c *chserver.Cluster, n int) {
	t.Helper()
	const q = "SELECT (SELECT count() FROM logs.cdn_requests_local) + (SELECT count() FROM logs.job_events_local) + (SELECT count() FROM logs.ingest_errors_local)"
	waitSeen(t, 180*time.Second, "every replica holds every row", func() (bool, string) {
		var seen []string
		ok := true
		for _, s := range c.Servers {
			out, err := s.Query(ctx, q)
			got, _ := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || got < n {
				ok = false
			}
			seen = append(seen, fmt.Sprintf("%s: %d rows (%v)", s.TCPAddr, got, err))
		}
		return ok, strings.Join(seen, "; ")
	})
}
