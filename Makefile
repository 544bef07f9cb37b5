# Quantbus — one Makefile for every library, service, test and benchmark.
#
#   make deps        install the Debian packages the project needs (idempotent)
#   make             build every lib (static archive) and every binary
#   make test        deps + build + run every test against a real stack
#   make bench       deps + build + run the benchmarks (numbers, no pass/fail)
#   make run         deps + build + start the embedded platform (Ctrl-C stops it)
#   make fuzz        build the libFuzzer targets (clang)
#   SAN=1            build with AddressSanitizer + UndefinedBehaviorSanitizer
#
# Layout: libs/<name>/*.c -> $(B)/lib/libqb<name>.a ; services/<name>/*.c ->
# $(B)/bin/<name> ; tests/unit/test_*.c and tests/integration/it_*.c ->
# $(B)/tests/ ; bench/bench_*.c -> $(B)/bench/.  protobuf-c code is generated
# from proto/ into $(B)/gen at build time and never committed.

SAN ?= 0
CC ?= cc
ifeq ($(SAN),1)
B := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
B := build
SANFLAGS :=
OPT := -O2
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif

PKGS := rdkafka libpq hiredis libmicrohttpd libcjson libcurl libprotobuf-c openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS := -std=gnu11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SANFLAGS) -pthread -Ilibs -Itests/support -I$(B)/gen $(PKG_CFLAGS) $(EXTRA_CFLAGS)
# Generated protobuf-c code is not ours to make warning-free.
GEN_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(OPT) -g $(SANFLAGS) -Ilibs -I$(B)/gen $(PKG_CFLAGS)
LDFLAGS := $(SANFLAGS) -pthread $(EXTRA_LDFLAGS)
LDLIBS := $(PKG_LIBS) -luuid -lm

# ---- protobuf ---------------------------------------------------------------
PROTOS := $(wildcard proto/qb/v1/*.proto)
GEN_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
GEN_O := $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(GEN_C))

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Iproto $<

# ---- libraries --------------------------------------------------------------
# Every folder under libs/ is a library; a new one needs no edit here. The
# archives are linked inside one --start-group, so their order does not matter.
LIBNAMES := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard libs/*/*.c)))))
LIBA := $(foreach l,$(LIBNAMES),$(B)/lib/libqb$(l).a)

define LIB_template
$(1)_SRC := $$(wildcard libs/$(1)/*.c)
$(1)_OBJ := $$(patsubst %.c,$(B)/obj/%.o,$$($(1)_SRC))
$(B)/lib/libqb$(1).a: $$($(1)_OBJ) $(if $(filter proto,$(1)),$$(GEN_O))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LIBNAMES),$(eval $(call LIB_template,$(l))))

$(B)/obj/gen/%.o: $(B)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(GEN_CFLAGS) -MMD -MP -c $< -o $@

# Every object waits for the generated headers (they are cheap and few).
$(B)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

LINK = $(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) -Wl,--start-group $(LIBA) -Wl,--end-group $(LDLIBS)

# ---- binaries ---------------------------------------------------------------
SERVICES := $(notdir $(patsubst %/,%,$(dir $(wildcard services/*/main.c))))
BINS := $(addprefix $(B)/bin/,$(SERVICES))

define BIN_template
$(B)/bin/$(1): $$(patsubst %.c,$(B)/obj/%.o,$$(wildcard services/$(1)/*.c)) $$(LIBA)
	@mkdir -p $$(dir $$@)
	$$(LINK)
endef
$(foreach s,$(SERVICES),$(eval $(call BIN_template,$(s))))

# ---- tests and benchmarks ---------------------------------------------------
TEST_SRC := $(wildcard tests/unit/test_*.c tests/integration/it_*.c)
TESTS := $(patsubst %.c,$(B)/tests/%,$(notdir $(TEST_SRC)))
TEST_SUPPORT := $(patsubst %.c,$(B)/obj/%.o,$(wildcard tests/support/*.c))
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(TEST_SUPPORT) $(LIBA)
	@mkdir -p $(dir $@)
	$(LINK) -lcmocka
$(B)/tests/%: $(B)/obj/tests/integration/%.o $(TEST_SUPPORT) $(LIBA)
	@mkdir -p $(dir $@)
	$(LINK) -lcmocka
$(B)/bench/%: $(B)/obj/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(LINK)

# ---- fuzzing (clang + libFuzzer) --------------------------------------------
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(foreach l,core proto,$(wildcard libs/$(l)/*.c))

# ---- phony targets ----------------------------------------------------------
.PHONY: all deps build-tests test bench run fuzz clean check-warnings
.DEFAULT_GOAL := all
# Keep generated sources and objects made through pattern-rule chains.
.SECONDARY:

all: $(LIBA) $(BINS)

build-tests: all $(TESTS) $(BENCHES)

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory build-tests
	@B=$(B) SAN=$(SAN) scripts/test.sh $(T)

bench: deps
	@$(MAKE) --no-print-directory build-tests
	@B=$(B) scripts/bench.sh

run: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) scripts/run.sh

fuzz: deps $(GEN_H)
	@mkdir -p build-fuzz
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); \
	  echo "clang $$n"; \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilibs -I$(B)/gen $(PKG_CFLAGS) \
	    $$f $(FUZZ_LIB_SRC) $(GEN_C) -o build-fuzz/$$n $(PKG_LIBS) -luuid -lm || exit 1; \
	done

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
