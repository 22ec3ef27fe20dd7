# SPDX-License-Identifier: GPL-2.0-only
# kvaccel - top-level Makefile.
#
#   make demo    build everything, boot a VM with the module, run the demo
#   make check   build and run every test (native and in VMs on 6.1 and 6.12)
#   make check-debug  the VM tests on a debug kernel (KASAN, lockdep, kmemleak)
#   make help    the other targets
#
# The module builds out of the source tree, in build/<kver>/, once per
# kernel in KVERS (default: the newest Debian 6.1 and 6.12 kernels in the
# apt index, plus the running kernel when its headers are installed). The
# usual `make -C /lib/modules/$(uname -r)/build M=$PWD` works too (Kbuild).

B	:= build
CC	?= gcc

ifeq ($(origin KVERS),undefined)
KVER_61		:= $(shell tools/install-deps --kver-6.1 2>/dev/null)
KVER_612	:= $(shell tools/install-deps --kver-6.12 2>/dev/null)
KVER_HOST	:= $(shell test -d /lib/modules/$$(uname -r)/build && uname -r)
KVERS		:= $(sort $(KVER_61) $(KVER_612) $(KVER_HOST))
endif
# The kernel `make demo` and `make bench` boot: the newest one (6.12).
KVER_DEMO	?= $(lastword $(sort $(KVER_612) $(KVER_61)))

KSFT		= $(shell tools/linux-source)/tools/testing/selftests
UAPI_CFLAGS	:= -Iuapi -I/usr/include/libdrm
USER_CFLAGS	:= -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(UAPI_CFLAGS)
TEST_CFLAGS	= $(USER_CFLAGS) -I$(KSFT) -Itests/kmod -Itests/exporter -Wno-unused-parameter \
		  -Wno-sign-compare -Wno-missing-field-initializers -Wno-clobbered
# The harness compares pointers (MAP_FAILED) as integers.
M32_CFLAGS	:= -Wno-pointer-to-int-cast
# UBSan aborts at the first report (-fno-sanitize-recover), so undefined behaviour fails a test.
SAN_CFLAGS	:= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# The netlink client (libaccel/ctl) over libnl-genl-3; json-c for kvaccelctl.
NL_CFLAGS	:= -I/usr/include/libnl3 -Ilibaccel/ctl
NL_LIBS		:= -lnl-genl-3 -lnl-3 -lpthread -lm
KVNL_SRCS	:= libaccel/ctl/kvnl.c libaccel/ctl/kvnl.h uapi/kvaccel_netlink.h

KMOD_TESTS	:= device region limits prime numa fail_nth space space_val space_use space_race space_offsets rights copy copy_fence unbind
KMOD_SRCS	:= $(wildcard kmod/*.c kmod/*.h uapi/*.h) kmod/Kbuild Kbuild
TEST_HDRS	:= tests/kmod/kvtest.h tests/libaccel/accel_test.h uapi/kvaccel.h

# Tests of the netlink family: 64-bit only (no 32-bit libnl here).
NL_TESTS	:= netlink fuzz

TEST_BINS	:= $(foreach t,$(KMOD_TESTS),$(B)/tests/$(t) $(B)/tests/$(t)_32) \
		   $(foreach t,$(NL_TESTS),$(B)/tests/$(t)) $(B)/tests/kvt-client \
		   $(B)/tests/libaccel_api $(B)/tests/libaccel_kv $(B)/tests/libaccel_kv_cuda \
		   $(B)/tests/libaccel_mover $(B)/tests/libaccel_window $(B)/tests/libaccel_moe_store \
		   $(B)/tests/kvaccelctl.sh $(B)/tests/kvacceld.sh $(B)/tests/kvacceld_engines \
		   $(B)/tests/python_vm
TOOL_BINS	:= $(B)/tools/kvaccel-demo $(B)/tools/kvaccel-bench \
		   $(B)/tools/kvaccel-bench-bind $(B)/tools/kvaccel-bench-copy \
		   $(B)/tools/kvaccelctl $(B)/tools/kvaccel-bench-kv $(B)/tools/kvaccel-engine \
		   $(B)/tools/kvaccel-bench-gpu $(B)/tools/kvaccel-bench-offload-gpu \
		   $(B)/tools/kvaccel-bench-moe-gpu \
		   $(B)/tools/kvaccel-bench-alloc \
		   $(B)/tools/kvaccel-bench-bm
NATIVE_BINS	:= $(B)/native/abi_layout $(B)/native/abi_layout_32 \
		   $(B)/native/netlink_spec $(B)/native/libaccel_api \
		   $(B)/native/libaccel_install $(B)/native/libaccel_abi $(B)/native/kv_unit \
		   $(B)/native/kv_model $(B)/native/bm_unit $(B)/native/bm_model \
		   $(B)/native/mover_unit $(B)/native/offload_unit \
		   $(B)/native/cuda_probe \
		   $(B)/native/cuda_tier $(B)/native/cuda_tier_plain \
		   $(B)/native/cuda_tier_batch_refused \
		   $(B)/native/mover_cuda $(B)/native/mover_cuda_plain \
		   $(B)/native/kvacceld_config $(B)/native/kvdmsg_unit $(B)/native/kvacceld_metrics \
		   $(B)/native/kvacceld_units $(B)/native/kvacceld_migrate_policy \
		   $(B)/native/fake_cuda_unit $(B)/native/cuda_abi $(B)/native/bench_gpu_fake \
		   $(B)/native/python_bm $(B)/native/python_layout $(B)/native/python_mover \
		   $(B)/native/python_offload $(B)/native/python_moe $(B)/native/python_cuda \
		   $(B)/native/docs_rst

.PHONY: all deps kmod test-modules tests tools native check check-debug demo bench bench-sched bench-eplb bench-migrate bench-xmigrate bench-moe-scale lint clean help gpu-check gpu-bench \
	sim-validate \
	libaccel install

all: kmod test-modules libaccel tests tools $(B)/daemon/kvacceld

help:
	@sed -n 's/^#   //p' Makefile
	@echo "  make all     module for each kernel in KVERS, tests, tools"
	@echo "  make kmod    the module only (build/<kver>/kmod/kvaccel.ko)"
	@echo "  make libaccel  libaccel.so.0, libaccel.a, libaccel.pc (build/libaccel/)"
	@echo "  make install   libaccel, headers, man pages (DESTDIR, PREFIX=/usr/local)"
	@echo "  make bench   benchmarks in a VM: regions, remapping, copies, KV swap"
	@echo "  make bench-eplb  EPLB against the cost-aware MoE planner (native)"
	@echo "  make bench-moe-scale  MoE scale-up from a peer's store against from the file (VM)"
	@echo "  make sim-report  kvaccel-sim's standard experiments: build/sim-report/report.md"
	@echo "  make sim-validate  kvaccel-sim against kvaccel-serve in a VM (calibrate, compare)"
	@echo "  make lint    W=1 builds, sparse (C=2), checkpatch --strict"
	@echo "  make gpu-check  the CUDA device tier's tests against a real GPU and driver"
	@echo "  make gpu-bench  the CUDA backend's swap/window/peer benchmark on a real GPU"
	@echo "  make deps    install the Debian packages the build needs"
	@echo "  make clean   remove build/"
	@echo "  KVERS=\"...\" picks the kernels; KVER_DEMO the one demo/bench boot."

deps:
	tools/install-deps

# --- kernel module --------------------------------------------------------

kmod: $(foreach k,$(KVERS),$(B)/$(k)/kmod/kvaccel.ko)

$(B)/%/kmod/kvaccel.ko: $(KMOD_SRCS)
	tools/build-kmod $* $(B)/$*

# The tests' own kernel module: a dma-buf exporter that refuses attachments.
test-modules: $(foreach k,$(KVERS),$(B)/$(k)/exporter/kvaccel_test_exporter.ko)

$(B)/%/exporter/kvaccel_test_exporter.ko: $(wildcard tests/exporter/*)
	tools/build-test-exporter $* $(B)/$*/exporter

# --- libaccel -------------------------------------------------------------

ACCEL_VERSION	:= 0.1.0
ACCEL_SONAME	:= libaccel.so.0
ACCEL_SRCS	:= $(wildcard libaccel/src/*.c libaccel/src/kv/*.c libaccel/src/bm/*.c \
		   libaccel/src/offload/*.c libaccel/src/cuda/*.c \
		   libaccel/src/mover/*.c libaccel/src/xfer/*.c libaccel/src/moe/*.c) \
		   libaccel/ctl/kvdmsg.c
ACCEL_HDRS	:= libaccel/include/accel.h libaccel/include/accel_bm.h libaccel/include/accel_mover.h \
		   libaccel/include/accel_offload.h libaccel/include/accel_moe.h \
		   libaccel/src/internal.h \
		   uapi/kvaccel.h \
		   uapi/kvacceld.h libaccel/ctl/kvdmsg.h \
		   $(wildcard libaccel/src/kv/*.h libaccel/src/bm/*.h libaccel/src/cuda/*.h \
		   libaccel/src/mover/*.h libaccel/src/xfer/*.h libaccel/src/moe/*.h) \
		   libaccel/include/accel_xfer.h
# --- the scheduler (accel_sched_*; issue 15) ---
# Pure logic over the block manager: in the library, unit-tested and
# model-tested natively (cmocka, ASan/UBSan; SCHED_MODEL_SEED=N replays a
# run, SCHED_MODEL_STEPS=N sets its length), benchmarked natively in
# `make bench` (kvaccel-bench-sched: cost per step, 1024 running and 4096
# waiting requests).
SCHED_SRCS	:= $(wildcard libaccel/src/sched/*.c)
SCHED_HDRS	:= libaccel/include/accel_sched.h $(wildcard libaccel/src/sched/*.h)
ACCEL_SRCS	+= $(SCHED_SRCS)
ACCEL_HDRS	+= $(SCHED_HDRS)
SCHED_DEPS	:= $(SCHED_SRCS) $(SCHED_HDRS) $(wildcard libaccel/src/bm/*.c libaccel/src/kv/*.c \
		   libaccel/src/bm/*.h libaccel/src/kv/*.h) libaccel/include/accel.h \
		   libaccel/include/accel_bm.h libaccel/src/internal.h
SCHED_TEST_SRCS	:= $(SCHED_SRCS) $(wildcard libaccel/src/bm/*.c libaccel/src/kv/*.c)
NATIVE_BINS	+= $(B)/native/sched_unit $(B)/native/sched_model
TOOL_BINS	+= $(B)/tools/kvaccel-bench-sched
$(B)/native/sched_unit $(B)/native/sched_model: $(B)/native/%: tests/libaccel/%.c \
		tests/libaccel/sched_common.h $(SCHED_DEPS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread \
		-o $(B)/native-bin/$* $< $(SCHED_TEST_SRCS) -lcmocka -lcrypto
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/$*" > $@
	@chmod +x $@
$(B)/tools/kvaccel-bench-sched: tools/bench/kvaccel-bench-sched.c tools/bench/bench-common.h \
		$(SCHED_DEPS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread -o $@ $< \
		$(SCHED_TEST_SRCS) -lcrypto
# --- end of the scheduler ---

# --- MoE expert placement (accel_moe_stats_*, accel_eplb_*, accel_moe_plan; issue 18) ---
# Pure logic: load statistics, DeepSeek's EPLB exactly, the cost-aware
# planner, costs and move plans (Documentation/moe.rst, "Planner"). Unit and
# property tests (moe_plan_unit), the EPLB port against an independent numpy
# implementation byte for byte (moe_eplb_oracle: /usr/bin/python3 with
# numpy; a SKIP without), the benchmark natively (make bench-eplb).
MOE_PLAN_SRCS	:= $(wildcard libaccel/src/moe/plan*.c libaccel/src/moe/stats*.c \
		   libaccel/src/moe/eplb*.c)
MOE_PLAN_HDRS	:= libaccel/include/accel_moe_plan.h libaccel/src/moe/plan.h
ACCEL_HDRS	+= $(MOE_PLAN_HDRS)
NATIVE_BINS	+= $(B)/native/moe_plan_unit $(B)/native/moe_eplb_oracle
$(B)/native/moe_plan_unit $(B)/native/moe_eplb_oracle: $(B)/native/%: tests/libaccel/%.c \
		tests/libaccel/moe_common.h tests/libaccel/eplb_oracle.py $(MOE_PLAN_SRCS) \
		$(MOE_PLAN_HDRS) libaccel/include/accel.h libaccel/src/internal.h
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/src -Itests/libaccel \
		-o $(B)/native-bin/$* $< $(MOE_PLAN_SRCS) -lcmocka -lm
	@printf '#!/bin/sh\nEPLB_ORACLE=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/tests/libaccel/eplb_oracle.py" "$(CURDIR)/$(B)/native-bin/$*" > $@
	@chmod +x $@
TOOL_BINS	+= $(B)/tools/kvaccel-bench-eplb
$(B)/tools/kvaccel-bench-eplb: tools/bench/kvaccel-bench-eplb.c tools/bench/bench-common.h \
		$(MOE_PLAN_SRCS) $(MOE_PLAN_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -Ilibaccel/src -o $@ $< \
		$(MOE_PLAN_SRCS) -lm
# --- end of MoE expert placement ---

ACCEL_CFLAGS	:= $(USER_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -fPIC -fvisibility=hidden \
		   -pthread
ACCEL_OBJS	:= $(patsubst libaccel/src/%.c,$(B)/libaccel/%.o,$(filter libaccel/src/%,$(ACCEL_SRCS))) \
		   $(B)/libaccel/ctl/kvdmsg.o
# libcrypto: SHA-256 block keys (Apache-2.0, fine for an MIT library).
ACCEL_LDLIBS	:= -ldrm -lcrypto
ACCEL_LIBS	:= $(B)/libaccel/libaccel.a $(B)/libaccel/$(ACCEL_SONAME) $(B)/libaccel/libaccel.pc
PREFIX		?= /usr/local
DESTDIR		?=

libaccel: $(ACCEL_LIBS)

$(B)/libaccel/%.o: libaccel/src/%.c $(ACCEL_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ACCEL_CFLAGS) -c -o $@ $<

$(B)/libaccel/ctl/%.o: libaccel/ctl/%.c $(ACCEL_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ACCEL_CFLAGS) -c -o $@ $<

# One relocatable object whose hidden (internal) symbols are made local:
# a program linking libaccel.a sees the API only (tests/libaccel/abi.sh).
OBJCOPY		?= objcopy
$(B)/libaccel/libaccel.a: $(ACCEL_OBJS)
	@echo "  AR      $@"
	@$(LD) -r -o $(B)/libaccel/libaccel-all.o $^
	@$(OBJCOPY) --localize-hidden --wildcard --localize-symbol='accel_*__v[0-9]*' \
		$(B)/libaccel/libaccel-all.o
	@rm -f $@ && ar rcs $@ $(B)/libaccel/libaccel-all.o

$(B)/libaccel/$(ACCEL_SONAME): $(ACCEL_OBJS) libaccel/libaccel.map
	@echo "  LD      $@"
	@$(CC) -shared -pthread -Wl,-soname,$(ACCEL_SONAME) \
		-Wl,--version-script=libaccel/libaccel.map -Wl,--no-undefined \
		-o $@ $(ACCEL_OBJS) $(ACCEL_LDLIBS)
	@ln -sf $(ACCEL_SONAME) $(B)/libaccel/libaccel.so

$(B)/libaccel/libaccel.pc: libaccel/libaccel.pc.in
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(ACCEL_VERSION)|' $< > $@

install: libaccel
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/kvaccel \
		$(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 $(B)/libaccel/libaccel.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libaccel/$(ACCEL_SONAME) $(DESTDIR)$(PREFIX)/lib/$(ACCEL_SONAME)
	ln -sf $(ACCEL_SONAME) $(DESTDIR)$(PREFIX)/lib/libaccel.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(ACCEL_VERSION)|' \
		libaccel/libaccel.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libaccel.pc
	install -m 644 libaccel/include/accel.h libaccel/include/accel_bm.h libaccel/include/accel_mover.h libaccel/include/accel_offload.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 libaccel/include/accel_sched.h libaccel/include/accel_xfer.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 libaccel/include/accel_moe_plan.h libaccel/include/accel_moe.h \
		$(DESTDIR)$(PREFIX)/include/
	install -m 644 uapi/kvaccel.h uapi/kvaccel_netlink.h $(DESTDIR)$(PREFIX)/include/kvaccel/
	install -m 644 libaccel/man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	@# One link page (".so man3/PAGE.3") per function a page's NAME line lists.
	@for f in libaccel/man/*.3; do \
		page=$$(basename $$f); \
		for fn in $$(sed -n '/^\.SH NAME/{n;s/ \\-.*//;s/,/ /g;p;q}' $$f); do \
			[ "$$fn.3" = "$$page" ] || \
			echo ".so man3/$$page" > $(DESTDIR)$(PREFIX)/share/man/man3/$$fn.3; \
		done; \
	done

# --- kvacceld ---------------------------------------------------------------

# The cluster part and its etcd client (Documentation/kvacceld.rst, "Cluster view").
ETCD_SRCS	:= daemon/etcd_client.c daemon/etcd_http.c daemon/etcd_json.c
ETCD_HDRS	:= daemon/etcd.h daemon/etcd_int.h
CLUSTER_SRCS	:= daemon/cluster.c daemon/cluster_view.c $(ETCD_SRCS)
CLUSTER_HDRS	:= daemon/cluster.h daemon/cluster_view.h daemon/config.h $(ETCD_HDRS)
KVACCELD_SRCS	:= daemon/kvacceld.c daemon/config.c daemon/engines.c daemon/handoffs.c \
		   daemon/pressure.c daemon/metrics.c daemon/procs.c daemon/migrations.c \
		   daemon/migrate_policy.c daemon/migrations_remote.c daemon/cluster_node.c \
		   daemon/cluster_info.c \
		   $(CLUSTER_SRCS) libaccel/ctl/kvnl.c \
		   libaccel/ctl/kvsize.c libaccel/ctl/kvdmsg.c
KVACCELD_HDRS	:= daemon/config.h daemon/kvd.h daemon/migrate_policy.h $(CLUSTER_HDRS) \
		   libaccel/ctl/kvsize.h \
		   libaccel/ctl/kvdmsg.h \
		   uapi/kvacceld.h $(KVNL_SRCS)

# Linked dynamically (libmicrohttpd and libsystemd have no usable static
# build in Debian); tools/vmtest ships its libraries into the guest.
$(B)/daemon/kvacceld: $(KVACCELD_SRCS) $(KVACCELD_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(NL_CFLAGS) -Idaemon -pthread -o $@ $(KVACCELD_SRCS) \
		-linih -lmicrohttpd -lsystemd -lcurl -ljson-c $(NL_LIBS)

# --- kvaccel-serve (tools/serve/): the reference engine -------------------

# Built with -ffp-contract=off: no multiply-add fused at one call site and
# not another (the determinism rule, Documentation/serve.rst).
SERVE_CORE	:= tools/serve/ops.c tools/serve/weights.c tools/serve/forward.c \
		   tools/serve/sample.c tools/serve/safetensors.c
SERVE_ENGINE	:= tools/serve/engine.c tools/serve/compute.c tools/serve/step.c \
		   tools/serve/fcfs.c tools/serve/scheduled.c tools/serve/driver.c \
		   tools/serve/pressure.c tools/serve/stack.c tools/serve/steplog.c \
		   tools/serve/driver_migrate.c tools/serve/migrate_image.c tools/serve/migrate_node.c \
		   tools/serve/migrate_sock.c tools/serve/kvd_migrate.c tools/serve/kvd_xmigrate.c \
		   tools/serve/migrate_net.c tools/serve/moe.c tools/serve/moe_policy.c \
		   tools/serve/memfd.c tools/serve/moe_peer.c tools/serve/kvd_moe.c
SERVE_HDRS	:= $(wildcard tools/serve/*.h)
SERVE_CFLAGS	:= -ffp-contract=off -Itools/serve -Ilibaccel/include -pthread
TOOL_BINS	+= $(B)/tools/kvaccel-serve
NATIVE_BINS	+= $(B)/native/serve_ops $(B)/native/serve_st $(B)/native/serve_engine \
		   $(B)/native/serve_cli
TEST_BINS	+= $(B)/tests/serve_vm

# The HTTP server (--listen) over libmicrohttpd.
SERVE_HTTP	:= tools/serve/http.c tools/serve/http_engine.c tools/serve/http_req.c \
		   tools/serve/http_json.c tools/serve/http_render.c
$(B)/tools/kvaccel-serve: $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HTTP) tools/serve/cli.c \
		tools/serve/main.c tools/serve/http_main.c $(SERVE_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) -o $@ $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HTTP) \
		tools/serve/cli.c tools/serve/main.c tools/serve/http_main.c \
		$(B)/libaccel/libaccel.a -ljson-c -lmicrohttpd $(ACCEL_LDLIBS) -lm

# The operators against straightforward references, and safetensors
# (cmocka, ASan/UBSan).
$(B)/native/serve_ops $(B)/native/serve_st: $(B)/native/serve_%: tests/serve/%_unit.c \
		$(SERVE_CORE) $(SERVE_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) $(SAN_CFLAGS) -o $(B)/native-bin/serve_$* $< \
		$(SERVE_CORE) -ljson-c -lcmocka -lm
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/serve_$*" > $@
	@chmod +x $@

# The determinism rule over memfd tiers: every request's digests against
# the same request alone (cmocka, ASan/UBSan over libaccel's sources too).
$(B)/native/serve_engine: tests/serve/engine_unit.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/ctl \
		-o $(B)/native-bin/serve_engine $< $(SERVE_CORE) $(SERVE_ENGINE) $(ACCEL_SRCS) \
		-ljson-c -lcmocka $(ACCEL_LDLIBS) -lm
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/serve_engine" > $@
	@chmod +x $@

# libaccel's scheduler driving the engine (driver.c): digests under every policy and
# preemption, yields to an arrival, a pressure round, the calls' checks (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/serve_driver $(B)/native/serve_migrate $(B)/native/serve_xmigrate
$(B)/native/serve_driver $(B)/native/serve_migrate $(B)/native/serve_xmigrate: $(B)/native/serve_%: tests/serve/%_unit.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/ctl \
		-o $(B)/native-bin/serve_$* $< $(SERVE_CORE) $(SERVE_ENGINE) $(ACCEL_SRCS) \
		-ljson-c -lcmocka $(ACCEL_LDLIBS) -lm
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/serve_$*" > $@
	@chmod +x $@

# The MoE placement policies of kvaccel-serve's expert store: the default one and the
# adapters to libaccel's planner (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/serve_moe
$(B)/native/serve_moe: tests/serve/moe_unit.c tools/serve/moe.c tools/serve/moe_policy.c \
		$(SERVE_HDRS) $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/ctl \
		-o $(B)/native-bin/serve_moe $< tools/serve/moe.c tools/serve/moe_policy.c \
		$(ACCEL_SRCS) $(ACCEL_LDLIBS) -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/serve_moe" > $@
	@chmod +x $@

# Cross-node live migration, two processes over UCX on 127.0.0.1 (its sides shared with the VM test).
$(B)/native/serve_xmigrate: tests/serve/xmigrate_roles.h

# In the VM: the engine on host tiers in kvaccel regions, swaps on the copy engine.
$(B)/tests/serve_vm: tests/serve/vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) $(TEST_HDRS) \
		$(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -static -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm

# In the VM: the MoE model's experts in libaccel's expert store, rebalanced under serving.
TEST_BINS	+= $(B)/tests/serve_moe_vm
$(B)/tests/serve_moe_vm: tests/serve/moe_vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(TEST_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -static -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm

# The same with the store on the cuda backend over two fake GPUs: dynamic (it
# dlopens libcuda.so.1; run-selftests ships the fake).
TEST_BINS	+= $(B)/tests/serve_moe_vm_cuda
$(B)/tests/serve_moe_vm_cuda: tests/serve/moe_vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(TEST_HDRS) $(B)/libaccel/libaccel.a $(B)/native-bin/fakecuda/libcuda.so.1 \
		tests/libaccel/fake_cuda_guest.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -DMOE_CUDA -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm -ldl

# In the VM: a node's zero-copy live migration between two engine processes (window tiers).
TEST_BINS	+= $(B)/tests/serve_migrate_vm
$(B)/tests/serve_migrate_vm: tests/serve/migrate_vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(TEST_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -static -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm

# In the VM: a cross-node live migration between two network namespaces
# (tests/serve/xmigrate_netns.sh). Linked dynamically: libaccel dlopens
# libucp.so.0, which a static program cannot.
TEST_BINS	+= $(B)/tests/serve_xmigrate_vm
$(B)/tests/serve_xmigrate_vm: tests/serve/xmigrate_vm.c tests/serve/xmigrate_roles.h $(SERVE_CORE) \
		$(SERVE_ENGINE) $(SERVE_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -ldl -lm

# The cross-node migration benchmark: pre-copy against stop-and-copy over
# UCX's tcp transport on 127.0.0.1 (natively: memfd tiers, no module).
TOOL_BINS	+= $(B)/tools/kvaccel-bench-xmigrate
$(B)/tools/kvaccel-bench-xmigrate: tools/bench/kvaccel-bench-xmigrate.c $(SERVE_CORE) $(SERVE_ENGINE) \
		$(SERVE_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -ldl -lm

# The migration benchmark (make bench-migrate): two engine processes in the VM.
TOOL_BINS	+= $(B)/tools/kvaccel-bench-migrate
$(B)/tools/kvaccel-bench-migrate: tools/bench/kvaccel-bench-migrate.c $(SERVE_CORE) $(SERVE_ENGINE) \
		$(SERVE_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) -static -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm

# In the VM: a drain through kvacceld moves decoding requests between two
# kvaccel-serve processes (the engine next to the script: run-selftests skips it).
TEST_BINS	+= $(B)/tests/migrate_kvd.sh $(B)/tests/kvaccel-serve
$(B)/tests/migrate_kvd.sh: tests/serve/migrate_kvd.sh
	@mkdir -p $(@D)
	install -m 755 $< $@
$(B)/tests/kvaccel-serve: $(B)/tools/kvaccel-serve
	@mkdir -p $(@D)
	install -m 755 $< $@

# In the VM: kvacceld killed at each stage of a node's migration (the engines
# stop themselves there: SERVE_MIGR_STOP_AT), restarted or not.
TEST_BINS	+= $(B)/tests/migrate_kvd_kill.sh $(B)/tests/kvd_test.lib
$(B)/tests/migrate_kvd_kill.sh: tests/serve/migrate_kvd_kill.sh
	@mkdir -p $(@D)
	install -m 755 $< $@
$(B)/tests/kvd_test.lib: tests/serve/kvd_test.lib
	@mkdir -p $(@D)
	install -m 644 $< $@

# In the VM: either node's kvacceld killed at each stage of a migration across
# two network namespaces (the engines stop themselves there: SERVE_XMIG_STOP_AT;
# tools/check ships etcd, iproute2's ip and libucp; SKIP without them).
TEST_BINS	+= $(B)/tests/xmigrate_kvd_kill.sh
$(B)/tests/xmigrate_kvd_kill.sh: tests/serve/xmigrate_kvd_kill.sh $(B)/tests/kvd_test.lib \
		$(B)/daemon/kvacceld $(B)/tests/kvaccel-serve
	@mkdir -p $(@D)
	install -m 755 $< $@

# In the VM: MoE engines scaled up from a peer's expert store on the node
# (zero-copy through kvacceld) and scaled down by a drain.
TEST_BINS	+= $(B)/tests/moe_scale_kvd.sh
$(B)/tests/moe_scale_kvd.sh: tests/serve/moe_scale_kvd.sh
	@mkdir -p $(@D)
	install -m 755 $< $@

# In the VM: a kvacceld pressure round answered by swap-outs, and an engine
# killed in the middle of its swaps leaking nothing (kvacceld on PATH in the guest).
TEST_BINS	+= $(B)/tests/serve_pressure_vm
$(B)/tests/serve_pressure_vm: tests/serve/pressure_vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HDRS) \
		$(TEST_HDRS) $(B)/libaccel/libaccel.a $(B)/daemon/kvacceld
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -static -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(B)/libaccel/libaccel.a -ljson-c $(ACCEL_LDLIBS) -lm

# The HTTP server in-process on memfd tiers, a tiny socket client (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/serve_http
$(B)/native/serve_http: tests/serve/http_unit.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HTTP) \
		tools/serve/cli.c tools/serve/http_main.c $(SERVE_HDRS) $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SERVE_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/ctl \
		-o $(B)/native-bin/serve_http $< $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HTTP) \
		tools/serve/cli.c tools/serve/http_main.c $(ACCEL_SRCS) -ljson-c -lmicrohttpd \
		-lcmocka $(ACCEL_LDLIBS) -lm
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/serve_http" > $@
	@chmod +x $@

# In the VM: the HTTP server on region tiers (linked dynamically: libmicrohttpd;
# run-selftests ships its libraries).
TEST_BINS	+= $(B)/tests/serve_http_vm
$(B)/tests/serve_http_vm: tests/serve/http_vm.c $(SERVE_CORE) $(SERVE_ENGINE) $(SERVE_HTTP) \
		$(SERVE_HDRS) $(TEST_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SERVE_CFLAGS) -o $@ $< $(SERVE_CORE) $(SERVE_ENGINE) \
		$(SERVE_HTTP) $(B)/libaccel/libaccel.a -ljson-c -lmicrohttpd $(ACCEL_LDLIBS) -lm

# The command line: bad options refused with a message, a run, weights round trip (TAP).
$(B)/native/serve_cli: tests/serve/cli.sh tests/lib/cli-tap.sh $(B)/tools/kvaccel-serve
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s\n' "$(CURDIR)/$<" "$(CURDIR)/$(B)/tools/kvaccel-serve" > $@
	@chmod +x $@

# --- kvaccel-loadgen (tools/loadgen/): the load generator -----------------

LOADGEN_SRCS	:= tools/loadgen/workload.c tools/loadgen/trace.c tools/loadgen/synth.c \
		   tools/loadgen/prompt.c tools/loadgen/http.c tools/loadgen/run.c \
		   tools/loadgen/stats.c tools/loadgen/report.c tools/loadgen/digests.c \
		   tools/loadgen/metrics.c tools/loadgen/server.c tools/loadgen/wlopts.c
LOADGEN_HDRS	:= $(wildcard tools/loadgen/*.h)
LOADGEN_TESTS	:= trace synth stats e2e metrics
TOOL_BINS	+= $(B)/tools/kvaccel-loadgen
NATIVE_BINS	+= $(foreach t,$(LOADGEN_TESTS),$(B)/native/loadgen_$(t)) $(B)/native/loadgen_cli

# Static, so that it runs in the VM next to kvaccel-serve (getaddrinfo's static-link
# warning is expected: numeric hosts and /etc/hosts names resolve without NSS modules).
$(B)/tools/kvaccel-loadgen: $(LOADGEN_SRCS) tools/loadgen/cli.c tools/loadgen/main.c \
		$(LOADGEN_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Itools/loadgen -pthread -static -o $@ $(LOADGEN_SRCS) \
		tools/loadgen/cli.c tools/loadgen/main.c -ljson-c -lm 2>&1 | \
		{ grep -v "getaddrinfo\|in function .lg_http_post\|in function .dial" || true; }
	@test -x $@

# Traces, the generator's statistics, the metrics, a run against an in-test fake server
# (cmocka, ASan/UBSan).
$(foreach t,$(LOADGEN_TESTS),$(B)/native/loadgen_$(t)): $(B)/native/loadgen_%: \
		tests/loadgen/%_unit.c tests/loadgen/fake_server.c tests/loadgen/fake_server.h \
		$(LOADGEN_SRCS) $(LOADGEN_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Itools/loadgen -Itests/loadgen -pthread \
		-o $(B)/native-bin/loadgen_$* $< tests/loadgen/fake_server.c $(LOADGEN_SRCS) \
		-ljson-c -lcmocka -lm
	@printf '#!/bin/sh\ncd %s && CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)" \
		"$(CURDIR)/$(B)/native-bin/loadgen_$*" > $@
	@chmod +x $@

# The command line: bad options and bad traces refused with their exit status and message (TAP).
$(B)/native/loadgen_cli: tests/loadgen/cli.sh tests/lib/cli-tap.sh $(B)/tools/kvaccel-loadgen
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s\n' "$(CURDIR)/$<" "$(CURDIR)/$(B)/tools/kvaccel-loadgen" > $@
	@chmod +x $@

# --- kvaccel-sim (tools/sim/): the discrete-event serving simulator (issue 16) ---
# libaccel's scheduler and block manager (their sources, as kvaccel-bench-sched links them),
# kvaccel-loadgen's workload readers, generator and report (its sources, unchanged), and the
# simulator's own event core, profile loader, engine model, events (pressure rounds, seeded
# faults, their options), CLI and report.

SIM_SRCS	:= tools/sim/event.c tools/sim/profile.c tools/sim/engine.c tools/sim/output.c \
		   tools/sim/instance.c tools/sim/dispatch.c tools/sim/calibrate.c \
		   tools/sim/pressure.c tools/sim/faults.c tools/sim/evopts.c tools/sim/stream.c
# systems (--system), goodput by bisection, fairness and the CSV time series
SIM_SRCS	+= tools/sim/system.c tools/sim/goodput.c tools/sim/metrics.c
SIM_HDRS	:= $(wildcard tools/sim/*.h)
SIM_DEPS	:= $(SIM_SRCS) $(SIM_HDRS) $(LOADGEN_SRCS) $(LOADGEN_HDRS) $(SCHED_DEPS)
SIM_CFLAGS	:= -Itools/sim -Itools/loadgen -Ilibaccel/include -Ilibaccel/src -pthread
SIM_LIBS	:= -ljson-c -lcrypto -lm
SIM_TESTS	:= event engine profile calibrate metrics stream
TOOL_BINS	+= $(B)/tools/kvaccel-sim
NATIVE_BINS	+= $(foreach t,$(SIM_TESTS),$(B)/native/sim_$(t)) $(B)/native/sim_cli

$(B)/tools/kvaccel-sim: tools/sim/cli.c tools/sim/main.c $(SIM_DEPS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SIM_CFLAGS) -o $@ tools/sim/cli.c tools/sim/main.c $(SIM_SRCS) \
		$(LOADGEN_SRCS) $(SCHED_TEST_SRCS) $(SIM_LIBS)

# The event core; the engine against closed forms (a single request, M/D/1, a yield, a
# prefill/decode hand-off), determinism, no request dropped under any policy, dispatch over
# several instances; the profile loader (cmocka, ASan/UBSan).
$(foreach t,$(SIM_TESTS),$(B)/native/sim_$(t)): $(B)/native/sim_%: tests/sim/%_unit.c $(SIM_DEPS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) $(SIM_CFLAGS) -o $(B)/native-bin/sim_$* $< \
		$(SIM_SRCS) $(LOADGEN_SRCS) $(SCHED_TEST_SRCS) $(SIM_LIBS) -lcmocka
	@printf '#!/bin/sh\ncd %s && CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)" \
		"$(CURDIR)/$(B)/native-bin/sim_$*" > $@
	@chmod +x $@

# The command line: bad options, profiles and traces refused with status 2 and a message (TAP).
$(B)/native/sim_cli: tests/sim/cli.sh tests/lib/cli-tap.sh $(B)/tools/kvaccel-sim
	@mkdir -p $(@D)
	@printf '#!/bin/sh\ncd %s && exec %s %s\n' "$(CURDIR)" "$(CURDIR)/$<" \
		"$(CURDIR)/$(B)/tools/kvaccel-sim" > $@
	@chmod +x $@

# Systems, goodput, fairness, the time series and report.py --quick from the command line (TAP).
$(B)/native/sim_report: tests/sim/report_cli.sh tests/lib/cli-tap.sh tools/sim/report.py \
		$(B)/tools/kvaccel-sim
	@mkdir -p $(@D)
	@printf '#!/bin/sh\ncd %s && exec %s %s\n' "$(CURDIR)" "$(CURDIR)/$<" \
		"$(CURDIR)/$(B)/tools/kvaccel-sim" > $@
	@chmod +x $@
NATIVE_BINS	+= $(B)/native/sim_report

# The standard experiments (tools/sim/report.py): build/sim-report/report.md, its tables and
# gnuplot's plots. Not in make check: 4 to 8 minutes on 2 cores (139 runs).
sim-report: $(B)/tools/kvaccel-sim
	/usr/bin/python3 tools/sim/report.py --bin $(B)/tools/kvaccel-sim --out $(B)/sim-report
.PHONY: sim-report

# --- userspace ------------------------------------------------------------

tests: $(TEST_BINS)

$(foreach t,$(NL_TESTS),$(B)/tests/$(t)): # libaccel against the module (static: libaccel.a and libdrm.a).
$(B)/tests/libaccel_api $(B)/tests/libaccel_kv $(B)/tests/libaccel_mover \
		$(B)/tests/libaccel_window $(B)/tests/libaccel_moe_store: $(B)/tests/libaccel_%: tests/libaccel/%.c \
		$(TEST_HDRS) $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread -static -o $@ $< \
		libaccel/ctl/kvdmsg.c $(B)/libaccel/libaccel.a $(ACCEL_LDLIBS)

# The KV cache on the cuda backend against the fake driver: dynamic (it
# dlopens libcuda.so.1); run-selftests ships the fake and vmtest the libraries.
$(B)/tests/libaccel_kv_cuda: tests/libaccel/kv.c $(TEST_HDRS) $(B)/libaccel/libaccel.a \
		$(B)/native-bin/fakecuda/libcuda.so.1 \
		tests/libaccel/fake_cuda_guest.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -DKV_CUDA -Ilibaccel/include -Ilibaccel/src -pthread -o $@ $< \
		libaccel/src/cuda/cuda_loader.c $(B)/libaccel/libaccel.a $(ACCEL_LDLIBS) -ldl

# The engine socket with libaccel's engine side (kvacceld on PATH in the guest).
$(B)/tests/kvacceld_engines: tests/daemon/engines.c $(TEST_HDRS) $(B)/libaccel/libaccel.a \
		libaccel/ctl/kvdmsg.h uapi/kvacceld.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread -static -o $@ $< \
		libaccel/ctl/kvdmsg.c $(B)/libaccel/libaccel.a $(ACCEL_LDLIBS)

# kvacceld's test in the guest (run-selftests puts the daemon next to it).
$(B)/tests/kvacceld.sh: tests/daemon/kvacceld.sh $(B)/daemon/kvacceld
	@mkdir -p $(@D)
	install -m 755 $< $@

# kvacceld's cluster part in the guest: three daemons and one etcd member
# (tools/check ships etcd to /tests/etcd/etcd; SKIP without it).
TEST_BINS	+= $(B)/tests/kvacceld_cluster.sh
$(B)/tests/kvacceld_cluster.sh: tests/daemon/cluster_vm.sh $(B)/daemon/kvacceld
	@mkdir -p $(@D)
	install -m 755 $< $@

# Three nodes in network namespaces, a three-member etcd cluster, a daemon
# and engines per node, a drain to another node picked from the view, a
# partition and a member lost (tools/check ships etcd, iproute2's ip and
# libucp; SKIP without them or without netns, veth and IPv4).
TEST_BINS	+= $(B)/tests/kvacceld_cluster3.sh
$(B)/tests/kvacceld_cluster3.sh: tests/daemon/cluster_netns_vm.sh $(B)/daemon/kvacceld \
		$(B)/tests/kvaccel-serve
	@mkdir -p $(@D)
	install -m 755 $< $@

# kvaccelctl's test (run-selftests puts the tool next to it in the guest).
$(B)/tests/kvaccelctl.sh: tests/kmod/kvaccelctl.sh $(B)/tools/kvaccelctl
	@mkdir -p $(@D)
	install -m 755 $< $@

$(B)/tests/%: tests/kmod/%.c $(TEST_HDRS) $(KVNL_SRCS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(NL_CFLAGS) -pthread -static -o $@ $< libaccel/ctl/kvnl.c $(NL_LIBS)

$(B)/tests/%: tests/kmod/%.c $(TEST_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -static -o $@ $<

$(B)/tests/%_32: tests/kmod/%.c $(TEST_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) -m32 $(TEST_CFLAGS) $(M32_CFLAGS) -static -o $@ $<

$(B)/tests/kvt-client: tests/kmod/client.c $(TEST_HDRS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -static -o $@ $<

native: $(NATIVE_BINS)

$(B)/native/abi_layout: tests/abi/layout.c uapi/kvaccel.h uapi/kvacceld.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SAN_CFLAGS) -o $@ $<

# The netlink uapi header against its YAML spec (Debian's python3-yaml).
$(B)/native/netlink_spec: tests/abi/netlink_spec.py Documentation/netlink/kvaccel.yaml \
		uapi/kvaccel_netlink.h
	@mkdir -p $(@D)
	@echo "  GEN     $@"
	@printf '#!/bin/sh\nexec /usr/bin/python3 %s %s %s\n' "$(CURDIR)/$<" \
		"$(CURDIR)/Documentation/netlink/kvaccel.yaml" \
		"$(CURDIR)/uapi/kvaccel_netlink.h" > $@
	@chmod +x $@

# libaccel's tests that need no device (argument checks, fd passing), with
# ASan and UBSan over the library's own sources.
$(B)/native/libaccel_api: tests/libaccel/api.c $(TEST_HDRS) $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread \
		-o $(B)/native-bin/libaccel_api $< $(ACCEL_SRCS) $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nexec %s -f global\n' "$(CURDIR)/$(B)/native-bin/libaccel_api" > $@
	@chmod +x $@

# The KV-cache manager's core, unit-tested with cmocka (TAP output).
$(B)/native/kv_unit: tests/libaccel/kv_unit.c $(wildcard libaccel/src/kv/*)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src -o $(B)/native-bin/kv_unit $< \
		$(wildcard libaccel/src/kv/*.c) -lcmocka -lcrypto
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kv_unit" > $@
	@chmod +x $@

# The KV cache's logic over a stub backend: directed and model-based tests.
$(B)/native/kv_model: tests/libaccel/kv_model.c libaccel/src/kv_cache.c libaccel/src/log.c \
		$(wildcard libaccel/src/kv/* libaccel/src/bm/*) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread \
		-o $(B)/native-bin/kv_model $< libaccel/src/kv_cache.c libaccel/src/log.c \
		$(wildcard libaccel/src/kv/*.c libaccel/src/bm/*.c) -lcmocka -lcrypto
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kv_model" > $@
	@chmod +x $@

# The block manager (accel_bm_*): unit tests per operation, and a seeded
# model-based run checking every invariant after each operation (cmocka,
# ASan/UBSan). BM_MODEL_SEED=N replays a run, BM_MODEL_OPS=N sets its budget.
BM_SRCS		:= $(wildcard libaccel/src/bm/*.c libaccel/src/kv/*.c)
BM_DEPS		:= $(BM_SRCS) $(wildcard libaccel/src/bm/*.h libaccel/src/kv/*.h) \
		   libaccel/include/accel.h libaccel/include/accel_bm.h libaccel/include/accel_mover.h libaccel/include/accel_offload.h \
		   libaccel/src/internal.h
$(B)/native/bm_unit $(B)/native/bm_model: $(B)/native/%: tests/libaccel/%.c $(BM_DEPS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread \
		-o $(B)/native-bin/$* $< $(BM_SRCS) -lcmocka -lcrypto
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/$*" > $@
	@chmod +x $@

# The memfd tier and the data mover (accel_tier_*, accel_mover_*): cmocka,
# ASan/UBSan over the library's sources (no device needed).
$(B)/native/mover_unit: tests/libaccel/mover_unit.c $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread \
		-o $(B)/native-bin/mover_unit $< $(ACCEL_SRCS) -lcmocka $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/mover_unit" > $@
	@chmod +x $@

# accel_xfer between two processes over UCX's tcp transport on 127.0.0.1:
# cmocka, ASan/UBSan over the library's sources (UCX's memory hooks off,
# tests/libaccel/xfer_unit.c says why).
NATIVE_BINS	+= $(B)/native/xfer_unit
$(B)/native/xfer_unit: tests/libaccel/xfer_unit.c $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread \
		-o $(B)/native-bin/xfer_unit $< $(ACCEL_SRCS) -lcmocka $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/xfer_unit" > $@
	@chmod +x $@

# The offload manager (accel_offload_*): cmocka, ASan/UBSan over the
# library's sources (the end-to-end test moves bytes between memfd tiers).
$(B)/native/offload_unit: tests/libaccel/offload_unit.c $(ACCEL_SRCS) $(ACCEL_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -pthread \
		-o $(B)/native-bin/offload_unit $< $(ACCEL_SRCS) -lcmocka $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/offload_unit" > $@
	@chmod +x $@

# The engine socket's message checks and fd passing (cmocka, ASan/UBSan).
$(B)/native/kvdmsg_unit: tests/daemon/kvdmsg_unit.c libaccel/ctl/kvdmsg.c libaccel/ctl/kvdmsg.h \
		uapi/kvacceld.h
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/ctl -o $(B)/native-bin/kvdmsg_unit \
		$< libaccel/ctl/kvdmsg.c -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvdmsg_unit" > $@
	@chmod +x $@

# kvacceld's metrics exposition: the renderer, read by a strict parser (cmocka, ASan/UBSan).
$(B)/native/kvacceld_metrics: tests/daemon/metrics_unit.c daemon/metrics.c daemon/procs.c \
		daemon/kvd.h daemon/config.h libaccel/ctl/kvnl.c uapi/kvacceld.h $(CLUSTER_SRCS) \
		$(CLUSTER_HDRS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) $(NL_CFLAGS) -Idaemon -pthread \
		-o $(B)/native-bin/kvacceld_metrics $< daemon/metrics.c daemon/procs.c \
		$(CLUSTER_SRCS) libaccel/ctl/kvnl.c -lmicrohttpd -lcurl -ljson-c -lcmocka -lm $(NL_LIBS)
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_metrics" > $@
	@chmod +x $@

# The MoE expert store's pure logic: placement checks, the executor's waves,
# steps in flight per table version (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/moe_store_unit
MOE_STORE_LOGIC	:= libaccel/src/moe/exec_wave.c libaccel/src/moe/store_epoch.c \
		   libaccel/src/moe/share_pick.c
$(B)/native/moe_store_unit: tests/libaccel/moe_store_unit.c $(MOE_STORE_LOGIC) \
		libaccel/src/moe/store_logic.h
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src/moe -o $(B)/native-bin/moe_store_unit \
		$< $(MOE_STORE_LOGIC) -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/moe_store_unit" > $@
	@chmod +x $@

# kvacceld's migration policy, pure logic (cmocka, ASan/UBSan).
$(B)/native/kvacceld_migrate_policy: tests/daemon/migrate_policy_unit.c daemon/migrate_policy.c \
		daemon/migrate_policy.h uapi/kvacceld.h
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Idaemon -o $(B)/native-bin/kvacceld_migrate_policy \
		$< daemon/migrate_policy.c -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_migrate_policy" > $@
	@chmod +x $@

# kvacceld's configuration parser and checks (cmocka, ASan/UBSan).
$(B)/native/kvacceld_config: tests/daemon/config_unit.c daemon/config.c daemon/config.h \
		daemon/cluster_view.c daemon/cluster_view.h libaccel/ctl/kvsize.c libaccel/ctl/kvsize.h
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Idaemon -Ilibaccel/ctl -o $(B)/native-bin/kvacceld_config \
		$< daemon/config.c daemon/cluster_view.c libaccel/ctl/kvsize.c -linih -ljson-c -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_config" > $@
	@chmod +x $@

# kvacceld's etcd gateway client against a real etcd (SKIP without one) and
# a fake gateway's malformed answers (cmocka, ASan/UBSan).
ETCD_FIXTURE	:= tests/daemon/etcd_fixture.c tests/daemon/etcd_fixture.h
NATIVE_BINS	+= $(B)/native/kvacceld_etcd
$(B)/native/kvacceld_etcd: tests/daemon/etcd_unit.c $(ETCD_SRCS) $(ETCD_HDRS) $(ETCD_FIXTURE)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Idaemon -Itests/daemon -pthread \
		-o $(B)/native-bin/kvacceld_etcd $< $(ETCD_SRCS) tests/daemon/etcd_fixture.c \
		-lcurl -ljson-c -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_etcd" > $@
	@chmod +x $@

# kvacceld's cluster part: the view's keys and values, and three nodes in one
# process against one real etcd (SKIP without one) (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/kvacceld_cluster
$(B)/native/kvacceld_cluster: tests/daemon/cluster_unit.c $(CLUSTER_SRCS) $(CLUSTER_HDRS) \
		$(ETCD_FIXTURE)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Idaemon -Itests/daemon -pthread \
		-o $(B)/native-bin/kvacceld_cluster $< $(CLUSTER_SRCS) tests/daemon/etcd_fixture.c \
		-lcurl -ljson-c -lcmocka -lm
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_cluster" > $@
	@chmod +x $@

# KVD_MSG_LIST_CLUSTER end to end without the kernel: the daemon's encoder, a
# SEQPACKET socket, kvaccelctl's reader and tables (cmocka, ASan/UBSan).
NATIVE_BINS	+= $(B)/native/kvacceld_ctl_cluster
$(B)/native/kvacceld_ctl_cluster: tests/daemon/ctl_cluster_unit.c daemon/cluster_info.c \
		$(CLUSTER_HDRS) tools/kvaccelctl/daemon.c tools/kvaccelctl/daemon.h \
		tools/kvaccelctl/render.c tools/kvaccelctl/render.h libaccel/ctl/kvdmsg.c \
		libaccel/ctl/kvdmsg.h uapi/kvacceld.h $(KVNL_SRCS)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) $(NL_CFLAGS) -Idaemon -Itools/kvaccelctl -pthread \
		-o $(B)/native-bin/kvacceld_ctl_cluster $< daemon/cluster_info.c \
		tools/kvaccelctl/daemon.c tools/kvaccelctl/render.c libaccel/ctl/kvdmsg.c \
		libaccel/ctl/kvnl.c -ljson-c -lcmocka $(NL_LIBS)
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/kvacceld_ctl_cluster" > $@
	@chmod +x $@

# kvacceld's systemd units, offline (systemd-analyze verify and security).
$(B)/native/kvacceld_units: tests/daemon/units.sh daemon/kvacceld.service daemon/kvacceld.socket \
		daemon/kvacceld.sysusers $(B)/daemon/kvacceld
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s %s\n' "$(CURDIR)/$<" "$(CURDIR)" "$(CURDIR)/$(B)/daemon/kvacceld" > $@
	@chmod +x $@

# The CUDA driver loader: without a driver it must say so (-ENODEV and why).
$(B)/native/cuda_probe: tests/libaccel/cuda_probe.c $(wildcard libaccel/src/cuda/*)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src -pthread -o $(B)/native-bin/cuda_probe $< \
		$(wildcard libaccel/src/cuda/*.c) -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/cuda_probe" > $@
	@chmod +x $@

# The cuda backend's device tier against the fake driver (tests/libaccel/fake_cuda.c);
# the same binary runs against the real driver on a GPU machine (make gpu-check).
$(B)/native/cuda_tier: tests/libaccel/cuda_tier.c $(wildcard libaccel/src/cuda/*) \
		$(B)/native-bin/fakecuda/libcuda.so.1
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src -pthread -o $(B)/native-bin/cuda_tier $< \
		$(wildcard libaccel/src/cuda/*.c) -lcmocka -ldl
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/cuda_tier" > $@
	@chmod +x $@

# On a machine with a GPU and its driver: the device tier's tests against it.
gpu-check: $(B)/native/cuda_tier $(B)/native/cuda_probe
	CMOCKA_MESSAGE_OUTPUT=TAP $(B)/native-bin/cuda_probe
	CMOCKA_MESSAGE_OUTPUT=TAP $(B)/native-bin/cuda_tier

# On a machine with a GPU and its driver: the swap, window-growing and
# GPU-to-GPU benchmark (tools/bench/kvaccel-bench-gpu.c; GPU_BENCH_ARGS),
# then offload through the data mover (kvaccel-bench-offload-gpu.c), then the
# MoE expert store's copies between GPUs and rebinds (kvaccel-bench-moe-gpu.c).
gpu-bench: $(B)/tools/kvaccel-bench-gpu $(B)/tools/kvaccel-bench-offload-gpu \
		$(B)/tools/kvaccel-bench-moe-gpu
	$(B)/tools/kvaccel-bench-gpu $(GPU_BENCH_ARGS)
	$(B)/tools/kvaccel-bench-offload-gpu
	$(B)/tools/kvaccel-bench-moe-gpu

# The GPU benchmark against the fake driver (two fake GPUs, strict access):
# every path runs and its data is checked; the figures mean nothing.
$(B)/native/bench_gpu_fake: tests/libaccel/bench_gpu_fake.sh $(B)/tools/kvaccel-bench-gpu \
		$(B)/tools/kvaccel-bench-offload-gpu $(B)/tools/kvaccel-bench-moe-gpu \
		$(B)/native-bin/fakecuda/libcuda.so.1
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s %s %s %s\n' "$(CURDIR)/tests/libaccel/bench_gpu_fake.sh" \
		"$(CURDIR)/$(B)/tools/kvaccel-bench-gpu" "$(CURDIR)/$(B)/native-bin/fakecuda" \
		"$(CURDIR)/$(B)/tools/kvaccel-bench-offload-gpu" \
		"$(CURDIR)/$(B)/tools/kvaccel-bench-moe-gpu" > $@
	@chmod +x $@

# The same against a driver without cuMemcpyBatchAsync, dma-buf export or peers.
$(B)/native/cuda_tier_plain: $(B)/native/cuda_tier
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 FAKE_CUDA_NO_BATCH=1 FAKE_CUDA_NO_DMABUF=1 FAKE_CUDA_NO_PEER=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/cuda_tier" > $@
	@chmod +x $@

# And against a driver that has cuMemcpyBatchAsync but refuses it.
$(B)/native/cuda_tier_batch_refused: $(B)/native/cuda_tier
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 FAKE_CUDA_BATCH_UNSUPPORTED=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/cuda_tier" > $@
	@chmod +x $@

# Device tiers in the data mover (accel_tier_create_cuda, accel_tier_register_cuda,
# CUDA jobs) against the fake driver: cmocka, ASan/UBSan over the library's sources.
$(B)/native/mover_cuda: tests/libaccel/mover_cuda.c tests/libaccel/fake_cuda.h $(ACCEL_SRCS) \
		$(ACCEL_HDRS) $(B)/native-bin/fakecuda/libcuda.so.1
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -Ilibaccel/src \
		-Itests/libaccel -pthread -o $(B)/native-bin/mover_cuda $< $(ACCEL_SRCS) -lcmocka \
		-ldl $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/mover_cuda" > $@
	@chmod +x $@

# The MoE expert store on the cuda backend (ACCEL_MOE_STORE_CUDA) over four
# fake GPUs whose new memory is garbage, and again without peer access or
# cuMemcpyBatchAsync (staged).
NATIVE_BINS	+= $(B)/native/moe_store_cuda $(B)/native/moe_store_cuda_plain
$(B)/native/moe_store_cuda: tests/libaccel/moe_store_cuda.c tests/libaccel/fake_cuda.h \
		$(ACCEL_SRCS) $(ACCEL_HDRS) $(B)/native-bin/fakecuda/libcuda.so.1
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/include -Ilibaccel/ctl -Ilibaccel/src \
		-Itests/libaccel -pthread -o $(B)/native-bin/moe_store_cuda $< $(ACCEL_SRCS) \
		-lcmocka -ldl $(ACCEL_LDLIBS)
	@printf '#!/bin/sh\nFAKE_CUDA_DEVICES=4 FAKE_CUDA_STRICT_ACCESS=1 FAKE_CUDA_DIRTY=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/moe_store_cuda" > $@
	@chmod +x $@
$(B)/native/moe_store_cuda_plain: $(B)/native/moe_store_cuda
	@printf '#!/bin/sh\nFAKE_CUDA_DEVICES=4 FAKE_CUDA_STRICT_ACCESS=1 FAKE_CUDA_DIRTY=1 FAKE_CUDA_NO_BATCH=1 FAKE_CUDA_NO_PEER=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/moe_store_cuda" > $@
	@chmod +x $@

# The same against a driver without cuMemcpyBatchAsync, dma-buf export or peers.
$(B)/native/mover_cuda_plain: $(B)/native/mover_cuda
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 FAKE_CUDA_NO_BATCH=1 FAKE_CUDA_NO_DMABUF=1 FAKE_CUDA_NO_PEER=1 LD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$(B)/native-bin/mover_cuda" > $@
	@chmod +x $@

# A fake CUDA driver over host memory, for the CUDA tier's native tests
# (tests/libaccel/fake_cuda.h). No sanitizers: it is loaded into ASan
# programs, whose interceptors see its copies.
FAKECUDA_DIR	:= $(B)/native-bin/fakecuda
$(FAKECUDA_DIR)/libcuda.so.1: tests/libaccel/fake_cuda.c tests/libaccel/fake_cuda.h \
		libaccel/src/cuda/cuda_api.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/src -fPIC -shared -pthread -Wl,-soname,libcuda.so.1 \
		-Wl,-z,defs -o $@ $<

# The fake, loaded through libaccel's loader (cmocka, ASan/UBSan).
$(B)/native/fake_cuda_unit: tests/libaccel/fake_cuda_unit.c tests/libaccel/fake_cuda.h \
		$(wildcard libaccel/src/cuda/*) $(FAKECUDA_DIR)/libcuda.so.1
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src -Itests/libaccel -pthread \
		-o $(B)/native-bin/fake_cuda_unit $< $(wildcard libaccel/src/cuda/*.c) -ldl -lcmocka
	@printf '#!/bin/sh\nLD_LIBRARY_PATH=%s CMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' \
		"$(CURDIR)/$(FAKECUDA_DIR)" "$(CURDIR)/$(B)/native-bin/fake_cuda_unit" > $@
	@chmod +x $@

# libaccel's CUDA typedefs and constants against the toolkit's cuda.h
# (a TAP SKIP where CUDA_INC has none).
CUDA_INC	?= /usr/local/cuda/include
$(B)/native/cuda_abi: tests/libaccel/cuda_abi.c libaccel/src/cuda/cuda_api.h \
		libaccel/src/cuda/cuda_loader.h tests/libaccel/fake_cuda.h \
		$(wildcard $(CUDA_INC)/cuda.h $(CUDA_INC)/cudaTypedefs.h)
	@mkdir -p $(B)/native-bin $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(SAN_CFLAGS) -Ilibaccel/src -Itests/libaccel \
		$(if $(wildcard $(CUDA_INC)/cuda.h),-I$(CUDA_INC) -DACCEL_HAVE_CUDA_H) \
		-DCUDA_API_H_PATH='"$(CURDIR)/libaccel/src/cuda/cuda_api.h"' \
		-o $(B)/native-bin/cuda_abi $< -lcmocka
	@printf '#!/bin/sh\nCMOCKA_MESSAGE_OUTPUT=TAP exec %s\n' "$(CURDIR)/$(B)/native-bin/cuda_abi" > $@
	@chmod +x $@

$(B)/native/libaccel_install: tests/libaccel/install.sh $(ACCEL_LIBS)
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s %s\n' "$(CURDIR)/$<" "$(CURDIR)" "$(abspath $(B))" > $@
	@chmod +x $@

# The Python bindings (libaccel/python/kvaccel, ctypes) over the built
# libaccel.so.0 (tests/python/run.sh: unittest printing TAP, Debian's
# /usr/bin/python3; a SKIP without python3): the block manager and its
# struct mirrors (python_bm), the other struct mirrors (python_layout),
# memfd tiers and the mover with numpy, torch and asyncio (python_mover),
# the offload manager and Documentation/examples/connector.py (python_offload),
# MoE placement against the numpy EPLB oracle (python_moe).
PY_SRCS		:= $(wildcard libaccel/python/kvaccel/*.py tests/python/*.py) \
		   tests/libaccel/eplb_oracle.py \
		   Documentation/examples/connector.py
PY_TESTS	:= bm layout mover offload moe
$(foreach t,$(PY_TESTS),$(B)/native/python_$(t)): $(B)/native/python_%: tests/python/run.sh \
		$(B)/libaccel/$(ACCEL_SONAME) $(PY_SRCS) $(B)/native-bin/py_bm_layout \
		$(B)/native-bin/py_layout
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s %s %s\n' "$(CURDIR)/$<" "$(CURDIR)" "$(abspath $(B))" \
		"$(CURDIR)/tests/python/test_$*.py" > $@
	@chmod +x $@

# Every Documentation/*.rst parses without a docutils warning (Debian's python3).
$(B)/native/docs_rst: tests/docs_rst.py $(wildcard Documentation/*.rst)
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec /usr/bin/python3 %s %s\n' "$(CURDIR)/$<" "$(CURDIR)/Documentation" > $@
	@chmod +x $@

# Device tiers and the mover's CUDA options from Python, against the fake driver.
$(B)/native/python_cuda: tests/python/run.sh $(B)/libaccel/$(ACCEL_SONAME) $(PY_SRCS) \
		$(B)/native-bin/fakecuda/libcuda.so.1
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nFAKE_CUDA_STRICT_ACCESS=1 LD_LIBRARY_PATH=%s exec %s %s %s %s\n' \
		"$(CURDIR)/$(B)/native-bin/fakecuda" "$(CURDIR)/$<" "$(CURDIR)" "$(abspath $(B))" \
		"$(CURDIR)/tests/python/test_cuda.py" > $@
	@chmod +x $@

$(B)/native-bin/py_bm_layout: tests/python/bm_layout.c libaccel/include/accel_bm.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -o $@ $<

$(B)/native-bin/py_layout: tests/python/layout.c $(wildcard libaccel/include/*.h)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -o $@ $<

# The bindings against the module (make check's VMs): tests/python/vm.sh in
# the guest, with python3, numpy and the package staged by stage.sh (its
# vmtest-args are the -a options run-selftests adds).
$(B)/pyroot/vmtest-args: tests/python/stage.sh $(PY_SRCS) $(B)/libaccel/$(ACCEL_SONAME)
	@tests/python/stage.sh "$(CURDIR)" "$(abspath $(B))" "$(abspath $(B))/pyroot"

$(B)/tests/python_vm: tests/python/vm.sh $(B)/pyroot/vmtest-args
	@mkdir -p $(@D)
	install -m 755 $< $@

# The library's exports against its version script and the frozen 0.1 ABI
# (abigail-tools), and no internal globals in libaccel.a.
# 0.1's entry points kept in compat.c, alone under their plain names (abi.sh).
COMPAT_SYMS	= $(shell sed -n 's/^ACCEL_COMPAT("\([a-z_]*\)", "LIBACCEL_0.1")$$/\1/p' libaccel/src/compat.c)
$(B)/libaccel/compat-0.1.so: libaccel/src/compat.c
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ACCEL_CFLAGS) -DACCEL_COMPAT_PLAIN -c -o $(B)/libaccel/compat-plain.o $<
	@$(OBJCOPY) $(foreach s,$(COMPAT_SYMS),--redefine-sym $(s)__v0_1=$(s)) \
		$(B)/libaccel/compat-plain.o
	@printf 'LIBACCEL_0.1 {\n\tglobal:\n\t\taccel_*;\n\tlocal:\n\t\t*;\n};\n' > $(B)/libaccel/compat-0.1.map
	@$(CC) -shared -Wl,--version-script=$(B)/libaccel/compat-0.1.map -o $@ \
		$(B)/libaccel/compat-plain.o

$(B)/native/libaccel_abi: tests/libaccel/abi.sh $(ACCEL_LIBS) libaccel/abi/libaccel-0.1.abi libaccel/abi/libaccel-0.2.symbols \
		$(B)/libaccel/compat-0.1.so
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec %s %s %s\n' "$(CURDIR)/$<" "$(CURDIR)" "$(abspath $(B))" > $@
	@chmod +x $@

$(B)/native/abi_layout_32: tests/abi/layout.c uapi/kvaccel.h uapi/kvacceld.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) -m32 $(TEST_CFLAGS) $(M32_CFLAGS) -o $@ $<

tools: $(TOOL_BINS)

$(B)/tools/kvaccel-demo: tools/demo/kvaccel-demo.c uapi/kvaccel.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -static -o $@ $< -ldrm

$(B)/tools/kvaccel-bench-kv: tools/bench/kvaccel-bench-kv.c tools/bench/bench-common.h \
		libaccel/include/accel.h $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -pthread -static -o $@ $< \
		$(B)/libaccel/libaccel.a $(ACCEL_LDLIBS)

# Built against the loader and tier sources (internal API), dynamic: dlopen.
$(B)/tools/kvaccel-bench-gpu: tools/bench/kvaccel-bench-gpu.c tools/bench/bench-common.h \
		$(wildcard libaccel/src/cuda/*)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/src -pthread -o $@ $< \
		$(wildcard libaccel/src/cuda/*.c) -ldl

# Offload between a GPU and host memory through the data mover (libaccel.so
# loads the CUDA driver at run time; against the fake in bench_gpu_fake).
# The MoE expert store on GPUs: libaccel.a for the store, the tier's sources
# for reading the windows back.
$(B)/tools/kvaccel-bench-moe-gpu: tools/bench/kvaccel-bench-moe-gpu.c tools/bench/bench-common.h \
		$(B)/libaccel/libaccel.a $(wildcard libaccel/src/cuda/*)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread -o $@ $< \
		$(wildcard libaccel/src/cuda/*.c) $(B)/libaccel/libaccel.a $(ACCEL_LDLIBS) -ldl

$(B)/tools/kvaccel-bench-offload-gpu: tools/bench/kvaccel-bench-offload-gpu.c \
		tools/bench/bench-common.h $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -pthread -o $@ $< $(B)/libaccel/libaccel.a \
		$(ACCEL_LDLIBS) -ldl

# The KV block pool's allocator, natively (internal API: the pool's sources).
$(B)/tools/kvaccel-bench-alloc: tools/bench/kvaccel-bench-alloc.c tools/bench/bench-common.h \
		$(wildcard libaccel/src/kv/*)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/src -o $@ $< $(wildcard libaccel/src/kv/*.c) -lcrypto

# accel_xfer's put bandwidth between two processes over UCX (tcp on
# 127.0.0.1 by default) against memcpy; dynamic: UCX is loaded at run time.
TOOL_BINS	+= $(B)/tools/kvaccel-bench-xfer
$(B)/tools/kvaccel-bench-xfer: tools/bench/kvaccel-bench-xfer.c $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -pthread -o $@ $< $(B)/libaccel/libaccel.a \
		$(ACCEL_LDLIBS)

# The block manager natively: allocate/free/lookup of a 64-block chain.
$(B)/tools/kvaccel-bench-bm: tools/bench/kvaccel-bench-bm.c tools/bench/bench-common.h \
		$(BM_DEPS)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -Ilibaccel/src -pthread -o $@ $< $(BM_SRCS) \
		-lcrypto

# The demo's two engines (libaccel's engine API).
$(B)/tools/kvaccel-engine: tools/demo/kvaccel-engine.c $(B)/libaccel/libaccel.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Ilibaccel/include -pthread -static -o $@ $< \
		$(B)/libaccel/libaccel.a $(ACCEL_LDLIBS)

# Many simulated nodes publishing into one etcd on loopback (the cluster
# part's load): publish and watch-propagation latency, etcd's CPU.
TOOL_BINS	+= $(B)/tools/kvaccel-bench-etcd
$(B)/tools/kvaccel-bench-etcd: tools/bench/kvaccel-bench-etcd.c daemon/cluster_view.c \
		$(CLUSTER_HDRS) $(ETCD_SRCS) $(ETCD_FIXTURE)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -Idaemon -Itests/daemon -pthread -o $@ $< daemon/cluster_view.c \
		$(ETCD_SRCS) tests/daemon/etcd_fixture.c -lcurl -ljson-c

KVACCELCTL_SRCS	:= tools/kvaccelctl/kvaccelctl.c tools/kvaccelctl/render.c \
		   tools/kvaccelctl/daemon.c libaccel/ctl/kvnl.c libaccel/ctl/kvsize.c \
		   libaccel/ctl/kvdmsg.c

$(B)/tools/kvaccelctl: $(KVACCELCTL_SRCS) tools/kvaccelctl/render.h tools/kvaccelctl/daemon.h \
		$(KVNL_SRCS) libaccel/ctl/kvsize.h libaccel/ctl/kvdmsg.h uapi/kvacceld.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) $(NL_CFLAGS) -static -o $@ $(KVACCELCTL_SRCS) -ljson-c $(NL_LIBS)

$(B)/tools/kvaccel-bench $(B)/tools/kvaccel-bench-bind $(B)/tools/kvaccel-bench-copy: $(B)/tools/%: tools/bench/%.c \
		tools/bench/bench-common.h uapi/kvaccel.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(USER_CFLAGS) -static -o $@ $<

# --- running --------------------------------------------------------------

check: deps
	@$(MAKE) --no-print-directory all native
	tools/check $(B) $(KVERS)

# The suite on a kernel built with KASAN, lockdep, kmemleak and fault
# injection (built once from Debian's linux-source-6.12, then cached).
check-debug: deps
	@$(MAKE) --no-print-directory tests
	tools/check-debug $(B)

# The demo's cluster part needs etcd, iproute2's ip and UCX in the guest
# (installed by make deps; without etcd it is left out).
DEMO_CLUSTER_ARGS = $(if $(wildcard /usr/bin/etcd),-a /usr/bin/etcd:/bin/etcd \
	-a $(shell readlink -f $$(command -v ip || echo /usr/sbin/ip)):/bin/ip-iproute2 \
	-a $(shell readlink -f /usr/lib/x86_64-linux-gnu/libucp.so.0):/usr/lib/x86_64-linux-gnu/libucp.so.0 \
	-a /etc/ld.so.cache:/etc/ld.so.cache)
demo: deps
	@$(MAKE) --no-print-directory kmod tools $(B)/daemon/kvacceld KVERS=$(KVER_DEMO)
	tools/vmtest -k $(KVER_DEMO) -m $(B)/$(KVER_DEMO)/kmod/kvaccel.ko \
		-a $(B)/tools/kvaccel-demo:/bin/kvaccel-demo \
		-a $(B)/tools/kvaccelctl:/bin/kvaccelctl \
		-a $(B)/tools/kvaccel-bench-kv:/bin/kvaccel-bench-kv \
		-a $(B)/tools/kvaccel-engine:/bin/kvaccel-engine \
		-a $(B)/daemon/kvacceld:/bin/kvacceld \
		-a $(B)/tools/kvaccel-serve:/bin/kvaccel-serve \
		-a tools/demo/demo.sh:/bin/kvaccel-demo.sh \
		-a tools/demo/cluster-demo.sh:/bin/kvaccel-cluster-demo.sh \
		-a tools/demo/moe-demo.sh:/bin/kvaccel-moe-demo.sh \
		-M 3G -l veth $(DEMO_CLUSTER_ARGS) -o $(B)/vm-demo \
		-- kvaccel-demo.sh
	@sed '/^vmtest-\(exit\|init\)/d' $(B)/vm-demo/output.log

# Benchmarks in a VM (6 GiB guest): region allocation, remapping, the copy
# engine with 1, 2 and the default number of workers, and libaccel's KV
# cache swapping 1 GiB of scattered blocks, on
# KVER_BENCH (default: the demo kernel; `make bench KVER_BENCH=<6.1 kver>`).
KVER_BENCH	?= $(KVER_DEMO)
bench: deps
	@$(MAKE) --no-print-directory kmod tools KVERS=$(KVER_BENCH)
	$(B)/tools/kvaccel-bench-alloc
	$(B)/tools/kvaccel-bench-bm
	$(B)/tools/kvaccel-bench-sched
	-$(B)/tools/kvaccel-bench-etcd --nodes 100 --seconds 10
	$(B)/tools/kvaccel-bench-eplb
	@$(MAKE) --no-print-directory libaccel
	-KVACCEL_LIB=$(abspath $(B))/libaccel/$(ACCEL_SONAME) python3 tools/bench/kvaccel-bench-bm.py
	-KVACCEL_LIB=$(abspath $(B))/libaccel/$(ACCEL_SONAME) /usr/bin/python3 \
		tools/bench/kvaccel-bench-offload.py
	tools/vmtest -k $(KVER_BENCH) -M 6G -m $(B)/$(KVER_BENCH)/kmod/kvaccel.ko \
		-a $(B)/tools:/bin/kvbench -o $(B)/vm-bench-$(KVER_BENCH) -t 2400 \
		-- "/bin/kvbench/kvaccel-bench && /bin/kvbench/kvaccel-bench-bind && \
		    for w in 1 2 0; do rmmod kvaccel && \
		    insmod /lib/modules/kvaccel.ko copy_workers=\$$w && \
		    /bin/kvbench/kvaccel-bench-copy || exit 1; done && \
		    /bin/kvbench/kvaccel-bench-kv"
	@sed '/^vmtest-\(exit\|init\)/d' $(B)/vm-bench-$(KVER_BENCH)/output.log
	@$(MAKE) --no-print-directory bench-sched
	@$(MAKE) --no-print-directory bench-migrate
	@$(MAKE) --no-print-directory bench-xmigrate
	@$(MAKE) --no-print-directory bench-moe-scale

# EPLB (both policies) against the cost-aware planner on Zipf loads (native).
bench-eplb:
	@$(MAKE) --no-print-directory $(B)/tools/kvaccel-bench-eplb
	$(B)/tools/kvaccel-bench-eplb

# Live migration on a node: downtime by sequence length, zero-copy against
# stop-and-copy and recompute (Documentation/serve.rst, "Live migration").
# Elastic MoE scale-up on a node (tools/serve/vm-bench-moe-scale.sh): a new
# engine's experts from a serving engine's store against from the file.
bench-moe-scale: deps
	@$(MAKE) --no-print-directory kmod $(B)/tools/kvaccel-serve $(B)/daemon/kvacceld \
		$(B)/tools/kvaccelctl KVERS=$(KVER_BENCH)
	tools/vmtest -k $(KVER_BENCH) -M 4G -m $(B)/$(KVER_BENCH)/kmod/kvaccel.ko -l vgem \
		-a tools/serve/vm-bench-moe-scale.sh:/bin/vm-bench-moe-scale.sh \
		-a $(B)/tools/kvaccel-serve:/bin/kvaccel-serve -a $(B)/daemon/kvacceld:/bin/kvacceld \
		-a $(B)/tools/kvaccelctl:/bin/kvaccelctl \
		-o $(B)/vm-bench-moe-scale -t 1800 -- vm-bench-moe-scale.sh
	@sed '/^vmtest-\(exit\|init\)/d' $(B)/vm-bench-moe-scale/output.log

bench-migrate: deps
	@$(MAKE) --no-print-directory kmod $(B)/tools/kvaccel-bench-migrate KVERS=$(KVER_BENCH)
	tools/vmtest -k $(KVER_BENCH) -M 4G -m $(B)/$(KVER_BENCH)/kmod/kvaccel.ko \
		-a $(B)/tools/kvaccel-bench-migrate:/bin/kvaccel-bench-migrate \
		-o $(B)/vm-bench-migrate -t 2400 -- kvaccel-bench-migrate $(MIGRATE_LENS)
	@sed -n '/^#\|^  [0-9]/p' $(B)/vm-bench-migrate/output.log

# Live migration across nodes: two network namespaces of the VM joined by a
# veth pair, UCX tcp between them; multi-stage pre-copy against
# stop-and-copy (Documentation/serve.rst, "Across nodes"). The source and
# destination are memfd-backed: no kernel module needed, only veth.
bench-xmigrate: deps
	@$(MAKE) --no-print-directory $(B)/tools/kvaccel-bench-xmigrate KVERS=$(KVER_BENCH)
	tools/vmtest -k $(KVER_BENCH) -M 4G -l veth \
		-a $(B)/tools/kvaccel-bench-xmigrate:/bin/kvaccel-bench-xmigrate \
		-a tools/bench/xmigrate-netns.sh:/bin/xmigrate-netns.sh \
		-a "$$(readlink -f "$$(command -v ip || echo /usr/sbin/ip)")":/bin/ip-iproute2 \
		-a "$$(readlink -f /usr/lib/x86_64-linux-gnu/libucp.so.0)":/usr/lib/x86_64-linux-gnu/libucp.so.0 \
		-a /etc/ld.so.cache:/etc/ld.so.cache \
		-o $(B)/vm-bench-xmigrate -t 2400 -- xmigrate-netns.sh $(MIGRATE_LENS)
	@sed -n '/^#\|^  [0-9]/p' $(B)/vm-bench-xmigrate/output.log

# The two-class scheduling benchmark on the reference engine (Documentation/serve.rst).
bench-sched: deps
	@$(MAKE) --no-print-directory kmod $(B)/tools/kvaccel-serve $(B)/tools/kvaccel-loadgen \
		KVERS=$(KVER_BENCH)
	tools/vmtest -k $(KVER_BENCH) -M 4G -m $(B)/$(KVER_BENCH)/kmod/kvaccel.ko \
		-a $(B)/tools/kvaccel-serve:/bin/kvaccel-serve \
		-a $(B)/tools/kvaccel-loadgen:/bin/kvaccel-loadgen \
		-a tools/serve/vm-bench-sched.sh:/bin/vm-bench-sched.sh \
		-o $(B)/vm-bench-sched -t 2400 -- vm-bench-sched.sh
	/usr/bin/python3 tools/bench/sched-two-class.py $(B)/vm-bench-sched/output.log

# kvaccel-sim against the reference engine: one VM boot runs kvaccel-serve (step log on) under a
# calibration workload and the validation workload (kvaccel-loadgen); the profile fitted from the
# first, the simulator on the second, TTFT and TPOT compared (Documentation/sim.rst).
sim-validate: deps
	@$(MAKE) --no-print-directory kmod $(B)/tools/kvaccel-serve $(B)/tools/kvaccel-loadgen \
		$(B)/tools/kvaccel-sim KVERS=$(KVER_BENCH)
	tools/sim/validate.sh $(B) $(KVER_BENCH)

lint:
	tools/lint $(B) $(KVERS)

clean:
	rm -rf $(B)
