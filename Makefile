# luahttpd - a Lua-scriptable HTTP server.
#   make          build ./luahttpd
#   make run      install missing Debian packages, build, serve ./config.lua
#   make check    the everyday loop: unit and end-to-end tests, one build, no
#                 sanitizers (about two minutes)
#   make test     install missing Debian packages, build, run the unit tests, each
#                 fuzz target for FUZZ_SMOKE_SECONDS, make asan, make valgrind,
#                 then the end-to-end tests
#   make asan     the unit and end-to-end tests under AddressSanitizer + UBSan
#   make valgrind the end-to-end tests with every server under valgrind memcheck,
#                 built without the private memory pools (-DLH_NO_POOLS) in
#                 build-valgrind/ so that memcheck sees every allocation
#   make bench    CPU per request side by side with nginx+lua and lighttpd+magnet
#   make fuzz     run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make soak     a million mixed requests at 1000 connections; errors and memory

# ---- settings ---------------------------------------------------------------
CC       ?= cc
BUILD    ?= build
BIN      ?= luahttpd
OPT      ?= -O2 -g
SAN      ?=
DEFS     ?=
PKGS     := lua5.4 libevent_core libevent_extra libevent_openssl openssl sqlite3 zlib
CPPFLAGS += -Iinclude -D_GNU_SOURCE $(DEFS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   += -std=c11 $(OPT) $(SAN) -Wall -Wextra -Wshadow -Wno-unused-parameter \
            -Wstrict-prototypes -Wmissing-prototypes -MMD -MP
LDFLAGS  += $(SAN) -pthread
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llua5.4-cjson -lm
TEST_LDLIBS := $(LDLIBS) -lcmocka
PYTHON   ?= /usr/bin/python3

# ---- sources ----------------------------------------------------------------
SRCS      := $(wildcard src/*.c)
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS)))
MAIN_OBJ  := $(BUILD)/main.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all run check test unit e2e asan valgrind bench soak fuzz fuzz-build deps test-deps clean
all: $(BIN)

$(BIN): $(LIB_OBJS) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(TEST_LDLIBS)

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

# ---- set-up, running, testing -------------------------------------------------
deps:
	@sh .ci/install-deps

# what the tests add: a headless browser and a WebSocket client (test_browser.py)
test-deps: deps
	@sh .ci/install-deps test

run: deps
	@$(MAKE) --no-print-directory all
	./$(BIN) -c ./config.lua

check: test-deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

# the end-to-end suite runs last so that its summary line closes the output
test: test-deps
	@sh .ci/install-deps fuzz
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory e2e

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

e2e: $(BIN)
	LUAHTTPD=$(abspath $(BIN)) LUAHTTPD_SANITIZED=$(if $(SAN),1,0) $(PYTHON) tests/e2e/run.py

asan: test-deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/luahttpd OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    unit e2e

# memcheck: any error or definite leak in any server process fails its test. The
# binary has its own folder and no private pools (see include/sanitizer.h).
VG_BUILD := build-valgrind
valgrind: deps
	@sh .ci/install-deps valgrind
	@$(MAKE) --no-print-directory BUILD=$(VG_BUILD) BIN=$(VG_BUILD)/luahttpd \
	    DEFS=-DLH_NO_POOLS $(VG_BUILD)/luahttpd
	LUAHTTPD=$(abspath $(VG_BUILD)/luahttpd) LUAHTTPD_VALGRIND=1 $(PYTHON) tests/e2e/run.py

bench:
	@sh .ci/install-deps bench
	@$(MAKE) --no-print-directory all
	LUAHTTPD=$(abspath $(BIN)) $(PYTHON) tests/bench/bench.py

soak:
	@sh .ci/install-deps bench
	@$(MAKE) --no-print-directory all
	LUAHTTPD=$(abspath $(BIN)) $(PYTHON) tests/bench/soak.py

# libFuzzer targets: tests/fuzz/fuzz_<name>.c against the pure modules, built with
# clang in build-fuzz/; new inputs go to build-fuzz/corpus, the seeds stay as they are.
FUZZ_SECONDS ?= 60
# what make test gives each target
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# LH_FUZZING: generated config.lua files get no io/os/package/debug and 200 ms to run
FUZZ_FLAGS   := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -DLH_FUZZING -DLH_CONFIG_MS=200
FUZZ_OBJS    := $(patsubst src/%.c,build-fuzz/%.o,$(filter-out src/main.c,$(SRCS)))

build-fuzz/%.o: src/%.c | build-fuzz
	clang -std=c11 $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	clang -std=c11 $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -pthread -o $@ $^ $(LDLIBS)

build-fuzz:
	mkdir -p $@

fuzz-build: $(addprefix build-fuzz/,$(FUZZ_TARGETS))

fuzz:
	@sh .ci/install-deps fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    name=$${t#fuzz_}; mkdir -p build-fuzz/corpus/$$name; \
	    echo "== $$t for $(FUZZ_SECONDS)s"; \
	    build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        build-fuzz/corpus/$$name tests/fuzz/corpus/$$name > build-fuzz/$$t.log 2>&1; \
	    rc=$$?; grep -E '^Done|number_of_executed_units' build-fuzz/$$t.log; \
	    if [ $$rc != 0 ]; then tail -40 build-fuzz/$$t.log; exit 1; fi; \
	done

clean:
	rm -rf build build-asan build-valgrind build-fuzz $(BIN)

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d build-fuzz/*.d)
