# ferry build. Everything generated goes under build/.
PREFIX	?= /usr/local
B	:= build
PKGS	:= libprotobuf-c libuv openssl liblz4 libcap
CC	?= cc
CFLAGS	?= -O2 -g
# Required flags are added even to a CFLAGS given on the command line
# (`make CFLAGS=-O0` keeps the include paths and warnings).
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -I$(B)/gen \
	   $(shell pkg-config --cflags $(PKGS))
LDLIBS	:= $(shell pkg-config --libs $(PKGS)) -lpthread
TEST_LDLIBS := $(shell pkg-config --libs criterion)

# Freestanding blobs (parasite, restorer): no libc, position independent.
BLOB_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -I. -ffreestanding -nostdlib \
	-fpie -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin \
	-mno-red-zone -fno-jump-tables -fvisibility=hidden -fcf-protection=none

PROTOS	:= $(wildcard proto/*.proto)
PB_C	:= $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
PB_H	:= $(PB_C:.c=.h)

# Library: shared code of every command. A static archive: a command links
# only the objects it needs (`restore` reads stacks: imgstack/view.o and
# pgindex.o, not the writer or dedup).
LIB_SRC	:= $(wildcard common/*.c proto/*.c imgstack/*.c transport/*.c)
LIB_OBJ	:= $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PB_C))

# Each command: its main.c plus the rest of its folder (the rest is also
# linked into test tools, tests/tools/*.c).
cmd_obj = $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
MIGRATE_OBJ	:= $(call cmd_obj,source-agent)
RESTORE_OBJ	:= $(call cmd_obj,dest-agent)
PAGESERVER_OBJ	:= $(call cmd_obj,pageserver)
SHOW_OBJ	:= $(call cmd_obj,show)


BINS	:= $(B)/migrate $(B)/pageserver $(B)/restore $(B)/check $(B)/ferry-show
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
WORKLOADS := $(patsubst tests/workloads/%.c,$(B)/tests/workloads/%,$(wildcard tests/workloads/*.c))
BENCH_BIN := $(patsubst tests/bench/%.c,$(B)/tests/bench/%,$(wildcard tests/bench/*.c))
TOOLS_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(wildcard tests/tools/*.c))

all: $(BINS) $(WORKLOADS) $(TOOLS_BIN)

.PHONY: all deps test unit e2e bench demo install commands deb clean
.SECONDARY:

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen --proto_path=proto $<

# Every object may include generated protobuf headers; the blobs only
# matter to the commands that embed them.
GEN_HDRS := $(PB_H)
$(MIGRATE_OBJ) $(B)/obj/source-agent/main.o: $(B)/gen/parasite-blob.h
$(RESTORE_OBJ) $(B)/obj/dest-agent/main.o: $(B)/gen/restorer-blob.h

$(B)/obj/gen/%.o: $(B)/gen/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -MMD -MP -c -o $@ $<

$(B)/obj/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libferry.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# --- blobs: compiled freestanding, linked flat at 0, embedded as C arrays ---
define blob_rules
$(1)_SRC := $$(wildcard $(1)/*.c $(1)/*.S)
$(B)/blob/$(1).elf: $$($(1)_SRC) $(1)/blob.lds $$(wildcard $(1)/*.h) common/compat.h common/raw_syscall.h
	@mkdir -p $(B)/blob
	$(CC) $(BLOB_CFLAGS) -Wl,-T,$(1)/blob.lds -static -Wl,--no-warn-rwx-segments -Wl,--build-id=none \
		-Wl,-z,noexecstack -o $$@ $$($(1)_SRC)
$(B)/gen/$(1)-blob.h: $(B)/blob/$(1).elf tools/blob2c.sh
	@mkdir -p $(B)/gen
	sh tools/blob2c.sh $(1) $$< $$@
endef
$(eval $(call blob_rules,parasite))
$(eval $(call blob_rules,restorer))

$(B)/migrate: $(B)/obj/source-agent/main.o $(MIGRATE_OBJ) $(B)/libferry.a
	$(CC) -o $@ $^ $(LDLIBS)
$(B)/restore: $(B)/obj/dest-agent/main.o $(RESTORE_OBJ) $(B)/libferry.a
	$(CC) -o $@ $^ $(LDLIBS)
$(B)/pageserver: $(B)/obj/pageserver/main.o $(PAGESERVER_OBJ) $(B)/libferry.a
	$(CC) -o $@ $^ $(LDLIBS)
$(B)/ferry-show: $(B)/obj/show/main.o $(SHOW_OBJ) $(B)/libferry.a
	$(CC) -o $@ $^ $(LDLIBS)
# `check` is migrate under another name.
$(B)/check: $(B)/migrate
	ln -sf migrate $@

# Unit tests can reach the code of both agents and of ferry-show.
$(B)/tests/%: tests/unit/%.c $(MIGRATE_OBJ) $(RESTORE_OBJ) $(SHOW_OBJ) $(B)/libferry.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(MIGRATE_OBJ) $(RESTORE_OBJ) $(SHOW_OBJ) $(B)/libferry.a $(LDLIBS) $(TEST_LDLIBS)

$(B)/tests/tools/%: tests/tools/%.c $(MIGRATE_OBJ) $(RESTORE_OBJ) $(B)/libferry.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(MIGRATE_OBJ) $(RESTORE_OBJ) $(B)/libferry.a $(LDLIBS)

$(B)/tests/workloads/%: tests/workloads/%.c tests/workloads/wl.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

$(B)/tests/bench/%: tests/bench/%.c $(B)/libferry.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libferry.a $(LDLIBS)

# --- fuzzing: libFuzzer targets tests/fuzz/fuzz_*.c, built with clang into $(B)/fuzz/ ---
# Not part of `make test`. `make fuzz` runs each for FUZZ_TIME seconds (docs/testing.md).
FUZZ_CC		?= clang
FUZZ_TIME	?= 30
FUZZ_FLAGS	?= -max_len=90000
FUZZ_CFLAGS	:= -std=gnu11 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -I$(B)/gen \
		   -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		   $(shell pkg-config --cflags libprotobuf-c liblz4)
FUZZ_LIB_OBJ	:= $(patsubst %.c,$(B)/fuzz/obj/%.o,common/log.c common/util.c proto/image.c \
		   proto/pagemap.c transport/frame.c show/pbjson.c show/imgjson.c) \
		   $(patsubst $(B)/gen/%.c,$(B)/fuzz/obj/gen/%.o,$(PB_C))
FUZZ_BIN	:= $(patsubst tests/fuzz/fuzz_%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(B)/fuzz/obj/gen/%.o: $(B)/gen/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-unused-parameter -MMD -MP -c -o $@ $<
$(B)/fuzz/obj/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(B)/fuzz/%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) \
		$(shell pkg-config --libs libprotobuf-c liblz4)
$(B)/fuzz/seeds: tests/fuzz/seeds.c tests/fuzz/fuzz.h $(B)/libferry.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libferry.a $(LDLIBS)

.PHONY: fuzz
fuzz: $(FUZZ_BIN) $(B)/fuzz/seeds
	rm -rf $(B)/fuzz/seed-corpus && $(B)/fuzz/seeds $(B)/fuzz/seed-corpus
	@set -e; for f in $(FUZZ_BIN); do n=$${f##*/}; mkdir -p $(B)/fuzz/corpus/$$n; \
		echo "== fuzz $$n ($(FUZZ_TIME) s)"; \
		$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $(FUZZ_FLAGS) \
			-artifact_prefix=$(B)/fuzz/crash-$$n- \
			$(B)/fuzz/corpus/$$n $(B)/fuzz/seed-corpus/$$n; done

deps:
	sh tools/deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 2; done

E2E_RUN	= FERRY_BUILD=$(abspath $(B)) bash tests/e2e/run.sh

e2e: all
	$(E2E_RUN)

# The end-to-end tests run after the unit tests, never beside them (make -j).
test: all unit
	$(E2E_RUN)

bench: all $(BENCH_BIN)
	FERRY_BUILD=$(abspath $(B)) bash tests/bench/run.sh

demo: all
	bash tools/demo.sh $(B)

# --- install and package (docs/guide.md, Packaging) ---
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [UNITDIR=...]
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR	?= $(PREFIX)/lib/systemd/system
MAN1	:= $(wildcard man/*.1)
MAN8	:= $(wildcard man/*.8)

# The binaries only (what a package builds; no tests, no workloads).
commands: $(BINS)

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	install -m 755 $(B)/migrate $(B)/pageserver $(B)/restore $(B)/ferry-show $(DESTDIR)$(BINDIR)/
	ln -sf migrate $(DESTDIR)$(BINDIR)/check
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/ferry-pageserver.service.in >$(DESTDIR)$(UNITDIR)/ferry-pageserver.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ferry-pageserver.service
	@# the options file is the operator's once it exists: never overwritten
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/ferry-pageserver ] || install -m 644 \
		packaging/ferry-pageserver.default $(DESTDIR)$(SYSCONFDIR)/default/ferry-pageserver

# A Debian package built from a copy of the tree (dpkg-buildpackage writes
# next to the source directory): build/deb/ferry_*.deb.
DEB_DIR	?= $(B)/deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	@# the tracked and new files of a git checkout; else all but build/
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf -; \
	else tar cf - --exclude=./$(B) .; fi | tar xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc
	@ls -l $(DEB_DIR)/*.deb

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(B)/fuzz/obj -name '*.d' 2>/dev/null)
