# meshctl — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CUE     := $(or $(shell $(GO) env GOPATH),$(HOME)/go)/bin/cue

.PHONY: all build test testbin nginx actionlint screenshot vet fmt-check golden-check bench soak fuzz fuzz-long cue-vet demo cluster clean

all: build

build: ## Build ./bin/meshctl
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/meshctl ./cmd/meshctl

# -count=1: the real-cluster tests run binaries that go test's cache does
# not track, so a cached pass would prove nothing.
test: fmt-check vet golden-check actionlint testbin nginx ## Unit, golden, CLI and real-cluster tests; other programs' parsers on the configs meshctl writes for them
	$(GO) test -count=1 -timeout 30m ./...
	cd hack/promql && $(GO) test -count=1 ./...
	cd hack/otelcol && $(GO) test -count=1 ./...

# The test cluster's binaries and a Prometheus server, built from the Go
# module proxy at pinned versions and cached outside the checkout (about 20
# minutes cold on 2 cores, nothing warm). See internal/testbin.
testbin: ## Build or find kube-apiserver, etcd, kwok, prometheus & co.
	$(GO) run ./hack/testbin

# Debian's nginx, for hack/nginx: nginx -t on every fault backend's
# nginx.conf, and each run on loopback. Installed when none is found, as
# testbin builds the cluster's binaries (apt-get needs root).
nginx: ## Install Debian's nginx when there is none
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; }

# The GitHub Action's metadata (read through the workflow's `uses: ./`)
# and the example workflow, checked by actionlint, pinned.
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
actionlint: ## Check action.yml and the example and own workflows
	$(GO) run $(ACTIONLINT) -shellcheck= -pyflakes= examples/ci/github-workflow.yml .github/workflows/mesh-diff.yml

# README's picture of the pull-request comment (not part of make test):
# Debian's Chromium takes it, installed when missing.
screenshot: build ## Render docs/pr-comment.png, the comment the GitHub Action posts
	@command -v chromium >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
	hack/screenshot.sh

vet:
	$(GO) vet ./...
	cd hack/promql && $(GO) vet ./...
	cd hack/otelcol && $(GO) vet ./...
	cd hack/screenshot && $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi

# Goldens must be current: refreshing them may not change, add or remove
# anything. Untracked goldens count too (git diff alone ignores them);
# staged ones count as reviewed.
golden-check:
	@log=$$(mktemp); $(GO) test ./schema ./generators -run 'TestInvalid|TestGolden' -count=1 -update >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; rm -f $$log
	@out=$$(git diff --name-status -- testdata; git ls-files --others --exclude-standard -- testdata); \
	if [ -n "$$out" ]; then echo "$$out"; echo "goldens are stale, new or untracked: run 'go test ./schema ./generators -update', review and commit"; exit 1; fi

# BenchmarkCluster and BenchmarkBuildProcess time each case several times
# themselves, interleaving the tools, and BenchmarkDrift times 50 drift
# corrections per mesh, so they run once (-benchtime 1x); the others use
# Go's default. MESHCTL_BEFORE=path/to/old/meshctl adds an older
# build to BenchmarkBuildProcess.
bench: testbin ## Benchmarks, meshctl against kubectl on a real API server (figures go in BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -skip '^(BenchmarkCluster|BenchmarkBuildProcess|BenchmarkDrift|BenchmarkRollouts|BenchmarkFleet|BenchmarkCheck|BenchmarkSoak)$$' -benchmem -timeout 60m ./...
	$(GO) test -run '^$$' -bench '^BenchmarkCluster$$' -benchtime 1x -timeout 60m ./plan
	$(GO) test -run '^$$' -bench '^BenchmarkDrift$$' -benchtime 1x -timeout 60m ./drift
	$(GO) test -run '^$$' -bench '^BenchmarkBuildProcess$$' -benchtime 1x -timeout 60m ./generators
	$(GO) test -run '^$$' -bench '^BenchmarkRollouts$$' -benchtime 3x -timeout 60m ./plan
	$(GO) test -run '^$$' -bench '^BenchmarkFleet$$' -benchtime 1x -timeout 30m ./plan
	$(GO) test -run '^$$' -bench '^BenchmarkCheck$$' -benchtime 1x -timeout 20m ./plan

# SOAK is how long the loops run under load and faults: `make soak SOAK=1h`.
# The summary is printed and kept in bin/soak-$(SOAK).md.
SOAK ?= 10m
soak: testbin ## Two leader-elected reconcile loops for SOAK (default 10m) under writers, co-owners, new revisions, kill -9, API server and etcd restarts; checks the invariants
	@mkdir -p bin
	$(GO) test ./drift -run '^$$' -bench '^BenchmarkSoak$$' -benchtime 1x -timeout 3h -args -soak.duration=$(SOAK) -soak.out=$(CURDIR)/bin/soak-$(SOAK).md

# Each target runs long enough to find what it has found before (the YAML
# writer's invalid UTF-8 took seconds; an early exit from a field-set
# iterator takes under one); what they find is kept as a seed in the
# package's testdata/fuzz.
fuzz: ## Fuzz the loader for a minute; the scan, the YAML writer and the in-sync check for 30 s each; the patches and the offline diff for 20 s each
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 60s
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzScanSplit$$' -fuzztime 30s
	$(GO) test ./generators -run '^$$' -fuzz '^FuzzFastYAML$$' -fuzztime 30s
	$(GO) test ./apply -run '^$$' -fuzz '^FuzzInSync$$' -fuzztime 30s
	$(GO) test ./generators -run '^$$' -fuzz '^FuzzPatches$$' -fuzztime 20s
	$(GO) test ./plan -run '^$$' -fuzz '^FuzzOfflineMeanings$$' -fuzztime 20s

# FUZZTIME per target: `make fuzz-long FUZZTIME=10m` for a shorter run.
FUZZTIME ?= 1h
fuzz-long: ## Fuzz every target for FUZZTIME (default an hour each): loader, scan, YAML writer, in-sync check, patches, offline diff, rollout statistics
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzScanSplit$$' -fuzztime $(FUZZTIME)
	$(GO) test ./generators -run '^$$' -fuzz '^FuzzFastYAML$$' -fuzztime $(FUZZTIME)
	$(GO) test ./apply -run '^$$' -fuzz '^FuzzInSync$$' -fuzztime $(FUZZTIME)
	$(GO) test ./generators -run '^$$' -fuzz '^FuzzPatches$$' -fuzztime $(FUZZTIME)
	$(GO) test ./plan -run '^$$' -fuzz '^FuzzOfflineMeanings$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rollout -run '^$$' -fuzz '^FuzzProbNotWorse$$' -fuzztime $(FUZZTIME)

cue-vet: ## Vet the examples with the upstream cue command
	$(GO) install cuelang.org/go/cmd/cue@v0.17.1
	for f in mesh.cue examples/*.cue; do $(CUE) vet -c schema/mesh.cue $$f || exit 1; done

demo: build testbin ## Apply mesh.cue to a throwaway local cluster, drift it, diff, restore
	$(GO) run ./hack/demo -meshctl ./bin/meshctl -mesh mesh.cue

cluster: testbin ## Start the local test cluster and keep it running (Ctrl-C stops it)
	$(GO) run ./hack/cluster -kubeconfig $(CURDIR)/bin/kubeconfig

clean:
	rm -rf bin
