# Makefile - top-level driver for Cascade; the build itself is CMake
# (CMakeLists.txt).  Every target first installs what it needs
# (scripts/deps.sh), then configures and builds.
#
# Targets:
#   make / make build   Release build in $(BUILD_DIR) (default build/)
#   make test           build + unit tests (ctest)
#   make run            build + `cascade demo` + `cascade replay` of the
#                       synthetic chat/RAG workload through an embedded
#                       store with DRAM (64 MiB) and disk (256 MiB, in a
#                       temporary directory) tiers
#   make bench          build + bench-suite below, then
#                       `cascade bench dram --json` -> results/bench_dram.json,
#                       `cascade bench disk --json` -> results/bench_disk.json,
#                       `cascade bench server --json` -> results/bench_server.json
#   make bench-suite    build + the Python peers (scripts/peers.sh: Mooncake
#                       Store, LMCache into .peers/; PEERS= skips them) +
#                       `cascade bench suite` -> results/<system>_<workload>_*.json
#                       + `cascade bench report` -> docs/bench/suite.md and
#                       docs/bench/*.png (under 10 minutes on 2 cores)
#   make asan           build-asan/: Debug -O1, ASan+UBSan, -Werror, all tests
#   make tsan           build-tsan/: Debug -O1, TSan, -Werror, tests labelled
#                       "concurrency"
#   make clang          build-clang/: clang, -Werror, builds everything (no run)
#   make fuzz           build-fuzz/: clang, libFuzzer + ASan/UBSan targets
#                       (tests/fuzz), each run for FUZZ_SECONDS (30)
#   make install        install to $(PREFIX) (lib, header, cascade.pc, bin)
#   make format         clang-format -i on all C sources
#   make format-check   list formatting differences, fail if any
#   make clean          remove build/ and build-*/
#
# Variables (make VAR=value):
#   BUILD_DIR=build  PREFIX=/usr/local  BUILD_TYPE=Release
#   CC=cc (default; CC=clang for clang; a build dir follows CC, see configure)
#   CLANG=clang      compiler of `make clang`
#   WERROR=1 (CI)    JOBS=$(nproc)      CTEST_JOBS=2 (or $CTEST_PARALLEL_LEVEL)
#   CTEST_ARGS=...   extra ctest arguments, e.g. CTEST_ARGS='-R test_dram'
#   CMAKE_ARGS=...   extra cmake arguments for the configure step
#   DESTDIR=...      staging root for install

SHELL := /bin/bash

BUILD_DIR ?= build
PREFIX ?= /usr/local
BUILD_TYPE ?= Release
WERROR ?= 0
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS ?= $(or $(CTEST_PARALLEL_LEVEL),2)
CTEST_ARGS ?=
CMAKE_ARGS ?=
CMAKE ?= cmake
CTEST ?= ctest
CLANG ?= clang
CLANG_FORMAT ?= clang-format
DEPS := scripts/deps.sh
CASCADE_BIN = $(BUILD_DIR)/bin/cascade

ASAN_DIR := build-asan
TSAN_DIR := build-tsan
CLANG_DIR := build-clang
FUZZ_DIR := build-fuzz
FUZZ_SECONDS ?= 30

export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS ?= halt_on_error=1

# ON/OFF from 1/0, yes/no, true/false, on/off.
onoff = $(if $(filter 1 on ON On yes YES Yes true TRUE True,$(1)),ON,OFF)


# ThreadSanitizer cannot map its shadow memory on kernels with high mmap
# randomisation; running without address-space randomisation always works.
SETARCH_R := $(shell setarch $$(uname -m) -R true >/dev/null 2>&1 && \
                     echo setarch $$(uname -m) -R)

# $(call configure,DIR,COMPILER,BUILD_TYPE,WERROR(ON/OFF),EXTRA CMAKE ARGS)
# configures and builds DIR.  A build dir is tied to one compiler: when
# COMPILER differs from the one DIR was configured with, DIR is removed first
# (CMake's own cache reset on a compiler change drops the -D options).
define configure
@want=$$(command -v '$(2)' || true); \
have=$$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' $(1)/CMakeCache.txt 2>/dev/null); \
have=$$(command -v "$$have" || true); \
if [ -n "$$want" ] && [ -n "$$have" ] && \
   [ "$$(readlink -f "$$want")" != "$$(readlink -f "$$have")" ]; then \
  echo "$(1): compiler changed ($$have -> $$want), configuring afresh"; \
  rm -rf $(1); \
fi
$(CMAKE) -S . -B $(1) -DCMAKE_C_COMPILER=$(2) -DCMAKE_BUILD_TYPE=$(3) \
	-DCASCADE_WERROR=$(4) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(5) $(CMAKE_ARGS)
$(CMAKE) --build $(1) -j$(JOBS)
endef

CTEST_CMD = $(CTEST) --output-on-failure -j$(CTEST_JOBS)

# Sanitizer builds: Debug at -O1 (fast enough, readable traces).
SAN_ARGS := -DCMAKE_C_FLAGS_DEBUG='-O1 -g'

.NOTPARALLEL:
.DEFAULT_GOAL := build
.PHONY: all build test run bench bench-suite asan tsan clang fuzz install \
	clean format \
	format-check help

all: build

build:
	$(DEPS) build
	$(call configure,$(BUILD_DIR),$(CC),$(BUILD_TYPE),$(call onoff,$(WERROR)))

test:
	$(DEPS) test
	$(call configure,$(BUILD_DIR),$(CC),$(BUILD_TYPE),$(call onoff,$(WERROR)))
	$(CTEST_CMD) --test-dir $(BUILD_DIR) --no-tests=error $(CTEST_ARGS)

run:
	$(DEPS) build
	$(call configure,$(BUILD_DIR),$(CC),$(BUILD_TYPE),$(call onoff,$(WERROR)))
	./$(CASCADE_BIN) demo
	./$(CASCADE_BIN) replay --dram 64m --disk 256m

# The suite's report is written even when a system failed (the status of
# the suite is kept).
bench-suite:
	$(DEPS) bench
	-scripts/peers.sh
	$(call configure,$(BUILD_DIR),$(CC),$(BUILD_TYPE),$(call onoff,$(WERROR)))
	mkdir -p results docs/bench
	./$(CASCADE_BIN) bench suite --results results; status=$$?; \
	./$(CASCADE_BIN) bench report --results results \
		--out docs/bench/suite.md --plots docs/bench && exit $$status

# The JSON goes to stdout (tee'd to the file); keep human output on stderr.
bench: bench-suite
	mkdir -p results
	set -o pipefail; ./$(CASCADE_BIN) bench dram --json \
		| tee results/bench_dram.json.tmp
	mv results/bench_dram.json.tmp results/bench_dram.json
	@echo "wrote results/bench_dram.json"
	set -o pipefail; ./$(CASCADE_BIN) bench disk --json \
		| tee results/bench_disk.json.tmp
	mv results/bench_disk.json.tmp results/bench_disk.json
	@echo "wrote results/bench_disk.json"
	set -o pipefail; ./$(CASCADE_BIN) bench server --json \
		| tee results/bench_server.json.tmp
	mv results/bench_server.json.tmp results/bench_server.json
	@echo "wrote results/bench_server.json"

asan:
	$(DEPS) sanitize
	$(call configure,$(ASAN_DIR),$(CC),Debug,ON,$(SAN_ARGS) \
		-DCASCADE_SANITIZE=address$(,)undefined)
	$(CTEST_CMD) --test-dir $(ASAN_DIR) --no-tests=error $(CTEST_ARGS)

tsan:
	$(DEPS) sanitize
	$(call configure,$(TSAN_DIR),$(CC),Debug,ON,$(SAN_ARGS) \
		-DCASCADE_SANITIZE=thread)
	$(SETARCH_R) $(CTEST_CMD) --test-dir $(TSAN_DIR) -L concurrency \
		--no-tests=ignore $(CTEST_ARGS)

clang:
	$(DEPS) clang
	$(call configure,$(CLANG_DIR),$(CLANG),$(BUILD_TYPE),ON)

# Only the fuzz targets are built and run here (the rest is covered by the
# other builds); sanitize brings clang's libFuzzer runtime.
fuzz:
	$(DEPS) sanitize
	$(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=$(CLANG) \
		-DCMAKE_BUILD_TYPE=Debug -DCASCADE_WERROR=ON -DCASCADE_FUZZ=ON \
		-DCASCADE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(SAN_ARGS) $(CMAKE_ARGS)
	$(CMAKE) --build $(FUZZ_DIR) -j$(JOBS) --target fuzz_resp
	$(CTEST_CMD) --test-dir $(FUZZ_DIR) -L fuzz --no-tests=error

install: build
	$(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)

SOURCES = $(shell find include src tests bench -name '*.[ch]' 2>/dev/null)

format:
	$(DEPS) format
	$(if $(SOURCES),$(CLANG_FORMAT) -i $(SOURCES))

format-check:
	$(DEPS) format
	$(if $(SOURCES),$(CLANG_FORMAT) --dry-run -Werror $(SOURCES))

clean:
	rm -rf build build-*/ $(BUILD_DIR)

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# A literal comma for use inside $(call ...).
, := ,
