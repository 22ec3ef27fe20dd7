// SPDX-License-Identifier: MIT
/* kvaccel-serve - experts handed over by a peer on the node through kvacceld (moe_peer.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memfd.h"
#include "moe_peer.h"

/* The tag of batch @b of answer @id; the WANT's and a refusal's batch numbers. */
#define TAG(id, b)	(SERVE_MOE_TAG | (uint64_t)(id) << 24 | (uint64_t)(b))
#define BATCH_WANT	0xfffffeu
#define BATCH_REFUSAL	0xffffffu

/*
 * An answer in progress: @e's entries from @next on not sent yet (their fds
 * ours). A hand-off's call may run the connection's callbacks (its DONE of
 * an earlier batch, another engine's WANT): inside one (@sending) those
 * only count and queue, and serve_moe_peer_step() sends and drops; outside,
 * they send at once.
 */
struct give {
	char to[32];
	uint64_t id;
	struct accel_moe_store_share *e;
	uint32_t n, next, inflight;
	int32_t status;		/* < 0: a refusal to send (e is NULL) */
	bool refusal_sent, failed;
};

struct serve_moe_peer {
	struct accel_engine *e;
	uint64_t model;
	struct give **g;	/* pointers: a WANT in a callback may grow the array */
	uint32_t nr_g;
	bool sending;		/* in accel_engine_handoff() (see struct give) */
	uint64_t next_id;
	/* The fetch in progress (serve_moe_peer_fetch()). */
	bool fetching, answered;
	char peer[32];
	uint32_t layers, experts;
	struct accel_moe_store_share *got;
	bool *seen;
	uint32_t total, received;
	int32_t status;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct serve_moe_peer *serve_moe_peer_create(struct accel_engine *e, uint64_t model)
{
	struct serve_moe_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->e = e;
	p->model = model;
	p->next_id = 1;
	return p;
}

void serve_moe_peer_free(struct accel_moe_store_share *e, uint32_t n)
{
	for (uint32_t i = 0; e && i < n; i++)
		if (e[i].fd >= 0)
			close(e[i].fd);
	free(e);
}

static void give_drop(struct serve_moe_peer *p, uint32_t i)
{
	struct give *g = p->g[i];

	serve_moe_peer_free(g->e, g->n);	/* the sent ones' fds are -1 already */
	free(g);
	p->g[i] = p->g[--p->nr_g];
}

static void fetch_reset(struct serve_moe_peer *p)
{
	for (uint32_t i = 0; p->got && i < p->total; i++)
		if (p->seen[i])
			close(p->got[i].fd);
	free(p->got);
	free(p->seen);
	p->got = NULL;
	p->seen = NULL;
	p->fetching = p->answered = false;
	p->total = p->received = 0;
	p->status = 0;
}

void serve_moe_peer_destroy(struct serve_moe_peer *p)
{
	if (!p)
		return;
	while (p->nr_g)
		give_drop(p, 0);
	free(p->g);
	fetch_reset(p);
	free(p);
}

unsigned int serve_moe_peer_pending(const struct serve_moe_peer *p)
{
	return p ? p->nr_g : 0;
}

static int send_msg(struct serve_moe_peer *p, const char *to, uint64_t tag,
		    struct serve_moe_msg *m, const struct serve_moe_entry *ent,
		    const struct accel_moe_store_share *e)
{
	enum accel_handoff_kind kinds[ACCEL_HANDOFF_MAX] = { ACCEL_HANDOFF_MEMFD };
	int fds[ACCEL_HANDOFF_MAX], ret;

	m->magic = SERVE_MOE_MSG_MAGIC;
	m->size = sizeof(*m) + (uint64_t)m->count * sizeof(*ent);
	ret = serve_memfd_sealed(m, sizeof(*m), ent, m->count * sizeof(*ent), NULL, 0);
	if (ret < 0)
		return ret;
	fds[0] = ret;
	for (uint32_t i = 0; i < m->count; i++) {
		fds[1 + i] = e[i].fd;
		kinds[1 + i] = ACCEL_HANDOFF_REGION;
	}
	/* The library duplicates what it sends: ours are closed once it took them. */
	p->sending = true;
	ret = accel_engine_handoff(p->e, to, tag, fds, kinds, m->count + 1);
	p->sending = false;
	close(fds[0]);
	return ret;
}

/* Send @g's next batch (or its refusal). 0, or -errno (-EBUSY and the like: later). */
static int give_send(struct serve_moe_peer *p, struct give *g)
{
	struct serve_moe_entry ent[SERVE_MOE_BATCH];
	struct serve_moe_msg m = { .kind = SERVE_MOE_COPIES, .model = p->model };
	uint32_t i;
	int ret;

	if (g->status) {
		m.status = g->status;
		ret = send_msg(p, g->to, TAG(g->id, BATCH_REFUSAL), &m, NULL, NULL);
		if (!ret) {
			g->refusal_sent = true;
			g->inflight++;
		}
		return ret;
	}
	m.first = g->next;
	m.total = g->n;
	m.count = g->n - g->next < SERVE_MOE_BATCH ? g->n - g->next : SERVE_MOE_BATCH;
	for (i = 0; i < m.count; i++)
		ent[i] = (struct serve_moe_entry) { .layer = g->e[g->next + i].layer,
						    .expert = g->e[g->next + i].expert,
						    .node = g->e[g->next + i].node };
	ret = send_msg(p, g->to, TAG(g->id, g->next / SERVE_MOE_BATCH), &m, ent, g->e + g->next);
	if (ret)
		return ret;
	for (i = 0; i < m.count; i++) {
		close(g->e[m.first + i].fd);
		g->e[m.first + i].fd = -1;
	}
	g->next = m.first + m.count;
	g->inflight++;
	return 0;
}

static bool later(int err)
{
	return err == -EBUSY || err == -EDQUOT || err == -EMFILE || err == -ENOSPC;
}

/* Send what answer @i may send now, or drop it when it is over; false when dropped. */
static bool give_pump(struct serve_moe_peer *p, uint32_t i)
{
	struct give *g = p->g[i];

	while (!g->failed && g->inflight < SERVE_MOE_INFLIGHT &&
	       (g->status ? !g->refusal_sent : g->next < g->n)) {
		int ret = give_send(p, g);

		if (later(ret))
			break;	/* the daemon's limits: the next step tries again */
		if (ret) {
			fprintf(stderr, "kvaccel-serve: experts to %s: hand-off failed: %s\n", g->to,
				strerror(-ret));
			g->failed = true;
		}
	}
	if (g->inflight)
		return true;
	if (g->failed || (g->status ? g->refusal_sent : g->next == g->n)) {
		if (!g->failed && !g->status)
			fprintf(stderr, "kvaccel-serve: experts to %s: %u copies handed over\n",
				g->to, g->n);
		give_drop(p, i);
		return false;
	}
	return true;
}

void serve_moe_peer_step(struct serve_moe_peer *p)
{
	for (uint32_t i = 0; p && i < p->nr_g;)
		if (give_pump(p, i))
			i++;
}

bool serve_moe_peer_sent(struct serve_moe_peer *p, uint64_t tag, int status)
{
	uint64_t id = (tag & ~SERVE_MOE_TAG) >> 24;
	uint32_t i;

	if (!p || !(tag & SERVE_MOE_TAG))
		return false;
	if ((tag & 0xffffffu) == BATCH_WANT) {
		if (p->fetching && status) {
			p->status = status;	/* the peer never took the question */
			p->answered = true;
		}
		return true;
	}
	for (i = 0; i < p->nr_g && p->g[i]->id != id; i++)
		;
	if (i == p->nr_g || !p->g[i]->inflight)
		return true;
	p->g[i]->inflight--;
	if (status && !p->g[i]->failed) {
		fprintf(stderr, "kvaccel-serve: experts to %s: refused: %s\n", p->g[i]->to,
			strerror(-status));
		p->g[i]->failed = true;
	}
	if (!p->sending)
		give_pump(p, i);	/* else counted only (see struct give) */
	return true;
}

/* Read message @fd: 0 and *@m (malloc'd, its entries after it) or -EPROTO. */
static int read_msg(int fd, struct serve_moe_msg **m)
{
	size_t len;
	int ret = serve_memfd_read(fd, sizeof(**m), (void **)m, &len);

	if (ret)
		return ret;
	if ((*m)->magic != SERVE_MOE_MSG_MAGIC || (*m)->size != len ||
	    (*m)->count > SERVE_MOE_BATCH ||
	    len != sizeof(**m) + (size_t)(*m)->count * sizeof(struct serve_moe_entry)) {
		free(*m);
		return -EPROTO;
	}
	return 0;
}

bool serve_moe_peer_is_msg(const struct accel_handoff *h)
{
	uint32_t magic = 0;

	return h->count && h->kinds[0] == ACCEL_HANDOFF_MEMFD &&
	       pread(h->fds[0], &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
	       magic == SERVE_MOE_MSG_MAGIC;
}

/* WANT from @from: export the store's copies and start handing them over (or refuse). */
static int answer(struct serve_moe_peer *p, struct serve_moe *moe, const char *from,
		  const struct serve_moe_msg *m)
{
	struct accel_moe_store *s = serve_moe_store(moe);
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct give g = { .id = p->next_id++ }, **ng, *ag;
	int n = 0, got;

	if (m->count || strlen(from) >= sizeof(g.to))
		return -EPROTO;
	snprintf(g.to, sizeof(g.to), "%s", from);
	if (!s || accel_moe_store_stats(s, &st))
		g.status = -ENOENT;
	else if (m->model != p->model || m->layers != st.layers || m->experts != st.experts)
		g.status = -EINVAL;
	if (!g.status) {
		n = accel_moe_store_export(s, NULL, 0);
		g.e = n > 0 ? calloc((size_t)n, sizeof(*g.e)) : NULL;
		got = g.e ? accel_moe_store_export(s, g.e, (uint32_t)n) : n > 0 ? -ENOMEM : n;
		if (got < 0) {
			free(g.e);
			g.e = NULL;
			g.status = got ? got : -ENOENT;
		} else {
			g.n = (uint32_t)(got < n ? got : n);
		}
	}
	ng = realloc(p->g, (p->nr_g + 1) * sizeof(*p->g));
	ag = ng ? malloc(sizeof(*ag)) : NULL;
	if (ng)
		p->g = ng;
	if (!ag) {
		serve_moe_peer_free(g.e, g.n);
		return -ENOMEM;
	}
	*ag = g;
	p->g[p->nr_g++] = ag;
	if (g.status)
		fprintf(stderr, "kvaccel-serve: experts asked for by %s: refused: %s\n", from,
			g.status == -ENOENT ? "no expert store here" :
			g.status == -EINVAL ? "another model" : strerror(-g.status));
	else
		fprintf(stderr, "kvaccel-serve: experts asked for by %s: handing over %u copies\n",
			from, g.n);
	if (!p->sending)
		give_pump(p, p->nr_g - 1);	/* else from the next step (see struct give) */
	return 0;
}

/* COPIES for the fetch in progress: the entries and their fds kept. */
static int take(struct serve_moe_peer *p, const struct accel_handoff *h,
		const struct serve_moe_msg *m)
{
	const struct serve_moe_entry *ent = (const void *)(m + 1);
	uint32_t i;

	if (!p->fetching || p->answered || strcmp(h->from, p->peer))
		return -EPROTO;
	if (m->status) {
		if (m->status > 0 || m->count || h->count != 1)
			return -EPROTO;
		p->status = m->status;
		p->answered = true;
		close(h->fds[0]);
		return 0;
	}
	if (!m->total || m->total > (1u << 22) || m->first > m->total ||
	    m->count > m->total - m->first || h->count != m->count + 1 ||
	    (p->total && m->total != p->total))
		return -EPROTO;
	for (i = 0; i < m->count; i++)
		if (h->kinds[1 + i] != ACCEL_HANDOFF_REGION || ent[i].layer >= p->layers ||
		    ent[i].expert >= p->experts)
			return -EPROTO;
	if (!p->got) {
		p->got = calloc(m->total, sizeof(*p->got));
		p->seen = calloc(m->total, sizeof(*p->seen));
		if (!p->got || !p->seen) {
			free(p->got);
			free(p->seen);
			p->got = NULL;
			p->seen = NULL;
			return -ENOMEM;
		}
		p->total = m->total;
	}
	for (i = 0; i < m->count; i++)
		if (p->seen[m->first + i])
			return -EEXIST;
	for (i = 0; i < m->count; i++) {
		p->got[m->first + i] = (struct accel_moe_store_share) {
			.layer = ent[i].layer, .expert = ent[i].expert, .node = ent[i].node,
			.fd = h->fds[1 + i] };
		p->seen[m->first + i] = true;
	}
	p->received += m->count;
	close(h->fds[0]);
	return 0;
}

int serve_moe_peer_receive(struct serve_moe_peer *p, struct serve_moe *moe,
			   const struct accel_handoff *h)
{
	struct serve_moe_msg *m;
	int ret;

	if (!p)
		return -EOPNOTSUPP;
	ret = read_msg(h->fds[0], &m);
	if (ret)
		return ret;
	if (m->kind == SERVE_MOE_WANT) {
		ret = h->count == 1 ? answer(p, moe, h->from, m) : -EPROTO;
		if (!ret)
			close(h->fds[0]);
	} else if (m->kind == SERVE_MOE_COPIES) {
		ret = take(p, h, m);
	} else {
		ret = -EPROTO;
	}
	free(m);
	return ret;
}

int serve_moe_peer_fetch(struct serve_moe_peer *p, const char *peer, uint32_t layers,
			 uint32_t experts, uint64_t expert_bytes, int timeout_ms,
			 struct accel_moe_store_share **out, uint32_t *n, char *err,
			 size_t errlen)
{
	struct serve_moe_msg m = { .kind = SERVE_MOE_WANT, .model = p->model,
				   .expert_bytes = expert_bytes, .layers = layers,
				   .experts = experts };
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	int ret;

	if (p->fetching || strlen(peer) >= sizeof(p->peer)) {
		snprintf(err, errlen, "--moe-from %s: bad peer name", peer);
		return -EINVAL;
	}
	fetch_reset(p);
	p->fetching = true;
	snprintf(p->peer, sizeof(p->peer), "%s", peer);
	p->layers = layers;
	p->experts = experts;
	ret = send_msg(p, peer, TAG(0, BATCH_WANT), &m, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "asking %s for its experts: %s", peer, strerror(-ret));
		fetch_reset(p);
		return ret;
	}
	while (!p->answered && !(p->total && p->received == p->total)) {
		uint64_t now = now_ns();

		if (now >= deadline) {
			ret = -ETIMEDOUT;
			snprintf(err, errlen, "%s did not hand over its experts within %d ms "
				 "(%u of %u copies came)", peer, timeout_ms, p->received, p->total);
			break;
		}
		ret = accel_engine_dispatch(p->e, (int64_t)(deadline - now));
		if (ret < 0) {
			snprintf(err, errlen, "waiting for %s's experts: kvacceld: %s", peer,
				 strerror(-ret));
			break;
		}
		ret = 0;
	}
	if (!ret && p->answered) {
		ret = p->status;
		if (ret == -ETIMEDOUT)	/* the daemon's hand-off timeout: nobody took the question */
			snprintf(err, errlen, "%s did not hand over its experts within the daemon's "
				 "hand-off timeout (no such engine?)", peer);
		else
			snprintf(err, errlen, "%s gives no experts: %s", peer,
				 ret == -ENOENT ? "it has no expert store (--moe-store)" :
				 ret == -EINVAL ? "it serves another model" : strerror(-ret));
	}
	if (ret) {
		fetch_reset(p);
		return ret;
	}
	*out = p->got;
	*n = p->total;
	p->got = NULL;
	free(p->seen);
	p->seen = NULL;
	p->total = p->received = 0;
	p->fetching = false;
	return 0;
}
