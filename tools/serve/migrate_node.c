// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - a node's zero-copy live migration (migrate_node.h): the
 * three messages, each side's record of a migration in flight, the page
 * exchange on window tiers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "memfd.h"
#include "migrate_node.h"

/* Regions named by one message: at most the hand-off's fds but the memfd. */
#define NMSG_KEYS_MAX	(ACCEL_HANDOFF_MAX - 1)

enum nmig_phase {
	NM_OFFERED = 1,		/* source: OFFER sent, the request decoding, waiting for READY */
	NM_COMMITTED,		/* source: stopped, COMMIT sent, waiting for GIVEBACK */
	NM_GIVING,		/* source: GIVEBACK taken, its rebind on the migration thread */
	NM_PREPARED,		/* destination: READY sent, waiting for COMMIT */
	NM_QUEUED,		/* destination: took COMMIT, waiting for a running slot */
	NM_ARRIVED,		/* destination: scheduled, waiting for its first token */
};

/*
 * A rebind for the migration thread: the source's blocks to the pages
 * given back (hundreds to thousands of blocks: milliseconds of kernel work
 * that would delay the source's other requests on the engine thread).
 */
struct nmig_job {
	struct nmig_job *next;
	struct accel_tier_rebind *ops;
	uint32_t n;
	/* The regions the rebind names, held by the thread just before it (dup'd fds). */
	uint64_t keys[2 * NMSG_KEYS_MAX];
	int fds[2 * NMSG_KEYS_MAX];
	uint32_t nfd;
	int ret;
	bool done;
};

/* Room for tokens decoded between the OFFER and the COMMIT, so that the image grows in place. */
#define NMIG_IMAGE_SLACK	256

struct nmig {
	uint64_t id;
	enum nmig_phase phase;
	char peer[32];
	uint64_t t0_ns;
	struct serve_nmig_stats st;
	uint32_t pre;			/* blocks pre-bound at the destination (0..pre-1) */
	uint32_t base_tokens, base_gen;	/* the OFFER's image: the COMMIT's delta starts there */
	/*
	 * The other side's regions kept as fds: the source's, READY's (the pages
	 * its blocks take at GIVEBACK); the destination's, those of the pages its
	 * pre-bound blocks had (bound back under them if it gives up).
	 */
	uint64_t kkeys[NMSG_KEYS_MAX];
	int kfds[NMSG_KEYS_MAX];
	uint32_t nk;
	/* Source. */
	struct serve_migr_out mo;
	uint32_t h;
	uint32_t *oblocks;		/* its blocks at the OFFER */
	void *oimage;			/* the OFFER's image: the stop's is written over it */
	size_t oimage_len, oimage_cap;
	uint32_t offered;		/* full blocks offered for pre-binding */
	struct serve_npage *rpages;	/* READY's: one per pre-bound block */
	uint32_t gb_pages;		/* the GIVEBACK's pages expected */
	struct nmig_job *job;		/* NM_GIVING: its rebind */
	uint64_t t_commit_ns;		/* COMMIT sent */
	uint64_t downtime_us;		/* GIVEBACK's, until the rebind is over */
	/* Destination. */
	void *image;			/* the latest image (mi.hdr points into it) */
	size_t image_cap;		/* its buffer's bytes */
	struct serve_migr_hdr ohd;	/* the OFFER's header */
	struct serve_migr_in mi;
	struct accel_tier_rebind *back;	/* pre-bound blocks: the pages they had */
	uint32_t gen0;			/* tokens it had on arrival */
	uint32_t nh;			/* its handle here, once committed */
	uint64_t t_last_ns, t_stop_ns;
	uint32_t mode;			/* enum serve_nmig_mode */
	bool recompute;			/* SERVE_NMIG_RECOMPUTE: no blocks, the image only */
	size_t image_len;
};

struct serve_nmig {
	struct serve_driver *d;
	struct accel_tier *tier;
	uint64_t block_bytes;
	struct serve_nmig_ops ops;
	void *arg;
	struct nmig *m;
	unsigned int nr, cap;
	uint32_t timeout_ms;
	/*
	 * The migration thread (started with the first GIVEBACK): it runs the
	 * jobs queued at @jobs and touches nothing but the tier (whose calls
	 * are thread-safe, accel_mover.h) and the jobs; @lock guards the queue,
	 * each job's ret and done, and @stop. The records (@m) and every other
	 * call stay on the engine thread.
	 *
	 * @tier_lock (recursive) makes each hold-then-rebind sequence on the
	 * tier one: a rebind lets go of held regions no block is bound to, so a
	 * rebind between another's hold and its rebind would drop that hold.
	 * The engine thread takes it around every message it handles and its
	 * step's timeouts; the thread around its holds and rebind.
	 */
	pthread_mutex_t tier_lock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_up, stop;
	struct nmig_job *jobs, **jobs_tail;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* SERVE_MIGR_TRACE is set: the traces below print. */
static bool tracing(void)
{
	static int on = -1;

	if (on < 0)
		on = getenv("SERVE_MIGR_TRACE") != NULL;
	return on;
}

/* SERVE_MIGR_TRACE=1: where a migration's downtime goes, microseconds from the stop. */
static void trace(const char *what, uint64_t id, uint64_t t_stop)
{
	if (tracing())
		fprintf(stderr, "kvaccel-serve: migration %llu: %s at +%llu us\n",
			(unsigned long long)id, what,
			(unsigned long long)((mono_ns() - t_stop) / 1000));
}

/* SERVE_MIGR_TRACE=1: the engine thread's time in one of a migration's calls. */
static void busy_trace(const char *what, uint32_t kind, uint64_t id, uint64_t t0)
{
	static const char *const names[] = {
		[SERVE_NMSG_OFFER] = "OFFER", [SERVE_NMSG_READY] = "READY",
		[SERVE_NMSG_COMMIT] = "COMMIT", [SERVE_NMSG_GIVEBACK] = "GIVEBACK",
		[SERVE_NMSG_ABORT] = "ABORT",
	};

	if (tracing())
		fprintf(stderr, "kvaccel-serve: migration %llu: %s %s: %llu us on this thread\n",
			(unsigned long long)id, what,
			kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "?",
			(unsigned long long)((mono_ns() - t0) / 1000));
}

void serve_nmig_hook(const char *stage, uint64_t id)
{
	static const char *at;
	static int fired;

	if (!at)
		at = getenv("SERVE_MIGR_STOP_AT") ? getenv("SERVE_MIGR_STOP_AT") : "";
	if (fired || strcmp(at, stage))
		return;
	fired = 1;
	fprintf(stderr, "kvaccel-serve: migration %llu: stopped at %s (SERVE_MIGR_STOP_AT)\n",
		(unsigned long long)id, stage);
	fflush(stderr);
	raise(SIGSTOP);
}

struct serve_nmig *serve_nmig_create(struct serve_driver *d, struct accel_tier *tier0,
				     const struct serve_nmig_ops *ops, void *arg)
{
	ACCEL_OPTS(accel_tier_info, ti);
	struct serve_nmig *n;

	if (!d || !tier0 || !ops || !ops->send) {
		errno = EINVAL;
		return NULL;
	}
	if (accel_tier_info(tier0, &ti) || !(ti.flags & ACCEL_TIER_WINDOW)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->d = d;
	n->tier = tier0;
	n->block_bytes = ti.block_bytes;
	n->ops = *ops;
	n->arg = arg;
	n->timeout_ms = SERVE_NMIG_TIMEOUT_MS;
	{
		pthread_mutexattr_t a;

		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&n->tier_lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	n->jobs_tail = &n->jobs;
	return n;
}

/* Hold @j's regions, then rebind (one sequence under tier_lock); its fds closed. */
static int job_run(struct serve_nmig *n, struct nmig_job *j)
{
	int ret = 0;

	pthread_mutex_lock(&n->tier_lock);
	for (uint32_t i = 0; !ret && i < j->nfd; i++) {
		uint64_t key;

		ret = accel_tier_hold(n->tier, j->fds[i], &key);
		if (!ret && key != j->keys[i])
			ret = -EPROTO;
	}
	if (!ret)
		ret = accel_tier_rebind(n->tier, j->ops, j->n);
	pthread_mutex_unlock(&n->tier_lock);
	for (uint32_t i = 0; i < j->nfd; i++)
		close(j->fds[i]);
	j->nfd = 0;
	return ret;
}

static void *migration_thread(void *arg)
{
	struct serve_nmig *n = arg;
	struct nmig_job *j;
	int ret;

	/*
	 * Background work: the engine thread's steps (the other requests) and,
	 * on a node's shared CPUs, the destination adopting the request come
	 * first. Linux's nice is per thread; failing, it runs at the default.
	 */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);

	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->jobs && !n->stop)
			pthread_cond_wait(&n->cond, &n->lock);
		j = n->jobs;
		if (!j)
			break;	/* stopped, nothing left */
		n->jobs = j->next;
		if (!n->jobs)
			n->jobs_tail = &n->jobs;
		pthread_mutex_unlock(&n->lock);
		ret = job_run(n, j);
		pthread_mutex_lock(&n->lock);
		j->ret = ret;
		j->done = true;
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* Queue @j for the migration thread (started now if need be); -errno: run it here. */
static int job_queue(struct serve_nmig *n, struct nmig_job *j)
{
	if (!n->thread_up) {
		int ret = pthread_create(&n->thread, NULL, migration_thread, n);

		if (ret)
			return -ret;
		n->thread_up = true;
	}
	pthread_mutex_lock(&n->lock);
	j->next = NULL;
	*n->jobs_tail = j;
	n->jobs_tail = &j->next;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	return 0;
}

static bool job_done(struct serve_nmig *n, const struct nmig_job *j)
{
	bool done;

	pthread_mutex_lock(&n->lock);
	done = j->done;
	pthread_mutex_unlock(&n->lock);
	return done;
}

void serve_nmig_set_timeout(struct serve_nmig *n, uint32_t ms)
{
	if (n)
		n->timeout_ms = ms ? ms : SERVE_NMIG_TIMEOUT_MS;
}

static struct nmig *find(struct serve_nmig *n, uint64_t id)
{
	for (unsigned int i = 0; i < n->nr; i++)
		if (n->m[i].id == id)
			return &n->m[i];
	return NULL;
}

static struct nmig *add(struct serve_nmig *n, uint64_t id, const char *peer)
{
	struct nmig *m;

	if (find(n, id)) {
		errno = EEXIST;
		return NULL;
	}
	if (n->nr == n->cap) {
		unsigned int cap = n->cap ? 2 * n->cap : 4;

		m = realloc(n->m, cap * sizeof(*m));
		if (!m)
			return NULL;
		n->m = m;
		n->cap = cap;
	}
	m = &n->m[n->nr++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	snprintf(m->peer, sizeof(m->peer), "%s", peer);
	m->t0_ns = mono_ns();
	return m;
}

static void close_kept(struct nmig *m)
{
	for (uint32_t i = 0; i < m->nk; i++)
		close(m->kfds[i]);
	m->nk = 0;
}

static void drop(struct serve_nmig *n, struct nmig *m)
{
	if (m->job) {
		for (uint32_t i = 0; i < m->job->nfd; i++)
			close(m->job->fds[i]);
		free(m->job->ops);
		free(m->job);
	}
	close_kept(m);
	free(m->image);
	free(m->oimage);
	free(m->oblocks);
	free(m->rpages);
	free(m->back);
	*m = n->m[--n->nr];
}

/* ---- messages ---- */

/* Keys of @pages (distinct, in first-seen order) into @keys; -E2BIG past @max. */
static int keys_of(const struct serve_npage *pages, uint32_t n, uint64_t *keys, uint32_t max)
{
	uint32_t nk = 0, i, k;

	for (i = 0; i < n; i++) {
		if (!pages[i].own)
			continue;
		for (k = 0; k < nk && keys[k] != pages[i].key; k++)
			;
		if (k < nk)
			continue;
		if (nk == max)
			return -E2BIG;
		keys[nk++] = pages[i].key;
	}
	return (int)nk;
}

/*
 * Send message @h, already in sealed memfd @memfd (closed here), with the
 * regions of its keys @keys to @to: exported now, or @kfds[i] for keys[i]
 * (the caller's, kept open) where given.
 */
static int send_built(struct serve_nmig *n, const char *to, const struct serve_nmsg *h,
		      int memfd, const uint64_t *keys, const int *kfds)
{
	enum accel_handoff_kind kinds[ACCEL_HANDOFF_MAX];
	int fds[ACCEL_HANDOFF_MAX];
	unsigned int nfd = 0, i;
	int ret = 0;

	fds[nfd] = memfd;
	kinds[nfd++] = ACCEL_HANDOFF_MEMFD;
	for (i = 0; i < h->nr_keys; i++) {
		if (kfds) {
			fds[nfd] = kfds[i];
		} else {
			ret = accel_tier_page_export(n->tier, keys[i], &fds[nfd]);
			if (ret)
				goto out;
		}
		kinds[nfd++] = ACCEL_HANDOFF_REGION;
	}
	ret = n->ops.send(n->arg, to, serve_nmig_tag(h->id, h->kind), fds, kinds, nfd);
out:
	for (i = 0; i < nfd; i++)
		if (!i || !kfds)
			close(fds[i]);
	return ret;
}

/*
 * Send message @h (its keys and pages after it in @body, @body_len bytes,
 * then @tail) with the regions of its keys to @to: exported now, or
 * @kfds[i] for keys[i] (the caller's, kept open) where given.
 */
static int send_msg_fds(struct serve_nmig *n, const char *to, struct serve_nmsg *h,
			const void *body, size_t body_len, const void *tail, size_t tail_len,
			const int *kfds)
{
	int ret;

	h->magic = SERVE_NMSG_MAGIC;
	h->size = sizeof(*h) + body_len + tail_len;
	ret = serve_memfd_sealed(h, sizeof(*h), body, body_len, tail, tail_len);
	if (ret < 0)
		return ret;
	return send_built(n, to, h, ret, body, kfds);
}

static int send_msg(struct serve_nmig *n, const char *to, struct serve_nmsg *h,
		    const void *body, size_t body_len, const void *tail, size_t tail_len)
{
	return send_msg_fds(n, to, h, body, body_len, tail, tail_len, NULL);
}

/* back[]'s bytes in a message: padded to 8. */
static size_t back_bytes(uint32_t nr_back)
{
	return ((size_t)nr_back * 4 + 7) & ~(size_t)7;
}

/* The memfd's bytes, checked: a malloc'd copy. */
static int read_msg(int fd, struct serve_nmsg **out)
{
	struct serve_nmsg *h;
	size_t len;
	int ret;

	ret = serve_memfd_read(fd, sizeof(*h), (void **)&h, &len);
	if (ret)
		return ret;
	if (h->magic != SERVE_NMSG_MAGIC || h->size != (uint64_t)len ||
	    h->mode >= SERVE_NMIG_NR_MODES ||
	    (h->mode && h->kind != SERVE_NMSG_OFFER && h->kind != SERVE_NMSG_COMMIT) ||
	    h->nr_keys > NMSG_KEYS_MAX || h->nr_pages > (1u << 24) || h->nr_back > (1u << 24) ||
	    sizeof(*h) + (uint64_t)h->nr_keys * 8 + (uint64_t)h->nr_pages *
	    sizeof(struct serve_npage) + back_bytes(h->nr_back) + h->image_len > h->size) {
		free(h);
		return -EPROTO;
	}
	*out = h;
	return 0;
}

static const uint64_t *msg_keys(const struct serve_nmsg *h)
{
	return (const uint64_t *)(h + 1);
}

static const struct serve_npage *msg_pages(const struct serve_nmsg *h)
{
	return (const struct serve_npage *)(msg_keys(h) + h->nr_keys);
}

static const uint32_t *msg_back(const struct serve_nmsg *h)
{
	return (const uint32_t *)(msg_pages(h) + h->nr_pages);
}

static const void *msg_image(const struct serve_nmsg *h)
{
	return (const char *)msg_back(h) + back_bytes(h->nr_back);
}

/* A message's body: keys, pages, back[] (padded), then @image (malloc'd into *len bytes). */
static char *body_of(const uint64_t *keys, uint32_t nk, const struct serve_npage *pages,
		     uint32_t np, const uint32_t *back, uint32_t nb, const void *image,
		     size_t ilen, size_t *len)
{
	size_t lp = (size_t)np * sizeof(*pages), lb = back_bytes(nb);
	char *b;

	*len = (size_t)nk * 8 + lp + lb + ilen;
	b = calloc(1, *len ? *len : 1);
	if (!b)
		return NULL;
	if (nk)
		memcpy(b, keys, (size_t)nk * 8);
	if (np)
		memcpy(b + (size_t)nk * 8, pages, lp);
	if (nb)
		memcpy(b + (size_t)nk * 8 + lp, back, (size_t)nb * 4);
	if (ilen)
		memcpy(b + (size_t)nk * 8 + lp + lb, image, ilen);
	return b;
}

/* Keep fds @fds[0..nk) (dup'd) with their keys @keys in @m. */
static int keep_fds(struct nmig *m, const uint64_t *keys, const int *fds, uint32_t nk)
{
	for (uint32_t i = 0; i < nk; i++) {
		int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		m->kkeys[m->nk] = keys[i];
		m->kfds[m->nk++] = fd;
	}
	return 0;
}

/* Hold the regions kept in @m again (a rebind may have let them go since). */
static int hold_kept(struct serve_nmig *n, struct nmig *m)
{
	for (uint32_t i = 0; i < m->nk; i++) {
		uint64_t key;
		int ret = accel_tier_hold(n->tier, m->kfds[i], &key);

		if (ret)
			return ret;
		if (key != m->kkeys[i])
			return -EPROTO;
	}
	return 0;
}

/* Hold the regions of the hand-off's fds 1.. (their keys as the message names them). */
static int hold_regions(struct serve_nmig *n, const struct serve_nmsg *h, const int *fds,
			const enum accel_handoff_kind *kinds, unsigned int count)
{
	unsigned int i;

	if (count != 1 + h->nr_keys)
		return -EPROTO;
	for (i = 0; i < h->nr_keys; i++) {
		uint64_t key;
		int ret;

		if (kinds[1 + i] != ACCEL_HANDOFF_REGION)
			return -EPROTO;
		ret = accel_tier_hold(n->tier, fds[1 + i], &key);
		if (ret)
			return ret;
		if (key != msg_keys(h)[i])
			return -EPROTO;	/* the fd is not the region the message names */
	}
	return 0;
}

/* Every own page of @pages names a key of @h's. */
static bool pages_named(const struct serve_nmsg *h, const struct serve_npage *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k;

		if (!p[i].own)
			continue;
		for (k = 0; k < h->nr_keys && msg_keys(h)[k] != p[i].key; k++)
			;
		if (k == h->nr_keys)
			return false;
	}
	return true;
}

/* ---- the source ---- */

/* A message with no keys and no pages: a refusing READY, ABORT, an image alone. */
static int send_simple(struct serve_nmig *n, const char *to, uint64_t id, uint32_t kind,
		       int status, uint32_t mode, const void *image, size_t len)
{
	struct serve_nmsg h = { .kind = kind, .id = id, .status = status, .mode = mode,
				.image_len = len, .block_bytes = n->block_bytes };

	return send_msg(n, to, &h, image, len, NULL, 0);
}

int serve_nmig_start(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to)
{
	return serve_nmig_start_mode(n, id, h, to, SERVE_NMIG_ZERO_COPY);
}

/*
 * The pages behind the first *full blocks of @blocks (malloc'd into *pages)
 * and their regions' keys (the count returned); more regions than a
 * message names: none offered (*full 0).
 */
static int offer_pages(struct serve_nmig *n, const uint32_t *blocks, uint32_t *full,
		       struct serve_npage **pages, uint64_t *keys)
{
	struct serve_npage *p = calloc(*full + 1, sizeof(*p));
	int ret = p ? 0 : -ENOMEM;

	for (uint32_t i = 0; !ret && i < *full; i++) {
		struct accel_tier_page pg;

		ret = accel_tier_page(n->tier, blocks[i], &pg);
		p[i] = (struct serve_npage) { .key = pg.key, .first = pg.first, .own = 1 };
	}
	if (!ret)
		ret = keys_of(p, *full, keys, NMSG_KEYS_MAX);
	if (ret == -E2BIG) {
		*full = 0;	/* the COMMIT will say so, if it still holds then */
		ret = 0;
	}
	if (ret < 0) {
		free(p);
		return ret;
	}
	*pages = p;
	return ret;
}

/* Tokens (and digests) the request may decode between its OFFER and its stop in place. */
#define OFFER_SLACK_TOKENS	64

/*
 * OFFER @msg: a memfd of the header, the keys and pages, and the request's
 * image. The image is taken into a buffer of ours kept for the stop
 * (*@img, *@cap bytes, room for OFFER_SLACK_TOKENS more): the stop then
 * writes only what changed since (serve_driver_migrate_out_from()), so its
 * downtime does not copy the token array again. The memfd (sealed), or
 * -errno; msg->image_len set.
 */
static int offer_build(struct serve_nmig *n, uint32_t h, struct serve_nmsg *msg,
		       const uint64_t *keys, const struct serve_npage *pages, size_t len,
		       const struct serve_driver_info *in, void **img, size_t *cap)
{
	size_t lk = (size_t)msg->nr_keys * 8, lp = (size_t)msg->nr_pages * sizeof(*pages);
	size_t total = sizeof(*msg) + lk + lp + len, got;
	char *map;
	int fd, ret;

	msg->magic = SERVE_NMSG_MAGIC;
	msg->size = total;
	msg->image_len = len;
	*cap = serve_migr_image_size(in->req.n_tokens + OFFER_SLACK_TOKENS,
				     in->req.n_generated + OFFER_SLACK_TOKENS);
	*img = malloc(*cap);
	if (!*img)
		return -ENOMEM;
	ret = serve_driver_migrate_peek_into(n->d, h, *img, *cap, &got);
	if (!ret && got != len)
		ret = -EIO;	/* it changed since serve_driver_info(): a bug of ours */
	fd = ret ? ret : serve_memfd_map(total, (void **)&map);
	if (fd < 0) {
		free(*img);
		*img = NULL;
		return fd;
	}
	memcpy(map, msg, sizeof(*msg));
	if (lk)
		memcpy(map + sizeof(*msg), keys, lk);
	if (lp)
		memcpy(map + sizeof(*msg) + lk, pages, lp);
	memcpy(map + sizeof(*msg) + lk + lp, *img, len);
	fd = serve_memfd_seal(fd, map, total);
	if (fd < 0) {
		free(*img);
		*img = NULL;
	}
	return fd;
}

int serve_nmig_start_mode(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to,
			  uint32_t mode)
{
	struct serve_nmsg msg = { .kind = SERVE_NMSG_OFFER, .id = id, .mode = mode,
				  .block_bytes = n ? n->block_bytes : 0 };
	struct serve_npage *pages = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	uint32_t *blocks = NULL, nb = 0, full = 0, bt;
	struct serve_driver_info in;
	uint64_t t0 = mono_ns();
	struct nmig *m;
	size_t len, cap = 0;
	void *img = NULL;
	int ret, nk = 0, fd;

	if (!n || !to || !*to || mode >= SERVE_NMIG_NR_MODES)
		return -EINVAL;
	for (unsigned int i = 0; i < n->nr; i++)
		if ((n->m[i].phase == NM_OFFERED || n->m[i].phase == NM_COMMITTED ||
		     n->m[i].phase == NM_GIVING) && n->m[i].h == h)
			return -EBUSY;	/* on its way already */
	/* Its tokens, the image's size (a request that is not decoding: offer_build() says). */
	ret = serve_driver_info(n->d, h, &in);
	if (ret)
		return ret;
	len = serve_migr_image_size(in.req.n_tokens, in.req.n_generated);
	bt = serve_engine_block_tokens(serve_driver_engine(n->d));
	if (mode == SERVE_NMIG_ZERO_COPY) {
		/* Its full blocks (the KV of all tokens but the last is in them) never change. */
		ret = serve_driver_migrate_blocks(n->d, h, &blocks, &nb);
		full = in.req.n_tokens ? (in.req.n_tokens - 1) / bt : 0;
		if (full > nb)
			full = nb;
		if (!ret)
			ret = nk = offer_pages(n, blocks, &full, &pages, keys);
		if (ret > 0)
			ret = 0;
	}
	if (!ret) {
		msg.nr_keys = full ? (uint32_t)nk : 0;
		msg.nr_pages = full;
		ret = fd = offer_build(n, h, &msg, keys, pages, len, &in, &img, &cap);
	}
	m = ret < 0 ? NULL : add(n, id, to);
	if (ret >= 0 && !m) {
		ret = -errno;
		close(fd);
	}
	if (m) {
		m->h = h;
		m->mode = mode;
		m->oimage = img;
		m->oimage_len = len;
		m->oimage_cap = cap;
		img = NULL;
		m->oblocks = blocks;
		m->offered = full;
		m->base_tokens = in.req.n_tokens;
		m->base_gen = in.req.n_generated;
		blocks = NULL;
		ret = send_built(n, to, &msg, fd, keys, NULL);
		if (ret) {
			drop(n, m);
		} else {
			m->phase = NM_OFFERED;
			serve_nmig_hook("offer", id);
		}
	}
	free(img);
	free(blocks);
	free(pages);
	busy_trace("sent", SERVE_NMSG_OFFER, id, t0);
	return ret;
}

/* Source: the migration failed with the request still here (it decodes on). */
static void source_failed(struct serve_nmig *n, struct nmig *m, int status)
{
	if (m->phase == NM_COMMITTED)
		serve_driver_migrate_undo(n->d, &m->mo);	/* resumes where it stopped */
	if (n->ops.done)
		n->ops.done(n->arg, m->id, status, &m->st);
	drop(n, m);
}

/* Source, READY: what the destination pre-bound, and the pages it gives for those blocks. */
static int ready_pages(struct nmig *m, const struct serve_nmsg *h, const int *fds,
		       const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_npage *p = msg_pages(h);
	uint32_t i;

	if (h->nr_pages != m->offered || count != 1 + h->nr_keys || h->nr_back ||
	    !pages_named(h, p, h->nr_pages))
		return -EPROTO;
	for (i = 0; i < h->nr_keys; i++)
		if (kinds[1 + i] != ACCEL_HANDOFF_REGION)
			return -EPROTO;
	for (i = 0; i < h->nr_pages; i++)
		if (p[i].own != 1)
			return -EPROTO;
	if (h->nr_pages) {
		m->rpages = malloc((size_t)h->nr_pages * sizeof(*p));
		if (!m->rpages)
			return -ENOMEM;
		memcpy(m->rpages, p, (size_t)h->nr_pages * sizeof(*p));
	}
	m->pre = h->nr_pages;
	return keep_fds(m, msg_keys(h), fds + 1, h->nr_keys);
}

/*
 * COMMIT's image, the delta from the OFFER's: the header at the stop, the
 * tokens and digests since (malloc'd into *len bytes).
 */
static void *delta_of(const struct nmig *m, size_t *len)
{
	const struct serve_migr_hdr *hd = m->mo.image;
	uint32_t n = hd->n_prompt + hd->n_gen, nt, ng;
	char *d;

	if (n < m->base_tokens || hd->n_gen < m->base_gen)
		return NULL;
	nt = n - m->base_tokens;
	ng = hd->n_gen - m->base_gen;
	*len = serve_nmig_delta_size(nt, ng);
	d = calloc(1, *len);
	if (!d)
		return NULL;
	memcpy(d, hd, sizeof(*hd));
	memcpy(d + sizeof(*hd), serve_migr_tokens(hd) + m->base_tokens, (size_t)nt * 4);
	memcpy(d + serve_nmig_delta_size(nt, 0), serve_migr_digests(hd) + m->base_gen,
	       (size_t)ng * 8);
	return d;
}

/* Source, READY: stop the request now (a step boundary) and send COMMIT. */
static int on_ready(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		    const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	struct serve_nmsg msg = { .kind = SERVE_NMSG_COMMIT, .id = m->id, .mode = m->mode,
				  .block_bytes = n->block_bytes,
				  .base_tokens = m->base_tokens, .base_gen = m->base_gen };
	struct serve_npage *pages = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	uint32_t *back = NULL, i, nr, pre, nb = 0, shared = 0;
	char *body = NULL, *tail = NULL, *delta = NULL;
	size_t body_len, tail_len, delta_len;
	int ret;

	if (m->phase != NM_OFFERED)
		return -EPROTO;
	if (h->status < 0) {
		source_failed(n, m, h->status);	/* refused: it never stopped */
		return 0;
	}
	ret = ready_pages(m, h, fds, kinds, count);
	if (ret) {
		/* A READY we cannot use: refused, the destination gives up too. */
		source_failed(n, m, ret);
		return ret;
	}
	ret = serve_driver_migrate_out_from(n->d, m->h, m->mode ? 0 : SERVE_MIGR_GIVE_PAGES,
					    m->oimage, m->oimage_len, m->oimage_cap, &m->mo);
	m->oimage = NULL;	/* the stop's now (m->mo.image), or freed */
	trace("stopped", m->id, m->mo.t_stop_ns);
	if (ret) {
		/* Finished, preempted or swapped meanwhile: it stays here. */
		send_simple(n, m->peer, m->id, SERVE_NMSG_ABORT, ret, 0, NULL, 0);
		source_failed(n, m, ret == -EINVAL ? -ECANCELED : ret);
		return 0;
	}
	m->phase = NM_COMMITTED;
	pre = m->pre;
	if (m->mo.nr_blocks < pre || memcmp(m->mo.blocks, m->oblocks, (size_t)pre * 4)) {
		ret = -ESTALE;	/* its blocks changed since the OFFER (swapped out and in) */
		goto fail;
	}
	if (!m->mo.own) {
		/* Nothing changes hands: copied (COPY), or not sent at all (RECOMPUTE). */
		m->mo.own = calloc(m->mo.nr_blocks + 1, 1);
		if (m->mode == SERVE_NMIG_RECOMPUTE)
			m->mo.nr_blocks = 0;
	}
	nr = m->mo.nr_blocks - pre;
	pages = calloc(nr + 1, sizeof(*pages));
	back = calloc(pre + 1, sizeof(*back));
	delta = delta_of(m, &delta_len);
	ret = pages && back && delta && m->mo.own ? 0 : -ENOMEM;
	/* The blocks past the pre-bound ones: their pages; the pre-bound ones others share now. */
	for (i = 0; !ret && i < nr; i++) {
		struct accel_tier_page pg;

		ret = accel_tier_page(n->tier, m->mo.blocks[pre + i], &pg);
		pages[i] = (struct serve_npage) { .key = pg.key, .first = pg.first,
						  .own = m->mo.own[pre + i] };
		shared += !pages[i].own;
	}
	for (i = 0; !ret && i < pre; i++)
		if (!m->mo.own[i])
			back[nb++] = i;
	if (!ret)
		ret = keys_of(pages, nr, keys, NMSG_KEYS_MAX);
	if (ret < 0)
		goto fail;
	msg.nr_keys = (uint32_t)ret;
	msg.nr_pages = nr;
	msg.pre = pre;
	msg.nr_back = nb;
	msg.image_len = delta_len;
	/* Body: keys, pages, back, the delta; tail: the shared blocks' bytes, then back's. */
	body = body_of(keys, msg.nr_keys, pages, nr, back, nb, delta, delta_len, &body_len);
	tail_len = (size_t)(shared + nb) * n->block_bytes;
	tail = tail_len ? malloc(tail_len) : NULL;
	if (!body || (tail_len && !tail)) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0, shared = 0; i < nr; i++)
		if (!pages[i].own)
			memcpy(tail + (size_t)shared++ * n->block_bytes,
			       accel_tier_block_addr(n->tier, m->mo.blocks[pre + i]),
			       n->block_bytes);
	for (i = 0; i < nb; i++)
		memcpy(tail + (size_t)(shared + i) * n->block_bytes,
		       accel_tier_block_addr(n->tier, m->mo.blocks[back[i]]), n->block_bytes);
	trace("COMMIT built", m->id, m->mo.t_stop_ns);
	ret = send_msg(n, m->peer, &msg, body, body_len, tail, tail_len);
	trace("COMMIT sent", m->id, m->mo.t_stop_ns);
	if (ret)
		goto fail;
	m->gb_pages = nr - shared;
	m->t_commit_ns = mono_ns();	/* COMMITTED's timeout counts from here */
	serve_nmig_hook("commit", m->id);
	m->st.blocks = m->mo.nr_blocks;
	m->st.bytes_copied = tail_len;
	m->st.pages = m->mo.nr_blocks - shared - nb;
	m->st.tokens = ((const struct serve_migr_hdr *)m->mo.image)->n_prompt +
		       ((const struct serve_migr_hdr *)m->mo.image)->n_gen;
	goto out;
fail:
	send_simple(n, m->peer, m->id, SERVE_NMSG_ABORT, ret, 0, NULL, 0);
	source_failed(n, m, ret);
out:
	free(pages);
	free(back);
	free(delta);
	free(body);
	free(tail);
	return 0;
}

static void source_gave(struct serve_nmig *n, struct nmig *m, int ret);

/*
 * Source, GIVEBACK: the destination runs it; our own blocks take READY's
 * pages (the pre-bound ones) and the pages given now, then go.
 */
static int on_giveback(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		       const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_npage *given = msg_pages(h);
	struct accel_tier_rebind *ops;
	uint32_t i, k = 0, nops = 0;
	int ret;

	if (m->phase != NM_COMMITTED)
		return -EPROTO;
	ret = h->nr_pages == m->gb_pages && !h->nr_back && pages_named(h, given, h->nr_pages) &&
	      count == 1 + h->nr_keys ? 0 : -EPROTO;
	for (i = 0; !ret && i < h->nr_keys; i++)
		if (kinds[1 + i] != ACCEL_HANDOFF_REGION)
			ret = -EPROTO;
	ops = calloc(m->st.pages + 1, sizeof(*ops));
	m->job = calloc(1, sizeof(*m->job));
	if (!ret && (!ops || !m->job))
		ret = -ENOMEM;
	/* The regions to hold: GIVEBACK's and READY's (kept), held where the rebind runs. */
	for (i = 0; !ret && i < h->nr_keys + m->nk; i++) {
		int fd = i < h->nr_keys ? fds[1 + i] : m->kfds[i - h->nr_keys];

		m->job->keys[i] = i < h->nr_keys ? msg_keys(h)[i] : m->kkeys[i - h->nr_keys];
		m->job->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (m->job->fds[i] < 0)
			ret = -errno;
		else
			m->job->nfd++;
	}
	for (i = 0; !ret && i < m->mo.nr_blocks; i++) {
		const struct serve_npage *to;

		if (!m->mo.own[i])
			continue;
		if (i < m->pre) {
			to = &m->rpages[i];
		} else if (k < h->nr_pages && given[k].own) {
			to = &given[k++];
		} else {
			ret = -EPROTO;
			break;
		}
		ops[nops++] = (struct accel_tier_rebind) {
			.block = m->mo.blocks[i], .to = { .key = to->key, .first = to->first },
		};
	}
	trace("GIVEBACK taken", m->id, m->mo.t_stop_ns);
	m->downtime_us = h->downtime_us;
	if (!ret && nops) {
		/* The holds and the rebind on the migration thread; the step after finishes. */
		m->job->ops = ops;
		m->job->n = nops;
		if (!job_queue(n, m->job)) {
			m->phase = NM_GIVING;
			return 0;
		}
		ret = job_run(n, m->job);	/* no thread: here */
		m->job->ops = NULL;
	}
	if (m->job) {
		for (i = 0; i < m->job->nfd; i++)
			close(m->job->fds[i]);
		m->job->nfd = 0;
	}
	free(ops);
	source_gave(n, m, ret);
	return 0;
}

/* Source: our blocks took the pages given back (@ret 0), or could not: the end. */
static void source_gave(struct serve_nmig *n, struct nmig *m, int ret)
{
	trace("source rebound", m->id, m->mo.t_stop_ns);
	if (ret) {
		/*
		 * The request is the destination's, but our blocks still have its
		 * pages: keep them out of the pool (a leak until exit, said aloud)
		 * rather than let two engines write one page.
		 */
		fprintf(stderr, "kvaccel-serve: migration %llu: the pages given back: %s: "
			"%llu blocks kept out of the pool\n", (unsigned long long)m->id,
			strerror(-ret), (unsigned long long)m->st.pages);
		serve_driver_migrate_keep(n->d, &m->mo);
	} else {
		serve_driver_migrate_done(n->d, &m->mo);
	}
	m->st.total_us = (mono_ns() - m->t0_ns) / 1000;
	m->st.downtime_us = m->downtime_us;
	if (n->ops.done)
		n->ops.done(n->arg, m->id, 0, &m->st);
	drop(n, m);
}

/* ---- the destination ---- */

/* Microseconds from @t_stop (the source's stop, the node's clock) to now. */
static uint64_t resumed_us(const struct nmig *m, uint64_t t_stop)
{
	uint64_t now = mono_ns();

	(void)m;
	return now > t_stop ? (now - t_stop) / 1000 : 0;
}

/*
 * Destination, giving up before COMMIT: its pre-bound blocks get their own
 * pages back (the source's regions go with the last block backed by them),
 * then the pre-allocation is freed.
 */
static void dest_cancel(struct serve_nmig *n, struct nmig *m)
{
	int ret;

	if (m->pre) {
		pthread_mutex_lock(&n->tier_lock);
		ret = hold_kept(n, m);
		if (!ret)
			ret = accel_tier_rebind(n->tier, m->back, m->pre);
		pthread_mutex_unlock(&n->tier_lock);
		if (ret) {
			/* Never freed with a page of the source's under it. */
			fprintf(stderr, "kvaccel-serve: migration %llu: binding its own pages "
				"back: %s: %u blocks kept out of the pool\n",
				(unsigned long long)m->id, strerror(-ret), m->pre);
			free(m->mi.blocks);
			memset(&m->mi, 0, sizeof(m->mi));
		}
		m->pre = 0;
	}
	close_kept(m);
	serve_driver_migrate_cancel(n->d, &m->mi);
}

/*
 * Destination, OFFER: bind the prepared blocks 0..pre-1 to the request's
 * pages (@h's), keeping what they had (m->back, their regions' fds) for
 * GIVEBACK or for binding back; *@given: those pages, READY's.
 */
static int prebind(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		   const int *fds, const enum accel_handoff_kind *kinds, unsigned int count,
		   struct serve_npage **given, int *nk)
{
	const struct serve_npage *pages = msg_pages(h);
	uint32_t i, pre = h->nr_pages, ntok = m->ohd.n_prompt + m->ohd.n_gen;
	struct accel_tier_rebind *ops = NULL;
	struct serve_npage *gv = NULL;
	int ret = 0;

	*nk = 0;
	if (!pre)
		return 0;
	if (pre > (ntok - 1) / m->ohd.block_tokens || pre > m->mi.nr_blocks ||
	    !pages_named(h, pages, pre))
		return -EPROTO;
	for (i = 0; i < pre; i++)
		if (pages[i].own != 1)
			return -EPROTO;
	ret = hold_regions(n, h, fds, kinds, count);
	if (ret)
		return ret;
	m->back = calloc(pre, sizeof(*m->back));
	ops = calloc(pre, sizeof(*ops));
	gv = calloc(pre, sizeof(*gv));
	if (!m->back || !ops || !gv)
		ret = -ENOMEM;
	for (i = 0; !ret && i < pre; i++) {
		struct accel_tier_page pg;

		ret = accel_tier_page(n->tier, m->mi.blocks[i], &pg);
		m->back[i] = (struct accel_tier_rebind) { .block = m->mi.blocks[i], .to = pg };
		gv[i] = (struct serve_npage) { .key = pg.key, .first = pg.first, .own = 1 };
		ops[i] = (struct accel_tier_rebind) {
			.block = m->mi.blocks[i],
			.to = { .key = pages[i].key, .first = pages[i].first },
		};
	}
	if (!ret)
		ret = keys_of(gv, pre, m->kkeys, NMSG_KEYS_MAX);
	if (ret >= 0) {
		*nk = ret;
		/* Their regions' fds first: a rebind may let a foreign one go. */
		for (ret = 0; !ret && m->nk < (uint32_t)*nk; m->nk++)
			ret = accel_tier_page_export(n->tier, m->kkeys[m->nk], &m->kfds[m->nk]);
		if (ret)
			m->nk--;
	}
	if (!ret)
		ret = accel_tier_rebind(n->tier, ops, pre);
	free(ops);
	if (ret) {
		close_kept(m);
		free(gv);
		return ret;
	}
	m->pre = pre;
	*given = gv;
	return 0;
}

static int on_offer(struct serve_nmig *n, const char *from, const struct serve_nmsg *h,
		    const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_migr_hdr *hd = msg_image(h);
	struct serve_nmsg rd = { .kind = SERVE_NMSG_READY, .id = h->id };
	struct serve_npage *given = NULL;
	size_t body_len = 0;
	char *body = NULL;
	struct nmig *m;
	int ret, nk = 0;

	m = add(n, h->id, from);
	if (!m)
		return -errno;
	m->mode = h->mode;
	ret = h->block_bytes != n->block_bytes || h->image_len < sizeof(*hd) ||
	      count != 1 + h->nr_keys || h->nr_back ||
	      (h->mode != SERVE_NMIG_ZERO_COPY && (h->nr_keys || h->nr_pages)) ? -EPROTO : 0;
	if (!ret) {
		/* Room to grow in place by the tokens decoded until the COMMIT. */
		m->image_cap = serve_migr_image_size(hd->n_prompt + hd->n_gen + NMIG_IMAGE_SLACK,
						     hd->n_gen + NMIG_IMAGE_SLACK);
		if (m->image_cap < h->image_len)
			m->image_cap = h->image_len;
		m->image = malloc(m->image_cap);
		ret = m->image ? 0 : -ENOMEM;
	}
	if (!ret) {
		memcpy(m->image, hd, h->image_len);
		m->image_len = h->image_len;
		m->ohd = *hd;
		m->base_tokens = hd->n_prompt + hd->n_gen;
		m->base_gen = hd->n_gen;
		if (m->mode == SERVE_NMIG_RECOMPUTE)
			ret = serve_migr_image_check(m->image, h->image_len,
				serve_migr_model_id(serve_engine_model(serve_driver_engine(n->d))),
				serve_engine_block_tokens(serve_driver_engine(n->d)),
				h->block_bytes);
		else
			ret = serve_driver_migrate_prepare(n->d, m->image, h->image_len, &m->mi);
	}
	if (!ret)
		ret = prebind(n, m, h, fds, kinds, count, &given, &nk);
	if (!ret) {
		rd.nr_keys = (uint32_t)nk;
		rd.nr_pages = m->pre;
		body = body_of(m->kkeys, rd.nr_keys, given, m->pre, NULL, 0, NULL, 0, &body_len);
		ret = body ? 0 : -ENOMEM;
	}
	free(given);
	if (ret) {
		send_simple(n, from, h->id, SERVE_NMSG_READY, ret, 0, NULL, 0);
		dest_cancel(n, m);
		drop(n, m);
		return 0;	/* the offer was taken; the refusal (or its failure) is ours to say */
	}
	ret = send_msg_fds(n, from, &rd, body, body_len, NULL, 0, m->kfds);
	free(body);
	if (ret) {
		dest_cancel(n, m);
		drop(n, m);
		return 0;
	}
	m->phase = NM_PREPARED;
	m->t0_ns = mono_ns();
	serve_nmig_hook("ready", m->id);
	return 0;
}


/* Destination: schedule it (QUEUED until there is a running slot for it). */
static void try_commit(struct serve_nmig *n, struct nmig *m)
{
	int ret = m->recompute ?
		serve_driver_migrate_recompute(n->d, m->image, m->image_len, &m->nh) :
		serve_driver_migrate_commit(n->d, &m->mi, &m->nh);

	if (ret == -EBUSY) {
		m->phase = NM_QUEUED;	/* no running slot yet: the next step tries again */
		return;
	}
	if (ret) {
		fprintf(stderr, "kvaccel-serve: migration %llu from %s: %s: the request is lost\n",
			(unsigned long long)m->id, m->peer, strerror(-ret));
		drop(n, m);
		return;
	}
	m->phase = NM_ARRIVED;
	m->st.downtime_us = resumed_us(m, m->t_stop_ns);
}

/*
 * Destination, COMMIT: the image prepared for grows by COMMIT's delta, in
 * place where it has room (only the digests move: no work in the prompt's
 * length). -EPROTO: a delta not of this request's OFFER.
 */
static int grow_image(struct nmig *m, const struct serve_nmsg *h)
{
	const struct serve_migr_hdr *dh = msg_image(h);
	uint32_t n, nt, ng, bt = m->base_tokens, bg = m->base_gen;
	size_t len;
	char *img;

	if (h->image_len < sizeof(*dh) || h->base_tokens != bt || h->base_gen != bg ||
	    dh->n_prompt != m->ohd.n_prompt || dh->n_gen < bg || dh->n_gen > (1u << 24))
		return -EPROTO;
	n = dh->n_prompt + dh->n_gen;
	nt = n - bt;
	ng = dh->n_gen - bg;
	if (h->image_len != serve_nmig_delta_size(nt, ng))
		return -EPROTO;
	len = serve_migr_image_size(n, dh->n_gen);
	if (len > m->image_cap) {
		img = realloc(m->image, len);
		if (!img)
			return -ENOMEM;
		m->image = img;
		m->image_cap = len;
		if (m->mi.hdr)
			m->mi.hdr = (const void *)img;
	}
	img = m->image;
	/* The old digests after the new tokens, then the new ones, then the header. */
	memmove(img + len - (size_t)dh->n_gen * 8, img + m->image_len - (size_t)bg * 8,
		(size_t)bg * 8);
	memcpy(img + len - (size_t)ng * 8, (const char *)dh + serve_nmig_delta_size(nt, 0),
	       (size_t)ng * 8);
	memcpy(img + sizeof(*dh) + (size_t)bt * 4, dh + 1, (size_t)nt * 4);
	memcpy(img, dh, sizeof(*dh));
	m->image_len = len;
	return 0;
}

/*
 * Destination, COMMIT: the final image, the pages. Refused (-errno), the
 * source resumes and we give up (our pre-bound blocks bound back); taken
 * (0), the request is ours.
 */
static int on_commit(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		     const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_npage *pages = msg_pages(h);
	const uint32_t *bk = msg_back(h);
	const char *bytes = (const char *)msg_image(h) + h->image_len;
	const struct serve_migr_hdr *hd;
	struct serve_nmsg gb = { .kind = SERVE_NMSG_GIVEBACK, .id = m->id };
	struct accel_tier_rebind *ops = NULL, *rb = NULL;
	struct serve_npage *given = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	int gfds[NMSG_KEYS_MAX];
	uint32_t i, own = 0, shared = 0, k = 0, nops = 0, ngfd = 0, pre = m->pre;
	size_t body_len = 0;
	char *body = NULL;
	int ret;

	serve_nmig_hook("commit-in", m->id);
	if (m->phase != NM_PREPARED || h->mode != m->mode || h->block_bytes != n->block_bytes ||
	    h->pre != pre || h->nr_back > pre)
		return -EPROTO;
	for (i = 0; i < h->nr_pages; i++) {
		if (pages[i].own > 1)
			return -EPROTO;
		own += pages[i].own;
	}
	for (i = 0; i < h->nr_back; i++)
		if (bk[i] >= pre || (i && bk[i] <= bk[i - 1]))
			return -EPROTO;
	if (h->size != sizeof(*h) + (uint64_t)h->nr_keys * 8 +
	    (uint64_t)h->nr_pages * sizeof(*pages) + back_bytes(h->nr_back) + h->image_len +
	    (uint64_t)(h->nr_pages - own + h->nr_back) * h->block_bytes ||
	    !pages_named(h, pages, h->nr_pages))
		return -EPROTO;
	trace("COMMIT taken", m->id, ((const struct serve_migr_hdr *)msg_image(h))->t_stop_ns);
	ret = grow_image(m, h);
	if (ret)
		goto refused;
	hd = m->image;
	if (m->recompute || m->mode == SERVE_NMIG_RECOMPUTE) {
		ret = h->nr_pages || pre ? -EPROTO :
			serve_migr_image_check(hd, m->image_len, hd->model, hd->block_tokens,
					       hd->block_bytes);
		if (!ret) {
			gb.downtime_us = 0;	/* runnable, but not decoding before its prefill */
			ret = send_msg(n, m->peer, &gb, NULL, 0, NULL, 0);
		}
		if (ret)
			goto refused;
		m->recompute = true;
		goto schedule;
	}
	ret = serve_driver_migrate_grown(n->d, &m->mi, m->image_len, m->base_tokens,
					 m->ohd.model, m->ohd.seed, m->ohd.max_tokens);
	trace("extended", m->id, hd->t_stop_ns);
	if (!ret && m->mi.nr_blocks != pre + h->nr_pages)
		ret = -EPROTO;
	if (!ret)
		ret = hold_regions(n, h, fds, kinds, count);
	if (!ret && h->nr_back)
		ret = hold_kept(n, m);	/* the back blocks' own pages */
	trace("regions held", m->id, hd->t_stop_ns);
	ops = calloc(own + h->nr_back + 1, sizeof(*ops));
	rb = calloc(own + h->nr_back + 1, sizeof(*rb));
	given = calloc(own + 1, sizeof(*given));
	if (!ret && (!ops || !rb || !given))
		ret = -ENOMEM;
	/*
	 * Our blocks past the pre-bound ones: the shared ones' bytes copied in,
	 * the own ones to the request's pages; back blocks to our own pages.
	 */
	for (i = 0; !ret && i < h->nr_pages; i++) {
		uint32_t b = m->mi.blocks[pre + i];
		struct accel_tier_page pg;

		if (!pages[i].own) {
			memcpy(accel_tier_block_addr(n->tier, b),
			       bytes + (size_t)shared++ * h->block_bytes, h->block_bytes);
			continue;
		}
		ret = accel_tier_page(n->tier, b, &pg);
		given[k++] = (struct serve_npage) { .key = pg.key, .first = pg.first, .own = 1 };
		rb[nops] = (struct accel_tier_rebind) { .block = b, .to = pg };
		ops[nops++] = (struct accel_tier_rebind) {
			.block = b, .to = { .key = pages[i].key, .first = pages[i].first },
		};
	}
	for (i = 0; !ret && i < h->nr_back; i++) {
		struct accel_tier_page pg;

		ret = accel_tier_page(n->tier, m->back[bk[i]].block, &pg);
		rb[nops] = (struct accel_tier_rebind) { .block = m->back[bk[i]].block, .to = pg };
		ops[nops++] = m->back[bk[i]];
	}
	if (!ret)
		ret = keys_of(given, k, keys, NMSG_KEYS_MAX);
	if (ret >= 0) {
		gb.nr_keys = (uint32_t)ret;
		gb.nr_pages = k;
		body = body_of(keys, gb.nr_keys, given, k, NULL, 0, NULL, 0, &body_len);
		ret = body ? 0 : -ENOMEM;
	}
	/* The given pages' regions first: the rebind may let a foreign one go. */
	for (; !ret && ngfd < gb.nr_keys; ngfd++)
		ret = accel_tier_page_export(n->tier, keys[ngfd], &gfds[ngfd]);
	if (ret && ngfd)
		ngfd--;
	if (!ret) {
		ret = nops ? accel_tier_rebind(n->tier, ops, nops) : 0;
		trace("rebound", m->id, hd->t_stop_ns);
	}
	for (i = 0; !ret && i < h->nr_back; i++)
		memcpy(accel_tier_block_addr(n->tier, m->back[bk[i]].block),
		       bytes + (size_t)(shared + i) * h->block_bytes, h->block_bytes);
	if (!ret) {
		gb.downtime_us = resumed_us(m, hd->t_stop_ns);
		ret = send_msg_fds(n, m->peer, &gb, body, body_len, NULL, 0, gfds);
		if (ret && nops && accel_tier_rebind(n->tier, rb, nops))
			fprintf(stderr, "kvaccel-serve: migration %llu: the COMMIT refused, its "
				"blocks could not be bound back\n", (unsigned long long)m->id);
	}
	for (i = 0; i < ngfd; i++)
		close(gfds[i]);
	free(ops);
	free(rb);
	free(given);
	free(body);
	if (ret)
		goto refused;
	/* Ours now: the pre-bound blocks are the request's, nothing to bind back. */
	m->pre = 0;
	close_kept(m);
schedule:
	m->t_last_ns = hd->t_last_ns;
	m->t_stop_ns = hd->t_stop_ns;
	m->gen0 = hd->n_gen;
	m->st.blocks = m->recompute ? 0 : m->mi.nr_blocks;
	m->st.pages = own + pre - h->nr_back;
	m->st.bytes_copied = (uint64_t)(shared + h->nr_back) * h->block_bytes;
	m->st.tokens = hd->n_prompt + hd->n_gen;
	trace("GIVEBACK sent", m->id, hd->t_stop_ns);
	try_commit(n, m);
	trace("scheduled", m->id, hd->t_stop_ns);
	return 0;
refused:
	/* The source resumes it: what we prepared (our image grew already) goes. */
	dest_cancel(n, m);
	drop(n, m);
	return ret;
}

int serve_nmig_receive(struct serve_nmig *n, const char *from, const int *fds,
		       const enum accel_handoff_kind *kinds, unsigned int count)
{
	struct serve_nmsg *h;
	struct nmig *m;
	uint64_t t0;
	int ret;

	if (!n || !from || !fds || !kinds || !count || kinds[0] != ACCEL_HANDOFF_MEMFD)
		return -EPROTO;
	t0 = mono_ns();
	ret = read_msg(fds[0], &h);
	if (ret)
		return ret;
	pthread_mutex_lock(&n->tier_lock);
	m = find(n, h->id);
	if (h->kind == SERVE_NMSG_OFFER)
		ret = m ? -EEXIST : on_offer(n, from, h, fds, kinds, count);
	else if (!m || strcmp(m->peer, from))
		ret = -ENOENT;
	else if (h->kind == SERVE_NMSG_READY)
		ret = on_ready(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_COMMIT)
		ret = on_commit(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_GIVEBACK)
		ret = on_giveback(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_ABORT && m->phase == NM_PREPARED) {
		dest_cancel(n, m);
		drop(n, m);
		ret = 0;
	} else {
		ret = -EPROTO;
	}
	pthread_mutex_unlock(&n->tier_lock);
	busy_trace("handled", h->kind, h->id, t0);
	free(h);
	return ret;
}

void serve_nmig_sent(struct serve_nmig *n, uint64_t tag, int status)
{
	struct nmig *m = n ? find(n, tag >> 3) : NULL;
	uint32_t kind = (uint32_t)(tag & 7);

	if (!m || !status)
		return;
	if ((kind == SERVE_NMSG_OFFER && m->phase == NM_OFFERED) ||
	    (kind == SERVE_NMSG_COMMIT && m->phase == NM_COMMITTED)) {
		/* The destination never took it: the request decodes here (again). */
		source_failed(n, m, status);
		return;
	}
	if (kind == SERVE_NMSG_READY && m->phase == NM_PREPARED) {
		dest_cancel(n, m);	/* the source never heard */
		drop(n, m);
	}
	/* A GIVEBACK not taken: the source is gone; the request is ours anyway. */
}

void serve_nmig_abort(struct serve_nmig *n, uint64_t id)
{
	struct nmig *m = n ? find(n, id) : NULL;

	if (!m)
		return;
	switch (m->phase) {
	case NM_OFFERED:
		source_failed(n, m, -ECONNABORTED);	/* never stopped */
		break;
	case NM_PREPARED:
		dest_cancel(n, m);
		drop(n, m);
		break;
	default:
		break;	/* COMMIT sent or taken: its hand-off's end decides */
	}
}

void serve_nmig_step(struct serve_nmig *n)
{
	uint64_t now = mono_ns(), limit;
	unsigned int i;

	if (!n)
		return;
	limit = (uint64_t)n->timeout_ms * 1000000;
	for (i = 0; i < n->nr; i++) {
		struct nmig *m = &n->m[i];
		struct serve_driver_info in;

		if (m->phase == NM_GIVING && job_done(n, m->job)) {
			uint64_t t0 = mono_ns(), id = m->id;

			source_gave(n, m, m->job->ret);
			busy_trace("rebound after", SERVE_NMSG_GIVEBACK, id, t0);
			i--;
			continue;
		}
		if (m->phase == NM_COMMITTED && now - m->t_commit_ns > limit) {
			/*
			 * Stopped, COMMIT sent, and neither its end nor GIVEBACK came
			 * (the daemon gone for good): the destination may run it, so it
			 * cannot resume here. It fails to its client, its blocks stay
			 * out of the pool (their pages may be the destination's now).
			 */
			fprintf(stderr, "kvaccel-serve: migration %llu with %s: no word %u ms "
				"after its COMMIT: request %u failed here (it may go on there)\n",
				(unsigned long long)m->id, m->peer, n->timeout_ms, m->h);
			serve_driver_migrate_keep(n->d, &m->mo);
			serve_driver_migrate_lost(n->d, m->h);
			if (n->ops.done)
				n->ops.done(n->arg, m->id, -ETIMEDOUT, &m->st);
			drop(n, m);
			i--;
			continue;
		}
		if ((m->phase == NM_PREPARED || m->phase == NM_OFFERED) && now - m->t0_ns > limit) {
			fprintf(stderr, "kvaccel-serve: migration %llu with %s: nothing heard in %u "
				"ms: given up\n", (unsigned long long)m->id, m->peer, n->timeout_ms);
			if (m->phase == NM_OFFERED) {
				source_failed(n, m, -ETIMEDOUT);
			} else {
				dest_cancel(n, m);
				drop(n, m);
			}
			i--;
			continue;
		}
		if (m->phase == NM_QUEUED) {
			try_commit(n, m);
			if (i < n->nr && &n->m[i] == m && m->phase == NM_QUEUED)
				continue;
			i--;	/* dropped, or arrived: looked at again */
			continue;
		}
		if (m->phase != NM_ARRIVED || serve_driver_info(n->d, m->nh, &in))
			continue;
		if (in.req.n_generated <= m->gen0 && in.req.state == SERVE_RUNNING)
			continue;
		m->st.gap_us = in.sched.last_token_ns > m->t_last_ns ?
			       (in.sched.last_token_ns - m->t_last_ns) / 1000 : 0;
		if (m->recompute)	/* stopped until its KV was computed again */
			m->st.downtime_us = in.sched.last_token_ns > m->t_stop_ns ?
					    (in.sched.last_token_ns - m->t_stop_ns) / 1000 : 0;
		if (n->ops.arrived)
			n->ops.arrived(n->arg, m->id, m->nh, m->peer, m->image, &m->st);
		drop(n, m);
		i--;
	}
}

unsigned int serve_nmig_pending(const struct serve_nmig *n)
{
	return n ? n->nr : 0;
}

void serve_nmig_destroy(struct serve_nmig *n)
{
	if (!n)
		return;
	if (n->thread_up) {
		/* It runs what is queued, then ends. */
		pthread_mutex_lock(&n->lock);
		n->stop = true;
		pthread_cond_signal(&n->cond);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->thread, NULL);
	}
	while (n->nr) {
		struct nmig *m = &n->m[0];

		if (m->phase == NM_COMMITTED)
			serve_driver_migrate_undo(n->d, &m->mo);
		else if (m->phase == NM_GIVING && !m->job->ret)
			serve_driver_migrate_done(n->d, &m->mo);
		else if (m->phase == NM_GIVING)
			serve_driver_migrate_keep(n->d, &m->mo);
		else if (m->phase == NM_PREPARED || m->phase == NM_QUEUED)
			dest_cancel(n, m);
		drop(n, m);
	}
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->tier_lock);
	pthread_cond_destroy(&n->cond);
	free(n->m);
	free(n);
}
