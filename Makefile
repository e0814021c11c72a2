# Greentic Events — workspace tasks. Every tool is built from the Go module
# proxy at the pinned versions below into ./bin; nothing else is downloaded.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

BIN     := $(CURDIR)/bin
MODULES := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p')
GOTEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all run test test-short chart-test generate lint check-generated fmt vet tidy check-tidy build images bench tools clean

all: lint test build

## run: standalone with embedded NATS and the example bundle (ingress :8080, ops :9100)
run:
	go run ./services/standalone/cmd/greentic-events

## test: every module's tests with the race detector
test:
	@for m in $(MODULES); do echo "== go test $$m"; (cd $$m && go test $(GOTEST_FLAGS) ./...); done

## chart-test: the Helm chart only (lint, offline render of every values file, strict decoding
##             into the Kubernetes types, invariants, schema); make test runs it too
chart-test:
	cd tests && go test -race -count=1 ./chart/...

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

## generate: regenerate pkg/gen from proto/ with buf
generate: tools
	rm -rf pkg/gen
	PATH="$(BIN):$$PATH" $(BIN)/buf generate

## lint: buf lint, stale generated code, gofmt, go vet, go mod tidy
lint: tools check-generated fmt vet check-tidy
	$(BIN)/buf lint

check-generated: generate
	@if [ -n "$$(git status --porcelain -- pkg/gen)" ]; then \
		echo "generated code in pkg/gen is stale: run 'make generate' and commit"; git status --porcelain -- pkg/gen; exit 1; fi

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^pkg/gen/')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do echo "== go vet $$m"; (cd $$m && go vet ./...); done

tidy:
	@for m in $(MODULES); do (cd $$m && go mod tidy); done

check-tidy:
	@for m in $(MODULES); do (cd $$m && GOFLAGS=-mod=mod go mod tidy -diff) || { echo "go mod tidy changes $$m: run 'make tidy' and commit"; exit 1; }; done

## build: every service binary into ./bin
build:
	@mkdir -p $(BIN)
	@for m in $(MODULES); do \
		for c in $$m/cmd/*/; do [ -d "$$c" ] || continue; \
			echo "== go build $$c"; (cd $$m && CGO_ENABLED=0 go build -trimpath -o $(BIN)/ ./cmd/$$(basename $$c)); done; done

IMAGE_TAG ?= dev
IMAGE_SERVICES := $(patsubst services/%/Dockerfile,%,$(wildcard services/*/Dockerfile))

## images: an image per service, greentic/<service>:$(IMAGE_TAG) (IMAGE_TAG=... to choose), where Docker runs
images:
	@if ! docker info >/dev/null 2>&1; then \
		echo "make images needs a running Docker engine ('docker info' failed): the images are built with"; \
		echo "  docker build -f services/<service>/Dockerfile -t greentic/<service>:$(IMAGE_TAG) ."; \
		echo "from the repository root, for: $(IMAGE_SERVICES)"; exit 1; fi
	@for s in $(IMAGE_SERVICES); do echo "== docker build greentic/$$s:$(IMAGE_TAG)"; \
		docker build -f services/$$s/Dockerfile -t greentic/$$s:$(IMAGE_TAG) .; done

## bench: ingress vs a bare JetStream publisher, then flow-executor vs a consume-and-ack consumer,
##        then the timer (10k and 100k schedules) vs bare Go timers, then the email and SMS
##        senders vs direct provider sends (fake providers answering after 50 ms)
##        (INGRESS_BENCH_FLAGS, or BENCH_FLAGS as before; EXECUTOR_BENCH_FLAGS; TIMER_BENCH_FLAGS;
##        SENDER_BENCH_FLAGS)
bench:
	go run ./services/ingress-webhook/cmd/ingress-bench $(or $(INGRESS_BENCH_FLAGS),$(BENCH_FLAGS))
	go run ./services/flow-executor/cmd/executor-bench $(EXECUTOR_BENCH_FLAGS)
	go run ./services/timer/cmd/timer-bench $(TIMER_BENCH_FLAGS)
	go run ./services/standalone/cmd/sender-bench $(SENDER_BENCH_FLAGS)

clean:
	rm -rf $(BIN) .greentic
