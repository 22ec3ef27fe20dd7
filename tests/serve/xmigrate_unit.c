// SPDX-License-Identifier: MIT
/*
 * Live migration across nodes (migrate_net.h): two engine processes, each
 * on memfd tiers with its own accel_xfer, over UCX's tcp transport on
 * 127.0.0.1, forked before anything of UCX exists (the cmocka process
 * never loads it). A long request migrates in stages while it and others
 * decode: its digests on the destination are those of the same request
 * run alone, the others' on the source too, the stats count the stages
 * and every KV byte once. Faults: a destination too small (refusal), a
 * destination killed mid-stages, a source killed mid-stages (the
 * destination frees everything after its timeout), the request finishing
 * during the stages, a garbage peer on either side: the request always
 * ends on one side with its digests, nothing is left held.
 * cmocka, ASan/UBSan (UCX's memory hooks off, tests/libaccel/xfer_unit.c
 * says why).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "driver.h"
#include "engine.h"
#include "migrate.h"
#include "migrate_net.h"
#include "stack.h"

#include "xmigrate_roles.h"

/* A child's end: exit() (LeakSanitizer's check runs) on success. */
static void child_exit(int st)
{
	if (st)
		_exit(st);
	exit(0);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(refs_compute(), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	serve_model_free(model);
	return 0;
}

/*
 * Fork the destination (listens on 127.0.0.1) and the source (connects);
 * wait for both (@limit s at most). *dst, *src: wait statuses.
 */
/* SERVE_XMIG_DIE_AT (migrate_net.c) in the destination's and the source's process. */
static const char *dst_die_at, *src_die_at;

static void run_pair(enum dst_kind dk, enum src_kind sk, uint32_t timeout_ms,
		     uint32_t max_stages, uint32_t final_blocks, int *dst, int *src)
{
	const int limit = 45;
	int pfd[2], st;
	pid_t dp, sp, w;
	uint16_t port;
	double t0;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	dp = fork();
	assert_true(dp >= 0);
	if (dp == 0) {
		struct accel_xfer *x;

		close(pfd[0]);
		alarm(limit);
		x = mkx();
		CKR(accel_xfer_listen(x, "127.0.0.1", 0, &port), 0);
		CK(write(pfd[1], &port, sizeof(port)) == sizeof(port));
		close(pfd[1]);
		if (dst_die_at)
			setenv("SERVE_XMIG_DIE_AT", dst_die_at, 1);
		st = dst_role(dk, x, timeout_ms);
		accel_xfer_destroy(x);
		child_exit(st);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	close(pfd[0]);
	sp = fork();
	assert_true(sp >= 0);
	if (sp == 0) {
		struct accel_xfer_ep *ep = NULL;
		struct accel_xfer *x;

		alarm(limit);
		if (src_die_at)
			setenv("SERVE_XMIG_DIE_AT", src_die_at, 1);
		x = mkx();
		CKR(accel_xfer_connect(x, "127.0.0.1", port, 5 * S, &ep), 0);
		st = src_role(sk, x, ep, max_stages, final_blocks);
		accel_xfer_ep_close(ep);
		accel_xfer_destroy(x);
		child_exit(st);
	}
	*dst = *src = -1;
	t0 = now_s();
	while (*dst == -1 || *src == -1) {
		w = waitpid(-1, &st, WNOHANG);
		if (w == dp)
			*dst = st;
		else if (w == sp)
			*src = st;
		else if (w == 0)
			usleep(10000);
		if (now_s() - t0 > limit + 2) {
			kill(dp, SIGKILL);
			kill(sp, SIGKILL);
		}
	}
}

static void expect_exit(int st, int code, const char *who)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
		print_error("%s: %s %d (want exit %d)\n", who, WIFEXITED(st) ? "exit" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), code);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == code);
}

static void expect_killed(int st, const char *who)
{
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		print_error("%s: not killed (%s %d)\n", who, WIFEXITED(st) ? "exit" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Stages while it decodes (final_blocks 0: every stage copies the blocks written since). */
static void test_stages(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_OK, SRC_OK, 0, 3, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, 0, "source");
}

/*
 * The request decodes past the blocks the destination named before it
 * stops (20 steps between two serve_xmig_step()s): FINAL asks for them,
 * COMMIT follows their puts.
 */
static void test_final_asks(void **state)
{
	int d, s;

	(void)state;
	src_burst = 20;
	src_want_rtts = 2;
	run_pair(DST_OK, SRC_OK, 0, 1, 0, &d, &s);
	src_burst = 0;
	src_want_rtts = 0;
	expect_exit(d, 0, "destination");
	expect_exit(s, 0, "source");
}

/* The defaults (final_blocks 16: the request is short enough to stop after a stage or two). */
static void test_defaults(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_OK, SRC_OK, 0, SERVE_XMIG_MAX_STAGES, SERVE_XMIG_FINAL_BLOCKS, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, 0, "source");
}

/* Stop and copy: max_stages 0. */
static void test_stop_and_copy(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_OK, SRC_OK, 0, 0, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, 0, "source");
}

static void test_refused(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_SMALL, SRC_RESUME, 0, 3, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, E2BIG, "source");
}

static void test_dst_killed(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_DIE, SRC_RESUME, 0, 100000, 0, &d, &s);
	expect_killed(d, "destination");
	assert_true(WIFEXITED(s));
	if (WEXITSTATUS(s) == EINVAL)
		print_error("source: the request finished before the destination died\n");
	assert_true(WEXITSTATUS(s) == ECONNRESET || WEXITSTATUS(s) == ETIMEDOUT ||
		    WEXITSTATUS(s) == EPIPE || WEXITSTATUS(s) == ENOTCONN);
}

static void test_src_killed(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_ABORTED, SRC_DIE, 500, 100000, 0, &d, &s);
	expect_killed(s, "source");
	expect_exit(d, 0, "destination");
}

/*
 * Killed at each point of the protocol (SERVE_XMIG_DIE_AT, migrate_net.c):
 * the request ends on exactly one side, or failed to its client, and the
 * survivor's blocks all come back (the roles check tier 0 is empty).
 */
static void killed_at(const char *src_at, const char *dst_at, enum dst_kind dk,
		      enum src_kind sk, int *d, int *s)
{
	src_die_at = src_at;
	dst_die_at = dst_at;
	src_timeout_ms = 1000;
	run_pair(dk, sk, 1000, 3, 0, d, s);
	src_die_at = dst_die_at = NULL;
	src_timeout_ms = 0;
}

static void expect_failed_source(int st)
{
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == EINVAL)
		print_error("source: the request finished before the destination died\n");
	assert_true(WEXITSTATUS(st) == ECONNRESET || WEXITSTATUS(st) == ETIMEDOUT ||
		    WEXITSTATUS(st) == EPIPE || WEXITSTATUS(st) == ENOTCONN ||
		    WEXITSTATUS(st) == ECONNABORTED);
}

/* The source dies after its first STAGE: the destination frees its blocks. */
static void test_src_killed_at_first_stage(void **state)
{
	int d, s;

	(void)state;
	killed_at("stage", NULL, DST_ABORTED, SRC_RESUME, &d, &s);
	expect_killed(s, "source");
	expect_exit(d, 0, "destination");
}

/* The source dies stopped, its last blocks put, before FINAL/COMMIT. */
static void test_src_killed_at_last_stage(void **state)
{
	int d, s;

	(void)state;
	killed_at("final", NULL, DST_ABORTED, SRC_RESUME, &d, &s);
	expect_killed(s, "source");
	expect_exit(d, 0, "destination");
}

/* The source dies with its commit sent: the destination finishes it, or frees it. */
static void test_src_killed_at_commit(void **state)
{
	int d, s;

	(void)state;
	killed_at("commit", NULL, DST_EITHER, SRC_RESUME, &d, &s);
	expect_killed(s, "source");
	expect_exit(d, 0, "destination");
}

/* The destination dies after the first stage's BLOCKS: the source resumes. */
static void test_dst_killed_at_first_stage(void **state)
{
	int d, s;

	(void)state;
	killed_at(NULL, "dst-stage", DST_OK, SRC_RESUME, &d, &s);
	expect_killed(d, "destination");
	expect_failed_source(s);
}

/*
 * The destination dies committed, COMMITTED not sent: past its point of no
 * return the source may not resume (had COMMITTED been lost with the
 * network, the request would run on both nodes); it fails to its client.
 */
static void test_dst_killed_at_commit(void **state)
{
	int d, s;

	(void)state;
	killed_at(NULL, "dst-commit", DST_OK, SRC_LOST, &d, &s);
	expect_killed(d, "destination");
	expect_failed_source(s);
}

/* The request reaches its max_tokens during the stages: it finished on the source. */
static void test_finished(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_ABORTED, SRC_RESUME, 0, 100000, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, EINVAL, "source");
}

static void test_garbage_dst(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_GARBAGE, SRC_RESUME, 0, 3, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, EPROTO, "source");
}

static void test_garbage_src(void **state)
{
	int d, s;

	(void)state;
	run_pair(DST_ABORTED, SRC_GARBAGE, 0, 3, 0, &d, &s);
	expect_exit(d, 0, "destination");
	expect_exit(s, 0, "source");
}

/* Whether accel_xfer_create() works, asked in a child (UCX stays out of here). */
static bool have_ucx(void)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct accel_xfer *x = accel_xfer_create(NULL);

		if (!x)
			_exit(errno == ENOPKG ? 77 : 1);
		accel_xfer_destroy(x);
		_exit(0);
	}
	/* Another failure is the tests' to report. */
	return pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	       WEXITSTATUS(st) != 77;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stages),
		cmocka_unit_test(test_final_asks),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_stop_and_copy),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_dst_killed),
		cmocka_unit_test(test_src_killed),
		cmocka_unit_test(test_src_killed_at_first_stage),
		cmocka_unit_test(test_src_killed_at_last_stage),
		cmocka_unit_test(test_src_killed_at_commit),
		cmocka_unit_test(test_dst_killed_at_first_stage),
		cmocka_unit_test(test_dst_killed_at_commit),
		cmocka_unit_test(test_finished),
		cmocka_unit_test(test_garbage_dst),
		cmocka_unit_test(test_garbage_src),
	};

	setenv("UCX_TLS", "tcp", 0);
	setenv("UCX_MEM_MALLOC_HOOKS", "no", 0);
	setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 0);
	setenv("UCX_HANDLE_ERRORS", "none", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	/* Without UCX (no libucx0): one plain SKIP line, as xfer_unit does. */
	if (!have_ucx()) {
		printf("1..1\n# no libucp.so.0 (libucx0): serve_xmig not tested\n");
		printf("ok 1 - serve_xmigrate # SKIP no UCX\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
