// SPDX-License-Identifier: MIT
/*
 * A node's zero-copy live migration (tools/serve/migrate_node.c) between
 * two engine processes on the module: window tiers, the three messages
 * carried by a socketpair that stands in for kvacceld's hand-offs (same
 * fds, same done-with-status). Requests moved there and back while they
 * decode finish with the digests of each alone, their pages changed hands
 * (no block copied), usage is back afterwards; a refusal, a destination
 * killed with the OFFER or with the COMMIT, a source killed before COMMIT,
 * a silent source, a source killed after it, a request that ends while
 * offered (with and without pre-bound blocks): each leaves the request on
 * exactly one side, and a destination that gave up after pre-binding has
 * no page of the source's left under its blocks.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel.h"
#include "../libaccel/accel_test.h"
#include "driver.h"
#include "engine.h"
#include "migrate.h"
#include "migrate_node.h"
#include "migrate_sock.h"
#include "stack.h"
#include "kselftest_harness.h"

#define NREQ	4
#define MAXTOK	16

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog, and then some more of it.",
	"kvaccel: pinned host memory for KV caches, remapped without copying.",
	"Paged attention reads K and V through block tables.",
};

struct ref {
	uint32_t n;
	uint64_t dig[MAXTOK];
};

static struct serve_params params_of(uint32_t i)
{
	return (struct serve_params) { .max_tokens = 10 + 2 * i, .seed = 30 + i,
				       .temperature = i % 2 ? 0.7f : 0.0f };
}

static uint32_t tokens_of(uint32_t i, int32_t *tok)
{
	uint32_t n = (uint32_t)strlen(prompts[i]), j;

	for (j = 0; j < n; j++)
		tok[j] = (unsigned char)prompts[i][j];
	return n;
}

static struct serve_model *model(void)
{
	struct serve_config c;

	serve_config_default(&c);
	return serve_model_from_seed(&c, 9);
}

static int stack_up(struct serve_stack *s, const struct serve_model *m, bool memfd,
		    uint32_t blocks)
{
	struct serve_driver_opts d = { .max_tokens = 128 };
	struct serve_stack_opts so = { .model = m, .blocks = blocks, .swap_blocks = 16,
				       .memfd = memfd, .window = !memfd, .threads = 1,
				       .max_ctx = 128, .sched = &d };
	char err[256];
	int ret = serve_stack_create(s, &so, err, sizeof(err));

	if (ret)
		fprintf(stderr, "# stack: %s\n", err);
	return ret;
}

/* Each request alone on memfd tiers. */
static int references(const struct serve_model *m, struct ref *ref)
{
	for (uint32_t i = 0; i < NREQ; i++) {
		struct serve_params p = params_of(i);
		struct serve_driver_info in;
		struct serve_stack s;
		int32_t tok[128];
		uint32_t h, n;
		int ret;

		ret = stack_up(&s, m, true, 32);
		if (ret)
			return ret;
		n = tokens_of(i, tok);
		ret = serve_driver_add(s.driver, tok, n, &p, &h);
		if (!ret)
			ret = serve_driver_run_all(s.driver, NULL);
		if (!ret)
			ret = serve_driver_info(s.driver, h, &in);
		if (!ret) {
			ref[i].n = in.req.n_generated;
			memcpy(ref[i].dig, in.req.digests, ref[i].n * 8);
		}
		serve_stack_destroy(&s);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- two engines, the hand-offs on a socketpair (migrate_sock.h) ---- */

struct side {
	struct serve_msock ms;
	const char *name;
	struct serve_stack s;
	struct serve_nmig *n;
	/* What happened. */
	int done_status;
	bool done;
	uint32_t arrived, arrived_h[NREQ];
	uint64_t arrived_id[NREQ];
	struct serve_nmig_stats last;
};

static int side_send(void *arg, const char *to, uint64_t tag, const int *fds,
		     const enum accel_handoff_kind *kinds, unsigned int n)
{
	struct side *sd = arg;

	return serve_msock_send(&sd->ms, to, tag, fds, kinds, n);
}

static void on_done(void *arg, uint64_t id, int status, const struct serve_nmig_stats *st)
{
	struct side *sd = arg;

	(void)id;
	sd->done = true;
	sd->done_status = status;
	sd->last = *st;
}

static void on_arrived(void *arg, uint64_t id, uint32_t h, const char *from,
		       const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st)
{
	struct side *sd = arg;

	(void)from;
	(void)hdr;
	sd->arrived_id[sd->arrived] = id;
	sd->arrived_h[sd->arrived++] = h;
	sd->last = *st;
}

static void pump(struct side *sd, int ms)
{
	serve_msock_pump(&sd->ms, ms);
}

static int side_up(struct side *sd, const struct serve_model *m, uint32_t blocks, int sock,
		   const char *name, const char *peer)
{
	static const struct serve_nmig_ops ops = { .send = side_send, .done = on_done,
						   .arrived = on_arrived };
	int ret;

	memset(sd, 0, sizeof(*sd));
	serve_msock_init(&sd->ms, sock, peer);
	sd->name = name;
	ret = stack_up(&sd->s, m, false, blocks);
	if (ret)
		return ret;
	sd->n = serve_nmig_create(sd->s.driver, sd->s.tiers[0], &ops, sd);
	if (!sd->n)
		return -errno;
	sd->ms.n = sd->n;
	/*
	 * The default (SERVE_NMIG_TIMEOUT_MS): under KASAN and lockdep the other
	 * side's setup alone can outlast a short one, and a migration timed out
	 * is not what these tests look at; the one that does sets its own.
	 */
	serve_nmig_set_timeout(sd->n, 0);
	return 0;
}

static void side_down(struct side *sd)
{
	serve_nmig_destroy(sd->n);
	serve_stack_destroy(&sd->s);
}

static bool decoding_with(struct side *sd, uint32_t h, uint32_t gen)
{
	struct serve_driver_info in;

	return !serve_driver_info(sd->s.driver, h, &in) &&
	       in.sched.state == ACCEL_SCHED_DECODING && in.req.n_generated >= gen;
}

/* Step, pump, until nothing is left to do here (or @until returns true). */
static int run_side(struct side *sd, bool (*until)(struct side *, void *), void *ctx,
		    int max_steps)
{
	while (max_steps--) {
		ACCEL_OPTS(accel_sched_stats, st);
		int ret = serve_driver_step(sd->s.driver, NULL);

		if (ret < 0)
			return ret;
		serve_nmig_step(sd->n);
		pump(sd, ret ? 0 : 5);
		if (until && until(sd, ctx))
			return 0;
		serve_driver_stats(sd->s.driver, &st);
		if (!until && st.requests == st.in_state[ACCEL_SCHED_FINISHED] &&
		    !serve_nmig_pending(sd->n) && !sd->ms.nr_pending)
			return 0;
	}
	return -ETIMEDOUT;
}

static int check_digests(struct side *sd, uint32_t h, const struct ref *r)
{
	struct serve_driver_info in;

	if (serve_driver_info(sd->s.driver, h, &in) || in.req.state != SERVE_FINISHED)
		return -EINVAL;
	if (in.req.n_generated != r->n || memcmp(in.req.digests, r->dig, r->n * 8))
		return -EILSEQ;
	return 0;
}

/* Every own block of @h on @sd is backed by a page not of @sd's region. */
static int pages_foreign(struct side *sd, uint32_t h)
{
	ACCEL_OPTS(accel_sched_req_info, si);
	struct serve_driver_info in;
	uint32_t off[2], ids[64], foreign = 0;

	if (serve_driver_info(sd->s.driver, h, &in))
		return -1;
	si = in.sched;
	if (si.seq == UINT32_MAX ||
	    accel_bm_block_tables(sd->s.bm, &si.seq, 1, off, ids, 64, NULL) < 0)
		return -1;
	for (uint32_t i = 0; i < off[1]; i++) {
		struct accel_tier_page pg;

		if (accel_tier_page(sd->s.tiers[0], ids[i], &pg))
			return -1;
		foreign += pg.key != accel_tier_key(sd->s.tiers[0]);
	}
	return (int)foreign;
}

/* Blocks of @sd's compute tier backed by a page of another engine's region (any request's). */
static int foreign_blocks(struct side *sd)
{
	ACCEL_OPTS(accel_tier_info, ti);
	uint32_t foreign = 0;

	if (accel_tier_info(sd->s.tiers[0], &ti))
		return -1;
	for (uint32_t b = 0; b < ti.blocks; b++) {
		struct accel_tier_page pg;

		if (accel_tier_page(sd->s.tiers[0], b, &pg))
			return -1;
		foreign += pg.key != accel_tier_key(sd->s.tiers[0]);
	}
	return (int)foreign;
}

FIXTURE(migrate) {
	struct accel_device *dev;
	uint64_t usage0;
	struct serve_model *m;
	struct ref ref[NREQ];
	int sv[2];
};

FIXTURE_SETUP(migrate)
{
	ACCEL_OPTS(accel_device_info, info);

	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	self->usage0 = info.process_usage;
	self->m = model();
	ASSERT_NE(NULL, self->m);
	ASSERT_EQ(0, references(self->m, self->ref));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, self->sv));
}

FIXTURE_TEARDOWN(migrate)
{
	close(self->sv[0]);
	close(self->sv[1]);
	serve_model_free(self->m);
	EXPECT_EQ(self->usage0, accel_test_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

struct plan {
	uint32_t h[NREQ];
	uint32_t next;		/* the request to move next */
	uint64_t id;
};

/* A (the parent): move request 1 at 3 tokens, then request 2 at 2; B sends 1 back. */
static bool a_moves(struct side *sd, void *ctx)
{
	struct plan *p = ctx;

	if (p->next == 0 && decoding_with(sd, p->h[1], 3)) {
		if (!serve_nmig_start(sd->n, ++p->id, p->h[1], "B"))
			p->next = 1;
	} else if (p->next == 1 && decoding_with(sd, p->h[2], 2)) {
		if (!serve_nmig_start(sd->n, ++p->id, p->h[2], "B"))
			p->next = 2;
	}
	return false;
}

/* B (the child): runs request 3 and what arrives; sends the first arrival back once. */
static int b_main(struct side *b, const struct ref *ref, bool send_back)
{
	struct serve_params p = params_of(3);
	int32_t tok[128];
	uint32_t h3, n = tokens_of(3, tok), sent = 0, back_h = 0;
	int steps = 4000, ret;

	ret = serve_driver_add(b->s.driver, tok, n, &p, &h3);
	if (ret)
		return 10;
	while (steps--) {
		ACCEL_OPTS(accel_sched_stats, st);

		ret = serve_driver_step(b->s.driver, NULL);
		if (ret < 0)
			return 11;
		serve_nmig_step(b->n);
		pump(b, ret ? 0 : 5);
		if (b->arrived && !sent) {
			if (pages_foreign(b, b->arrived_h[0]) <= 0 && decoding_with(b, b->arrived_h[0], 1))
				return 12;	/* its pages are not the source's: copied? */
			if (send_back && decoding_with(b, b->arrived_h[0], 6) &&
			    !serve_nmig_start(b->n, 100, b->arrived_h[0], "A")) {
				back_h = b->arrived_h[0];
				sent = 1;
			}
			if (!send_back)
				sent = 1;
		}
		serve_driver_stats(b->s.driver, &st);
		if (b->ms.peer_gone && !serve_nmig_pending(b->n) &&
		    st.requests == st.in_state[ACCEL_SCHED_FINISHED])
			break;
	}
	if (steps < 0)
		return 13;
	if (check_digests(b, h3, &ref[3]))
		return 14;
	/* Request 2 ends here; request 1 went back (or ends here without send_back). */
	for (uint32_t i = 0; i < b->arrived; i++) {
		uint32_t which = b->arrived_h[i] == back_h ? 1 : (send_back ? 2 : 1);

		if (b->arrived_h[i] == back_h)
			continue;
		if (check_digests(b, b->arrived_h[i], &ref[which]))
			return 15;
	}
	if (send_back && (!b->done || b->done_status))
		return 16;
	return 0;
}

/* Requests go A -> B, and one of them back B -> A, while all of them decode. */
TEST_F(migrate, there_and_back_zero_copy)
{
	struct serve_driver_info in;
	struct plan p = { 0 };
	struct side a;
	int32_t tok[128];
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct side b;

		close(self->sv[0]);
		if (side_up(&b, self->m, 24, self->sv[1], "B", "A"))
			_exit(9);
		status = b_main(&b, self->ref, true);
		side_down(&b);
		_exit(status);
	}
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(0, side_up(&a, self->m, 24, self->sv[0], "A", "B"));
	for (uint32_t i = 0; i < 3; i++) {
		struct serve_params pp = params_of(i);
		uint32_t n = tokens_of(i, tok);

		ASSERT_EQ(0, serve_driver_add(a.s.driver, tok, n, &pp, &p.h[i]));
	}
	/* Until both moved, request 1 came back and everything here finished. */
	for (int k = 0; k < 6000; k++) {
		ACCEL_OPTS(accel_sched_stats, st);

		ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));
		serve_nmig_step(a.n);
		pump(&a, 2);
		a_moves(&a, &p);
		serve_driver_stats(a.s.driver, &st);
		if (p.next == 2 && a.arrived && st.requests == st.in_state[ACCEL_SCHED_FINISHED] &&
		    !serve_nmig_pending(a.n) && !a.ms.nr_pending)
			break;
	}
	ASSERT_EQ(1, a.arrived);
	EXPECT_EQ(0, check_digests(&a, p.h[0], &self->ref[0]));
	EXPECT_EQ(0, check_digests(&a, a.arrived_h[0], &self->ref[1]));
	ASSERT_EQ(0, serve_driver_info(a.s.driver, p.h[2], &in));
	EXPECT_EQ(SERVE_MIGRATED, in.req.state);
	EXPECT_EQ(0, a.done_status);
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	side_down(&a);
}

/* The destination has no room: the request resumes on the source. */
TEST_F(migrate, refused_resumes_on_the_source)
{
	struct plan p = { 0 };
	struct side a;
	int32_t tok[128];
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct side b;

		close(self->sv[0]);
		if (side_up(&b, self->m, 4, self->sv[1], "B", "A"))	/* never room */
			_exit(9);
		while (!b.ms.peer_gone)
			pump(&b, 100);
		status = b.arrived || serve_nmig_pending(b.n) ? 1 : 0;
		side_down(&b);
		_exit(status);
	}
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(0, side_up(&a, self->m, 24, self->sv[0], "A", "B"));
	for (uint32_t i = 0; i < 2; i++) {
		struct serve_params pp = params_of(i);
		uint32_t n = tokens_of(i, tok);

		ASSERT_EQ(0, serve_driver_add(a.s.driver, tok, n, &pp, &p.h[i]));
	}
	p.next = 5;
	while (!decoding_with(&a, p.h[1], 3))
		ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));
	ASSERT_EQ(0, serve_nmig_start(a.n, 7, p.h[1], "B"));
	EXPECT_EQ(-EBUSY, serve_nmig_start(a.n, 70, p.h[1], "B"));	/* on its way */
	EXPECT_EQ(-EEXIST, serve_nmig_start(a.n, 7, p.h[0], "B"));
	EXPECT_EQ(-ENOENT, serve_nmig_start(a.n, 71, 99, "B"));
	ASSERT_EQ(0, run_side(&a, NULL, NULL, 4000));
	EXPECT_TRUE(a.done);
	EXPECT_EQ(-E2BIG, a.done_status);
	EXPECT_EQ(0, check_digests(&a, p.h[0], &self->ref[0]));
	EXPECT_EQ(0, check_digests(&a, p.h[1], &self->ref[1]));
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	side_down(&a);
}

/*
 * The destination dies with the OFFER (the request never stopped) or with
 * the COMMIT (it stopped): either way it decodes on the source to its end.
 */
static void destination_dies(struct __test_metadata *_metadata, FIXTURE_DATA(migrate) *self,
			     uint32_t kind)
{
	struct side a;
	int32_t tok[128];
	struct serve_params pp = params_of(1);
	uint32_t h, n;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct side b;

		close(self->sv[0]);
		if (side_up(&b, self->m, 24, self->sv[1], "B", "A"))
			_exit(9);
		b.ms.die_on = kind;
		while (!b.ms.peer_gone)
			pump(&b, 100);
		_exit(1);	/* the source left before @kind came */
	}
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(0, side_up(&a, self->m, 24, self->sv[0], "A", "B"));
	n = tokens_of(1, tok);
	ASSERT_EQ(0, serve_driver_add(a.s.driver, tok, n, &pp, &h));
	while (!decoding_with(&a, h, 2))
		ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));
	ASSERT_EQ(0, serve_nmig_start(a.n, 8, h, "B"));
	ASSERT_EQ(0, run_side(&a, NULL, NULL, 4000));
	EXPECT_TRUE(a.done);
	EXPECT_EQ(-ECONNRESET, a.done_status);
	EXPECT_EQ(0, check_digests(&a, h, &self->ref[1]));
	EXPECT_EQ(0, foreign_blocks(&a));
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));	/* it died with @kind */
	side_down(&a);
}

TEST_F(migrate, destination_killed_with_the_offer)
{
	destination_dies(_metadata, self, SERVE_NMSG_OFFER);
}

TEST_F(migrate, destination_killed_with_the_commit)
{
	destination_dies(_metadata, self, SERVE_NMSG_COMMIT);
}

static bool arrived_and_done(struct side *sd, void *ctx)
{
	ACCEL_OPTS(accel_sched_stats, st);

	(void)ctx;
	serve_driver_stats(sd->s.driver, &st);
	return sd->arrived && st.requests == st.in_state[ACCEL_SCHED_FINISHED] &&
	       !serve_nmig_pending(sd->n);
}

/* The source dies with GIVEBACK: the request is the destination's and ends there. */
TEST_F(migrate, source_killed_after_commit)
{
	struct side b;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct serve_params pp = params_of(2);
		struct side a;
		int32_t tok[128];
		uint32_t h, n;

		close(self->sv[1]);
		if (side_up(&a, self->m, 24, self->sv[0], "A", "B"))
			_exit(9);
		a.ms.die_on = SERVE_NMSG_GIVEBACK;
		n = tokens_of(2, tok);
		if (serve_driver_add(a.s.driver, tok, n, &pp, &h))
			_exit(10);
		while (!decoding_with(&a, h, 2))
			if (serve_driver_step(a.s.driver, NULL) < 0)
				_exit(11);
		if (serve_nmig_start(a.n, 10, h, "B"))
			_exit(12);
		for (;;) {
			if (serve_driver_step(a.s.driver, NULL) < 0)
				_exit(13);
			pump(&a, 20);
		}
	}
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(0, side_up(&b, self->m, 24, self->sv[1], "B", "A"));
	ASSERT_EQ(0, run_side(&b, arrived_and_done, NULL, 4000));
	ASSERT_EQ(1, b.arrived);
	EXPECT_EQ(0, check_digests(&b, b.arrived_h[0], &self->ref[2]));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	side_down(&b);
}

/*
 * The request finishes before the destination is ready: it never moves
 * (ABORT). Request 1 has full blocks, so the destination pre-bound them at
 * the OFFER: the ABORT binds its own pages back before it frees them.
 */
static void finished_while_offered(struct __test_metadata *_metadata,
				   FIXTURE_DATA(migrate) *self, uint32_t r)
{
	struct serve_params pp = params_of(r);
	struct side a;
	int32_t tok[128];
	uint32_t h, n;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct side b;

		close(self->sv[0]);
		if (side_up(&b, self->m, 24, self->sv[1], "B", "A"))
			_exit(9);
		while (!b.ms.peer_gone)
			pump(&b, 100);
		status = b.arrived || serve_nmig_pending(b.n) ? 1 : 0;
		if (foreign_blocks(&b))
			status |= 2;	/* a page of the source's still bound here */
		side_down(&b);
		_exit(status);
	}
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(0, side_up(&a, self->m, 24, self->sv[0], "A", "B"));
	n = tokens_of(r, tok);
	ASSERT_EQ(0, serve_driver_add(a.s.driver, tok, n, &pp, &h));
	while (!decoding_with(&a, h, pp.max_tokens - 1))
		ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));
	ASSERT_EQ(0, serve_nmig_start(a.n, 11, h, "B"));
	ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));	/* its last token, here */
	ASSERT_EQ(0, run_side(&a, NULL, NULL, 4000));
	EXPECT_TRUE(a.done);
	EXPECT_EQ(-ECANCELED, a.done_status);
	EXPECT_EQ(0, check_digests(&a, h, &self->ref[r]));
	EXPECT_EQ(0, foreign_blocks(&a));
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	side_down(&a);
}

TEST_F(migrate, finished_while_offered)
{
	finished_while_offered(_metadata, self, 0);
}

TEST_F(migrate, finished_after_the_prebind)
{
	finished_while_offered(_metadata, self, 1);
}

/*
 * The source dies with READY, or takes it and never answers (before
 * COMMIT either way): the destination frees what it prepared, at once or
 * after its timeout; nothing of it stays.
 */
static void source_gone(struct __test_metadata *_metadata, FIXTURE_DATA(migrate) *self,
			bool dies)
{
	ACCEL_OPTS(accel_bm_tier_stats, st);
	struct side b;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct serve_params pp = params_of(1);
		struct side a;
		int32_t tok[128];
		uint32_t h, n;

		close(self->sv[1]);
		if (side_up(&a, self->m, 24, self->sv[0], "A", "B"))
			_exit(9);
		if (dies)
			a.ms.die_on = SERVE_NMSG_READY;
		else
			a.ms.ignore_on = SERVE_NMSG_READY;
		n = tokens_of(1, tok);
		if (serve_driver_add(a.s.driver, tok, n, &pp, &h))
			_exit(10);
		while (!decoding_with(&a, h, 2))
			if (serve_driver_step(a.s.driver, NULL) < 0)
				_exit(11);
		if (serve_nmig_start(a.n, 9, h, "B"))
			_exit(12);
		for (int k = 0; k < 60 && !a.ms.peer_gone; k++)
			pump(&a, 100);
		_exit(0);
	}
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(0, side_up(&b, self->m, 24, self->sv[1], "B", "A"));
	serve_nmig_set_timeout(b.n, 1500);	/* what the silent source's case waits for */
	while (!b.ms.peer_gone && !serve_nmig_pending(b.n))
		pump(&b, 100);
	if (!dies) {
		pump(&b, 200);	/* READY was taken: B waits for a COMMIT that never comes */
		ASSERT_EQ(0, accel_bm_tier_stats(b.s.bm, 0, &st));
		EXPECT_LT(0, st.used);
		EXPECT_LT(0, foreign_blocks(&b));	/* its full blocks pre-bound */
		EXPECT_EQ(1, serve_nmig_pending(b.n));
		for (int k = 0; k < 100 && serve_nmig_pending(b.n); k++) {
			pump(&b, 50);
			serve_nmig_step(b.n);
		}
	} else {
		while (!b.ms.peer_gone)
			pump(&b, 100);
	}
	EXPECT_EQ(0, serve_nmig_pending(b.n));
	ASSERT_EQ(0, accel_bm_tier_stats(b.s.bm, 0, &st));
	EXPECT_EQ(0, st.used);
	EXPECT_EQ(0, b.arrived);
	EXPECT_EQ(0, foreign_blocks(&b));	/* the pre-bound blocks have their own pages back */
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	side_down(&b);
}

TEST_F(migrate, source_killed_before_commit)
{
	source_gone(_metadata, self, true);
}

TEST_F(migrate, source_silent_destination_times_out)
{
	source_gone(_metadata, self, false);
}

/*
 * The baselines: request 1 moves by stop-and-copy, request 2 by recompute
 * (the destination prefills its tokens again); both end with their digests.
 */
TEST_F(migrate, copy_and_recompute_baselines)
{
	struct plan p = { 0 };
	struct side a;
	int32_t tok[128];
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct side b;
		int k, bad = 0;

		close(self->sv[0]);
		if (side_up(&b, self->m, 24, self->sv[1], "B", "A"))
			_exit(9);
		for (k = 0; k < 8000 && !(b.ms.peer_gone && arrived_and_done(&b, NULL)); k++) {
			int r = serve_driver_step(b.s.driver, NULL);

			if (r < 0)
				_exit(10);
			serve_nmig_step(b.n);
			pump(&b, r ? 0 : 5);
		}
		if (b.arrived != 2)
			_exit(11);
		for (uint32_t i = 0; i < b.arrived; i++)
			bad |= check_digests(&b, b.arrived_h[i], &self->ref[b.arrived_id[i]]) ? 1 : 0;
		if (pages_foreign(&b, b.arrived_h[0]) > 0)
			bad |= 2;	/* copied: no page of the source's */
		side_down(&b);
		_exit(bad ? 12 + bad : 0);
	}
	close(self->sv[1]);
	self->sv[1] = -1;
	ASSERT_EQ(0, side_up(&a, self->m, 24, self->sv[0], "A", "B"));
	for (uint32_t i = 0; i < 3; i++) {
		struct serve_params pp = params_of(i);
		uint32_t n = tokens_of(i, tok);

		ASSERT_EQ(0, serve_driver_add(a.s.driver, tok, n, &pp, &p.h[i]));
	}
	while (!decoding_with(&a, p.h[1], 2) || !decoding_with(&a, p.h[2], 2))
		ASSERT_LE(0, serve_driver_step(a.s.driver, NULL));
	ASSERT_EQ(0, serve_nmig_start_mode(a.n, 1, p.h[1], "B", SERVE_NMIG_COPY));
	ASSERT_EQ(0, serve_nmig_start_mode(a.n, 2, p.h[2], "B", SERVE_NMIG_RECOMPUTE));
	ASSERT_EQ(0, run_side(&a, NULL, NULL, 4000));
	EXPECT_EQ(0, a.done_status);
	EXPECT_EQ(0, check_digests(&a, p.h[0], &self->ref[0]));
	close(self->sv[0]);
	self->sv[0] = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	side_down(&a);
}

TEST_HARNESS_MAIN
