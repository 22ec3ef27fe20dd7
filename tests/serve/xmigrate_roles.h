/* SPDX-License-Identifier: MIT */
/*
 * The two sides of the cross-node migration tests (migrate_net.h), shared
 * by tests/serve/xmigrate_unit.c (two processes on 127.0.0.1) and
 * tests/serve/xmigrate_vm.c (two network namespaces in the VM): the
 * requests, their references, a destination and a source in each of
 * their variants. A failed check exits the process with its line number.
 */
#ifndef XMIGRATE_ROLES_H
#define XMIGRATE_ROLES_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "engine.h"
#include "migrate.h"
#include "migrate_net.h"
#include "stack.h"

#define NOTHER	3
#define LONG_N	100		/* the long request's prompt */
#define LONG_MAX 110		/* its max_tokens */
#define MAXTOK	128
#define S	1000000000LL

/* In the children: a failed check exits with the line number. */
#define CK(e)									\
	do {									\
		if (!(e)) {							\
			fprintf(stderr, "# %s:%d: check failed: %s\n", __FILE__,	\
				__LINE__, #e);					\
			_exit(100 + (__LINE__ % 100));				\
		}								\
	} while (0)
#define CKR(call, want)								\
	do {									\
		int r_ = (call);						\
		if (r_ != (want)) {						\
			fprintf(stderr, "# %s:%d: %s = %d (%s), not %d\n",	\
				__FILE__, __LINE__, #call, r_, strerror(-r_),	\
				want);						\
			_exit(100 + (__LINE__ % 100));				\
		}								\
	} while (0)

struct result {
	uint32_t n;
	uint64_t dig[MAXTOK];
};

static struct serve_model *model;
static struct result ref_long, ref_other[NOTHER];

static uint32_t long_tokens(int32_t *tok)
{
	for (uint32_t j = 0; j < LONG_N; j++)
		tok[j] = (int32_t)((j * 7 + 3) % 200 + 32);
	return LONG_N;
}

static struct serve_params long_params(void)
{
	return (struct serve_params) { .max_tokens = LONG_MAX, .seed = 11, .temperature = 0.7f };
}

static uint32_t other_tokens(uint32_t i, int32_t *tok)
{
	for (uint32_t j = 0; j < 20; j++)
		tok[j] = (int32_t)(i * 20 + j + 40);
	return 20;
}

static struct serve_params other_params(uint32_t i)
{
	return (struct serve_params) { .max_tokens = 30 + 10 * i, .seed = 90 + i,
				       .temperature = i % 2 ? 0.8f : 0.0f };
}

static int stack_up(struct serve_stack *s, uint32_t blocks)
{
	struct serve_driver_opts d = { .max_tokens = 256 };
	struct serve_stack_opts so = { .model = model, .blocks = blocks, .swap_blocks = 32,
				       .memfd = true, .threads = 1, .max_ctx = 256, .sched = &d };
	char err[256];
	int ret = serve_stack_create(s, &so, err, sizeof(err));

	if (ret)
		fprintf(stderr, "# stack: %s\n", err);
	return ret;
}

static int result_of(struct serve_driver *d, uint32_t h, struct result *r)
{
	struct serve_driver_info in;

	if (serve_driver_info(d, h, &in) || in.req.state != SERVE_FINISHED ||
	    in.req.n_generated > MAXTOK)
		return -1;
	r->n = in.req.n_generated;
	memcpy(r->dig, in.req.digests, r->n * sizeof(uint64_t));
	return 0;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->n == b->n && !memcmp(a->dig, b->dig, a->n * sizeof(uint64_t));
}

static uint32_t tier0_used(const struct serve_stack *s)
{
	ACCEL_OPTS(accel_bm_tier_stats, st);

	if (accel_bm_tier_stats(s->bm, 0, &st))
		return UINT32_MAX;
	return (uint32_t)(st.used + st.reserved);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The references: each request alone on a fresh stack. */
static int refs_compute(void)
{
	struct serve_config c;
	int32_t tok[LONG_N];
	uint32_t h, n, i;

	serve_config_default(&c);
	model = serve_model_from_seed(&c, 5);
	if (!model)
		return -ENOMEM;
	for (i = 0; i <= NOTHER; i++) {
		struct serve_params p = i < NOTHER ? other_params(i) : long_params();
		struct serve_stack s;

		if (stack_up(&s, 64))
			return -EIO;
		n = i < NOTHER ? other_tokens(i, tok) : long_tokens(tok);
		if (serve_driver_add(s.driver, tok, n, &p, &h) ||
		    serve_driver_run_all(s.driver, NULL) ||
		    result_of(s.driver, h, i < NOTHER ? &ref_other[i] : &ref_long))
			return -EIO;
		serve_stack_destroy(&s);
	}
	return 0;
}

/* ---- the children ---- */

enum dst_kind {
	DST_OK,		/* takes the request, runs it to its end */
	DST_SMALL,	/* 4 blocks: refuses */
	DST_DIE,	/* killed (SIGKILL) mid-stages */
	DST_ABORTED,	/* expects an ABORT (the source's request finished; killed source) */
	DST_GARBAGE,	/* a fake: answers BEGIN with garbage */
	DST_EITHER,	/* as DST_OK, or an abort (its source killed around its commit) */
};

enum src_kind {
	SRC_OK,		/* migrates, expects COMMITTED */
	SRC_RESUME,	/* migrates, expects a failure: the request finishes here */
	SRC_DIE,	/* killed (SIGKILL) mid-stages */
	SRC_GARBAGE,	/* a fake: garbage, then a BEGIN with a broken image */
	SRC_CMD,	/* as SRC_RESUME, src_mid_cmd run (once) mid-stages */
	SRC_LOST,	/* no answer past its commit: the request failed to its client here */
};

/* SRC_CMD's command (system()): what breaks the migration, e.g. the network dropped. */
static const char *src_mid_cmd;
/* Run once the migration is over (SRC_CMD: the network back, so both ends close cleanly). */
static const char *src_after_cmd;
/* Engine steps the source runs between two serve_xmig_step()s (0: 1). */
static uint32_t src_burst;
/* SRC_OK: the round trips it must have taken while stopped (0: any). */
static uint32_t src_want_rtts;
/* The source's timeout (0: SERVE_XMIG_TIMEOUT_MS). */
static uint32_t src_timeout_ms;

struct cb {
	int done, status, arrived, aborted, abort_status;
	uint32_t h;
	struct serve_xmig_stats st;
};

static void on_done(void *arg, uint64_t id, int status, const struct serve_xmig_stats *st)
{
	struct cb *c = arg;

	(void)id;
	c->done++;
	c->status = status;
	c->st = *st;
	fprintf(stderr, "# source: migration done: %d (%s) stages %u blocks %u tokens %u "
		"bytes %llu (final %llu, %u round trips) downtime %llu us total %llu us\n", status,
		strerror(-status), st->stages, st->blocks, st->tokens,
		(unsigned long long)st->bytes_copied, (unsigned long long)st->final_bytes,
		st->stop_rtts, (unsigned long long)st->downtime_us, (unsigned long long)st->total_us);
}

static void on_arrived(void *arg, uint64_t id, uint32_t h, const struct serve_migr_hdr *hdr)
{
	struct cb *c = arg;

	(void)id;
	if (hdr->magic != SERVE_MIGR_MAGIC)
		c->aborted++;	/* not the image it committed: counted as a failure */
	c->arrived++;
	c->h = h;
}

static void on_aborted(void *arg, uint64_t id, int status)
{
	struct cb *c = arg;

	(void)id;
	c->aborted++;
	c->abort_status = status;
}

static const struct serve_xmig_ops cb_ops = {
	.done = on_done, .arrived = on_arrived, .aborted = on_aborted,
};

static struct accel_xfer *mkx(void)
{
	struct accel_xfer *x = accel_xfer_create(NULL);

	if (!x)
		fprintf(stderr, "# accel_xfer_create: %s\n", strerror(errno));
	CK(x);
	return x;
}

/* A fake destination: BEGIN is answered with bytes that are no message. */
static int dst_garbage(struct accel_xfer *x)
{
	static char buf[1 << 20];
	struct accel_xfer_ep *ep = NULL, *from;
	char junk[40];
	size_t len = sizeof(buf);
	int got = 0;

	memset(junk, 0x5a, sizeof(junk));
	CKR(accel_xfer_recv(x, &from, buf, &len, 10 * S), 0);
	CK(((struct serve_xmsg *)buf)->kind == SERVE_XMSG_BEGIN);
	CKR(accel_xfer_send(from, junk, sizeof(junk), S), 0);
	/* The source aborts: its ABORT comes back. */
	for (;;) {
		len = sizeof(buf);
		if (accel_xfer_recv(x, &from, buf, &len, 10 * S))
			break;
		if (len >= sizeof(struct serve_xmsg) &&
		    ((struct serve_xmsg *)buf)->kind == SERVE_XMSG_ABORT) {
			got = 1;
			break;
		}
	}
	CK(got);
	if (!accel_xfer_accept(x, &ep, S))
		accel_xfer_ep_close(ep);
	return 0;
}

static int dst_role(enum dst_kind kind, struct accel_xfer *x, uint32_t timeout_ms)
{
	struct serve_stack s;
	struct serve_xmig *n;
	struct cb c = { 0 };
	double t0 = now_s(), pend = 0;
	struct result r;

	if (kind == DST_GARBAGE)
		return dst_garbage(x);
	CKR(stack_up(&s, kind == DST_SMALL ? 4 : 64), 0);
	n = serve_xmig_create(s.driver, s.bm, s.tiers[0], x, &cb_ops, &c);
	CK(n);
	serve_xmig_set_timeout(n, timeout_ms);
	while (now_s() - t0 < 40) {
		CK(serve_driver_step(s.driver, NULL) >= 0);
		serve_xmig_step(n);
		if (kind == DST_DIE && serve_xmig_pending(n)) {
			if (!pend)
				pend = now_s();
			else if (now_s() - pend > 0.02)
				kill(getpid(), SIGKILL);
		}
		if (c.aborted || (c.arrived && !serve_xmig_pending(n)))
			break;
		if (!serve_xmig_pending(n))
			usleep(500);
	}
	if (kind == DST_EITHER)
		kind = c.arrived ? DST_OK : DST_ABORTED;
	if (kind == DST_OK) {
		CK(c.arrived == 1 && !c.aborted);
		CKR(serve_driver_run_all(s.driver, NULL), 0);
		CKR(result_of(s.driver, c.h, &r), 0);
		CK(same(&r, &ref_long));
		CKR(serve_driver_release(s.driver, c.h), 0);
	} else {
		CK(c.aborted == 1 && !c.arrived);
		fprintf(stderr, "# destination: aborted: %s\n", strerror(-c.abort_status));
	}
	CK(!serve_xmig_pending(n));
	CK(tier0_used(&s) == 0);
	serve_xmig_destroy(n);
	serve_stack_destroy(&s);
	return 0;
}

/* A fake source: garbage, a message that lies about its size, a BEGIN with a broken image. */
static int src_garbage(struct accel_xfer *x, struct accel_xfer_ep *ep)
{
	static char buf[1 << 16];
	struct serve_xmsg h = { .magic = SERVE_XMSG_MAGIC, .version = SERVE_XMSG_VERSION,
				.kind = SERVE_XMSG_BEGIN, .id = 7 };
	char img[sizeof(h) + 64];
	size_t len;

	memset(buf, 0xa5, 100);
	CKR(accel_xfer_send(ep, buf, 100, S), 0);
	h.size = 1000;	/* not its length */
	CKR(accel_xfer_send(ep, &h, sizeof(h), S), 0);
	h.kind = 99;
	h.size = sizeof(h);
	CKR(accel_xfer_send(ep, &h, sizeof(h), S), 0);
	h.kind = SERVE_XMSG_BEGIN;
	h.size = sizeof(img);
	h.image_len = 64;
	memset(img, 0x33, sizeof(img));
	memcpy(img, &h, sizeof(h));
	CKR(accel_xfer_send(ep, img, sizeof(img), S), 0);
	len = sizeof(buf);
	CKR(accel_xfer_recv(x, NULL, buf, &len, 10 * S), 0);
	CK(len >= sizeof(h));
	memcpy(&h, buf, sizeof(h));
	CK(h.kind == SERVE_XMSG_BLOCKS && h.status < 0 && h.id == 7 && !h.nr_blocks);
	return 0;
}

static int src_role(enum src_kind kind, struct accel_xfer *x, struct accel_xfer_ep *ep,
		    uint32_t max_stages, uint32_t final_blocks)
{
	struct serve_params lp = long_params();
	struct serve_driver_info in;
	struct serve_stack s;
	struct serve_xmig *n;
	struct cb c = { 0 };
	uint32_t hl, ho[NOTHER], i;
	int32_t tok[LONG_N];
	double t0, pend = 0;
	struct result r;

	if (kind == SRC_GARBAGE)
		return src_garbage(x, ep);
	CKR(stack_up(&s, 64), 0);
	n = serve_xmig_create(s.driver, s.bm, s.tiers[0], x, &cb_ops, &c);
	CK(n);
	serve_xmig_set_stages(n, max_stages, final_blocks);
	serve_xmig_set_timeout(n, src_timeout_ms);
	CKR(serve_driver_add(s.driver, tok, long_tokens(tok), &lp, &hl), 0);
	for (i = 0; i < NOTHER; i++) {
		struct serve_params p = other_params(i);

		CKR(serve_driver_add(s.driver, tok, other_tokens(i, tok), &p, &ho[i]), 0);
	}
	do {
		CK(serve_driver_step(s.driver, NULL) >= 0);
		CKR(serve_driver_info(s.driver, hl, &in), 0);
	} while (in.sched.state != ACCEL_SCHED_DECODING || in.req.n_generated < 3);
	CKR(serve_xmig_start(n, 1, hl, ep), 0);
	CKR(serve_xmig_start(n, 1, hl, ep), -EEXIST);
	t0 = now_s();
	while (now_s() - t0 < 40) {
		for (i = 0; i < (src_burst ? src_burst : 1); i++)
			CK(serve_driver_step(s.driver, NULL) >= 0);
		serve_xmig_step(n);
		if ((kind == SRC_DIE || kind == SRC_CMD) && serve_xmig_pending(n)) {
			if (!pend) {
				pend = now_s();
			} else if (pend > 0 && now_s() - pend > 0.02) {
				if (kind == SRC_DIE)
					kill(getpid(), SIGKILL);
				if (src_mid_cmd)
					fprintf(stderr, "# source: mid-stages: %s: %d\n",
						src_mid_cmd, system(src_mid_cmd));
				pend = -1;
			}
		}
		if (c.done)
			break;
	}
	if (kind == SRC_CMD && src_after_cmd)
		fprintf(stderr, "# source: after: %s: %d\n", src_after_cmd, system(src_after_cmd));
	CK(c.done == 1);
	CK(!serve_xmig_pending(n));
	CKR(serve_driver_run_all(s.driver, NULL), 0);
	for (i = 0; i < NOTHER; i++) {
		CKR(result_of(s.driver, ho[i], &r), 0);
		CK(same(&r, &ref_other[i]));
		CKR(serve_driver_release(s.driver, ho[i]), 0);
	}
	CKR(serve_driver_info(s.driver, hl, &in), 0);
	if (kind == SRC_OK) {
		CKR(c.status, 0);
		CK(in.req.state == SERVE_MIGRATED);
		if (!final_blocks)	/* every stage leaves the partial block unsent */
			CK(c.st.stages == max_stages);
		CK(c.st.stages <= max_stages);
		CK(c.st.stop_rtts == 1 || c.st.stop_rtts == 2);
		if (src_want_rtts)
			CK(c.st.stop_rtts == src_want_rtts);
		CK(c.st.blocks == (c.st.tokens - 1 + 15) / 16);
		CK(c.st.bytes_copied == (uint64_t)c.st.blocks * (c.st.bytes_copied / c.st.blocks));
		CK(c.st.bytes_copied % c.st.blocks == 0);
		{
			ACCEL_OPTS(accel_tier_info, ti);
			uint64_t sum = c.st.final_bytes;

			CKR(accel_tier_info(s.tiers[0], &ti), 0);
			CK(c.st.bytes_copied == (uint64_t)c.st.blocks * ti.block_bytes);
			for (i = 0; i < SERVE_XMIG_STAGES_MAX; i++)
				sum += c.st.stage_bytes[i];
			CK(sum == c.st.bytes_copied);
			if (c.st.stages)
				CK(c.st.stage_bytes[0] > 0);
			else
				CK(c.st.final_bytes == c.st.bytes_copied);
		}
	} else if (kind == SRC_LOST) {
		/* Neither resumed here nor silently gone: failed, the others unharmed. */
		CK(c.status < 0);
		CK(in.sched.state == ACCEL_SCHED_ABORTED);
		CK(in.req.n_generated < in.req.max_tokens);	/* not decoded on here */
	} else {
		CK(c.status < 0);
		CKR(result_of(s.driver, hl, &r), 0);
		CK(same(&r, &ref_long));
	}
	CKR(serve_driver_release(s.driver, hl), 0);
	CK(tier0_used(&s) == 0);
	serve_xmig_destroy(n);
	serve_stack_destroy(&s);
	return kind == SRC_OK ? 0 : -c.status;	/* the parent checks why */
}


#endif /* XMIGRATE_ROLES_H */
