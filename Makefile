# oomtrace: run `make help` for the targets.
# sudo's secure_path often lacks Go's directory: fall back to the usual install.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin
# Kernels the VM matrix boots (Debian cloud kernels, see vmtest/fetch-kernel.sh):
# Debian 11's 5.10, Debian 12's 6.1 and 6.12, Debian 13's 6.12, and Debian 12's
# 6.1 for arm64 (emulated, kprobe mode only).
VM_KERNELS ?= 5.10 6.1 6.12 6.12-trixie 6.1-arm64

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/oomtrace (no clang needed: the BPF objects are committed)
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN)/oomtrace ./cmd/oomtrace

.PHONY: run
run: build ## build and run the tracer (needs root): one JSON line per OOM kill
	$(BIN)/oomtrace $(ARGS)

.PHONY: deps
deps: ## install the build and test dependencies from Debian's packages, if missing
	scripts/install-deps.sh

.PHONY: generate
generate: ## rebuild the BPF objects and their Go bindings with clang + bpf2go
	cd tracer && $(GO) generate ./...

.PHONY: check-generate
check-generate: generate ## fail if the committed BPF objects differ from a fresh build
	@test -z "$$(git status --porcelain -- tracer/ bpf/)" || { git status --short -- tracer/ bpf/; echo "committed BPF objects are stale: run make generate and commit"; exit 1; }

.PHONY: build-arm64
build-arm64: ## cross-build everything for arm64 (the BPF objects are generated for both targets)
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOARCH=arm64 $(GO) vet ./...

.PHONY: vet
vet: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

.PHONY: test-host
test-host: ## unit tests, plus real OOM kills in scratch cgroups on this machine (as root)
	# -p 1: the packages provoke OOM kills and compare them with the machine-wide
	# /proc/vmstat counter, so they must not run at the same time.
	$(GO) test -p 1 -count=1 ./...

.PHONY: test-deploy
test-deploy: ## the deploy/ checks: unit capabilities and syscall filter, image, DaemonSet, Vagrantfile (as root)
	$(GO) test -count=1 -v ./deploy

$(BIN)/integration.test: FORCE
	CGO_ENABLED=0 $(GO) test -c -o $@ ./integration

$(BIN)/integration.test.arm64: FORCE
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -c -o $@ ./integration

.PHONY: vmtest
vmtest: $(BIN)/integration.test $(BIN)/integration.test.arm64 ## the integration tests inside qemu on Debian's 5.10, 6.1 and 6.12 kernels, in each of four attach modes
	vmtest/matrix.sh $(BIN)/integration.test $(VM_KERNELS)

.PHONY: check-leftovers
check-leftovers: ## fail if a test left a scratch cgroup behind on this machine
	@left=$$(ls -d /sys/fs/cgroup/oomtrace-* /sys/fs/cgroup/*/oomtrace-* 2>/dev/null); \
	if [ -n "$$left" ]; then echo "scratch cgroups left behind: $$left"; exit 1; fi

.PHONY: test
test: deps vet build-arm64 check-generate test-host check-leftovers vmtest ## every test: the README's test command, what CI runs

.PHONY: bench
bench: build ## startup, idle RSS and wake-ups, a storm of 500 OOM kills, and what --alloc-refused costs a syscall-heavy workload; writes docs/benchmarks.md
	$(GO) build -o $(BIN)/oombench ./cmd/oombench
	$(BIN)/oombench -bin $(BIN)/oomtrace -kills 500 -out docs/benchmarks.md
	$(BIN)/oombench -bin $(BIN)/oomtrace -alloc-overhead -out docs/benchmarks.md

.PHONY: clean
clean: ## remove built binaries (keeps the kernel cache in .cache/)
	rm -rf $(BIN)

.PHONY: FORCE
FORCE:
