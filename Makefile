# tlsoff — one `make` builds everything; `make test` runs the whole suite; `make run` runs the engine.
#
# Layout of the build (everything lands in build/):
#   build/libtlsoff.a      datapath/*.c (except tlsoffd.c) + bpf/*.c loaders: code shared by daemon and tests
#   build/tlsoffd          datapath/tlsoffd.c + libtlsoff.a
#   build/tlsoffctl        ctl/*.c + libtlsoff.a (when ctl/ has sources)
#   build/bpf/X.bpf.o      clang -target bpf from bpf/X.bpf.c; build/bpf/X.skel.h by bpftool gen skeleton
#   build/tests/unit/X     one Check runner per tests/unit/X.c
#   build/tests/bin/X      one helper program per tests/bin/X.c (used by host and lab tests)
# Sources are found by wildcard, so adding a file never needs a Makefile edit.
#
# `make install` (PREFIX=/usr/local, DESTDIR for staging) installs the two programs, the man pages, the bash
# completion, the systemd unit (from packaging/tlsoffd.service.in, paths filled in) and the example
# configuration (only when none is there: an operator's file is never overwritten); `make uninstall`
# removes all of it but the configuration.

ifeq ($(origin CC),default)
CC       := gcc
endif
CLANG    ?= clang
BPFTOOL  ?= bpftool
PKG_CONFIG ?= pkg-config
# SANITIZE=address,undefined builds everything with those sanitizers, in its own tree (build/san) so the
# objects of the two configurations never mix.
ifneq ($(SANITIZE),)
B        ?= build/san
endif
B        ?= build

PKGS      := openssl libnl-3.0 libnl-genl-3.0 libnl-route-3.0 libbpf libsystemd
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -I$(B)/bpf $(PKG_CFLAGS) $(SAN_FLAGS)
# Full RELRO and no lazy binding: besides the usual hardening, the lazy resolver (_dl_runtime_resolve_xsavec)
# saves every vector register on the stack at each first call of a symbol, and those registers can still
# hold a traffic secret a memcpy just moved (found by tests/lab/key_hygiene.sh: docs/security.md).
LDFLAGS  += -Wl,-z,relro,-z,now $(SAN_FLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(B)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS  := $(patsubst bpf/%.bpf.c,$(B)/bpf/%.skel.h,$(BPF_SRCS))
BPF_USER   := $(filter-out $(BPF_SRCS),$(wildcard bpf/*.c))

LIB_SRCS   := $(filter-out datapath/tlsoffd.c,$(wildcard datapath/*.c)) $(BPF_USER)
LIB_OBJS   := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS))
LIB        := $(B)/libtlsoff.a

CTL_SRCS   := $(wildcard ctl/*.c)
CTL_OBJS   := $(patsubst %.c,$(B)/obj/%.o,$(CTL_SRCS))

UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))
TBIN_SRCS  := $(wildcard tests/bin/*.c)
TBIN_BINS  := $(patsubst tests/bin/%.c,$(B)/tests/bin/%,$(TBIN_SRCS))

PROGS := $(if $(wildcard datapath/tlsoffd.c),$(B)/tlsoffd) $(if $(CTL_SRCS),$(B)/tlsoffctl)

.PHONY: all deps install uninstall test test-unit test-host test-san test-lab test-matrix run lab-shell clean bench tls-scan faults soak fuzz fuzz-long
all: $(BPF_OBJS) $(BPF_SKELS) $(LIB) $(PROGS) $(UNIT_BINS) $(TBIN_BINS)

deps:
	@scripts/deps

# --- BPF: libbpf-bootstrap style (x.bpf.c -> x.bpf.o -> x.skel.h) --------------------------------
# Only UAPI headers are used (no vmlinux.h), so the objects do not depend on the build machine's kernel.
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -Iinclude \
	-I/usr/include/$(shell $(CC) -dumpmachine)
$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h include/tlsoff/*.h) | $(B)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@
$(B)/bpf:
	@mkdir -p $@

# --- C ---------------------------------------------------------------------------------------------
# Every object waits for the skeletons, so a loader's #include "x.skel.h" always finds a fresh one.
$(B)/obj/%.o: %.c $(wildcard include/tlsoff/*.h) $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/tlsoffd: $(B)/obj/datapath/tlsoffd.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(B)/tlsoffctl: $(CTL_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CHECK_LIBS) -o $@
$(B)/obj/tests/unit/%.o: CFLAGS += $(CHECK_CFLAGS)
# Sanitized builds link the helpers with tests/helpers_no_leak_check.c (it says why).
TBIN_EXTRA := $(if $(findstring address,$(SANITIZE)),$(B)/obj/tests/helpers_no_leak_check.o)
$(B)/tests/bin/%: $(B)/obj/tests/bin/%.o $(LIB) $(TBIN_EXTRA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Objects of tests/ are intermediate to make's pattern chains: keep them, or every make rebuilds them.
.SECONDARY:

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# --- fuzzing (tests/fuzz/, docs/security.md "Fuzzing") -------------------------------------------
# build/fuzz/NAME: one libFuzzer harness per tests/fuzz/NAME.c, linked against the datapath compiled again by
# clang with the fuzzer's coverage and ASan/UBSan in build/fuzz/obj (build/obj stays gcc's). The objects go
# into an archive, so each harness links only what it calls. No -Werror here: clang's warnings differ from
# gcc's, and the gcc build is the one that keeps the tree clean.
# `make fuzz-long` runs each harness for FUZZ_RUNS executions over a scratch copy of its corpus (the
# checked-in seeds stay small); FUZZ_ONLY="config proxy_v2" picks harnesses.
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -Iinclude -I$(B)/bpf $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_SRCS    := $(wildcard tests/fuzz/*.c)
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(patsubst %.c,$(B)/fuzz/obj/%.o,$(LIB_SRCS))
FUZZ_LIB     := $(B)/fuzz/libtlsoff-fuzz.a
FUZZ_RUNS    ?= 10000000
FUZZ_ONLY    ?= $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
# tests/fuzz/lib/*.c go into every harness: a resolver without DNS (no network from a fuzzer, and runs
# that do not depend on the machine's resolv.conf), put in place of getaddrinfo by --wrap.
FUZZ_COMMON  := $(wildcard tests/fuzz/lib/*.c)
FUZZ_LDFLAGS := -Wl,--wrap=getaddrinfo -Wl,--wrap=freeaddrinfo

fuzz: $(FUZZ_BINS)
$(B)/fuzz/obj/%.o: %.c $(wildcard include/tlsoff/*.h) $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_COMMON) $(FUZZ_LIB) $(wildcard tests/fuzz/lib/*.h)
	$(CLANG) $(FUZZ_CFLAGS) -Itests/fuzz/lib -fsanitize=fuzzer $(FUZZ_LDFLAGS) $< $(FUZZ_COMMON) $(FUZZ_LIB) \
		$(LDLIBS) -o $@
fuzz-long: fuzz
	@for n in $(FUZZ_ONLY); do \
		rm -rf $(B)/fuzz/work/$$n && mkdir -p $(B)/fuzz/work/$$n $(B)/fuzz/crashes && \
		dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
		echo "== $$n: $(FUZZ_RUNS) runs"; \
		nice -n 15 $(B)/fuzz/$$n -runs=$(FUZZ_RUNS) -print_final_stats=1 $$dict \
			-artifact_prefix=$(B)/fuzz/crashes/$$n- $(B)/fuzz/work/$$n tests/fuzz/corpus/$$n \
			>$(B)/fuzz/$$n.long.log 2>&1; rc=$$?; \
		grep -E '^(#[0-9]+.*(INITED|DONE)|Done [0-9]+ runs|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
			$(B)/fuzz/$$n.long.log; \
		[ $$rc = 0 ] || { echo "$$n failed (exit $$rc): $(B)/fuzz/$$n.long.log"; exit 1; }; \
	done

-include $(shell find $(B)/fuzz/obj -name '*.d' 2>/dev/null)

# --- the README's contract -------------------------------------------------------------------------
# `make test` and `make run` install what they need themselves (scripts/deps is a quick no-op when done).
# LAB_KERNELS picks the lab kernels. The default is the whole matrix: 5.10 (no kTLS: the fallback), 6.1,
# 6.12 (kTLS, no rekey) and latest (rekey); a stage takes 3-7 minutes. `make test LAB_KERNELS=latest` for one.
#
# make test also builds the tree again with TEST_SANITIZE (address,undefined; empty: no such stage) into
# build/san and runs the unit and host tests from it (stage "san", scripts/run-tests says how reports fail a
# test). `make test SANITIZE=address,undefined` runs the whole suite on the sanitized build alone (the lab
# too, when LAB_KERNELS names kernels; by default it does not, the guests are slow enough).
TEST_SANITIZE ?= address,undefined
ifneq ($(SANITIZE),)
LAB_KERNELS ?=
SAN_B := $(B)
else
SAN_B := $(if $(TEST_SANITIZE),build/san)
endif
LAB_KERNELS ?= 5.10 6.1 6.12 latest
# The fuzz harnesses are built here, not inside their host test (fuzz_smoke.sh), so that test's 100 s
# budget is fuzzing, not compiling the datapath a second time.
test test-unit test-host test-san test-lab:
	@scripts/deps
	@$(MAKE) --no-print-directory all $(if $(filter test test-host,$@),fuzz)
	@$(if $(and $(SAN_B),$(filter test test-san,$@),$(if $(SANITIZE),,x)),$(MAKE) --no-print-directory all SANITIZE=$(TEST_SANITIZE) B=$(SAN_B))
	@scripts/run-tests --build $(B) $(if $(filter test test-san,$@),$(if $(SAN_B),--san-build $(SAN_B))) \
		$(if $(filter test,$@),,--only $(patsubst test-%,%,$@)) \
		--lab-kernels "$(LAB_KERNELS)" $(TEST_ARGS)
test-matrix:   # the whole matrix whatever LAB_KERNELS says
	@$(MAKE) --no-print-directory test LAB_KERNELS="5.10 6.1 6.12 latest"
run:
	@scripts/deps
	@$(MAKE) --no-print-directory all
	@scripts/run
# Benchmarks are not tests: tlsoffd side by side with haproxy, nginx, stunnel and hitch (BENCHMARKS.md).
# BENCH_ARGS: --quick, --only "tlsoff nginx", --cert rsa, --out DIR.
bench:
	@scripts/deps
	@$(MAKE) --no-print-directory all
	@scripts/bench $(BENCH_ARGS)
# testssl.sh against tlsoffd with the shipped configuration (docs/security.md); TLS_SCAN_ARGS: --key rsa,
# --quick, --server stunnel (the reference that fails), --severity LOW.
tls-scan:
	@scripts/deps
	@$(MAKE) --no-print-directory all
	@scripts/tls-scan $(TLS_SCAN_ARGS)
KERNEL ?= latest
# The fault suite at full size (docs/security.md): the host part (connection flood) and tests/lab/faults.sh
# in one kTLS guest (KERNEL, default latest). make test runs the same scripts at a smaller size.
faults:
	@scripts/deps
	@$(MAKE) --no-print-directory all
	@TLSOFF_FAULTS_FULL=1 scripts/run-tests --only host --filter '^faults_'
	@TLSOFF_FAULTS_FULL=1 scripts/run-tests --only lab --lab-kernels "$(KERNEL)" --filter '^faults$$'
# 10 minutes (SOAK_SECS) of mixed traffic through tlsoffd in a kTLS guest; summary in build/soak/soak.txt.
SOAK_SECS ?= 600
soak:
	@scripts/deps
	@$(MAKE) --no-print-directory all
	@SOAK_SECS=$(SOAK_SECS) scripts/soak --kernel "$(KERNEL)"
lab-shell:   # .cache/run is shared writable so `scripts/run` (the make run demo) works inside too
	@scripts/deps
	@mkdir -p .cache/run
	@scripts/ktls-lab --kernel $(KERNEL) --share $(CURDIR)/.cache/run --interactive

# --- install ---------------------------------------------------------------------------------------
# GNU-style directories; SYSCONFDIR is /etc for PREFIX=/usr (a distribution's layout), PREFIX/etc otherwise.
# install builds nothing but the two programs (in $(B), as `all` does): `make B=DIR install` installs DIR's.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL    ?= install
MAN5       := $(wildcard man/*.5)
MAN8       := $(wildcard man/*.8)

# The example configuration's certificate paths point into the source tree (`make run`'s demo certificate):
# installed, they are relative to the file's own directory (SYSCONFDIR/tlsoff/cert.pem, key.pem).
install: $(PROGS)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/tlsoff
	$(INSTALL) -m 0755 $(B)/tlsoffd $(DESTDIR)$(SBINDIR)/tlsoffd
	$(INSTALL) -m 0755 $(B)/tlsoffctl $(DESTDIR)$(BINDIR)/tlsoffctl
	$(INSTALL) -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 completion/tlsoffctl.bash $(DESTDIR)$(BASHCOMPDIR)/tlsoffctl
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/tlsoffd.service.in > $(DESTDIR)$(UNITDIR)/tlsoffd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/tlsoffd.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/tlsoffd.service.tmp $(DESTDIR)$(UNITDIR)/tlsoffd.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf exists: left as it is"; \
	else \
		echo "sed '/^frontend /s|\.\./\.cache/run/||g' etc/tlsoff.conf > $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf"; \
		sed '/^frontend /s|\.\./\.cache/run/||g' etc/tlsoff.conf > $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf.tmp && \
		chmod 0644 $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf.tmp && \
		mv $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf.tmp $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf; \
	fi
	@[ -n "$(DESTDIR)" ] || echo "installed; now: systemctl daemon-reload && systemctl enable --now tlsoffd"

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/tlsoffd $(DESTDIR)$(BINDIR)/tlsoffctl $(DESTDIR)$(UNITDIR)/tlsoffd.service \
		$(DESTDIR)$(BASHCOMPDIR)/tlsoffctl $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/tlsoff/tlsoff.conf (remove it by hand if you want it gone)"

clean:
	rm -rf $(B)
