// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fuzzing: several processes of several threads issue random valid and
 * invalid ioctls (regions, spaces, binds, copies, syncobjs, PRIME, mmap and
 * touching the mappings, raw ioctls with random arguments) and random
 * valid and invalid netlink messages for a bounded time, while the parent
 * kills and restarts processes at random. Half the processes run without
 * CAP_NET_ADMIN. Afterwards device usage, pages held and regions must be
 * back to zero, no client may be left but ours; the VM runner fails the
 * run on any warning in the kernel log.
 *
 * KVTEST_FUZZ_SEED=0x... replays a run's per-thread random streams (the
 * interleaving of threads is the scheduler's); KVTEST_FUZZ_SECONDS sets the
 * duration (default 30), KVTEST_FUZZ_PROCS and KVTEST_FUZZ_THREADS the
 * shape (default 4 and 3).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kvtest.h"
#include "kvnl.h"
#include "kselftest_harness.h"

#define POOL		16
#define NR_ACTIONS	15

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnd(r) % n) : 0;
}

static uint64_t mix(uint64_t seed, uint64_t a, uint64_t b)
{
	uint64_t x = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL);

	return x ? x : 1;
}

/* Counters shared by all processes (MAP_SHARED). */
struct stats {
	atomic_ulong ioctls, ioctl_errors, netlink, netlink_errors, touches, bus;
	atomic_ulong actions[NR_ACTIONS];
};

/* One process's objects, shared by its threads (racing on them is the point). */
struct proc {
	int fd;
	bool admin;
	uint64_t limit_max;
	struct stats *st;
	pthread_mutex_t lock;
	uint32_t regions[POOL], spaces[POOL], syncobjs[POOL];
	uint64_t region_size[POOL];
	int nr_regions, nr_spaces, nr_syncobjs;
	volatile bool stop;
	uint64_t seed;
	int index;
};

struct thread {
	struct proc *p;
	struct rng r;
	struct kvnl *nl;
	unsigned char scratch[4096];
};

static __thread sigjmp_buf fz_jmp;
static __thread volatile int fz_armed;

static void fz_bus(int sig)
{
	if (fz_armed)
		siglongjmp(fz_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint32_t pick(struct thread *t, const uint32_t *pool, int n)
{
	/* Mostly a live handle, sometimes garbage. */
	if (!n || !below(&t->r, 8))
		return below(&t->r, 4) ? (uint32_t)rnd(&t->r) : 0;
	return pool[below(&t->r, (uint32_t)n)];
}

static void add(struct proc *p, uint32_t *pool, int *n, uint32_t h, uint64_t *sizes, uint64_t size)
{
	pthread_mutex_lock(&p->lock);
	if (*n < POOL) {
		if (sizes)
			sizes[*n] = size;
		pool[(*n)++] = h;
		h = 0;
	}
	pthread_mutex_unlock(&p->lock);
	if (h)
		kvt_close_handle(p->fd, h);
}

static uint32_t block_size(struct thread *t)
{
	static const uint32_t sizes[] = { 4096, 65536, 2u << 20, 8192, 0, 3000, 4u << 20 };

	return sizes[below(&t->r, below(&t->r, 4) ? 3 : 7)];
}

static void count(struct thread *t, int action, int ret)
{
	atomic_fetch_add(&t->p->st->actions[action], 1);
	atomic_fetch_add(&t->p->st->ioctls, 1);
	if (ret)
		atomic_fetch_add(&t->p->st->ioctl_errors, 1);
}

static void act_region_create(struct thread *t)
{
	uint32_t bs = block_size(t), h, flags = below(&t->r, 16) ? 0 : (uint32_t)rnd(&t->r);
	uint64_t size = (uint64_t)bs * (1 + below(&t->r, bs >= (2u << 20) ? 3 : 16));
	int ret;

	if (!below(&t->r, 10))
		size = rnd(&t->r) >> below(&t->r, 64);
	ret = kvt_region_create_ex(t->p->fd, size, bs, flags, below(&t->r, 3), &h);
	count(t, 0, ret);
	if (!ret)
		add(t->p, t->p->regions, &t->p->nr_regions, h, t->p->region_size, size);
}

static void act_space_create(struct thread *t)
{
	uint32_t h;
	int ret = kvt_space_create(t->p->fd, below(&t->r, 10) ? 1 + below(&t->r, 32) :
				   (uint32_t)rnd(&t->r), block_size(t), &h);

	count(t, 1, ret);
	if (!ret)
		add(t->p, t->p->spaces, &t->p->nr_spaces, h, NULL, 0);
}

static void act_bind(struct thread *t)
{
	struct drm_kvaccel_bind_op ops[8];
	uint32_t i, n = 1 + below(&t->r, 8);
	int ret;

	for (i = 0; i < n; i++) {
		memset(&ops[i], 0, sizeof(ops[i]));
		ops[i].op = below(&t->r, 12) ? below(&t->r, 4) : (uint32_t)rnd(&t->r);
		ops[i].slot = below(&t->r, 10) ? below(&t->r, 34) : (uint32_t)rnd(&t->r);
		ops[i].other = below(&t->r, 34);
		ops[i].handle = pick(t, t->p->regions, t->p->nr_regions);
		ops[i].block = below(&t->r, 10) ? below(&t->r, 20) : rnd(&t->r);
		if (!below(&t->r, 30))
			ops[i].flags = (uint32_t)rnd(&t->r);
		if (!below(&t->r, 30))
			ops[i].pad = 1;
	}
	ret = kvt_space_bind(t->p->fd, pick(t, t->p->spaces, t->p->nr_spaces), ops, n, NULL);
	count(t, 2, ret);
}

static uint32_t any_object(struct thread *t)
{
	return below(&t->r, 2) ? pick(t, t->p->regions, t->p->nr_regions) :
				 pick(t, t->p->spaces, t->p->nr_spaces);
}

static void act_copy(struct thread *t)
{
	struct drm_kvaccel_copy_segment segs[4];
	uint32_t i, n = 1 + below(&t->r, 4), in = 0, out = 0;
	uint64_t job;
	int ret;

	for (i = 0; i < n; i++) {
		segs[i] = kvt_seg(any_object(t), below(&t->r, 4u << 20) & ~63u, any_object(t),
				  below(&t->r, 4u << 20) & ~63u, 1 + below(&t->r, 256 * 1024));
		if (!below(&t->r, 20))
			segs[i].length = rnd(&t->r);
		if (!below(&t->r, 40))
			segs[i].flags = (uint32_t)rnd(&t->r);
	}
	if (!below(&t->r, 4))
		in = pick(t, t->p->syncobjs, t->p->nr_syncobjs);
	if (!below(&t->r, 3))
		out = pick(t, t->p->syncobjs, t->p->nr_syncobjs);
	ret = kvt_copy(t->p->fd, segs, n, in, out, &job);
	count(t, 3, ret);
	if (!ret && !below(&t->r, 2)) {
		int status;

		count(t, 4, kvt_copy_status(t->p->fd, below(&t->r, 4) ? job : rnd(&t->r), &status));
	}
}

static void act_info(struct thread *t)
{
	struct drm_kvaccel_region_info ri;
	struct drm_kvaccel_space_info si;
	struct drm_kvaccel_slot_binding out[4];
	int ret;

	if (below(&t->r, 2)) {
		ret = kvt_region_info(t->p->fd, any_object(t), &ri);
	} else {
		memset(&si, 0, sizeof(si));
		si.handle = any_object(t);
		if (below(&t->r, 2)) {
			si.first_slot = below(&t->r, 40);
			si.count = below(&t->r, 10);
			si.count = si.count > 4 ? 4 : si.count;
			si.bindings = below(&t->r, 8) ? (uintptr_t)out : (uintptr_t)rnd(&t->r) | (1ULL << 63);
		}
		ret = kvt_ioctl(t->p->fd, DRM_IOCTL_KVACCEL_SPACE_INFO, &si);
	}
	count(t, 5, ret);
}

static void act_close(struct thread *t)
{
	struct proc *p = t->p;
	uint32_t h = 0;
	int which = below(&t->r, 3);

	pthread_mutex_lock(&p->lock);
	if (which == 0 && p->nr_regions) {
		int i = below(&t->r, p->nr_regions);

		h = p->regions[i];
		p->regions[i] = p->regions[--p->nr_regions];
		p->region_size[i] = p->region_size[p->nr_regions];
	} else if (which == 1 && p->nr_spaces) {
		int i = below(&t->r, p->nr_spaces);

		h = p->spaces[i];
		p->spaces[i] = p->spaces[--p->nr_spaces];
	}
	pthread_mutex_unlock(&p->lock);
	if (which == 2)
		h = (uint32_t)rnd(&t->r);
	count(t, 6, kvt_close_handle(p->fd, h));
}

static void act_prime(struct thread *t)
{
	uint32_t h;
	int dmabuf, ret;

	ret = kvt_export(t->p->fd, any_object(t), &dmabuf);
	count(t, 7, ret);
	if (ret)
		return;
	ret = kvt_import(t->p->fd, dmabuf, &h);
	count(t, 7, ret);
	/* The import is the same object: dropping this handle may drop the last. */
	if (!ret && !below(&t->r, 2))
		kvt_close_handle(t->p->fd, h);
	if (below(&t->r, 3)) {
		void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dmabuf, 0);

		if (m != MAP_FAILED)
			munmap(m, 4096);
	}
	close(dmabuf);
}

/* Map a region or space and touch it; unbound space slots raise SIGBUS. */
static void act_mmap(struct thread *t)
{
	struct drm_kvaccel_region_info ri;
	struct drm_kvaccel_space_info si;
	uint32_t h = any_object(t);
	size_t size;
	uint64_t off;
	volatile unsigned char *m;

	if (!kvt_region_info(t->p->fd, h, &ri)) {
		size = ri.size;
		off = ri.mmap_offset;
	} else if (!kvt_space_info(t->p->fd, h, &si)) {
		size = si.map_size;
		off = si.mmap_offset;
	} else {
		count(t, 8, -EINVAL);
		return;
	}
	if (!size || size > (64u << 20))
		return;
	m = mmap(NULL, size, PROT_READ | (below(&t->r, 2) ? PROT_WRITE : 0), MAP_SHARED,
		 t->p->fd, (off_t)off);
	count(t, 8, m == MAP_FAILED ? -errno : 0);
	if (m == MAP_FAILED)
		return;
	if (!sigsetjmp(fz_jmp, 1)) {
		int i;

		fz_armed = 1;
		for (i = 0; i < 8; i++) {
			size_t at = below(&t->r, (uint32_t)(size / 4096)) * 4096;

			(void)m[at];
			atomic_fetch_add(&t->p->st->touches, 1);
		}
	} else {
		atomic_fetch_add(&t->p->st->bus, 1);
	}
	fz_armed = 0;
	munmap((void *)m, size);
}

static void act_syncobj(struct thread *t)
{
	struct drm_syncobj_create c = { .flags = below(&t->r, 4) ? 0 : DRM_SYNCOBJ_CREATE_SIGNALED };
	struct drm_syncobj_destroy d = { 0 };
	int ret;

	if (below(&t->r, 2)) {
		ret = kvt_ioctl(t->p->fd, DRM_IOCTL_SYNCOBJ_CREATE, &c);
		count(t, 9, ret);
		if (!ret)
			add(t->p, t->p->syncobjs, &t->p->nr_syncobjs, c.handle, NULL, 0);
		if (!ret && t->p->nr_syncobjs == POOL) {
			d.handle = c.handle;
			kvt_ioctl(t->p->fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
		}
		return;
	}
	d.handle = pick(t, t->p->syncobjs, t->p->nr_syncobjs);
	count(t, 9, kvt_syncobj_wait(t->p->fd, d.handle, below(&t->r, 20)));
}

/* Any driver ioctl number and size, arguments of random bytes. */
static void act_raw_ioctl(struct thread *t)
{
	uint32_t nr = DRM_COMMAND_BASE + below(&t->r, 12), size = below(&t->r, 96) & ~7u;
	unsigned long req;
	uint32_t i;

	for (i = 0; i < 96; i += 8) {
		uint64_t v = rnd(&t->r);

		/*
		 * Small numbers look like handles, sizes and counts; kept below
		 * mmap_min_addr, so that taken as pointers they never reach
		 * this (static, non-PIE) program's memory.
		 */
		if (below(&t->r, 2))
			v &= below(&t->r, 2) ? 0xff : 0xfff;
		memcpy(t->scratch + i, &v, 8);
	}
	switch (below(&t->r, 3)) {
	case 0: req = _IOC(_IOC_READ | _IOC_WRITE, DRM_IOCTL_BASE, nr, size); break;
	case 1: req = _IOC(_IOC_WRITE, DRM_IOCTL_BASE, nr, size); break;
	default: req = _IOC(_IOC_NONE, DRM_IOCTL_BASE, nr, 0); break;
	}
	count(t, 10, ioctl(t->p->fd, req, t->scratch) ? -errno : 0);
}

static void nl_count(struct thread *t, int action, int ret)
{
	atomic_fetch_add(&t->p->st->actions[action], 1);
	atomic_fetch_add(&t->p->st->netlink, 1);
	if (ret)
		atomic_fetch_add(&t->p->st->netlink_errors, 1);
}

static int nl_ignore(const struct kvnl_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	return 0;
}

/* A message of the family with a random command, flags and attributes. */
static void act_nl_random(struct thread *t)
{
	struct nl_msg *msg = kvnl_request(t->nl, below(&t->r, 16), below(&t->r, 3) == 0);
	uint32_t i, n = below(&t->r, 6);

	for (i = 0; msg && i < n; i++) {
		uint32_t len = below(&t->r, 4) ? 8 : below(&t->r, 24);

		if (nla_put(msg, below(&t->r, KVACCEL_A_MAX + 4), (int)len, t->scratch))
			break;
	}
	nl_count(t, 11, kvnl_exec(t->nl, msg, nl_ignore, NULL));
}

/* Well-formed requests, admin ones with values that keep the guest alive. */
static void act_nl_valid(struct thread *t)
{
	struct nl_msg *msg;
	uint64_t mib;

	switch (below(&t->r, 5)) {
	case 0:
		msg = kvnl_request(t->nl, KVACCEL_CMD_DEVICE_GET, false);
		break;
	case 1:
		msg = kvnl_request(t->nl, KVACCEL_CMD_CLIENT_GET, true);
		break;
	case 2:
		msg = kvnl_request(t->nl, KVACCEL_CMD_REGION_GET, true);
		break;
	case 3:
		msg = kvnl_request(t->nl, KVACCEL_CMD_DEVICE_SET, false);
		mib = 1 + below(&t->r, (uint32_t)(t->p->limit_max >> 20));
		if (msg && below(&t->r, 2))
			nla_put_u64(msg, KVACCEL_A_LIMIT, mib << 20);
		if (msg && below(&t->r, 2))
			nla_put_u64(msg, KVACCEL_A_DEFAULT_QUOTA, (uint64_t)below(&t->r, 64) << 20);
		if (msg && below(&t->r, 2)) {
			nla_put_u64(msg, KVACCEL_A_HIGH_WM, mib << 20);
			nla_put_u64(msg, KVACCEL_A_LOW_WM, (uint64_t)below(&t->r, (uint32_t)mib + 2) << 20);
		}
		break;
	default:
		msg = kvnl_request(t->nl, KVACCEL_CMD_QUOTA_SET, false);
		if (msg) {
			nla_put_u32(msg, KVACCEL_A_PID, below(&t->r, 4) ? (uint32_t)getpid() :
					1 + below(&t->r, 1000));
			nla_put_u64(msg, KVACCEL_A_QUOTA, (uint64_t)below(&t->r, 128) << 20);
		}
		break;
	}
	nl_count(t, 12, kvnl_exec(t->nl, msg, nl_ignore, NULL));
}

static void act_nl_events(struct thread *t)
{
	struct kvnl *ev;

	if (kvnl_open(&ev))
		return;
	if (!kvnl_subscribe(ev))
		kvnl_wait_events(ev, below(&t->r, 20), nl_ignore, NULL);
	kvnl_close(ev);
	nl_count(t, 13, 0);
}

static void act_param(struct thread *t)
{
	uint64_t v;

	count(t, 14, kvt_param(t->p->fd, below(&t->r, 12), &v));
}

static void *fz_thread(void *arg)
{
	struct thread *t = arg;
	static void (*const actions[NR_ACTIONS])(struct thread *) = {
		act_region_create, act_space_create, act_bind, act_copy, act_copy,
		act_info, act_close, act_prime, act_mmap, act_syncobj, act_raw_ioctl,
		act_nl_random, act_nl_valid, act_nl_events, act_param,
	};

	if (kvnl_open(&t->nl))
		return NULL;
	while (!t->p->stop)
		actions[below(&t->r, NR_ACTIONS)](t);
	kvnl_close(t->nl);
	return NULL;
}

/* One fuzzing process: its threads run until @seconds have passed. */
static int fz_process(struct stats *st, uint64_t seed, int index, int threads,
		      double seconds, uint64_t limit_max)
{
	struct proc *p = calloc(1, sizeof(*p));
	struct thread *ts = calloc((size_t)threads, sizeof(*ts));
	pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
	struct sigaction sa = { .sa_handler = fz_bus, .sa_flags = SA_NODEFER };
	int i;

	if (!p || !ts || !tids)
		return 1;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	p->st = st;
	p->seed = seed;
	p->index = index;
	p->limit_max = limit_max;
	p->admin = index % 2 == 0;
	if (!p->admin && kvt_drop_cap(CAP_NET_ADMIN))
		return 2;
	pthread_mutex_init(&p->lock, NULL);
	p->fd = kvt_open();
	if (p->fd < 0)
		return 3;
	for (i = 0; i < threads; i++) {
		ts[i].p = p;
		ts[i].r.s = mix(seed, (uint64_t)index + 1, (uint64_t)i + 1);
		if (pthread_create(&tids[i], NULL, fz_thread, &ts[i]))
			return 4;
	}
	usleep((useconds_t)(seconds * 1e6));
	p->stop = true;
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	/* Exit with everything still open half of the time: the kernel cleans up. */
	if (seed & 1)
		close(p->fd);
	return 0;
}

static int restore_settings(long long limit_mb, long long quota_mb)
{
	struct nl_msg *msg;
	struct kvnl *nl;
	int ret = kvnl_open(&nl);

	if (ret)
		return ret;
	msg = kvnl_request(nl, KVACCEL_CMD_DEVICE_SET, false);
	if (msg && (nla_put_u64(msg, KVACCEL_A_LIMIT, (uint64_t)limit_mb << 20) ||
		    nla_put_u64(msg, KVACCEL_A_DEFAULT_QUOTA, (uint64_t)quota_mb << 20) ||
		    nla_put_u64(msg, KVACCEL_A_HIGH_WM, 0) ||
		    nla_put_u64(msg, KVACCEL_A_LOW_WM, 0))) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = kvnl_exec(nl, msg, NULL, NULL);
	kvnl_close(nl);
	return ret;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

FIXTURE(fuzz) {
	int unused;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* The harness's timeout must cover the longest KVTEST_FUZZ_SECONDS used. */
TEST_F_TIMEOUT(fuzz, random_ioctls_and_netlink, 900)
{
	uint64_t seed = env_u64("KVTEST_FUZZ_SEED", 0);
	double seconds = (double)env_u64("KVTEST_FUZZ_SECONDS", 30);
	int procs = (int)env_u64("KVTEST_FUZZ_PROCS", 4);
	int threads = (int)env_u64("KVTEST_FUZZ_THREADS", 3);
	long long limit_mb = kvt_read_ll("/sys/module/kvaccel/parameters/limit_mb");
	long long quota_mb = kvt_read_ll("/sys/module/kvaccel/parameters/default_quota_mb");
	struct stats *st;
	pid_t *pids;
	struct rng r;
	uint64_t limit, usage = 1, pages = 1, regions = 1, gen = 0;
	double end, now, slice;
	int fd, i, status, killed = 0, restarted = 0;

	if (!seed)
		seed = (uint64_t)kvt_now_ns() ^ ((uint64_t)getpid() << 32);
	TH_LOG("seed 0x%llx (rerun with KVTEST_FUZZ_SEED=0x%llx), %d processes x %d threads, %.0f s",
	       (unsigned long long)seed, (unsigned long long)seed, procs, threads, seconds);
	ASSERT_LE(0, limit_mb);
	ASSERT_LE(0, quota_mb);
	fd = kvt_open();
	ASSERT_LE(0, fd);
	limit = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_LIMIT);

	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	pids = calloc((size_t)procs, sizeof(*pids));
	ASSERT_NE(NULL, pids);
	r.s = mix(seed, 0, 0);

	/*
	 * Processes run until the end; after each slice, each is killed with
	 * a chance of one in three and a new one takes its place.
	 */
	end = (double)kvt_now_ns() / 1e9 + seconds;
	slice = seconds / 6 > 1 ? seconds / 6 : 1;
	for (i = 0; i < procs; i++)
		pids[i] = -1;
	while ((now = (double)kvt_now_ns() / 1e9) < end) {
		double left = end - now;

		for (i = 0; i < procs; i++) {
			if (pids[i] > 0)
				continue;
			pids[i] = fork();
			ASSERT_LE(0, pids[i]);
			if (!pids[i])
				_exit(fz_process(st, mix(seed, ++gen + 100, (uint64_t)i), i, threads,
						 left, limit));
			restarted++;
		}
		usleep((useconds_t)(slice * 1e6 * (0.5 + (double)below(&r, 100) / 100)));
		for (i = 0; i < procs; i++) {
			if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
					TH_LOG("process %d: status 0x%x", i, status);
				pids[i] = -1;
			} else if (pids[i] > 0 && !below(&r, 3)) {
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &status, 0);
				pids[i] = -1;
				killed++;
			}
		}
	}
	for (i = 0; i < procs; i++) {
		if (pids[i] <= 0)
			continue;
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(!WIFSIGNALED(status) || WTERMSIG(status) == SIGKILL)
			TH_LOG("process %d: signal %d", i, WTERMSIG(status));
	}

	/* Put back what the admin requests changed. */
	ASSERT_EQ(0, restore_settings(limit_mb, quota_mb));

	/* Copy jobs of killed processes may still hold regions for a moment. */
	for (i = 0; i < 600 && (usage || pages || regions); i++) {
		usage = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
		pages = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
		regions = kvt_param_or_die(fd, KVACCEL_PARAM_REGIONS);
		if (usage || pages || regions)
			usleep(100000);
	}
	TH_LOG("%lu ioctls (%lu failed), %lu netlink requests (%lu failed), %lu touches "
	       "(%lu SIGBUS), %d processes started, %d killed",
	       atomic_load(&st->ioctls), atomic_load(&st->ioctl_errors),
	       atomic_load(&st->netlink), atomic_load(&st->netlink_errors),
	       atomic_load(&st->touches), atomic_load(&st->bus), restarted, killed);
	EXPECT_EQ(0, usage);
	EXPECT_EQ(0, pages);
	EXPECT_EQ(0, regions);
	EXPECT_EQ(limit, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_LIMIT));
	for (i = 0; i < NR_ACTIONS; i++)
		EXPECT_LT(0, atomic_load(&st->actions[i])) TH_LOG("action %d never ran", i);
	EXPECT_LT(0, atomic_load(&st->ioctls) - atomic_load(&st->ioctl_errors));
	close(fd);
}

TEST_HARNESS_MAIN
