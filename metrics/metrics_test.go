package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipe/logpipe/metrics"
)

// scrape fetches url/metrics and returns every sample by its full name
// with labels as exposed, e.g. `logpipe_insert_rows_total{table="job_events"}`.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %s", res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestWriterHooks checks what the writer hooks record: latency of every
// attempt, errors, retries and acknowledged rows, by table.
func TestWriterHooks(t *testing.T) {
	m := metrics.New()
	m.OnInsert("cdn_requests", 100, 20*time.Millisecond, nil)
	m.OnInsert("cdn_requests", 50, 3*time.Second, fmt.Errorf("i/o timeout"))
	m.OnRetry("cdn_requests", 1, fmt.Errorf("i/o timeout"))
	m.OnInsert("cdn_requests", 50, 40*time.Millisecond, nil)
	hs, err := metrics.Start("127.0.0.1:0", metrics.Handler(m.Registry), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	got := scrape(t, "http://"+hs.Addr())
	for name, want := range map[string]float64{
		`logpipe_insert_rows_total{table="cdn_requests"}`:                         150,
		`logpipe_insert_errors_total{table="cdn_requests"}`:                       1,
		`logpipe_insert_retries_total{table="cdn_requests"}`:                      1,
		`logpipe_insert_duration_seconds_count{table="cdn_requests"}`:             3,
		`logpipe_insert_duration_seconds_bucket{table="cdn_requests",le="0.025"}`: 1,
		`logpipe_insert_duration_seconds_bucket{table="cdn_requests",le="0.05"}`:  2,
		`logpipe_insert_duration_seconds_bucket{table="cdn_requests",le="5"}`:     3,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if code, body := get(t, "http://"+hs.Addr()+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz with no checks: %d %q", code, body)
	}
}

// BenchmarkScrape measures one /metrics scrape without the broker lag
// collector (runtime, process, pipeline and insert metrics).
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for _, tbl := range []string{"job_events", "cdn_requests", "ingest_errors"} {
		m.OnInsert(tbl, 1000, 30*time.Millisecond, nil)
	}
	m.Pipeline(func() metrics.Counts { return metrics.Counts{Records: 1} })
	hs, err := metrics.Start("127.0.0.1:0", metrics.Handler(m.Registry), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer hs.Close()
	url := "http://" + hs.Addr() + "/metrics"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkInsertHook measures the per-INSERT cost of the metrics hook.
func BenchmarkInsertHook(b *testing.B) {
	m := metrics.New()
	for i := 0; i < b.N; i++ {
		m.OnInsert("cdn_requests", 1000, 30*time.Millisecond, nil)
	}
}

// TestLag: the lag collector reports what its Read returns, and only the
// error counter when the brokers do not answer (a stale lag would
// mislead).
func TestLag(t *testing.T) {
	var fail atomic.Bool
	m := metrics.New()
	err := m.Register(&metrics.Lag{Group: "g", Log: slog.New(slog.DiscardHandler), Read: func(context.Context) ([]metrics.PartitionLag, error) {
		if fail.Load() {
			return nil, errors.New("brokers down")
		}
		return []metrics.PartitionLag{{Topic: "cdn", Partition: 2, End: 100, Committed: 40, Lag: 60}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := metrics.Start("127.0.0.1:0", metrics.Handler(m.Registry), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	got := scrape(t, "http://"+hs.Addr())
	for name, want := range map[string]float64{
		`logpipe_consumer_lag{partition="2",topic="cdn"}`:              60,
		`logpipe_partition_end_offset{partition="2",topic="cdn"}`:      100,
		`logpipe_consumer_committed_offset{partition="2",topic="cdn"}`: 40,
		`logpipe_consumer_lag_scrape_errors_total`:                     0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	fail.Store(true)
	got = scrape(t, "http://"+hs.Addr())
	if v, ok := got[`logpipe_consumer_lag{partition="2",topic="cdn"}`]; ok {
		t.Errorf("lag %v reported while the brokers do not answer", v)
	}
	if v := got[`logpipe_consumer_lag_scrape_errors_total`]; v != 1 {
		t.Errorf("scrape errors %v, want 1", v)
	}
}
