// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - a node's zero-copy live migration (migrate_node.h): the
 * three messages, each side's record of a migration in flight, the page
 * exchange on window tiers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "migrate_node.h"

/* Regions named by one message: at most the hand-off's fds but the memfd. */
#define NMSG_KEYS_MAX	(ACCEL_HANDOFF_MAX - 1)

enum nmig_phase {
	NM_OFFERED = 1,		/* source: OFFER sent, the request decoding, waiting for READY */
	NM_COMMITTED,		/* source: stopped, COMMIT sent, waiting for GIVEBACK */
	NM_PREPARED,		/* destination: READY sent, waiting for COMMIT */
	NM_QUEUED,		/* destination: took COMMIT, waiting for a running slot */
	NM_ARRIVED,		/* destination: scheduled, waiting for its first token */
};

struct nmig {
	uint64_t id;
	enum nmig_phase phase;
	char peer[32];
	uint64_t t0_ns;
	struct serve_nmig_stats st;
	/* Source. */
	struct serve_migr_out mo;
	uint32_t h;
	/* Destination. */
	void *image;			/* the latest image (mi.hdr points into it) */
	struct serve_migr_in mi;
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
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* SERVE_MIGR_TRACE=1: where a migration's downtime goes, microseconds from the stop. */
static void trace(const char *what, uint64_t id, uint64_t t_stop)
{
	static int on = -1;

	if (on < 0)
		on = getenv("SERVE_MIGR_TRACE") != NULL;
	if (on)
		fprintf(stderr, "kvaccel-serve: migration %llu: %s at +%llu us\n",
			(unsigned long long)id, what,
			(unsigned long long)((mono_ns() - t_stop) / 1000));
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
	return n;
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

static void drop(struct serve_nmig *n, struct nmig *m)
{
	free(m->image);
	*m = n->m[--n->nr];
}

/* ---- messages ---- */

/* A sealed memfd holding @a then @b (either may be empty), then @c. */
static int memfd_of(const void *a, size_t la, const void *b, size_t lb, const void *c, size_t lc)
{
	int fd = memfd_create("kvaccel-migration", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t len = la + lb + lc;
	char *map;
	int e;

	if (fd < 0)
		return -errno;
	/* Written through a mapping: a user memcpy, not the kernel's copy of write(). */
	if (ftruncate(fd, (off_t)len))
		goto fail;
	map = mmap(NULL, len, PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto fail;
	if (la)
		memcpy(map, a, la);
	if (lb)
		memcpy(map + la, b, lb);
	if (lc)
		memcpy(map + la + lb, c, lc);
	munmap(map, len);	/* before F_SEAL_WRITE, which a writable mapping refuses */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL))
		goto fail;
	return fd;
fail:
	e = -errno;
	close(fd);
	return e;
}

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
 * Send message @h (its keys and pages after it in @body, @body_len bytes,
 * then @tail) with the regions of its keys to @to.
 */
static int send_msg(struct serve_nmig *n, const char *to, struct serve_nmsg *h,
		    const void *body, size_t body_len, const void *tail, size_t tail_len)
{
	enum accel_handoff_kind kinds[ACCEL_HANDOFF_MAX];
	int fds[ACCEL_HANDOFF_MAX];
	const uint64_t *keys = body;
	unsigned int nfd = 0, i;
	int ret;

	h->magic = SERVE_NMSG_MAGIC;
	h->size = sizeof(*h) + body_len + tail_len;
	ret = memfd_of(h, sizeof(*h), body, body_len, tail, tail_len);
	if (ret < 0)
		return ret;
	fds[nfd] = ret;
	kinds[nfd++] = ACCEL_HANDOFF_MEMFD;
	for (i = 0; i < h->nr_keys; i++) {
		ret = accel_tier_page_export(n->tier, keys[i], &fds[nfd]);
		if (ret)
			goto out;
		kinds[nfd++] = ACCEL_HANDOFF_REGION;
	}
	ret = n->ops.send(n->arg, to, serve_nmig_tag(h->id, h->kind), fds, kinds, nfd);
out:
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	return ret;
}

/* The memfd's bytes, checked: a malloc'd copy. */
static int read_msg(int fd, struct serve_nmsg **out)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	struct serve_nmsg *h;
	struct stat st;
	void *map;
	int seals;

	/* Sealed: nobody can shrink it under the mapping (no SIGBUS) or change it. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & need) != need || fstat(fd, &st) ||
	    st.st_size < (off_t)sizeof(*h) || (uint64_t)st.st_size > ACCEL_HANDOFF_MEMFD_MAX)
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
	if (h->magic != SERVE_NMSG_MAGIC || h->size != (uint64_t)st.st_size ||
	    h->mode >= SERVE_NMIG_NR_MODES ||
	    (h->mode && h->kind != SERVE_NMSG_OFFER && h->kind != SERVE_NMSG_COMMIT) ||
	    h->nr_keys > NMSG_KEYS_MAX || h->nr_pages > (1u << 24) ||
	    sizeof(*h) + (uint64_t)h->nr_keys * 8 + (uint64_t)h->nr_pages *
	    sizeof(struct serve_npage) + h->image_len > h->size) {
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

static const void *msg_image(const struct serve_nmsg *h)
{
	return msg_pages(h) + h->nr_pages;
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

/* A message with no keys and no pages: OFFER's and COMMIT's images, READY, ABORT. */
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

int serve_nmig_start_mode(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to,
			  uint32_t mode)
{
	struct nmig *m;
	size_t len;
	void *image;
	int ret;

	if (!n || !to || !*to || mode >= SERVE_NMIG_NR_MODES)
		return -EINVAL;
	for (unsigned int i = 0; i < n->nr; i++)
		if ((n->m[i].phase == NM_OFFERED || n->m[i].phase == NM_COMMITTED) &&
		    n->m[i].h == h)
			return -EBUSY;	/* on its way already */
	ret = serve_driver_migrate_peek(n->d, h, &image, &len);
	if (ret)
		return ret;
	m = add(n, id, to);
	if (!m) {
		free(image);
		return -errno;
	}
	m->h = h;
	m->mode = mode;
	ret = send_simple(n, to, id, SERVE_NMSG_OFFER, 0, mode, image, len);
	free(image);
	if (ret) {
		drop(n, m);
		return ret;
	}
	m->phase = NM_OFFERED;
	return 0;
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

/* Source, READY: stop the request now (a step boundary) and send COMMIT. */
static int on_ready(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h)
{
	struct serve_nmsg msg = { .kind = SERVE_NMSG_COMMIT, .id = m->id, .mode = m->mode,
				  .block_bytes = n->block_bytes };
	struct serve_npage *pages = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	char *body = NULL, *tail = NULL;
	size_t body_len, tail_len;
	uint32_t i, shared = 0;
	int ret;

	if (m->phase != NM_OFFERED)
		return -EPROTO;
	if (h->status < 0) {
		source_failed(n, m, h->status);	/* refused: it never stopped */
		return 0;
	}
	ret = serve_driver_migrate_out(n->d, m->h, m->mode ? 0 : SERVE_MIGR_GIVE_PAGES, &m->mo);
	trace("stopped", m->id, m->mo.t_stop_ns);
	if (ret) {
		/* Finished, preempted or swapped meanwhile: it stays here. */
		send_simple(n, m->peer, m->id, SERVE_NMSG_ABORT, ret, 0, NULL, 0);
		source_failed(n, m, ret == -EINVAL ? -ECANCELED : ret);
		return 0;
	}
	m->phase = NM_COMMITTED;
	if (!m->mo.own) {
		/* Nothing changes hands: copied (COPY), or not sent at all (RECOMPUTE). */
		m->mo.own = calloc(m->mo.nr_blocks + 1, 1);
		if (m->mode == SERVE_NMIG_RECOMPUTE)
			m->mo.nr_blocks = 0;
	}
	pages = calloc(m->mo.nr_blocks + 1, sizeof(*pages));
	ret = pages && m->mo.own ? 0 : -ENOMEM;
	for (i = 0; !ret && i < m->mo.nr_blocks; i++) {
		struct accel_tier_page pg;

		ret = accel_tier_page(n->tier, m->mo.blocks[i], &pg);
		pages[i] = (struct serve_npage) { .key = pg.key, .first = pg.first,
						  .own = m->mo.own[i] };
		shared += !m->mo.own[i];
	}
	if (!ret)
		ret = keys_of(pages, m->mo.nr_blocks, keys, NMSG_KEYS_MAX);
	if (ret < 0)
		goto fail;
	msg.nr_keys = (uint32_t)ret;
	msg.nr_pages = m->mo.nr_blocks;
	msg.image_len = m->mo.len;
	/* Body: keys, pages, image; tail: the shared blocks' bytes. */
	body_len = msg.nr_keys * 8 + (size_t)msg.nr_pages * sizeof(*pages) + m->mo.len;
	body = malloc(body_len);
	tail_len = (size_t)shared * n->block_bytes;
	tail = tail_len ? malloc(tail_len) : NULL;
	if (!body || (tail_len && !tail)) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(body, keys, msg.nr_keys * 8);
	memcpy(body + msg.nr_keys * 8, pages, (size_t)msg.nr_pages * sizeof(*pages));
	memcpy(body + msg.nr_keys * 8 + (size_t)msg.nr_pages * sizeof(*pages), m->mo.image,
	       m->mo.len);
	for (i = 0, shared = 0; i < m->mo.nr_blocks; i++)
		if (!m->mo.own[i])
			memcpy(tail + (size_t)shared++ * n->block_bytes,
			       accel_tier_block_addr(n->tier, m->mo.blocks[i]), n->block_bytes);
	trace("COMMIT built", m->id, m->mo.t_stop_ns);
	ret = send_msg(n, m->peer, &msg, body, body_len, tail, tail_len);
	trace("COMMIT sent", m->id, m->mo.t_stop_ns);
	if (ret)
		goto fail;
	m->st.blocks = m->mo.nr_blocks;
	m->st.bytes_copied = tail_len;
	m->st.pages = m->mo.nr_blocks - shared;
	m->st.tokens = ((const struct serve_migr_hdr *)m->mo.image)->n_prompt +
		       ((const struct serve_migr_hdr *)m->mo.image)->n_gen;
	free(pages);
	free(body);
	free(tail);
	return 0;
fail:
	send_simple(n, m->peer, m->id, SERVE_NMSG_ABORT, ret, 0, NULL, 0);
	source_failed(n, m, ret);
	free(pages);
	free(body);
	free(tail);
	return 0;
}

/* Source, GIVEBACK: the destination runs it; our blocks take the pages given, then go. */
static int on_giveback(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		       const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_npage *given = msg_pages(h);
	struct accel_tier_rebind *ops;
	uint32_t i, k = 0;
	int ret;

	if (m->phase != NM_COMMITTED)
		return -EPROTO;
	ret = h->nr_pages == m->st.pages && pages_named(h, given, h->nr_pages) ? 0 : -EPROTO;
	if (!ret)
		ret = hold_regions(n, h, fds, kinds, count);
	ops = calloc(m->st.pages + 1, sizeof(*ops));
	if (!ret && !ops)
		ret = -ENOMEM;
	for (i = 0; !ret && i < m->mo.nr_blocks; i++) {
		if (!m->mo.own[i])
			continue;
		if (!given[k].own) {
			ret = -EPROTO;
			break;
		}
		ops[k] = (struct accel_tier_rebind) {
			.block = m->mo.blocks[i],
			.to = { .key = given[k].key, .first = given[k].first },
		};
		k++;
	}
	trace("GIVEBACK taken", m->id, m->mo.t_stop_ns);
	if (!ret && k)
		ret = accel_tier_rebind(n->tier, ops, k);
	trace("source rebound", m->id, m->mo.t_stop_ns);
	free(ops);
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
	m->st.downtime_us = h->downtime_us;
	if (n->ops.done)
		n->ops.done(n->arg, m->id, 0, &m->st);
	drop(n, m);
	return 0;
}

/* ---- the destination ---- */

/* Microseconds from @t_stop (the source's stop, the node's clock) to now. */
static uint64_t resumed_us(const struct nmig *m, uint64_t t_stop)
{
	uint64_t now = mono_ns();

	(void)m;
	return now > t_stop ? (now - t_stop) / 1000 : 0;
}

static int on_offer(struct serve_nmig *n, const char *from, const struct serve_nmsg *h)
{
	const struct serve_migr_hdr *hd = msg_image(h);
	struct nmig *m;
	int ret;

	m = add(n, h->id, from);
	if (!m)
		return -errno;
	m->mode = h->mode;
	ret = h->block_bytes != n->block_bytes || h->nr_keys || h->nr_pages ? -EPROTO : 0;
	if (!ret) {
		m->image = malloc(h->image_len ? h->image_len : 1);
		ret = m->image ? 0 : -ENOMEM;
	}
	if (!ret) {
		memcpy(m->image, hd, h->image_len);
		m->image_len = h->image_len;
		if (m->mode == SERVE_NMIG_RECOMPUTE)
			ret = serve_migr_image_check(m->image, h->image_len,
				serve_migr_model_id(serve_engine_model(serve_driver_engine(n->d))),
				serve_engine_block_tokens(serve_driver_engine(n->d)),
				h->block_bytes);
		else
			ret = serve_driver_migrate_prepare(n->d, m->image, h->image_len, &m->mi);
	}
	if (send_simple(n, from, h->id, SERVE_NMSG_READY, ret, 0, NULL, 0) || ret) {
		serve_driver_migrate_cancel(n->d, &m->mi);
		drop(n, m);
		return 0;	/* the offer was taken; the refusal (or its failure) is ours to say */
	}
	m->phase = NM_PREPARED;
	m->t0_ns = mono_ns();
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
 * Destination, COMMIT: the final image, the pages. Refused (-errno) with
 * nothing changed, the source resumes; taken (0), the request is ours.
 */
static int on_commit(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		     const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	const struct serve_npage *pages = msg_pages(h);
	const char *bytes = (const char *)msg_image(h) + h->image_len;
	const struct serve_migr_hdr *hd;
	struct serve_nmsg gb = { .kind = SERVE_NMSG_GIVEBACK, .id = m->id };
	struct accel_tier_rebind *ops = NULL, *back = NULL;
	struct serve_npage *given = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	uint32_t i, own = 0, shared = 0, k = 0;
	void *image;
	char *body = NULL;
	int ret;

	if (m->phase != NM_PREPARED || h->mode != m->mode || h->block_bytes != n->block_bytes)
		return -EPROTO;
	for (i = 0; i < h->nr_pages; i++) {
		if (pages[i].own > 1)
			return -EPROTO;
		own += pages[i].own;
	}
	if (h->size != sizeof(*h) + (uint64_t)h->nr_keys * 8 +
	    (uint64_t)h->nr_pages * sizeof(*pages) + h->image_len +
	    (uint64_t)(h->nr_pages - own) * h->block_bytes || !pages_named(h, pages, h->nr_pages))
		return -EPROTO;
	image = malloc(h->image_len ? h->image_len : 1);
	if (!image)
		return -ENOMEM;
	memcpy(image, msg_image(h), h->image_len);
	hd = image;
	if (m->recompute || m->mode == SERVE_NMIG_RECOMPUTE) {
		ret = h->nr_pages ? -EPROTO :
			serve_migr_image_check(image, h->image_len, hd->model, hd->block_tokens,
					       hd->block_bytes);
		if (ret) {
			free(image);
			return ret;
		}
		gb.downtime_us = 0;	/* runnable, but not decoding before its prefill */
		ret = send_msg(n, m->peer, &gb, NULL, 0, NULL, 0);
		if (ret) {
			free(image);
			return ret;
		}
		free(m->image);
		m->image = image;
		m->image_len = h->image_len;
		m->recompute = true;
		goto schedule;
	}
	trace("COMMIT taken", m->id, hd->t_stop_ns);
	ret = serve_driver_migrate_extend(n->d, &m->mi, image, h->image_len);
	trace("extended", m->id, hd->t_stop_ns);
	if (!ret && m->mi.nr_blocks != h->nr_pages)
		ret = -EPROTO;
	if (!ret)
		ret = hold_regions(n, h, fds, kinds, count);
	trace("regions held", m->id, hd->t_stop_ns);
	ops = calloc(own + 1, sizeof(*ops));
	back = calloc(own + 1, sizeof(*back));
	given = calloc(own + 1, sizeof(*given));
	if (!ret && (!ops || !back || !given))
		ret = -ENOMEM;
	/* Our blocks: the shared ones' bytes copied in; the own ones to the request's pages. */
	for (i = 0; !ret && i < h->nr_pages; i++) {
		struct accel_tier_page pg;

		if (!pages[i].own) {
			memcpy(accel_tier_block_addr(n->tier, m->mi.blocks[i]),
			       bytes + (size_t)shared++ * h->block_bytes, h->block_bytes);
			continue;
		}
		ret = accel_tier_page(n->tier, m->mi.blocks[i], &pg);
		given[k] = (struct serve_npage) { .key = pg.key, .first = pg.first, .own = 1 };
		back[k] = (struct accel_tier_rebind) { .block = m->mi.blocks[i], .to = pg };
		ops[k++] = (struct accel_tier_rebind) {
			.block = m->mi.blocks[i],
			.to = { .key = pages[i].key, .first = pages[i].first },
		};
	}
	if (!ret)
		ret = keys_of(given, k, keys, NMSG_KEYS_MAX);
	if (ret >= 0) {
		gb.nr_keys = (uint32_t)ret;
		gb.nr_pages = k;
		body = malloc(gb.nr_keys * 8 + (size_t)k * sizeof(*given) + 1);
		ret = body ? 0 : -ENOMEM;
	}
	if (!ret) {
		memcpy(body, keys, gb.nr_keys * 8);
		memcpy(body + gb.nr_keys * 8, given, (size_t)k * sizeof(*given));
		/* Export the pages given before the rebind may let their regions go. */
		ret = k ? accel_tier_rebind(n->tier, ops, k) : 0;
		trace("rebound", m->id, hd->t_stop_ns);
	}
	if (!ret) {
		gb.downtime_us = resumed_us(m, hd->t_stop_ns);
		ret = send_msg(n, m->peer, &gb, body, gb.nr_keys * 8 + (size_t)k * sizeof(*given),
			       NULL, 0);
		if (ret && k)
			accel_tier_rebind(n->tier, back, k);	/* refused: as it was */
	}
	free(ops);
	free(back);
	free(given);
	free(body);
	if (ret) {
		if (m->image != image)
			free(image);
		return ret;	/* the source resumes it */
	}
	free(m->image);
	m->image = image;
	m->image_len = h->image_len;
schedule:
	m->t_last_ns = hd->t_last_ns;
	m->t_stop_ns = hd->t_stop_ns;
	m->gen0 = hd->n_gen;
	m->st.blocks = h->nr_pages;
	m->st.pages = own;
	m->st.bytes_copied = (uint64_t)shared * h->block_bytes;
	m->st.tokens = hd->n_prompt + hd->n_gen;
	trace("GIVEBACK sent", m->id, hd->t_stop_ns);
	try_commit(n, m);
	trace("scheduled", m->id, hd->t_stop_ns);
	return 0;
}

int serve_nmig_receive(struct serve_nmig *n, const char *from, const int *fds,
		       const enum accel_handoff_kind *kinds, unsigned int count)
{
	struct serve_nmsg *h;
	struct nmig *m;
	int ret;

	if (!n || !from || !fds || !kinds || !count || kinds[0] != ACCEL_HANDOFF_MEMFD)
		return -EPROTO;
	ret = read_msg(fds[0], &h);
	if (ret)
		return ret;
	m = find(n, h->id);
	if (h->kind == SERVE_NMSG_OFFER)
		ret = m ? -EEXIST : count == 1 ? on_offer(n, from, h) : -EPROTO;
	else if (!m || strcmp(m->peer, from))
		ret = -ENOENT;
	else if (h->kind == SERVE_NMSG_READY)
		ret = count == 1 ? on_ready(n, m, h) : -EPROTO;
	else if (h->kind == SERVE_NMSG_COMMIT)
		ret = on_commit(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_GIVEBACK)
		ret = on_giveback(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_ABORT && m->phase == NM_PREPARED) {
		serve_driver_migrate_cancel(n->d, &m->mi);
		drop(n, m);
		ret = 0;
	} else {
		ret = -EPROTO;
	}
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
		serve_driver_migrate_cancel(n->d, &m->mi);	/* the source never heard */
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
		serve_driver_migrate_cancel(n->d, &m->mi);
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

		if ((m->phase == NM_PREPARED || m->phase == NM_OFFERED) && now - m->t0_ns > limit) {
			fprintf(stderr, "kvaccel-serve: migration %llu with %s: nothing heard in %u "
				"ms: given up\n", (unsigned long long)m->id, m->peer, n->timeout_ms);
			if (m->phase == NM_OFFERED) {
				source_failed(n, m, -ETIMEDOUT);
			} else {
				serve_driver_migrate_cancel(n->d, &m->mi);
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
	while (n->nr) {
		struct nmig *m = &n->m[0];

		if (m->phase == NM_COMMITTED)
			serve_driver_migrate_undo(n->d, &m->mo);
		else if (m->phase == NM_PREPARED || m->phase == NM_QUEUED)
			serve_driver_migrate_cancel(n->d, &m->mi);
		drop(n, m);
	}
	free(n->m);
	free(n);
}
