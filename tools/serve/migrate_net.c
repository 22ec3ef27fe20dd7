// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - live migration across nodes (migrate_net.h): the control
 * messages, each side's state machine, the puts of each stage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate.h"
#include "migrate_net.h"

/* The longest message taken: an image of 2^24 tokens fits, and BLOCKS of them. */
#define XMSG_MAX	ACCEL_XFER_MSG_MAX
#define SEND_NS		(2ll * 1000000000)

enum xmig_phase {
	XS_BEGUN = 1,		/* source: BEGIN or STAGE sent, waiting for BLOCKS */
	XS_FLUSH,		/* source: a stage's puts submitted, their flush polled */
	XS_STOPPED,		/* source: stopped, the rest's puts submitted, flush polled */
	XS_FINAL_BLOCKS,	/* source: FINAL sent (KV incomplete), waiting for BLOCKS */
	XS_COMMIT_WAIT,		/* source: FINAL or COMMIT sent, waiting for COMMITTED */
	XD_PREPARED,		/* destination: BLOCKS sent, waiting for STAGE, FINAL */
	XD_FINAL,		/* destination: BLOCKS for FINAL sent, waiting for COMMIT */
	XD_QUEUED,		/* destination: KV complete, no running slot yet */
};

struct xpeer {
	struct accel_xfer_ep *ep;
	struct accel_xfer_rkey *rk;	/* source: the destination's memory */
	bool desc_sent;			/* destination: its descriptor went out */
	bool accepted;			/* destination: ours to close */
};

struct xmig {
	uint64_t id;
	enum xmig_phase phase;
	struct accel_xfer_ep *ep;
	uint64_t t0_ns, t_heard_ns, t_phase_ns;
	struct serve_xmig_stats st;
	/* Source. */
	uint32_t h;
	uint32_t stage;			/* stages done (STAGE messages sent) */
	uint32_t sent;			/* blocks put so far, from the first */
	uint32_t *dst;			/* the destination's blocks, as BLOCKS named them */
	uint32_t nr_dst;
	uint32_t preempts;		/* swaps and recomputes at BEGIN */
	bool stopped;
	bool puts;			/* puts submitted, not yet flushed */
	bool final_sent;		/* FINAL went out before the KV was complete */
	bool peer_aborted;		/* source: the destination said ABORT */
	struct serve_migr_out mo;
	uint64_t t_stop_ns;
	/* Destination. */
	void *image;			/* the latest image (mi.hdr points into it) */
	struct serve_migr_in mi;
};

struct serve_xmig {
	struct serve_driver *d;
	struct accel_bm *bm;
	struct accel_tier *tier;
	struct accel_xfer *x;
	struct accel_xfer_mem *mem;
	uint64_t block_bytes;
	uint32_t nr_blocks, block_tokens;
	struct serve_xmig_ops ops;
	void *arg;
	uint32_t timeout_ms, max_stages, final_blocks;
	struct xmig *m;
	unsigned int nr, cap;
	struct xpeer *p;
	unsigned int nr_p, cap_p;
	void *buf;			/* XMSG_MAX bytes: messages taken */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds from @t to @now, 0 if @t is later (set after @now was read). */
static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static uint64_t limit_ns(const struct serve_xmig *n)
{
	return (uint64_t)n->timeout_ms * 1000000;
}

/* ---- bookkeeping ---- */

static struct xpeer *peer_of(struct serve_xmig *n, struct accel_xfer_ep *ep, bool add)
{
	for (unsigned int i = 0; i < n->nr_p; i++)
		if (n->p[i].ep == ep)
			return &n->p[i];
	if (!add)
		return NULL;
	if (n->nr_p == n->cap_p) {
		unsigned int cap = n->cap_p ? 2 * n->cap_p : 4;
		struct xpeer *p = realloc(n->p, cap * sizeof(*p));

		if (!p)
			return NULL;
		n->p = p;
		n->cap_p = cap;
	}
	memset(&n->p[n->nr_p], 0, sizeof(n->p[0]));
	n->p[n->nr_p].ep = ep;
	return &n->p[n->nr_p++];
}

static struct xmig *find(struct serve_xmig *n, uint64_t id, struct accel_xfer_ep *ep)
{
	for (unsigned int i = 0; i < n->nr; i++)
		if (n->m[i].id == id && n->m[i].ep == ep)
			return &n->m[i];
	return NULL;
}

static struct xmig *add(struct serve_xmig *n, uint64_t id, struct accel_xfer_ep *ep)
{
	struct xmig *m;

	if (find(n, id, ep)) {
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
	m->ep = ep;
	m->t0_ns = m->t_heard_ns = m->t_phase_ns = mono_ns();
	return m;
}

static void drop(struct serve_xmig *n, struct xmig *m)
{
	free(m->image);
	free(m->dst);
	*m = n->m[--n->nr];
}

static bool is_source(const struct xmig *m)
{
	return m->phase < XD_PREPARED;
}

/* ---- messages ---- */

static int send_msg(struct accel_xfer_ep *ep, struct serve_xmsg *h, const void *a, size_t la,
		    const void *b, size_t lb)
{
	size_t len = sizeof(*h) + la + lb;
	char *buf;
	int ret;

	h->magic = SERVE_XMSG_MAGIC;
	h->version = SERVE_XMSG_VERSION;
	h->size = len;
	if (len > XMSG_MAX)
		return -EMSGSIZE;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, h, sizeof(*h));
	if (la)
		memcpy(buf + sizeof(*h), a, la);
	if (lb)
		memcpy(buf + sizeof(*h) + la, b, lb);
	ret = accel_xfer_send(ep, buf, len, SEND_NS);
	free(buf);
	return ret;
}

static int send_simple(struct accel_xfer_ep *ep, uint64_t id, uint16_t kind, int status,
		       uint32_t stage, const void *image, size_t len, uint64_t block_bytes)
{
	struct serve_xmsg h = { .kind = kind, .id = id, .status = status, .stage = stage,
				.image_len = len, .block_bytes = block_bytes };

	return send_msg(ep, &h, image, len, NULL, 0);
}

/* A message's header checked against its length and kind: 0 or -EPROTO. */
static int msg_check(const struct serve_xmsg *h, size_t len)
{
	if (len < sizeof(*h) || h->magic != SERVE_XMSG_MAGIC || h->version != SERVE_XMSG_VERSION ||
	    h->size != len || !h->kind || h->kind >= SERVE_XMSG_NR_KINDS)
		return -EPROTO;
	switch (h->kind) {
	case SERVE_XMSG_BEGIN:
	case SERVE_XMSG_STAGE:
	case SERVE_XMSG_FINAL:
		if (h->nr_blocks || h->desc_len || h->image_len != len - sizeof(*h) ||
		    (h->kind == SERVE_XMSG_FINAL && h->stage > 1) ||
		    (h->kind == SERVE_XMSG_BEGIN && h->stage))
			return -EPROTO;
		break;
	case SERVE_XMSG_BLOCKS:
		if (h->image_len || h->nr_blocks > (1u << 24) || h->desc_len > ACCEL_XFER_DESC_MAX ||
		    sizeof(*h) + (uint64_t)h->nr_blocks * 4 + h->desc_len != len)
			return -EPROTO;
		break;
	default:
		if (len != sizeof(*h) || h->nr_blocks || h->desc_len || h->image_len)
			return -EPROTO;
	}
	if (h->kind == SERVE_XMSG_ABORT && h->status >= 0)
		return -EPROTO;
	if (h->status > 0 || h->status < -4095)
		return -EPROTO;
	return 0;
}

/* ---- the source ---- */

/* The tier-0 blocks of running request @h into a malloc'd array. */
static int running_blocks(struct serve_xmig *n, uint32_t h, uint32_t **ids, uint32_t *nr)
{
	struct serve_driver_info in;
	uint32_t off[2], *v;
	int ret;

	ret = serve_driver_info(n->d, h, &in);
	if (ret)
		return ret;
	if (in.sched.state != ACCEL_SCHED_DECODING || in.sched.seq == UINT32_MAX)
		return -EINVAL;
	ret = accel_bm_block_tables(n->bm, &in.sched.seq, 1, off, NULL, 0, NULL);
	if (ret < 0 && ret != -ENOBUFS)
		return ret;
	v = malloc((off[1] ? off[1] : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = accel_bm_block_tables(n->bm, &in.sched.seq, 1, off, v, off[1], NULL);
	if (ret < 0) {
		free(v);
		return ret;
	}
	*ids = v;
	*nr = off[1];
	return 0;
}

/* Blocks that hold the KV of an image's tokens (all but the last): full ones, all. */
static uint32_t full_blocks(const struct serve_xmig *n, uint32_t tokens)
{
	return tokens ? (tokens - 1) / n->block_tokens : 0;
}

static uint32_t all_blocks(const struct serve_xmig *n, uint32_t tokens)
{
	return tokens ? (tokens - 1 + n->block_tokens - 1) / n->block_tokens : 0;
}

static uint32_t image_tokens(const void *image)
{
	const struct serve_migr_hdr *hd = image;

	return hd->n_prompt + hd->n_gen;
}

/* Put blocks [m->sent, upto) of @src to the destination's; the bytes count to @bytes. */
static int put_blocks(struct serve_xmig *n, struct xmig *m, const uint32_t *src, uint32_t nsrc,
		      uint32_t upto, uint64_t *bytes)
{
	struct xpeer *p = peer_of(n, m->ep, false);
	struct accel_xfer_iov *iov;
	uint32_t i, k = 0;
	int ret;

	if (upto > nsrc || upto > m->nr_dst || !p || !p->rk)
		return -EPROTO;
	if (upto <= m->sent)
		return 0;
	iov = calloc(upto - m->sent, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	for (i = m->sent; i < upto; i++)
		iov[k++] = (struct accel_xfer_iov) {
			.local = accel_tier_block_addr(n->tier, src[i]),
			.remote = (uint64_t)m->dst[i] * n->block_bytes,
			.len = n->block_bytes,
		};
	for (i = 0, ret = 0; !ret && i < k; i += 65536)
		ret = accel_xfer_put(m->ep, iov + i, k - i > 65536 ? 65536 : k - i, p->rk);
	free(iov);
	if (ret)
		return ret;
	m->puts = true;
	*bytes += (uint64_t)(upto - m->sent) * n->block_bytes;
	m->st.bytes_copied += (uint64_t)(upto - m->sent) * n->block_bytes;
	m->sent = upto;
	return 0;
}

/*
 * The fault tests' points: SERVE_XMIG_DIE_AT=POINT, the process kills
 * itself (SIGKILL) when a migration reaches POINT (tests/serve/
 * xmigrate_unit.c, xmigrate_netns.sh); SERVE_XMIG_STOP_AT=POINT, it stops
 * itself (SIGSTOP) there once, until the test has done its fault (killed a
 * daemon, tests/serve/xmigrate_kvd_kill.sh) and sends SIGCONT. On the
 * source "stage" (its first STAGE sent), "final" (the request stopped and
 * its last blocks flushed, FINAL or COMMIT not yet sent) and "commit"
 * (FINAL with the KV complete or COMMIT sent: past the point of no
 * return); on the destination "dst-stage" (the first STAGE's BLOCKS sent)
 * and "dst-commit" (committed, COMMITTED not yet sent).
 */
static void fault_at(const char *point, uint64_t id)
{
	const char *at = getenv("SERVE_XMIG_DIE_AT");
	static bool stopped;

	if (at && !strcmp(at, point)) {
		fprintf(stderr, "kvaccel-serve: migration %llu: killed at %s (SERVE_XMIG_DIE_AT)\n",
			(unsigned long long)id, point);
		fflush(stderr);
		raise(SIGKILL);
	}
	at = getenv("SERVE_XMIG_STOP_AT");
	if (stopped || !at || strcmp(at, point))
		return;
	stopped = true;
	fprintf(stderr, "kvaccel-serve: migration %llu: stopped at %s (SERVE_XMIG_STOP_AT)\n",
		(unsigned long long)id, point);
	fflush(stderr);
	raise(SIGSTOP);
}

/*
 * The migration failed before COMMITTED: the request decodes here again;
 * the destination told. Past the point of no return (FINAL with the KV
 * complete, or COMMIT, sent: XS_COMMIT_WAIT) the source cannot know
 * whether the destination committed (a COMMITTED lost with the network, a
 * destination that died after committing): unless the destination said
 * ABORT, resuming could run the request on both nodes, so it fails to its
 * client instead and its blocks here are freed (the destination has its
 * own copy, or aborts on the ABORT sent).
 */
static void source_failed(struct serve_xmig *n, struct xmig *m, int status, bool tell)
{
	bool lost = m->phase == XS_COMMIT_WAIT && !m->peer_aborted;

	if (status >= 0)
		status = -EPROTO;
	if (m->puts && !accel_xfer_ep_status(m->ep))
		accel_xfer_flush(m->ep, SEND_NS);	/* no put lands after the ABORT */
	if (tell && !accel_xfer_ep_status(m->ep))
		send_simple(m->ep, m->id, SERVE_XMSG_ABORT, status, 0, NULL, 0, n->block_bytes);
	if (m->stopped && lost) {
		fprintf(stderr, "kvaccel-serve: migration %llu: %s after its commit was sent: "
			"request %u failed here (it may go on there)\n", (unsigned long long)m->id,
			strerror(-status), m->h);
		serve_driver_migrate_done(n->d, &m->mo);
		serve_driver_migrate_lost(n->d, m->h);
	} else if (m->stopped) {
		serve_driver_migrate_undo(n->d, &m->mo);
	}
	m->st.total_us = (mono_ns() - m->t0_ns) / 1000;
	if (n->ops.done)
		n->ops.done(n->arg, m->id, status, &m->st);
	drop(n, m);
}

int serve_xmig_start(struct serve_xmig *n, uint64_t id, uint32_t h, struct accel_xfer_ep *ep)
{
	struct serve_driver_info in;
	struct xpeer *p;
	struct xmig *m;
	void *image;
	size_t len;
	int ret;

	if (!n || !ep)
		return -EINVAL;
	if (find(n, id, ep))
		return -EEXIST;
	for (unsigned int i = 0; i < n->nr; i++)
		if (is_source(&n->m[i]) && n->m[i].h == h)
			return -EBUSY;
	ret = serve_driver_info(n->d, h, &in);
	if (ret)
		return ret;
	ret = serve_driver_migrate_peek(n->d, h, &image, &len);
	if (ret)
		return ret;
	p = peer_of(n, ep, true);
	m = p ? add(n, id, ep) : NULL;
	if (!m) {
		free(image);
		return -ENOMEM;
	}
	m->h = h;
	m->phase = XS_BEGUN;
	m->preempts = in.sched.swaps_out + in.sched.recomputes;
	m->image = image;
	ret = send_simple(ep, id, SERVE_XMSG_BEGIN, 0, 0, image, len, n->block_bytes);
	if (ret) {
		drop(n, m);
		return ret;
	}
	return 0;
}

/* Source, BLOCKS: the destination's blocks for the image we sent last. */
static int on_blocks(struct serve_xmig *n, struct xmig *m, const struct serve_xmsg *h)
{
	const uint32_t *ids = (const uint32_t *)(h + 1);
	const void *desc = ids + h->nr_blocks;
	struct xpeer *p = peer_of(n, m->ep, false);
	uint32_t tokens = image_tokens(m->image), i, *v;
	int ret;

	if (m->phase != XS_BEGUN && m->phase != XS_FINAL_BLOCKS)
		return -EPROTO;
	if (h->status)
		return h->status;	/* a refusal */
	if (h->stage != m->stage + (m->phase == XS_FINAL_BLOCKS) ||
	    h->block_bytes != n->block_bytes || h->nr_blocks != all_blocks(n, tokens) ||
	    h->nr_blocks < m->nr_dst || !p)
		return -EPROTO;
	if (h->desc_len) {
		if (p->rk)
			return -EPROTO;	/* once per connection */
		ret = accel_xfer_rkey(m->ep, desc, h->desc_len, &p->rk);
		if (ret)
			return ret;
	}
	if (!p->rk)
		return -EPROTO;
	for (i = 0; i < h->nr_blocks; i++)
		if ((uint64_t)(ids[i] + 1ull) * n->block_bytes > accel_xfer_rkey_len(p->rk) ||
		    (i < m->nr_dst && m->dst[i] != ids[i]))
			return -EPROTO;	/* past its memory, or a block it named before changed */
	v = malloc((h->nr_blocks ? h->nr_blocks : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, ids, (size_t)h->nr_blocks * sizeof(*v));
	free(m->dst);
	m->dst = v;
	m->nr_dst = h->nr_blocks;
	if (m->phase == XS_FINAL_BLOCKS) {
		ret = put_blocks(n, m, m->mo.blocks, m->mo.nr_blocks, m->mo.nr_blocks,
				 &m->st.final_bytes);
		if (ret)
			return ret;
		m->phase = XS_STOPPED;	/* flushed, then COMMIT */
	} else {
		m->phase = XS_FLUSH;	/* the next step decides: another stage or the stop */
		m->puts = false;
		m->t_phase_ns = 0;	/* nothing submitted yet */
	}
	return 0;
}

/* Source: stop the request, put what is left, then FINAL (or FINAL first: new blocks). */
static int stop(struct serve_xmig *n, struct xmig *m)
{
	uint32_t tokens;
	int ret;

	ret = serve_driver_migrate_out(n->d, m->h, 0, &m->mo);
	if (ret == -EAGAIN)
		return 0;	/* in the last step's runs: the next step stops it */
	if (ret)
		return ret;
	m->stopped = true;
	m->t_stop_ns = m->mo.t_stop_ns;
	tokens = image_tokens(m->mo.image);
	m->st.blocks = m->mo.nr_blocks;
	m->st.tokens = tokens;
	if (m->mo.nr_blocks != all_blocks(n, tokens) ||
	    full_blocks(n, image_tokens(m->image)) > m->mo.nr_blocks)
		return -EIO;
	if (m->mo.nr_blocks <= m->nr_dst) {
		/* Every block has its place there: the rest, then FINAL with the KV complete. */
		m->st.stop_rtts = 1;
		ret = put_blocks(n, m, m->mo.blocks, m->mo.nr_blocks, m->mo.nr_blocks,
				 &m->st.final_bytes);
		if (ret)
			return ret;
		m->phase = XS_STOPPED;
		m->t_phase_ns = mono_ns();
		return 0;
	}
	/*
	 * Blocks it has no place for yet: FINAL asks for them, and every put
	 * waits for its answer (none may be in flight when the destination
	 * could still refuse and free its blocks).
	 */
	ret = send_simple(m->ep, m->id, SERVE_XMSG_FINAL, 0, 0, m->mo.image, m->mo.len,
			  n->block_bytes);
	if (ret)
		return ret;
	free(m->image);
	m->image = malloc(m->mo.len);
	if (!m->image)
		return -ENOMEM;
	memcpy(m->image, m->mo.image, m->mo.len);
	m->final_sent = true;
	m->st.stop_rtts = 2;
	m->phase = XS_FINAL_BLOCKS;
	m->t_phase_ns = mono_ns();
	return 0;
}

/* Source, each step: 0 or why the migration fails. */
static int source_step(struct serve_xmig *n, struct xmig *m, uint64_t now)
{
	struct serve_driver_info in;
	uint32_t *src, nsrc, tokens;
	void *image;
	size_t len;
	int ret;

	memset(&in, 0, sizeof(in));
	ret = accel_xfer_ep_status(m->ep);
	if (ret)
		return ret;
	if (!m->stopped) {
		ret = serve_driver_info(n->d, m->h, &in);
		if (ret)
			return ret;
		if (in.sched.state != ACCEL_SCHED_DECODING)
			return -EINVAL;	/* finished, preempted: it stays */
		if (in.sched.swaps_out + in.sched.recomputes != m->preempts)
			return -EINVAL;	/* its blocks changed under the stages */
	}
	switch (m->phase) {
	case XS_BEGUN:
	case XS_FINAL_BLOCKS:
		if (since(now, m->t_heard_ns) > limit_ns(n))
			return -ETIMEDOUT;
		return 0;
	case XS_COMMIT_WAIT:
		if (since(now, m->t_heard_ns) > 2 * limit_ns(n))
			return -ETIMEDOUT;
		return 0;
	case XS_FLUSH:
		if (!m->t_phase_ns) {
			/* BLOCKS came: another stage, or the stop. */
			tokens = image_tokens(m->image);
			if (m->stage >= n->max_stages ||
			    all_blocks(n, in.req.n_tokens) - m->sent <= n->final_blocks) {
				ret = stop(n, m);
				if (ret || m->phase != XS_STOPPED)
					return ret;
				goto stopped;	/* stopped: its flush polled at once */
			}
			ret = running_blocks(n, m->h, &src, &nsrc);
			if (ret)
				return ret;
			ret = put_blocks(n, m, src, nsrc, full_blocks(n, tokens),
					 &m->st.stage_bytes[m->stage < SERVE_XMIG_STAGES_MAX ?
							    m->stage : SERVE_XMIG_STAGES_MAX - 1]);
			free(src);
			m->t_phase_ns = now;
			return ret;
		}
		if (m->puts) {
			ret = accel_xfer_flush(m->ep, 0);
			if (ret == -ETIMEDOUT || ret == -EAGAIN)
				return since(now, m->t_phase_ns) > limit_ns(n) ? -ETIMEDOUT : 0;
			if (ret)
				return ret;
			m->puts = false;
		}
		/* Flushed: a newer image, STAGE(k). */
		ret = serve_driver_migrate_peek(n->d, m->h, &image, &len);
		if (ret)
			return ret;
		m->stage++;
		m->st.stages = m->stage;
		ret = send_simple(m->ep, m->id, SERVE_XMSG_STAGE, 0, m->stage, image, len,
				  n->block_bytes);
		if (m->stage == 1)
			fault_at("stage", m->id);
		free(m->image);
		m->image = image;
		m->phase = XS_BEGUN;
		m->t_heard_ns = now;
		return ret;
	case XS_STOPPED:
stopped:
		if (m->puts) {
			ret = accel_xfer_flush(m->ep, 0);
			if (ret == -ETIMEDOUT || ret == -EAGAIN)
				return since(now, m->t_phase_ns) > limit_ns(n) ? -ETIMEDOUT : 0;
			if (ret)
				return ret;
			m->puts = false;
		}
		/* FINAL with the KV complete, or COMMIT after FINAL's BLOCKS. */
		fault_at("final", m->id);
		if (!m->final_sent)
			ret = send_simple(m->ep, m->id, SERVE_XMSG_FINAL, 0, 1, m->mo.image,
					  m->mo.len, n->block_bytes);
		else
			ret = send_simple(m->ep, m->id, SERVE_XMSG_COMMIT, 0, 0, NULL, 0,
					  n->block_bytes);
		m->phase = XS_COMMIT_WAIT;
		m->t_heard_ns = now;
		fault_at("commit", m->id);
		return ret;
	default:
		return -EPROTO;
	}
}

/* ---- the destination ---- */

static void dest_abort(struct serve_xmig *n, struct xmig *m, int status, bool tell)
{
	if (tell && !accel_xfer_ep_status(m->ep))
		send_simple(m->ep, m->id, SERVE_XMSG_ABORT, status < 0 ? status : -EPROTO, 0,
			    NULL, 0, n->block_bytes);
	serve_driver_migrate_cancel(n->d, &m->mi);
	if (n->ops.aborted)
		n->ops.aborted(n->arg, m->id, status);
	drop(n, m);
}

static int send_blocks(struct serve_xmig *n, struct xmig *m, int status, uint32_t stage)
{
	struct serve_xmsg h = { .kind = SERVE_XMSG_BLOCKS, .id = m->id, .status = status,
				.stage = stage, .block_bytes = n->block_bytes };
	struct xpeer *p = peer_of(n, m->ep, true);
	char desc[ACCEL_XFER_DESC_MAX];
	size_t dl = 0;
	int ret;

	if (!p)
		return -ENOMEM;
	if (!status && !p->desc_sent) {
		dl = sizeof(desc);
		ret = accel_xfer_mem_pack(n->mem, desc, &dl);
		if (ret)
			return ret;
	}
	if (!status)
		h.nr_blocks = m->mi.nr_blocks;
	h.desc_len = (uint32_t)dl;
	ret = send_msg(m->ep, &h, m->mi.blocks, (size_t)h.nr_blocks * 4, desc, dl);
	if (!ret && dl)
		p->desc_sent = true;
	return ret;
}

/* A copy of @h's image; the caller frees it. */
static void *image_copy(const struct serve_xmsg *h)
{
	void *image = malloc(h->image_len ? h->image_len : 1);

	if (image)
		memcpy(image, h + 1, h->image_len);
	return image;
}

static void on_begin(struct serve_xmig *n, struct accel_xfer_ep *ep, const struct serve_xmsg *h)
{
	struct xmig *m;
	int ret;

	if (find(n, h->id, ep)) {
		send_simple(ep, h->id, SERVE_XMSG_ABORT, -EEXIST, 0, NULL, 0, n->block_bytes);
		return;
	}
	m = add(n, h->id, ep);
	if (!m) {
		send_simple(ep, h->id, SERVE_XMSG_ABORT, -ENOMEM, 0, NULL, 0, n->block_bytes);
		return;
	}
	m->phase = XD_PREPARED;
	m->image = image_copy(h);
	ret = m->image ? 0 : -ENOMEM;
	if (!ret && h->block_bytes != n->block_bytes)
		ret = -EINVAL;
	if (!ret)
		ret = serve_driver_migrate_prepare(n->d, m->image, h->image_len, &m->mi);
	if (ret) {
		send_blocks(n, m, ret, 0);	/* a refusal */
		if (n->ops.aborted)
			n->ops.aborted(n->arg, m->id, ret);
		drop(n, m);
		return;
	}
	ret = send_blocks(n, m, 0, 0);
	if (ret)
		dest_abort(n, m, ret, false);
}

static void try_commit(struct serve_xmig *n, struct xmig *m)
{
	uint32_t h;
	int ret = serve_driver_migrate_commit(n->d, &m->mi, &h);

	if (ret == -EBUSY) {
		if (m->phase != XD_QUEUED) {
			m->phase = XD_QUEUED;
			m->t_phase_ns = mono_ns();
		}
		return;	/* the next step tries again */
	}
	if (ret) {
		/* The pre-allocation is gone with it: the source resumes. */
		send_simple(m->ep, m->id, SERVE_XMSG_ABORT, ret, 0, NULL, 0, n->block_bytes);
		if (n->ops.aborted)
			n->ops.aborted(n->arg, m->id, ret);
		drop(n, m);
		return;
	}
	fault_at("dst-commit", m->id);
	ret = send_simple(m->ep, m->id, SERVE_XMSG_COMMITTED, 0, 0, NULL, 0, n->block_bytes);
	if (ret) {
		/* The source will not hear it: it resumes there; not here too. */
		serve_driver_abort(n->d, h);
		fprintf(stderr, "kvaccel-serve: migration %llu: COMMITTED not sent (%s): the "
			"request aborted here\n", (unsigned long long)m->id, strerror(-ret));
		if (n->ops.aborted)
			n->ops.aborted(n->arg, m->id, ret);
		drop(n, m);
		return;
	}
	if (n->ops.arrived)
		n->ops.arrived(n->arg, m->id, h, m->image);
	drop(n, m);
}

/* Destination, STAGE or FINAL: extend to the newer image. */
static int on_image(struct serve_xmig *n, struct xmig *m, const struct serve_xmsg *h)
{
	void *image;
	int ret;

	if (m->phase != XD_PREPARED || h->block_bytes != n->block_bytes)
		return -EPROTO;
	if (h->kind == SERVE_XMSG_STAGE && h->stage != m->st.stages + 1)
		return -EPROTO;
	image = image_copy(h);
	if (!image)
		return -ENOMEM;
	ret = serve_driver_migrate_extend(n->d, &m->mi, image, h->image_len);
	if (ret) {
		free(image);
		return ret;
	}
	free(m->image);
	m->image = image;
	if (h->kind == SERVE_XMSG_STAGE) {
		m->st.stages = h->stage;
		ret = send_blocks(n, m, 0, h->stage);
		if (h->stage == 1)
			fault_at("dst-stage", m->id);
		return ret;
	}
	if (h->stage == 1) {	/* the KV is complete */
		try_commit(n, m);
		return 0;
	}
	m->phase = XD_FINAL;
	return send_blocks(n, m, 0, m->st.stages + 1);
}

/* ---- both ---- */

/* Every migration over @ep fails (a garbled message, a dead endpoint). */
static void fail_ep(struct serve_xmig *n, struct accel_xfer_ep *ep, int status)
{
	for (unsigned int i = 0; i < n->nr;) {
		struct xmig *m = &n->m[i];

		if (m->ep != ep) {
			i++;
			continue;
		}
		if (is_source(m))
			source_failed(n, m, status, true);
		else
			dest_abort(n, m, status, true);
	}
}

static void on_msg(struct serve_xmig *n, struct accel_xfer_ep *ep, const struct serve_xmsg *h,
		   size_t len)
{
	struct xmig *m;
	int ret = msg_check(h, len);

	if (ret) {
		fprintf(stderr, "kvaccel-serve: a garbled migration message (%zu bytes): the "
			"migrations on its connection end\n", len);
		fail_ep(n, ep, ret);
		return;
	}
	if (h->kind == SERVE_XMSG_BEGIN) {
		on_begin(n, ep, h);
		return;
	}
	m = find(n, h->id, ep);
	if (!m)
		return;	/* one that ended here already (an ABORT crossing ours) */
	m->t_heard_ns = mono_ns();
	if (h->kind == SERVE_XMSG_ABORT) {
		m->peer_aborted = true;
		if (is_source(m))
			source_failed(n, m, h->status, false);
		else
			dest_abort(n, m, h->status, false);
		return;
	}
	if (is_source(m)) {
		if (h->kind == SERVE_XMSG_BLOCKS)
			ret = on_blocks(n, m, h);
		else if (h->kind == SERVE_XMSG_COMMITTED && m->phase == XS_COMMIT_WAIT)
			ret = 0;
		else
			ret = -EPROTO;
		if (ret) {
			source_failed(n, m, ret, true);
			return;
		}
		if (h->kind == SERVE_XMSG_COMMITTED) {
			uint64_t now = mono_ns();

			m->st.downtime_us = (since(now, m->t_stop_ns)) / 1000;
			m->st.total_us = (now - m->t0_ns) / 1000;
			serve_driver_migrate_done(n->d, &m->mo);
			if (n->ops.done)
				n->ops.done(n->arg, m->id, 0, &m->st);
			drop(n, m);
		}
		return;
	}
	if (h->kind == SERVE_XMSG_STAGE || h->kind == SERVE_XMSG_FINAL)
		ret = on_image(n, m, h);
	else if (h->kind == SERVE_XMSG_COMMIT && m->phase == XD_FINAL)
		ret = (try_commit(n, m), 0);
	else
		ret = -EPROTO;
	if (ret)
		dest_abort(n, m, ret, true);
}

void serve_xmig_step(struct serve_xmig *n)
{
	struct accel_xfer_ep *ep;
	uint64_t now;
	unsigned int i;

	if (!n)
		return;
	while (!accel_xfer_accept(n->x, &ep, 0)) {
		struct xpeer *p = peer_of(n, ep, true);

		if (p)
			p->accepted = true;
		else
			accel_xfer_ep_close(ep);
	}
	for (;;) {
		size_t len = XMSG_MAX;
		int ret;

		ep = NULL;
		ret = accel_xfer_recv(n->x, &ep, n->buf, &len, 0);
		if (ret == -EMSGSIZE) {
			if (ep)
				fail_ep(n, ep, -EMSGSIZE);
			continue;
		}
		if (ret)
			break;
		if (!peer_of(n, ep, true))
			continue;
		on_msg(n, ep, n->buf, len);
	}
	now = mono_ns();
	for (i = 0; i < n->nr;) {
		struct xmig *m = &n->m[i];
		unsigned int nr = n->nr;
		int ret;

		if (is_source(m)) {
			ret = source_step(n, m, now);
			if (ret) {
				fprintf(stderr, "kvaccel-serve: migration %llu: %s: the request "
					"stays\n", (unsigned long long)m->id, strerror(-ret));
				source_failed(n, m, ret, ret != -ECONNRESET);
			}
		} else if (m->phase == XD_QUEUED) {
			if (since(now, m->t_phase_ns) > limit_ns(n) / 2)
				dest_abort(n, m, -ETIMEDOUT, true);
			else
				try_commit(n, m);
		} else if (accel_xfer_ep_status(m->ep) || since(now, m->t_heard_ns) > limit_ns(n)) {
			fprintf(stderr, "kvaccel-serve: migration %llu: the source is gone or silent: "
				"its blocks freed\n", (unsigned long long)m->id);
			dest_abort(n, m, -ETIMEDOUT, false);
		}
		if (n->nr == nr)
			i++;	/* still there: the next one (else this index holds another) */
	}
}

/* ---- the object ---- */

struct serve_xmig *serve_xmig_create(struct serve_driver *d, struct accel_bm *bm,
				     struct accel_tier *tier0, struct accel_xfer *x,
				     const struct serve_xmig_ops *ops, void *arg)
{
	ACCEL_OPTS(accel_tier_info, ti);
	struct serve_xmig *n;
	int ret;

	if (!d || !bm || !tier0 || !x) {
		errno = EINVAL;
		return NULL;
	}
	ret = accel_tier_info(tier0, &ti);
	if (ret || !ti.blocks || !accel_tier_block_addr(tier0, 0)) {
		errno = ret ? -ret : EOPNOTSUPP;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->buf = malloc(XMSG_MAX);
	if (!n->buf) {
		free(n);
		errno = ENOMEM;
		return NULL;
	}
	n->d = d;
	n->bm = bm;
	n->tier = tier0;
	n->x = x;
	n->block_bytes = ti.block_bytes;
	n->nr_blocks = ti.blocks;
	n->block_tokens = serve_engine_block_tokens(serve_driver_engine(d));
	if (ops)
		n->ops = *ops;
	n->arg = arg;
	n->timeout_ms = SERVE_XMIG_TIMEOUT_MS;
	n->max_stages = SERVE_XMIG_MAX_STAGES;
	n->final_blocks = SERVE_XMIG_FINAL_BLOCKS;
	ret = accel_xfer_mem_map(x, accel_tier_block_addr(tier0, 0),
				 (size_t)ti.blocks * ti.block_bytes, &n->mem);
	if (ret) {
		free(n->buf);
		free(n);
		errno = -ret;
		return NULL;
	}
	return n;
}

void serve_xmig_set_stages(struct serve_xmig *n, uint32_t max_stages, uint32_t final_blocks)
{
	if (!n)
		return;
	n->max_stages = max_stages;
	n->final_blocks = final_blocks;
}

void serve_xmig_set_timeout(struct serve_xmig *n, uint32_t ms)
{
	if (n)
		n->timeout_ms = ms ? ms : SERVE_XMIG_TIMEOUT_MS;
}

void serve_xmig_forget(struct serve_xmig *n, struct accel_xfer_ep *ep)
{
	struct xpeer *p = n && ep ? peer_of(n, ep, false) : NULL;

	if (!p)
		return;
	fail_ep(n, ep, -ECONNABORTED);
	p = peer_of(n, ep, false);
	accel_xfer_rkey_destroy(p->rk);
	if (p->accepted)
		accel_xfer_ep_close(ep);
	*p = n->p[--n->nr_p];
}

unsigned int serve_xmig_pending(const struct serve_xmig *n)
{
	return n ? n->nr : 0;
}

void serve_xmig_destroy(struct serve_xmig *n)
{
	if (!n)
		return;
	while (n->nr) {
		struct xmig *m = &n->m[0];

		if (is_source(m))
			source_failed(n, m, -ECANCELED, true);
		else
			dest_abort(n, m, -ECANCELED, true);
	}
	for (unsigned int i = 0; i < n->nr_p; i++) {
		accel_xfer_rkey_destroy(n->p[i].rk);
		if (n->p[i].accepted)
			accel_xfer_ep_close(n->p[i].ep);
	}
	accel_xfer_mem_unmap(n->mem);
	free(n->p);
	free(n->m);
	free(n->buf);
	free(n);
}
