# logpipe: two commands do everything on a fresh machine.
#   make demo   Kafka (in-process), ClickHouse (local), sample logs, analyst answers
#   make test   every test, the end-to-end ones against a real ClickHouse server
GO        ?= go
DEMO_DIR  ?= .logpipe-demo
FUZZTIME  ?= 30s

.PHONY: all build demo test test-unit vet bench fuzz clickhouse demo-stop clean soak

all: build

build:
	$(GO) build -o bin/logpipe ./cmd/logpipe

# The local ClickHouse server (Debian's clickhouse-server) and ZooKeeper (for
# the cluster tests) are installed with apt-get when missing; tests and the
# demo start their own on free ports.
clickhouse:
	bash deploy/local/cluster.sh install

demo: clickhouse
	$(GO) run ./cmd/logpipe demo -dir $(DEMO_DIR)

demo-stop:
	bash deploy/local/clickhouse.sh stop $(DEMO_DIR)/clickhouse

test: clickhouse vet
	$(GO) test -count=1 -timeout 30m ./...

test-unit:
	$(GO) test -count=1 -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Transform micro-benchmarks (ns and allocs per record, per format), then the
# whole path: a preloaded backlog in a kfake broker (its own process) ->
# logpipe (its own process: CPU and peak RSS) -> local ClickHouse, for each
# partition count and under GOMEMLIMIT, medians of BENCH_RUNS; then latency.
BENCH_RECORDS    ?= 1000000
BENCH_PARTITIONS ?= 4,16,64
BENCH_RUNS       ?= 3
bench: clickhouse
	$(GO) test -run '^$$' -bench . -benchmem ./transform/
	$(GO) build -o bin/logpipe ./cmd/logpipe
	./bin/logpipe bench -records $(BENCH_RECORDS) -partitions $(BENCH_PARTITIONS) -runs $(BENCH_RUNS) -gomemlimit 450MiB

fuzz:
	@for pkg in ./transform/; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf bin

# Larger crash / outage / rebalance runs (not part of make test).
SOAK_RECORDS ?= 300000
SOAK_KILLS   ?= 20
soak: clickhouse
	LOGPIPE_SOAK_RECORDS=$(SOAK_RECORDS) LOGPIPE_SOAK_KILLS=$(SOAK_KILLS) \
	  $(GO) test -count=1 -timeout 60m -v -run 'TestCrashLoop|TestClickHouseOutage|TestRebalance|TestRedelivery' ./cmd/logpipe/ ./pipeline/ 2>&1 | grep -E '^(=== RUN|--- |    .*(kill|crash loop|consumed|peak))|^ok|^FAIL'
