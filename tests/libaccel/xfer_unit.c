// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native tests (cmocka, ASan/UBSan) of accel_xfer, UCX over TCP on
 * 127.0.0.1. Each test forks two processes before anything of UCX exists
 * in them (the cmocka process itself never loads UCX), a server and a
 * client, each with its own accel_xfer, and checks how both ended:
 * 64 blocks of 64 KiB put from an mmap'd buffer into the server's memfd
 * tier and checked byte for byte, out-of-range puts, descriptors
 * truncated or garbled, the eventfd; 1000 small messages in order, a
 * 4 MiB one, a too-long one that does not lose the next; four threads
 * sending and one putting on one endpoint at once; a peer killed
 * mid-stream (errors within seconds, no hang) after it was stopped (a
 * flush into a peer that does not answer times out); raw TCP garbage sent to
 * the listener (a proper client still connects), a listener that never
 * answers and a closed port (connect returns within its timeout).
 *
 * UCX runs with UCX_TLS=tcp, its memory hooks off (UCX_MEM_MALLOC_HOOKS=no,
 * UCX_MEM_MMAP_HOOK_MODE=none: they patch malloc/mmap, which ASan
 * intercepts too) and UCX_HANDLE_ERRORS=none (ASan's signal handlers stay);
 * each is only a default the environment may override. XFER_TEST_LOG=1
 * prints libaccel's log (debug level) on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel.h"

#define BLK	(64u << 10)
#define NBLK	64u
#define BIG	(4u << 20)
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

static void test_log(void *arg, enum accel_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "# [%d] %d %s\n", (int)getpid(), level, msg);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct accel_xfer *mkx(void)
{
	struct accel_xfer *x;

	if (getenv("XFER_TEST_LOG"))
		accel_set_log(test_log, NULL, ACCEL_LOG_DEBUG);
	else
		accel_set_log(test_log, NULL, ACCEL_LOG_ERR);
	x = accel_xfer_create(NULL);
	if (!x)
		fprintf(stderr, "# accel_xfer_create: %s\n", strerror(errno));
	CK(x);
	return x;
}

/* A child's end: exit() (LeakSanitizer's check runs) on success. */
static void child_exit(int st)
{
	if (st)
		_exit(st);
	exit(0);
}

typedef int (*role_fn)(struct accel_xfer *x, struct accel_xfer_ep *ep, pid_t peer,
		       uint16_t port);

/*
 * Fork a server (listens on 127.0.0.1, port 0, tells the client its port)
 * and a client (connects unless @connect is false); wait for both
 * (@limit seconds at most: then both are killed). *sst and *cst: their
 * wait statuses.
 */
static void run_pair(role_fn server, role_fn client, bool connect, int limit, int *sst,
		     int *cst)
{
	int pfd[2], st;
	pid_t sp, cp, w;
	uint16_t port;
	double t0;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	sp = fork();
	assert_true(sp >= 0);
	if (sp == 0) {
		struct accel_xfer *x;

		close(pfd[0]);
		alarm(limit);
		x = mkx();
		CKR(accel_xfer_listen(x, "127.0.0.1", 0, &port), 0);
		CK(port != 0);
		CK(write(pfd[1], &port, sizeof(port)) == sizeof(port));
		close(pfd[1]);
		st = server(x, NULL, 0, port);
		accel_xfer_destroy(x);
		child_exit(st);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	close(pfd[0]);
	cp = fork();
	assert_true(cp >= 0);
	if (cp == 0) {
		struct accel_xfer_ep *ep = NULL;
		struct accel_xfer *x;

		alarm(limit);
		x = mkx();
		if (connect)
			CKR(accel_xfer_connect(x, "127.0.0.1", port, 5 * S, &ep), 0);
		st = client(x, ep, sp, port);
		accel_xfer_ep_close(ep);
		accel_xfer_destroy(x);
		child_exit(st);
	}
	*sst = *cst = -1;
	t0 = now_s();
	while (*sst == -1 || *cst == -1) {
		w = waitpid(-1, &st, WNOHANG);
		if (w == sp)
			*sst = st;
		else if (w == cp)
			*cst = st;
		else if (w == 0)
			usleep(10000);
		if (now_s() - t0 > limit + 2) {
			kill(sp, SIGKILL);
			kill(cp, SIGKILL);
		}
	}
}

static void expect_exit0(int st, const char *who)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		print_error("%s: %s %d\n", who, WIFEXITED(st) ? "exit" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void pair(role_fn server, role_fn client, int limit)
{
	int s, c;

	run_pair(server, client, true, limit, &s, &c);
	expect_exit0(s, "server");
	expect_exit0(c, "client");
}

static unsigned char pat(uint32_t blk, size_t off)
{
	return (unsigned char)(blk * 37 + off * 11 + (off >> 9) + 1);
}

/* Receive one message of exactly @want bytes from @want_ep (if not NULL). */
static struct accel_xfer_ep *recv_msg(struct accel_xfer *x, void *buf, size_t cap, size_t *len)
{
	struct accel_xfer_ep *from = NULL;

	*len = cap;
	CKR(accel_xfer_recv(x, &from, buf, len, 10 * S), 0);
	CK(from);
	return from;
}

/* ---- puts ------------------------------------------------------------------ */

static int put_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		      uint16_t port)
{
	ACCEL_OPTS(accel_tier_opts, to, .block_bytes = BLK, .blocks = NBLK);
	struct accel_xfer_ep *ep, *from;
	struct accel_tier *tier;
	struct accel_xfer_mem *m;
	unsigned char desc[ACCEL_XFER_DESC_MAX], *base, msg[64];
	size_t len, small;
	uint32_t b;
	size_t i;

	(void)unused;
	(void)peer;
	(void)port;
	tier = accel_tier_create_memfd(&to);
	CK(tier);
	base = accel_tier_block_addr(tier, 0);
	CK(base);
	CKR(accel_xfer_accept(x, &ep, 10 * S), 0);
	CKR(accel_xfer_mem_map(x, base, (size_t)BLK * NBLK, &m), 0);
	CKR(accel_xfer_mem_pack(m, NULL, &len), 0);
	CK(len > 40 && len <= ACCEL_XFER_DESC_MAX);
	small = len - 1;
	CKR(accel_xfer_mem_pack(m, desc, &small), -ENOSPC);
	CK(small == len);
	CKR(accel_xfer_mem_pack(m, desc, &len), 0);
	CKR(accel_xfer_send(ep, desc, len, 5 * S), 0);
	/* "done": the client's puts are flushed. */
	from = recv_msg(x, msg, sizeof(msg), &len);
	CK(from == ep && len == 5 && !memcmp(msg, "done", 5));
	for (b = 0; b < NBLK; b++)
		for (i = 0; i < BLK; i++)
			if (base[(size_t)(NBLK - 1 - b) * BLK + i] != pat(b, i)) {
				fprintf(stderr, "# block %u byte %zu differs\n", b, i);
				CK(0);
			}
	CKR(accel_xfer_send(ep, "ok", 3, 5 * S), 0);
	/* The client closes: the endpoint then fails. */
	for (i = 0; i < 1000 && !accel_xfer_ep_status(ep); i++)
		usleep(10000);
	CK(accel_xfer_ep_status(ep) == -ECONNRESET);
	CK(accel_xfer_send(ep, "x", 1, S) == -ECONNRESET);
	accel_xfer_ep_close(ep);
	accel_xfer_mem_unmap(m);
	accel_tier_destroy(tier);
	return 0;
}

static int put_client(struct accel_xfer *x, struct accel_xfer_ep *ep, pid_t peer, uint16_t port)
{
	struct accel_xfer_iov iov[NBLK], bad;
	unsigned char desc[ACCEL_XFER_DESC_MAX], g[ACCEL_XFER_DESC_MAX], msg[64], *src;
	struct accel_xfer_rkey *rk, *rk2;
	struct accel_xfer_mem *lm;
	struct accel_xfer_ep *from;
	struct pollfd pfd;
	size_t len, glen, i;
	uint32_t b;

	(void)peer;
	(void)port;
	/* The eventfd: readable once the descriptor waits. */
	pfd = (struct pollfd){ .fd = accel_xfer_fd(x), .events = POLLIN };
	CK(pfd.fd >= 0);
	CK(poll(&pfd, 1, 10000) == 1);
	from = recv_msg(x, desc, sizeof(desc), &len);
	CK(from == ep);
	CK(poll(&pfd, 1, 0) == 0);

	/* Garbled descriptors: every one refused, nothing crashes. */
	for (glen = 0; glen < len; glen += (glen < 48 ? 1 : 13))
		CKR(accel_xfer_rkey(ep, desc, glen, &rk), -EINVAL);
	memcpy(g, desc, len);
	CKR(accel_xfer_rkey(ep, g, len + 1, &rk), -EINVAL);
	for (i = 0; i < len; i += (i < 48 ? 1 : 7)) {
		memcpy(g, desc, len);
		g[i] ^= 0x5a;
		CKR(accel_xfer_rkey(ep, g, len, &rk), -EINVAL);
	}
	srand(7);
	for (i = 0; i < 200; i++) {
		size_t j, n = 1 + rand() % sizeof(g);

		for (j = 0; j < n; j++)
			g[j] = rand();
		if (i & 1)
			memcpy(g, desc, 8);	/* a right magic, version and size */
		CKR(accel_xfer_rkey(ep, g, n, &rk), -EINVAL);
	}
	CKR(accel_xfer_rkey(NULL, desc, len, &rk), -EINVAL);
	CKR(accel_xfer_rkey(ep, desc, len, &rk), 0);
	CK(accel_xfer_rkey_len(rk) == (uint64_t)BLK * NBLK);
	CKR(accel_xfer_rkey(ep, desc, len, &rk2), 0);
	accel_xfer_rkey_destroy(rk2);

	src = mmap(NULL, (size_t)BLK * NBLK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CK(src != MAP_FAILED);
	for (b = 0; b < NBLK; b++) {
		for (i = 0; i < BLK; i++)
			src[(size_t)b * BLK + i] = pat(b, i);
		/* Block b lands in the peer's block NBLK - 1 - b. */
		iov[b] = (struct accel_xfer_iov){ src + (size_t)b * BLK,
						  (uint64_t)(NBLK - 1 - b) * BLK, BLK };
	}
	/* Out of range, before anything is submitted. */
	bad = (struct accel_xfer_iov){ src, (uint64_t)BLK * NBLK - 100, 4096 };
	CKR(accel_xfer_put(ep, &bad, 1, rk), -EINVAL);
	bad = (struct accel_xfer_iov){ src, (uint64_t)BLK * NBLK + 1, 0 };
	CKR(accel_xfer_put(ep, &bad, 1, rk), -EINVAL);
	bad = (struct accel_xfer_iov){ src, UINT64_MAX - 10, 4096 };
	CKR(accel_xfer_put(ep, &bad, 1, rk), -EINVAL);
	bad = (struct accel_xfer_iov){ NULL, 0, 4096 };
	CKR(accel_xfer_put(ep, &bad, 1, rk), -EINVAL);
	CKR(accel_xfer_put(ep, iov, 0, rk), -EINVAL);
	CKR(accel_xfer_put(ep, iov, NBLK, NULL), -EINVAL);
	/* Half from unregistered memory, half registered (a local memh). */
	CKR(accel_xfer_put(ep, iov, NBLK / 2, rk), 0);
	CKR(accel_xfer_flush(ep, 10 * S), 0);
	CKR(accel_xfer_mem_map(x, src, (size_t)BLK * NBLK, &lm), 0);
	CKR(accel_xfer_put(ep, iov + NBLK / 2, NBLK / 2, rk), 0);
	CKR(accel_xfer_flush(ep, 10 * S), 0);
	/* Nothing left to flush. */
	CKR(accel_xfer_flush(ep, 0), 0);
	CKR(accel_xfer_ep_status(ep), 0);
	CKR(accel_xfer_send(ep, "done", 5, 5 * S), 0);
	from = recv_msg(x, msg, sizeof(msg), &len);
	CK(from == ep && len == 3 && !memcmp(msg, "ok", 3));
	accel_xfer_mem_unmap(lm);
	munmap(src, (size_t)BLK * NBLK);
	return 0;
}

static void test_put(void **state)
{
	(void)state;
	pair(put_server, put_client, 20);
}

/* ---- messages --------------------------------------------------------------- */

#define NMSG	1000

static int msg_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		      uint16_t port)
{
	unsigned char *buf = malloc(BIG + 1);
	struct accel_xfer_ep *ep, *from;
	size_t len, i, j;
	uint32_t seq;

	(void)unused;
	(void)peer;
	(void)port;
	CK(buf);
	/* Nothing yet: no waiting for a timeout of 0. */
	len = 16;
	CKR(accel_xfer_recv(x, NULL, buf, &len, 0), -EAGAIN);
	CKR(accel_xfer_accept(x, &ep, 10 * S), 0);
	for (i = 0; i < NMSG; i++) {
		from = recv_msg(x, buf, 256, &len);
		CK(from == ep);
		CK(len == 4 + i % 200);
		memcpy(&seq, buf, 4);
		CK(seq == i);
		for (j = 4; j < len; j++)
			CK(buf[j] == (unsigned char)(i + j));
	}
	from = recv_msg(x, buf, BIG + 1, &len);
	CK(from == ep && len == BIG);
	for (j = 0; j < BIG; j++)
		CK(buf[j] == (unsigned char)(j * 13 + (j >> 12)));
	/* Too long for the buffer: its length, then the next one. */
	len = 1024;
	CKR(accel_xfer_recv(x, &from, buf, &len, 10 * S), -EMSGSIZE);
	CK(len == 2048);
	from = recv_msg(x, buf, 1024, &len);
	CK(from == ep && len == 5 && !memcmp(buf, "tail", 5));
	/* An empty message. */
	from = recv_msg(x, buf, 1024, &len);
	CK(from == ep && len == 0);
	CKR(accel_xfer_send(ep, "ok", 3, 5 * S), 0);
	/* Wait for the client's close (its messages all came). */
	for (i = 0; i < 1000 && !accel_xfer_ep_status(ep); i++)
		usleep(10000);
	accel_xfer_ep_close(ep);
	free(buf);
	return 0;
}

static int msg_client(struct accel_xfer *x, struct accel_xfer_ep *ep, pid_t peer, uint16_t port)
{
	unsigned char *big = malloc(BIG), m[256];
	struct accel_xfer_ep *from;
	size_t len, i, j;
	uint32_t seq;

	(void)peer;
	(void)port;
	CK(big);
	for (i = 0; i < NMSG; i++) {
		seq = i;
		memcpy(m, &seq, 4);
		for (j = 4; j < 4 + i % 200; j++)
			m[j] = (unsigned char)(i + j);
		CKR(accel_xfer_send(ep, m, 4 + i % 200, 5 * S), 0);
	}
	for (j = 0; j < BIG; j++)
		big[j] = (unsigned char)(j * 13 + (j >> 12));
	CKR(accel_xfer_send(ep, big, BIG, 10 * S), 0);
	CKR(accel_xfer_send(ep, big, ACCEL_XFER_MSG_MAX + 1, 5 * S), -EMSGSIZE);
	CKR(accel_xfer_send(ep, NULL, 10, 5 * S), -EINVAL);
	CKR(accel_xfer_send(ep, big, 2048, 5 * S), 0);
	CKR(accel_xfer_send(ep, "tail", 5, 5 * S), 0);
	CKR(accel_xfer_send(ep, NULL, 0, 5 * S), 0);
	from = recv_msg(x, m, sizeof(m), &len);
	CK(from == ep && len == 3 && !memcmp(m, "ok", 3));
	free(big);
	return 0;
}

static void test_messages(void **state)
{
	(void)state;
	pair(msg_server, msg_client, 25);
}

/* ---- a peer killed mid-stream ------------------------------------------------ */

#define KILL_LEN	(32u << 20)

static int kill_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		       uint16_t port)
{
	unsigned char desc[ACCEL_XFER_DESC_MAX], *mem;
	struct accel_xfer_ep *ep;
	struct accel_xfer_mem *m;
	size_t len = sizeof(desc);

	(void)unused;
	(void)peer;
	(void)port;
	mem = mmap(NULL, KILL_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CK(mem != MAP_FAILED);
	CKR(accel_xfer_accept(x, &ep, 10 * S), 0);
	CKR(accel_xfer_mem_map(x, mem, KILL_LEN, &m), 0);
	CKR(accel_xfer_mem_pack(m, desc, &len), 0);
	CKR(accel_xfer_send(ep, desc, len, 5 * S), 0);
	for (;;)
		pause();	/* until the client kills it */
	return 1;
}

static bool conn_err(int r)
{
	return r == -ECONNRESET || r == -ETIMEDOUT;
}

/* Whether @pid is stopped (its state in /proc), waiting a second at most. */
static bool stopped(pid_t pid)
{
	char path[64], buf[256], *p;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 100; i++) {
		FILE *f = fopen(path, "r");

		if (f) {
			p = fgets(buf, sizeof(buf), f);
			fclose(f);
			p = p ? strrchr(buf, ')') : NULL;
			if (p && p[1] == ' ' && p[2] == 'T')
				return true;
		}
		usleep(10000);
	}
	return false;
}

static int kill_client(struct accel_xfer *x, struct accel_xfer_ep *ep, pid_t peer, uint16_t port)
{
	unsigned char desc[ACCEL_XFER_DESC_MAX], *src;
	struct accel_xfer_iov iov[32];
	struct accel_xfer_rkey *rk;
	double t_kill = 0, t_err;
	size_t len, i;
	int r = 0, round;

	(void)port;
	recv_msg(x, desc, sizeof(desc), &len);
	CKR(accel_xfer_rkey(ep, desc, len, &rk), 0);
	src = malloc(KILL_LEN);
	CK(src);
	memset(src, 0xab, KILL_LEN);
	for (i = 0; i < 32; i++)
		iov[i] = (struct accel_xfer_iov){ src + i * (1u << 20), i * (1u << 20), 1u << 20 };
	for (round = 0; round < 1000; round++) {
		if (round == 3) {
			/* Stopped (a peer that does not answer): the flush's timeout holds. */
			CK(kill(peer, SIGSTOP) == 0);
			CK(stopped(peer));
			CKR(accel_xfer_put(ep, iov, 32, rk), 0);
			t_kill = now_s();
			CKR(accel_xfer_flush(ep, S / 2), -ETIMEDOUT);
			fprintf(stderr, "# stopped peer: flush -ETIMEDOUT after %.3f s\n",
				now_s() - t_kill);
			CK(now_s() - t_kill < 1.5);
			/* Killed mid-stream: puts submitted, not flushed. */
			CKR(accel_xfer_put(ep, iov, 32, rk), 0);
			kill(peer, SIGKILL);
			t_kill = now_s();
		}
		r = accel_xfer_put(ep, iov, 32, rk);
		if (r)
			break;
		r = accel_xfer_flush(ep, 2 * S);
		if (r)
			break;
	}
	t_err = now_s();
	fprintf(stderr, "# killed peer: %d (%s) after %.3f s, round %d\n", r, strerror(-r),
		t_err - t_kill, round);
	CK(t_kill > 0);
	CK(conn_err(r));
	CK(t_err - t_kill < 5);
	/* Every later call says so, quickly. */
	CK(conn_err(accel_xfer_ep_status(ep)));
	CK(conn_err(accel_xfer_flush(ep, 5 * S)));
	CK(conn_err(accel_xfer_put(ep, iov, 1, rk)));
	CK(conn_err(accel_xfer_send(ep, "x", 1, 5 * S)));
	CK(now_s() - t_err < 1);
	free(src);
	return 0;
}

static void test_killed_peer(void **state)
{
	int s, c;

	(void)state;
	run_pair(kill_server, kill_client, true, 20, &s, &c);
	assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
	expect_exit0(c, "client");
}

/* ---- garbage on the wire, silent and absent listeners --------------------------- */

static int garbage_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
			  uint16_t port)
{
	struct accel_xfer_ep *from;
	unsigned char m[64];
	size_t len;

	(void)unused;
	(void)peer;
	(void)port;
	/* The proper client's hello, after the garbage. */
	from = recv_msg(x, m, sizeof(m), &len);
	CK(len == 3 && !memcmp(m, "hi", 3));
	CKR(accel_xfer_send(from, "ho", 3, 5 * S), 0);
	from = recv_msg(x, m, sizeof(m), &len);
	CK(len == 4 && !memcmp(m, "bye", 4));
	/* Until the client closes (its flush needs this side). */
	for (len = 0; len < 1000 && !accel_xfer_ep_status(from); len++)
		usleep(10000);
	return 0;
}

static int tcp_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CK(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

static int garbage_client(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
			  uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	unsigned char junk[8192], m[64];
	struct accel_xfer_ep *ep, *from;
	int fds[4], lfd, i, r;
	socklen_t al = sizeof(a);
	size_t len, j;
	double t0;

	(void)unused;
	(void)peer;
	signal(SIGPIPE, SIG_IGN);
	srand(11);
	for (j = 0; j < sizeof(junk); j++)
		junk[j] = rand();
	/*
	 * Random bytes, a silent connection, random bytes then a close. Not by
	 * default, a header that claims fewer bytes than follow it: UCX
	 * 1.13.1's TCP connection manager asserts on it and aborts the
	 * listening process (tcp_sockcm_ep.c:825, "offset <= length"), a UCX
	 * bug Documentation/libaccel.rst tells of; XFER_TEST_UCX_ABORT=1 sends it.
	 */
	fds[0] = tcp_to(port);
	r = write(fds[0], junk, sizeof(junk));
	fds[1] = tcp_to(port);
	fds[2] = tcp_to(port);
	r = write(fds[2], junk + 100, 3000);
	close(fds[2]);
	fds[3] = tcp_to(port);
	memset(junk, 0, 512);
	if (getenv("XFER_TEST_UCX_ABORT"))
		r = write(fds[3], junk, 512);
	(void)r;
	usleep(300000);

	/* A listener that accepts TCP but never answers: the timeout holds. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	CK(lfd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0);
	CK(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
	t0 = now_s();
	r = accel_xfer_connect(x, "127.0.0.1", ntohs(a.sin_port), S, &ep);
	fprintf(stderr, "# silent listener: %d (%s) after %.3f s\n", r, strerror(-r),
		now_s() - t0);
	CK(r < 0 && now_s() - t0 < 3);
	CK(r == -ETIMEDOUT);
	/* A closed port: refused, within the timeout. */
	close(lfd);
	t0 = now_s();
	r = accel_xfer_connect(x, "127.0.0.1", ntohs(a.sin_port), 2 * S, &ep);
	fprintf(stderr, "# closed port: %d (%s) after %.3f s\n", r, strerror(-r), now_s() - t0);
	CK(r == -ECONNREFUSED && now_s() - t0 < 4);
	CKR(accel_xfer_connect(x, "not an address", port, S, &ep), -EINVAL);

	/* The listener still works. */
	CKR(accel_xfer_connect(x, "127.0.0.1", port, 5 * S, &ep), 0);
	CKR(accel_xfer_send(ep, "hi", 3, 5 * S), 0);
	from = recv_msg(x, m, sizeof(m), &len);
	CK(from == ep && len == 3 && !memcmp(m, "ho", 3));
	CKR(accel_xfer_send(ep, "bye", 4, 5 * S), 0);
	CKR(accel_xfer_flush(ep, 5 * S), 0);
	accel_xfer_ep_close(ep);
	for (i = 0; i < 4; i++)
		if (i != 2)
			close(fds[i]);
	return 0;
}

static void test_garbage_peer(void **state)
{
	int s, c;

	(void)state;
	run_pair(garbage_server, garbage_client, false, 25, &s, &c);
	expect_exit0(s, "server");
	expect_exit0(c, "client");
}

/* ---- several threads on one endpoint ------------------------------------------ */

#define NTHR	4
#define NPER	250

struct thr {
	struct accel_xfer_ep *ep;
	struct accel_xfer_rkey *rk;
	unsigned char *src;
	uint32_t id;
	int ret;
};

static void *sender(void *arg)
{
	struct thr *t = arg;
	uint32_t m[2], i;

	for (i = 0; i < NPER && !t->ret; i++) {
		m[0] = t->id;
		m[1] = i;
		t->ret = accel_xfer_send(t->ep, m, sizeof(m), 5 * S);
	}
	return NULL;
}

static void *putter(void *arg)
{
	struct thr *t = arg;
	struct accel_xfer_iov iov;
	uint32_t i;

	for (i = 0; i < 50 && !t->ret; i++) {
		iov = (struct accel_xfer_iov){ t->src + (i % NBLK) * BLK, (uint64_t)(i % NBLK) * BLK,
					       BLK };
		t->ret = accel_xfer_put(t->ep, &iov, 1, t->rk);
		if (!t->ret && i % 10 == 9)
			t->ret = accel_xfer_flush(t->ep, 10 * S);
	}
	return NULL;
}

static int thr_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		      uint16_t port)
{
	unsigned char desc[ACCEL_XFER_DESC_MAX], *mem;
	uint32_t next[NTHR] = { 0 }, m[2], i;
	struct accel_xfer_ep *ep, *from;
	struct accel_xfer_mem *mm;
	size_t len = sizeof(desc);

	(void)unused;
	(void)peer;
	(void)port;
	mem = mmap(NULL, (size_t)BLK * NBLK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	CK(mem != MAP_FAILED);
	CKR(accel_xfer_accept(x, &ep, 10 * S), 0);
	CKR(accel_xfer_mem_map(x, mem, (size_t)BLK * NBLK, &mm), 0);
	CKR(accel_xfer_mem_pack(mm, desc, &len), 0);
	CKR(accel_xfer_send(ep, desc, len, 5 * S), 0);
	/* Each thread's messages in its order, all of them. */
	for (i = 0; i < NTHR * NPER; i++) {
		from = recv_msg(x, m, sizeof(m), &len);
		CK(from == ep && len == sizeof(m) && m[0] < NTHR);
		CK(m[1] == next[m[0]]);
		next[m[0]]++;
	}
	from = recv_msg(x, m, sizeof(m), &len);
	CK(len == 4 && !memcmp(m, "end", 4));
	for (i = 0; i < NBLK * BLK; i++)
		CK(mem[i] == pat(i / BLK, i % BLK));
	CKR(accel_xfer_send(ep, "ok", 3, 5 * S), 0);
	for (i = 0; i < 1000 && !accel_xfer_ep_status(ep); i++)
		usleep(10000);
	accel_xfer_mem_unmap(mm);
	return 0;
}

static int thr_client(struct accel_xfer *x, struct accel_xfer_ep *ep, pid_t peer, uint16_t port)
{
	unsigned char desc[ACCEL_XFER_DESC_MAX], m[8];
	struct thr t[NTHR + 1];
	pthread_t th[NTHR + 1];
	struct accel_xfer_iov iov;
	struct accel_xfer_rkey *rk;
	unsigned char *src;
	size_t len, i;

	(void)peer;
	(void)port;
	recv_msg(x, desc, sizeof(desc), &len);
	CKR(accel_xfer_rkey(ep, desc, len, &rk), 0);
	src = malloc((size_t)BLK * NBLK);
	CK(src);
	for (i = 0; i < (size_t)BLK * NBLK; i++)
		src[i] = pat(i / BLK, i % BLK);
	for (i = 0; i <= NTHR; i++) {
		t[i] = (struct thr){ .ep = ep, .rk = rk, .src = src, .id = i };
		CK(pthread_create(&th[i], NULL, i < NTHR ? sender : putter, &t[i]) == 0);
	}
	for (i = 0; i <= NTHR; i++) {
		pthread_join(th[i], NULL);
		CKR(t[i].ret, 0);
	}
	/* Every block once more, then the flush that makes "end" true. */
	for (i = 0; i < NBLK; i++) {
		iov = (struct accel_xfer_iov){ src + i * BLK, i * BLK, BLK };
		CKR(accel_xfer_put(ep, &iov, 1, rk), 0);
	}
	CKR(accel_xfer_flush(ep, 10 * S), 0);
	CKR(accel_xfer_send(ep, "end", 4, 5 * S), 0);
	recv_msg(x, m, sizeof(m), &len);
	CK(len == 3 && !memcmp(m, "ok", 3));
	free(src);
	return 0;
}

static void test_threads(void **state)
{
	(void)state;
	pair(thr_server, thr_client, 25);
}

/* ---- argument checks (no UCX needed past create) --------------------------------- */

static int args_server(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		       uint16_t port)
{
	ACCEL_OPTS(accel_xfer_opts, o, .flags = 1);
	struct accel_xfer_ep *ep;
	struct accel_xfer_mem *m;
	struct accel_xfer *x2;
	char buf[8];
	size_t len = 8;
	uint16_t p;

	(void)unused;
	(void)peer;

	CK(!accel_xfer_create(&o) && errno == EINVAL);
	CKR(accel_xfer_listen(x, "127.0.0.1", 0, &p), -EBUSY);
	/* Another listener on this one's port. */
	x2 = accel_xfer_create(NULL);
	CK(x2);
	CKR(accel_xfer_listen(x2, "127.0.0.1", port, NULL), -EADDRINUSE);
	CKR(accel_xfer_listen(x2, "127.0.0.256", 0, NULL), -EINVAL);
	CKR(accel_xfer_listen(x2, "::1", 0, &p), 0);
	CK(p != 0);
	accel_xfer_destroy(x2);
	CKR(accel_xfer_listen(NULL, NULL, 0, NULL), -EINVAL);
	CKR(accel_xfer_accept(x, &ep, 0), -EAGAIN);
	CKR(accel_xfer_accept(x, NULL, 0), -EINVAL);
	CKR(accel_xfer_recv(x, NULL, buf, &len, 1000000), -ETIMEDOUT);
	CKR(accel_xfer_recv(x, NULL, NULL, &len, 0), -EINVAL);
	CKR(accel_xfer_mem_map(x, NULL, 10, &m), -EINVAL);
	CKR(accel_xfer_mem_map(x, buf, 0, &m), -EINVAL);
	CKR(accel_xfer_mem_pack(NULL, NULL, &len), -EINVAL);
	CKR(accel_xfer_fd(NULL), -EINVAL);
	CKR(accel_xfer_ep_status(NULL), -EINVAL);
	CKR(accel_xfer_flush(NULL, 0), -EINVAL);
	CKR(accel_xfer_send(NULL, "x", 1, 0), -EINVAL);
	accel_xfer_ep_close(NULL);
	accel_xfer_rkey_destroy(NULL);
	accel_xfer_mem_unmap(NULL);
	accel_xfer_destroy(NULL);
	return 0;
}

static int args_client(struct accel_xfer *x, struct accel_xfer_ep *unused, pid_t peer,
		       uint16_t port)
{
	(void)x;
	(void)unused;
	(void)peer;
	(void)port;
	return 0;
}

static void test_args(void **state)
{
	int s, c;

	(void)state;
	run_pair(args_server, args_client, false, 10, &s, &c);
	expect_exit0(s, "server");
	expect_exit0(c, "client");
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
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_put),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_killed_peer),
		cmocka_unit_test(test_garbage_peer),
	};

	setenv("UCX_TLS", "tcp", 0);
	setenv("UCX_MEM_MALLOC_HOOKS", "no", 0);
	setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 0);
	setenv("UCX_HANDLE_ERRORS", "none", 0);
	setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 0);
	/* Without UCX (no libucx0): one plain SKIP line, as cuda_abi does. */
	if (!have_ucx()) {
		printf("1..1\n# no libucp.so.0 (libucx0): accel_xfer not tested\n");
		printf("ok 1 - xfer_unit # SKIP no UCX\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
