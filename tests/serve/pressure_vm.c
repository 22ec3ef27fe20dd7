// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's engine under memory pressure and killed, against the
 * module (host tiers in kvaccel regions, swaps on the copy engine):
 *
 * - A kvacceld pressure round answered by swap-outs: the engine's tiers
 *   put the node just over the daemon's high watermark (two blocks'
 *   worth); the engine registers with kvacceld as kvaccel-serve
 *   --kvacceld does (serve_kvd_connect()), four requests of priorities 0-3
 *   decode, then the engine waits for the daemon's release request and
 *   answers it through the scheduler (serve_driver_pressure()): the least
 *   urgent request, and only it, is swapped out. The daemon logged the
 *   request and the answer; every request finishes, with the digests of
 *   the same request run alone on a fresh stack. (Freeing blocks of a
 *   preallocated tier does not lower the module's usage, so the round does
 *   not end below the low watermark: not checked.)
 * - An engine killed with SIGKILL in the middle of its swaps leaks
 *   nothing: a child process runs requests on a compute tier too small
 *   for them (swapping all the time) and is killed just after a step
 *   that started swaps (parked there, and running on: at once or up to
 *   10 ms later), six times; each time the device's usage, pages held and
 *   regions come back to where they were, and the kernel log gains no
 *   warning.
 *
 * kvacceld must be on PATH (run-selftests ships it next to the tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel.h"
#include "kvtest.h"
#include "../libaccel/accel_test.h"
#include "forward.h"
#include "pressure.h"
#include "stack.h"
#include "kselftest_harness.h"

#define NREQ	4
#define MAXTOK	16
#define SOCK	"/tmp/serve-kvd.sock"
#define LOG	"/tmp/serve-kvd.log"

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog.",
	"kvaccel: pinned host memory for KV caches, remapped without copying.",
	"Paged attention reads K and V through block tables.",
};

/* ---- kvacceld ------------------------------------------------------------ */

static pid_t start_daemon(const char *wm)
{
	const char *argv[] = { "kvacceld", "--socket", SOCK, "--metrics", "off",
			       "--release-deadline", "2000", "--handoff-timeout", "8000",
			       "--high-watermark", wm, "--low-watermark", wm, NULL };
	int tries;
	pid_t pid;

	pid = fork();
	if (!pid) {
		int fd = open(LOG, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		execvp("kvacceld", (char *const *)argv);
		_exit(127);
	}
	for (tries = 0; pid > 0 && tries < 600; tries++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int ok = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));

		close(fd);
		if (ok)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(50000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static void stop_daemon(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static bool log_has(const char *what)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(LOG, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static bool wait_log(const char *what, int ms)
{
	for (; ms > 0; ms -= 50) {
		if (log_has(what))
			return true;
		usleep(50000);
	}
	return log_has(what);
}

/* ---- the kernel log -------------------------------------------------------- */

/* /dev/kmsg read from its end: what the kernel logs from now on (-1: none). */
static int kmsg_from_now(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Records since kmsg_from_now() that show a kernel problem (printed). */
static int kmsg_problems(int fd)
{
	static const char *const bad[] = { "WARNING:", "BUG:", "Oops", "Call Trace",
					   "KASAN:", "refcount_t:", "list_del corruption",
					   "list_add corruption", "general protection" };
	char rec[2048];
	int found = 0;
	unsigned int i;
	ssize_t n;

	if (fd < 0)
		return 0;
	for (;;) {
		const char *msg;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* records overwritten: go on with the next */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(msg, bad[i])) {
				fprintf(stderr, "# kernel: %s", msg);
				found++;
				break;
			}
		}
	}
	return found;
}

/* ---- the engine ------------------------------------------------------------ */

static void tokens_of(const char *s, int32_t *tok, uint32_t *n)
{
	uint32_t j;

	*n = (uint32_t)strlen(s);
	for (j = 0; j < *n; j++)
		tok[j] = (unsigned char)s[j];
}

static struct serve_model *model(void)
{
	struct serve_config c;

	serve_config_default(&c);
	return serve_model_from_seed(&c, 5);
}

/* The scheduler as kvaccel-serve --policy priority --preempt swap sets it. */
static const struct serve_driver_opts prio_sched = {
	.policy = ACCEL_SCHED_PRIORITY, .preempt = ACCEL_SCHED_PREEMPT_SWAP, .yields = true,
};

static int stack_on(struct serve_stack *s, const struct serve_model *m, bool memfd,
		    uint32_t blocks, uint32_t swap_blocks, const struct serve_driver_opts *sched)
{
	struct serve_stack_opts so = {
		.model = m, .blocks = blocks, .swap_blocks = swap_blocks, .memfd = memfd,
		.threads = 1, .max_ctx = 128, .sched = sched,
	};
	char err[256];
	int ret = serve_stack_create(s, &so, err, sizeof(err));

	if (ret)
		fprintf(stderr, "# %s\n", err);
	return ret;
}

static int add(struct serve_driver *d, uint32_t i, uint32_t max_tokens, uint32_t *h)
{
	struct serve_params p = { .max_tokens = max_tokens, .seed = 1 + i, .priority = (int32_t)i };
	int32_t tok[128];
	uint32_t n;

	tokens_of(prompts[i], tok, &n);
	return serve_driver_add(d, tok, n, &p, h);
}

/* Request @i alone on a fresh stack (memfd tiers): its digests. */
static int alone(const struct serve_model *m, uint32_t i, uint64_t *dig)
{
	struct serve_driver_info in;
	struct serve_stack s;
	uint32_t h;
	int ret;

	ret = stack_on(&s, m, true, 32, 64, &prio_sched);
	if (ret)
		return ret;
	ret = add(s.driver, i, MAXTOK, &h);
	if (!ret)
		ret = serve_driver_run_all(s.driver, NULL);
	if (!ret)
		ret = serve_driver_info(s.driver, h, &in);
	if (!ret && in.req.n_generated != MAXTOK)
		ret = -EPROTO;
	if (!ret)
		memcpy(dig, in.req.digests, MAXTOK * sizeof(*dig));
	serve_stack_destroy(&s);
	return ret;
}

static uint64_t node_usage(int fd)
{
	return kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
}

/* ---- a pressure round answered by swap-outs ------------------------------- */

FIXTURE(pressure) {
	struct serve_model *m;
	uint64_t alone[NREQ][MAXTOK];
	pid_t daemon;
	int fd;
};

FIXTURE_SETUP(pressure)
{
	uint32_t i;

	unlink(LOG);
	self->daemon = 0;
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	self->m = model();
	ASSERT_NE(NULL, self->m);
	for (i = 0; i < NREQ; i++)
		ASSERT_EQ(0, alone(self->m, i, self->alone[i]));
}

FIXTURE_TEARDOWN(pressure)
{
	stop_daemon(self->daemon);
	if (system("kvaccelctl watermarks off >/dev/null 2>&1"))
		fprintf(stderr, "# kvaccelctl could not turn the watermarks off\n");
	if (_metadata->exit_code)
		system("sed 's/^/# daemon: /' " LOG " | tail -40");
	serve_model_free(self->m);
	close(self->fd);
}

TEST_F_TIMEOUT(pressure, round_answered_by_swap_outs, 600)
{
	struct accel_sched_stats st = { .sz = sizeof(st) };
	uint64_t bb = serve_kv_block_bytes(&self->m->cfg, 16), usage0, usage;
	uint32_t h[NREQ], i, steps, done;
	struct serve_driver_info in;
	struct serve_kvd *kvd;
	struct serve_stack s;
	char wm[32], err[256];
	int ret, tries;

	usage0 = node_usage(self->fd);
	/* All four fit on 32 blocks: nothing is swapped but for the daemon. */
	ASSERT_EQ(0, stack_on(&s, self->m, false, 32, 64, &prio_sched));
	usage = node_usage(self->fd);
	ASSERT_LT(usage0 + 2 * bb, usage);
	/*
	 * The tiers put the node two blocks over the watermarks: the round asks
	 * for two blocks. The daemon's first round may come before the engine
	 * registers (nobody to ask); it asks again after ten deadlines.
	 */
	snprintf(wm, sizeof(wm), "%llu", (unsigned long long)(usage - 2 * bb));
	self->daemon = start_daemon(wm);
	ASSERT_LT(0, self->daemon);
	setenv("KVACCELD_SOCKET", SOCK, 1);
	kvd = serve_kvd_connect("serve", 0, s.driver, err, sizeof(err));
	if (!kvd)
		fprintf(stderr, "# %s\n", err);
	ASSERT_NE(NULL, kvd);

	/* Every request decoding, none finished. */
	for (i = 0; i < NREQ; i++)
		ASSERT_EQ(0, add(s.driver, i, MAXTOK, &h[i]));
	for (steps = 0; steps < 64; steps++) {
		ASSERT_LE(0, serve_driver_step(s.driver, NULL));
		for (i = 0, done = 0; i < NREQ; i++) {
			ASSERT_EQ(0, serve_driver_info(s.driver, h[i], &in));
			done += in.req.n_generated >= 2;
		}
		if (done == NREQ)
			break;
	}
	ASSERT_EQ(NREQ, done);
	for (i = 0; i < NREQ; i++) {
		ASSERT_EQ(0, serve_driver_info(s.driver, h[i], &in));
		EXPECT_EQ(SERVE_RUNNING, in.req.state);
		EXPECT_GT(MAXTOK, in.req.n_generated);
	}
	ASSERT_EQ(0, serve_driver_stats(s.driver, &st));
	ASSERT_EQ(0, st.swaps_out);

	/* The daemon's release request, answered through the scheduler. */
	for (tries = 0; tries < 180 && !serve_kvd_rounds(kvd); tries++) {
		struct pollfd pf = { .fd = serve_kvd_fd(kvd), .events = POLLIN };

		if (poll(&pf, 1, 1000) > 0)
			serve_kvd_dispatch(kvd);
	}
	ASSERT_EQ(1, serve_kvd_rounds(kvd));
	EXPECT_TRUE(log_has("asking engine serve (priority 0"));
	ASSERT_EQ(0, serve_driver_stats(s.driver, &st));
	EXPECT_EQ(1, st.swaps_out);
	/* The least urgent request went, the others kept running. */
	for (i = 0; i < NREQ; i++) {
		ASSERT_EQ(0, serve_driver_info(s.driver, h[i], &in));
		EXPECT_EQ(i == NREQ - 1, in.sched.swaps_out);
		if (i == NREQ - 1) {
			EXPECT_TRUE(in.sched.state == ACCEL_SCHED_SWAPPING_OUT ||
				    in.sched.state == ACCEL_SCHED_SWAPPED);
		} else {
			EXPECT_EQ(ACCEL_SCHED_DECODING, in.sched.state);
		}
	}
	EXPECT_TRUE(wait_log("engine serve released", 10000) ||
		    log_has("engine serve answered late"));

	/* The rest as kvaccel-serve runs it: later rounds answered between steps. */
	for (steps = 0; steps < 100000; steps++) {
		int kfd = serve_kvd_fd(kvd);
		struct pollfd pf = { .fd = kfd, .events = POLLIN };

		ret = serve_driver_step(s.driver, NULL);
		ASSERT_LE(0, ret);
		if (kfd >= 0 && poll(&pf, 1, 0) > 0)
			serve_kvd_dispatch(kvd);
		if (!ret)
			break;
	}
	ASSERT_EQ(0, serve_driver_stats(s.driver, &st));
	EXPECT_EQ(NREQ, st.in_state[ACCEL_SCHED_FINISHED]);
	EXPECT_LE(1, st.swaps_out);
	EXPECT_EQ(st.swaps_out, st.swaps_in);
	fprintf(stderr, "# %llu rounds answered, %llu swap-outs, %llu steps\n",
		(unsigned long long)serve_kvd_rounds(kvd), (unsigned long long)st.swaps_out,
		(unsigned long long)st.steps);
	for (i = 0; i < NREQ; i++) {
		ASSERT_EQ(0, serve_driver_info(s.driver, h[i], &in));
		ASSERT_EQ(MAXTOK, in.req.n_generated);
		EXPECT_EQ(0, memcmp(in.req.digests, self->alone[i], sizeof(self->alone[i])))
			TH_LOG("request %u: digests differ from the request alone", i);
	}
	serve_kvd_close(kvd);
	serve_stack_destroy(&s);
	EXPECT_EQ(usage0, kvt_usage_back_to(self->fd, usage0));
	if (system("grep 'pressure round' " LOG " | sed 's/^/# daemon: /'"))
		TH_LOG("no pressure round in the daemon's log");
}

/* ---- killed in the middle of swaps ----------------------------------------- */

/*
 * The engine: requests on 8 compute blocks (they need up to 5 each), again
 * and again; after each step that started swaps, a byte on @wfd; parked
 * (blocked on @parkfd) after the first such step when @park. Exits only
 * on a failure (its status says which) or after 20000 steps.
 */
static void __attribute__((noreturn)) engine_child(int wfd, int parkfd, bool park)
{
	static const struct serve_driver_opts fcfs = {
		.preempt = ACCEL_SCHED_PREEMPT_SWAP, .max_tokens = 64, .max_seqs = 8,
		.chunk_tokens = 8, .yields = true,
	};
	struct serve_model *m = model();
	struct accel_sched_stats st = { .sz = sizeof(st) };
	struct serve_driver_step ds;
	uint32_t h[NREQ] = { 0 }, i, steps;
	struct serve_stack s;
	char c;

	if (!m || stack_on(&s, m, false, 8, 64, &fcfs))
		_exit(10);
	for (steps = 0; steps < 20000; steps++) {
		if (serve_driver_stats(s.driver, &st))
			_exit(11);
		if (st.requests == st.in_state[ACCEL_SCHED_FINISHED]) {
			for (i = 0; i < NREQ; i++) {
				if (h[i] && serve_driver_release(s.driver, h[i]))
					_exit(12);
				if (add(s.driver, i, 12, &h[i]))
					_exit(13);
			}
		}
		if (serve_driver_step(s.driver, &ds) < 0)
			_exit(14);
		if (!ds.swaps_out && !ds.swaps_in)
			continue;
		if (write(wfd, "s", 1) != 1)
			_exit(15);
		if (park && read(parkfd, &c, 1) >= 0)
			_exit(16);	/* only the kill ends the wait */
	}
	_exit(17);
}

/* Wait for @n bytes on @fd (5 min at most); how many came. */
static int read_reports(int fd, int n)
{
	int got = 0, waited = 0;
	char buf[64];

	while (got < n && waited < 300) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pf, 1, 1000) <= 0) {
			waited++;
			continue;
		}
		r = read(fd, buf, (size_t)(n - got) < sizeof(buf) ? (size_t)(n - got) :
			 sizeof(buf));
		if (r <= 0)
			break;	/* the child is gone */
		got += (int)r;
	}
	return got;
}

static uint64_t param_back_to(int fd, uint32_t param, uint64_t want)
{
	uint64_t v = kvt_param_or_die(fd, param);
	int tries;

	for (tries = 0; tries < 1200 && v != want; tries++) {
		usleep(50000);
		v = kvt_param_or_die(fd, param);
	}
	return v;
}

FIXTURE(killed) {
	int fd, kmsg;
	uint64_t usage, pages, regions;
};

FIXTURE_SETUP(killed)
{
	self->fd = kvt_open();
	ASSERT_LE(0, self->fd);
	kvt_settled(self->fd, &self->usage, &self->pages);
	self->regions = kvt_param_or_die(self->fd, KVACCEL_PARAM_REGIONS);
	self->kmsg = kmsg_from_now();
}

FIXTURE_TEARDOWN(killed)
{
	if (self->kmsg >= 0)
		close(self->kmsg);
	close(self->fd);
}

TEST_F_TIMEOUT(killed, mid_swap_leaks_nothing, 900)
{
	/* Parked just after its first swaps; running on, killed at once or a little later. */
	static const struct { bool park; int reports, delay_us; } runs[] = {
		{ true, 1, 0 }, { false, 4, 0 }, { false, 16, 0 },
		{ false, 2, 500 }, { false, 6, 2000 }, { false, 10, 10000 },
	};
	unsigned int r;

	if (self->kmsg < 0)
		TH_LOG("no /dev/kmsg: the kernel log is left to the VM run's check");
	for (r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		int rep[2], park[2], status;
		pid_t child;

		ASSERT_EQ(0, pipe(rep));
		ASSERT_EQ(0, pipe(park));
		child = fork();
		ASSERT_LE(0, child);
		if (!child) {
			close(rep[0]);
			close(park[1]);
			engine_child(rep[1], park[0], runs[r].park);
		}
		close(rep[1]);
		close(park[0]);
		EXPECT_EQ(runs[r].reports, read_reports(rep[0], runs[r].reports))
			TH_LOG("run %u: the engine reported fewer steps with swaps", r);
		if (runs[r].delay_us)
			usleep(runs[r].delay_us);
		kill(child, SIGKILL);
		ASSERT_EQ(child, waitpid(child, &status, 0));
		TH_LOG("run %u: killed %s %d us after %d steps with swaps; usage just after: "
		       "%llu bytes (%llu before)",
		       r, runs[r].park ? "parked" : "running", runs[r].delay_us, runs[r].reports,
		       (unsigned long long)kvt_param_or_die(self->fd, KVACCEL_PARAM_DEVICE_USAGE),
		       (unsigned long long)self->usage);
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("run %u: the engine ended by itself (status %#x)", r, status);
		close(rep[0]);
		close(park[1]);
		EXPECT_EQ(self->usage, kvt_usage_back_to(self->fd, self->usage))
			TH_LOG("run %u: the device's usage is not back", r);
		EXPECT_EQ(self->pages, param_back_to(self->fd, KVACCEL_PARAM_PAGES_HELD,
						     self->pages));
		EXPECT_EQ(self->regions, param_back_to(self->fd, KVACCEL_PARAM_REGIONS,
						       self->regions));
	}
	EXPECT_EQ(0, kmsg_problems(self->kmsg));
}

TEST_HARNESS_MAIN
