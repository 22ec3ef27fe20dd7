/* SPDX-License-Identifier: MIT */
/*
 * libaccel - what the library's files share.
 */
#ifndef ACCEL_INTERNAL_H
#define ACCEL_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel.h"
#include "kvaccel.h"

#define ACCEL_EXPORT	__attribute__((visibility("default")))

/*
 * Extensible structs (libbpf's opts): a public struct that may grow starts
 * with size_t sz, the caller's sizeof (ACCEL_OPTS() sets it).
 */
#define accel_offsetofend(type, field) \
	(offsetof(type, field) + sizeof(((type *)0)->field))

/**
 * accel_opts_valid() - check the size of an extensible struct from a caller.
 * @opts: the struct (its first member is size_t sz), or NULL (valid: the
 *	caller passed none, every field reads as zero).
 * @known_sz: sizeof the struct as this library was built with.
 *
 * A smaller sz (a binary built against an older header) is valid: the
 * fields past it read as zero (ACCEL_OPTS_GET()) and are not written
 * (ACCEL_OPTS_SET()). A larger sz (a newer header) is valid only if every
 * byte past @known_sz is zero, i.e. the caller asks for nothing this
 * library does not know.
 *
 * Return: 0; -EINVAL if sz is smaller than sz itself (a struct not set up
 * with ACCEL_OPTS()); -E2BIG if a byte past @known_sz is not zero, or sz
 * is over ACCEL_OPTS_SZ_MAX (not read: garbage, not a struct).
 */
#define ACCEL_OPTS_SZ_MAX	4096
static inline int accel_opts_valid(const void *opts, size_t known_sz)
{
	const unsigned char *p = opts;
	size_t sz, i;

	if (!opts)
		return 0;
	sz = *(const size_t *)opts;
	if (sz < sizeof(size_t))
		return -EINVAL;
	/* Not a struct of any version (an sz never set): do not read on. */
	if (sz > ACCEL_OPTS_SZ_MAX)
		return -E2BIG;
	for (i = known_sz; i < sz; i++)
		if (p[i])
			return -E2BIG;
	return 0;
}

/* Whether the caller's struct (sz checked) reaches @field. */
#define ACCEL_OPTS_HAS(opts, field) \
	((opts) && (opts)->sz >= accel_offsetofend(__typeof__(*(opts)), field))
/* @field, or @fallback where the caller's struct ends before it. */
#define ACCEL_OPTS_GET(opts, field, fallback) \
	(ACCEL_OPTS_HAS(opts, field) ? (opts)->field : (fallback))
/* Write @field where the caller's struct has it. */
#define ACCEL_OPTS_SET(opts, field, value) \
	do { \
		if (ACCEL_OPTS_HAS(opts, field)) \
			(opts)->field = (value); \
	} while (0)

/* log.c */
void accel_log(enum accel_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* device.c */
int accel_ioctl(struct accel_device *dev, unsigned long request, void *arg);
int accel_gem_close(struct accel_device *dev, uint32_t handle);
int accel_prime_export(struct accel_device *dev, uint32_t handle, int *fd);
int accel_prime_import(struct accel_device *dev, int fd, uint32_t *handle);
/*
 * The GEM handles of library objects, refcounted in dev->handles. Import
 * and the reference it takes, and the last unref and its close, each run
 * under dev->lock. On error the handle is released (closed if unowned).
 */
int accel_handle_adopt(struct accel_device *dev, uint32_t handle);
int accel_handle_import(struct accel_device *dev, int fd, uint32_t *handle);
void accel_handle_unref(struct accel_device *dev, uint32_t handle);

/*
 * The bytes of struct accel_device_info from path on, the whole of
 * LIBACCEL_0.1's struct (which had no sz): what both entry points fill.
 */
#define ACCEL_DEVICE_INFO_0_1_SIZE	120
int accel_device_info_bytes(struct accel_device *dev, void *dst, size_t len);

/* copy.c */
void accel_fence_pool_fini(struct accel_device *dev);
/*
 * Another reference to @fence (NULL-safe): fences are reference counted
 * and accel_fence_destroy() drops one, so the library can hand a caller a
 * fence it also keeps.
 */
struct accel_fence *accel_fence_get(struct accel_fence *fence);
/*
 * accel_copy() for callers that order their own copies (the KV cache: a
 * block with a transfer in flight is never handed out): the job does not
 * wait for the reservation fences of what it touches
 * (KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT, where the module has it), so
 * independent jobs on one region run in parallel.
 */
struct accel_fence *accel_copy_ordered(struct accel_device *dev, const struct accel_copy_seg *segs,
				       uint32_t count, struct accel_fence *after);
/*
 * @nr segments (each at most KVACCEL_COPY_MAX_BYTES) as a chain of
 * accel_copy_ordered() jobs of at most KVACCEL_COPY_MAX_SEGMENTS segments
 * and KVACCEL_COPY_MAX_BYTES bytes, each after the previous (an error
 * anywhere reaches the last). *fence: the last job's (NULL for nr 0). On
 * error nothing is still in flight.
 */
int accel_copy_chain(struct accel_device *dev, const struct accel_copy_seg *segs, size_t nr,
		     struct accel_fence **fence);

/**
 * struct accel_device - an open kvaccel device; thread-safe.
 * @fd: the device file.
 * @info: what accel_device_open() learnt (path, ABI, caps, block sizes).
 * @lock: protects @free_syncobjs, @nr_free and @handles; held across a
 *	dma-buf import and the reference it takes, and across the last
 *	unref of a handle and its GEM_CLOSE (accel_handle_import()).
 * @free_syncobjs: syncobjs of destroyed fences, for reuse.
 * @handles: GEM handles owned by library objects and how many objects own
 *	each: importing a dma-buf the file already holds gives the same
 *	handle, which must be closed only with its last owner.
 */
struct accel_handle_ref {
	uint32_t handle;
	uint32_t refs;
};

struct accel_device {
	int fd;
	struct accel_device_info info;
	pthread_mutex_t lock;
	uint32_t free_syncobjs[64];
	int nr_free;
	struct accel_handle_ref *handles;
	size_t nr_handles, max_handles;
};

enum accel_obj_kind { ACCEL_OBJ_REGION, ACCEL_OBJ_SPACE };

/** The part regions and spaces share: what a copy segment names. */
struct accel_obj {
	enum accel_obj_kind kind;
	struct accel_device *dev;
	uint32_t handle;
	uint64_t size;		/* bytes a copy may address */
	uint64_t mmap_offset;
	size_t map_size;
	void *map;		/* set once by the first map call, under map_lock */
	pthread_mutex_t map_lock;
};

/** Export @obj (NULL-checked) as a dma-buf. */
int accel_obj_export(struct accel_obj *obj, int *fd);
/** Import dma-buf @fd into @dev (NULL-checked): its handle, referenced, or -errno. */
int accel_obj_import(struct accel_device *dev, int fd, uint32_t *handle);
/** Map @obj once (the caller holds nothing); NULL + errno on failure. */
void *accel_obj_map(struct accel_obj *obj, int prot);
void accel_obj_fini(struct accel_obj *obj);

static inline bool accel_obj_ok(const struct accel_obj *obj)
{
	return obj && obj->dev;
}

#endif /* ACCEL_INTERNAL_H */
