// SPDX-License-Identifier: GPL-2.0-only
/*
 * A real etcd for native tests (etcd_fixture.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd_fixture.h"

#define FX_MAX	8
static struct etcdfx *live[FX_MAX];

const char *etcdfx_binary(void)
{
	const char *b = getenv("ETCD");

	if (b && *b)
		return access(b, X_OK) ? NULL : b;
	return access("/usr/bin/etcd", X_OK) ? NULL : "/usr/bin/etcd";
}

int etcdfx_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (void *)&a, sizeof(a)) && !getsockname(fd, (void *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void rm_rf(const char *dir)
{
	char cmd[128];

	if (!dir[0] || strncmp(dir, "/tmp/kvd-etcd-", 14))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "# could not remove %s\n", dir);
}

static void at_exit(void)
{
	unsigned int i;

	for (i = 0; i < FX_MAX; i++)
		if (live[i])
			etcdfx_stop(live[i]);
}

/* Does etcd on 127.0.0.1:@port say it is healthy (GET /health: it has a leader)? */
static bool answers(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static const char req[] = "GET /health HTTP/1.0\r\n\r\n";
	struct timeval tv = { 1, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[1024];
	size_t got = 0;
	ssize_t n;
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ok = !connect(fd, (void *)&a, sizeof(a)) &&
	     write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1;
	while (ok && got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(fd);
	return ok && strstr(buf, "\"health\":\"true\"");
}

int etcdfx_start(struct etcdfx *fx)
{
	static bool registered;
	const char *bin = etcdfx_binary();
	char curl[64], purl[64], cluster[512], log[96];
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	unsigned int i;
	int tries;

	if (!bin)
		return -ENOENT;
	if (!registered) {
		atexit(at_exit);
		registered = true;
	}
	if (!fx->dir[0]) {
		snprintf(fx->dir, sizeof(fx->dir), "/tmp/kvd-etcd-XXXXXX");
		if (!mkdtemp(fx->dir))
			return -errno;
	}
	if (!fx->client_port)
		fx->client_port = etcdfx_free_port();
	if (!fx->peer_port)
		fx->peer_port = etcdfx_free_port();
	if (fx->client_port < 0 || fx->peer_port < 0 || fx->client_port == fx->peer_port)
		return -EADDRINUSE;
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d", fx->client_port);
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", fx->client_port);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", fx->peer_port);
	if (fx->cluster[0])
		snprintf(cluster, sizeof(cluster), "%s", fx->cluster);
	else
		snprintf(cluster, sizeof(cluster), "default=%s", purl);
	snprintf(log, sizeof(log), "%s.log", fx->dir);
	fx->pid = fork();
	if (fx->pid < 0)
		return -errno;
	if (!fx->pid) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		char data[96];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		snprintf(data, sizeof(data), "%s/data", fx->dir);
		execl(bin, bin, "--name", fx->name[0] ? fx->name : "default", "--data-dir", data,
		      "--listen-client-urls", curl, "--advertise-client-urls", curl,
		      "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		      "--initial-cluster", cluster, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < FX_MAX; i++) {
		if (!live[i] || live[i] == fx) {
			live[i] = fx;
			break;
		}
	}
	/* A member of a cluster answers once a quorum is up: etcdfx_start_members() waits. */
	if (fx->cluster[0])
		return 0;
	/* etcd starts in 0.2-0.9 s here; allow 15 s on a loaded machine. */
	for (tries = 0; tries < 300; tries++) {
		int st;

		if (answers(fx->client_port))
			return 0;
		if (waitpid(fx->pid, &st, WNOHANG) == fx->pid) {
			fx->pid = 0;
			fprintf(stderr, "# etcd exited at start: see %s\n", log);
			return -ECHILD;
		}
		nanosleep(&ts, NULL);
	}
	etcdfx_kill(fx);
	return -ETIMEDOUT;
}

void etcdfx_kill(struct etcdfx *fx)
{
	if (fx->pid > 0) {
		kill(fx->pid, SIGKILL);
		waitpid(fx->pid, NULL, 0);
	}
	fx->pid = 0;
}

void etcdfx_stop(struct etcdfx *fx)
{
	char log[96];
	unsigned int i;

	etcdfx_kill(fx);
	rm_rf(fx->dir);
	snprintf(log, sizeof(log), "%s.log", fx->dir);
	if (fx->dir[0])
		unlink(log);
	fx->dir[0] = 0;
	for (i = 0; i < FX_MAX; i++)
		if (live[i] == fx)
			live[i] = NULL;
}

/* Wait until every running member of @fx (@n) says it is healthy: 0 or -ETIMEDOUT. */
int etcdfx_wait_members(struct etcdfx *fx, unsigned int n)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	unsigned int i, tries;

	for (tries = 0; tries < 200; tries++) {
		bool all = true;

		for (i = 0; i < n && all; i++)
			all = !fx[i].pid || answers(fx[i].client_port);
		if (all)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int etcdfx_start_members(struct etcdfx *fx, unsigned int n)
{
	char cluster[512] = "";
	unsigned int i;
	size_t at = 0;
	int ret = 0;

	for (i = 0; i < n; i++) {
		fx[i].client_port = etcdfx_free_port();
		fx[i].peer_port = etcdfx_free_port();
		snprintf(fx[i].name, sizeof(fx[i].name), "m%u", i + 1);
		at += (size_t)snprintf(cluster + at, sizeof(cluster) - at, "%sm%u=http://127.0.0.1:%d",
				       i ? "," : "", i + 1, fx[i].peer_port);
	}
	for (i = 0; i < n && !ret; i++) {
		snprintf(fx[i].cluster, sizeof(fx[i].cluster), "%s", cluster);
		ret = etcdfx_start(&fx[i]);
	}
	if (!ret)
		ret = etcdfx_wait_members(fx, n);
	if (ret)
		for (i = 0; i < n; i++)
			etcdfx_stop(&fx[i]);
	return ret;
}
