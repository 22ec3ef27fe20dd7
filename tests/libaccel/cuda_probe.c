// SPDX-License-Identifier: GPL-2.0-only
/*
 * The CUDA driver loader (cmocka, ASan/UBSan): on a machine without a
 * driver or GPU it reports -ENODEV and names why; with one, it finds at
 * least one device on a driver new enough. CUresults map to errnos.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cuda/cuda_loader.h"

static void probe_says_why(void **state)
{
	const struct accel_cuda *c;
	char why[160], why2[160];
	int err, err2;

	(void)state;
	c = accel_cuda_load(&err, why, sizeof(why));
	printf("# cuda: %s\n", why);
	if (c) {
		assert_int_equal(0, err);
		assert_true(c->devices > 0);
		assert_true(c->driver_version >= ACCEL_CUDA_MIN_DRIVER);
	} else {
		assert_int_equal(-ENODEV, err);
		assert_true(strstr(why, "CUDA driver") != NULL || strstr(why, "cuGetProcAddress") != NULL);
	}
	/* Loaded once: the same answer again. */
	assert_ptr_equal(c, accel_cuda_load(&err2, why2, sizeof(why2)));
	assert_int_equal(err, err2);
	assert_string_equal(why, why2);
}

static void results_as_errnos(void **state)
{
	(void)state;
	assert_int_equal(0, accel_cuda_errno(0));
	assert_int_equal(-EINVAL, accel_cuda_errno(1));
	assert_int_equal(-ENOMEM, accel_cuda_errno(2));
	assert_int_equal(-ENODEV, accel_cuda_errno(100));
	assert_int_equal(-EOPNOTSUPP, accel_cuda_errno(801));
	assert_int_equal(-EIO, accel_cuda_errno(999));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probe_says_why),
		cmocka_unit_test(results_as_errnos),
	};

	return cmocka_run_group_tests_name("cuda_probe", tests, NULL, NULL);
}
