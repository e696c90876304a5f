# luahttpd - a Lua-scriptable HTTP server.
#   make          build ./luahttpd
#   make run      install missing Debian packages, build, serve ./config.lua
#   make test     install missing Debian packages, build, run unit + end-to-end tests
#   make asan     the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench    CPU per request side by side with nginx+lua and lighttpd+magnet

# ---- settings ---------------------------------------------------------------
CC       ?= cc
BUILD    ?= build
BIN      ?= luahttpd
OPT      ?= -O2 -g
SAN      ?=
PKGS     := lua5.4 libevent_core
CPPFLAGS += -Iinclude -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
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

.PHONY: all run test unit e2e asan bench deps clean
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

run: deps
	@$(MAKE) --no-print-directory all
	./$(BIN) -c ./config.lua

test: deps
	@$(MAKE) --no-print-directory unit e2e

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

e2e: $(BIN)
	LUAHTTPD=$(abspath $(BIN)) $(PYTHON) tests/e2e/run.py

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/luahttpd OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    unit e2e

bench:
	@sh .ci/install-deps bench
	@$(MAKE) --no-print-directory all
	LUAHTTPD=$(abspath $(BIN)) $(PYTHON) tests/bench/bench.py

clean:
	rm -rf build build-asan $(BIN)

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
