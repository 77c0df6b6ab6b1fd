# logpipe: two commands do everything on a fresh machine.
#   make demo   Kafka (in-process), ClickHouse (local), sample logs, analyst answers
#   make test   every test, the end-to-end ones against a real ClickHouse server
GO        ?= go
DEMO_DIR  ?= .logpipe-demo
FUZZTIME  ?= 30s

.PHONY: all build demo test test-unit vet bench bench-queries bench-queries-modern fuzz clickhouse chdb demo-stop clean soak

all: build

# bin/logpipe is the production binary; bin/logpipe-demo (make demo, make
# bench) carries the local test rig: kfake and the ClickHouse installer.
build:
	$(GO) build -o bin/logpipe ./cmd/logpipe
	$(GO) build -o bin/logpipe-demo ./cmd/logpipe-demo

# The local ClickHouse server (Debian's clickhouse-server) and ZooKeeper (for
# the cluster tests) are installed with apt-get when missing; tests and the
# demo start their own on free ports.
clickhouse:
	bash deploy/local/cluster.sh install

# The embedded modern ClickHouse for the 26.x SQL-level tests (chdb's
# libchdb.so, internal/chdbtest), fetched with npm into ~/.cache/logpipe-chdb
# when missing.
chdb:
	bash deploy/local/chdb.sh install

demo: clickhouse
	$(GO) run ./cmd/logpipe-demo demo -dir $(DEMO_DIR)

demo-stop:
	bash deploy/local/clickhouse.sh stop $(DEMO_DIR)/clickhouse

# The fast unit tests also run under the race detector (the parsers are
# shared between partition workers; config, schedules and watch rules are
# read concurrently).
RACE_PKGS ?= ./transform/ ./config/ ./schedule/ ./watch/
test: clickhouse chdb vet
	$(GO) test -count=1 -race -short $(RACE_PKGS)
	$(GO) test -count=1 -timeout 30m ./...

test-unit:
	$(GO) test -count=1 -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Transform micro-benchmarks (ns and allocs per record, per format), then the
# whole path: a preloaded backlog in a kfake broker (its own process) ->
# logpipe's pipeline (its own process: CPU and peak RSS; bin/logpipe-demo) -> local ClickHouse, for each
# partition count and under GOMEMLIMIT, medians of BENCH_RUNS; then latency.
BENCH_RECORDS    ?= 1000000
BENCH_PARTITIONS ?= 4,16,64
BENCH_RUNS       ?= 3
bench: clickhouse
	$(GO) test -run '^$$' -bench . -benchmem ./transform/
	$(GO) build -o bin/logpipe-demo ./cmd/logpipe-demo
	./bin/logpipe-demo bench -records $(BENCH_RECORDS) -partitions $(BENCH_PARTITIONS) -runs $(BENCH_RUNS) -gomemlimit 450MiB
	$(MAKE) bench-queries
	$(MAKE) bench-queries-modern

# Every catalogue query on 10M CDN rows (one day) and 1M job runs, generated
# inside ClickHouse: seconds per query (s/query). LOGPIPE_CLICKHOUSE_ADDR
# keeps the data set between runs on a long-lived server.
BENCH_CDN_ROWS ?= 10000000
BENCH_JOB_RUNS ?= 1000000
bench-queries: clickhouse
	LOGPIPE_BENCH_CDN_ROWS=$(BENCH_CDN_ROWS) LOGPIPE_BENCH_JOB_RUNS=$(BENCH_JOB_RUNS) \
	  $(GO) test -run '^$$' -bench '^BenchmarkCatalogue$$' -benchtime 3x -timeout 60m ./schemas/ | $(BENCH_QUERIES_TABLE)

# The same data sets and queries on the embedded modern ClickHouse (chdb 26.5,
# in the benchmark's own process, default settings); the data are loaded
# afresh by every run.
bench-queries-modern: chdb
	LOGPIPE_BENCH_CDN_ROWS=$(BENCH_CDN_ROWS) LOGPIPE_BENCH_JOB_RUNS=$(BENCH_JOB_RUNS) \
	  $(GO) test -run '^$$' -bench '^BenchmarkCatalogueModern$$' -benchtime 3x -timeout 120m -v ./schemas/ | $(BENCH_QUERIES_TABLE)

# One line per query of go test -bench's output: name, s/query, rows; the
# other lines as they are.
BENCH_QUERIES_TABLE = awk '/s\/query/ { for (i = 1; i <= NF; i++) if ($$i == "s/query") printf "%-45s %8.3f s/query  %s rows\n", $$1, $$(i-1), $$(i-3) } !/s\/query/'

fuzz:
	@for pkg in ./transform/ ./pipeline/; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf bin

# Larger crash / outage / rebalance runs, the zombie scenarios repeated, the
# precision run, and the hang rows with 30 s hangs instead of 10 s (not part
# of make test).
SOAK_RECORDS ?= 300000
SOAK_KILLS   ?= 20
SOAK_HANG    ?= 30s
SOAK_STORM   ?= 60s
# Minutes of normal CDN traffic before the leak in the precision run.
SOAK_PRECISION_MINUTES ?= 30
ZOMBIE_RUNS    ?= 10
ZOMBIE_RECORDS ?= 20000
soak: clickhouse
	LOGPIPE_SOAK_RECORDS=$(SOAK_RECORDS) LOGPIPE_SOAK_KILLS=$(SOAK_KILLS) LOGPIPE_SOAK_HANG=$(SOAK_HANG) LOGPIPE_SOAK_STORM=$(SOAK_STORM) \
	LOGPIPE_SOAK_PRECISION_MINUTES=$(SOAK_PRECISION_MINUTES) \
	LOGPIPE_ZOMBIE_RUNS=$(ZOMBIE_RUNS) LOGPIPE_ZOMBIE_RECORDS=$(ZOMBIE_RECORDS) \
	  $(GO) test -count=1 -timeout 150m -v -run 'TestCrashLoop|TestClickHouseOutage|TestRebalance|TestRedelivery|TestClickHouseHang|TestBrokerHang|TestClusterHangs|TestClusterStops|TestPrecisionEndToEnd|TestZombie' ./cmd/logpipe/ ./pipeline/ 2>&1 | grep -E '^(=== RUN|--- |    .*(kill|crash loop|consumed|peak|hung|stored|alert|normal:|watch cycle|run [0-9]))|^ok|^FAIL'
