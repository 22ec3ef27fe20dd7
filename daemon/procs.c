// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the kernel's per-process accounting (usage, quota), read in
 * one CLIENT_GET dump: one entry per process, not per open file. Used
 * where the daemon needs several processes at once (the admin list, a
 * pressure round's choice, the metrics) so that a step costs one dump,
 * not one per engine.
 *
 * Processes are named to the kernel by pid (KVACCEL_A_PID: the netlink
 * interface takes nothing else), which a process that exits gives up for
 * reuse. So each connection pins its peer with a pidfd at accept
 * (kvd_proc_pin(): SO_PEERPIDFD where the kernel has it, 6.5+; on older
 * kernels pidfd_open() of SO_PEERCRED's pid, checked to be a live process
 * of the peer's uid), and a request that changes what the kernel keeps
 * for a pid (QUOTA_SET) checks right before it that the pidfd's process is
 * alive and still has that pid (kvd_proc_check()). What is left: the
 * process may exit, and its pid be taken by another, between that check
 * and the kernel's lookup of the pid (microseconds, on the daemon's one
 * thread); and on a kernel without SO_PEERPIDFD, the peer may exit between
 * its connect() and the daemon's accept and its pid be taken by another
 * process of the same user, which the check cannot tell from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvd.h"
#include "kvnl.h"

static int proc_cb(const struct kvnl_msg *m, void *arg)
{
	struct kvd_procs *ps = arg;
	struct kvd_proc *p;
	uint32_t pid;

	if (!kvnl_u32(m, KVACCEL_A_PID, &pid) || kvd_procs_find(ps, (pid_t)pid))
		return 0;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		struct kvd_proc *np = realloc(ps->p, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		ps->p = np;
		ps->cap = cap;
	}
	p = &ps->p[ps->n++];
	p->pid = (pid_t)pid;
	p->usage = 0;
	p->quota = 0;
	kvnl_u64(m, KVACCEL_A_USAGE, &p->usage);
	kvnl_u64(m, KVACCEL_A_QUOTA, &p->quota);
	return 0;
}

int kvd_procs_read(struct kvnl *nl, struct kvd_procs *ps)
{
	ps->n = 0;
	return kvnl_exec(nl, kvnl_request(nl, KVACCEL_CMD_CLIENT_GET, true), proc_cb, ps);
}

const struct kvd_proc *kvd_procs_find(const struct kvd_procs *ps, pid_t pid)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (ps->p[i].pid == pid)
			return &ps->p[i];
	return NULL;
}

void kvd_procs_free(struct kvd_procs *ps)
{
	free(ps->p);
	ps->p = NULL;
	ps->n = ps->cap = 0;
}

int kvd_proc_usage(struct kvd *d, pid_t pid, uint64_t *usage, uint64_t *quota)
{
	struct kvd_procs ps = { 0 };
	const struct kvd_proc *p;
	int ret = kvd_procs_read(d->nl, &ps);

	p = ret ? NULL : kvd_procs_find(&ps, pid);
	*usage = p ? p->usage : 0;
	*quota = p ? p->quota : 0;
	kvd_procs_free(&ps);
	return ret;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77
#endif

static int pidfd_signal0(int pidfd)
{
	/* EPERM: alive, just not ours to signal (a daemon that is not root). */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) && errno != EPERM)
		return -ESRCH;
	return 0;
}

/*
 * Read a small /proc file into @buf (NUL-terminated) with no allocation: the
 * daemon does this per connection, and stdio's buffers fragment its heap.
 */
static int read_small(const char *path, char *buf, size_t size)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return 0;
}

/* The value after "@key:" in /proc text @buf, or -ENOENT. */
static long field(const char *buf, const char *key, int nth)
{
	size_t n = strlen(key);
	const char *p;

	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, n) || p[n] != ':')
			continue;
		p += n + 1;
		while (nth-- > 0) {
			while (*p == ' ' || *p == '\t')
				p++;
			while (*p && *p != ' ' && *p != '\t' && *p != '\n')
				p++;
		}
		return strtol(p, NULL, 10);
	}
	return -ENOENT;
}

/* The pid a pidfd refers to (its fdinfo's Pid: line; -1 once it exited), or -errno. */
static long pidfd_pid(int pidfd)
{
	char path[64], buf[512];
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	ret = read_small(path, buf, sizeof(buf));
	return ret ? ret : field(buf, "Pid", 0);
}

/* The effective uid of process @pid (/proc/PID/status), or -errno. */
static long proc_euid(pid_t pid)
{
	char path[64], buf[4096];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ret = read_small(path, buf, sizeof(buf));
	return ret ? ret : field(buf, "Uid", 1);
}

int kvd_proc_pin(int sock, pid_t pid, uid_t uid, bool *kernel)
{
	socklen_t len = sizeof(int);
	int pidfd;

	*kernel = false;
	if (!getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) && len == sizeof(int)) {
		*kernel = true;
		return pidfd;
	}
	/* Before 6.5 (ENOPROTOOPT): the pid SO_PEERCRED gave, pinned now. */
	if (pid <= 0)
		return -ESRCH;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	/*
	 * The process now behind @pid must be the peer's user: read its uid,
	 * then check that the pidfd's process is still alive (so the pid was
	 * not reused while we read).
	 */
	if (proc_euid(pid) != (long)uid || pidfd_signal0(pidfd)) {
		close(pidfd);
		return -ESRCH;
	}
	return pidfd;
}

int kvd_proc_check(int pidfd, pid_t pid)
{
	if (pidfd < 0 || pidfd_signal0(pidfd) || pidfd_pid(pidfd) != (long)pid)
		return -ESRCH;
	return 0;
}
