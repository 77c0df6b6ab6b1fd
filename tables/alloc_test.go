package tables_test

import (
	"testing"
	"time"

	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

func cdnRecord(i int) transform.CDNRequest {
	hosts := []string{"www.example.jp", "img.example.jp", "api.example.jp"}
	return transform.CDNRequest{Time: time.Unix(1_790_000_000+int64(i), 0), Vendor: "fastly", Service: "svc", POP: "NRT", Host: hosts[i%3],
		Method: "GET", Scheme: "https", Protocol: "HTTP/2", Path: "/items/1234", PathTemplate: "/items/:id", PathClass: "api",
		Status: 200, CacheStatus: "hit", CacheRaw: "HIT", FromCache: true, BytesSent: 1234, DurationMs: 1.5, ContentType: "application/json",
		CacheControl: "max-age=60", UserAgent: "Mozilla/5.0", UAClass: "browser", Country: "JP", SessionHash: uint64(i)}
}

func jobRecord(i int) transform.JobEvent {
	return transform.JobEvent{Time: time.Unix(1_790_000_000+int64(i), 0), Job: "etl", RunID: "r1", Event: "step", Attempt: 1, Host: "h1",
		Step: "load", StepStatus: "succeeded", ExitCode: 0, HasExitCode: i%2 == 0, CounterNames: []string{"in", "out"}, CounterValues: []float64{1, 2},
		LabelKeys: []string{"env"}, LabelValues: []string{"prod"}}
}

// TestAppendAllocatesNothing: once a batch has held as many rows as it
// holds again after Reset, appending a record allocates nothing (the
// column buffers and LowCardinality dictionaries are kept).
func TestAppendAllocatesNothing(t *testing.T) {
	const rows = 1000
	now := time.Unix(1_790_000_000, 0)
	cdn := tables.NewCDNRequests()
	reqs := make([]transform.CDNRequest, rows)
	jobs := tables.NewJobEvents()
	evs := make([]transform.JobEvent, rows)
	for i := range reqs {
		reqs[i] = cdnRecord(i)
		evs[i] = jobRecord(i)
	}
	fill := func() {
		cdn.Reset()
		jobs.Reset()
		for i := range reqs {
			cdn.Append(&reqs[i], tables.Meta{Topic: "cdn", Offset: int64(i)}, now, 600)
			jobs.Append(&evs[i], tables.Meta{Topic: "jobs", Offset: int64(i)}, now, 300)
		}
	}
	fill()
	if n := testing.AllocsPerRun(5, fill); n != 0 {
		t.Errorf("%v allocations per batch of %d rows after the first, want 0", n, rows)
	}
	if cdn.Len() != rows || jobs.Len() != rows {
		t.Errorf("Len = %d, %d, want %d", cdn.Len(), jobs.Len(), rows)
	}
	row := tables.Row(jobs, 1)
	for _, v := range row {
		if v.Column == "counter_names" {
			if got, ok := v.Value.([]string); !ok || len(got) != 2 || got[1] != "out" {
				t.Errorf("counter_names of row 1 = %#v", v.Value)
			}
		}
	}
}

func BenchmarkAppendCDN(b *testing.B) {
	now := time.Unix(1_790_000_000, 0)
	reqs := make([]transform.CDNRequest, 10_000)
	for i := range reqs {
		reqs[i] = cdnRecord(i)
	}
	batch := tables.NewCDNRequests()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(reqs) == 0 {
			batch.Reset()
		}
		batch.Append(&reqs[i%len(reqs)], tables.Meta{Topic: "cdn", Offset: int64(i)}, now, 600)
	}
}
