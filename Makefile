# pqproxy: the two commands a user needs are `make run` and `make test`.
# Both install what is missing (scripts/deps.sh), then build.

BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_CC    ?= clang-14
# seconds of fuzzing per harness for `make fuzz` (fuzz-ci: a short pass)
FUZZ_SECONDS ?= 300
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= config/pqproxy.json
DEPS_MK    := $(BUILD)/deps.mk
# where cmake_build finds NODE24 and CURL_PQ (test-minimal-wolfssl: the normal build's)
PEERS_MK   ?= $(DEPS_MK)

.PHONY: update-deps all deps deps-peers curl build build-asan build-fuzz run test test-unit test-asan clean distclean demo-model bench bench-deps bench-seal bench-h2 bench-grpc bench-burst fuzz fuzz-ci
.PHONY: test-minimal-wolfssl test-deploy

all: build

# deps.sh is idempotent and takes about a second once its cache is warm.
deps:
	@mkdir -p $(BUILD)
	@scripts/deps.sh --print-env > $(DEPS_MK).tmp && mv $(DEPS_MK).tmp $(DEPS_MK)

# `make test` also installs the interop peers (Debian chromium, Node 24, curl
# built on wolfSSL) and writes the same deps.mk plus NODE24 and CURL_PQ; plain
# `make` / `make run` do not need them. A peer that cannot be built is not
# fatal: its tests skip, naming it.
deps-peers:
	@mkdir -p $(BUILD)
	@scripts/deps.sh --print-env --peers > $(DEPS_MK).tmp
	@p="$$(scripts/curl-pq.sh --print-path)" && printf 'CURL_PQ := %s\n' "$$p" >> $(DEPS_MK).tmp || \
	    echo "warning: scripts/curl-pq.sh failed; the wolfSSL curl interop tests will be skipped" >&2
	@mv $(DEPS_MK).tmp $(DEPS_MK)

# curl built from Debian's source package on the project's wolfSSL (with
# --enable-curl): a hybrid post-quantum curl for systems whose own has no
# ML-KEM. Prints the binary's path (docs/clients.md).
curl:
	@scripts/curl-pq.sh --print-path

# Moves the pins of deps.lock (and tests/npm/package-lock.json) to the newest
# versions the Debian archive and the npm registry offer, building each (the
# wolfSSL patches must apply), then checks that the new pins resolve as a
# normal run would. Review the diff, run `make test`, commit.
update-deps:
	@PQPROXY_UPDATE_LOCK=1 scripts/deps.sh --peers --test-tools
	@PQPROXY_UPDATE_LOCK=1 scripts/curl-pq.sh --print-path > /dev/null
	@PQPROXY_UPDATE_LOCK=1 scripts/openssl35.sh --print-dir > /dev/null
	@scripts/deps.sh --peers --test-tools && scripts/curl-pq.sh --print-path > /dev/null && \
	    scripts/openssl35.sh --print-dir > /dev/null
	@git --no-pager diff --stat -- deps.lock tests/npm/package-lock.json

DEPS_TARGET := $(if $(filter test,$(MAKECMDGOALS)),deps-peers,deps)

-include $(DEPS_MK)

# PX_NODE24 / PX_CURL_PQ are passed only when deps.mk names them: a plain
# `make` keeps the values a previous `make test` left in the CMake cache.
define cmake_build
	@node24="$$(sed -n 's/^NODE24 := //p' $(PEERS_MK) 2>/dev/null)"; \
	curlpq="$$(sed -n 's/^CURL_PQ := //p' $(PEERS_MK) 2>/dev/null)"; \
	cmake -S . -B $(1) -DWOLFSSL_ROOT="$$(sed -n 's/^WOLFSSL_ROOT := //p' $(DEPS_MK))" \
	    -DLLHTTP_ROOT="$$(sed -n 's/^LLHTTP_ROOT := //p' $(DEPS_MK))" \
	    $${node24:+-DPX_NODE24="$$node24"} $${curlpq:+-DPX_CURL_PQ="$$curlpq"} $(2) > $(1).cmake.log 2>&1 || \
	    { cat $(1).cmake.log; exit 1; }
	@cmake --build $(1) -j $(JOBS)
endef

build: $(DEPS_TARGET)
	$(call cmake_build,$(BUILD),)

build-asan: $(DEPS_TARGET)
	$(call cmake_build,$(BUILD_SAN),-DPX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)

# libFuzzer harnesses (docs/fuzzing.md): clang with libFuzzer, a build dir of its own.
build-fuzz: deps
	@scripts/deps.sh --fuzz-tools
	$(call cmake_build,$(BUILD_FUZZ),-DPX_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_C_COMPILER=$(FUZZ_CC))

# Each harness in turn (FUZZERS="config sigfields" for some): replay its seed
# corpus, then FUZZ_SECONDS of fuzzing; any crash, leak or timeout fails.
# fuzz-ci is the short pass CI runs.
fuzz: build-fuzz
	@scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZERS)

fuzz-ci: build-fuzz
	@scripts/fuzz.sh $(BUILD_FUZZ) 10

# Starts the bundled demo model server and the proxy in front of it.
run: build
	@scripts/run-demo.sh $(BUILD)/pqproxy $(CONFIG)

# Only the demo model server (TF Serving REST API on 127.0.0.1:8501).
demo-model:
	@python3 scripts/demo_model_server.py

test: build build-asan
	@scripts/deps.sh --test-tools
	@echo "== tests: normal build"
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests: ASan + UBSan build"
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The proxy on a wolfSSL with the correctness patches 0001 and 0010 alone, without the
# handshake trims 0002-0009 (PQPROXY_WOLFSSL_PATCHES=minimal, its own cache
# key): the normal build and its tests, in a build directory of its own. The
# interop clients `make test` installed (Node 24, the wolfSSL curl) are given
# to it too: the handshakes they make are what the trims could break.
BUILD_MINIMAL ?= build-minimal-wolfssl
test-minimal-wolfssl:
	@$(MAKE) --no-print-directory build BUILD=$(BUILD_MINIMAL) PQPROXY_WOLFSSL_PATCHES=minimal \
	    PEERS_MK=$(abspath $(DEPS_MK))
	@echo "== tests: normal build on wolfSSL without patches 0002-0009"
	@cd $(BUILD_MINIMAL) && ctest --output-on-failure -j $(JOBS)

# The container image for real (docs/deploy.md, "Testing the image"): podman
# builds docker/Dockerfile on a debian:12 made with debootstrap from this
# machine's mirror, runs and stops it, then brings up docker/compose.yaml's
# demo profile through docker-compose. As root; the client is $(BUILD)/pqproxy.
test-deploy: build
	@scripts/test-deploy.sh $(BUILD)/pqproxy

# Benchmarks (docs/benchmarks.md): `pqproxy bench crypto`, then the load test
# against nginx, HAProxy and hitch (bench-deps also builds OpenSSL 3.5's
# shared libraries for the hybrid post-quantum scenarios). Quick by default (< 2 minutes);
# BENCH_FULL=1 for the full run (minutes). Results: loadtest/results/<timestamp>/.
bench-deps:
	@scripts/bench-deps.sh

# Quick mode does not build the OpenSSL 3.5 libraries (minutes, once); the
# hybrid scenarios run in it only when `make bench-deps` or a full run built them.
bench: build
	@scripts/bench-deps.sh $(if $(BENCH_FULL),,--no-openssl35)
	@mkdir -p loadtest/results
	@stamp=$$(date -u +%Y%m%dT%H%M%SZ); out=loadtest/results/$$stamp; mkdir -p $$out; \
	  $(BUILD)/pqproxy bench crypto $(if $(BENCH_FULL),,--quick) | tee $$out/bench-crypto.md && \
	  $(BUILD)/pqproxy bench crypto $(if $(BENCH_FULL),,--quick) --json > $$out/bench-crypto.json && \
	  loadtest/run.sh $(if $(BENCH_FULL),,--quick) --pqproxy $(BUILD)/pqproxy --out $$out

# Sealing (docs/benchmarks.md): pqproxy seal/open and age-encryption on Node 24
# on one file of SEAL_SIZE bytes (default 1 GiB), then `pqproxy bench seal`.
SEAL_SIZE ?= 1073741824
bench-seal: build
	@loadtest/seal.sh --size $(SEAL_SIZE) --pqproxy $(BUILD)/pqproxy

# HTTP/2 (docs/benchmarks.md): h2load against pqproxy, nginx and HAProxy, and
# RSS per idle HTTP/2 against HTTP/1.1 connection. Quick by default (about a
# minute); BENCH_FULL=1 for 3 rounds of 10 s; BENCH_PIN=1 for --pin (the proxies on
# a core of their own). Results: loadtest/results/h2-<timestamp>/.
bench-h2: build
	@scripts/bench-deps.sh --no-openssl35
	@loadtest/h2.sh $(if $(BENCH_FULL),,--quick) $(if $(BENCH_PIN),--pin) --pqproxy $(BUILD)/pqproxy

# gRPC unary (docs/benchmarks.md): h2load posting one ModelInfer through
# pqproxy, nginx and HAProxy to one h2c upstream, each target checked with
# @grpc/grpc-js on Node 24 first (installed by deps.sh --peers --test-tools).
# Quick by default (about 30 s); BENCH_FULL=1 for 3 rounds of 10 s; BENCH_PIN=1 as
# for bench-h2. Results: loadtest/results/grpc-<timestamp>/.
bench-grpc: build
	@scripts/bench-deps.sh --no-openssl35
	@scripts/deps.sh --peers --test-tools
	@loadtest/grpc.sh $(if $(BENCH_FULL),,--quick) $(if $(BENCH_PIN),--pin) --pqproxy $(BUILD)/pqproxy

# A burst on a cold pool (docs/benchmarks.md): h2load -n 256 on freshly started
# pqproxy (upstream.max_connections 256, 64, none), nginx and HAProxy; seconds.
# Results: loadtest/results/burst-<timestamp>/.
bench-burst: build
	@scripts/bench-deps.sh --no-openssl35
	@loadtest/burst.sh $(if $(BENCH_FULL),,--quick) --pqproxy $(BUILD)/pqproxy

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ) $(BUILD).cmake.log $(BUILD_SAN).cmake.log $(BUILD_FUZZ).cmake.log
	rm -rf $(BUILD_MINIMAL) $(BUILD_MINIMAL).cmake.log

# Also forgets the dependency cache (wolfSSL and llhttp are fetched and built again).
distclean: clean
	rm -rf "$${PQPROXY_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/pqproxy}"
