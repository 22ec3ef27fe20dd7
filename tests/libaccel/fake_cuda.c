// SPDX-License-Identifier: MIT
/*
 * A fake libcuda.so.1 over host memory (fake_cuda.h says how to use it):
 * exactly the entry points libaccel's loader resolves, handed out by
 * cuGetProcAddress_v2, with the argument checks of the real driver where
 * libaccel depends on them.
 *
 * Device memory: cuMemAddressReserve reserves address space (PROT_NONE),
 * cuMemCreate backs an allocation with a memfd, cuMemMap maps it over the
 * reservation (still PROT_NONE), cuMemSetAccess makes it read-write, so a
 * "device pointer" is a host address and touching memory without access
 * set faults, as on a GPU. Copies check, when queued, that every device
 * byte they touch is mapped with access set (CUDA_ERROR_ILLEGAL_ADDRESS
 * otherwise); streams run them in order as soon as nothing they wait for
 * is unfinished (see "streams and events" below).
 *
 * One mutex over everything, copies included. Built without sanitizers:
 * it is loaded into ASan test programs, whose interceptors still check
 * the host side of each copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cuda/cuda_api.h"
#include "fake_cuda.h"

#define EXPORT			__attribute__((visibility("default")))
#define GRAN			FAKE_CUDA_GRANULARITY

#define ERR_INVALID_CONTEXT	FAKE_CU_ERROR_INVALID_CONTEXT
#define ERR_INVALID_HANDLE	FAKE_CU_ERROR_INVALID_HANDLE
#define ERR_NOT_FOUND		FAKE_CU_ERROR_NOT_FOUND
#define ERR_ILLEGAL_ADDRESS	FAKE_CU_ERROR_ILLEGAL_ADDRESS
#define ERR_ALREADY_REGISTERED	FAKE_CU_ERROR_HOST_MEMORY_ALREADY_REGISTERED
#define ERR_NOT_REGISTERED	FAKE_CU_ERROR_HOST_MEMORY_NOT_REGISTERED
#define ERR_UNKNOWN		FAKE_CU_ERROR_UNKNOWN

/* cuGetProcAddress's CUdriverProcAddressQueryResult. */
#define PROC_SUCCESS		0
#define PROC_SYMBOL_NOT_FOUND	1
#define PROC_VERSION_NOT_SUFFICIENT 2

/* Host-register flags: PORTABLE, DEVICEMAP, IOMEMORY, READ_ONLY. */
#define HOST_REGISTER_FLAGS	0xfu
/* Event flags: BLOCKING_SYNC, DISABLE_TIMING, INTERPROCESS. */
#define EVENT_FLAGS		0x7u

#define CU_MEM_HANDLE_TYPE_POSIX_FD	1
#define CU_MEM_ACCESS_FLAGS_PROT_NONE	0

/* --- state ---------------------------------------------------------------- */

struct alloc {
	cu_mem_handle handle;
	int fd;			/* memfd; kept until the memory is freed */
	size_t size;
	int device;
	bool released;		/* cuMemRelease'd: freed at the last unmap */
	unsigned long maps;	/* cuMemMap'ings of it live */
};

/* One per GRAN of a reservation. */
struct granule {
	struct alloc *alloc;		/* mapped here, or NULL */
	cu_deviceptr map_start;		/* the cuMemMap this granule is part of */
	size_t map_size;
	unsigned int access;		/* bit n: device n has read-write access */
};

struct reservation {
	cu_deviceptr base;
	size_t size;
	struct granule *g;
};

struct host_range {
	uintptr_t p;
	size_t size;
};

struct cu_ctx_st {
	int device;
	unsigned int retains;
};

/* A set of pointers (linear search: tests keep few objects). */
struct pset {
	void **v;
	size_t n, cap;
};

static struct {
	int devices;
	int driver;
	bool no_batch, batch_unsupported, no_dmabuf, no_peer, strict_access, dirty;
	long create_limit;		/* -1: none */
} cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool initialized;
static struct cu_ctx_st ctxs[FAKE_CUDA_MAX_DEVICES];
/* The calling thread's context stack (cuCtxPushCurrent), top last. */
#define CTX_STACK		16
static __thread cu_context ctx_stack[CTX_STACK];
static __thread int ctx_depth;
static struct pset reservations, allocs, host_ranges, streams, events;
static cu_mem_handle next_handle = 1;
static struct fake_cuda_stats st;

static long env_long(const char *name, long def, long min, long max)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return def;
	return v;
}

static void read_cfg(void)
{
	int i;

	cfg.devices = (int)env_long("FAKE_CUDA_DEVICES", 2, 0, FAKE_CUDA_MAX_DEVICES);
	cfg.driver = (int)env_long("FAKE_CUDA_DRIVER", 12080, 0, INT_MAX);
	cfg.no_batch = env_long("FAKE_CUDA_NO_BATCH", 0, 0, 1);
	cfg.batch_unsupported = env_long("FAKE_CUDA_BATCH_UNSUPPORTED", 0, 0, 1);
	cfg.no_dmabuf = env_long("FAKE_CUDA_NO_DMABUF", 0, 0, 1);
	cfg.no_peer = env_long("FAKE_CUDA_NO_PEER", 0, 0, 1);
	cfg.strict_access = env_long("FAKE_CUDA_STRICT_ACCESS", 0, 0, 1);
	cfg.create_limit = env_long("FAKE_CUDA_CREATE_LIMIT", -1, 0, LONG_MAX);
	cfg.dirty = env_long("FAKE_CUDA_DIRTY", 0, 0, 1);
	for (i = 0; i < FAKE_CUDA_MAX_DEVICES; i++)
		ctxs[i].device = i;
}

static void config(void)
{
	pthread_once(&cfg_once, read_cfg);
}

static int pset_add(struct pset *s, void *p)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		void **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = p;
	return 0;
}

static bool pset_has(const struct pset *s, const void *p)
{
	size_t i;

	if (!p)
		return false;
	for (i = 0; i < s->n; i++)
		if (s->v[i] == p)
			return true;
	return false;
}

static bool pset_del(struct pset *s, const void *p)
{
	size_t i;

	if (!p)
		return false;
	for (i = 0; i < s->n; i++) {
		if (s->v[i] == p) {
			s->v[i] = s->v[--s->n];
			return true;
		}
	}
	return false;
}

/* Lock; CUDA_ERROR_NOT_INITIALIZED (still locked) before cuInit. */
static cu_result enter(void)
{
	config();
	pthread_mutex_lock(&lock);
	return initialized ? CU_SUCCESS : CU_ERROR_NOT_INITIALIZED;
}

static void leave(void)
{
	pthread_mutex_unlock(&lock);
}

/*
 * Failure injection (fake_cuda_fail()): armed entry points, by name. An
 * entry point that takes part calls injected(__func__) first, before it
 * locks anything: non-zero means "return this, do nothing".
 */
#define INJECT_SLOTS		8
static struct {
	char name[48];
	unsigned int nth;	/* calls left until the failure; 0: free slot */
	cu_result r;
} inject[INJECT_SLOTS];

static cu_result injected(const char *name)
{
	cu_result r = CU_SUCCESS;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < INJECT_SLOTS; i++) {
		if (!inject[i].nth || strcmp(inject[i].name, name))
			continue;
		if (!--inject[i].nth) {
			r = inject[i].r;
			st.injected++;
		}
		break;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static bool valid_device(int dev)
{
	return dev >= 0 && dev < cfg.devices;
}

/* --- address space -------------------------------------------------------- */

static struct reservation *res_find(cu_deviceptr p)
{
	size_t i;

	for (i = 0; i < reservations.n; i++) {
		struct reservation *r = reservations.v[i];

		if (p >= r->base && p - r->base < r->size)
			return r;
	}
	return NULL;
}

/* The lowest reservation base above @p, or ULLONG_MAX. */
static cu_deviceptr res_next(cu_deviceptr p)
{
	cu_deviceptr next = ULLONG_MAX;
	size_t i;

	for (i = 0; i < reservations.n; i++) {
		struct reservation *r = reservations.v[i];

		if (r->base > p && r->base < next)
			next = r->base;
	}
	return next;
}

/*
 * [p, p + size): GRAN-aligned, non-empty, inside one reservation. Returns
 * it with the index of its first granule and the number of granules.
 */
static struct reservation *res_range(cu_deviceptr p, size_t size, size_t *first, size_t *count)
{
	struct reservation *r;

	if (!size || p % GRAN || size % GRAN || p + size < p)
		return NULL;
	r = res_find(p);
	if (!r || size > r->size - (p - r->base))
		return NULL;
	*first = (p - r->base) / GRAN;
	*count = size / GRAN;
	return r;
}

static bool range_mapped(const struct reservation *r, size_t first, size_t count)
{
	size_t i;

	for (i = first; i < first + count; i++)
		if (!r->g[i].alloc)
			return false;
	return true;
}

static void free_alloc(struct alloc *a)
{
	pset_del(&allocs, a);
	close(a->fd);
	free(a);
	st.live_allocations--;
}

static struct alloc *alloc_find(cu_mem_handle h)
{
	size_t i;

	for (i = 0; i < allocs.n; i++) {
		struct alloc *a = allocs.v[i];

		if (a->handle == h && !a->released)
			return a;
	}
	return NULL;
}

static cu_result check_prop(const struct cu_mem_allocation_prop *prop)
{
	if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
	    prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
	    !valid_device(prop->location.id) || prop->win32_handle_meta_data ||
	    prop->alloc_flags.compression_type ||
	    (prop->requested_handle_types != CU_MEM_HANDLE_TYPE_NONE &&
	     prop->requested_handle_types != CU_MEM_HANDLE_TYPE_POSIX_FD))
		return CU_ERROR_INVALID_VALUE;
	return CU_SUCCESS;
}

/* --- initialisation, devices, contexts ------------------------------------ */

static cu_result cuInit(unsigned int flags)
{
	config();
	if (flags)
		return CU_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	initialized = true;
	leave();
	return CU_SUCCESS;
}

static cu_result cuDriverGetVersion(int *version)
{
	config();
	if (!version)
		return CU_ERROR_INVALID_VALUE;
	*version = cfg.driver;
	return CU_SUCCESS;
}

static cu_result cuDeviceGetCount(int *count)
{
	cu_result r = enter();

	if (!r) {
		if (count)
			*count = cfg.devices;
		else
			r = CU_ERROR_INVALID_VALUE;
	}
	leave();
	return r;
}

static const struct {
	cu_result r;
	const char *name;
} error_names[] = {
	{ CU_SUCCESS, "CUDA_SUCCESS" },
	{ CU_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE" },
	{ CU_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY" },
	{ CU_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED" },
	{ CU_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE" },
	{ CU_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE" },
	{ ERR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT" },
	{ CU_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED" },
	{ ERR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE" },
	{ ERR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND" },
	{ CU_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY" },
	{ ERR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS" },
	{ ERR_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED" },
	{ ERR_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED" },
	{ CU_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED" },
	{ CU_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED" },
	{ ERR_UNKNOWN, "CUDA_ERROR_UNKNOWN" },
};

static cu_result cuGetErrorName(cu_result error, const char **name)
{
	size_t i;

	if (!name)
		return CU_ERROR_INVALID_VALUE;
	for (i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++) {
		if (error_names[i].r == error) {
			*name = error_names[i].name;
			return CU_SUCCESS;
		}
	}
	*name = NULL;
	return CU_ERROR_INVALID_VALUE;
}

static cu_result cuDeviceGet(cu_device *dev, int ordinal)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!dev)
		r = CU_ERROR_INVALID_VALUE;
	else if (!valid_device(ordinal))
		r = CU_ERROR_INVALID_DEVICE;
	else
		*dev = ordinal;
out:
	leave();
	return r;
}

static cu_result cuDeviceGetAttribute(int *value, int attribute, cu_device dev)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!value) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	if (!valid_device(dev)) {
		r = CU_ERROR_INVALID_DEVICE;
		goto out;
	}
	switch (attribute) {
	case CU_DEVICE_ATTRIBUTE_VMM_SUPPORTED:
		*value = 1;
		break;
	case CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED:
		*value = !cfg.no_dmabuf;
		break;
	default:
		*value = 0;
		break;
	}
out:
	leave();
	return r;
}

/* As the driver: a device is not its own peer. */
static cu_result cuDeviceCanAccessPeer(int *can, cu_device dev, cu_device peer)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!can)
		r = CU_ERROR_INVALID_VALUE;
	else if (!valid_device(dev) || !valid_device(peer))
		r = CU_ERROR_INVALID_DEVICE;
	else
		*can = dev != peer && !cfg.no_peer;
out:
	leave();
	return r;
}

static cu_result cuDevicePrimaryCtxRetain(cu_context *ctx, cu_device dev)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!ctx) {
		r = CU_ERROR_INVALID_VALUE;
	} else if (!valid_device(dev)) {
		r = CU_ERROR_INVALID_DEVICE;
	} else {
		ctxs[dev].retains++;
		*ctx = &ctxs[dev];
	}
out:
	leave();
	return r;
}

static cu_result cuDevicePrimaryCtxRelease(cu_device dev)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!valid_device(dev))
		r = CU_ERROR_INVALID_DEVICE;
	else if (!ctxs[dev].retains)
		r = ERR_INVALID_CONTEXT;
	else
		ctxs[dev].retains--;
out:
	leave();
	return r;
}

/* A live primary context: one of ctxs[], retained. */
static bool ctx_live(cu_context ctx)
{
	int i;

	for (i = 0; i < cfg.devices; i++)
		if (ctx == &ctxs[i])
			return ctxs[i].retains != 0;
	return false;
}

/* The calling thread's current context: the top of its stack, or NULL. */
static cu_context cur_ctx(void)
{
	return ctx_depth ? ctx_stack[ctx_depth - 1] : NULL;
}

/* As the driver: replaces the top of the stack; NULL pops it. */
static cu_result cuCtxSetCurrent(cu_context ctx)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!ctx) {
		if (ctx_depth)
			ctx_depth--;
		goto out;
	}
	if (!ctx_live(ctx)) {
		r = ERR_INVALID_CONTEXT;
		goto out;
	}
	if (!ctx_depth)
		ctx_depth = 1;
	ctx_stack[ctx_depth - 1] = ctx;
out:
	leave();
	return r;
}

static cu_result cuCtxPushCurrent(cu_context ctx)
{
	cu_result r = injected(__func__);

	if (r)
		return r;
	r = enter();
	if (r)
		goto out;
	if (!ctx)
		r = CU_ERROR_INVALID_VALUE;
	else if (!ctx_live(ctx))
		r = ERR_INVALID_CONTEXT;
	else if (ctx_depth == CTX_STACK)
		r = CU_ERROR_OUT_OF_MEMORY;
	else
		ctx_stack[ctx_depth++] = ctx;
out:
	leave();
	return r;
}

static cu_result cuCtxPopCurrent(cu_context *pctx)
{
	cu_result r = injected(__func__);

	if (r)
		return r;
	r = enter();
	if (r)
		goto out;
	if (!ctx_depth) {
		r = ERR_INVALID_CONTEXT;
		goto out;
	}
	ctx_depth--;
	if (pctx)
		*pctx = ctx_stack[ctx_depth];
out:
	leave();
	return r;
}

static cu_result cuCtxGetCurrent(cu_context *pctx)
{
	cu_result r = enter();

	if (!r && !pctx)
		r = CU_ERROR_INVALID_VALUE;
	else if (!r)
		*pctx = cur_ctx();
	leave();
	return r;
}

/* The calling thread's device: its current context must be live. */
static cu_result current_device(int *dev)
{
	cu_context c = cur_ctx();

	if (!c || !c->retains)
		return ERR_INVALID_CONTEXT;
	*dev = c->device;
	return CU_SUCCESS;
}

/* Work for @dev's streams submitted while another context (or none) is current. */
static void note_ctx(int dev)
{
	cu_context c = cur_ctx();

	if (!c || c->device != dev)
		st.foreign_ctx_calls++;
}

/* --- virtual memory management -------------------------------------------- */

static cu_result cuMemGetAllocationGranularity(size_t *granularity,
					       const struct cu_mem_allocation_prop *prop, int option)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!granularity || (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != 1)) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	r = check_prop(prop);
	if (!r)
		*granularity = GRAN;
out:
	leave();
	return r;
}

static cu_result cuMemAddressReserve(cu_deviceptr *ptr, size_t size, size_t alignment,
				     cu_deviceptr addr, unsigned long long flags)
{
	struct reservation *res = NULL;
	uintptr_t raw, base;
	size_t align, total;
	cu_result r = enter();
	void *m;

	(void)addr;		/* a hint: ignored */
	if (r)
		goto out;
	if (!ptr || !size || size % GRAN || flags || (alignment & (alignment - 1))) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	align = alignment > GRAN ? alignment : GRAN;
	total = size + align;
	if (total < size) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	m = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	raw = (uintptr_t)m;
	base = (raw + align - 1) & ~(uintptr_t)(align - 1);
	if (base > raw)
		munmap(m, base - raw);
	if (raw + total > base + size)
		munmap((void *)(base + size), raw + total - (base + size));
	res = calloc(1, sizeof(*res));
	if (res)
		res->g = calloc(size / GRAN, sizeof(*res->g));
	if (!res || !res->g || pset_add(&reservations, res)) {
		munmap((void *)base, size);
		if (res)
			free(res->g);
		free(res);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	res->base = base;
	res->size = size;
	*ptr = base;
	st.reservations++;
out:
	leave();
	return r;
}

static cu_result cuMemAddressFree(cu_deviceptr ptr, size_t size)
{
	struct reservation *res;
	cu_result r = enter();

	if (r)
		goto out;
	res = res_find(ptr);
	if (!res || res->base != ptr || res->size != size) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	for (size_t i = 0; i < size / GRAN; i++) {
		if (res->g[i].alloc) {
			r = CU_ERROR_INVALID_VALUE;
			goto out;
		}
	}
	munmap((void *)(uintptr_t)ptr, size);
	pset_del(&reservations, res);
	free(res->g);
	free(res);
	st.reservations--;
out:
	leave();
	return r;
}

/* FAKE_CUDA_DIRTY: a new allocation holds garbage, as the driver does not promise zeros. */
static int dirty(int fd, size_t size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		return -1;
	memset(m, 0xa5, size);
	munmap(m, size);
	return 0;
}

static cu_result cuMemCreate(cu_mem_handle *handle, size_t size,
			     const struct cu_mem_allocation_prop *prop, unsigned long long flags)
{
	struct alloc *a = NULL;
	cu_result r = enter();
	int fd = -1;

	if (r)
		goto out;
	if (!handle || !size || size % GRAN || flags || check_prop(prop)) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	if (cfg.create_limit >= 0 && st.live_allocations >= (unsigned long long)cfg.create_limit) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	fd = memfd_create("fake-cuda", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) || (cfg.dirty && dirty(fd, size)) ||
	    !(a = calloc(1, sizeof(*a))) || pset_add(&allocs, a)) {
		if (fd >= 0)
			close(fd);
		free(a);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	a->handle = next_handle++;
	a->fd = fd;
	a->size = size;
	a->device = prop->location.id;
	*handle = a->handle;
	st.live_allocations++;
	st.creates++;
out:
	leave();
	return r;
}

/* The handle goes; the memory lives on until its last mapping is unmapped. */
static cu_result cuMemRelease(cu_mem_handle handle)
{
	cu_result r = enter();
	struct alloc *a;

	if (r)
		goto out;
	a = alloc_find(handle);
	if (!a) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	a->released = true;
	if (!a->maps)
		free_alloc(a);
out:
	leave();
	return r;
}

static cu_result cuMemMap(cu_deviceptr ptr, size_t size, size_t offset, cu_mem_handle handle,
			  unsigned long long flags)
{
	struct reservation *res;
	size_t first, count, i;
	cu_result r = enter();
	struct alloc *a;

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	a = alloc_find(handle);
	if (offset || flags || !a || size > a->size)
		goto out;
	res = res_range(ptr, size, &first, &count);
	if (!res)
		goto out;
	for (i = first; i < first + count; i++)
		if (res->g[i].alloc)
			goto out;
	if (mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, a->fd, 0) ==
	    MAP_FAILED) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	for (i = first; i < first + count; i++) {
		res->g[i].alloc = a;
		res->g[i].map_start = ptr;
		res->g[i].map_size = size;
		res->g[i].access = 0;
	}
	a->maps++;
	st.maps++;
	r = CU_SUCCESS;
out:
	leave();
	return r;
}

/* Whole mappings only, as the driver: no unmapping part of one. */
static cu_result cuMemUnmap(cu_deviceptr ptr, size_t size)
{
	struct reservation *res;
	size_t first, count, i;
	cu_result r = enter();

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	res = res_range(ptr, size, &first, &count);
	if (!res)
		goto out;
	for (i = first; i < first + count; i++) {
		const struct granule *g = &res->g[i];

		if (!g->alloc || g->map_start < ptr || g->map_start + g->map_size > ptr + size)
			goto out;
	}
	if (mmap((void *)(uintptr_t)ptr, size, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	for (i = first; i < first + count; i++) {
		struct granule *g = &res->g[i];
		struct alloc *a = g->alloc;

		/* Once per mapping: at its first granule. */
		if (g->map_start == res->base + i * GRAN && !--a->maps && a->released)
			free_alloc(a);
		memset(g, 0, sizeof(*g));
	}
	st.unmaps++;
	r = CU_SUCCESS;
out:
	leave();
	return r;
}

static cu_result cuMemSetAccess(cu_deviceptr ptr, size_t size, const struct cu_mem_access_desc *desc,
				size_t count)
{
	struct reservation *res;
	size_t first, n, i, d;
	cu_result r = enter();

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	res = res_range(ptr, size, &first, &n);
	if (!res || !desc || !count || !range_mapped(res, first, n))
		goto out;
	for (d = 0; d < count; d++) {
		if (desc[d].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
		    (desc[d].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE &&
		     desc[d].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE))
			goto out;
		if (!valid_device(desc[d].location.id)) {
			r = CU_ERROR_INVALID_DEVICE;
			goto out;
		}
		/* Without peer access a device reaches its own memory only. */
		if (cfg.no_peer && desc[d].flags) {
			for (i = first; i < first + n; i++) {
				if (res->g[i].alloc->device != desc[d].location.id) {
					r = CU_ERROR_INVALID_DEVICE;
					goto out;
				}
			}
		}
	}
	for (i = first; i < first + n; i++) {
		struct granule *g = &res->g[i];

		for (d = 0; d < count; d++) {
			unsigned int bit = 1u << desc[d].location.id;

			if (desc[d].flags)
				g->access |= bit;
			else
				g->access &= ~bit;
		}
		mprotect((void *)(uintptr_t)(res->base + i * GRAN), GRAN,
			 g->access ? PROT_READ | PROT_WRITE : PROT_NONE);
	}
	st.set_access++;
	r = CU_SUCCESS;
out:
	leave();
	return r;
}

/* --- host memory ----------------------------------------------------------- */

static bool host_overlaps_device(uintptr_t p, size_t size)
{
	return res_find(p) || res_next(p) < p + size;
}

static cu_result cuMemHostRegister(void *p, size_t size, unsigned int flags)
{
	uintptr_t a = (uintptr_t)p;
	struct host_range *h;
	cu_result r = enter();
	size_t i;

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	if (!p || !size || a + size < a || (flags & ~HOST_REGISTER_FLAGS) ||
	    host_overlaps_device(a, size))
		goto out;
	for (i = 0; i < host_ranges.n; i++) {
		h = host_ranges.v[i];
		if (a < h->p + h->size && h->p < a + size) {
			r = ERR_ALREADY_REGISTERED;
			goto out;
		}
	}
	h = malloc(sizeof(*h));
	if (!h || pset_add(&host_ranges, h)) {
		free(h);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	h->p = a;
	h->size = size;
	st.registered_ranges++;
	r = CU_SUCCESS;
out:
	leave();
	return r;
}

static cu_result cuMemHostUnregister(void *p)
{
	cu_result r = enter();
	size_t i;

	if (r)
		goto out;
	r = ERR_NOT_REGISTERED;
	for (i = 0; i < host_ranges.n; i++) {
		struct host_range *h = host_ranges.v[i];

		if (h->p == (uintptr_t)p) {
			pset_del(&host_ranges, h);
			free(h);
			st.registered_ranges--;
			r = CU_SUCCESS;
			break;
		}
	}
out:
	leave();
	return r;
}

static bool host_registered(uintptr_t p, size_t size)
{
	size_t i;

	for (i = 0; i < host_ranges.n; i++) {
		const struct host_range *h = host_ranges.v[i];

		if (p >= h->p && p - h->p <= h->size && size <= h->size - (p - h->p))
			return true;
	}
	return false;
}

/* --- streams and events --------------------------------------------------- */

/*
 * A stream is a queue of operations run in order, each as soon as it can:
 * a copy or an event record at once, a wait once its event's record has
 * run. So a stream runs its work when it is queued, except behind a wait
 * on an event recorded on a stream that is held back (fake_cuda_hold())
 * or itself waiting: then the work stays queued until that is released,
 * as on a GPU whose stream is busy. run_streams() makes the progress; the
 * blocking calls (cuStreamSynchronize, cuEventSynchronize) sleep on
 * progress_cv until theirs is made, or give up after SYNC_TIMEOUT_S with
 * CUDA_ERROR_UNKNOWN (a test that would hang). The NULL stream has no
 * queue: its work runs at once (a wait on it blocks the caller).
 */
#define SYNC_TIMEOUT_S		10

enum op_kind { OP_COPY, OP_RECORD, OP_WAIT };

struct op {
	struct op *next;
	enum op_kind kind;
	cu_deviceptr dst, src;		/* OP_COPY */
	size_t size;
	cu_event ev;			/* OP_RECORD, OP_WAIT */
	unsigned long long seq;		/* the record made, or waited for */
};

struct cu_stream_st {
	int device;
	unsigned int flags;
	bool held;			/* fake_cuda_hold() */
	bool destroyed;			/* freed once its queue has run */
	struct op *head, **tail;
	unsigned long pending;
};

/*
 * Records are numbered (last: the latest made); those queued and not run
 * yet are in queued[]. A wait is for one record, the latest when it was
 * made, whatever is recorded later.
 */
struct cu_event_st {
	int device;
	unsigned int flags;
	unsigned long long last;
	unsigned long long *queued;
	size_t nr_queued, room;
	unsigned int refs;		/* queued operations naming it */
	bool destroyed;			/* freed at refs 0 */
};

static pthread_cond_t progress_cv = PTHREAD_COND_INITIALIZER;
static struct pset queues;		/* every stream with a queue, destroyed ones too */

static void event_free(cu_event e)
{
	free(e->queued);
	free(e);
}

static void event_put(cu_event e)
{
	if (!--e->refs && e->destroyed)
		event_free(e);
}

/* Has record @seq of @e run (0: none was made)? */
static bool event_done(const struct cu_event_st *e, unsigned long long seq)
{
	size_t i;

	for (i = 0; i < e->nr_queued; i++)
		if (e->queued[i] == seq)
			return false;
	return true;
}

static void event_ran(cu_event e, unsigned long long seq)
{
	size_t i;

	for (i = 0; i < e->nr_queued; i++) {
		if (e->queued[i] == seq) {
			e->queued[i] = e->queued[--e->nr_queued];
			return;
		}
	}
}

static cu_result event_queue(cu_event e, unsigned long long seq)
{
	if (e->nr_queued == e->room) {
		size_t room = e->room ? 2 * e->room : 4;
		unsigned long long *q = realloc(e->queued, room * sizeof(*q));

		if (!q)
			return CU_ERROR_OUT_OF_MEMORY;
		e->queued = q;
		e->room = room;
	}
	e->queued[e->nr_queued++] = seq;
	return CU_SUCCESS;
}

static cu_result check_copy(cu_deviceptr dst, cu_deviceptr src, size_t size, int dev,
			    bool *pageable);
static void do_copy(cu_deviceptr dst, cu_deviceptr src, size_t size, int dev, bool pageable);

/* Run @op (at the head of @s, not blocked). */
static void run_op(struct cu_stream_st *s, struct op *op)
{
	bool pageable = false;

	switch (op->kind) {
	case OP_COPY:
		/* Checked when queued; what it touches may have gone since. */
		if (check_copy(op->dst, op->src, op->size, s->device, &pageable))
			st.late_faults++;
		else
			do_copy(op->dst, op->src, op->size, s->device, pageable);
		break;
	case OP_RECORD:
		event_ran(op->ev, op->seq);
		event_put(op->ev);
		break;
	case OP_WAIT:
		event_put(op->ev);
		break;
	}
}

/* Run what can run, on every stream, until nothing more can. Lock held. */
static void run_streams(void)
{
	bool progress, any = false;
	size_t i;

	do {
		progress = false;
		for (i = 0; i < queues.n; i++) {
			struct cu_stream_st *s = queues.v[i];
			struct op *op;

			while (!s->held && (op = s->head)) {
				if (op->kind == OP_WAIT && !event_done(op->ev, op->seq))
					break;
				s->head = op->next;
				if (!s->head)
					s->tail = &s->head;
				s->pending--;
				st.pending_ops--;
				run_op(s, op);
				free(op);
				progress = any = true;
			}
		}
	} while (progress);
	for (i = 0; i < queues.n; ) {
		struct cu_stream_st *s = queues.v[i];

		if (s->destroyed && !s->head) {
			pset_del(&queues, s);
			free(s);
			continue;
		}
		i++;
	}
	if (any)
		pthread_cond_broadcast(&progress_cv);
}

/* Queue an operation on @s (not NULL) and run what can run. Lock held. */
static cu_result queue_op(struct cu_stream_st *s, const struct op *tmpl)
{
	struct op *op = malloc(sizeof(*op));

	if (!op)
		return CU_ERROR_OUT_OF_MEMORY;
	*op = *tmpl;
	op->next = NULL;
	if (op->ev)
		op->ev->refs++;
	*s->tail = op;
	s->tail = &op->next;
	s->pending++;
	st.pending_ops++;
	run_streams();
	return CU_SUCCESS;
}

/* Sleep (lock held) until @done(@arg), or SYNC_TIMEOUT_S: CUDA_ERROR_UNKNOWN. */
static cu_result wait_for(bool (*done)(const void *arg, unsigned long long seq), const void *arg,
			  unsigned long long seq)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SYNC_TIMEOUT_S;
	while (!done(arg, seq))
		if (pthread_cond_timedwait(&progress_cv, &lock, &until) == ETIMEDOUT)
			return done(arg, seq) ? CU_SUCCESS : ERR_UNKNOWN;
	return CU_SUCCESS;
}

static bool stream_idle(const void *arg, unsigned long long seq)
{
	(void)seq;
	return !((const struct cu_stream_st *)arg)->head;
}

static bool event_reached(const void *arg, unsigned long long seq)
{
	return event_done(arg, seq);
}

/* The device a stream's work runs on; NULL: the current context's. */
static cu_result stream_device(cu_stream s, int *dev)
{
	if (!s)
		return current_device(dev);
	if (!pset_has(&streams, s))
		return ERR_INVALID_HANDLE;
	*dev = s->device;
	return CU_SUCCESS;
}

static cu_result cuStreamCreate(cu_stream *stream, unsigned int flags)
{
	cu_result r = enter();
	cu_stream s;
	int dev;

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	if (!stream || (flags & ~(unsigned int)CU_STREAM_NON_BLOCKING))
		goto out;
	r = current_device(&dev);
	if (r)
		goto out;
	s = calloc(1, sizeof(*s));
	if (!s || pset_add(&streams, s)) {
		free(s);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	if (pset_add(&queues, s)) {
		pset_del(&streams, s);
		free(s);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	s->device = dev;
	s->flags = flags;
	s->tail = &s->head;
	*stream = s;
	st.streams++;
out:
	leave();
	return r;
}

/* As the driver: returns at once; queued work still runs, then it goes. */
static cu_result cuStreamDestroy(cu_stream stream)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!pset_del(&streams, stream)) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	stream->destroyed = true;
	stream->held = false;
	st.streams--;
	run_streams();
out:
	leave();
	return r;
}

static cu_result cuStreamSynchronize(cu_stream stream)
{
	cu_result r = injected(__func__);
	int dev;

	if (r)
		return r;
	r = enter();
	if (!r)
		r = stream_device(stream, &dev);
	if (!r) {
		note_ctx(dev);
		if (stream)
			r = wait_for(stream_idle, stream, 0);
	}
	leave();
	return r;
}

/* Flags: CU_EVENT_WAIT_DEFAULT only (not CU_EVENT_WAIT_EXTERNAL). */
static cu_result cuStreamWaitEvent(cu_stream stream, cu_event event, unsigned int flags)
{
	cu_result r = injected(__func__);
	int dev;

	if (r)
		return r;
	r = enter();
	if (r)
		goto out;
	if (flags != CU_EVENT_WAIT_DEFAULT) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	if (!pset_has(&events, event)) {
		r = ERR_INVALID_HANDLE;
		goto out;
	}
	r = stream_device(stream, &dev);
	if (r)
		goto out;
	note_ctx(dev);
	st.stream_waits++;
	/* Never recorded, or its latest record has run: nothing to wait for. */
	if (event_done(event, event->last))
		goto out;
	if (!stream)
		r = wait_for(event_reached, event, event->last);
	else
		r = queue_op(stream, &(struct op){ .kind = OP_WAIT, .ev = event,
						   .seq = event->last });
out:
	leave();
	return r;
}

static cu_result cuEventCreate(cu_event *event, unsigned int flags)
{
	cu_result r = enter();
	cu_event e;
	int dev;

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	if (!event || (flags & ~EVENT_FLAGS))
		goto out;
	r = current_device(&dev);
	if (r)
		goto out;
	e = calloc(1, sizeof(*e));
	if (!e || pset_add(&events, e)) {
		free(e);
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	e->device = dev;
	e->flags = flags;
	*event = e;
	st.events++;
out:
	leave();
	return r;
}

/* As the driver: returns at once; records queued still run. */
static cu_result cuEventDestroy(cu_event event)
{
	cu_result r = enter();

	if (r)
		goto out;
	if (!pset_del(&events, event)) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	if (event->refs)
		event->destroyed = true;
	else
		event_free(event);
	st.events--;
out:
	leave();
	return r;
}

/* The event and the stream must be of one context (one device here). */
static cu_result cuEventRecord(cu_event event, cu_stream stream)
{
	cu_result r = injected(__func__);
	int dev;

	if (r)
		return r;
	r = enter();
	if (r)
		goto out;
	if (!pset_has(&events, event)) {
		r = ERR_INVALID_HANDLE;
		goto out;
	}
	r = stream_device(stream, &dev);
	if (r)
		goto out;
	if (event->device != dev) {
		r = ERR_INVALID_HANDLE;
		goto out;
	}
	note_ctx(dev);
	event->last++;
	if (!stream)
		goto out;		/* done at once */
	r = event_queue(event, event->last);
	if (!r) {
		r = queue_op(stream, &(struct op){ .kind = OP_RECORD, .ev = event,
						   .seq = event->last });
		if (r)
			event_ran(event, event->last);
	}
out:
	leave();
	return r;
}

static cu_result cuEventQuery(cu_event event)
{
	cu_result r = injected(__func__);

	if (r)
		return r;
	r = enter();
	if (!r && !pset_has(&events, event))
		r = ERR_INVALID_HANDLE;
	if (!r && !event_done(event, event->last))
		r = CU_ERROR_NOT_READY;
	leave();
	return r;
}

static cu_result cuEventSynchronize(cu_event event)
{
	cu_result r = injected(__func__);

	if (r)
		return r;
	r = enter();
	if (!r && !pset_has(&events, event))
		r = ERR_INVALID_HANDLE;
	if (!r)
		r = wait_for(event_reached, event, event->last);
	leave();
	return r;
}

/* --- copies ---------------------------------------------------------------- */

/*
 * One side of a copy: either wholly host memory (outside every
 * reservation; *pageable unless registered) or wholly device memory,
 * mapped with access for some device (for @dev with STRICT_ACCESS).
 */
static cu_result check_side(cu_deviceptr p, size_t size, int dev, bool *pageable)
{
	unsigned int need = cfg.strict_access ? 1u << dev : ~0u;
	cu_deviceptr cur = p, end = p + size;
	bool host = false, device = false;

	while (cur < end) {
		struct reservation *res = res_find(cur);
		cu_deviceptr lim;
		size_t i;

		if (!res) {
			host = true;
			cur = res_next(cur);
			continue;
		}
		device = true;
		lim = end - res->base < res->size ? end : res->base + res->size;
		for (i = (cur - res->base) / GRAN; i <= (lim - 1 - res->base) / GRAN; i++)
			if (!res->g[i].alloc || !(res->g[i].access & need))
				return ERR_ILLEGAL_ADDRESS;
		cur = lim;
	}
	if (host && device)
		return ERR_ILLEGAL_ADDRESS;
	if (host && !host_registered(p, size))
		*pageable = true;
	return CU_SUCCESS;
}

static cu_result check_copy(cu_deviceptr dst, cu_deviceptr src, size_t size, int dev,
			    bool *pageable)
{
	cu_result r;

	if (!size)
		return CU_SUCCESS;
	if (!dst || !src || dst + size < dst || src + size < src)
		return CU_ERROR_INVALID_VALUE;
	r = check_side(dst, size, dev, pageable);
	if (!r)
		r = check_side(src, size, dev, pageable);
	return r;
}

static void do_copy(cu_deviceptr dst, cu_deviceptr src, size_t size, int dev, bool pageable)
{
	if (size)
		memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, size);
	st.bytes_copied += size;
	st.pageable_copies += pageable;
	st.copies_by_device[dev]++;
}

/* A checked copy: run at once on the NULL stream, else queued on @stream. */
static cu_result submit_copy(cu_stream stream, cu_deviceptr dst, cu_deviceptr src, size_t size,
			     int dev, bool pageable)
{
	if (!stream) {
		do_copy(dst, src, size, dev, pageable);
		return CU_SUCCESS;
	}
	return queue_op(stream, &(struct op){ .kind = OP_COPY, .dst = dst, .src = src,
					      .size = size });
}

static cu_result cuMemcpyAsync(cu_deviceptr dst, cu_deviceptr src, size_t size, cu_stream stream)
{
	bool pageable = false;
	cu_result r = injected(__func__);
	int dev;

	if (r)
		return r;
	r = enter();
	if (r)
		goto out;
	r = stream_device(stream, &dev);
	if (!r)
		r = check_copy(dst, src, size, dev, &pageable);
	if (r)
		goto out;
	note_ctx(dev);
	r = submit_copy(stream, dst, src, size, dev, pageable);
	if (!r)
		st.memcpy_async++;
out:
	leave();
	return r;
}

/* CUDA 12.8's, with failIdx. Every copy is checked before any is queued. */
static cu_result cuMemcpyBatchAsync(cu_deviceptr *dsts, cu_deviceptr *srcs, size_t *sizes,
				    size_t count, struct cu_memcpy_attributes *attrs,
				    size_t *attrs_idxs, size_t num_attrs, size_t *fail_idx,
				    cu_stream stream)
{
	size_t i, bad = SIZE_MAX;
	cu_result r = injected(__func__);
	int dev;

	if (r) {
		if (fail_idx)
			*fail_idx = SIZE_MAX;
		return r;
	}
	r = enter();
	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	if (!dsts || !srcs || !sizes || !count || !attrs || !attrs_idxs || !num_attrs ||
	    num_attrs > count || attrs_idxs[0] != 0)
		goto out;
	for (i = 0; i < num_attrs; i++) {
		if ((i && attrs_idxs[i] <= attrs_idxs[i - 1]) || attrs_idxs[i] >= count ||
		    attrs[i].src_access_order < CU_MEMCPY_SRC_ACCESS_ORDER_STREAM ||
		    attrs[i].src_access_order > 3)
			goto out;
	}
	if (!stream)		/* not on the legacy NULL stream */
		goto out;
	if (cfg.batch_unsupported) {
		r = CU_ERROR_NOT_SUPPORTED;
		goto out;
	}
	r = stream_device(stream, &dev);
	if (r)
		goto out;
	for (i = 0; i < count; i++) {
		bool pageable = false;

		r = check_copy(dsts[i], srcs[i], sizes[i], dev, &pageable);
		if (r) {
			bad = i;
			goto out;
		}
	}
	note_ctx(dev);
	for (i = 0; !r && i < count; i++)
		r = submit_copy(stream, dsts[i], srcs[i], sizes[i], dev, false);
	if (r) {
		bad = i - 1;	/* out of memory: the copies before it are queued */
		goto out;
	}
	st.batches++;
	st.batch_copies += count;
out:
	if (r && fail_idx)
		*fail_idx = bad;
	leave();
	return r;
}

/* A dma-buf of the range: here a dup of the allocation's memfd. */
static cu_result cuMemGetHandleForAddressRange(void *handle, cu_deviceptr ptr, size_t size,
					       int handle_type, unsigned long long flags)
{
	long page = sysconf(_SC_PAGESIZE);
	struct reservation *res;
	const struct granule *g;
	cu_result r = enter();
	int fd;

	if (r)
		goto out;
	r = CU_ERROR_INVALID_VALUE;
	if (!handle || handle_type != CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD || flags || !size ||
	    ptr % page || size % page || ptr + size < ptr)
		goto out;
	res = res_find(ptr);
	if (!res)
		goto out;
	g = &res->g[(ptr - res->base) / GRAN];
	if (!g->alloc || ptr + size > g->map_start + g->map_size)
		goto out;
	fd = fcntl(g->alloc->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		r = CU_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	*(int *)handle = fd;
	r = CU_SUCCESS;
out:
	leave();
	return r;
}

/* --- the entry points ------------------------------------------------------ */

enum knob { ALWAYS, UNLESS_NO_BATCH, UNLESS_NO_DMABUF };

#define SYM(fn, ver, knob) { #fn, (void *)fn, ver, knob }
static const struct {
	const char *name;
	void *fn;
	int version;		/* the CUDA version it first came in (this ABI) */
	enum knob knob;
} syms[] = {
	SYM(cuInit, 2000, ALWAYS),
	SYM(cuDriverGetVersion, 2020, ALWAYS),
	SYM(cuDeviceGetCount, 2000, ALWAYS),
	SYM(cuGetErrorName, 6000, ALWAYS),
	SYM(cuDeviceGet, 2000, ALWAYS),
	SYM(cuDeviceGetAttribute, 2000, ALWAYS),
	SYM(cuDeviceCanAccessPeer, 4000, ALWAYS),
	SYM(cuDevicePrimaryCtxRetain, 7000, ALWAYS),
	SYM(cuDevicePrimaryCtxRelease, 11000, ALWAYS),
	SYM(cuCtxSetCurrent, 4000, ALWAYS),
	SYM(cuCtxPushCurrent, 4000, ALWAYS),
	SYM(cuCtxPopCurrent, 4000, ALWAYS),
	SYM(cuCtxGetCurrent, 4000, ALWAYS),
	SYM(cuMemGetAllocationGranularity, 10020, ALWAYS),
	SYM(cuMemAddressReserve, 10020, ALWAYS),
	SYM(cuMemAddressFree, 10020, ALWAYS),
	SYM(cuMemCreate, 10020, ALWAYS),
	SYM(cuMemRelease, 10020, ALWAYS),
	SYM(cuMemMap, 10020, ALWAYS),
	SYM(cuMemUnmap, 10020, ALWAYS),
	SYM(cuMemSetAccess, 10020, ALWAYS),
	SYM(cuMemHostRegister, 6050, ALWAYS),
	SYM(cuMemHostUnregister, 4000, ALWAYS),
	SYM(cuStreamCreate, 2000, ALWAYS),
	SYM(cuStreamDestroy, 4000, ALWAYS),
	SYM(cuStreamSynchronize, 2000, ALWAYS),
	SYM(cuStreamWaitEvent, 3020, ALWAYS),
	SYM(cuEventCreate, 2000, ALWAYS),
	SYM(cuEventDestroy, 4000, ALWAYS),
	SYM(cuEventRecord, 2000, ALWAYS),
	SYM(cuEventQuery, 2000, ALWAYS),
	SYM(cuEventSynchronize, 2000, ALWAYS),
	SYM(cuMemcpyAsync, 4000, ALWAYS),
	SYM(cuMemcpyBatchAsync, 12080, UNLESS_NO_BATCH),
	SYM(cuMemGetHandleForAddressRange, 11070, UNLESS_NO_DMABUF),
};
#undef SYM

/*
 * Only the CUDA 12+ ABI is implemented: older cudaVersions are refused.
 * flags: CU_GET_PROC_ADDRESS_DEFAULT, _LEGACY_STREAM, _PER_THREAD_DEFAULT_STREAM
 * (the per-thread variants are the same functions here).
 */
EXPORT cu_result cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version,
				     uint64_t flags, int *symbol_status)
{
	int status = PROC_SYMBOL_NOT_FOUND;
	cu_result r = ERR_NOT_FOUND;
	size_t i;

	config();
	if (pfn)
		*pfn = NULL;
	if (!symbol || !pfn || cuda_version < 12000 || flags > 3) {
		r = CU_ERROR_INVALID_VALUE;
		goto out;
	}
	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if (strcmp(symbol, syms[i].name))
			continue;
		if ((syms[i].knob == UNLESS_NO_BATCH && cfg.no_batch) ||
		    (syms[i].knob == UNLESS_NO_DMABUF && cfg.no_dmabuf) ||
		    syms[i].version > cfg.driver)
			break;
		if (syms[i].version > cuda_version) {
			status = PROC_VERSION_NOT_SUFFICIENT;
			break;
		}
		*pfn = syms[i].fn;
		status = PROC_SUCCESS;
		r = CU_SUCCESS;
		break;
	}
out:
	if (symbol_status)
		*symbol_status = status;
	return r;
}

/* --- the test's view ------------------------------------------------------- */

EXPORT void fake_cuda_stats(struct fake_cuda_stats *s)
{
	pthread_mutex_lock(&lock);
	*s = st;
	pthread_mutex_unlock(&lock);
}

EXPORT void fake_cuda_reset_stats(void)
{
	pthread_mutex_lock(&lock);
	st.creates = st.maps = st.unmaps = st.set_access = 0;
	st.memcpy_async = st.batches = st.batch_copies = 0;
	st.bytes_copied = st.pageable_copies = 0;
	st.foreign_ctx_calls = st.late_faults = st.stream_waits = st.injected = 0;
	memset(st.copies_by_device, 0, sizeof(st.copies_by_device));
	pthread_mutex_unlock(&lock);
}

EXPORT unsigned int fake_cuda_access(unsigned long long ptr)
{
	struct reservation *res;
	unsigned int mask = 0;

	pthread_mutex_lock(&lock);
	res = res_find(ptr);
	if (res)
		mask = res->g[(ptr - res->base) / GRAN].access;
	pthread_mutex_unlock(&lock);
	return mask;
}

EXPORT int fake_cuda_current_device(void)
{
	cu_context c = cur_ctx();

	return c ? c->device : -1;
}

EXPORT int fake_cuda_context_depth(void)
{
	return ctx_depth;
}

EXPORT int fake_cuda_hold(void *handle, int hold)
{
	cu_stream stream = handle;
	int ret = -1;

	pthread_mutex_lock(&lock);
	if (pset_has(&streams, stream)) {
		stream->held = hold;
		if (!hold)
			run_streams();
		ret = 0;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

EXPORT long fake_cuda_pending(void *handle)
{
	cu_stream stream = handle;
	long n = -1;

	pthread_mutex_lock(&lock);
	if (!stream)
		n = (long)st.pending_ops;
	else if (pset_has(&streams, stream))
		n = (long)stream->pending;
	pthread_mutex_unlock(&lock);
	return n;
}

EXPORT int fake_cuda_fail(const char *name, unsigned int nth, int result)
{
	int i, ret = -1;

	if (!name || strlen(name) >= sizeof(inject[0].name))
		return -1;
	pthread_mutex_lock(&lock);
	for (i = 0; i < INJECT_SLOTS; i++) {
		if (inject[i].nth && !strcmp(inject[i].name, name)) {
			inject[i].nth = 0;	/* re-armed below, or disarmed */
			break;
		}
	}
	for (i = 0; nth && i < INJECT_SLOTS; i++) {
		if (!inject[i].nth) {
			strcpy(inject[i].name, name);
			inject[i].nth = nth;
			inject[i].r = result;
			break;
		}
	}
	ret = !nth || i < INJECT_SLOTS ? 0 : -1;
	pthread_mutex_unlock(&lock);
	return ret;
}
