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

# The fast unit tests also run under the race detector (the parsers are
# shared between partition workers; config, schedules and watch rules are
# read concurrently).
RACE_PKGS ?= ./transform/ ./config/ ./schedule/ ./watch/
test: clickhouse vet
	$(GO) test -count=1 -race -short $(RACE_PKGS)
	$(GO) test -count=1 -timeout 30m ./...

test-unit:
	$(GO) test -count=1 -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Transform micro-benchmarks (ns and allocs per record, per format), then the
# whole path: preloaded Kafka -> logpipe -> local ClickHouse, and latency.
BENCH_RECORDS ?= 1000000
bench: clickhouse
	$(GO) test -run '^$$' -bench . -benchmem ./transform/
	$(GO) run ./cmd/logpipe bench -records $(BENCH_RECORDS)

fuzz:
	@for pkg in ./transform/ ./pipeline/; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf bin

# Larger crash / outage / rebalance runs, and the hang rows with 30 s
# hangs instead of 10 s (not part of make test).
SOAK_RECORDS ?= 300000
SOAK_KILLS   ?= 20
SOAK_HANG    ?= 30s
soak: clickhouse
	LOGPIPE_SOAK_RECORDS=$(SOAK_RECORDS) LOGPIPE_SOAK_KILLS=$(SOAK_KILLS) LOGPIPE_SOAK_HANG=$(SOAK_HANG) \
	  $(GO) test -count=1 -timeout 60m -v -run 'TestCrashLoop|TestClickHouseOutage|TestRebalance|TestRedelivery|TestClickHouseHang|TestBrokerHang|TestClusterHangs' ./cmd/logpipe/ ./pipeline/ 2>&1 | grep -E '^(=== RUN|--- |    .*(kill|crash loop|consumed|peak|hung|stored))|^ok|^FAIL'
