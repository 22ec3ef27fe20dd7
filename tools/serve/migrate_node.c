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
	NM_OFFERED = 1,		/* source: OFFER sent, waiting for PREPARED */
	NM_COMMITTING,		/* source: COMMIT sent, the request is the destination's */
	NM_PREPARED,		/* destination: PREPARED sent, waiting for COMMIT */
	NM_QUEUED,		/* destination: committed, waiting for a running slot */
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
	void *image;			/* the OFFER's image (mi.hdr points into it) */
	struct serve_migr_in mi;
	struct serve_npage *pages;	/* the request's, per block (OFFER) */
	uint32_t gen0;			/* tokens it had on arrival */
	uint32_t nh;			/* its handle here, once committed */
	uint64_t t_last_ns;
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
	free(m->pages);
	*m = n->m[--n->nr];
}

/* ---- messages ---- */

/* A sealed memfd holding @a then @b (either may be empty), then @c. */
static int memfd_of(const void *a, size_t la, const void *b, size_t lb, const void *c, size_t lc)
{
	int fd = memfd_create("kvaccel-migration", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	const void *part[3] = { a, b, c };
	size_t len[3] = { la, lb, lc };

	if (fd < 0)
		return -errno;
	for (int i = 0; i < 3; i++) {
		const char *p = part[i];
		size_t left = len[i];

		while (left) {
			ssize_t w = write(fd, p, left);

			if (w < 0) {
				int e = -errno;

				close(fd);
				return e;
			}
			p += w;
			left -= (size_t)w;
		}
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
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
	struct serve_nmsg *h;
	struct stat st;
	ssize_t r;

	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(*h) ||
	    (uint64_t)st.st_size > ACCEL_HANDOFF_MEMFD_MAX)
		return -EPROTO;
	h = malloc((size_t)st.st_size);
	if (!h)
		return -ENOMEM;
	r = pread(fd, h, (size_t)st.st_size, 0);
	if (r != st.st_size || h->magic != SERVE_NMSG_MAGIC || h->size != (uint64_t)st.st_size ||
	    h->mode >= SERVE_NMIG_NR_MODES || (h->mode && h->kind != SERVE_NMSG_OFFER) ||
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

int serve_nmig_start(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to)
{
	return serve_nmig_start_mode(n, id, h, to, SERVE_NMIG_ZERO_COPY);
}

int serve_nmig_start_mode(struct serve_nmig *n, uint64_t id, uint32_t h, const char *to,
			  uint32_t mode)
{
	struct serve_npage *pages = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	struct serve_nmsg msg = { .kind = SERVE_NMSG_OFFER, .id = id, .mode = mode };
	char *body = NULL, *tail = NULL;
	size_t body_len, tail_len = 0;
	uint32_t i, shared = 0;
	struct nmig *m;
	int ret;

	if (!n || !to || !*to || mode >= SERVE_NMIG_NR_MODES)
		return -EINVAL;
	m = add(n, id, to);
	if (!m)
		return -errno;
	m->h = h;
	ret = serve_driver_migrate_out(n->d, h, mode ? 0 : SERVE_MIGR_GIVE_PAGES, &m->mo);
	if (ret) {
		drop(n, m);
		return ret;
	}
	if (!m->mo.own) {
		/* Nothing changes hands: copied (COPY), or not sent at all (RECOMPUTE). */
		m->mo.own = calloc(m->mo.nr_blocks + 1, 1);
		if (mode == SERVE_NMIG_RECOMPUTE)
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
		goto undo;
	msg.nr_keys = (uint32_t)ret;
	msg.nr_pages = m->mo.nr_blocks;
	msg.image_len = m->mo.len;
	msg.block_bytes = n->block_bytes;
	/* Body: keys, pages, image; tail: the shared blocks' bytes. */
	body_len = msg.nr_keys * 8 + (size_t)msg.nr_pages * sizeof(*pages) + m->mo.len;
	body = malloc(body_len);
	tail_len = (size_t)shared * n->block_bytes;
	tail = tail_len ? malloc(tail_len) : NULL;
	if (!body || (tail_len && !tail)) {
		ret = -ENOMEM;
		goto undo;
	}
	memcpy(body, keys, msg.nr_keys * 8);
	memcpy(body + msg.nr_keys * 8, pages, (size_t)msg.nr_pages * sizeof(*pages));
	memcpy(body + msg.nr_keys * 8 + (size_t)msg.nr_pages * sizeof(*pages), m->mo.image,
	       m->mo.len);
	for (i = 0, shared = 0; i < m->mo.nr_blocks; i++)
		if (!m->mo.own[i])
			memcpy(tail + (size_t)shared++ * n->block_bytes,
			       accel_tier_block_addr(n->tier, m->mo.blocks[i]), n->block_bytes);
	ret = send_msg(n, to, &msg, body, body_len, tail, tail_len);
	if (ret)
		goto undo;
	m->phase = NM_OFFERED;
	m->st.blocks = m->mo.nr_blocks;
	m->st.bytes_copied = tail_len;
	m->st.pages = m->mo.nr_blocks - shared;
	free(pages);
	free(body);
	free(tail);
	return 0;
undo:
	serve_driver_migrate_undo(n->d, &m->mo);
	drop(n, m);
	free(pages);
	free(body);
	free(tail);
	return ret;
}

/* Source, PREPARED: refused (resume), or the point of no return (COMMIT). */
static int on_prepared(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		       const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	struct serve_nmsg commit = { .kind = SERVE_NMSG_COMMIT, .id = m->id };
	const struct serve_npage *given = msg_pages(h);
	struct accel_tier_rebind *ops = NULL;
	uint32_t i, k = 0;
	int ret = h->status;

	if (m->phase != NM_OFFERED)
		return -EPROTO;
	if (ret >= 0 && h->nr_pages != m->st.pages)
		ret = -EPROTO;
	if (ret >= 0 && !pages_named(h, given, h->nr_pages))
		ret = -EPROTO;
	if (ret >= 0)
		ret = hold_regions(n, h, fds, kinds, count);
	if (ret >= 0) {
		ops = calloc(m->st.pages + 1, sizeof(*ops));
		ret = ops ? 0 : -ENOMEM;
	}
	for (i = 0; ret >= 0 && i < m->mo.nr_blocks; i++) {
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
	if (ret >= 0)
		ret = send_msg(n, m->peer, &commit, NULL, 0, NULL, 0);
	if (ret < 0) {
		/* Still ours: the request resumes here (the destination times out). */
		serve_driver_migrate_undo(n->d, &m->mo);
		if (n->ops.done)
			n->ops.done(n->arg, m->id, ret, &m->st);
		free(ops);
		drop(n, m);
		return h->status < 0 ? 0 : ret;
	}
	/* The destination's now: our blocks take the pages it gave, then go back to the pool. */
	ret = k ? accel_tier_rebind(n->tier, ops, k) : 0;
	free(ops);
	if (ret)
		fprintf(stderr, "kvaccel-serve: migration %llu: rebinding %u blocks: %s\n",
			(unsigned long long)m->id, k, strerror(-ret));
	m->st.tokens = ((const struct serve_migr_hdr *)m->mo.image)->n_prompt +
		       ((const struct serve_migr_hdr *)m->mo.image)->n_gen;
	serve_driver_migrate_done(n->d, &m->mo);
	m->phase = NM_COMMITTING;
	return 0;
}

/* ---- the destination ---- */

static int prepare(struct serve_nmig *n, struct nmig *m, const struct serve_nmsg *h,
		   const int *fds, const enum accel_handoff_kind *kinds, unsigned int count,
		   struct serve_npage **given, uint32_t *nr_given)
{
	const struct serve_npage *pages = msg_pages(h);
	const char *image = (const char *)(pages + h->nr_pages);
	const char *bytes = image + h->image_len;
	uint32_t i, own = 0, shared = 0;
	int ret;

	if (h->block_bytes != n->block_bytes)
		return -EINVAL;
	if (h->mode == SERVE_NMIG_RECOMPUTE) {
		/* Only the tokens: checked now, prefilled again at COMMIT. */
		const struct serve_migr_hdr *hd = (const void *)image;

		if (h->nr_pages || h->nr_keys || count != 1 ||
		    h->size != sizeof(*h) + h->image_len)
			return -EPROTO;
		ret = serve_migr_image_check(image, h->image_len,
					     serve_migr_model_id(serve_engine_model(
						     serve_driver_engine(n->d))),
					     serve_engine_block_tokens(serve_driver_engine(n->d)),
					     h->block_bytes);
		if (ret)
			return ret;
		m->image = malloc(h->image_len);
		*given = calloc(1, sizeof(**given));
		if (!m->image || !*given)
			return -ENOMEM;
		memcpy(m->image, image, h->image_len);
		m->recompute = true;
		m->image_len = h->image_len;
		m->t_last_ns = hd->t_last_ns;
		m->gen0 = hd->n_gen;
		m->st.tokens = hd->n_prompt + hd->n_gen;
		*nr_given = 0;
		return 0;
	}
	for (i = 0; i < h->nr_pages; i++) {
		if (pages[i].own > 1)
			return -EPROTO;
		own += pages[i].own;
	}
	if (h->size != sizeof(*h) + (uint64_t)h->nr_keys * 8 +
	    (uint64_t)h->nr_pages * sizeof(*pages) + h->image_len +
	    (uint64_t)(h->nr_pages - own) * h->block_bytes || !pages_named(h, pages, h->nr_pages))
		return -EPROTO;
	ret = hold_regions(n, h, fds, kinds, count);
	if (ret)
		return ret;
	m->image = malloc(h->image_len ? h->image_len : 1);
	m->pages = malloc(((size_t)h->nr_pages + 1) * sizeof(*pages));
	*given = calloc(own + 1, sizeof(**given));
	if (!m->image || !m->pages || !*given)
		return -ENOMEM;
	memcpy(m->image, image, h->image_len);
	memcpy(m->pages, pages, (size_t)h->nr_pages * sizeof(*pages));
	ret = serve_driver_migrate_prepare(n->d, m->image, h->image_len, &m->mi);
	if (ret)
		return ret;
	if (m->mi.nr_blocks != h->nr_pages) {
		serve_driver_migrate_cancel(n->d, &m->mi);
		return -EPROTO;
	}
	/* Shared blocks: their bytes into ours. Own ones: our pages go to the source. */
	for (i = 0, own = 0; i < h->nr_pages; i++) {
		if (!pages[i].own) {
			memcpy(accel_tier_block_addr(n->tier, m->mi.blocks[i]),
			       bytes + (size_t)shared++ * h->block_bytes, h->block_bytes);
			continue;
		}
		{
			struct accel_tier_page pg;

			ret = accel_tier_page(n->tier, m->mi.blocks[i], &pg);
			if (ret) {
				serve_driver_migrate_cancel(n->d, &m->mi);
				return ret;
			}
			(*given)[own++] = (struct serve_npage) { .key = pg.key, .first = pg.first,
								 .own = 1 };
		}
	}
	*nr_given = own;
	m->t_last_ns = m->mi.hdr->t_last_ns;
	m->gen0 = m->mi.hdr->n_gen;
	m->st.blocks = h->nr_pages;
	m->st.pages = own;
	m->st.bytes_copied = (uint64_t)shared * h->block_bytes;
	m->st.tokens = m->mi.hdr->n_prompt + m->mi.hdr->n_gen;
	return 0;
}

static int on_offer(struct serve_nmig *n, const char *from, const struct serve_nmsg *h,
		    const int *fds, const enum accel_handoff_kind *kinds, unsigned int count)
{
	struct serve_nmsg reply = { .kind = SERVE_NMSG_PREPARED, .id = h->id };
	struct serve_npage *given = NULL;
	uint64_t keys[NMSG_KEYS_MAX];
	uint32_t nr_given = 0;
	struct nmig *m;
	char *body = NULL;
	size_t body_len = 0;
	int ret;

	m = add(n, h->id, from);
	if (!m)
		return -errno;
	ret = prepare(n, m, h, fds, kinds, count, &given, &nr_given);
	if (!ret) {
		ret = keys_of(given, nr_given, keys, NMSG_KEYS_MAX);
		if (ret >= 0) {
			reply.nr_keys = (uint32_t)ret;
			reply.nr_pages = nr_given;
			body_len = reply.nr_keys * 8 + (size_t)nr_given * sizeof(*given);
			body = malloc(body_len + 1);
			ret = body ? 0 : -ENOMEM;
		}
		if (ret >= 0) {
			memcpy(body, keys, reply.nr_keys * 8);
			memcpy(body + reply.nr_keys * 8, given, (size_t)nr_given * sizeof(*given));
		}
		if (ret < 0)
			serve_driver_migrate_cancel(n->d, &m->mi);
	}
	if (ret < 0) {
		/* Refused: say so (the source resumes the request), keep nothing. */
		reply = (struct serve_nmsg) { .kind = SERVE_NMSG_PREPARED, .id = h->id,
					      .status = ret };
		body_len = 0;
	}
	ret = send_msg(n, from, &reply, body, body_len, NULL, 0);
	if (!ret)
		ret = reply.status;
	free(body);
	free(given);
	if (ret < 0) {
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
	int ret = serve_driver_migrate_commit(n->d, &m->mi, &m->nh);

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
}

static int on_commit(struct serve_nmig *n, struct nmig *m)
{
	struct accel_tier_rebind *ops;
	uint32_t i, k = 0;
	int ret;

	if (m->phase != NM_PREPARED)
		return -EPROTO;
	if (m->recompute) {
		ret = serve_driver_migrate_recompute(n->d, m->image, m->image_len, &m->nh);
		if (ret)
			return ret;
		m->phase = NM_ARRIVED;
		return 0;
	}
	ops = calloc(m->mi.nr_blocks + 1, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < m->mi.nr_blocks; i++)
		if (m->pages[i].own)
			ops[k++] = (struct accel_tier_rebind) {
				.block = m->mi.blocks[i],
				.to = { .key = m->pages[i].key, .first = m->pages[i].first },
			};
	ret = k ? accel_tier_rebind(n->tier, ops, k) : 0;
	free(ops);
	if (ret)
		return ret;	/* the source fails the request to its client */
	try_commit(n, m);
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
		ret = m ? -EEXIST : on_offer(n, from, h, fds, kinds, count);
	else if (!m || strcmp(m->peer, from))
		ret = -ENOENT;
	else if (h->kind == SERVE_NMSG_PREPARED)
		ret = on_prepared(n, m, h, fds, kinds, count);
	else if (h->kind == SERVE_NMSG_COMMIT)
		ret = count == 1 ? on_commit(n, m) : -EPROTO;
	else
		ret = -EPROTO;
	free(h);
	return ret;
}

void serve_nmig_sent(struct serve_nmig *n, uint64_t tag, int status)
{
	struct nmig *m = n ? find(n, tag >> 2) : NULL;
	uint32_t kind = (uint32_t)(tag & 3);

	if (!m)
		return;
	if (kind == SERVE_NMSG_OFFER && m->phase == NM_OFFERED && status) {
		/* The destination never took the offer: the request resumes here. */
		serve_driver_migrate_undo(n->d, &m->mo);
		if (n->ops.done)
			n->ops.done(n->arg, m->id, status, &m->st);
		drop(n, m);
		return;
	}
	if (kind == SERVE_NMSG_PREPARED && m->phase == NM_PREPARED && status) {
		serve_driver_migrate_cancel(n->d, &m->mi);	/* the source never heard */
		drop(n, m);
		return;
	}
	if (kind != SERVE_NMSG_COMMIT || m->phase != NM_COMMITTING)
		return;
	m->st.total_us = (mono_ns() - m->t0_ns) / 1000;
	if (status) {
		/* Past the point of no return and the destination never took it. */
		serve_driver_migrate_lost(n->d, m->h);
		fprintf(stderr, "kvaccel-serve: migration %llu to %s: COMMIT not taken (%s): "
			"request %u failed\n", (unsigned long long)m->id, m->peer,
			strerror(-status), m->h);
		status = -EHOSTDOWN;
	}
	if (n->ops.done)
		n->ops.done(n->arg, m->id, status, &m->st);
	drop(n, m);
}

void serve_nmig_abort(struct serve_nmig *n, uint64_t id)
{
	struct nmig *m = n ? find(n, id) : NULL;

	if (!m)
		return;
	switch (m->phase) {
	case NM_OFFERED:
		serve_driver_migrate_undo(n->d, &m->mo);	/* still ours: it resumes */
		if (n->ops.done)
			n->ops.done(n->arg, m->id, -ECONNABORTED, &m->st);
		drop(n, m);
		break;
	case NM_PREPARED:
		serve_driver_migrate_cancel(n->d, &m->mi);
		drop(n, m);
		break;
	default:
		break;	/* past the point of no return: the hand-off's end decides */
	}
}

void serve_nmig_step(struct serve_nmig *n)
{
	uint64_t now = mono_ns();
	unsigned int i;

	if (!n)
		return;
	for (i = 0; i < n->nr; i++) {
		struct nmig *m = &n->m[i];
		struct serve_driver_info in;

		if (m->phase == NM_PREPARED &&
		    now - m->t0_ns > (uint64_t)n->timeout_ms * 1000000) {
			fprintf(stderr, "kvaccel-serve: migration %llu from %s: no COMMIT in %u ms: "
				"freed\n", (unsigned long long)m->id, m->peer, n->timeout_ms);
			serve_driver_migrate_cancel(n->d, &m->mi);
			drop(n, m);
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
		m->st.downtime_us = in.sched.last_token_ns > m->t_last_ns ?
				    (in.sched.last_token_ns - m->t_last_ns) / 1000 : 0;
		if (n->ops.arrived)
			n->ops.arrived(n->arg, m->id, m->nh, m->peer, &m->st);
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

		if (m->phase == NM_OFFERED)
			serve_driver_migrate_undo(n->d, &m->mo);
		else if (m->phase == NM_PREPARED || m->phase == NM_QUEUED)
			serve_driver_migrate_cancel(n->d, &m->mi);
		drop(n, m);
	}
	free(n->m);
	free(n);
}
