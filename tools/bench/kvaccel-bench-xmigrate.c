// SPDX-License-Identifier: MIT
/*
 * kvaccel-bench-xmigrate [--netns SRC_NS:DST_NS --addr DST_ADDR --devs SRC_IF:DST_IF] [LEN...] -
 * live migration of one decoding request between two engine processes over
 * UCX (kvaccel-serve's migrate_net.c, accel_xfer puts over UCX_TLS=tcp,
 * memfd tiers), for sequences of LEN tokens (default 1024 4096 16384 32768):
 *
 *   stop-copy   max_stages 0: stopped at once, every block put while stopped;
 *   pre-copy    max_stages 3, final_blocks 16: stages while it decodes,
 *               then a short stop for what is left;
 *
 * downtime (the source's stop until COMMITTED came back: the source's
 * clock), total (serve_xmig_start() to COMMITTED), stages, bytes put (all,
 * and while stopped), and how much slower the source decodes while it
 * runs: its mean loop time (a step, then serve_xmig_step()) during the
 * migration's stages, the request still decoding there, over that of the
 * 20 steps just before the migration, the same requests decoding (after the migration the long request is gone, and its
 * attention is most of a step). The long request is made without a
 * prefill: its image is committed on the source over blocks of made-up KV.
 *
 * On 127.0.0.1 by default; with --netns the source runs in network
 * namespace SRC_NS and the destination in DST_NS (/run/netns/NAME, as `ip
 * netns add` makes them), listening on DST_ADDR: two "nodes" joined by a
 * veth pair (make bench-xmigrate, tools/bench/xmigrate-netns.sh). --devs
 * sets each side's UCX_NET_DEVICES: a side that may use its loopback
 * device offers the peer a 127.0.0.1 address, which is the peer's own.
 * Documentation/serve.rst, "Across nodes: multi-stage pre-copy".
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

static const char *dst_addr = "127.0.0.1";
static char src_ns[64], dst_ns[64], src_dev[64], dst_dev[64];

/* Split "A:B" into @a and @b (each shorter than 64); 0 or -EINVAL. */
static int split_pair(const char *s, char *a, char *b)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1] || colon - s >= 64 || strlen(colon + 1) >= 64)
		return -EINVAL;
	memcpy(a, s, colon - s);
	a[colon - s] = 0;
	strcpy(b, colon + 1);
	return 0;
}

/*
 * Enter network namespace @name (before any thread starts), as `ip netns
 * exec` does: /sys remounted in a mount namespace of our own, since UCX
 * finds its network devices in /sys/class/net, which shows the namespace
 * of whoever mounted sysfs. 0 or -errno.
 */
static int enter_ns(const char *name)
{
	char path[128];
	int fd, ret = 0;

	if (!name[0])
		return 0;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) || unshare(CLONE_NEWNS) ||
	    mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) ||
	    (umount2("/sys", MNT_DETACH) && errno != EINVAL) ||
	    mount(name, "/sys", "sysfs", 0, NULL))
		ret = -errno;
	close(fd);
	return ret;
}

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

static void on_arrived(void *arg, uint64_t id, uint32_t h, const struct serve_migr_hdr *hdr)
{
	(void)id;
	(void)h;
	(void)hdr;
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

	if (dst_dev[0])
		setenv("UCX_NET_DEVICES", dst_dev, 1);
	if (enter_ns(dst_ns) || side_up(&b, m, len) || accel_xfer_listen(b.x, dst_addr, 0, &port))
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
	double t_in = 0, t_before = 0;
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
	ret = accel_xfer_connect(a.x, dst_addr, port, 5 * S, &ep);
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
	for (uint32_t k = 0; !ret && k < 20; k++) {
		double t0 = now_ms();

		if (serve_driver_step(a.s.driver, NULL) < 0)
			ret = -EIO;
		serve_xmig_step(a.n);
		t_before += now_ms() - t0;
	}
	if (!ret)
		ret = serve_xmig_start(a.n, 1, h, ep);
	while (!ret && !a.done) {
		bool running = decoded(&a, h, 0);
		double t0 = now_ms();

		if (serve_driver_step(a.s.driver, NULL) < 0)
			ret = -EIO;
		serve_xmig_step(a.n);
		if (running) {
			/* Its stop ends the comparison: the steps after lack its attention. */
			t_in += now_ms() - t0;
			steps_in++;
		}
	}
	row->status = a.status;
	row->downtime_ms = a.st.downtime_us / 1e3;
	row->total_ms = a.st.total_us / 1e3;
	row->stages = a.st.stages;
	row->copied = a.st.bytes_copied;
	row->final = a.st.final_bytes;
	row->slowdown = t_before > 0 && steps_in ? (t_in / steps_in) / (t_before / 20) : 0;
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
	uint32_t lens[16] = { 1024, 4096, 16384, 32768 }, nl = 0;
	struct serve_config c;
	struct serve_model *m;
	uint64_t kv_tok;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--netns") || !strcmp(argv[i], "--devs")) && i + 1 < argc) {
			bool ns = !strcmp(argv[i], "--netns");

			if (split_pair(argv[i + 1], ns ? src_ns : src_dev, ns ? dst_ns : dst_dev)) {
				fprintf(stderr, "kvaccel-bench-xmigrate: %s '%s': SRC:DST expected\n",
					argv[i], argv[i + 1]);
				return 2;
			}
			i++;
			continue;
		}
		if (!strcmp(argv[i], "--addr") && i + 1 < argc) {
			dst_addr = argv[++i];
			continue;
		}
		if (nl == 16 || argv[i][0] == '-') {
			fprintf(stderr, "usage: kvaccel-bench-xmigrate [--netns SRC_NS:DST_NS "
				"--addr DST_ADDR --devs SRC_IF:DST_IF] [LEN...] (at most 16)\n");
			return 2;
		}
		lens[nl] = (uint32_t)strtoul(argv[i], NULL, 0);
		if (lens[nl] < 64 || lens[nl] > (1u << 20)) {
			fprintf(stderr, "kvaccel-bench-xmigrate: '%s': a length of 64 to "
				"1048576 tokens\n", argv[i]);
			return 2;
		}
		nl++;
	}
	if (!nl)
		nl = 4;
	if (src_dev[0])
		setenv("UCX_NET_DEVICES", src_dev, 1);
	ret = enter_ns(src_ns);
	if (ret) {
		fprintf(stderr, "kvaccel-bench-xmigrate: network namespace '%s': %s\n", src_ns,
			strerror(-ret));
		return 1;
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
	if (src_ns[0])
		printf("# live migration of one decoding request across nodes (UCX tcp, network "
		       "namespace %s to %s at %s)\n", src_ns, dst_ns, dst_addr);
	else
		printf("# live migration of one decoding request across nodes (UCX tcp, %s)\n",
		       dst_addr);
	printf("# %-8s %10s %-10s %12s %10s %7s %11s %11s %9s\n", "tokens", "KV_bytes", "mode",
	       "downtime_ms", "total_ms", "stages", "put_B", "stopped_B", "slowdown");
	for (uint32_t i = 0; i < nl; i++) {
		for (uint32_t mode = 0; mode < 2; mode++) {
			struct row r;

			ret = one(m, lens[i], mode ? SERVE_XMIG_MAX_STAGES : 0, &r);

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
