# OneID — everyday commands. `make help` lists them.
GO ?= go
PKGS ?= ./...
ARTIFACTS ?= $(CURDIR)/.artifacts

.PHONY: help run demo test generate check bench-wxsim

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

run: ## start the portal on the embedded database (http://127.0.0.1:8080)
	$(GO) run ./app serve

demo: ## start the portal with a demo workspace and an in-process WeChat simulator (prints the sign-in)
	$(GO) run ./app serve --demo

generate: ## regenerate templ components
	$(GO) tool templ generate

check: ## formatting, generated files in sync, vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(GO) tool templ generate >/dev/null 2>&1; git diff --exit-code --stat -- '*_templ.go' || { echo "templ files were stale"; exit 1; }
	$(GO) vet $(PKGS)

test: ## the whole test suite (starts MariaDB and installs Chromium when missing)
	.ci/ensure-services
	$(MAKE) --no-print-directory check
	mkdir -p $(ARTIFACTS)
	ONEID_ARTIFACTS=$(ARTIFACTS) $(GO) test -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

# Every fuzz target (func FuzzX in a _test.go file), FUZZTIME each, one per
# `go test` (Go fuzzes one target at a time); `make test` gives each 1 s (the unit tests
# already run every seed and testdata/fuzz case).
FUZZTIME ?= 5s
TEST_FUZZTIME ?= 1s
.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 5s), one after the other
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$name ($$(dirname $$f), $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$(dirname $$f) || exit 1; \
	  done; \
	done

bench-wxsim: ## page user/get + batchget of N followers (default 1,000,000) from the simulator through the real client
	$(GO) run ./app wxsim bench --followers $${N:-1000000}

.PHONY: bench-browse
bench-browse: ## customer list, profile and dashboard over loopback, 16 signed-in browsers, on a tenant of N customers (default 1,000,000; seeded once into the database oneid_bench_browse)
	$(GO) run ./app/bench browse --customers $${N:-1000000}

.PHONY: load
load: ## open-loop mixed portal traffic (lists, next pages, profiles, dashboard, invitations, roles, imports) at RATE/s (default 200) for SECONDS (default 60) at a real oneid process, tenant of N customers (default 1,000,000, shared with bench-browse)
	$(GO) run ./app/bench load --rate $(or $(RATE),200) --seconds $(or $(SECONDS),60) --customers $(or $(N),1000000)

.PHONY: bench-sync
bench-sync: ## full follower sync of N followers (default 1,000,000) from the simulator (own process) into a fresh MySQL database oneid_bench_sync, then a re-sync with nothing changed
	$(GO) run ./app bench-sync --followers $${N:-1000000}

.PHONY: bench-export
bench-export: ## stream the profiles export of N customers (default 1,000,000; seeded once into oneid_bench_export) from a real oneid process over HTTP
	$(GO) run ./app/bench/export --profiles $${N:-1000000}

.PHONY: faults
faults: ## the long fault tests (app/faults): two instances, MySQL stopped under load, SIGKILL during jobs, WeChat faults, SIGTERM in flight
	ONEID_LONG=1 $(GO) test -count=1 -timeout 30m -v -run . ./app/faults
