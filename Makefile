# lockstep: `make demo` runs the main job on the bundled Spark output;
# `make test` installs and starts what the tests need, then runs them.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/lockstep
DEMO     := .lockstep/demo
LOCKSTEP := $(BIN) --store file://$(CURDIR)/$(DEMO)/store
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test demo lint fuzz bench bench-go golden clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lockstep

# Real pyspark, pyarrow (and later MinIO, Kafka, rocksdb-tools) are cached
# under .cache/ by scripts/testenv, which prints the time of each phase.
test:
	scripts/testenv test

# build -> publish -> promote (run), then pull -> query, on a local store.
demo: build
	@echo "== lockstep run: build the places bundle from testdata/places (real Spark output), publish, promote"
	@mkdir -p $(DEMO)
	@$(LOCKSTEP) run --spec testdata/demo.yaml --stage $(DEMO)/stage --reason "make demo"
	@echo "== lockstep pull: fetch what production serves into $(DEMO)/serve, verify every byte, swap it in"
	@$(LOCKSTEP) pull --bundle places --channel production --dest $(DEMO)/serve
	@echo "== lockstep query: the pulled Arrow file"
	@$(LOCKSTEP) query --dest $(DEMO)/serve --limit 5 places
	@echo "== lockstep query: the SSTable (kv), key id=2"
	@$(LOCKSTEP) query --dest $(DEMO)/serve places_by_id 2
	@echo "== lockstep query: the FST, names within edit distance 1 of Zurich"
	@$(LOCKSTEP) query --dest $(DEMO)/serve place_names fuzzy:Zurich:1
	@echo "== lockstep query: the MaxMind DB, an IPv4 address, the same through IPv6, and an IPv6 one"
	@$(LOCKSTEP) query --dest $(DEMO)/serve ip_places 89.238.231.5 ::ffff:89.238.231.5 2a06:5e8b:1::7
	@echo "== lockstep query: the S2 cell index (geo), Maseru (Lesotho, a hole in South Africa), Cape Town, Zurich, the sea"
	@$(LOCKSTEP) query --dest $(DEMO)/serve countries -29.31,27.48 -33.92,18.42 47.37,8.54 0,0
	@echo "== lockstep ls"
	@$(LOCKSTEP) ls

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# The reader's fuzz target for long enough to matter (make test runs it for 20 s).
# FUZZTIME=1h for a nightly; seeds include the fixture corpus when LOCKSTEP_FIXTURES
# is set (../shared/fixtures by default) and hostile footers.
FUZZTIME ?= 10m
fuzz:
	LOCKSTEP_FIXTURES=$${LOCKSTEP_FIXTURES:-$(CURDIR)/../shared/fixtures} \
		$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime=$(FUZZTIME) ./pipeline/reader

# lockstep against the scripts a user would write instead (pyarrow, DuckDB, rocksdict,
# the Rust fst CLI, mmdb-writer), plus publish/pull on MinIO and file://; a Markdown
# table in .cache/bench/results.md. BENCH_ROWS, BENCH_RUNS, BENCH_ONLY, LOCKSTEP_BIN:
# see scripts/bench.
bench:
	scripts/bench

# The Go microbenchmarks.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

golden:
	$(GO) test ./formats/... -run Golden -update

clean:
	rm -rf bin .lockstep
