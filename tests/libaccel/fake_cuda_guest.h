/* SPDX-License-Identifier: MIT */
/*
 * In the VM: a test built against the cuda backend runs itself again with
 * the fake CUDA driver (tests/libaccel/fake_cuda.c) that run-selftests
 * ships as FAKE_CUDA_GUEST/libcuda.so.1 on the library path. Call from a
 * constructor (before main, before anything loads libcuda.so.1).
 */
#ifndef FAKE_CUDA_GUEST_H
#define FAKE_CUDA_GUEST_H

#include <stdlib.h>
#include <unistd.h>

#define FAKE_CUDA_GUEST	"/tests/fakecuda"

/*
 * Exec /proc/self/exe with @argv again, LD_LIBRARY_PATH set to the fake's
 * folder and each of @knobs ("FAKE_CUDA_X", NULL-terminated, or NULL) set
 * to 1; nothing where LD_LIBRARY_PATH is set already (the second run, or a
 * caller's own choice) or the fake is not there.
 */
static inline void fake_cuda_guest_reexec(char **argv, const char *const *knobs)
{
	if (getenv("LD_LIBRARY_PATH") || access(FAKE_CUDA_GUEST "/libcuda.so.1", R_OK))
		return;
	setenv("LD_LIBRARY_PATH", FAKE_CUDA_GUEST, 1);
	while (knobs && *knobs)
		setenv(*knobs++, "1", 1);
	execv("/proc/self/exe", argv);
}

#endif
