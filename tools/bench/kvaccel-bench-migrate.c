// SPDX-License-Identifier: MIT
/*
 * kvaccel-bench-migrate [LEN...] - live migration of one decoding request
 * between two engine processes of a node (kvaccel-serve's migrate_node.c
 * over window tiers; the hand-offs on a socketpair, migrate_sock.h), for
 * sequences of LEN tokens (default 1024 4096 16384 32768): downtime (the
 * source's last token to the destination's next) and total time (the
 * migrate call to COMMIT delivered) of
 *
 *   zero-copy   the pages change hands, no KV byte copied;
 *   copy        stop and copy: every block's bytes through the hand-off;
 *   recompute   only the tokens move, the destination prefills them again
 *               (4k tokens at most: an O(n^2) prefill, 80 s at 4k under TCG);
 *
 * and how much slower the source's other requests decode while it runs:
 * busy_ms is the migration's own work on the source's engine thread (its
 * calls and messages between steps, from the migrate call to the end), and
 * slowdown the others' step during the migration against their mean step
 * in the 20 steps right after it (the same batch, the same run): their
 * mean step once the request stopped (what a migration thread takes from
 * them) plus busy_ms spread over the migration's steps (steps).
 * Downtime is the request's stop on the
 * source until it is runnable on the destination (recompute: until its
 * next token); the gap, its last token to its next, adds a decode step
 * at its length. The long request is made without a prefill:
 * its image is committed on the source over blocks of made-up KV.
 * MIGRATE_MODES (e.g. "zero-copy,copy") runs only the modes it names.
 * Documentation/serve.rst, "Live migration"; run by `make bench-migrate`.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "engine.h"
#include "forward.h"
#include "migrate.h"
#include "migrate_node.h"
#include "migrate_sock.h"
#include "stack.h"

#define OTHERS		4
#define OTHER_TOKENS	1000	/* decoding through the migration and the baseline after it */
#define RECOMPUTE_MAX	4096
#define BASE_STEPS	20	/* steps timed after the migration: the baseline */

struct side {
	struct serve_msock ms;
	struct serve_stack s;
	struct serve_nmig *n;
	bool done, arrived;
	int status;
	uint32_t h;
	struct serve_nmig_stats st;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int side_send(void *arg, const char *to, uint64_t tag, const int *fds,
		     const enum accel_handoff_kind *kinds, unsigned int n)
{
	return serve_msock_send(&((struct side *)arg)->ms, to, tag, fds, kinds, n);
}

static void on_done(void *arg, uint64_t id, int status, const struct serve_nmig_stats *st)
{
	struct side *sd = arg;

	(void)id;
	sd->done = true;
	sd->status = status;
	sd->st = *st;
}

static void on_arrived(void *arg, uint64_t id, uint32_t h, const char *from,
		       const struct serve_migr_hdr *hdr, const struct serve_nmig_stats *st)
{
	struct side *sd = arg;

	(void)id;
	(void)from;
	(void)hdr;
	sd->arrived = true;
	sd->h = h;
	sd->st = *st;
}

static int side_up(struct side *sd, const struct serve_model *m, uint32_t len, int sock,
		   const char *peer)
{
	static const struct serve_nmig_ops ops = { .send = side_send, .done = on_done,
						   .arrived = on_arrived };
	struct serve_driver_opts d = { .max_tokens = 512 };
	struct serve_stack_opts so = { .model = m, .swap_blocks = 16,
				       .blocks = len / 16 + 64 + OTHERS * (OTHER_TOKENS / 16 + 2),
				       .window = true, .threads = 1, .max_ctx = len + 256,
				       .sched = &d };
	char err[256];

	memset(sd, 0, sizeof(*sd));
	serve_msock_init(&sd->ms, sock, peer);
	if (serve_stack_create(&sd->s, &so, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-bench-migrate: %s\n", err);
		return -1;
	}
	sd->n = serve_nmig_create(sd->s.driver, sd->s.tiers[0], &ops, sd);
	if (!sd->n)
		return -1;
	sd->ms.n = sd->n;
	return 0;
}

static void side_down(struct side *sd)
{
	serve_nmig_destroy(sd->n);
	serve_stack_destroy(&sd->s);
}

/* A decoding request of @len tokens on @sd without its prefill: made-up KV, then committed. */
static int long_request(struct side *sd, const struct serve_model *m, uint32_t len, uint32_t *h)
{
	size_t sz = serve_migr_image_size(len, 1);
	struct serve_migr_hdr *hd = calloc(1, sz);
	ACCEL_OPTS(accel_tier_info, ti);
	struct serve_migr_in mi;
	int32_t *tok;
	int ret;

	if (!hd)
		return -ENOMEM;
	accel_tier_info(sd->s.tiers[0], &ti);
	*hd = (struct serve_migr_hdr) {
		.magic = SERVE_MIGR_MAGIC, .version = SERVE_MIGR_VERSION, .size = sz,
		.model = serve_migr_model_id(m), .block_bytes = ti.block_bytes,
		.block_tokens = 16, .n_prompt = len - 1, .n_gen = 1, .max_tokens = 64,
	};
	tok = (int32_t *)(hd + 1);
	for (uint32_t i = 0; i < len; i++)
		tok[i] = (int32_t)((i * 7 + 3) % m->cfg.vocab);
	ret = serve_driver_migrate_prepare(sd->s.driver, hd, sz, &mi);
	if (!ret) {
		for (uint32_t i = 0; i < mi.nr_blocks; i++) {
			float *kv = accel_tier_block_addr(sd->s.tiers[0], mi.blocks[i]);

			for (uint64_t j = 0; j < ti.block_bytes / sizeof(float); j++)
				kv[j] = (float)((i * 31 + j) % 97) / 97.0f - 0.5f;
		}
		ret = serve_driver_migrate_commit(sd->s.driver, &mi, h);
	}
	free(hd);
	return ret;
}

/* Only the other requests decode (the long one left the scheduler). */
static bool others_only(struct side *sd)
{
	ACCEL_OPTS(accel_sched_stats, st);

	serve_driver_stats(sd->s.driver, &st);
	return st.in_state[ACCEL_SCHED_DECODING] == OTHERS;
}

static bool decoded(struct side *sd, uint32_t h, uint32_t gen)
{
	struct serve_driver_info in;

	return !serve_driver_info(sd->s.driver, h, &in) && in.sched.state == ACCEL_SCHED_DECODING &&
	       in.req.n_generated >= gen;
}

/* The destination: take the request, decode a few tokens of it, report. */
static int destination(const struct serve_model *m, uint32_t len, int sock, int out)
{
	struct side b;
	int k;

	if (side_up(&b, m, len, sock, "A"))
		return 1;
	for (k = 0; k < 200000 && !b.arrived; k++) {
		int r = serve_driver_step(b.s.driver, NULL);

		if (r < 0)
			return 2;
		serve_nmig_step(b.n);
		serve_msock_pump(&b.ms, r ? 0 : 1);
		if (b.ms.peer_gone && !serve_nmig_pending(b.n))
			break;
	}
	if (write(out, &b.st, sizeof(b.st)) != (ssize_t)sizeof(b.st))
		return 3;
	while (!b.ms.peer_gone)
		serve_msock_pump(&b.ms, 100);
	side_down(&b);
	return b.arrived ? 0 : 4;
}

struct row {
	double downtime_ms, gap_ms, total_ms, slowdown, busy_ms;
	uint32_t steps;		/* the source's, from the migrate call to its end */
	uint64_t pages, copied;
	int status;
};

static int one(const struct serve_model *m, uint32_t len, uint32_t mode, struct row *row)
{
	struct serve_nmig_stats bst = { 0 };
	uint32_t h, others[OTHERS];
	double t_step = 0, t_mig = 0, t_base = 0;
	uint32_t nsteps = 0, nwin = 0;
	int sv[2], pfd[2], status, ret = 0;
	struct side a;
	pid_t pid;

	memset(row, 0, sizeof(*row));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) || pipe(pfd))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(sv[0]);
		close(pfd[0]);
		_exit(destination(m, len, sv[1], pfd[1]));
	}
	close(sv[1]);
	close(pfd[1]);
	if (side_up(&a, m, len, sv[0], "B")) {
		ret = -EIO;
		goto out;
	}
	ret = long_request(&a, m, len, &h);
	for (uint32_t i = 0; !ret && i < OTHERS; i++) {
		struct serve_params p = { .max_tokens = OTHER_TOKENS, .seed = i };
		int32_t tok[16];

		for (uint32_t j = 0; j < 16; j++)
			tok[j] = (int32_t)(i * 16 + j + 1);
		ret = serve_driver_add(a.s.driver, tok, 16, &p, &others[i]);
	}
	while (!ret && !(decoded(&a, h, 2) && decoded(&a, others[OTHERS - 1], 2)))
		ret = serve_driver_step(a.s.driver, NULL) < 0 ? -EIO : 0;
	if (!ret) {
		double t0 = now_ms();

		ret = serve_nmig_start_mode(a.n, 1, h, "B", mode);
		t_mig += now_ms() - t0;
	}
	/* The migration's window: the others' steps, and the migration's work between them. */
	while (!ret && !a.done) {
		double t0 = now_ms(), t1;

		if (serve_driver_step(a.s.driver, NULL) < 0)
			ret = -EIO;
		t1 = now_ms();
		serve_nmig_step(a.n);
		serve_msock_pump(&a.ms, 0);
		if (others_only(&a)) {
			/* Stopped here: the steps are the others' alone, as the baseline's. */
			t_step += t1 - t0;
			nsteps++;
		}
		t_mig += now_ms() - t1;
		nwin++;
		if (a.ms.peer_gone && !a.done)
			ret = -ECONNRESET;
	}
	/* The others' steps without a migration, right after it: the baseline. */
	for (int k = 0; !ret && k < BASE_STEPS; k++) {
		double t0 = now_ms();

		ret = serve_driver_step(a.s.driver, NULL) < 0 ? -EIO : 0;
		t_base += now_ms() - t0;
	}
	if (!ret && read(pfd[0], &bst, sizeof(bst)) != (ssize_t)sizeof(bst))
		ret = -EIO;
	row->status = a.status;
	row->total_ms = a.st.total_us / 1e3;
	row->downtime_ms = bst.downtime_us / 1e3;
	row->pages = bst.pages;
	row->copied = bst.bytes_copied;
	row->gap_ms = bst.gap_us / 1e3;
	/*
	 * The others' decoding during the migration against after it (the same
	 * batch, BASE_STEPS steps): their mean step once the request stopped
	 * here (what the migration thread took from the steps), plus the
	 * migration's work between steps spread over the migration's steps.
	 */
	if (t_base > 0 && nwin) {
		double base = t_base / BASE_STEPS, step = nsteps ? t_step / nsteps : base;

		row->slowdown = (step + t_mig / nwin) / base;
		row->steps = nwin;
	}
	row->busy_ms = t_mig;
	side_down(&a);
out:
	close(sv[0]);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status)))
		ret = -EIO;
	return ret;
}

/* @name is one of @list's comma-separated words. */
static bool mode_named(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "zero-copy", "copy", "recompute" };
	uint32_t lens[16] = { 1024, 4096, 16384, 32768 }, nl = 4;
	struct serve_config c;
	struct serve_model *m;
	uint64_t kv_tok;

	if (argc > 1) {
		for (nl = 0; nl + 1 < (uint32_t)argc && nl < 16; nl++) {
			lens[nl] = (uint32_t)strtoul(argv[nl + 1], NULL, 0);
			if (lens[nl] < 64 || lens[nl] > (1u << 20)) {
				fprintf(stderr, "kvaccel-bench-migrate: '%s': a length of 64 to "
					"1048576 tokens\n", argv[nl + 1]);
				return 2;
			}
		}
	}
	serve_config_default(&c);
	m = serve_model_from_seed(&c, 3);
	if (!m)
		return 1;
	kv_tok = serve_kv_block_bytes(&m->cfg, 16) / 16;
	printf("# live migration of one decoding request between two engines of a node\n");
	{
		/* Unmeasured: a process's first migration pays for its first faults and calls. */
		struct row r;

		one(m, 1024, SERVE_NMIG_ZERO_COPY, &r);
		printf("# (after one unmeasured 1k zero-copy migration)\n");
	}
	printf("# %-8s %10s %-10s %12s %10s %10s %8s %10s %9s %8s %6s\n", "tokens", "KV_bytes",
	       "mode", "downtime_ms", "gap_ms", "total_ms", "pages", "copied_B", "slowdown",
	       "busy_ms", "steps");
	for (uint32_t i = 0; i < nl; i++) {
		for (uint32_t mode = 0; mode < SERVE_NMIG_NR_MODES; mode++) {
			const char *only = getenv("MIGRATE_MODES");
			struct row r;
			int ret;

			if (only && !mode_named(only, names[mode]))
				continue;	/* MIGRATE_MODES=zero-copy,copy: those alone */

			if (mode == SERVE_NMIG_RECOMPUTE && lens[i] > RECOMPUTE_MAX) {
				printf("  %-8u %10llu %-10s %12s\n", lens[i],
				       (unsigned long long)(kv_tok * lens[i]), names[mode],
				       "not run (an O(n^2) prefill)");
				continue;
			}
			ret = one(m, lens[i], mode, &r);
			if (ret || r.status) {
				printf("  %-8u %10llu %-10s failed: %s\n", lens[i],
				       (unsigned long long)(kv_tok * lens[i]), names[mode],
				       strerror(-(ret ? ret : r.status)));
				continue;
			}
			printf("  %-8u %10llu %-10s %12.2f %10.2f %10.2f %8llu %10llu %8.2fx %8.2f "
			       "%6u\n", lens[i], (unsigned long long)(kv_tok * lens[i]),
			       names[mode], r.downtime_ms, r.gap_ms, r.total_ms, (unsigned long long)r.pages,
			       (unsigned long long)r.copied, r.slowdown, r.busy_ms, r.steps);
			fflush(stdout);
		}
	}
	serve_model_free(m);
	return 0;
}
