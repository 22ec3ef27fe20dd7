// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's engine socket against the real module, with libaccel's engine
 * side: a space's blocks handed from one engine to another through the
 * daemon without a copy (and a region handed back at the same time),
 * quotas, a pressure round releasing memory from the lower priority
 * engine, an engine that ignores its release request, metrics over HTTP,
 * the admin lists and their permission, every kind of bad message (error
 * reply, connection closed, the daemon serving on), hundreds of
 * connections coming and going with no fd or memory growth, a bounded
 * fuzz of the socket, daemon kills at random points while hand-offs
 * are in flight (none lost, none taken twice), peers that never read
 * (bounded output queues, the loop never stalled), and the daemon under a
 * fake service manager (socket activation, the fd store across a kill,
 * the watchdog, SIGHUP reload).
 *
 * Each test starts its own kvacceld (on PATH) with a socket in /tmp and
 * stops it; the module's settings are left off.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "accel.h"
#include "kvdmsg.h"
#include "kvtest.h"
#include "kselftest_harness.h"

#define MIB		(1024ull * 1024)
#define SOCK		"/tmp/kvd-test.sock"
#define LOG		"/tmp/kvd-test.log"
#define METRICS_PORT	9466

static pid_t start_daemon(const char *const *extra)
{
	const char *argv[32] = { "kvacceld", "--socket", SOCK, "--metrics", "off",
				 "--release-deadline", "600", "--handoff-timeout", "8000" };
	int i, n = 9, tries;
	pid_t pid;

	for (i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid = fork();
	if (!pid) {
		int fd = open(LOG, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		execvp("kvacceld", (char *const *)argv);
		_exit(127);
	}
	for (tries = 0; tries < 300; tries++) {
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
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static int stop_daemon(pid_t pid)
{
	int status;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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

static void settings_off(void)
{
	if (system("kvaccelctl watermarks off >/dev/null 2>&1; kvaccelctl limit set 0 >/dev/null 2>&1"))
		fprintf(stderr, "# kvaccelctl could not reset the module's settings\n");
}

/* ---- raw protocol ---------------------------------------------------- */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int raw_send(int fd, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 32)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/* Receive one message (5 s at most): its length, 0 at EOF, -1. */
static long raw_recv(int fd, union kvdmsg_buf *buf)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds;
	long n;

	if (poll(&p, 1, 5000) != 1)
		return -1;
	n = kvdmsg_recv(fd, buf, fds, &nfds, 0);
	kvdmsg_close_fds(fds, nfds);
	return n;
}

/* The reply to a bad message: an ERROR (closing) with @error, then EOF. */
static int expect_closed_with(int fd, int error)
{
	union kvdmsg_buf buf;
	const struct kvd_error *e = (const void *)&buf;
	long n = raw_recv(fd, &buf);

	if (n != (long)sizeof(*e) || buf.hdr.type != KVD_MSG_ERROR) {
		fprintf(stderr, "# no ERROR reply (%ld bytes)\n", n);
		return -1;
	}
	if (e->error != error || !e->closing) {
		fprintf(stderr, "# ERROR %d closing %u: %s\n", e->error, e->closing, e->message);
		return -1;
	}
	return raw_recv(fd, &buf) == 0 ? 0 : -1;
}

static int raw_register(int fd, const char *name)
{
	struct kvd_register m = { 0 };
	union kvdmsg_buf buf;

	kvdmsg_hdr(&m.hdr, KVD_MSG_REGISTER, sizeof(m), 1);
	snprintf(m.name, sizeof(m.name), "%s", name);
	if (raw_send(fd, &m, sizeof(m), NULL, 0))
		return -1;
	if (raw_recv(fd, &buf) <= 0)
		return -1;
	return buf.hdr.type == KVD_MSG_REGISTERED ? 0 :
	       buf.hdr.type == KVD_MSG_ERROR ? ((struct kvd_error *)(void *)&buf)->error : -1;
}

/* REGISTER of @size bytes: the reply's length (its type checked), or -1. */
static long raw_register_sized(int fd, const char *name, size_t size, uint32_t revision,
			       uint64_t features, union kvdmsg_buf *reply)
{
	union kvdmsg_buf m;
	struct kvd_register *r = (void *)&m;
	long n;

	memset(&m, 0, sizeof(m));
	kvdmsg_hdr(&r->hdr, KVD_MSG_REGISTER, size, 1);
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->revision = revision;
	r->features = features;
	if (raw_send(fd, &m, size, NULL, 0))
		return -1;
	n = raw_recv(fd, reply);
	return n > 0 && reply->hdr.type == KVD_MSG_REGISTERED ? n : -1;
}

/* The daemon's open fds and resident set (KiB). */
static void daemon_footprint(pid_t pid, int *fds, long *rss_kb)
{
	char path[64], line[256];
	FILE *f;
	DIR *d;

	*fds = 0;
	*rss_kb = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d) {
		while (readdir(d))
			(*fds)++;
		closedir(d);
	}
	/*
	 * Resident memory from the page tables (smaps_rollup), not VmRSS: up
	 * to 6.1 VmRSS is the mm's counters, which each thread updates only
	 * every 64 faults (SPLIT_RSS_COUNTING), and a fresh static daemon's
	 * fault-around on its own text is megabytes that show up there at
	 * some later fault, whatever the daemon did in between.
	 */
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Rss:", 4))
			*rss_kb = atol(line + 4);
	if (f)
		fclose(f);
}

/*
 * A daemon's resident memory per mapping, to say where a growth went when a
 * footprint check fails (the heap, a thread's stack, a library's data).
 */
struct rss_map {
	char name[96];
	long rss_kb;
	long thp_kb;
};

static int daemon_rss_maps(pid_t pid, struct rss_map *m, int max)
{
	char path[64], line[256];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Rss:", 4) && n > 0)
			m[n - 1].rss_kb = atol(line + 4);
		else if (!strncmp(line, "AnonHugePages:", 14) && n > 0)
			m[n - 1].thp_kb = atol(line + 14);
		else if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') &&
			 n < max) {
			line[strcspn(line, "\n")] = 0;
			snprintf(m[n].name, sizeof(m[n].name), "%.95s", line);
			m[n].thp_kb = 0;
			m[n++].rss_kb = 0;
		}
	}
	if (f)
		fclose(f);
	return n;
}

#define LOG_RSS_GROWTH(before, nb, after, na)					\
	do {									\
		int _i, _j;							\
										\
		for (_i = 0; _i < (na); _i++) {					\
			long _was = 0;						\
										\
			for (_j = 0; _j < (nb); _j++)				\
				if (!strcmp((before)[_j].name, (after)[_i].name))	\
					_was = (before)[_j].rss_kb;		\
			if ((after)[_i].rss_kb > _was)				\
				TH_LOG("grew %ld KiB (%ld KiB in huge pages): %s",	\
				       (after)[_i].rss_kb - _was, (after)[_i].thp_kb,	\
				       (after)[_i].name);			\
		}								\
	} while (0)

FIXTURE(kvd) {
	pid_t daemon;
};

FIXTURE_SETUP(kvd)
{
	unlink(LOG);
	self->daemon = 0;
}

FIXTURE_TEARDOWN(kvd)
{
	if (self->daemon > 0)
		stop_daemon(self->daemon);
	settings_off();
	if (_metadata->exit_code)
		system("sed 's/^/# daemon: /' " LOG " | tail -40");
}

/* ---- hand-offs --------------------------------------------------------- */

struct recv_state {
	struct accel_device *dev;
	struct accel_space *space;
	struct accel_region *region;
	int got, bad;
};

/* Engine b: imports the space, checks what a wrote, writes its mark through it. */
static int b_receive(void *arg, const struct accel_handoff *h)
{
	struct recv_state *s = arg;
	unsigned char *p;
	size_t size;

	if (h->count != 1 || h->kinds[0] != ACCEL_HANDOFF_SPACE || strcmp(h->from, "a"))
		return -EINVAL;
	s->space = accel_space_import(s->dev, h->fds[0]);
	close(h->fds[0]);
	if (!s->space)
		return -errno;
	p = accel_space_map(s->space, &size);
	if (!p || size != 4 * MIB)
		return -EIO;
	/* Slot 0 is a's block 1 (0xb1...), slot 1 its block 0. */
	if (p[0] != 0xb1 || p[2 * MIB] != 0xb0)
		s->bad++;
	p[0] = 0x5a;
	s->got++;
	return 0;
}

/* Engine a: takes the region b sends back. */
static int a_receive(void *arg, const struct accel_handoff *h)
{
	struct recv_state *s = arg;
	unsigned char *p;

	if (h->count != 1 || h->kinds[0] != ACCEL_HANDOFF_REGION || h->sizes[0] != 2 * MIB)
		return -EINVAL;
	s->region = accel_region_import(s->dev, h->fds[0]);
	close(h->fds[0]);
	if (!s->region)
		return -errno;
	p = accel_region_map(s->region);
	if (!p || p[100] != 0xcc)
		s->bad++;
	s->got++;
	return 0;
}

TEST_F(kvd, handoff_space_without_copy)
{
	int ready[2], done[2];
	pid_t child;
	char c;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		struct recv_state s = { .dev = accel_device_open(NULL) };
		struct accel_engine_ops ops = { .receive = b_receive };
		enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
		struct accel_region *r;
		struct accel_engine *e;
		int fd, i, st;

		e = s.dev ? accel_engine_connect(SOCK, "b", 3, &ops, &s) : NULL;
		if (!e)
			_exit(10);
		/* b sends a region back while a sends it the space. */
		r = accel_region_create(s.dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
		if (!r || !accel_region_map(r) || accel_region_export(r, &fd))
			_exit(11);
		memset(accel_region_map(r), 0xcc, 2 * MIB);
		if (write(ready[1], "r", 1) != 1)
			_exit(12);
		if (accel_engine_handoff(e, "a", 77, &fd, &kind, 1))
			_exit(13);
		close(fd);
		st = accel_engine_handoff_wait(e, 77, 20000000000ll);
		for (i = 0; i < 200 && !s.got; i++)
			accel_engine_dispatch(e, 100000000);
		if (st || s.got != 1 || s.bad)
			_exit(14);
		if (write(ready[1], "d", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(15);
		accel_engine_close(e);
		_exit(0);
	}
	{
		struct recv_state s = { .dev = accel_device_open(NULL) };
		struct accel_engine_ops ops = { .receive = a_receive };
		enum accel_handoff_kind kind = ACCEL_HANDOFF_SPACE;
		struct accel_bind_op ops2[2] = { 0 };
		struct accel_engine *e;
		struct accel_region *r;
		struct accel_space *sp;
		unsigned char *p;
		int fd, status, i;

		ASSERT_NE(NULL, s.dev);
		r = accel_region_create(s.dev, 4 * MIB, 2 * MIB, ACCEL_NODE_ANY);
		ASSERT_NE(NULL, r);
		p = accel_region_map(r);
		ASSERT_NE(NULL, p);
		memset(p, 0xb0, 2 * MIB);
		memset(p + 2 * MIB, 0xb1, 2 * MIB);
		sp = accel_space_create(s.dev, 2, 2 * MIB);
		ASSERT_NE(NULL, sp);
		ops2[0] = (struct accel_bind_op){ .kind = ACCEL_BIND, .slot = 0, .region = r, .block = 1 };
		ops2[1] = (struct accel_bind_op){ .kind = ACCEL_BIND, .slot = 1, .region = r, .block = 0 };
		ASSERT_EQ(0, accel_space_bind(sp, ops2, 2, NULL));
		ASSERT_EQ(0, accel_space_export(sp, &fd));
		ASSERT_EQ(1, read(ready[0], &c, 1));
		e = accel_engine_connect(SOCK, "a", 3, &ops, &s);
		ASSERT_NE(NULL, e) TH_LOG("connect: %s", strerror(errno));
		ASSERT_EQ(0, accel_engine_handoff(e, "b", 1, &fd, &kind, 1));
		close(fd);
		EXPECT_EQ(1, accel_engine_pending(e));
		ASSERT_EQ(0, accel_engine_handoff_wait(e, 1, 20000000000ll));
		EXPECT_EQ(0, accel_engine_pending(e));
		for (i = 0; i < 200 && !s.got; i++)
			accel_engine_dispatch(e, 100000000);
		EXPECT_EQ(1, s.got);
		EXPECT_EQ(0, s.bad);
		/* b's write through the space landed in a's block 1: no copy. */
		EXPECT_EQ(0x5a, p[2 * MIB]);
		ASSERT_EQ(1, read(ready[0], &c, 1));
		ASSERT_EQ(1, write(done[1], "x", 1));
		ASSERT_EQ(child, waitpid(child, &status, 0));
		EXPECT_EQ(0, WEXITSTATUS(status));
		EXPECT_TRUE(log_has("-> b done"));
		accel_engine_close(e);
		accel_space_destroy(sp);
		accel_region_destroy(r);
		accel_region_destroy(s.region);
		accel_device_close(s.dev);
	}
}

/* A hand-off to an engine that never registers ends in -ETIMEDOUT. */
TEST_F(kvd, handoff_to_absent_engine_times_out)
{
	const char *extra[] = { "--handoff-timeout", "500", NULL };
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_region *r;
	struct accel_engine *e;
	int fd;

	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	ASSERT_NE(NULL, dev);
	r = accel_region_create(dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, accel_region_export(r, &fd));
	e = accel_engine_connect(SOCK, "lonely", 0, NULL, NULL);
	ASSERT_NE(NULL, e);
	ASSERT_EQ(0, accel_engine_handoff(e, "nobody", 5, &fd, &kind, 1));
	EXPECT_EQ(-EEXIST, accel_engine_handoff(e, "nobody", 5, &fd, &kind, 1));
	EXPECT_EQ(-EINVAL, accel_engine_handoff(e, "lonely", 6, &fd, &kind, 1));
	EXPECT_EQ(-ETIMEDOUT, accel_engine_handoff_wait(e, 5, 10000000000ll));
	EXPECT_EQ(0, accel_engine_pending(e));
	close(fd);
	accel_engine_close(e);
	accel_region_destroy(r);
	accel_device_close(dev);
}

TEST_F(kvd, bad_engine_arguments)
{
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct accel_engine *e;
	int fd = 0;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	EXPECT_EQ(NULL, accel_engine_connect(SOCK, NULL, 0, NULL, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_engine_connect(SOCK, "bad name", 0, NULL, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_engine_connect(SOCK, "x", 8, NULL, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_engine_connect("/tmp/none.sock", "x", 0, NULL, NULL));
	EXPECT_EQ(ENOENT, errno);
	e = accel_engine_connect(SOCK, "x", 0, NULL, NULL);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(NULL, accel_engine_connect(SOCK, "x", 0, NULL, NULL));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-EINVAL, accel_engine_quota(e, 12345, NULL));
	EXPECT_EQ(-EINVAL, accel_engine_quota(NULL, MIB, NULL));
	EXPECT_EQ(-EINVAL, accel_engine_handoff(e, "y", 1, NULL, &kind, 1));
	EXPECT_EQ(-EINVAL, accel_engine_handoff(e, "y", 1, &fd, &kind, 0));
	EXPECT_EQ(-EINVAL, accel_engine_handoff(e, "y", 1, &fd, &kind, 17));
	EXPECT_EQ(-EBADF, accel_engine_handoff(e, "y", 1, &fd, &kind, 1));	/* stdin */
	EXPECT_EQ(-EINVAL, accel_engine_dispatch(NULL, 0));
	EXPECT_EQ(-EINVAL, accel_engine_fd(NULL));
	EXPECT_EQ(-ENOENT, accel_engine_handoff_wait(e, 99, 0));
	EXPECT_EQ(0, accel_engine_dispatch(e, 0));
	accel_engine_close(e);
	accel_engine_close(NULL);
}

/* ---- quota ------------------------------------------------------------ */

TEST_F(kvd, quota_granted_within_the_limit)
{
	const char *extra[] = { "--limit", "128M", NULL };
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_engine *e;
	uint64_t granted = 0;
	int fd = kvt_open();

	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	ASSERT_NE(NULL, dev);
	e = accel_engine_connect(SOCK, "q", 1, NULL, NULL);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(0, accel_engine_quota_now(e));
	ASSERT_EQ(0, accel_engine_quota(e, 64 * MIB, &granted));
	EXPECT_EQ(64 * MIB, granted);
	EXPECT_EQ(64 * MIB, kvt_param_or_die(fd, KVACCEL_PARAM_CLIENT_QUOTA));
	EXPECT_EQ(-ENOSPC, accel_engine_quota(e, 256 * MIB, NULL));
	EXPECT_EQ(64 * MIB, kvt_param_or_die(fd, KVACCEL_PARAM_CLIENT_QUOTA));
	accel_engine_close(e);
	/* The kernel keeps it: a restarted daemon hands it back on registering. */
	EXPECT_EQ(0, stop_daemon(self->daemon));
	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	e = accel_engine_connect(SOCK, "q", 1, NULL, NULL);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(64 * MIB, accel_engine_quota_now(e));
	accel_engine_close(e);
	close(fd);
	accel_device_close(dev);
}

/* ---- pressure ----------------------------------------------------------- */

struct holder {
	struct accel_region *r[8];
	int n, calls;
	uint64_t asked;
};

static int release_all(void *arg, uint64_t bytes, uint64_t *released)
{
	struct holder *h = arg;

	h->calls++;
	h->asked = bytes;
	*released = 0;
	while (h->n) {
		*released += accel_region_size(h->r[h->n - 1]);
		accel_region_destroy(h->r[--h->n]);
	}
	return 0;
}

static int http_get(const char *path, char *out, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(METRICS_PORT) };
	char req[128];
	size_t got = 0;
	int fd;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -1;
	}
	while (got < len - 1 && (n = read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fd);
	return 0;
}

/*
 * low (priority 0) holds 16 MiB, high (priority 5) takes 12 MiB: usage
 * 28 MiB crosses the 24 MiB high watermark; the daemon asks low, which
 * frees its 16 MiB: usage 12 MiB is under the 16 MiB low watermark and the
 * round is resolved; high is never asked.
 */
TEST_F(kvd, pressure_round_releases_the_lower_priority)
{
	const char *extra[] = { "--high-watermark", "24M", "--low-watermark", "16M", NULL };
	int to_low[2], from_low[2], fd = kvt_open(), i, status;
	struct accel_device *dev;
	struct accel_engine *e;
	struct accel_region *r;
	pid_t low;
	char c;

	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	ASSERT_EQ(0, pipe(to_low));
	ASSERT_EQ(0, pipe(from_low));
	low = fork();
	ASSERT_LE(0, low);
	if (!low) {
		struct holder h = { 0 };
		struct accel_engine_ops ops = { .release = release_all };
		struct accel_device *d = accel_device_open(NULL);
		struct accel_engine *le;

		for (i = 0; d && i < 2; i++)
			h.r[h.n++] = accel_region_create(d, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
		le = d ? accel_engine_connect(SOCK, "low", 0, &ops, &h) : NULL;
		if (!le || !h.r[0] || !h.r[1])
			_exit(10);
		if (write(from_low[1], "r", 1) != 1)
			_exit(11);
		for (i = 0; i < 300 && !h.calls; i++)
			accel_engine_dispatch(le, 100000000);
		c = h.calls == 1 && h.asked == 12 * MIB ? 'y' : 'n';
		if (write(from_low[1], &c, 1) != 1 || read(to_low[0], &c, 1) != 1)
			_exit(12);
		accel_engine_close(le);
		_exit(0);
	}
	ASSERT_EQ(1, read(from_low[0], &c, 1));
	dev = accel_device_open(NULL);
	ASSERT_NE(NULL, dev);
	e = accel_engine_connect(SOCK, "high", 5, NULL, NULL);
	ASSERT_NE(NULL, e);
	r = accel_region_create(dev, 12 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(1, read(from_low[0], &c, 1));
	EXPECT_EQ('y', c);
	for (i = 0; i < 100 && kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE) != 12 * MIB; i++)
		usleep(50000);
	EXPECT_EQ(12 * MIB, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_TRUE(wait_log("pressure round 1: usage below the low watermark", 5000));
	EXPECT_TRUE(log_has("engine low released 16777216 bytes"));
	EXPECT_FALSE(log_has("asking engine high"));
	/* high answered nothing and was asked nothing. */
	EXPECT_EQ(0, accel_engine_dispatch(e, 0));

	ASSERT_EQ(1, write(to_low[1], "x", 1));
	ASSERT_EQ(low, waitpid(low, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	accel_engine_close(e);
	accel_region_destroy(r);
	accel_device_close(dev);
	close(fd);
}

static int list_engines(int fd, struct kvd_engine_info *out, int max)
{
	struct kvd_hdr h;
	union kvdmsg_buf buf;
	int n = 0;

	kvdmsg_hdr(&h, KVD_MSG_LIST_ENGINES, sizeof(h), 9);
	if (raw_send(fd, &h, sizeof(h), NULL, 0))
		return -1;
	for (;;) {
		if (raw_recv(fd, &buf) <= 0)
			return -1;
		if (buf.hdr.type == KVD_MSG_END)
			return n;
		if (buf.hdr.type == KVD_MSG_ERROR)
			return ((struct kvd_error *)(void *)&buf)->error;
		if (buf.hdr.type == KVD_MSG_ENGINE_INFO && n < max)
			memcpy(&out[n++], &buf, sizeof(*out));
	}
}

/* An engine that does not answer is reported after its deadline; the next is asked. */
TEST_F(kvd, pressure_ignored_release_is_reported)
{
	const char *extra[] = { "--high-watermark", "24M", "--low-watermark", "16M",
				"--release-deadline", "300", NULL };
	struct accel_engine_ops ops = { .release = release_all };
	struct accel_device *dev = accel_device_open(NULL);
	struct kvd_engine_info info[4];
	struct accel_engine *deaf, *e;
	struct holder h = { 0 };
	int i, n, fd;

	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	ASSERT_NE(NULL, dev);
	deaf = accel_engine_connect(SOCK, "deaf", 0, NULL, NULL);
	e = accel_engine_connect(SOCK, "kind", 4, &ops, &h);
	ASSERT_NE(NULL, deaf);
	ASSERT_NE(NULL, e);
	/* Both in this process: "deaf" is asked first (priority 0) and never reads. */
	for (i = 0; i < 4; i++)
		h.r[h.n++] = accel_region_create(dev, 8 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, h.r[3]);
	for (i = 0; i < 60 && !h.calls; i++)
		accel_engine_dispatch(e, 100000000);
	EXPECT_EQ(1, h.calls);
	EXPECT_TRUE(wait_log("engine deaf (pid", 2000));
	EXPECT_TRUE(log_has("ignored the release request past its 300 ms deadline"));
	fd = raw_connect();
	ASSERT_LE(0, fd);
	n = list_engines(fd, info, 4);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++) {
		if (!strcmp(info[i].name, "deaf")) {
			EXPECT_EQ(1, info[i].releases_asked);
			EXPECT_EQ(1, info[i].releases_ignored);
		} else {
			EXPECT_STREQ("kind", info[i].name);
			EXPECT_EQ(4, info[i].priority);
			EXPECT_EQ(getpid(), (pid_t)info[i].pid);
			EXPECT_EQ(1, info[i].releases_asked);
			EXPECT_EQ(0, info[i].releases_ignored);
		}
	}
	close(fd);
	/* deaf answers now, late: logged, not a protocol error. */
	EXPECT_LE(1, accel_engine_dispatch(deaf, 0));
	EXPECT_TRUE(wait_log("engine deaf answered late", 2000));
	EXPECT_EQ(0, accel_engine_quota(deaf, 64 * MIB, NULL));
	accel_engine_close(deaf);
	accel_engine_close(e);
	accel_device_close(dev);
}

/* Metrics over HTTP on loopback (kernels without IPv4 skip it). */
TEST_F(kvd, metrics_over_http)
{
	const char *extra[] = { "--metrics", "127.0.0.1:9466", "--high-watermark", "12M",
				"--low-watermark", "4M", NULL };
	struct accel_device *dev;
	struct accel_engine *e;
	struct accel_region *r;
	static char page[65536];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		SKIP(return, "no IPv4 in this kernel: %s", strerror(errno));
	close(fd);
	if (system("ip link set lo up >/dev/null 2>&1"))
		TH_LOG("ip link set lo up failed: loopback may be down");
	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	dev = accel_device_open(NULL);
	ASSERT_NE(NULL, dev);
	e = accel_engine_connect(SOCK, "metered", 2, NULL, NULL);
	ASSERT_NE(NULL, e);
	ASSERT_EQ(0, accel_engine_quota(e, 32 * MIB, NULL));
	r = accel_region_create(dev, 16 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	/* Over the high watermark: a round, which asks "metered" (it answers 0). */
	EXPECT_TRUE(wait_log("asking engine metered", 5000));
	accel_engine_dispatch(e, 1000000000);
	ASSERT_EQ(0, http_get("/metrics", page, sizeof(page)));
	EXPECT_NE(NULL, strstr(page, "200 OK"));
	EXPECT_NE(NULL, strstr(page, "text/plain; version=0.0.4"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_up 1"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_node_usage_bytes 16777216"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_node_pressure 1"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_engine_usage_bytes{engine=\"metered\"} 16777216"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_engine_quota_bytes{engine=\"metered\"} 33554432"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_engine_priority{engine=\"metered\"} 2"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_events_total{event=\"pressure\"} 1"));
	EXPECT_NE(NULL, strstr(page, "\nkvaccel_pressure_rounds_total "));
	EXPECT_EQ(NULL, strstr(page, "\nkvaccel_pressure_rounds_total 0"));
	EXPECT_NE(NULL, strstr(page, "kvaccel_engines 1"));
	/* Issue 13: no per-incarnation labels, no "no limit" as 0, the process_* metrics. */
	EXPECT_EQ(NULL, strstr(page, "pid=\""));
	EXPECT_EQ(NULL, strstr(page, "kvaccel_node_limit_bytes 0"));
	EXPECT_NE(NULL, strstr(page, "\nprocess_open_fds "));
	EXPECT_NE(NULL, strstr(page, "\nprocess_resident_memory_bytes "));
	EXPECT_NE(NULL, strstr(page, "\nprocess_start_time_seconds "));
	EXPECT_NE(NULL, strstr(page, "\nprocess_cpu_seconds_total "));
	ASSERT_EQ(0, http_get("/nothing", page, sizeof(page)));
	EXPECT_NE(NULL, strstr(page, "404"));
	accel_region_destroy(r);
	accel_engine_close(e);
	accel_device_close(dev);
}

/* ---- admin and permissions ---------------------------------------------- */

/* Readiness and stopping reach systemd's notify socket (sd_notify). */
TEST_F(kvd, notifies_readiness)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/tmp/kvd-notify.sock" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char msg[256];
	ssize_t n;

	ASSERT_LE(0, fd);
	unlink(sa.sun_path);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	self->daemon = start_daemon(NULL);
	unsetenv("NOTIFY_SOCKET");
	ASSERT_LT(0, self->daemon);
	/* Other messages may come first (the fd store's, with their fds: closed with fd). */
	do {
		ASSERT_EQ(1, poll(&p, 1, 5000));
		n = recv(fd, msg, sizeof(msg) - 1, MSG_CMSG_CLOEXEC);
		ASSERT_LT(0, n);
		msg[n] = 0;
	} while (!strstr(msg, "READY=1"));
	EXPECT_EQ(0, stop_daemon(self->daemon));
	self->daemon = 0;
	do {
		ASSERT_EQ(1, poll(&p, 1, 5000));
		n = recv(fd, msg, sizeof(msg) - 1, 0);
		ASSERT_LT(0, n);
		msg[n] = 0;
	} while (!strstr(msg, "STOPPING=1"));
	close(fd);
	unlink(sa.sun_path);
}

/* Events lost to a receive overrun: the daemon re-reads the dumps and serves on. */
TEST_F(kvd, event_overrun_resyncs)
{
	int fd = kvt_open(), i, s;
	uint32_t h;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	usleep(200000);
	/* Stopped, it reads nothing: 12000 events overrun its 4 MiB buffer. */
	ASSERT_EQ(0, kill(self->daemon, SIGSTOP));
	for (i = 0; i < 6000; i++) {
		ASSERT_EQ(0, kvt_region_create(fd, 4096, 4096, &h));
		ASSERT_EQ(0, kvt_close_handle(fd, h));
	}
	ASSERT_EQ(0, kill(self->daemon, SIGCONT));
	EXPECT_TRUE(wait_log("events lost: view re-read", 10000));
	s = raw_connect();
	ASSERT_LE(0, s);
	EXPECT_EQ(0, raw_register(s, "after-overrun"));
	close(s);
	close(fd);
}

/* An engine that dies: the kernel frees its memory, the daemon says so. */
TEST_F(kvd, engine_death_is_logged)
{
	int fd = kvt_open(), pipefd[2], i;
	uint64_t u0;
	pid_t pid;
	char c;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct accel_device *dev = accel_device_open(NULL);
		struct accel_engine *e = accel_engine_connect(SOCK, "doomed", 0, NULL, NULL);

		if (!dev || !e || !accel_region_create(dev, 16 * MIB, 2 * MIB, ACCEL_NODE_ANY))
			_exit(10);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(11);
		pause();
		_exit(0);
	}
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(u0 + 16 * MIB, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (i = 0; i < 100 && kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE) != u0; i++)
		usleep(50000);
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_TRUE(wait_log("engine doomed (pid", 3000));
	EXPECT_TRUE(wait_log("disconnected (closed)", 3000));
	EXPECT_TRUE(wait_log("closed a device file; the kernel freed what it held there", 3000));
	close(fd);
}

TEST_F(kvd, admin_lists_need_admin)
{
	struct kvd_engine_info info[2];
	int fd, status;
	pid_t pid;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	fd = raw_connect();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, list_engines(fd, info, 2));
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(10);
		fd = raw_connect();
		if (fd < 0)
			_exit(11);
		/* Refused, and the connection stays open: REGISTER is answered. */
		if (list_engines(fd, info, 2) != -EPERM)
			_exit(12);
		/* No [tenants] name rules: only root, the daemon's user and admins register. */
		_exit(raw_register(fd, "nobody-engine") == -EACCES ? 0 : 13);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* A member of admin_group (a supplementary group, seen by SO_PEERGROUPS) is an admin. */
TEST_F(kvd, admin_group_member_is_admin)
{
	const char *extra[] = { "--admin-group", "kvadmin", NULL };
	struct kvd_engine_info info[2];
	gid_t groups[1] = { 4242 };
	int fd, status;
	FILE *f;
	pid_t pid;

	f = fopen("/etc/group", "a");
	ASSERT_NE(NULL, f);
	fprintf(f, "kvadmin:x:4242:\n");
	fclose(f);
	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgroups(1, groups) || setgid(65534) || setuid(65534))
			_exit(10);
		fd = raw_connect();
		_exit(fd >= 0 && list_engines(fd, info, 2) == 0 ? 0 : 11);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* And --check-config knows a group that does not exist. */
	EXPECT_NE(0, system("kvacceld --check-config --admin-group nosuchgroup 2>/tmp/kvd-cc.out"));
	EXPECT_EQ(0, system("grep -q \"admin_group: no group 'nosuchgroup'\" /tmp/kvd-cc.out"));
}

struct reuse_tally {
	int received;		/* hand-offs the receiver took */
	int byte[4];		/* the first byte of each region it took */
	int ready;
};

static struct accel_device *reuse_dev;	/* the receiver's */

static int reuse_receive(void *arg, const struct accel_handoff *h)
{
	struct reuse_tally *t = arg;
	struct accel_region *r;
	unsigned char *p;

	if (h->count != 1 || h->tag != 1 || t->received >= 4) {
		close(h->fds[0]);
		return -EINVAL;
	}
	r = accel_region_import(reuse_dev, h->fds[0]);
	close(h->fds[0]);
	if (!r)
		return -errno;
	p = accel_region_map(r);
	t->byte[t->received] = p ? p[0] : -1;
	accel_region_destroy(r);
	__atomic_add_fetch(&t->received, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* One sender process: connect as "tx", hand a region filled with @mark under tag 1. */
static int reuse_send(unsigned char mark, bool first_to_nobody)
{
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_region *r;
	struct accel_engine *e;
	int fd, ret;

	e = dev ? accel_engine_connect(SOCK, "tx", 2, NULL, NULL) : NULL;
	r = dev ? accel_region_create(dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY) : NULL;
	if (!e || !r || !accel_region_map(r) || accel_region_export(r, &fd))
		return 10;
	memset(accel_region_map(r), mark, 2 * MIB);
	if (first_to_nobody) {
		/* Tag 1 times out first: its -ETIMEDOUT must not answer the next tag 1. */
		if (accel_engine_handoff(e, "nobody", 1, &fd, &kind, 1))
			return 11;
		ret = accel_engine_handoff_wait(e, 1, 10000000000ll);
		if (ret != -ETIMEDOUT)
			return 12;
	}
	if (accel_engine_handoff(e, "rx", 1, &fd, &kind, 1))
		return 13;
	ret = accel_engine_handoff_wait(e, 1, 10000000000ll);
	if (ret)
		return 14 + (ret == -ETIMEDOUT);
	accel_engine_close(e);
	return 0;
}

/*
 * Issue 13: tags are unique only among a sender's pending hand-offs. A
 * sender that restarts (a new engine object) and uses tag 1 again is
 * delivered, not acknowledged as a resend; and a reused tag's wait gets the
 * new hand-off's status, not the earlier one's.
 */
TEST_F(kvd, restarted_sender_reuses_tag)
{
	const char *extra[] = { "--handoff-timeout", "1500", NULL };
	struct reuse_tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t receiver, sender;
	int status, i;

	ASSERT_NE(MAP_FAILED, t);
	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	receiver = fork();
	ASSERT_LE(0, receiver);
	if (!receiver) {
		struct accel_engine_ops ops = { .receive = reuse_receive };
		struct accel_engine *e;

		reuse_dev = accel_device_open(NULL);
		e = reuse_dev ? accel_engine_connect(SOCK, "rx", 2, &ops, t) : NULL;
		if (!e)
			_exit(10);
		t->ready = 1;
		for (;;)
			accel_engine_dispatch(e, 50000000);
	}
	for (i = 0; i < 100 && !t->ready; i++)
		usleep(50000);
	ASSERT_EQ(1, t->ready);
	for (i = 0; i < 2; i++) {
		sender = fork();
		ASSERT_LE(0, sender);
		if (!sender)
			_exit(reuse_send(0xa0 + i, i == 1));
		ASSERT_EQ(sender, waitpid(sender, &status, 0));
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("sender %d", i);
	}
	for (i = 0; i < 40 && t->received < 2; i++)
		usleep(50000);
	kill(receiver, SIGKILL);
	waitpid(receiver, NULL, 0);
	EXPECT_EQ(2, t->received);
	EXPECT_EQ(0xa0, t->byte[0]);
	EXPECT_EQ(0xa1, t->byte[1]);
}

/* ---- tenants: names bound to users, who may hand to whom, per-user maxima ---- */

#define TENANT_CONF	"/tmp/kvd-tenant.conf"

static void write_tenant_conf(const char *text)
{
	FILE *f = fopen(TENANT_CONF, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static pid_t start_with_conf(const char *text)
{
	const char *extra[] = { "--config", TENANT_CONF, NULL };

	write_tenant_conf(text);
	return start_daemon(extra);
}

/* Become @uid (no supplementary groups) in a forked child. */
static int become(uid_t uid)
{
	return setgroups(0, NULL) || setgid(uid) || setuid(uid) ? -1 : 0;
}

/* REGISTER @name at @priority on a new connection: 0, -errno, or -1; the connection in *@fd. */
static int raw_register_prio(const char *name, uint32_t priority, int *fdp)
{
	struct kvd_register m = { 0 };
	union kvdmsg_buf buf;
	int fd = raw_connect();

	if (fdp)
		*fdp = fd;
	if (fd < 0)
		return -1;
	kvdmsg_hdr(&m.hdr, KVD_MSG_REGISTER, sizeof(m), 1);
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.priority = priority;
	m.revision = KVD_PROTO_REVISION;
	m.features = KVD_FEATURES;
	if (raw_send(fd, &m, sizeof(m), NULL, 0) || raw_recv(fd, &buf) <= 0)
		return -1;
	return buf.hdr.type == KVD_MSG_REGISTERED ? 0 :
	       buf.hdr.type == KVD_MSG_ERROR ? ((struct kvd_error *)(void *)&buf)->error : -1;
}

/*
 * Issue 13: a name belongs to the users its rule lists. Another uid cannot
 * take "decode" (before its engine starts or while it restarts), though it
 * may take its own names; a priority above the ceiling is for admins.
 */
TEST_F(kvd, name_squatting_by_another_uid_is_refused)
{
	int status, fd;
	pid_t pid;

	self->daemon = start_with_conf("[tenants]\nname decode* = uid:4001\n"
				       "name squat* = uid:4002\npriority_ceiling = 3\n");
	ASSERT_LT(0, self->daemon);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (become(4002))
			_exit(10);
		if (raw_register_prio("decode", 0, &fd) != -EACCES)
			_exit(11);
		/* The connection stays open: the squatter may register its own name. */
		close(fd);
		if (raw_register_prio("decode-1", 0, NULL) != -EACCES)
			_exit(12);
		if (raw_register_prio("squat-1", 7, NULL) != -EPERM)
			_exit(13);
		if (raw_register_prio("squat-1", 3, NULL))
			_exit(14);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The owner gets its name; root may register any. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(become(4001) ? 10 : raw_register_prio("decode", 2, NULL) ? 11 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, raw_register_prio("squat-root", 7, &fd));
	close(fd);
	EXPECT_TRUE(log_has("REGISTER as 'decode' refused: the name is not this user's"));
	EXPECT_TRUE(log_has("priority 7 is above the ceiling 3"));
}

struct cred_seen {
	int got;
	int ret;
	struct accel_handoff_sender s;
};

static int cred_receive(void *arg, const struct accel_handoff *h)
{
	struct cred_seen *c = arg;
	unsigned int i;

	c->s.sz = sizeof(c->s);
	c->ret = accel_handoff_sender(h, &c->s);
	for (i = 0; i < h->count; i++)
		close(h->fds[i]);
	c->got++;
	return 0;
}

/* A sender in a child: region exported as root, then uid @uid, engine @name hands it to @to. */
static int cred_send(uid_t uid, const char *name, const char *to)
{
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_region *r = dev ? accel_region_create(dev, 2 * MIB, 2 * MIB,
							   ACCEL_NODE_ANY) : NULL;
	struct accel_engine *e;
	int fd, ret;

	if (!r || accel_region_export(r, &fd) || become(uid))
		return 100;
	e = accel_engine_connect(SOCK, name, 1, NULL, NULL);
	if (!e)
		return 101;
	ret = accel_engine_handoff(e, to, 1, &fd, &kind, 1);
	if (!ret)
		ret = accel_engine_handoff_wait(e, 1, 10000000000ll);
	accel_engine_close(e);
	return ret ? (-ret & 0x7f) : 0;
}

/*
 * Issue 13: the receiver learns who sent an offer (the daemon's
 * SO_PEERCRED of the sender), and hand-offs follow the allow rules: an
 * engine no rule lets reach "decode" gets -EPERM and decode sees nothing.
 */
TEST_F(kvd, offers_name_their_sender_and_follow_allow_rules)
{
	struct cred_seen c = { 0 };
	struct accel_engine_ops ops = { .receive = cred_receive };
	struct accel_engine *rx;
	int status, i;
	pid_t pid;

	self->daemon = start_with_conf("[tenants]\nname prefill = uid:4001\n"
				       "name intruder = uid:4005\nname decode = uid:0\n"
				       "allow prefill = decode\n");
	ASSERT_LT(0, self->daemon);
	rx = accel_engine_connect(SOCK, "decode", 1, &ops, &c);
	ASSERT_NE(NULL, rx);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(cred_send(4005, "intruder", "decode"));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(EPERM, WEXITSTATUS(status));
	accel_engine_dispatch(rx, 200000000);
	EXPECT_EQ(0, c.got);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(cred_send(4001, "prefill", "decode"));
	for (i = 0; i < 100 && !c.got; i++)
		accel_engine_dispatch(rx, 100000000);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(1, c.got);
	EXPECT_EQ(0, c.ret);
	EXPECT_EQ(4001, c.s.uid);
	EXPECT_EQ((uint32_t)pid, c.s.pid);
	EXPECT_NE(0, c.s.incarnation);
	EXPECT_TRUE(log_has("hand-off to decode refused: no [tenants] allow rule"));
	accel_engine_close(rx);
}

/*
 * Issue 13: one user's connections are bounded (-EMFILE); the daemon is
 * back where it was. Its resident size is compared after the first of
 * three rounds with after the last: the first round's high-water mark (up
 * to 300 connections alive at once, their memory kept by malloc once
 * freed) is not a leak, growth over the next two would be.
 */
TEST_F(kvd, many_connections_from_one_user)
{
	int fds0, fds1, status, fd, sync[2];
	long rss0, rss1;
	char c;
	pid_t pid;

	self->daemon = start_with_conf("[tenants]\nname * = any\nmax_connections_per_user = 8\n");
	ASSERT_LT(0, self->daemon);
	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fds[300], i, round, refused = 0;

		close(sync[0]);
		if (become(4003))
			_exit(10);
		for (round = 0; round < 3; round++) {
			for (i = 0; i < 300; i++) {
				char name[32];

				snprintf(name, sizeof(name), "many-%d", i);
				if (i < 8) {
					if (raw_register_prio(name, 0, &fds[i]))
						_exit(11);
					continue;
				}
				fds[i] = raw_connect();
				if (fds[i] < 0)
					_exit(12);
				/* Beyond 8: ERROR -EMFILE, closed. */
				refused += !expect_closed_with(fds[i], -EMFILE);
			}
			for (i = 0; i < 300; i++)
				close(fds[i]);
			usleep(200000);
			if (round == 0 && write(sync[1], "1", 1) != 1)
				_exit(14);
			if (round == 0)
				usleep(500000);	/* the parent reads the footprint */
		}
		_exit(refused == 3 * 292 ? 0 : 13);
	}
	close(sync[1]);
	ASSERT_EQ(1, read(sync[0], &c, 1));
	daemon_footprint(self->daemon, &fds0, &rss0);
	close(sync[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* Another user (root) is not held back. */
	EXPECT_EQ(0, raw_register_prio("root-engine", 0, &fd));
	close(fd);
	usleep(300000);
	daemon_footprint(self->daemon, &fds1, &rss1);
	TH_LOG("daemon: %d fds, %ld KiB after a first round of 300 connections; %d fds, %ld KiB "
	       "after 600 more", fds0, rss0, fds1, rss1);
	EXPECT_EQ(fds0, fds1);
	EXPECT_LE(rss1, rss0 + 256);
	EXPECT_TRUE(log_has("uid 4003: connection refused: 8 connections"));
}

/*
 * Issue 13: a user filling the daemon with fds through hand-offs nobody
 * takes: its hand-offs (-EDQUOT) and their fds (-EMFILE) are bounded per
 * user, across its engines; once they time out the daemon holds nothing.
 */
TEST_F(kvd, handoff_fd_exhaustion_is_bounded)
{
	struct rss_map maps0[256];
	int fds0, fds1, status, i, nmaps0;
	long rss0, rss1;
	pid_t pid;

	write_tenant_conf("[tenants]\nname * = any\nmax_handoffs_per_user = 4\n"
			  "max_handoff_fds_per_user = 20\n");
	{
		const char *extra[] = { "--config", TENANT_CONF, "--handoff-timeout", "1500", NULL };

		self->daemon = start_daemon(extra);
	}
	ASSERT_LT(0, self->daemon);
	usleep(200000);
	daemon_footprint(self->daemon, &fds0, &rss0);
	nmaps0 = daemon_rss_maps(self->daemon, maps0, 256);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		enum accel_handoff_kind kinds[16];
		struct accel_device *dev = accel_device_open(NULL);
		struct accel_region *r = dev ? accel_region_create(dev, 2 * MIB, 2 * MIB,
								   ACCEL_NODE_ANY) : NULL;
		struct accel_engine *a, *b;
		int fds[16], fd;

		if (!r || accel_region_export(r, &fd) || become(4004))
			_exit(10);
		for (i = 0; i < 16; i++) {
			fds[i] = fd;
			kinds[i] = ACCEL_HANDOFF_REGION;
		}
		a = accel_engine_connect(SOCK, "hog-a", 0, NULL, NULL);
		b = accel_engine_connect(SOCK, "hog-b", 0, NULL, NULL);
		if (!a || !b)
			_exit(11);
		if (accel_engine_handoff(a, "nobody", 1, fds, kinds, 16))
			_exit(12);
		/* 16 + 16 fds: over 20, whichever engine of the user sends it. */
		if (accel_engine_handoff(b, "nobody", 1, fds, kinds, 16) != -EMFILE)
			_exit(13);
		if (accel_engine_handoff(b, "nobody", 2, fds, kinds, 1) ||
		    accel_engine_handoff(b, "nobody", 3, fds, kinds, 1) ||
		    accel_engine_handoff(a, "nobody", 4, fds, kinds, 1))
			_exit(14);
		/* A fifth hand-off of the user: -EDQUOT. */
		if (accel_engine_handoff(a, "nobody", 5, fds, kinds, 1) != -EDQUOT)
			_exit(15);
		/* They time out; then the user has room again. */
		if (accel_engine_handoff_wait(a, 1, 10000000000ll) != -ETIMEDOUT)
			_exit(16);
		for (i = 0; i < 20 && accel_engine_pending(b); i++)
			accel_engine_dispatch(b, 100000000);
		if (accel_engine_handoff(b, "nobody", 6, fds, kinds, 16))
			_exit(17);
		if (accel_engine_handoff_wait(b, 6, 10000000000ll) != -ETIMEDOUT)
			_exit(18);
		accel_engine_close(a);
		accel_engine_close(b);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	usleep(300000);
	daemon_footprint(self->daemon, &fds1, &rss1);
	TH_LOG("daemon: %d fds, %ld KiB before; %d fds, %ld KiB after the hog", fds0, rss0,
	       fds1, rss1);
	EXPECT_EQ(fds0, fds1);
	EXPECT_LE(rss1, rss0 + 256);
	if (rss1 > rss0 + 256) {
		struct rss_map maps1[256];
		int nmaps1 = daemon_rss_maps(self->daemon, maps1, 256);

		LOG_RSS_GROWTH(maps0, nmaps0, maps1, nmaps1);
	}
	EXPECT_TRUE(log_has("max_handoff_fds_per_user"));
	EXPECT_TRUE(log_has("max_handoffs_per_user"));
}

/* ---- bad messages ------------------------------------------------------ */

FIXTURE(bad) {
	pid_t daemon;
	int fd;
};

FIXTURE_VARIANT(bad) {
	int registered;		/* register before sending it */
	int error;
	/* Builds the message in buf: its length; fds to send in *nfds. */
	size_t (*build)(union kvdmsg_buf *buf, int *fds, unsigned int *nfds);
};

FIXTURE_SETUP(bad)
{
	unlink(LOG);
	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	self->fd = raw_connect();
	ASSERT_LE(0, self->fd);
	if (variant->registered)
		ASSERT_EQ(0, raw_register(self->fd, "bad-engine"));
}

FIXTURE_TEARDOWN(bad)
{
	close(self->fd);
	stop_daemon(self->daemon);
}

static size_t short_header(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	memset(b, 0, 8);
	return 3;
}

static size_t wrong_version(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	kvdmsg_hdr(&b->hdr, KVD_MSG_LIST_ENGINES, sizeof(b->hdr), 1);
	b->hdr.version = 2;
	return sizeof(b->hdr);
}

static size_t unknown_type(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	kvdmsg_hdr(&b->hdr, 999, sizeof(b->hdr), 1);
	return sizeof(b->hdr);
}

static size_t size_mismatch(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	kvdmsg_hdr(&b->hdr, KVD_MSG_LIST_ENGINES, 64, 1);
	return sizeof(b->hdr);
}

static size_t truncated_register(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	memset(b, 0, sizeof(struct kvd_register));
	kvdmsg_hdr(&b->hdr, KVD_MSG_REGISTER, 40, 1);
	return 40;
}

static size_t oversized(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	memset(b, 0, sizeof(*b));
	kvdmsg_hdr(&b->hdr, KVD_MSG_REGISTER, KVD_MSG_MAX + 1, 1);
	return KVD_MSG_MAX + 1;
}

static size_t quota_first(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_quota *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_QUOTA, sizeof(*m), 1);
	m->bytes = MIB;
	return sizeof(*m);
}

static size_t register_bad_name(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_register *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_REGISTER, sizeof(*m), 1);
	memcpy(m->name, "a/b", 3);
	return sizeof(*m);
}

static size_t register_with_fd(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_register *m = (void *)b;

	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_REGISTER, sizeof(*m), 1);
	memcpy(m->name, "x", 1);
	fds[0] = 0;
	*nfds = 1;
	return sizeof(*m);
}

static size_t register_twice(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_register *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_REGISTER, sizeof(*m), 1);
	memcpy(m->name, "again", 5);
	return sizeof(*m);
}

static size_t handoff_fd_count(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_handoff *m = (void *)b;
	size_t size = sizeof(*m) + 2 * sizeof(struct kvd_obj);

	memset(m, 0, size);
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF, size, 1);
	memcpy(m->peer, "someone", 7);
	m->count = 2;
	m->objs[0].kind = m->objs[1].kind = KVD_OBJ_REGION;
	fds[0] = 0;
	*nfds = 1;
	return size;
}

static size_t handoff_unregistered(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_handoff *m = (void *)b;
	size_t size = sizeof(*m) + sizeof(struct kvd_obj);

	memset(m, 0, size);
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF, size, 1);
	memcpy(m->peer, "someone", 7);
	m->count = 1;
	m->objs[0].kind = KVD_OBJ_REGION;
	fds[0] = 0;
	*nfds = 1;
	return size;
}

static size_t handoff_pad(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_handoff *m = (void *)b;
	size_t size = sizeof(*m) + sizeof(struct kvd_obj);

	memset(m, 0, size);
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF, size, 1);
	memcpy(m->peer, "someone", 7);
	m->count = 1;
	m->objs[0].kind = KVD_OBJ_REGION;
	m->objs[0].pad = 1;
	fds[0] = 0;
	*nfds = 1;
	return size;
}

static size_t ack_not_offered(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_handoff_ack *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_HANDOFF_ACK, sizeof(*m), 1);
	m->id = 12345;
	return sizeof(*m);
}

static size_t released_unasked(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_released *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(m, 0, sizeof(*m));
	kvdmsg_hdr(&m->hdr, KVD_MSG_RELEASED, sizeof(*m), 1);
	m->round = 3;
	return sizeof(*m);
}

static size_t daemon_only_type(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)fds;
	(void)nfds;
	kvdmsg_hdr(&b->hdr, KVD_MSG_END, sizeof(b->hdr), 1);
	return sizeof(b->hdr);
}

static size_t empty_with_fds(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	(void)b;
	fds[0] = fds[1] = 0;
	*nfds = 2;
	return 0;
}

static size_t register_unknown_tail(union kvdmsg_buf *b, int *fds, unsigned int *nfds)
{
	struct kvd_register *m = (void *)b;

	(void)fds;
	(void)nfds;
	memset(b, 0, sizeof(*m) + 16);
	kvdmsg_hdr(&m->hdr, KVD_MSG_REGISTER, sizeof(*m) + 16, 1);
	memcpy(m->name, "newer", 5);
	b->bytes[sizeof(*m) + 9] = 1;	/* a field of a newer revision, in use */
	return sizeof(*m) + 16;
}

#define BAD(name, reg, err)						\
	FIXTURE_VARIANT_ADD(bad, name) {				\
		.registered = reg, .error = err, .build = name,		\
	}

BAD(short_header, 0, -EBADMSG);
BAD(wrong_version, 0, -EPROTO);
BAD(unknown_type, 0, -EPROTO);
BAD(size_mismatch, 0, -EBADMSG);
BAD(truncated_register, 0, -EBADMSG);
BAD(oversized, 0, -EMSGSIZE);
BAD(quota_first, 0, -EPROTO);
BAD(register_bad_name, 0, -EBADMSG);
BAD(register_with_fd, 0, -EBADMSG);
BAD(register_twice, 1, -EPROTO);
BAD(handoff_fd_count, 1, -EBADMSG);
BAD(handoff_unregistered, 0, -EPROTO);
BAD(handoff_pad, 1, -EBADMSG);
BAD(ack_not_offered, 1, -EPROTO);
BAD(released_unasked, 1, -EPROTO);
BAD(daemon_only_type, 1, -EPROTO);
BAD(empty_with_fds, 0, -EPROTO);
BAD(register_unknown_tail, 0, -EPROTO);

/*
 * An error reply, the connection closed, the daemon serving the others,
 * and no fd left behind in it (the fds that came with the message closed).
 */
TEST_F(bad, error_reply_then_close)
{
	union kvdmsg_buf buf;
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds = 0;
	size_t len = variant->build(&buf, fds, &nfds);
	int other, fds0, fds1;
	long rss;

	/* Settled: metrics thread up, start_daemon()'s probes closed. */
	usleep(300000);
	daemon_footprint(self->daemon, &fds0, &rss);
	other = raw_connect();
	ASSERT_LE(0, other);
	ASSERT_EQ(0, raw_send(self->fd, &buf, len, fds, nfds));
	EXPECT_EQ(0, expect_closed_with(self->fd, variant->error));
	EXPECT_EQ(0, raw_register(other, "survivor"));
	close(other);
	/* The daemon has our first connection's end closed; let it see the other's. */
	usleep(200000);
	daemon_footprint(self->daemon, &fds1, &rss);
	/* Our first connection's two: its socket and the pidfd of its process. */
	EXPECT_EQ(fds0 - 2, fds1);
}

/* ---- many connections, fuzzing ------------------------------------------ */

/* 250 connections at once, half registering, all closing; the daemon's view of them. */
static void churn_round(struct __test_metadata *_metadata)
{
	int i, fds[250];
	char name[32];

	for (i = 0; i < 250; i++) {
		fds[i] = raw_connect();
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < 250; i++) {
		snprintf(name, sizeof(name), "churn-%d", i);
		if (i % 2)
			ASSERT_EQ(0, raw_register(fds[i], name));
	}
	for (i = 0; i < 250; i++)
		close(fds[i]);
	/* The daemon has seen every close once a fresh register works. */
	fds[0] = raw_connect();
	ASSERT_EQ(0, raw_register(fds[0], "churn-0"));
	close(fds[0]);
	usleep(300000);
}

TEST_F_TIMEOUT(kvd, connection_churn_leaks_nothing, 300)
{
	int fds0, fds1, round;
	long rss0, rss1;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	/* One round to warm up: the allocator's high-water mark is not a leak. */
	churn_round(_metadata);
	daemon_footprint(self->daemon, &fds0, &rss0);
	for (round = 0; round < 3; round++)
		churn_round(_metadata);
	daemon_footprint(self->daemon, &fds1, &rss1);
	TH_LOG("daemon: %d fds, %ld KiB after a first round; %d fds, %ld KiB after 750 more "
	       "connections, 250 at once", fds0, rss0, fds1, rss1);
	EXPECT_EQ(fds0, fds1);
	/* A leak of 175 bytes per connection would show. */
	EXPECT_LE(rss1, rss0 + 128);
}

/*
 * Issue 13: a hostile peer's 0-byte packets with fds. Each is a protocol
 * error (ERROR -EPROTO, closed), and the daemon keeps none of the fds.
 */
/* 2000 connections: well over the default 30 s on a loaded machine under KASAN. */
TEST_F_TIMEOUT(kvd, empty_packets_with_fds_leak_nothing, 300)
{
	int devfd = kvt_open(), fds[3], fds0, fds1, i, k, bad = 0;
	long rss;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	fds[0] = devfd;
	fds[1] = 0;
	fds[2] = 1;
	usleep(300000);
	daemon_footprint(self->daemon, &fds0, &rss);
	for (i = 0; i < 2000; i++) {
		int fd = raw_connect();

		ASSERT_LE(0, fd);
		if (i % 10) {
			ASSERT_EQ(0, raw_send(fd, NULL, 0, fds, 3));
			bad += expect_closed_with(fd, -EPROTO) != 0;
		} else {
			/*
			 * Several on one connection: the first is answered, the rest
			 * die with it (unread, so the reply may be lost to ECONNRESET).
			 */
			for (k = 0; k < 4; k++)
				if (raw_send(fd, NULL, 0, fds, 3))
					break;
		}
		close(fd);
		if (bad > 5)
			break;
	}
	EXPECT_EQ(0, bad);
	i = raw_connect();
	ASSERT_EQ(0, raw_register(i, "after-empty"));
	close(i);
	usleep(300000);
	daemon_footprint(self->daemon, &fds1, &rss);
	TH_LOG("daemon: %d fds before, %d after 2000 connections sending 0-byte packets with fds",
	       fds0, fds1);
	EXPECT_EQ(fds0, fds1);
	EXPECT_TRUE(log_has("a packet of 0 bytes with fds"));
	EXPECT_EQ(0, kill(self->daemon, 0));
	close(devfd);
}

/*
 * Issue 13: REGISTER carries the engine's revision and features, the reply
 * the daemon's; an engine of revision 0 gets revision 0's reply; a longer
 * message with zero extra bytes (a newer engine) is taken.
 */
TEST_F(kvd, register_negotiates_revision)
{
	const struct kvd_registered *r;
	union kvdmsg_buf reply;
	struct accel_engine *e;
	int fd;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	r = (const void *)&reply;
	/* Revision 0: 56 bytes out, 32 back. */
	fd = raw_connect();
	EXPECT_EQ(32, raw_register_sized(fd, "rev0", offsetof(struct kvd_register, revision), 0,
					 0, &reply));
	close(fd);
	/* Revision 1 with a feature the daemon does not know: ignored. */
	fd = raw_connect();
	EXPECT_EQ((long)sizeof(*r), raw_register_sized(fd, "rev1", sizeof(struct kvd_register),
						       KVD_PROTO_REVISION,
						       KVD_FEATURES | (1ull << 50), &reply));
	EXPECT_EQ(KVD_PROTO_REVISION, r->revision);
	EXPECT_EQ(KVD_FEATURES, r->features);
	close(fd);
	/* A newer engine's longer REGISTER, its new fields unused. */
	fd = raw_connect();
	EXPECT_EQ((long)sizeof(*r), raw_register_sized(fd, "rev9", sizeof(struct kvd_register) + 24,
						       9, 0, &reply));
	EXPECT_EQ(0, r->features);
	close(fd);
	e = accel_engine_connect(SOCK, "lib", 0, NULL, NULL);
	ASSERT_NE(NULL, e);
	accel_engine_close(e);
	EXPECT_TRUE(wait_log("engine lib registered", 2000));
	EXPECT_TRUE(log_has("revision 1 features 0x3"));
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random mutations of valid messages, random fds, random closes. */
static void fuzz_one(uint64_t seed, int secs, long *sent)
{
	int64_t end = kvt_now_ns() + (int64_t)secs * 1000000000;
	int fd = -1, devfd = kvt_open();

	*sent = 0;
	while (kvt_now_ns() < end) {
		union kvdmsg_buf buf;
		int fds[3] = { 0, devfd, 1 };
		unsigned int nfds = 0, type;
		size_t len, i;

		if (fd < 0 || !(rnd(&seed) % 50)) {
			close(fd);
			fd = raw_connect();
			if (fd < 0) {
				usleep(1000);
				continue;
			}
			if (rnd(&seed) % 2) {
				char name[32];

				snprintf(name, sizeof(name), "fz%llx",
					 (unsigned long long)(rnd(&seed) % 100000));
				raw_register(fd, name);
			}
		}
		type = (unsigned int)(rnd(&seed) % (KVD_MSG_TYPE_MAX + 2));
		len = sizeof(struct kvd_hdr) + rnd(&seed) % 200;
		memset(&buf, 0, len);
		for (i = sizeof(struct kvd_hdr); i < len; i++)
			if (!(rnd(&seed) % 4))
				buf.bytes[i] = (char)rnd(&seed);
		kvdmsg_hdr(&buf.hdr, type, rnd(&seed) % 8 ? len : rnd(&seed) % 300,
			   rnd(&seed));
		if (!(rnd(&seed) % 16))
			buf.hdr.version = (uint16_t)rnd(&seed);
		if (type == KVD_MSG_HANDOFF || !(rnd(&seed) % 8))
			nfds = (unsigned int)(rnd(&seed) % 4);
		if (type == KVD_MSG_HANDOFF && len > sizeof(struct kvd_handoff)) {
			struct kvd_handoff *m = (void *)&buf;

			m->count = (uint32_t)((len - sizeof(*m)) / sizeof(struct kvd_obj));
			snprintf(m->peer, sizeof(m->peer), "fz%llx",
				 (unsigned long long)(rnd(&seed) % 100000));
		}
		if (raw_send(fd, &buf, len, fds, nfds)) {
			close(fd);
			fd = -1;
			continue;
		}
		(*sent)++;
		/* Read what came back without waiting. */
		for (;;) {
			int rfds[KVD_HANDOFF_MAX_FDS];
			long n = kvdmsg_recv(fd, (union kvdmsg_buf *)&buf, rfds, &nfds, MSG_DONTWAIT);

			if (n > 0) {
				kvdmsg_close_fds(rfds, nfds);
				continue;
			}
			if (n == 0) {
				close(fd);
				fd = -1;
			}
			break;
		}
	}
	close(fd);
	close(devfd);
}

TEST_F_TIMEOUT(kvd, socket_fuzz, 300)
{
	const char *env = getenv("KVTEST_FUZZ_SECS"), *senv = getenv("KVTEST_FUZZ_SEED");
	int secs = env ? atoi(env) : 15, nproc = 4, i, fds0, fds1, status;
	uint64_t seed = senv ? strtoull(senv, NULL, 0) : (uint64_t)kvt_now_ns() | 1;
	long *sent, total = 0, rss0, rss1;
	pid_t pids[8];

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	TH_LOG("seed 0x%llx (rerun with KVTEST_FUZZ_SEED=0x%llx), %d processes, %d s",
	       (unsigned long long)seed, (unsigned long long)seed, nproc, secs);
	sent = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sent);
	i = raw_connect();
	ASSERT_EQ(0, raw_register(i, "before-fuzz"));
	close(i);
	usleep(300000);
	daemon_footprint(self->daemon, &fds0, &rss0);
	for (i = 0; i < nproc; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			fuzz_one(seed + (uint64_t)i * 0x9e3779b97f4a7c15ull, secs, &sent[i]);
			_exit(0);
		}
	}
	for (i = 0; i < nproc; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		total += sent[i];
	}
	/* Still serving, and back to where it was. */
	i = raw_connect();
	ASSERT_LE(0, i);
	ASSERT_EQ(0, raw_register(i, "after-fuzz"));
	close(i);
	usleep(500000);
	daemon_footprint(self->daemon, &fds1, &rss1);
	{
		char line[256];
		FILE *f = fopen(LOG, "r");
		long closed = 0;

		while (f && fgets(line, sizeof(line), f))
			closed += strstr(line, ": closed") != NULL;
		if (f)
			fclose(f);
		TH_LOG("%ld messages sent, %ld connections closed for a bad message; daemon "
		       "%d fds / %ld KiB before, %d fds / %ld KiB after", total, closed, fds0,
		       rss0, fds1, rss1);
	}
	EXPECT_EQ(fds0, fds1);
	EXPECT_LT(1000, total);
	EXPECT_EQ(0, kill(self->daemon, 0));
}

/* ---- daemon kills with hand-offs in flight -------------------------------- */

#define KILL_HANDOFFS	40

struct tally {
	int received[KILL_HANDOFFS + 1];	/* by tag, at the receiver */
	int done[KILL_HANDOFFS + 1];		/* by tag, at the sender */
	int status[KILL_HANDOFFS + 1];
	int sender_finished;
	int reconnects[2];
};

static int count_receive(void *arg, const struct accel_handoff *h)
{
	struct tally *t = arg;
	unsigned int i;

	for (i = 0; i < h->count; i++)
		close(h->fds[i]);
	if (h->tag < 1 || h->tag > KILL_HANDOFFS)
		return -EINVAL;
	__atomic_add_fetch(&t->received[h->tag], 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void count_done(void *arg, uint64_t tag, int status)
{
	struct tally *t = arg;

	if (tag >= 1 && tag <= KILL_HANDOFFS) {
		__atomic_add_fetch(&t->done[tag], 1, __ATOMIC_SEQ_CST);
		t->status[tag] = status;
	}
}

static void reconnect(struct accel_engine *e, int *count)
{
	while (accel_engine_reconnect(e))
		usleep(20000);
	(*count)++;
}

TEST_F_TIMEOUT(kvd, daemon_killed_with_handoffs_in_flight, 300)
{
	struct tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int kills = 0, i, status, lost = 0, dup = 0, fd, tries, n = 0;
	uint64_t seed = (uint64_t)kvt_now_ns() | 1;
	struct kvd_engine_info info[2];
	char want[64];
	pid_t sender, receiver;

	ASSERT_NE(MAP_FAILED, t);
	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	receiver = fork();
	ASSERT_LE(0, receiver);
	if (!receiver) {
		struct accel_engine_ops ops = { .receive = count_receive };
		struct accel_engine *e = accel_engine_connect(SOCK, "rx", 2, &ops, t);

		if (!e)
			_exit(10);
		for (;;)
			if (accel_engine_dispatch(e, 50000000) == -ECONNRESET)
				reconnect(e, &t->reconnects[1]);
	}
	sender = fork();
	ASSERT_LE(0, sender);
	if (!sender) {
		struct accel_engine_ops ops = { .handoff_done = count_done };
		enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
		struct accel_device *dev = accel_device_open(NULL);
		struct accel_region *r;
		struct accel_engine *e;
		uint64_t tag;
		int fd, ret;

		e = dev ? accel_engine_connect(SOCK, "tx", 2, &ops, t) : NULL;
		r = dev ? accel_region_create(dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY) : NULL;
		if (!e || !r || accel_region_export(r, &fd))
			_exit(10);
		for (tag = 1; tag <= KILL_HANDOFFS; tag++) {
			usleep(60000);	/* a steady stream, for the kills to land in */
			ret = accel_engine_handoff(e, "rx", tag, &fd, &kind, 1);
			if (ret == -EEXIST || (ret && ret != -ECONNRESET && ret != -ETIMEDOUT))
				_exit(11);
			/* Kept when the daemon went away: the reconnect resends it. */
			while (!t->done[tag]) {
				ret = accel_engine_handoff_wait(e, tag, 1000000000);
				if (ret == -ECONNRESET)
					reconnect(e, &t->reconnects[0]);
			}
		}
		t->sender_finished = 1;
		_exit(0);
	}
	/* Kill the daemon at random points (8 times at most) while the sender works. */
	for (i = 0; i < 8 && !t->sender_finished; i++) {
		usleep(150000 + rnd(&seed) % 500000);
		if (t->sender_finished)
			break;
		kill(self->daemon, SIGKILL);
		waitpid(self->daemon, NULL, 0);
		kills++;
		self->daemon = start_daemon(NULL);
		ASSERT_LT(0, self->daemon);
	}
	ASSERT_EQ(sender, waitpid(sender, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* One more restart: the view rebuilt from the kernel, the receiver back. */
	kill(self->daemon, SIGKILL);
	waitpid(self->daemon, NULL, 0);
	unlink(LOG);
	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	fd = kvt_open();
	snprintf(want, sizeof(want), "clients, %llu regions",
		 (unsigned long long)kvt_param_or_die(fd, KVACCEL_PARAM_REGIONS));
	close(fd);
	EXPECT_TRUE(wait_log(want, 2000));
	for (tries = 0; tries < 100 && n != 1; tries++) {
		fd = raw_connect();
		n = fd < 0 ? -1 : list_engines(fd, info, 2);
		close(fd);
		usleep(50000);
	}
	ASSERT_EQ(1, n);
	EXPECT_STREQ("rx", info[0].name);
	EXPECT_EQ(receiver, (pid_t)info[0].pid);
	kill(receiver, SIGKILL);
	waitpid(receiver, NULL, 0);
	for (i = 1; i <= KILL_HANDOFFS; i++) {
		lost += t->received[i] == 0;
		dup += t->received[i] > 1;
		EXPECT_EQ(1, t->done[i]);
		EXPECT_EQ(0, t->status[i]);
	}
	TH_LOG("%d hand-offs, %d daemon kills, reconnects: sender %d, receiver %d; "
	       "lost %d, taken twice %d", KILL_HANDOFFS, kills, t->reconnects[0],
	       t->reconnects[1], lost, dup);
	EXPECT_LE(3, kills);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(0, dup);
}

/* ---- peers that do not read (issue 13) ----------------------------------- */

/* A raw registration with a priority class. */
static int raw_register_on(int fd, const char *name, uint32_t priority)
{
	struct kvd_register m = { 0 };
	union kvdmsg_buf buf;

	kvdmsg_hdr(&m.hdr, KVD_MSG_REGISTER, sizeof(m), 1);
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.priority = priority;
	if (raw_send(fd, &m, sizeof(m), NULL, 0) || raw_recv(fd, &buf) <= 0)
		return -1;
	return buf.hdr.type == KVD_MSG_REGISTERED ? 0 : -1;
}

/* @n requests the daemon refuses at once (an ERROR each), never read. */
static void stuff(int fd, int n)
{
	struct kvd_quota q = { 0 };
	int i;

	kvdmsg_hdr(&q.hdr, KVD_MSG_QUOTA, sizeof(q), 7);
	q.bytes = 1;	/* not whole MiB: -EINVAL, no netlink */
	for (i = 0; i < n; i++)
		if (raw_send(fd, &q, sizeof(q), NULL, 0))
			break;
}

struct pair {
	struct accel_engine *tx, *rx;
	int fd;
	int got;
	struct holder h;		/* what b frees when asked to release */
	int64_t released_at;
};

static int pair_release(void *arg, uint64_t bytes, uint64_t *released)
{
	struct pair *p = arg;

	p->released_at = kvt_now_ns();
	return release_all(&p->h, bytes, released);
}

static int pair_receive(void *arg, const struct accel_handoff *h)
{
	struct pair *p = arg;
	unsigned int i;

	for (i = 0; i < h->count; i++)
		close(h->fds[i]);
	p->got++;
	return 0;
}

/* One hand-off a -> b, offered, acknowledged, done: its round trip in ns (-1: failed). */
static int64_t round_trip(struct pair *p, uint64_t tag)
{
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	int64_t t0 = kvt_now_ns();
	int got = p->got, i;

	if (accel_engine_handoff(p->tx, "b", tag, &p->fd, &kind, 1))
		return -1;
	for (i = 0; i < 100 && p->got == got; i++)
		accel_engine_dispatch(p->rx, 50000000);
	if (p->got == got || accel_engine_handoff_wait(p->tx, tag, 5000000000LL))
		return -1;
	return kvt_now_ns() - t0;
}

#define SINKS	4

/*
 * Peers that register and never read, sent ever more replies (and
 * hand-offs with fds) while another pair of engines hands off and a
 * pressure round runs: those go on at their normal speed, the sinks are
 * dropped when their queues pass the bound, and the daemon's fds and
 * memory come back to where they were.
 */
TEST_F_TIMEOUT(kvd, slow_reader_never_stalls_the_loop, 300)
{
	const char *extra[] = { "--handoff-timeout", "1500", "--high-watermark", "16M",
				"--low-watermark", "8M", NULL };
	struct accel_engine_ops rx_ops = { .receive = pair_receive, .release = pair_release };
	int64_t t, sum_a = 0, max_a = 0, sum_b = 0, max_b = 0, t_press = 0;
	int i, k, sink[SINKS], fds0, fds1, n, warm;
	struct kvd_engine_info info[8];
	struct accel_device *dev;
	struct accel_region *r;
	struct pair p = { 0 };
	long rss0, rss1;
	char name[32];

	self->daemon = start_daemon(extra);
	ASSERT_LT(0, self->daemon);
	dev = accel_device_open(NULL);
	ASSERT_NE(NULL, dev);
	r = accel_region_create(dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, accel_region_export(r, &p.fd));
	p.tx = accel_engine_connect(SOCK, "a", 3, NULL, NULL);
	p.rx = accel_engine_connect(SOCK, "b", 0, &rx_ops, &p);
	ASSERT_NE(NULL, p.tx);
	ASSERT_NE(NULL, p.rx);

	/*
	 * Warm up: as many sinks as below, stuffed at once and dropped, twice
	 * (the allocator's high-water mark is not a leak).
	 */
	for (warm = 0; warm < 2; warm++) {
		for (k = 0; k < SINKS; k++) {
			sink[k] = raw_connect();
			snprintf(name, sizeof(name), "warm-%d", k);
			ASSERT_EQ(0, raw_register_on(sink[k], name, 7));
		}
		for (k = 0; k < SINKS; k++)
			stuff(sink[k], 3000);
		for (i = 0; i < 200; i++) {
			k = raw_connect();
			n = list_engines(k, info, 8);
			close(k);
			if (n == 2)
				break;
			usleep(50000);
		}
		ASSERT_EQ(2, n);
		for (k = 0; k < SINKS; k++)
			close(sink[k]);
		ASSERT_LE(0, round_trip(&p, 500 + warm));
	}
	for (i = 0; i < 20; i++) {
		t = round_trip(&p, 1 + i);
		ASSERT_LE(0, t);
		sum_a += t;
		max_a = t > max_a ? t : max_a;
	}
	usleep(300000);
	daemon_footprint(self->daemon, &fds0, &rss0);

	for (i = 0; i < SINKS; i++) {
		sink[i] = raw_connect();
		snprintf(name, sizeof(name), "sink-%d", i);
		ASSERT_EQ(0, raw_register_on(sink[i], name, 7));
	}
	for (i = 0; i < 20; i++) {
		enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;

		for (k = 0; k < SINKS; k++)
			stuff(sink[k], 200);
		/* Offers with fds for sink-0, behind its queued replies. */
		if (i < 12)
			accel_engine_handoff(p.tx, "sink-0", 1000 + i, &p.fd, &kind, 1);
		if (i == 8) {
			/* 2 + 16 MiB: above the high watermark; b (priority 0) is asked. */
			p.h.r[p.h.n++] = accel_region_create(dev, 16 * MIB, 2 * MIB,
							     ACCEL_NODE_ANY);
			ASSERT_NE(NULL, p.h.r[0]);
			t_press = kvt_now_ns();
		}
		t = round_trip(&p, 100 + i);
		ASSERT_LE(0, t);
		sum_b += t;
		max_b = t > max_b ? t : max_b;
	}
	for (k = 0; k < 100 && !p.h.calls; k++)
		accel_engine_dispatch(p.rx, 50000000);
	EXPECT_EQ(1, p.h.calls);
	EXPECT_TRUE(wait_log("usage below the low watermark", 5000));
	t_press = p.released_at - t_press;
	k = raw_connect();
	n = list_engines(k, info, 8);
	close(k);
	TH_LOG("hand-off round trips: %.2f ms mean, %.2f ms max alone; %.2f ms mean, "
	       "%.2f ms max with %d sinks stuffed; pressure round answered %.0f ms after it "
	       "began; %d engines left", sum_a / 20e6, max_a / 1e6, sum_b / 20e6, max_b / 1e6,
	       SINKS, t_press / 1e6, n);
	/* Every sink dropped, a and b serving on. */
	EXPECT_EQ(2, n);
	/* Before, each sink cost the loop 100 ms (and all of them at once here). */
	EXPECT_GT(250000000, max_b);
	EXPECT_GT(4 * sum_a + 20 * 50000000LL, sum_b);
	for (k = 0; k < SINKS; k++)
		close(sink[k]);
	/* The offers to sink-0 time out (1.5 s): the daemon lets go of their fds. */
	for (k = 0; k < 40; k++)
		accel_engine_dispatch(p.tx, 100000000);
	usleep(300000);
	daemon_footprint(self->daemon, &fds1, &rss1);
	TH_LOG("daemon: %d fds, %ld KiB before the sinks; %d fds, %ld KiB after", fds0, rss0,
	       fds1, rss1);
	EXPECT_EQ(fds0, fds1);
	EXPECT_LE(rss1, rss0 + 256);
	EXPECT_TRUE(log_has("hand-off 1") && log_has("not acknowledged in 1500 ms"));
	accel_engine_close(p.tx);
	accel_engine_close(p.rx);
	close(p.fd);
	accel_region_destroy(r);
	accel_device_close(dev);
}

/* ---- under a service manager (issue 13) ---------------------------------- */

#define PM_SOCK		"/tmp/kvd-pm.sock"
#define PM_MAX		64

/* A fake service manager: the notify socket and its fd store. */
struct fake_pm {
	int notify;
	int n, fds[PM_MAX];
	char names[PM_MAX][64];
	int ready, reloading, watchdog, stores, removes;
};

static int pm_init(struct fake_pm *pm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = PM_SOCK };

	memset(pm, 0, sizeof(*pm));
	unlink(PM_SOCK);
	pm->notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return pm->notify < 0 || bind(pm->notify, (struct sockaddr *)&sa, sizeof(sa)) ? -1 : 0;
}

static void pm_remove(struct fake_pm *pm, const char *name)
{
	int i;

	for (i = 0; i < pm->n; ) {
		if (strcmp(pm->names[i], name)) {
			i++;
			continue;
		}
		close(pm->fds[i]);
		pm->n--;
		pm->fds[i] = pm->fds[pm->n];
		memcpy(pm->names[i], pm->names[pm->n], sizeof(pm->names[i]));
	}
}

/* Messages for @ms, or (@until_ready) until the next READY=1. */
static void pm_drain(struct fake_pm *pm, int ms, bool until_ready)
{
	int64_t end = kvt_now_ns() + (int64_t)ms * 1000000;
	int ready = pm->ready;

	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 32)];
		} cbuf;
		struct pollfd pfd = { .fd = pm->notify, .events = POLLIN };
		char text[1024], *name;
		struct iovec iov = { .iov_base = text, .iov_len = sizeof(text) - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf) };
		int fds[32], nfds = 0, i;
		struct cmsghdr *c;
		ssize_t len;

		int64_t left = end - kvt_now_ns();

		if ((until_ready && pm->ready > ready) || left <= 0)
			return;
		if (poll(&pfd, 1, (int)(left / 1000000) + 1) != 1)
			return;
		len = recvmsg(pm->notify, &msg, MSG_CMSG_CLOEXEC);
		if (len < 0)
			return;
		text[len] = 0;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
			}
		name = strstr(text, "FDNAME=");
		if (name) {
			name += 7;
			name[strcspn(name, "\n")] = 0;
		}
		if (strstr(text, "FDSTORE=1") && name) {
			for (i = 0; i < nfds && pm->n < PM_MAX; i++) {
				pm->fds[pm->n] = fds[i];
				snprintf(pm->names[pm->n++], sizeof(pm->names[0]), "%s", name);
			}
			pm->stores++;
		} else {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
		}
		if (strstr(text, "FDSTOREREMOVE=1") && name) {
			pm_remove(pm, name);
			pm->removes++;
		}
		pm->ready += !!strstr(text, "READY=1");
		pm->reloading += !!strstr(text, "RELOADING=1");
		pm->watchdog += !!strstr(text, "WATCHDOG=1");
	}
}

static int pm_count(const struct fake_pm *pm, const char *prefix)
{
	int i, n = 0;

	for (i = 0; i < pm->n; i++)
		n += !strncmp(pm->names[i], prefix, strlen(prefix));
	return n;
}

/*
 * Start kvacceld as a service manager would: @listen (or -1) and the fd
 * store's fds at 3 and on (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES),
 * NOTIFY_SOCKET, WATCHDOG_USEC when @wd_usec; returns once it is ready.
 */
static pid_t pm_start(struct fake_pm *pm, int listen, const char *const *extra,
		      const char *wd_usec)
{
	const char *argv[32] = { "kvacceld", "--socket", SOCK, "--metrics", "off",
				 "--release-deadline", "600", "--handoff-timeout", "8000" };
	int i, n = 9, ready = pm->ready;
	pid_t pid;

	for (i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid = fork();
	if (!pid) {
		int log = open(LOG, O_WRONLY | O_CREAT | O_APPEND, 0644), high[PM_MAX + 1], k = 0;
		char names[PM_MAX * 65 + 16] = "", num[32];

		if (listen >= 0) {
			high[k++] = fcntl(listen, F_DUPFD_CLOEXEC, 200);
			strcat(names, "engine");
		}
		for (i = 0; i < pm->n; i++) {
			high[k++] = fcntl(pm->fds[i], F_DUPFD_CLOEXEC, 200);
			if (*names)
				strcat(names, ":");
			strcat(names, pm->names[i]);
		}
		for (i = 0; i < k; i++)
			dup2(high[i], 3 + i);
		dup2(log, 2);
		if (k) {
			snprintf(num, sizeof(num), "%d", k);
			setenv("LISTEN_FDS", num, 1);
			snprintf(num, sizeof(num), "%d", (int)getpid());
			setenv("LISTEN_PID", num, 1);
			setenv("LISTEN_FDNAMES", names, 1);
		}
		setenv("NOTIFY_SOCKET", PM_SOCK, 1);
		if (wd_usec)
			setenv("WATCHDOG_USEC", wd_usec, 1);
		execvp("kvacceld", (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 150 && pm->ready == ready; i++) {
		pm_drain(pm, 100, true);
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
	}
	return pm->ready > ready ? pid : -1;
}

/* The engine socket a service manager holds (kvacceld.socket). */
static int pm_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	unlink(SOCK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128))
		return -1;
	chmod(SOCK, 0666);
	return fd;
}

struct restored {
	struct accel_device *dev;
	int got, bad;
};

static int restored_receive(void *arg, const struct accel_handoff *h)
{
	struct restored *s = arg;
	struct accel_region *r;
	unsigned char *p;

	if (h->count != 1 || strcmp(h->from, "tx") || h->tag != 7 || h->sizes[0] != 2 * MIB) {
		s->bad++;
		return -EINVAL;
	}
	r = accel_region_import(s->dev, h->fds[0]);
	close(h->fds[0]);
	p = r ? accel_region_map(r) : NULL;
	if (!p || p[100] != 0xab)
		s->bad++;
	if (r)
		accel_region_destroy(r);
	s->got++;
	return 0;
}

/*
 * Socket activation and the fd store: the socket stays while the daemon is
 * down (a connection made then is served by the next daemon), and a
 * hand-off whose sender left survives a SIGKILL of the daemon through the
 * store: the next daemon offers it to the receiver, then lets go of it.
 */
TEST_F(kvd, socket_activation_and_fd_store)
{
	enum accel_handoff_kind kind = ACCEL_HANDOFF_REGION;
	struct restored rs = { 0 };
	struct accel_engine_ops ops = { .receive = restored_receive };
	struct accel_engine *tx, *rx;
	struct accel_region *r;
	union kvdmsg_buf buf;
	struct kvd_register m = { 0 };
	struct fake_pm pm;
	int listen, fd, early, i;
	unsigned char *p;

	ASSERT_EQ(0, pm_init(&pm));
	listen = pm_listen();
	ASSERT_LE(0, listen);
	self->daemon = pm_start(&pm, listen, NULL, NULL);
	ASSERT_LT(0, self->daemon);
	EXPECT_TRUE(log_has("(from the service manager)"));
	EXPECT_EQ(1, pm_count(&pm, "handoffs"));

	rs.dev = accel_device_open(NULL);
	ASSERT_NE(NULL, rs.dev);
	r = accel_region_create(rs.dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	p = accel_region_map(r);
	ASSERT_NE(NULL, p);
	p[100] = 0xab;
	ASSERT_EQ(0, accel_region_export(r, &fd));
	tx = accel_engine_connect(SOCK, "tx", 1, NULL, NULL);
	ASSERT_NE(NULL, tx);
	/* Twice the same file: stored once. */
	ASSERT_EQ(0, accel_engine_handoff(tx, "rx", 7, &fd, &kind, 1));
	accel_engine_close(tx);
	pm_drain(&pm, 300, false);
	EXPECT_EQ(1, pm_count(&pm, "dmabuf-"));

	kill(self->daemon, SIGKILL);
	waitpid(self->daemon, NULL, 0);
	self->daemon = 0;
	/* No daemon: the socket is still there, the connection waits in its backlog. */
	early = raw_connect();
	ASSERT_LE(0, early);
	kvdmsg_hdr(&m.hdr, KVD_MSG_REGISTER, sizeof(m), 1);
	snprintf(m.name, sizeof(m.name), "early");
	ASSERT_EQ(0, raw_send(early, &m, sizeof(m), NULL, 0));

	self->daemon = pm_start(&pm, listen, NULL, NULL);
	ASSERT_LT(0, self->daemon);
	EXPECT_TRUE(log_has("fd store: 1 hand-offs restored"));
	ASSERT_LT(0, raw_recv(early, &buf));
	EXPECT_EQ(KVD_MSG_REGISTERED, buf.hdr.type);
	close(early);
	rx = accel_engine_connect(SOCK, "rx", 1, &ops, &rs);
	ASSERT_NE(NULL, rx);
	for (i = 0; i < 100 && !rs.got; i++)
		accel_engine_dispatch(rx, 50000000);
	EXPECT_EQ(1, rs.got);
	EXPECT_EQ(0, rs.bad);
	EXPECT_TRUE(wait_log("-> rx done", 3000));
	pm_drain(&pm, 300, false);
	EXPECT_EQ(0, pm_count(&pm, "dmabuf-"));
	EXPECT_LE(1, pm.removes);
	accel_engine_close(rx);
	/* A clean stop leaves the service manager's socket in place. */
	EXPECT_EQ(0, stop_daemon(self->daemon));
	self->daemon = 0;
	EXPECT_EQ(0, access(SOCK, F_OK));
	close(listen);
	unlink(SOCK);
	close(fd);
	accel_region_destroy(r);
	accel_device_close(rs.dev);
	pm_remove(&pm, "handoffs");
	close(pm.notify);
	unlink(PM_SOCK);
}

/* A region and a sealed memfd in one hand-off, from "tx" with tag 8. */
static int memfd_restored_receive(void *arg, const struct accel_handoff *h)
{
	struct restored *s = arg;
	char text[16] = { 0 };

	if (h->count != 2 || strcmp(h->from, "tx") || h->tag != 8 ||
	    h->kinds[0] != ACCEL_HANDOFF_REGION || h->kinds[1] != ACCEL_HANDOFF_MEMFD ||
	    h->sizes[1] != 4096 || pread(h->fds[1], text, 13, 0) != 13 ||
	    strcmp(text, "request-state"))
		s->bad++;
	close(h->fds[0]);
	close(h->fds[1]);
	s->got++;
	return 0;
}

/* The fd store keeps a memfd hand-off across a SIGKILL too (memfd-INODE next to dmabuf-INODE). */
TEST_F(kvd, memfd_handoff_survives_in_the_fd_store)
{
	enum accel_handoff_kind kinds[2] = { ACCEL_HANDOFF_REGION, ACCEL_HANDOFF_MEMFD };
	struct restored rs = { 0 };
	struct accel_engine_ops ops = { .receive = memfd_restored_receive };
	struct accel_engine *tx, *rx;
	struct accel_region *r;
	struct fake_pm pm;
	int listen, fds[2], i;

	ASSERT_EQ(0, pm_init(&pm));
	listen = pm_listen();
	ASSERT_LE(0, listen);
	self->daemon = pm_start(&pm, listen, NULL, NULL);
	ASSERT_LT(0, self->daemon);
	rs.dev = accel_device_open(NULL);
	ASSERT_NE(NULL, rs.dev);
	r = accel_region_create(rs.dev, 2 * MIB, 2 * MIB, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, accel_region_export(r, &fds[0]));
	fds[1] = memfd_create("state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_LE(0, fds[1]);
	ASSERT_EQ(0, ftruncate(fds[1], 4096));
	ASSERT_EQ(13, pwrite(fds[1], "request-state", 13, 0));
	ASSERT_EQ(0, fcntl(fds[1], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
	tx = accel_engine_connect(SOCK, "tx", 1, NULL, NULL);
	ASSERT_NE(NULL, tx);
	ASSERT_EQ(0, accel_engine_handoff(tx, "rx", 8, fds, kinds, 2));
	accel_engine_close(tx);
	pm_drain(&pm, 300, false);
	EXPECT_EQ(1, pm_count(&pm, "dmabuf-"));
	EXPECT_EQ(1, pm_count(&pm, "memfd-"));
	kill(self->daemon, SIGKILL);
	waitpid(self->daemon, NULL, 0);
	self->daemon = pm_start(&pm, listen, NULL, NULL);
	ASSERT_LT(0, self->daemon);
	EXPECT_TRUE(log_has("fd store: 1 hand-offs restored"));
	rx = accel_engine_connect(SOCK, "rx", 1, &ops, &rs);
	ASSERT_NE(NULL, rx);
	for (i = 0; i < 100 && !rs.got; i++)
		accel_engine_dispatch(rx, 50000000);
	EXPECT_EQ(1, rs.got);
	EXPECT_EQ(0, rs.bad);
	EXPECT_TRUE(wait_log("-> rx done", 3000));
	pm_drain(&pm, 300, false);
	EXPECT_EQ(0, pm_count(&pm, "dmabuf-"));
	EXPECT_EQ(0, pm_count(&pm, "memfd-"));
	accel_engine_close(rx);
	EXPECT_EQ(0, stop_daemon(self->daemon));
	self->daemon = 0;
	close(listen);
	unlink(SOCK);
	close(fds[0]);
	close(fds[1]);
	accel_region_destroy(r);
	accel_device_close(rs.dev);
	pm_remove(&pm, "handoffs");
	close(pm.notify);
	unlink(PM_SOCK);
}

#define CONF	"/tmp/kvd-test.conf"

static void write_conf(const char *text)
{
	FILE *f = fopen(CONF, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A line of `kvaccelctl status` that has @key and @what. */
static bool status_has(const char *key, const char *what)
{
	FILE *f = popen("kvaccelctl status 2>&1", "r");
	char line[256];
	bool found = false;

	while (f && fgets(line, sizeof(line), f))
		found = found || (strstr(line, key) && strstr(line, what));
	if (f)
		pclose(f);
	return found;
}

/* WATCHDOG=1 at half WATCHDOG_USEC; SIGHUP reloads, bracketed by RELOADING=1 and READY=1. */
TEST_F(kvd, watchdog_and_reload)
{
	const char *extra[] = { "--config", CONF, NULL };
	struct fake_pm pm;
	int wd;

	ASSERT_EQ(0, pm_init(&pm));
	write_conf("[device]\nhigh_watermark = 24M\nlow_watermark = 16M\n");
	self->daemon = pm_start(&pm, -1, extra, "400000");
	ASSERT_LT(0, self->daemon);
	EXPECT_TRUE(wait_log("watchdog: WATCHDOG=1 every 200 ms", 2000));
	wd = pm.watchdog;
	pm_drain(&pm, 1100, false);
	TH_LOG("%d WATCHDOG=1 in 1.1 s", pm.watchdog - wd);
	EXPECT_LE(4, pm.watchdog - wd);
	EXPECT_GE(6, pm.watchdog - wd);

	write_conf("[device]\nhigh_watermark = 32M\nlow_watermark = 20M\n"
		   "[daemon]\nhandoff_timeout_ms = 2000\n");
	kill(self->daemon, SIGHUP);
	pm_drain(&pm, 3000, true);
	EXPECT_EQ(1, pm.reloading);
	EXPECT_TRUE(wait_log("reloaded " CONF ":", 2000));
	EXPECT_TRUE(log_has(" device"));
	EXPECT_TRUE(status_has("watermarks", "high 32"));
	/* A broken file changes nothing, and the daemon says ready again. */
	write_conf("[device]\nlimit = lots\n");
	kill(self->daemon, SIGHUP);
	pm_drain(&pm, 3000, true);
	EXPECT_EQ(2, pm.reloading);
	EXPECT_TRUE(wait_log("configuration kept", 2000));
	EXPECT_TRUE(log_has(CONF ":2: limit: 'lots' is not a size"));
	EXPECT_EQ(0, raw_register(raw_connect(), "after-reload"));
	EXPECT_EQ(0, stop_daemon(self->daemon));
	self->daemon = 0;
	pm_remove(&pm, "handoffs");
	close(pm.notify);
	unlink(PM_SOCK);
	unlink(CONF);
}

/* ---- live migrations --------------------------------------------------- */

#define MIG_CONF	"/tmp/kvd-mig.conf"

static pid_t start_mig_with(const char *text, bool metrics)
{
	const char *extra[] = { "--config", MIG_CONF, metrics ? "--metrics" : NULL,
				"127.0.0.1:9466", NULL };
	FILE *f = fopen(MIG_CONF, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return start_daemon(extra);
}

static pid_t start_mig(const char *text)
{
	return start_mig_with(text, false);
}

/* A raw engine that announces migrations: its connection, or -1. */
static int mig_engine(const char *name)
{
	struct kvd_register m = { 0 };
	union kvdmsg_buf buf;
	int fd = raw_connect();

	if (fd < 0)
		return -1;
	kvdmsg_hdr(&m.hdr, KVD_MSG_REGISTER, sizeof(m), 1);
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.revision = KVD_PROTO_REVISION;
	m.features = KVD_FEATURES;
	if (raw_send(fd, &m, sizeof(m), NULL, 0) || raw_recv(fd, &buf) <= 0 ||
	    buf.hdr.type != KVD_MSG_REGISTERED ||
	    !(((struct kvd_registered *)(void *)&buf)->features & KVD_FEAT_MIGRATION)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct mig_load {
	uint32_t total, free, running, waiting, hol;
	unsigned int n;
	struct kvd_load_req reqs[KVD_LOAD_REQS_MAX + 1];
};

static int send_load(int fd, const struct mig_load *l)
{
	union kvdmsg_buf buf;
	struct kvd_load *m = (void *)&buf;
	size_t size = sizeof(*m) + l->n * sizeof(struct kvd_load_req);

	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_LOAD, size, 0);
	m->block_bytes = 2 * MIB;
	m->blocks_total = l->total;
	m->blocks_free = l->free;
	m->running = l->running;
	m->waiting = l->waiting;
	m->hol_blocks = l->hol;
	m->count = l->n;
	memcpy(m->reqs, l->reqs, l->n * sizeof(struct kvd_load_req));
	return raw_send(fd, m, size, NULL, 0);
}

/* The next message of @type on @fd within @ms (others skipped): its length, or -1. */
static long wait_type(int fd, unsigned int type, union kvdmsg_buf *buf, int ms)
{
	for (; ms > 0; ms -= 100) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int fds[KVD_HANDOFF_MAX_FDS];
		unsigned int nfds;
		long n;

		if (poll(&p, 1, 100) != 1)
			continue;
		n = kvdmsg_recv(fd, buf, fds, &nfds, 0);
		kvdmsg_close_fds(fds, nfds);
		if (n <= 0)
			return -1;
		if (buf->hdr.type == type)
			return n;
	}
	return -1;
}

/* An admin request on a new connection: the error (0: @want came, copied to @out). */
static int mig_admin(const void *req, unsigned int want, union kvdmsg_buf *out)
{
	const struct kvd_hdr *h = req;
	int fd = raw_connect(), ret = -1;

	if (fd < 0)
		return -1;
	if (!raw_send(fd, req, h->size, NULL, 0) && raw_recv(fd, out) > 0) {
		if (out->hdr.type == KVD_MSG_ERROR)
			ret = ((struct kvd_error *)(void *)out)->error;
		else if (out->hdr.type == want)
			ret = 0;
	}
	close(fd);
	return ret;
}

static int mig_request(const char *engine, uint64_t req, const char *to, uint64_t *id)
{
	struct kvd_migrate_req m = { 0 };
	union kvdmsg_buf buf;
	int ret;

	kvdmsg_hdr(&m.hdr, KVD_MSG_MIGRATE_REQ, sizeof(m), 5);
	snprintf(m.engine, sizeof(m.engine), "%s", engine);
	snprintf(m.to, sizeof(m.to), "%s", to);
	m.req = req;
	ret = mig_admin(&m, KVD_MSG_MIGRATION_INFO, &buf);
	if (!ret && id)
		*id = ((struct kvd_migration_info *)(void *)&buf)->id;
	return ret;
}

static int mig_drain(const char *engine)
{
	struct kvd_drain m = { 0 };
	union kvdmsg_buf buf;

	kvdmsg_hdr(&m.hdr, KVD_MSG_DRAIN, sizeof(m), 6);
	snprintf(m.engine, sizeof(m.engine), "%s", engine);
	return mig_admin(&m, KVD_MSG_END, &buf);
}

/* LIST_MIGRATIONS: the entries (at most @max), or -1. */
static int mig_list(struct kvd_migration_info *out, int max)
{
	struct kvd_hdr h;
	union kvdmsg_buf buf;
	int fd = raw_connect(), n = 0;

	if (fd < 0)
		return -1;
	kvdmsg_hdr(&h, KVD_MSG_LIST_MIGRATIONS, sizeof(h), 8);
	if (raw_send(fd, &h, sizeof(h), NULL, 0)) {
		close(fd);
		return -1;
	}
	for (;;) {
		if (raw_recv(fd, &buf) <= 0 || buf.hdr.type == KVD_MSG_ERROR) {
			n = -1;
			break;
		}
		if (buf.hdr.type == KVD_MSG_END)
			break;
		if (buf.hdr.type == KVD_MSG_MIGRATION_INFO && n < max)
			memcpy(&out[n++], &buf, sizeof(*out));
	}
	close(fd);
	return n;
}

/* The migration @id as listed, or NULL. */
static const struct kvd_migration_info *mig_find(const struct kvd_migration_info *l, int n,
						 uint64_t id)
{
	int i;

	for (i = 0; i < n; i++)
		if (l[i].id == id && l[i].state != KVD_MIG_DRAINING)
			return &l[i];
	return NULL;
}

static int send_started(int fd, uint64_t id, int status)
{
	struct kvd_migrate_started m = { 0 };

	kvdmsg_hdr(&m.hdr, KVD_MSG_MIGRATE_STARTED, sizeof(m), 0);
	m.id = id;
	m.status = status;
	return raw_send(fd, &m, sizeof(m), NULL, 0);
}

static int send_migrated(int fd, uint64_t id, int status, uint32_t blocks)
{
	struct kvd_migrated m = { 0 };

	kvdmsg_hdr(&m.hdr, KVD_MSG_MIGRATED, sizeof(m), 0);
	m.id = id;
	m.status = status;
	m.blocks = blocks;
	m.downtime_us = 2500;
	m.total_us = 9000;
	m.bytes_copied = (uint64_t)blocks * 2 * MIB;
	return raw_send(fd, &m, sizeof(m), NULL, 0);
}

/* Load reports: accepted, and refused when malformed (closing), from libaccel too. */
TEST_F(kvd, migration_load_reports_are_checked)
{
	struct accel_engine_load_req reqs[ACCEL_ENGINE_LOAD_REQS_MAX + 1];
	ACCEL_OPTS(accel_engine_migration_ops, ops);
	struct mig_load l = { .total = 100, .free = 40, .running = 2, .n = 2 };
	union kvdmsg_buf buf;
	struct kvd_load *m = (void *)&buf;
	struct accel_engine *e;
	int fd;

	self->daemon = start_mig("[migration]\nenabled = false\n");
	ASSERT_LT(0, self->daemon);
	fd = mig_engine("ld-a");
	ASSERT_LE(0, fd);
	l.reqs[0] = (struct kvd_load_req){ .req = 1, .tokens = 10, .blocks = 4 };
	l.reqs[1] = (struct kvd_load_req){ .req = 2, .tokens = 20, .blocks = 8 };
	EXPECT_EQ(0, send_load(fd, &l));
	EXPECT_TRUE(wait_log("engine ld-a: first load: 40 of 100 blocks free", 3000));
	/* A non-zero pad: an ERROR, closing. */
	memset(&buf, 0, sizeof(buf));
	kvdmsg_hdr(&m->hdr, KVD_MSG_LOAD, sizeof(*m), 0);
	m->blocks_total = 10;
	m->pad = 1;
	ASSERT_EQ(0, raw_send(fd, m, sizeof(*m), NULL, 0));
	EXPECT_EQ(0, expect_closed_with(fd, -EBADMSG));
	close(fd);
	/* One candidate past KVD_LOAD_REQS_MAX: the same. */
	fd = mig_engine("ld-b");
	ASSERT_LE(0, fd);
	l.n = KVD_LOAD_REQS_MAX + 1;
	for (unsigned int i = 0; i < l.n; i++)
		l.reqs[i] = (struct kvd_load_req){ .req = 100 + i, .tokens = i, .blocks = 1 };
	ASSERT_EQ(0, send_load(fd, &l));
	EXPECT_EQ(0, expect_closed_with(fd, -EBADMSG));
	close(fd);
	/* libaccel: nothing without migration ops; too many candidates; a good one. */
	e = accel_engine_connect(SOCK, "ld-c", 1, NULL, NULL);
	ASSERT_NE(NULL, e);
	do {
		ACCEL_OPTS(accel_engine_load, load, .blocks_total = 100, .blocks_free = 50,
			   .running = 1, .reqs = reqs, .nreqs = 1);

		memset(reqs, 0, sizeof(reqs));
		reqs[0].req = 7;
		reqs[0].blocks = 3;
		EXPECT_EQ(-EOPNOTSUPP, accel_engine_report_load(e, &load));
		ASSERT_EQ(0, accel_engine_set_migration_ops(e, &ops, NULL));
		load.nreqs = ACCEL_ENGINE_LOAD_REQS_MAX + 1;
		EXPECT_EQ(-E2BIG, accel_engine_report_load(e, &load));
		load.nreqs = 1;
		load.blocks_free = 101;
		EXPECT_EQ(-EINVAL, accel_engine_report_load(e, &load));
		load.blocks_free = 50;
		EXPECT_EQ(0, accel_engine_report_load(e, &load));
		EXPECT_TRUE(wait_log("engine ld-c: first load: 50 of 100 blocks free", 3000));
	} while (0);
	accel_engine_close(e);
}

struct mig_src {
	int calls, aborts, exits;
	uint64_t id, req;
	char to[KVD_NAME_MAX];
};

static int src_migrate(void *arg, uint64_t id, uint64_t req, const char *to)
{
	struct mig_src *s = arg;

	s->calls++;
	s->id = id;
	s->req = req;
	snprintf(s->to, sizeof(s->to), "%s", to);
	return 0;
}

static void src_abort(void *arg, uint64_t id)
{
	(void)id;
	((struct mig_src *)arg)->aborts++;
}

static void src_exit(void *arg)
{
	((struct mig_src *)arg)->exits++;
}

/* A manual migration: the errors, then the source's callback, MIGRATED, the list. */
TEST_F(kvd, migration_manual_reaches_the_source)
{
	ACCEL_OPTS(accel_engine_migration_ops, ops, .migrate = src_migrate,
		   .migrate_abort = src_abort, .exit = src_exit);
	struct accel_engine_load_req reqs[2] = {
		{ .req = 41, .tokens = 300, .blocks = 6, .priority = 0 },
		{ .req = 42, .tokens = 900, .blocks = 30, .priority = 0 },
	};
	struct kvd_migration_info list[8];
	const struct kvd_migration_info *g;
	struct mig_src st = { 0 }, dt = { 0 };
	struct accel_engine *src, *dst;
	int n, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ipv4 = fd >= 0;	/* the metrics' part needs it (the debug kernel has none) */
	uint64_t id = 0;

	if (fd >= 0)
		close(fd);
	self->daemon = start_mig_with("[migration]\nenabled = false\n", ipv4);
	ASSERT_LT(0, self->daemon);
	src = accel_engine_connect(SOCK, "mig-src", 1, NULL, NULL);
	dst = accel_engine_connect(SOCK, "mig-dst", 1, NULL, NULL);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, accel_engine_set_migration_ops(src, &ops, &st));
	ASSERT_EQ(0, accel_engine_set_migration_ops(dst, &ops, &dt));
	do {
		ACCEL_OPTS(accel_engine_load, ls, .block_bytes = 2 * MIB, .blocks_total = 100,
			   .blocks_free = 10, .running = 2, .reqs = reqs, .nreqs = 2,
			   .flags = ACCEL_ENGINE_LOAD_FORCE);
		ACCEL_OPTS(accel_engine_load, ld, .block_bytes = 2 * MIB, .blocks_total = 100,
			   .blocks_free = 20, .flags = ACCEL_ENGINE_LOAD_FORCE);

		ASSERT_EQ(0, accel_engine_report_load(src, &ls));
		ASSERT_EQ(0, accel_engine_report_load(dst, &ld));
	} while (0);
	ASSERT_TRUE(wait_log("engine mig-dst: first load", 3000));
	ASSERT_TRUE(wait_log("engine mig-src: first load", 3000));
	EXPECT_EQ(-ENOENT, mig_request("nobody", 41, "mig-dst", NULL));
	EXPECT_EQ(-ENOENT, mig_request("mig-src", 41, "nobody", NULL));
	EXPECT_EQ(-ENOENT, mig_request("mig-src", 99, "mig-dst", NULL));
	EXPECT_EQ(-EINVAL, mig_request("mig-src", 41, "mig-src", NULL));
	EXPECT_EQ(-ENOSPC, mig_request("mig-src", 42, "mig-dst", NULL));	/* 30 > 20 free */
	ASSERT_EQ(0, mig_request("mig-src", 41, "mig-dst", &id));
	EXPECT_NE(0, id);
	/* One at a time from an engine (max_migrations_out = 1). */
	EXPECT_EQ(-EBUSY, mig_request("mig-src", 41, "mig-dst", NULL));
	/* The source's callback gets it; the library answers MIGRATE_STARTED. */
	for (int i = 0; i < 30 && !st.calls; i++)
		accel_engine_dispatch(src, 100000000);
	ASSERT_EQ(1, st.calls);
	EXPECT_EQ(id, st.id);
	EXPECT_EQ(41, st.req);
	EXPECT_STREQ("mig-dst", st.to);
	EXPECT_TRUE(wait_log("started moving request 41 to mig-dst", 3000));
	do {
		ACCEL_OPTS(accel_engine_migration_stats, ms, .downtime_us = 1800, .total_us = 7000,
			   .bytes_copied = 12 * MIB, .blocks = 6);

		EXPECT_EQ(-EINVAL, accel_engine_migrated(src, id, 5, &ms));
		ASSERT_EQ(0, accel_engine_migrated(src, id, 0, &ms));
	} while (0);
	ASSERT_TRUE(wait_log("done: downtime 1800 us", 3000));
	n = mig_list(list, 8);
	ASSERT_LE(1, n);
	g = mig_find(list, n, id);
	ASSERT_NE(NULL, g);
	EXPECT_EQ(KVD_MIG_DONE, g->state);
	EXPECT_EQ(KVD_MIGRATE_MANUAL, g->reason);
	EXPECT_EQ(0, g->status);
	EXPECT_EQ(1800, g->downtime_us);
	EXPECT_EQ(12 * MIB, g->bytes_copied);
	EXPECT_STREQ("mig-src", g->from);
	EXPECT_STREQ("mig-dst", g->to);
	EXPECT_EQ(41, g->req);
	/* kvaccelctl shows it too. */
	EXPECT_EQ(0, system("kvaccelctl --socket " SOCK " migrations | grep -q 'mig-src .*mig-dst .* done'"));
	EXPECT_EQ(0, system("kvaccelctl --json --socket " SOCK " migrations | grep -q '\"downtime_us\":1800'"));
	EXPECT_EQ(0, dt.calls);
	/* Counted: started (manual), succeeded, its downtime. */
	do {
		static char page[65536];

		if (!ipv4) {
			TH_LOG("no IPv4 in this kernel: the metrics not checked");
			break;
		}

		if (system("ip link set lo up >/dev/null 2>&1"))
			TH_LOG("ip link set lo up failed: loopback may be down");
		ASSERT_EQ(0, http_get("/metrics", page, sizeof(page)));
		EXPECT_NE(NULL, strstr(page, "kvaccel_migrations_started_total{reason=\"manual\"} 1\n"));
		EXPECT_NE(NULL, strstr(page, "kvaccel_migrations_succeeded_total 1\n"));
		EXPECT_NE(NULL, strstr(page, "kvaccel_migration_downtime_seconds_bucket{le=\"0.005\"} 1\n"));
		EXPECT_NE(NULL, strstr(page, "kvaccel_migration_downtime_seconds_count 1\n"));
		EXPECT_NE(NULL, strstr(page, "kvaccel_migration_copied_bytes_total 12582912\n"));
	} while (0);
	accel_engine_close(src);
	accel_engine_close(dst);
}

/* A head-of-line request that does not fit: the smallest candidate that makes room moves. */
TEST_F(kvd, migration_policy_relieves_pressure)
{
	struct mig_load shortl = { .total = 100, .free = 2, .running = 3, .waiting = 1,
				   .hol = 10, .n = 3 };
	struct mig_load roomy = { .total = 100, .free = 60 };
	const struct kvd_migrate *mg;
	union kvdmsg_buf buf;
	int a, b;

	/* No balancing (threshold 1): this is pressure relief's to act on. */
	self->daemon = start_mig("[migration]\nmigrate_interval_ms = 50\nbalance_threshold = 1\n");
	ASSERT_LT(0, self->daemon);
	a = mig_engine("pr-a");
	b = mig_engine("pr-b");
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	shortl.reqs[0] = (struct kvd_load_req){ .req = 1, .tokens = 50, .blocks = 5 };
	shortl.reqs[1] = (struct kvd_load_req){ .req = 2, .tokens = 900, .blocks = 30 };
	shortl.reqs[2] = (struct kvd_load_req){ .req = 3, .tokens = 300, .blocks = 9 };
	ASSERT_EQ(0, send_load(b, &roomy));
	ASSERT_EQ(0, send_load(a, &shortl));
	ASSERT_LT(0, wait_type(a, KVD_MSG_MIGRATE, &buf, 3000));
	mg = (const void *)&buf;
	EXPECT_EQ(3, mg->req);		/* 9 blocks cover the deficit of 8; 5 do not */
	EXPECT_STREQ("pr-b", mg->to);
	EXPECT_EQ(KVD_MIGRATE_PRESSURE, mg->reason);
	ASSERT_EQ(0, send_started(a, mg->id, -ENOENT));
	EXPECT_TRUE(wait_log("refused to move request 3 to pr-b", 3000));
	close(a);
	close(b);
}

/* The source leaves mid-migration: the destination is told; a silent source times out. */
TEST_F(kvd, migration_abort_on_disconnect_and_timeout)
{
	struct mig_load l = { .total = 100, .free = 10, .running = 1, .n = 1 };
	struct mig_load room = { .total = 100, .free = 80 };
	struct kvd_migration_info list[8];
	const struct kvd_migration_info *g;
	const struct kvd_migrate_abort *a;
	union kvdmsg_buf buf;
	uint64_t id = 0, id2 = 0;
	int src, dst, n;

	self->daemon = start_mig("[migration]\nenabled = false\nmigration_timeout_ms = 800\n");
	ASSERT_LT(0, self->daemon);
	src = mig_engine("ab-src");
	dst = mig_engine("ab-dst");
	ASSERT_LE(0, src);
	ASSERT_LE(0, dst);
	l.reqs[0] = (struct kvd_load_req){ .req = 5, .tokens = 100, .blocks = 4 };
	ASSERT_EQ(0, send_load(src, &l));
	ASSERT_EQ(0, send_load(dst, &room));
	ASSERT_TRUE(wait_log("engine ab-dst: first load", 3000));
	ASSERT_EQ(0, mig_request("ab-src", 5, "ab-dst", &id));
	ASSERT_LT(0, wait_type(src, KVD_MSG_MIGRATE, &buf, 3000));
	EXPECT_EQ(id, ((struct kvd_migrate *)(void *)&buf)->id);
	EXPECT_EQ(5, ((struct kvd_migrate *)(void *)&buf)->req);
	EXPECT_STREQ("ab-dst", ((struct kvd_migrate *)(void *)&buf)->to);
	ASSERT_EQ(0, send_started(src, id, 0));
	usleep(100000);
	close(src);
	ASSERT_LT(0, wait_type(dst, KVD_MSG_MIGRATE_ABORT, &buf, 3000));
	a = (const void *)&buf;
	EXPECT_EQ(id, a->id);
	EXPECT_EQ(5, a->req);
	EXPECT_EQ(-ECONNRESET, a->error);
	/* A source that never answers: both told when migration_timeout_ms passes. */
	src = mig_engine("ab-src2");
	ASSERT_LE(0, src);
	ASSERT_EQ(0, send_load(src, &l));
	ASSERT_TRUE(wait_log("engine ab-src2: first load", 3000));
	ASSERT_EQ(0, mig_request("ab-src2", 5, "ab-dst", &id2));
	ASSERT_LT(0, wait_type(src, KVD_MSG_MIGRATE_ABORT, &buf, 3000));
	EXPECT_EQ(id2, ((struct kvd_migrate_abort *)(void *)&buf)->id);
	EXPECT_EQ(-ETIMEDOUT, ((struct kvd_migrate_abort *)(void *)&buf)->error);
	ASSERT_LT(0, wait_type(dst, KVD_MSG_MIGRATE_ABORT, &buf, 3000));
	EXPECT_EQ(id2, ((struct kvd_migrate_abort *)(void *)&buf)->id);
	/* A late answer is ignored, the connection kept. */
	ASSERT_EQ(0, send_migrated(src, id2, 0, 4));
	EXPECT_TRUE(wait_log("late MIGRATED from ab-src2", 3000));
	n = mig_list(list, 8);
	ASSERT_LE(2, n);
	g = mig_find(list, n, id);
	ASSERT_NE(NULL, g);
	EXPECT_EQ(KVD_MIG_ABORTED, g->state);
	EXPECT_EQ(-ECONNRESET, g->status);
	g = mig_find(list, n, id2);
	ASSERT_NE(NULL, g);
	EXPECT_EQ(KVD_MIG_ABORTED, g->state);
	EXPECT_EQ(-ETIMEDOUT, g->status);
	close(src);
	close(dst);
}

/* Unequal loads: the policy moves the shortest request from the busier engine. */
TEST_F(kvd, migration_policy_balances_two_engines)
{
	struct mig_load hot = { .total = 100, .free = 10, .running = 3, .n = 3 };
	struct mig_load cold = { .total = 100, .free = 90, .running = 0 };
	struct kvd_migration_info list[8];
	const struct kvd_migration_info *g;
	const struct kvd_migrate *mg;
	union kvdmsg_buf buf;
	int a, b, n;
	uint64_t id;

	self->daemon = start_mig("[migration]\nmigrate_interval_ms = 50\n");
	ASSERT_LT(0, self->daemon);
	a = mig_engine("bal-a");
	b = mig_engine("bal-b");
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	hot.reqs[0] = (struct kvd_load_req){ .req = 1, .tokens = 800, .blocks = 20 };
	hot.reqs[1] = (struct kvd_load_req){ .req = 2, .tokens = 150, .blocks = 10 };
	hot.reqs[2] = (struct kvd_load_req){ .req = 3, .tokens = 400, .blocks = 15 };
	ASSERT_EQ(0, send_load(b, &cold));
	ASSERT_EQ(0, send_load(a, &hot));
	ASSERT_LT(0, wait_type(a, KVD_MSG_MIGRATE, &buf, 3000));
	mg = (const void *)&buf;
	id = mg->id;
	EXPECT_EQ(2, mg->req);
	EXPECT_STREQ("bal-b", mg->to);
	EXPECT_EQ(KVD_MIGRATE_BALANCE, mg->reason);
	ASSERT_EQ(0, send_started(a, id, 0));
	/* The request moved: the engines say so, the source reports the end. */
	hot.reqs[1] = hot.reqs[2];
	hot.n = 2;
	hot.running = 2;
	hot.free = 20;
	cold.free = 80;
	cold.running = 1;
	cold.n = 1;
	cold.reqs[0] = (struct kvd_load_req){ .req = 77, .tokens = 150, .blocks = 10 };
	ASSERT_EQ(0, send_load(b, &cold));
	ASSERT_EQ(0, send_load(a, &hot));
	ASSERT_EQ(0, send_migrated(a, id, 0, 10));
	ASSERT_TRUE(wait_log("done: downtime 2500 us", 3000));
	n = mig_list(list, 8);
	g = mig_find(list, n, id);
	ASSERT_NE(NULL, g);
	EXPECT_EQ(KVD_MIG_DONE, g->state);
	EXPECT_EQ(KVD_MIGRATE_BALANCE, g->reason);
	close(a);
	close(b);
}

/* A drain: nowhere to go at first (pending, listed), then each candidate in turn, then EXIT. */
TEST_F(kvd, migration_drain_moves_each_then_exit)
{
	struct mig_load src = { .total = 100, .free = 70, .running = 3, .n = 3 };
	struct mig_load dst = { .total = 100, .free = 0 };
	struct kvd_migration_info list[8];
	union kvdmsg_buf buf;
	uint64_t moved[3];
	int a, b, n, i;

	self->daemon = start_mig("[migration]\nenabled = false\nmigrate_interval_ms = 50\n");
	ASSERT_LT(0, self->daemon);
	a = mig_engine("dr-a");
	b = mig_engine("dr-b");
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	for (i = 0; i < 3; i++)
		src.reqs[i] = (struct kvd_load_req){ .req = 10 + i, .tokens = 100 * (3 - i),
						     .blocks = 10 };
	ASSERT_EQ(0, send_load(a, &src));
	ASSERT_EQ(0, send_load(b, &dst));
	ASSERT_TRUE(wait_log("engine dr-b: first load", 3000));
	ASSERT_EQ(0, mig_drain("dr-a"));
	/* Nowhere to go: pending, and listed. */
	EXPECT_GT(0, wait_type(a, KVD_MSG_MIGRATE, &buf, 400));
	n = mig_list(list, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVD_MIG_DRAINING, list[0].state);
	EXPECT_STREQ("dr-a", list[0].from);
	EXPECT_EQ(3, list[0].req);
	EXPECT_EQ(0, system("kvaccelctl --socket " SOCK " migrations | grep -q 'dr-a .*draining'"));
	/* Nothing comes into a draining engine. */
	EXPECT_EQ(-EOPNOTSUPP, mig_request("dr-b", 1, "dr-a", NULL));
	dst.free = 100;
	ASSERT_EQ(0, send_load(b, &dst));
	for (i = 0; i < 3; i++) {
		const struct kvd_migrate *mg = (const void *)&buf;
		uint64_t id;
		int k;

		ASSERT_LT(0, wait_type(a, KVD_MSG_MIGRATE, &buf, 3000));
		id = mg->id;
		moved[i] = mg->req;
		EXPECT_STREQ("dr-b", mg->to);
		EXPECT_EQ(KVD_MIGRATE_DRAIN, mg->reason);
		/* The shortest first. */
		EXPECT_EQ(12 - i, mg->req);
		ASSERT_EQ(0, send_started(a, id, 0));
		/* One at a time: no other before this one is over. */
		EXPECT_GT(0, wait_type(a, KVD_MSG_MIGRATE, &buf, 300));
		for (k = 0; k < (int)src.n; k++)
			if (src.reqs[k].req == moved[i])
				src.reqs[k] = src.reqs[--src.n];
		src.running--;
		src.free += 10;
		dst.free -= 10;
		dst.reqs[dst.n++] = (struct kvd_load_req){ .req = 100 + i, .tokens = 1,
							   .blocks = 10 };
		dst.running++;
		ASSERT_EQ(0, send_load(b, &dst));
		ASSERT_EQ(0, send_load(a, &src));
		ASSERT_EQ(0, send_migrated(a, id, 0, 10));
	}
	ASSERT_LT(0, wait_type(a, KVD_MSG_EXIT, &buf, 3000));
	EXPECT_TRUE(wait_log("drain of dr-a complete", 3000));
	n = mig_list(list, 8);
	EXPECT_EQ(4, n);	/* three done, dr-a still draining until it leaves */
	close(a);
	close(b);
}

static int memfd_receive(void *arg, const struct accel_handoff *h)
{
	int *got = arg;
	char text[16] = { 0 };

	if (h->count != 1 || h->kinds[0] != ACCEL_HANDOFF_MEMFD || h->sizes[0] != 4096 ||
	    pread(h->fds[0], text, sizeof(text) - 1, 0) < 0 || strcmp(text, "request-state"))
		return -EINVAL;
	close(h->fds[0]);
	(*got)++;
	return 0;
}

/* A sealed memfd goes with a hand-off; an unsealed one is refused, saying why. */
TEST_F(kvd, memfd_handoff_sealed_only)
{
	ACCEL_OPTS(accel_engine_migration_ops, ops);
	struct accel_engine_ops rops = { .receive = memfd_receive };
	enum accel_handoff_kind kind = ACCEL_HANDOFF_MEMFD;
	const struct kvd_error *err;
	struct accel_engine *x, *y;
	union kvdmsg_buf buf;
	int sealed, loose, got = 0, fd;

	self->daemon = start_daemon(NULL);
	ASSERT_LT(0, self->daemon);
	x = accel_engine_connect(SOCK, "mf-x", 1, NULL, NULL);
	y = accel_engine_connect(SOCK, "mf-y", 1, &rops, &got);
	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, y);
	(void)ops;
	sealed = memfd_create("state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	loose = memfd_create("state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_LE(0, sealed);
	ASSERT_LE(0, loose);
	ASSERT_EQ(0, ftruncate(sealed, 4096));
	ASSERT_EQ(0, ftruncate(loose, 4096));
	ASSERT_EQ(13, pwrite(sealed, "request-state", 13, 0));
	ASSERT_EQ(0, fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
	EXPECT_EQ(-EPERM, accel_engine_handoff(x, "mf-y", 1, &loose, &kind, 1));
	ASSERT_EQ(0, accel_engine_handoff(x, "mf-y", 2, &sealed, &kind, 1));
	for (int i = 0; i < 30 && !got; i++)
		accel_engine_dispatch(y, 100000000);
	EXPECT_EQ(1, got);
	EXPECT_EQ(0, accel_engine_handoff_wait(x, 2, 3000000000ll));
	/* The daemon's message names what is missing. */
	fd = raw_connect();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, raw_register(fd, "mf-raw"));
	do {
		struct {
			struct kvd_handoff m;
			struct kvd_obj o;
		} h;

		memset(&h, 0, sizeof(h));
		kvdmsg_hdr(&h.m.hdr, KVD_MSG_HANDOFF, sizeof(h), 3);
		snprintf(h.m.peer, sizeof(h.m.peer), "mf-y");
		h.m.tag = 9;
		h.m.count = 1;
		h.o.kind = KVD_OBJ_MEMFD;
		h.o.size = 4096;
		ASSERT_EQ(0, raw_send(fd, &h, sizeof(h), &loose, 1));
	} while (0);
	ASSERT_LT(0, raw_recv(fd, &buf));
	ASSERT_EQ(KVD_MSG_ERROR, buf.hdr.type);
	err = (const void *)&buf;
	EXPECT_EQ(-EPERM, err->error);
	EXPECT_EQ(0, err->closing);
	EXPECT_NE(NULL, strstr(err->message, "memfd not sealed"));
	close(fd);
	close(sealed);
	close(loose);
	accel_engine_close(x);
	accel_engine_close(y);
}

TEST_HARNESS_MAIN
