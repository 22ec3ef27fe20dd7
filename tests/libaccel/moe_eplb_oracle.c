// SPDX-License-Identifier: GPL-2.0-only
/*
 * The EPLB port (accel_eplb_rebalance()) against tests/libaccel/eplb_oracle.py,
 * an independent numpy implementation of DeepSeek's rebalance_experts with
 * the same tie rules (Documentation/moe.rst, "EPLB"): phy2log, logcnt and
 * log2phy compared byte for byte on generated loads (Zipf token counts,
 * uniform floats, loads with many ties) over several shapes: 4 layers x 16
 * experts, DeepSeek-V3's 58 x 256 on 64 GPUs in 8 nodes with 64 redundant
 * slots under both policies, groups that do not divide by the nodes (the
 * global policy), random small shapes. cmocka, ASan/UBSan; EPLB_ORACLE
 * names the script (the wrapper sets it); a SKIP without /usr/bin/python3
 * and numpy.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel.h"
#include "accel_moe_plan.h"
#include "moe_common.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/moe-oracle-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? -1 : 0;
}

static void need_oracle(void)
{
	if (!getenv("EPLB_ORACLE") ||
	    system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1"))
		skip();
}

enum load_kind { LOAD_ZIPF, LOAD_FLOAT, LOAD_TIES };

static void gen(float *w, uint32_t layers, uint32_t experts, enum load_kind kind, uint64_t *seed)
{
	size_t i, n = (size_t)layers * experts;

	if (kind == LOAD_ZIPF) {
		moe_zipf(w, layers, experts, 1.0 + moe_unif(seed), 4096 * experts, seed);
		return;
	}
	for (i = 0; i < n; i++)
		w[i] = kind == LOAD_FLOAT ? (float)(moe_unif(seed) * 100.0)
					  : (float)(moe_rand(seed) % 5);
}

/* Run both on @w; fail at the first differing byte. */
static void compare(uint32_t layers, uint32_t experts, uint32_t slots, uint32_t groups,
		    uint32_t nodes, uint32_t gpus, uint32_t policy, const float *w,
		    const char *what)
{
	ACCEL_OPTS(accel_moe_topo, t, .layers = layers, .experts = experts, .slots = slots,
		   .devices = gpus, .nodes = nodes, .groups = groups);
	ACCEL_OPTS(accel_eplb_opts, opt, .policy = policy);
	int32_t hdr[7] = { layers, experts, slots, groups, nodes, gpus, policy }, maxcnt;
	size_t np = (size_t)layers * slots, ne = (size_t)layers * experts;
	uint32_t width = slots - experts + 1, cmax = 0;
	int32_t *p2l = malloc(np * 4), *cnt = malloc(ne * 4), *l2p = malloc(ne * width * 4);
	int32_t *o = malloc((1 + np + ne + ne * width) * 4);
	char in[96], out[96], cmd[512];
	FILE *f;
	size_t got;
	int ret;

	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	f = fopen(in, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(hdr, sizeof(hdr), 1, f), 1);
	assert_int_equal(fwrite(w, sizeof(float), ne, f), ne);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s'", getenv("EPLB_ORACLE"), in,
		 out);
	assert_int_equal(system(cmd), 0);
	f = fopen(out, "rb");
	assert_non_null(f);
	got = fread(o, 4, 1 + np + ne + ne * width, f);
	fclose(f);
	maxcnt = o[0];
	assert_true(maxcnt >= 1);
	assert_int_equal(got, 1 + np + ne + (size_t)maxcnt * ne);

	ret = accel_eplb_rebalance(&t, w, &opt, p2l, l2p, (uint32_t)maxcnt, cnt, &cmax);
	assert_int_equal(ret, 0);
	assert_int_equal(cmax, maxcnt);
	if (memcmp(p2l, o + 1, np * 4)) {
		for (size_t i = 0; i < np; i++)
			if (p2l[i] != o[1 + i])
				fail_msg("%s: phy2log[%zu][%zu] %d, the oracle %d", what, i / slots,
					 i % slots, p2l[i], o[1 + i]);
	}
	assert_memory_equal(cnt, o + 1 + np, ne * 4);
	assert_memory_equal(l2p, o + 1 + np + ne, ne * maxcnt * 4);
	assert_null(moe_check_placement(&t, p2l, l2p, maxcnt, cnt));
	free(p2l);
	free(cnt);
	free(l2p);
	free(o);
}

static void shape(uint32_t layers, uint32_t experts, uint32_t slots, uint32_t groups,
		  uint32_t nodes, uint32_t gpus, uint32_t policy, uint64_t seed, const char *what)
{
	float *w = malloc(sizeof(float) * layers * experts);

	for (int kind = LOAD_ZIPF; kind <= LOAD_TIES; kind++) {
		gen(w, layers, experts, kind, &seed);
		compare(layers, experts, slots, groups, nodes, gpus, policy, w, what);
	}
	free(w);
}

static void small_4x16(void **state)
{
	(void)state;
	need_oracle();
	shape(4, 16, 24, 4, 2, 4, ACCEL_EPLB_AUTO, 1, "4x16 hierarchical");
	shape(4, 16, 24, 4, 2, 4, ACCEL_EPLB_GLOBAL, 2, "4x16 global");
	shape(4, 16, 16, 4, 2, 4, ACCEL_EPLB_AUTO, 3, "4x16 no redundancy");
}

static void deepseek_v3(void **state)
{
	(void)state;
	need_oracle();
	shape(58, 256, 320, 8, 8, 64, ACCEL_EPLB_AUTO, 4, "58x256 hierarchical");
	shape(58, 256, 320, 8, 8, 64, ACCEL_EPLB_GLOBAL, 5, "58x256 global");
	/* 4 groups on 2 nodes: groups of 64 experts packed two per node. */
	shape(58, 256, 320, 4, 2, 64, ACCEL_EPLB_AUTO, 6, "58x256 4 groups 2 nodes");
}

static void groups_not_divisible(void **state)
{
	(void)state;
	need_oracle();
	/* 3 groups, 2 nodes: AUTO takes the global policy in both. */
	shape(6, 48, 56, 3, 2, 4, ACCEL_EPLB_AUTO, 7, "3 groups 2 nodes");
	shape(58, 256, 320, 3, 8, 64, ACCEL_EPLB_AUTO, 8, "58x256 3 groups 8 nodes");
}

static void random_shapes(void **state)
{
	uint64_t seed = 0x0eac1e;

	(void)state;
	need_oracle();
	for (int i = 0; i < 12; i++) {
		uint32_t nodes = 1 + moe_rand(&seed) % 4, gpus = nodes * (1 + moe_rand(&seed) % 3);
		uint32_t groups = nodes * (1 + moe_rand(&seed) % 3) + (i % 3 == 2);
		uint32_t experts = groups * (1 + moe_rand(&seed) % 5);
		uint32_t spd = (experts + gpus - 1) / gpus + moe_rand(&seed) % 4;
		char what[64];

		snprintf(what, sizeof(what), "random shape %d", i);
		shape(1 + moe_rand(&seed) % 5, experts, spd * gpus, groups, nodes, gpus,
		      ACCEL_EPLB_AUTO, moe_rand(&seed), what);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_4x16),
		cmocka_unit_test(deepseek_v3),
		cmocka_unit_test(groups_not_divisible),
		cmocka_unit_test(random_shapes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
