# Onsite: `make run` starts the platform, `make test` runs every test.
GO ?= go
BIN := bin/onsite
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
FUZZTIME ?= 20s

.PHONY: run build test test-short bench lint fuzz sim sim-regional sim-all e2e demo clean

run: ## start Onsite (embedded mode unless DATABASE_URL / REDIS_URL are set)
	$(GO) run ./cmd/onsite serve

build:
	$(GO) build -o $(BIN) ./cmd/onsite

test: ## every test, on PostgreSQL and SQLite, against real Redis
	$(GO) test -count=1 -timeout 20m ./...

fuzz: ## the input fuzz targets, for a bounded time each (CI runs it)
	$(GO) test ./internal/httpx -run '^$$' -fuzz FuzzDecodeJSON -fuzztime $(FUZZTIME)

test-short:
	$(GO) test -count=1 -short ./...

bench: ## the benchmarks behind docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchtime 2s ./geo ./dispatch

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

demo: ## Onsite in embedded mode, fed a simulated city through the API: watch the dashboard
	$(GO) run ./cmd/onsite demo

e2e: ## the dashboard in headless Chromium (needs Debian's chromium and npm)
	bash e2e/run.sh

sim: ## compare every dispatch strategy on the city scenario (report in sim-out/city)
	$(GO) run ./cmd/onsite simulate --scenario sim/scenarios/city.yaml --strategy all --out sim-out/city

sim-regional:
	$(GO) run ./cmd/onsite simulate --scenario sim/scenarios/regional.yaml --strategy all --out sim-out/regional

SEEDS ?= 20
sim-all: ## every scenario of sim/scenarios with every strategy over SEEDS seeds (20): one table in sim-out/family/index.md
	$(GO) run ./cmd/onsite simulate --family sim/scenarios --strategy all --seeds $(SEEDS) --out sim-out/family

clean:
	rm -rf bin data
