// SPDX-License-Identifier: MIT
/*
 * kvaccel-bench-xmigrate [LEN...] - live migration of one decoding request
 * between two engine processes over UCX (kvaccel-serve's migrate_net.c,
 * accel_xfer puts over UCX_TLS=tcp on 127.0.0.1, memfd tiers), for
 * sequences of LEN tokens (default 1024 4096 16384 32768):
 *
 *   pre-copy    max_stages 3, final_blocks 16: stages while it decodes,
 *               then a short stop for what is left;
 *   stop-copy   max_stages 0: stopped at once, every block put while stopped;
 *
 * downtime (the source's stop until COMMITTED came back: the source's
 * clock), total (serve_xmig_start() to COMMITTED), stages, bytes put (all,
 * and while stopped), and how much slower the source's other requests
 * decode while it runs (their mean loop time during the migration over
 * that of the 20 steps after it). The long request is made without a
 * prefill: its image is committed on the source over blocks of made-up KV.
 * Documentation/serve.rst, "Across nodes: multi-stage pre-copy".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "engine.h"
#include "forward.h"
#include "migrate.h"
#include "migrate_net.h"
#include "stack.h"

#define OTHERS	4
#define S	1000000000LL

struct side {
	struct serve_stack s;
	struct accel_xfer *x;
	struct serve_xmig *n;
	bool done, arrived, aborted;
	int status;
	struct serve_xmig_stats st;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_done(void *arg, uint64_t id, int status, const struct serve_xmig_stats *st)
{
	struct side *sd = arg;

	(void)id;
	sd->done = true;
	sd->status = status;
	sd->st = *st;
}

static void on_arrived(void *arg, uint64_t id, uint32_t h)
{
	(void)id;
	(void)h;
	((struct side *)arg)->arrived = true;
}

static void on_aborted(void *arg, uint64_t id, int status)
{
	(void)id;
	(void)status;
	((struct side *)arg)->aborted = true;
}

static int side_up(struct side *sd, const struct serve_model *m, uint32_t len)
{
	static const struct serve_xmig_ops ops = { .done = on_done, .arrived = on_arrived,
						   .aborted = on_aborted };
	struct serve_driver_opts d = { .max_tokens = 512 };
	struct serve_stack_opts so = { .model = m, .blocks = len / 16 + 96, .swap_blocks = 16,
				       .memfd = true, .threads = 1, .max_ctx = len + 512,
				       .sched = &d };
	char err[256];

	memset(sd, 0, sizeof(*sd));
	if (serve_stack_create(&sd->s, &so, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-bench-xmigrate: %s\n", err);
		return -1;
	}
	sd->x = accel_xfer_create(NULL);
	if (!sd->x) {
		fprintf(stderr, "kvaccel-bench-xmigrate: accel_xfer_create: %s\n", strerror(errno));
		return -1;
	}
	sd->n = serve_xmig_create(sd->s.driver, sd->s.bm, sd->s.tiers[0], sd->x, &ops, sd);
	return sd->n ? 0 : -1;
}

static void side_down(struct side *sd)
{
	serve_xmig_destroy(sd->n);
	accel_xfer_destroy(sd->x);
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
		.block_tokens = 16, .n_prompt = len - 1, .n_gen = 1, .max_tokens = 400,
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

static bool decoded(struct side *sd, uint32_t h, uint32_t gen)
{
	struct serve_driver_info in;

	return !serve_driver_info(sd->s.driver, h, &in) && in.sched.state == ACCEL_SCHED_DECODING &&
	       in.req.n_generated >= gen;
}

/* The destination: listen, tell the port, take the request; killed by the parent. */
static int destination(const struct serve_model *m, uint32_t len, int out)
{
	struct side b;
	uint16_t port;

	if (side_up(&b, m, len) || accel_xfer_listen(b.x, "127.0.0.1", 0, &port))
		return 1;
	if (write(out, &port, sizeof(port)) != (ssize_t)sizeof(port))
		return 3;
	for (;;) {
		int r = serve_driver_step(b.s.driver, NULL);

		if (r < 0)
			return 2;
		serve_xmig_step(b.n);
		if (!r && !serve_xmig_pending(b.n))
			usleep(200);
	}
}

struct row {
	double downtime_ms, total_ms, slowdown;
	uint32_t stages;
	uint64_t copied, final;
	int status;
};

static int one(const struct serve_model *m, uint32_t len, uint32_t max_stages, struct row *row)
{
	uint32_t h, others[OTHERS], steps_in = 0;
	struct accel_xfer_ep *ep = NULL;
	double t_in = 0, t_after = 0;
	int pfd[2], status, ret = 0;
	struct side a;
	uint16_t port;
	pid_t pid;

	memset(row, 0, sizeof(*row));
	if (pipe(pfd))
		return -errno;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(pfd[0]);
		_exit(destination(m, len, pfd[1]));
	}
	close(pfd[1]);
	if (read(pfd[0], &port, sizeof(port)) != (ssize_t)sizeof(port)) {
		ret = -EIO;
		goto out;
	}
	if (side_up(&a, m, len)) {
		ret = -EIO;
		goto out;
	}
	serve_xmig_set_stages(a.n, max_stages, SERVE_XMIG_FINAL_BLOCKS);
	ret = accel_xfer_connect(a.x, "127.0.0.1", port, 5 * S, &ep);
	if (!ret)
		ret = long_request(&a, m, len, &h);
	for (uint32_t i = 0; !ret && i < OTHERS; i++) {
		struct serve_params p = { .max_tokens = 400, .seed = i };
		int32_t tok[16];

		for (uint32_t j = 0; j < 16; j++)
			tok[j] = (int32_t)(i * 16 + j + 1);
		ret = serve_driver_add(a.s.driver, tok, 16, &p, &others[i]);
	}
	while (!ret && !(decoded(&a, h, 2) && decoded(&a, others[OTHERS - 1], 2)))
		ret = serve_driver_step(a.s.driver, NULL) < 0 ? -EIO : 0;
	if (!ret)
		ret = serve_xmig_start(a.n, 1, h, ep);
	while (!ret && !a.done) {
		double t0 = now_ms();

		if (serve_driver_step(a.s.driver, NULL) < 0)
			ret = -EIO;
		serve_xmig_step(a.n);
		t_in += now_ms() - t0;
		steps_in++;
	}
	for (uint32_t k = 0; !ret && k < 20; k++) {
		double t0 = now_ms();

		if (serve_driver_step(a.s.driver, NULL) < 0)
			ret = -EIO;
		serve_xmig_step(a.n);
		t_after += now_ms() - t0;
	}
	row->status = a.status;
	row->downtime_ms = a.st.downtime_us / 1e3;
	row->total_ms = a.st.total_us / 1e3;
	row->stages = a.st.stages;
	row->copied = a.st.bytes_copied;
	row->final = a.st.final_bytes;
	row->slowdown = t_after > 0 && steps_in ? (t_in / steps_in) / (t_after / 20) : 0;
	serve_xmig_forget(a.n, ep);
	accel_xfer_ep_close(ep);
	side_down(&a);
out:
	close(pfd[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return ret;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "stop-copy", "pre-copy" };
	uint32_t lens[16] = { 1024, 4096, 16384, 32768 }, nl = 4;
	struct serve_config c;
	struct serve_model *m;
	uint64_t kv_tok;

	if (argc > 1) {
		for (nl = 0; nl + 1 < (uint32_t)argc && nl < 16; nl++) {
			lens[nl] = (uint32_t)strtoul(argv[nl + 1], NULL, 0);
			if (lens[nl] < 64 || lens[nl] > (1u << 20)) {
				fprintf(stderr, "kvaccel-bench-xmigrate: '%s': a length of 64 to "
					"1048576 tokens\n", argv[nl + 1]);
				return 2;
			}
		}
	}
	setenv("UCX_TLS", "tcp", 0);
	setenv("UCX_MEM_MALLOC_HOOKS", "no", 0);
	setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	serve_config_default(&c);
	m = serve_model_from_seed(&c, 3);
	if (!m)
		return 1;
	kv_tok = serve_kv_block_bytes(&m->cfg, 16) / 16;
	printf("# live migration of one decoding request across nodes (UCX tcp, 127.0.0.1)\n");
	printf("# %-8s %10s %-10s %12s %10s %7s %11s %11s %9s\n", "tokens", "KV_bytes", "mode",
	       "downtime_ms", "total_ms", "stages", "put_B", "stopped_B", "slowdown");
	for (uint32_t i = 0; i < nl; i++) {
		for (uint32_t mode = 0; mode < 2; mode++) {
			struct row r;
			int ret = one(m, lens[i], mode ? SERVE_XMIG_MAX_STAGES : 0, &r);

			if (ret || r.status) {
				printf("  %-8u %10llu %-10s failed: %s\n", lens[i],
				       (unsigned long long)(kv_tok * lens[i]), names[mode],
				       strerror(-(ret ? ret : r.status)));
				continue;
			}
			printf("  %-8u %10llu %-10s %12.2f %10.2f %7u %11llu %11llu %8.2fx\n",
			       lens[i], (unsigned long long)(kv_tok * lens[i]), names[mode],
			       r.downtime_ms, r.total_ms, r.stages, (unsigned long long)r.copied,
			       (unsigned long long)r.final, r.slowdown);
			fflush(stdout);
		}
	}
	serve_model_free(m);
	return 0;
}
