/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the VM tests over libaccel share.
 */
#ifndef ACCEL_TEST_H
#define ACCEL_TEST_H

#include <stdint.h>
#include <unistd.h>

#include "accel.h"

/*
 * The calling process's usage of @dev once it is back to @want, or what it
 * is after 10 s (UINT64_MAX if the device cannot be asked). The module lets
 * go of a copy job's objects just after its fence signals (the release
 * follows the signal), so the last regions may take a moment to be freed,
 * longer under KASAN.
 */
static inline uint64_t accel_test_usage_settled(struct accel_device *dev, uint64_t want)
{
	ACCEL_OPTS(accel_device_info, info);
	int tries;

	for (tries = 0; tries < 400; tries++) {
		if (accel_device_info(dev, &info))
			return UINT64_MAX;
		if (info.process_usage == want)
			break;
		usleep(25000);
	}
	return info.process_usage;
}

/* The whole device's usage (every process's), UINT64_MAX if it cannot be asked. */
static inline uint64_t accel_test_device_usage(struct accel_device *dev)
{
	ACCEL_OPTS(accel_device_info, info);

	return accel_device_info(dev, &info) ? UINT64_MAX : info.usage;
}

/* The device's usage once it is @want, or what it is after 10 s. */
static inline uint64_t accel_test_device_usage_settled(struct accel_device *dev, uint64_t want)
{
	uint64_t u = 0;
	int tries;

	for (tries = 0; tries < 400; tries++) {
		u = accel_test_device_usage(dev);
		if (u == want)
			break;
		usleep(25000);
	}
	return u;
}

#endif
