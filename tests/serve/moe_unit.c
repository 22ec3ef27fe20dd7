// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's default MoE placement policy (serve_moe_rotate()),
 * natively (cmocka, ASan/UBSan): the initial expert-parallel placement by
 * hand, the rotation by one device per call, the redundant slots to the
 * most-routed experts on another device, every placement valid with each
 * device's slots filled, and a shape it cannot place refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "moe.h"

static void test_initial_by_hand(void **state)
{
	/* 8 experts, 2 devices of 5 slots: 0 2 4 6 | 1 3 5 7, then the two redundant. */
	static const int32_t want[10] = { 0, 2, 4, 6, 1, 1, 3, 5, 7, 0 };
	uint64_t load[8] = { 0 };
	int32_t p[10];
	uint32_t shift = 0;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, 1, 8, 2, 5), 0);
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(shift, 1);
}

static void test_rotates_and_follows_load(void **state)
{
	/* Second call: expert e on device (e + 1) % 2; experts 5 and 2 most routed. */
	static const int32_t want[10] = { 1, 3, 5, 7, 2, 0, 2, 4, 6, 5 };
	uint64_t load[8] = { 1, 1, 7, 1, 1, 9, 1, 1 };
	int32_t p[10];
	uint32_t shift = 1;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, 1, 8, 2, 5), 0);
	assert_memory_equal(p, want, sizeof(want));
}

static void test_every_shape_valid(void **state)
{
	uint32_t devices, experts, red, l, d, s, e, shift;

	(void)state;
	for (devices = 1; devices <= 8; devices++)
		for (experts = 1; experts <= 16; experts++)
			for (red = 0; red <= 6; red++) {
				uint32_t spd, n, cnt[16];
				uint64_t load[3 * 16];
				int32_t p[3 * 64];

				if ((experts + red) % devices)
					continue;
				spd = (experts + red) / devices;
				n = devices * spd;
				for (e = 0; e < 3 * experts; e++)
					load[e] = (e * 2654435761u) % 97;
				shift = red;
				assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, 3, experts,
								  devices, spd), 0);
				for (l = 0; l < 3; l++) {
					memset(cnt, 0, sizeof(cnt));
					for (s = 0; s < n; s++) {
						assert_true(p[l * n + s] >= 0 &&
							    (uint32_t)p[l * n + s] < experts);
						cnt[p[l * n + s]]++;
					}
					for (e = 0; e < experts; e++)
						assert_true(cnt[e] >= 1);
					/* The first replica of e is on (e + shift) % devices. */
					for (e = 0; e < experts; e++) {
						d = (e + red) % devices;
						for (s = d * spd; s < (d + 1) * spd; s++)
							if ((uint32_t)p[l * n + s] == e)
								break;
						assert_true(s < (d + 1) * spd);
					}
				}
			}
}

static void test_refused(void **state)
{
	uint64_t load[8] = { 0 };
	int32_t p[80];
	uint32_t shift = 0;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, 1, 8, 65, 1), -EINVAL);
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, 1, 8, 2, 3), -EINVAL);
	assert_int_equal(shift, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_by_hand),
		cmocka_unit_test(test_rotates_and_follows_load),
		cmocka_unit_test(test_every_shape_valid),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
