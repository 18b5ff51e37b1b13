# meshctl — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CUE     := $(or $(shell $(GO) env GOPATH),$(HOME)/go)/bin/cue

.PHONY: all build test vet fmt-check golden-check bench fuzz cue-vet demo clean

all: build

build: ## Build ./bin/meshctl
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/meshctl ./cmd/meshctl

test: fmt-check vet golden-check ## Unit, golden and CLI tests
	$(GO) test ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi

# Goldens must be current: refreshing them may not change anything.
golden-check:
	$(GO) test ./schema ./generators -run 'TestInvalid|TestGolden' -update >/dev/null
	@git diff --exit-code -- testdata || { echo "goldens are stale: run 'go test ./... -update' and commit"; exit 1; }

bench: ## Benchmarks (figures go in BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## Fuzz the loader for a minute
	$(GO) test ./schema -run '^$$' -fuzz FuzzLoad -fuzztime 60s

cue-vet: ## Vet the examples with the upstream cue command
	$(GO) install cuelang.org/go/cmd/cue@v0.17.1
	for f in mesh.cue examples/*.cue; do $(CUE) vet -c schema/mesh.cue $$f || exit 1; done

demo: build ## Render the root mesh (apply to a local cluster comes with the apply issue)
	./bin/meshctl vet
	./bin/meshctl build | grep -E '^(kind|  name):' | paste - - | head -60

clean:
	rm -rf bin
