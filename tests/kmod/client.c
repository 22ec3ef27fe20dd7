// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvt-client: a short-lived client for the load/unload cycles. It opens the
 * device, creates a region of every block size, maps, writes and exports
 * them, and exits (freeing everything by closing). With -w it then waits on
 * stdin holding its objects, so the caller can check that a busy module
 * cannot be unloaded. With -s it runs a copy job, exports its fence as a
 * sync_file, closes everything else and waits on stdin holding only the
 * sync_file (which must pin the module: the fence's ops are module code).
 * With -u UID PROG ARGS... it runs PROG as UID, without capabilities
 * (busybox's setpriv cannot change uids).
 */
#include <grp.h>

#include "kvtest.h"

static int run_as(const char *uid_str, char **argv)
{
	uid_t uid = (uid_t)strtoul(uid_str, NULL, 10);

	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) {
		perror("kvt-client: -u");
		return 1;
	}
	execvp(argv[0], argv);
	perror("kvt-client: exec");
	return 127;
}

static int hold_sync_file(int fd)
{
	struct drm_kvaccel_copy_segment seg;
	uint32_t r, sync;
	int sf;
	char c;

	if (kvt_region_create(fd, 2 * 4096, 4096, &r) || kvt_syncobj_create(fd, &sync))
		return 1;
	seg = kvt_seg(r, 0, r, 4096, 4096);
	if (kvt_copy(fd, &seg, 1, 0, sync, NULL) || kvt_syncobj_wait(fd, sync, 20000) ||
	    kvt_syncobj_export_sync_file(fd, sync, &sf))
		return 2;
	close(fd);
	printf("holding\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	close(sf);
	return 0;
}

int main(int argc, char **argv)
{
	int hold = argc > 1 && !strcmp(argv[1], "-w");
	uint32_t shift;
	int fd;

	if (argc > 3 && !strcmp(argv[1], "-u"))
		return run_as(argv[2], argv + 3);
	fd = kvt_open();

	if (fd < 0) {
		fprintf(stderr, "kvt-client: open: %s\n", strerror(-fd));
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "-s"))
		return hold_sync_file(fd);
	for (shift = KVACCEL_BLOCK_SHIFT_MIN; shift <= KVACCEL_BLOCK_SHIFT_MAX; shift++) {
		uint64_t size = 2ull << shift;
		int dmabuf, ret;
		uint32_t h;
		void *p;

		ret = kvt_region_create(fd, size, 1u << shift, &h);
		if (ret) {
			fprintf(stderr, "kvt-client: create: %s\n", strerror(-ret));
			return 1;
		}
		p = kvt_region_map(fd, h, size);
		if (p == MAP_FAILED) {
			perror("kvt-client: mmap");
			return 1;
		}
		kvt_fill(p, size, shift);
		ret = kvt_export(fd, h, &dmabuf);
		if (ret) {
			fprintf(stderr, "kvt-client: export: %s\n", strerror(-ret));
			return 1;
		}
		if (shift & 1)
			close(dmabuf);
	}
	if (hold) {
		char c;

		printf("holding\n");
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
	}
	return 0;
}
