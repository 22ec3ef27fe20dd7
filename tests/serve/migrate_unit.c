// SPDX-License-Identifier: MIT
/*
 * Live migration through kvaccel-serve's driver (migrate.h), two engines in
 * one process on memfd tiers, the KV copied block by block between them
 * (what a cross-node transfer does; on a node the pages change hands
 * instead): requests moved back and forth while they decode finish with
 * the digests of the same requests run alone; a migration undone resumes
 * on the source; the destination's refusals (not an image, another model,
 * no room, no running slot) leave nothing behind; the source's refusals.
 * cmocka, ASan/UBSan.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver.h"
#include "engine.h"
#include "migrate.h"
#include "stack.h"

#define NREQ	6
#define MAXTOK	24

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog, twice, and then some more.",
	"kvaccel: pinned host memory for KV caches and weights, remapped without copying.",
	"0123456789abcdefghij",
	"Paged attention reads K and V through block tables.",
	"zz",
};

struct result {
	uint32_t n;
	uint64_t dig[MAXTOK];
};

static struct serve_model *model;
static struct result ref[NREQ];

static uint32_t tokens_of(uint32_t i, int32_t *tok)
{
	uint32_t n = (uint32_t)strlen(prompts[i]), j;

	for (j = 0; j < n; j++)
		tok[j] = (unsigned char)prompts[i][j];
	return n;
}

static struct serve_params params_of(uint32_t i)
{
	return (struct serve_params) { .max_tokens = 12 + 2 * i, .seed = 70 + i,
				       .temperature = i % 2 ? 0.8f : 0.0f,
				       .priority = (int32_t)(i % 3), .client = i % 2 };
}

static void stack_up(struct serve_stack *s, uint32_t blocks, uint32_t max_seqs)
{
	struct serve_driver_opts d = { .max_tokens = 128, .max_seqs = max_seqs };
	struct serve_stack_opts so = { .model = model, .blocks = blocks, .swap_blocks = 32,
				       .memfd = true, .threads = 2, .max_ctx = 256, .sched = &d };
	char err[256];

	assert_int_equal(serve_stack_create(s, &so, err, sizeof(err)), 0);
}

static void result_of(struct serve_driver *d, uint32_t h, struct result *r)
{
	struct serve_driver_info in;

	assert_int_equal(serve_driver_info(d, h, &in), 0);
	assert_int_equal(in.req.state, SERVE_FINISHED);
	r->n = in.req.n_generated;
	assert_true(r->n <= MAXTOK);
	memcpy(r->dig, in.req.digests, r->n * sizeof(uint64_t));
}

static void assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->dig, b->dig, a->n * sizeof(uint64_t));
}

static void assert_nothing_held(const struct serve_stack *s)
{
	ACCEL_OPTS(accel_bm_tier_stats, st);

	assert_int_equal(accel_bm_tier_stats(s->bm, 0, &st), 0);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.reserved, 0);
}

static int setup(void **state)
{
	struct serve_config c;
	uint32_t i, h, n;
	int32_t tok[128];

	(void)state;
	serve_config_default(&c);
	model = serve_model_from_seed(&c, 5);
	assert_non_null(model);
	for (i = 0; i < NREQ; i++) {
		struct serve_params p = params_of(i);
		struct serve_stack s;

		stack_up(&s, 64, 0);
		n = tokens_of(i, tok);
		assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h), 0);
		assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
		result_of(s.driver, h, &ref[i]);
		serve_stack_destroy(&s);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	serve_model_free(model);
	return 0;
}

/* The KV of @mo's blocks into @mi's, as a transfer between nodes would. */
static void copy_kv(const struct serve_stack *from, const struct serve_migr_out *mo,
		    const struct serve_stack *to, const struct serve_migr_in *mi)
{
	ACCEL_OPTS(accel_tier_info, ti);
	uint32_t i;

	assert_int_equal(accel_tier_info(from->tiers[0], &ti), 0);
	assert_int_equal(mo->nr_blocks, mi->nr_blocks);
	for (i = 0; i < mi->nr_blocks; i++)
		memcpy(accel_tier_block_addr(to->tiers[0], mi->blocks[i]),
		       accel_tier_block_addr(from->tiers[0], mo->blocks[i]), ti.block_bytes);
}

/* Move request @h of @a to @b (@flags: SERVE_MIGR_*); returns its handle there. */
static uint32_t migrate(struct serve_stack *a, uint32_t h, struct serve_stack *b, uint32_t flags)
{
	struct serve_migr_out mo;
	struct serve_migr_in mi;
	struct serve_driver_info in;
	uint32_t nh;

	assert_int_equal(serve_driver_migrate_out(a->driver, h, flags, &mo), 0);
	assert_int_equal(serve_driver_info(a->driver, h, &in), 0);
	assert_int_equal(in.req.state, SERVE_RUNNING);	/* on its way */
	assert_int_equal(serve_driver_release(a->driver, h), -EBUSY);
	assert_int_equal(serve_driver_migrate_prepare(b->driver, mo.image, mo.len, &mi), 0);
	copy_kv(a, &mo, b, &mi);
	assert_int_equal(serve_driver_migrate_commit(b->driver, &mi, &nh), 0);
	assert_int_equal(serve_driver_migrate_done(a->driver, &mo), 0);
	assert_int_equal(serve_driver_info(a->driver, h, &in), 0);
	assert_int_equal(in.req.state, SERVE_MIGRATED);
	assert_int_equal(serve_driver_release(a->driver, h), 0);
	return nh;
}

static bool decoding(struct serve_stack *s, uint32_t h)
{
	struct serve_driver_info in;

	return !serve_driver_info(s->driver, h, &in) && in.sched.state == ACCEL_SCHED_DECODING &&
	       in.req.n_generated >= 1;
}

/*
 * Every request moves to the other engine each time it has decoded three
 * more tokens, back and forth, while the others run: the digests are as alone.
 */
static void test_ping_pong(void **state)
{
	struct serve_stack s[2];
	uint32_t where[NREQ], h[NREQ], moves[NREQ] = { 0 }, i, n, steps = 0, done = 0;
	uint32_t last[NREQ] = { 0 };
	int32_t tok[128];

	(void)state;
	stack_up(&s[0], 48, 0);
	stack_up(&s[1], 48, 0);
	for (i = 0; i < NREQ; i++) {
		struct serve_params p = params_of(i);

		where[i] = i % 2;
		n = tokens_of(i, tok);
		assert_int_equal(serve_driver_add(s[where[i]].driver, tok, n, &p, &h[i]), 0);
	}
	while (done < NREQ && steps++ < 2000) {
		for (i = 0; i < 2; i++)
			assert_true(serve_driver_step(s[i].driver, NULL) >= 0);
		done = 0;
		for (i = 0; i < NREQ; i++) {
			struct serve_driver_info in;

			assert_int_equal(serve_driver_info(s[where[i]].driver, h[i], &in), 0);
			if (in.req.state == SERVE_FINISHED) {
				done++;
				continue;
			}
			if (decoding(&s[where[i]], h[i]) && in.req.n_generated >= last[i] + 3) {
				h[i] = migrate(&s[where[i]], h[i], &s[!where[i]],
					       moves[i] % 2 ? SERVE_MIGR_GIVE_PAGES : 0);
				where[i] = !where[i];
				last[i] = in.req.n_generated;
				moves[i]++;
			}
		}
	}
	assert_int_equal(done, NREQ);
	for (i = 0; i < NREQ; i++) {
		struct result r;

		assert_true(moves[i] >= 2);
		result_of(s[where[i]].driver, h[i], &r);
		assert_same(&r, &ref[i]);
		assert_int_equal(serve_driver_release(s[where[i]].driver, h[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		ACCEL_OPTS(accel_sched_stats, st);

		assert_int_equal(serve_driver_stats(s[i].driver, &st), 0);
		assert_true(st.migrated_out > 0 && st.migrated_in > 0);
		assert_int_equal(st.recomputed_tokens, 0);
		assert_nothing_held(&s[i]);
		serve_stack_destroy(&s[i]);
	}
}

/* Run @h on @s until it decodes with at least @n tokens out. */
static void run_to(struct serve_stack *s, uint32_t h, uint32_t n)
{
	struct serve_driver_info in;
	int guard = 500;

	do {
		assert_true(serve_driver_step(s->driver, NULL) >= 0);
		assert_int_equal(serve_driver_info(s->driver, h, &in), 0);
	} while ((!decoding(s, h) || in.req.n_generated < n) && --guard);
	assert_true(guard > 0);
}

/* The destination refuses: the request resumes on the source, nothing stays behind. */
static void test_refused(void **state)
{
	struct serve_stack a, b, small, full, other, busy;
	struct serve_migr_out mo;
	struct serve_migr_in mi;
	struct serve_params p = params_of(1), p2 = params_of(2);
	struct serve_config c;
	struct result r;
	uint32_t h, h2, hb, n;
	int32_t tok[128];
	char *bad;

	(void)state;
	stack_up(&a, 48, 0);
	stack_up(&b, 48, 0);
	stack_up(&small, 4, 0);
	stack_up(&full, 8, 0);
	stack_up(&busy, 48, 1);
	serve_config_default(&c);
	{
		struct serve_model *m2 = serve_model_from_seed(&c, 6);	/* other weights */
		struct serve_stack_opts so = { .model = m2, .blocks = 48, .swap_blocks = 32,
					       .memfd = true, .threads = 1, .max_ctx = 256 };
		struct serve_driver_opts d = { .max_tokens = 128 };
		char err[256];

		so.sched = &d;
		assert_int_equal(serve_stack_create(&other, &so, err, sizeof(err)), 0);
		n = tokens_of(1, tok);
		assert_int_equal(serve_driver_add(a.driver, tok, n, &p, &h), 0);
		n = tokens_of(2, tok);
		assert_int_equal(serve_driver_add(a.driver, tok, n, &p2, &h2), 0);

		/* The source's refusals. */
		assert_int_equal(serve_driver_migrate_out(a.driver, h, 0, &mo), -EINVAL);	/* waiting */
		assert_int_equal(serve_driver_migrate_out(a.driver, 77, 0, &mo), -ENOENT);
		run_to(&a, h, 2);
		assert_int_equal(serve_driver_migrate_out(a.driver, h, 2, &mo), -EINVAL);
		assert_int_equal(serve_driver_migrate_out(a.driver, h, SERVE_MIGR_GIVE_PAGES, &mo), 0);
		assert_non_null(mo.own);
		assert_int_equal(mo.own[0], 1);
		{
			struct serve_migr_out again;

			assert_int_equal(serve_driver_migrate_out(a.driver, h, 0, &again), -EBUSY);
		}

		/* The destination's. */
		bad = malloc(mo.len);
		assert_non_null(bad);
		memcpy(bad, mo.image, mo.len);
		bad[0] ^= 1;
		assert_int_equal(serve_driver_migrate_prepare(b.driver, bad, mo.len, &mi), -EPROTO);
		assert_int_equal(serve_driver_migrate_prepare(b.driver, mo.image, mo.len - 8, &mi),
				 -EPROTO);
		assert_int_equal(serve_driver_migrate_prepare(b.driver, mo.image, 3, &mi), -EPROTO);
		memcpy(bad, mo.image, mo.len);
		((struct serve_migr_hdr *)bad)->n_gen = 1u << 30;
		assert_int_equal(serve_driver_migrate_prepare(b.driver, bad, mo.len, &mi), -EPROTO);
		free(bad);
		assert_int_equal(serve_driver_migrate_prepare(other.driver, mo.image, mo.len, &mi),
				 -EINVAL);
		/* small: never room for it (-E2BIG); then no room now (-ENOSPC). */
		assert_int_equal(serve_driver_migrate_prepare(small.driver, mo.image, mo.len, &mi),
				 -E2BIG);
		assert_nothing_held(&small);
		{
			struct serve_params p3 = params_of(2);
			uint32_t h3;

			n = tokens_of(2, tok);
			assert_int_equal(serve_driver_add(full.driver, tok, n, &p3, &h3), 0);
			run_to(&full, h3, 1);
			assert_int_equal(serve_driver_migrate_prepare(full.driver, mo.image, mo.len,
								      &mi), -ENOSPC);
			assert_int_equal(serve_driver_run_all(full.driver, NULL), 0);
			assert_nothing_held(&full);
		}
		/* busy runs one request at most, and runs one. */
		n = tokens_of(0, tok);
		{
			struct serve_params p0 = params_of(0);

			assert_int_equal(serve_driver_add(busy.driver, tok, n, &p0, &hb), 0);
		}
		run_to(&busy, hb, 1);
		assert_int_equal(serve_driver_migrate_prepare(busy.driver, mo.image, mo.len, &mi), 0);
		copy_kv(&a, &mo, &busy, &mi);
		assert_int_equal(serve_driver_migrate_commit(busy.driver, &mi, &hb), -EBUSY);
		serve_driver_migrate_cancel(busy.driver, &mi);
		assert_int_equal(serve_driver_run_all(busy.driver, NULL), 0);
		assert_nothing_held(&busy);

		/* Undone: the request decodes on the source to the same digests. */
		assert_int_equal(serve_driver_migrate_undo(a.driver, &mo), 0);
		assert_int_equal(serve_driver_run_all(a.driver, NULL), 0);
		result_of(a.driver, h, &r);
		assert_same(&r, &ref[1]);
		result_of(a.driver, h2, &r);
		assert_same(&r, &ref[2]);
		serve_stack_destroy(&other);
		serve_model_free(m2);
	}
	assert_nothing_held(&b);
	serve_stack_destroy(&a);
	serve_stack_destroy(&b);
	serve_stack_destroy(&small);
	serve_stack_destroy(&full);
	serve_stack_destroy(&busy);
}

/* The recompute baseline: only the tokens move, the destination prefills them again. */
static void test_recompute(void **state)
{
	struct serve_stack a, b;
	struct serve_migr_out mo;
	struct serve_params p = params_of(3);
	struct serve_driver_info in;
	struct result r;
	uint32_t h, nh, n;
	int32_t tok[128];

	(void)state;
	stack_up(&a, 48, 0);
	stack_up(&b, 48, 0);
	n = tokens_of(3, tok);
	assert_int_equal(serve_driver_add(a.driver, tok, n, &p, &h), 0);
	run_to(&a, h, 4);
	assert_int_equal(serve_driver_migrate_out(a.driver, h, 0, &mo), 0);
	assert_int_equal(serve_driver_migrate_recompute(b.driver, mo.image, mo.len - 1, &nh),
			 -EPROTO);
	assert_int_equal(serve_driver_migrate_recompute(b.driver, mo.image, mo.len, &nh), 0);
	assert_int_equal(serve_driver_migrate_done(a.driver, &mo), 0);
	assert_int_equal(serve_driver_run_all(b.driver, NULL), 0);
	result_of(b.driver, nh, &r);
	assert_same(&r, &ref[3]);
	assert_int_equal(serve_driver_info(b.driver, nh, &in), 0);
	assert_true(in.sched.prompt_len > n);	/* what it had generated was prefilled too */
	assert_nothing_held(&a);
	assert_int_equal(serve_driver_release(b.driver, nh), 0);
	assert_nothing_held(&b);
	serve_stack_destroy(&a);
	serve_stack_destroy(&b);
}

/*
 * What a node's migration does before the stop: the source's blocks while
 * it decodes on (serve_driver_migrate_blocks()), and the destination's
 * image grown in place to a later one (serve_driver_migrate_grown()): its
 * blocks follow, the refusals change nothing.
 */
static void test_grown(void **state)
{
	struct serve_params p = params_of(1);
	struct serve_stack a, b;
	struct serve_migr_in mi;
	struct serve_migr_hdr *hd;
	uint32_t h, n, n1, *blocks, nr, nr1;
	int32_t tok[128];
	void *img, *img2;
	size_t len, len2;
	char *buf;

	(void)state;
	stack_up(&a, 48, 0);
	stack_up(&b, 48, 0);
	n = tokens_of(1, tok);
	assert_int_equal(serve_driver_add(a.driver, tok, n, &p, &h), 0);
	assert_int_equal(serve_driver_migrate_blocks(a.driver, h, &blocks, &nr), -EINVAL);
	assert_int_equal(serve_driver_migrate_blocks(a.driver, 77, &blocks, &nr), -ENOENT);
	assert_int_equal(serve_driver_migrate_blocks(a.driver, h, NULL, &nr), -EINVAL);
	run_to(&a, h, 2);
	assert_int_equal(serve_driver_migrate_peek(a.driver, h, &img, &len), 0);
	assert_int_equal(serve_driver_migrate_blocks(a.driver, h, &blocks, &nr), 0);
	hd = img;
	n1 = hd->n_prompt + hd->n_gen;
	assert_int_equal(nr, (n1 - 1 + 15) / 16);	/* the KV of all tokens but the last */
	free(blocks);

	buf = calloc(1, serve_migr_image_size(n1 + 32, hd->n_gen + 32));
	assert_non_null(buf);
	memcpy(buf, img, len);
	assert_int_equal(serve_driver_migrate_prepare(b.driver, buf, len, &mi), 0);
	nr1 = mi.nr_blocks;
	run_to(&a, h, 9);
	assert_int_equal(serve_driver_migrate_peek(a.driver, h, &img2, &len2), 0);
	hd = img2;
	assert_true(hd->n_prompt + hd->n_gen > n1 + 5);
	memcpy(buf, img2, len2);	/* grown in place (here: written whole) */
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2, n1 + 32, hd->model,
						    hd->seed, hd->max_tokens), -EINVAL);
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2, n1, hd->model,
						    hd->seed + 1, hd->max_tokens), -EINVAL);
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2, n1, hd->model,
						    hd->seed, hd->max_tokens + 1), -EINVAL);
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2 - 8, n1, hd->model,
						    hd->seed, hd->max_tokens), -EPROTO);
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2, n1, hd->model + 1,
						    hd->seed, hd->max_tokens), -EINVAL);
	assert_int_equal(mi.nr_blocks, nr1);	/* refused: unchanged */
	assert_int_equal(serve_driver_migrate_grown(b.driver, &mi, len2, n1, hd->model,
						    hd->seed, hd->max_tokens), 0);
	assert_int_equal(mi.nr_blocks, (hd->n_prompt + hd->n_gen - 1 + 15) / 16);
	assert_ptr_equal(mi.hdr, buf);
	serve_driver_migrate_cancel(b.driver, &mi);
	assert_nothing_held(&b);
	assert_int_equal(serve_driver_run_all(a.driver, NULL), 0);
	free(img);
	free(img2);
	free(buf);
	serve_stack_destroy(&a);
	serve_stack_destroy(&b);
}

/* The image of _out() and of _out_from() over @old (@len of @cap bytes): the same bytes. */
static void out_twice(struct serve_stack *a, uint32_t h, void *old, size_t len, size_t cap)
{
	struct serve_migr_out mo, mo2;
	void *whole;

	assert_int_equal(serve_driver_migrate_out(a->driver, h, 0, &mo), 0);
	whole = malloc(mo.len);
	assert_non_null(whole);
	memcpy(whole, mo.image, mo.len);
	assert_int_equal(serve_driver_migrate_undo(a->driver, &mo), 0);
	assert_int_equal(serve_driver_migrate_out_from(a->driver, h, 0, old, len, cap, &mo2), 0);
	assert_int_equal(mo2.len, serve_migr_image_size(((struct serve_migr_hdr *)whole)->n_prompt +
							((struct serve_migr_hdr *)whole)->n_gen,
							((struct serve_migr_hdr *)whole)->n_gen));
	/* The timestamps differ (the undo made its last token now); all else is the same. */
	((struct serve_migr_hdr *)whole)->t_stop_ns = 0;
	((struct serve_migr_hdr *)whole)->t_last_ns = 0;
	((struct serve_migr_hdr *)mo2.image)->t_stop_ns = 0;
	((struct serve_migr_hdr *)mo2.image)->t_last_ns = 0;
	assert_memory_equal(mo2.image, whole, mo2.len);
	assert_int_equal(serve_driver_migrate_undo(a->driver, &mo2), 0);
	free(whole);
}

/*
 * _out_from(): the stop written over an earlier image of the request
 * (with room, past its room, of another request, garbage) is the image
 * _out() writes whole; bad arguments free the image given.
 */
static void test_out_from(void **state)
{
	struct serve_params p1 = params_of(1), p2 = params_of(2);
	struct serve_migr_out mo;
	struct serve_stack a;
	uint32_t h, h2, n;
	int32_t tok[128];
	size_t len, cap;
	char *img;

	(void)state;
	stack_up(&a, 48, 0);
	n = tokens_of(1, tok);
	assert_int_equal(serve_driver_add(a.driver, tok, n, &p1, &h), 0);
	n = tokens_of(2, tok);
	assert_int_equal(serve_driver_add(a.driver, tok, n, &p2, &h2), 0);
	run_to(&a, h, 2);
	run_to(&a, h2, 2);

	/* Room kept: written in place. */
	assert_int_equal(serve_driver_migrate_peek_into(a.driver, h, NULL, 0, &len), 0);
	cap = len + 4096;
	img = malloc(cap);
	assert_non_null(img);
	assert_int_equal(serve_driver_migrate_peek_into(a.driver, h, img, cap, &len), 0);
	run_to(&a, h, 6);
	out_twice(&a, h, img, len, cap);

	/* No room: grown. */
	assert_int_equal(serve_driver_migrate_peek(a.driver, h, (void **)&img, &len), 0);
	run_to(&a, h, 10);
	out_twice(&a, h, img, len, len);

	/* Another request's image, and garbage: written whole. */
	assert_int_equal(serve_driver_migrate_peek(a.driver, h2, (void **)&img, &len), 0);
	out_twice(&a, h, img, len, len);
	img = calloc(1, 64);
	assert_non_null(img);
	out_twice(&a, h, img, 64, 64);

	/* Bad arguments: the image freed (ASan's leak check), nothing stopped. */
	img = malloc(64);
	assert_non_null(img);
	assert_int_equal(serve_driver_migrate_out_from(a.driver, h, 0, img, 64, 32, &mo), -EINVAL);
	img = malloc(64);
	assert_non_null(img);
	assert_int_equal(serve_driver_migrate_out_from(a.driver, 99, 0, img, 64, 64, &mo), -ENOENT);
	assert_true(decoding(&a, h));
	assert_int_equal(serve_driver_run_all(a.driver, NULL), 0);
	serve_stack_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_recompute),
		cmocka_unit_test(test_grown),
		cmocka_unit_test(test_out_from),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
