# img2vid: the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/img2vid
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Fuzz each target this long in `make test` (CI); longer by hand: make fuzz FUZZTIME=5m
FUZZTIME ?= 10s

.PHONY: run build setup test check unit fuzz docker-test bench models train scenes clean

## run: install what is missing, build, and serve the web app on the built-in models
run: build
	./$(BIN) serve

## build: the img2vid binary in bin/
build: setup
	CGO_ENABLED=1 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/img2vid

setup:
	bash scripts/setup.sh run

## test: install what is missing, then every check, test, fuzz run and the container tests
test:
	bash scripts/setup.sh test
	$(MAKE) check unit fuzz docker-test
	@[ -n "$$IMG2VID_TESTDATA" ] || echo "extended tests not run: IMG2VID_TESTDATA is unset (IMG2VID_TESTDATA=/path/to/data make test, a folder holding data/aquarium/ and models/)"

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The extended tests run on real camera frames and third-party models the
# project does not ship; IMG2VID_TESTDATA points at them (.ci/run sets it).
unit:
	@if [ -z "$$IMG2VID_TESTDATA" ] && [ -n "$$CI" ]; then echo "CI: IMG2VID_TESTDATA is not set; the extended tests must run in CI" >&2; exit 1; fi
	$(GO) test -count=1 -timeout 30m ./...

# Prints each target's executions per second: a target that stops fuzzing shows.
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

docker-test:
	bash scripts/docker-test.sh

## bench: the measured comparisons recorded in docs/BENCHMARKS.md, on the
## extended test data (IMG2VID_TESTDATA, by default ../shared)
bench: export IMG2VID_TESTDATA ?= $(abspath ../shared)
bench: build
	$(GO) run ./bench/convert
	$(GO) run ./bench/interp
	$(GO) run ./bench/slideshow
	$(GO) run ./bench/frame
	$(GO) run ./bench/detect
	$(GO) run ./bench/load
	$(GO) run ./bench/jobs
	$(GO) run ./bench/cluster
	$(GO) run ./bench/objstore
	$(GO) run ./bench/memory

## models: rebuild the built-in models (needs Debian's python3-torch and python3-onnx)
models:
	/usr/bin/python3 models/gen_models.py

## train: retrain flow3's network from scratch (seeded: the same weights again;
## about 7.5 minutes on one core of a 2-vCPU machine; the first run downloads
## python3-skimage's photographs), then rebuild the models from the new weights
train:
	/usr/bin/python3 models/train_flow3.py
	$(MAKE) models

## scenes: the built-in interpolators against ffmpeg's minterpolate on 160
## synthetic scenes they were not tuned on, by kind of scene (Debian's
## python3-torch and ffmpeg; about 6 minutes on one core)
scenes:
	/usr/bin/python3 models/scenes_bench.py

clean:
	rm -rf bin
