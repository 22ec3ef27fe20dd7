// SPDX-License-Identifier: MIT
/* kvaccel-serve - sealed memfds for the messages between engines (memfd.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <accel.h>

#include "memfd.h"

int serve_memfd_map(size_t len, void **map)
{
	int fd = memfd_create("kvaccel-message", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int e;

	if (fd < 0)
		return -errno;
	if (!len || ftruncate(fd, (off_t)len))
		goto fail;
	*map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED)
		goto fail;
	return fd;
fail:
	e = len ? -errno : -EINVAL;
	close(fd);
	return e;
}

int serve_memfd_seal(int fd, void *map, size_t len)
{
	int e = 0;

	munmap(map, len);	/* before F_SEAL_WRITE, which a writable mapping refuses */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int serve_memfd_sealed(const void *a, size_t la, const void *b, size_t lb, const void *c,
		       size_t lc)
{
	size_t len = la + lb + lc;
	char *map;
	int fd;

	/* Written through a mapping: a user memcpy, not the kernel's copy of write(). */
	fd = serve_memfd_map(len, (void **)&map);
	if (fd < 0)
		return fd;
	if (la)
		memcpy(map, a, la);
	if (lb)
		memcpy(map + la, b, lb);
	if (lc)
		memcpy(map + la + lb, c, lc);
	return serve_memfd_seal(fd, map, len);
}

int serve_memfd_read(int fd, size_t min, void **buf, size_t *len)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	struct stat st;
	void *map, *h;
	int seals;

	/* Sealed: nobody can shrink it under the mapping (no SIGBUS) or change it. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & need) != need || fstat(fd, &st) || st.st_size < (off_t)min ||
	    !st.st_size || (uint64_t)st.st_size > ACCEL_HANDOFF_MEMFD_MAX)
		return -EPROTO;
	h = malloc((size_t)st.st_size);
	if (!h)
		return -ENOMEM;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		free(h);
		return -EPROTO;
	}
	memcpy(h, map, (size_t)st.st_size);
	munmap(map, (size_t)st.st_size);
	*buf = h;
	*len = (size_t)st.st_size;
	return 0;
}
