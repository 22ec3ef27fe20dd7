// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the engine socket (uapi/kvacceld.h, Documentation/kvacceld.rst):
 * accepting connections, identifying peers with SO_PEERCRED, checking every
 * message, registration, quota requests and the admin lists. Hand-offs are
 * in handoffs.c, release answers in pressure.c.
 *
 * Errors: a malformed or out-of-order message gets a KVD_MSG_ERROR with
 * closing = 1 and the connection is closed; a refused request gets an
 * error and the connection stays. The daemon never waits on a peer: the
 * sockets are non-blocking with 1 MiB send buffers; what a full buffer
 * cannot take goes into the connection's output queue (with duplicates of
 * its fds), flushed in order when the socket is writable (EPOLLOUT, on
 * only while the queue is not empty). A peer whose queue passes
 * KVD_OUT_MAX_MSGS messages, KVD_OUT_MAX_BYTES bytes or KVD_OUT_MAX_FDS
 * fds does not read what it is sent: it is marked dead and dropped
 * (kvd_reap()) after the event at hand, its queue's fds closed.
 *
 * The listening socket is the daemon's own (bound at start, removed at
 * stop), or the service manager's (socket activation, sd_listen_fds()):
 * then it outlives the daemon, and engines that connect while the daemon
 * restarts wait in its backlog instead of seeing ENOENT.
 *
 * Tenants (the [tenants] section): an engine name belongs to the users and
 * groups its most specific name rule lists; a REGISTER of a name the peer
 * may not have gets -EACCES, a priority above priority_ceiling from a peer
 * that is not an admin -EPERM. With no name rules, only root, the daemon's
 * own user and the admin group may register (any name). Each user (not
 * root, not the daemon's user) has at most max_connections_per_user
 * connections: one more gets an ERROR (-EMFILE, closing) and is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "kvd.h"
#include "kvdmsg.h"
#include "kvnl.h"

#define MIB	(1ULL << 20)
/* Most connections at once; more are refused (accepted and closed). */
#define KVD_MAX_CONNS	1024

static unsigned int nr_conns;

/* mkdir -p of the directories leading to @path. */
static int make_dirs(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (mkdir(dir, 0755) && errno != EEXIST) {
			kvd_log(LOG_ERR, "socket directory %s: %s", dir, strerror(errno));
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

static int listen_io(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	(void)s;
	(void)fd;
	(void)revents;
	kvd_accept(arg);
	return 0;
}

/* The service manager's socket (@fd, listening): used as it is, left open at stop. */
static int socket_adopt(struct kvd *d, int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -errno;
	memset(&sa, 0, sizeof(sa));
	if (!getsockname(fd, (struct sockaddr *)&sa, &len) && sa.sun_path[0] &&
	    strncmp(sa.sun_path, d->cfg->socket_path, sizeof(sa.sun_path)))
		kvd_log(LOG_WARNING, "socket: the service manager's is %.*s, not the configured "
			"%s: serving the service manager's", (int)sizeof(sa.sun_path),
			sa.sun_path, d->cfg->socket_path);
	d->listen_fd = fd;
	d->listen_activated = true;
	return 0;
}

int kvd_socket_open(struct kvd *d, int activated)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->cfg->socket_path;
	int fd, probe, ret;

	if (activated >= 0) {
		ret = socket_adopt(d, activated);
		if (ret) {
			kvd_log(LOG_ERR, "socket from the service manager: %s", strerror(-ret));
			return ret;
		}
		goto listen;
	}

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = make_dirs(path);
	if (ret)
		return ret;
	/* A socket someone answers on belongs to a running daemon: leave it. */
	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close(probe);
		kvd_log(LOG_ERR, "socket %s: another kvacceld is serving it", path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a daemon that died: nobody listens on it. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128)) {
		int e = errno;

		kvd_log(LOG_ERR, "socket %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	/* Any user may connect; what each may do is decided by SO_PEERCRED. */
	chmod(path, 0666);
	d->listen_fd = fd;
listen:
	d->self_uid = geteuid();
	/* Half the daemon's fds for hand-offs, the rest for connections and itself. */
	{
		struct rlimit rl;

		d->held_fds_max = 512;
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur / 2 > 64)
			d->held_fds_max = (unsigned int)(rl.rlim_cur / 2 < 1u << 20 ?
							 rl.rlim_cur / 2 : 1u << 20);
	}
	if (!d->cfg->tenants.nnames)
		kvd_log(LOG_NOTICE, "no [tenants] name rules: only root, uid %u and the admin "
			"group may register engines", (unsigned int)d->self_uid);
	ret = sd_event_add_io(d->ev, &d->listen_src, d->listen_fd, EPOLLIN, listen_io, d);
	if (ret < 0) {
		kvd_log(LOG_ERR, "socket: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

struct kvd_user *kvd_user_get(struct kvd *d, uid_t uid)
{
	struct kvd_user *u;

	for (u = d->users; u; u = u->next)
		if (u->uid == uid)
			return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	u->limited = uid && uid != d->self_uid;
	u->next = d->users;
	d->users = u;
	return u;
}

void kvd_user_put(struct kvd *d, struct kvd_user *u)
{
	struct kvd_user **p;

	if (!u || u->conns || u->handoffs)
		return;
	for (p = &d->users; *p; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			free(u);
			return;
		}
	}
}

void kvd_refused(struct kvd *d, enum kvd_refusal why)
{
	pthread_mutex_lock(&d->lock);
	d->refused[why]++;
	pthread_mutex_unlock(&d->lock);
}

/* Refuse a connection beyond its user's maximum: say why, then close it. */
static void refuse_conn(struct kvd *d, int fd, struct kvd_user *u)
{
	struct kvd_error m = { 0 };

	kvdmsg_hdr(&m.hdr, KVD_MSG_ERROR, sizeof(m), 0);
	m.error = -EMFILE;
	m.closing = 1;
	snprintf(m.message, sizeof(m.message), "uid %u has %u connections (the most per user)",
		 (unsigned int)u->uid, u->conns);
	kvdmsg_send(fd, &m, NULL, 0);
	close(fd);
	if (!u->warned_conns)
		kvd_log(LOG_WARNING, "uid %u: connection refused: %u connections, the most per user "
			"(max_connections_per_user); further refusals not logged until it has fewer",
			(unsigned int)u->uid, u->conns);
	u->warned_conns = true;
	d->refused[KVD_REFUSED_CONNECTIONS]++;
}

void kvd_socket_close(struct kvd *d)
{
	while (d->conns)
		kvd_conn_drop(d, d->conns, NULL);
	d->listen_src = sd_event_source_disable_unref(d->listen_src);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		/* The service manager's socket stays, for the next daemon. */
		if (!d->listen_activated)
			unlink(d->cfg->socket_path);
		d->listen_fd = -1;
	}
}

/* Is the peer's process in the admin group (its gid or supplementary groups)? */
static bool in_admin_group(const struct kvd *d, int fd, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	size_t i;

	if (!d->admin_gid_set)
		return false;
	if (gid == d->admin_gid)
		return true;
	/* The connecting process's own groups, not the group database's. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == d->admin_gid)
			return true;
	return false;
}

static int flush(struct kvd_conn *c);

static int conn_io(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct kvd_conn *c = arg;

	(void)s;
	(void)fd;
	if ((revents & EPOLLOUT) && !c->dead)
		flush(c);
	/* Input also reads the end of the stream (EPOLLHUP) and drops the connection. */
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		kvd_conn_input(c->d, c);
	return 0;
}

void kvd_conns_admin_update(struct kvd *d)
{
	struct kvd_conn *c;

	pthread_mutex_lock(&d->lock);
	for (c = d->conns; c; c = c->next)
		c->admin = !c->uid || in_admin_group(d, c->fd, c->gid);
	pthread_mutex_unlock(&d->lock);
}

void kvd_accept(struct kvd *d)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct kvd_conn *c;
	struct kvd_user *u;
	int fd, ret;

	fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (nr_conns >= KVD_MAX_CONNS ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&d->lock);
	u = kvd_user_get(d, cred.uid);
	if (u && u->limited && u->conns >= d->cfg->tenants.max_conns) {
		refuse_conn(d, fd, u);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (u)
		u->conns++;	/* held from here: dropped on every path below */
	pthread_mutex_unlock(&d->lock);
	c = u ? calloc(1, sizeof(*c)) : NULL;
	if (!c)
		goto err_user;
	c->d = d;
	c->fd = fd;
	c->out_tail = &c->out;
	c->pidfd = -1;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->user = u;
	{
		gid_t groups[KVD_PEER_GROUPS_MAX];
		socklen_t glen = sizeof(groups);
		size_t i, n = 0;

		/*
		 * The connecting process's own groups, not the group database's
		 * (more than KVD_PEER_GROUPS_MAX: ERANGE, its gid only).
		 */
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen))
			n = glen / sizeof(gid_t);
		c->groups = malloc((n + 1) * sizeof(gid_t));
		if (!c->groups)
			goto err_free;
		c->groups[c->ngroups++] = cred.gid;
		for (i = 0; i < n; i++)
			c->groups[c->ngroups++] = groups[i];
	}
	c->admin = !cred.uid || in_admin_group(d, fd, cred.gid);
	/* Its process, pinned: quotas name it by pid (procs.c). */
	ret = kvd_proc_pin(fd, cred.pid, cred.uid, &c->pidfd_kernel);
	c->pidfd = ret;
	if (ret < 0)
		kvd_log(LOG_INFO, "connection of pid %d uid %u: its process could not be pinned (%s): "
			"it gets no quota", (int)cred.pid, (unsigned int)cred.uid, strerror(-ret));
	{
		int size = 1 << 20;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	if (sd_event_add_io(d->ev, &c->src, fd, EPOLLIN, conn_io, c) < 0)
		goto err_free;
	pthread_mutex_lock(&d->lock);
	c->next = d->conns;
	d->conns = c;
	d->conns_total++;
	nr_conns++;
	pthread_mutex_unlock(&d->lock);
	return;

err_free:
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c->groups);
	free(c);
err_user:
	close(fd);
	pthread_mutex_lock(&d->lock);
	if (u) {
		u->conns--;
		kvd_user_put(d, u);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Called with d->lock held. */
static void unlink_conn(struct kvd *d, struct kvd_conn *c)
{
	struct kvd_conn **p;

	for (p = &d->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

void kvd_conn_drop(struct kvd *d, struct kvd_conn *c, const char *why)
{
	uint64_t usage = 0, quota = 0;
	bool asked = c->release_round;

	if (c->registered) {
		d->gone[d->gone_next].pid = c->pid;
		memcpy(d->gone[d->gone_next].name, c->name, KVD_NAME_MAX);
		d->gone_next = (d->gone_next + 1) % (sizeof(d->gone) / sizeof(d->gone[0]));
	}
	if (c->registered && why) {
		kvd_proc_usage(d, c->pid, &usage, &quota);
		kvd_log(LOG_INFO, "engine %s (pid %d) disconnected (%s); its process holds %llu bytes",
			c->name, (int)c->pid, why, (unsigned long long)usage);
	}
	c->src = sd_event_source_disable_unref(c->src);
	close(c->fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	pthread_mutex_lock(&d->lock);
	/* What it was never sent dies with it, fds included. */
	while (c->out) {
		struct kvd_out *o = c->out;

		c->out = o->next;
		kvdmsg_close_fds(o->fds, o->nfds);
		free(o);
	}
	unlink_conn(d, c);
	nr_conns--;
	if (c->registered)
		kvd_handoff_conn_gone(d, c);
	c->user->conns--;
	if (c->user->conns < d->cfg->tenants.max_conns)
		c->user->warned_conns = false;
	kvd_user_put(d, c->user);
	pthread_mutex_unlock(&d->lock);
	if (c->registered)
		kvd_mig_conn_gone(d, c->name);
	free(c->groups);
	free(c);
	if (asked)
		kvd_pressure_conn_gone(d);
}

static void mark_dead(struct kvd_conn *c, const char *why)
{
	c->dead = true;
	c->dead_why = why;
}

/* Queue a copy of @msg with duplicates of @fds; 0, or -errno (the peer is marked dead). */
static int enqueue(struct kvd_conn *c, const struct kvd_hdr *h, const int *fds,
		   unsigned int nfds)
{
	struct kvd *d = c->d;
	struct kvd_out *o;
	unsigned int i;

	if (c->out_msgs + 1 > KVD_OUT_MAX_MSGS || c->out_bytes + h->size > KVD_OUT_MAX_BYTES ||
	    c->out_fds + nfds > KVD_OUT_MAX_FDS) {
		kvd_log(LOG_WARNING, "connection of pid %d%s%s does not read its socket: %u messages "
			"(%zu bytes, %u fds) queued for it; dropping it", (int)c->pid,
			c->registered ? ", engine " : "", c->registered ? c->name : "",
			c->out_msgs, c->out_bytes, c->out_fds);
		pthread_mutex_lock(&d->lock);
		d->slow_peers_dropped++;
		pthread_mutex_unlock(&d->lock);
		mark_dead(c, "not reading its socket");
		return -ENOBUFS;
	}
	o = malloc(sizeof(*o) + ((h->size + 7) & ~(size_t)7));
	if (!o) {
		mark_dead(c, "out of memory for its output");
		return -ENOMEM;
	}
	o->next = NULL;
	o->size = h->size;
	memcpy(o->msg, h, h->size);
	for (i = 0; i < nfds; i++) {
		o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (o->fds[i] < 0) {
			kvdmsg_close_fds(o->fds, i);
			free(o);
			mark_dead(c, "out of fds for its output");
			return -EMFILE;
		}
	}
	o->nfds = nfds;
	if (!c->out)
		sd_event_source_set_io_events(c->src, EPOLLIN | EPOLLOUT);
	pthread_mutex_lock(&d->lock);
	*c->out_tail = o;
	c->out_tail = &o->next;
	c->out_msgs++;
	c->out_bytes += o->size;
	c->out_fds += nfds;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Send what the queue holds, in order, until the socket is full again. */
static int flush(struct kvd_conn *c)
{
	struct kvd *d = c->d;
	int ret = 0;

	while (c->out) {
		struct kvd_out *o = c->out;

		ret = kvdmsg_send(c->fd, o->msg, o->fds, o->nfds);
		if (ret == -EAGAIN)
			return 0;
		if (ret) {
			kvd_log(LOG_INFO, "connection of pid %d: sending: %s", (int)c->pid,
				strerror(-ret));
			mark_dead(c, "sending to it failed");
			return ret;
		}
		pthread_mutex_lock(&d->lock);
		c->out = o->next;
		if (!c->out)
			c->out_tail = &c->out;
		c->out_msgs--;
		c->out_bytes -= o->size;
		c->out_fds -= o->nfds;
		pthread_mutex_unlock(&d->lock);
		kvdmsg_close_fds(o->fds, o->nfds);
		free(o);
	}
	sd_event_source_set_io_events(c->src, EPOLLIN);
	return 0;
}

int kvd_send(struct kvd_conn *c, const void *msg, const int *fds, unsigned int nfds)
{
	int ret;

	if (c->dead)
		return -EPIPE;
	/* Behind queued messages: after them, in order. */
	if (c->out)
		return enqueue(c, msg, fds, nfds);
	ret = kvdmsg_send(c->fd, msg, fds, nfds);
	if (ret == -EAGAIN)
		return enqueue(c, msg, fds, nfds);
	if (ret) {
		kvd_log(LOG_INFO, "connection of pid %d: sending: %s", (int)c->pid,
			strerror(-ret));
		mark_dead(c, "sending to it failed");
	}
	return ret;
}

void kvd_reap(struct kvd *d)
{
	struct kvd_conn *c, *next;
	bool freed_queue = false;

	for (c = d->conns; c; c = next) {
		next = c->next;
		if (!c->dead)
			continue;
		freed_queue |= c->out_bytes > 0;
		kvd_conn_drop(d, c, c->dead_why);
	}
	/*
	 * A dropped peer's output queue can be a megabyte of small blocks:
	 * give the memory back (a long-running daemon should not keep the
	 * high-water mark of its worst peer).
	 */
	if (freed_queue)
		malloc_trim(0);
}

struct kvd_conn *kvd_conn_by_name(struct kvd *d, const char *name)
{
	struct kvd_conn *c;

	for (c = d->conns; c; c = c->next)
		if (c->registered && !c->dead && !strcmp(c->name, name))
			return c;
	return NULL;
}

int kvd_send_error(struct kvd *d, struct kvd_conn *c, uint64_t seq, unsigned int type,
		   int error, bool closing, const char *fmt, ...)
{
	struct kvd_error m = { 0 };
	va_list ap;

	(void)d;
	kvdmsg_hdr(&m.hdr, KVD_MSG_ERROR, sizeof(m), seq);
	m.error = error;
	m.type = (uint16_t)(type <= KVD_MSG_TYPE_MAX ? type : 0);
	m.closing = closing;
	va_start(ap, fmt);
	vsnprintf(m.message, sizeof(m.message), fmt, ap);
	va_end(ap);
	return kvd_send(c, &m, NULL, 0);
}

/* May @c's peer register @name? */
static bool name_allowed(const struct kvd *d, const struct kvd_conn *c, const char *name)
{
	const struct kvd_tenants *t = &d->cfg->tenants;
	const struct kvd_name_rule *r;

	if (!c->uid || c->uid == d->self_uid)
		return true;
	/* No rules: the old behaviour, for those who could administer the daemon anyway. */
	if (!t->nnames)
		return c->admin;
	r = kvd_tenant_rule(t, name);
	return r && kvd_rule_admits(r, c->uid, c->groups, c->ngroups);
}

static void on_register(struct kvd *d, struct kvd_conn *c, const struct kvd_register *m)
{
	struct kvd_registered r = { 0 };
	uint64_t usage = 0, quota = 0;

	if (!name_allowed(d, c, m->name)) {
		kvd_log(LOG_WARNING, "pid %d uid %u: REGISTER as '%s' refused: the name is not "
			"this user's ([tenants] name rules)", (int)c->pid, (unsigned int)c->uid,
			m->name);
		kvd_refused(d, KVD_REFUSED_NAME);
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EACCES, false,
			       "the engine name '%s' is not allowed for uid %u", m->name,
			       (unsigned int)c->uid);
		return;
	}
	if (m->priority > d->cfg->tenants.priority_ceiling && !c->admin) {
		kvd_log(LOG_WARNING, "pid %d uid %u: REGISTER as '%s' refused: priority %u is above "
			"the ceiling %u (admins only)", (int)c->pid, (unsigned int)c->uid, m->name,
			m->priority, d->cfg->tenants.priority_ceiling);
		kvd_refused(d, KVD_REFUSED_PRIORITY);
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EPERM, false,
			       "priority %u is above %u: admins only", m->priority,
			       d->cfg->tenants.priority_ceiling);
		return;
	}
	if (kvd_conn_by_name(d, m->name)) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EEXIST, false,
			       "an engine named '%s' is registered", m->name);
		return;
	}
	/* The kernel keeps the quota across daemon restarts: take it from there. */
	kvd_proc_usage(d, c->pid, &usage, &quota);
	pthread_mutex_lock(&d->lock);
	c->registered = true;
	c->id = ++d->next_conn_id;
	memcpy(c->name, m->name, sizeof(c->name));
	c->priority = m->priority;
	c->quota = quota;
	/* Fields an older engine's REGISTER lacks read as 0: revision 0, no features. */
	c->revision = m->revision;
	c->features = m->features & KVD_FEATURES;
	c->incarnation = m->incarnation;
	pthread_mutex_unlock(&d->lock);
	/* Revision 0 takes nothing but its own 32-byte reply. */
	kvdmsg_hdr(&r.hdr, KVD_MSG_REGISTERED,
		   c->revision ? sizeof(r) : offsetof(struct kvd_registered, revision), m->hdr.seq);
	r.engine_id = c->id;
	r.quota = quota;
	r.revision = KVD_PROTO_REVISION;
	r.features = c->features;
	kvd_send(c, &r, NULL, 0);
	kvd_log(LOG_INFO, "engine %s registered: pid %d uid %u priority %u quota %llu "
		"revision %u features 0x%llx", c->name, (int)c->pid, (unsigned int)c->uid,
		c->priority, (unsigned long long)quota, c->revision,
		(unsigned long long)c->features);
	kvd_handoff_offer_waiting(d, c);
}

static int limit_cb(const struct kvnl_msg *m, void *arg)
{
	kvnl_u64(m, KVACCEL_A_LIMIT, arg);
	return 0;
}

static void on_quota(struct kvd *d, struct kvd_conn *c, const struct kvd_quota *m)
{
	struct kvd_quota r = { 0 };
	uint64_t limit = 0, others = 0;
	struct kvd_conn *o;
	struct nl_msg *req;
	int ret;

	if (!m->bytes || m->bytes % MIB) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -EINVAL, false,
			       "quota: %llu bytes is not a positive whole number of MiB",
			       (unsigned long long)m->bytes);
		return;
	}
	ret = kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_DEVICE_GET, false), limit_cb,
			&limit);
	if (ret) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, ret, false,
			       "quota: reading the device limit: %s", strerror(-ret));
		return;
	}
	/* Quotas are per process: count each other process once. */
	for (o = d->conns; o; o = o->next) {
		struct kvd_conn *p;

		if (!o->registered || o->pid == c->pid)
			continue;
		for (p = d->conns; p != o; p = p->next)
			if (p->registered && p->pid == o->pid)
				break;
		if (p == o)
			others += o->quota;
	}
	if (limit && (m->bytes > limit || others > limit - m->bytes)) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, -ENOSPC, false,
			       "quota: %llu bytes asked, %llu of the %llu-byte limit promised to others",
			       (unsigned long long)m->bytes, (unsigned long long)others,
			       (unsigned long long)limit);
		return;
	}
	/*
	 * The kernel takes a pid: make sure it is still this engine's process,
	 * right before asking (procs.c says what race is left).
	 */
	ret = kvd_proc_check(c->pidfd, c->pid);
	if (ret) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, ret, false,
			       "quota: the engine's process is gone or cannot be pinned");
		return;
	}
	req = kvnl_request(d->nl, KVACCEL_CMD_QUOTA_SET, false);
	if (req && (nla_put_u32(req, KVACCEL_A_PID, (uint32_t)c->pid) ||
		    nla_put_u64(req, KVACCEL_A_QUOTA, m->bytes))) {
		nlmsg_free(req);
		req = NULL;
	}
	ret = kvnl_exec(d->nl, req, NULL, NULL);
	if (ret) {
		kvd_send_error(d, c, m->hdr.seq, m->hdr.type, ret, false, "quota: %s%s%s",
			       ret == -ESRCH ? "the process has not opened the kvaccel device" :
			       strerror(-ret), *kvnl_errmsg(d->nl) ? ": " : "",
			       kvnl_errmsg(d->nl));
		return;
	}
	pthread_mutex_lock(&d->lock);
	c->quota = m->bytes;
	pthread_mutex_unlock(&d->lock);
	kvdmsg_hdr(&r.hdr, KVD_MSG_QUOTA_GRANTED, sizeof(r), m->hdr.seq);
	r.bytes = m->bytes;
	kvd_send(c, &r, NULL, 0);
	kvd_log(LOG_INFO, "engine %s: quota %llu bytes", c->name, (unsigned long long)m->bytes);
}

static void list_engines(struct kvd *d, struct kvd_conn *c, uint64_t seq)
{
	struct kvd_procs ps = { 0 };
	struct kvd_hdr end;
	struct kvd_conn *e;

	/* One dump for every engine's usage and quota. */
	kvd_procs_read(d->nl, &ps);
	for (e = d->conns; e; e = e->next) {
		const struct kvd_proc *p = kvd_procs_find(&ps, e->pid);
		struct kvd_engine_info m = { 0 };

		if (!e->registered)
			continue;
		kvdmsg_hdr(&m.hdr, KVD_MSG_ENGINE_INFO, sizeof(m), seq);
		memcpy(m.name, e->name, sizeof(m.name));
		m.engine_id = e->id;
		m.pid = (uint32_t)e->pid;
		m.uid = e->uid;
		m.priority = e->priority;
		m.usage = p ? p->usage : 0;
		m.quota = p ? p->quota : 0;
		m.releases_asked = e->releases_asked;
		m.releases_ignored = e->releases_ignored;
		if (kvd_send(c, &m, NULL, 0))
			goto out;
	}
	kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), seq);
	kvd_send(c, &end, NULL, 0);
out:
	kvd_procs_free(&ps);
}

static void list_handoffs(struct kvd *d, struct kvd_conn *c, uint64_t seq)
{
	int64_t now = kvd_now();
	struct kvd_xfer *x;
	struct kvd_hdr end;

	for (x = d->xfers; x; x = x->next) {
		struct kvd_handoff_info m = { 0 };
		uint32_t i;

		kvdmsg_hdr(&m.hdr, KVD_MSG_HANDOFF_INFO, sizeof(m), seq);
		memcpy(m.from, x->from, sizeof(m.from));
		memcpy(m.to, x->to, sizeof(m.to));
		m.id = x->id;
		m.tag = x->tag;
		m.count = x->count;
		m.state = x->offered;
		for (i = 0; i < x->count; i++)
			m.bytes += x->objs[i].size;
		m.age_ms = (uint64_t)(now - x->queued) / 1000000;
		if (kvd_send(c, &m, NULL, 0))
			return;
	}
	kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), seq);
	kvd_send(c, &end, NULL, 0);
}

/* A protocol error: say what, count it, close. */
static bool protocol_error(struct kvd *d, struct kvd_conn *c, uint64_t seq, unsigned int type,
			   int error, const char *what)
{
	kvd_send_error(d, c, seq, type, error, true, "%s", what);
	pthread_mutex_lock(&d->lock);
	d->protocol_errors++;
	pthread_mutex_unlock(&d->lock);
	kvd_log(LOG_WARNING, "connection of pid %d%s%s: %s: closed", (int)c->pid,
		c->registered ? ", engine " : "", c->registered ? c->name : "", what);
	kvd_conn_drop(d, c, NULL);
	return false;
}

bool kvd_conn_input(struct kvd *d, struct kvd_conn *c)
{
	union kvdmsg_buf buf;
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds, type;
	const char *why;
	uint64_t seq;
	long n;
	int ret;

	n = kvdmsg_recv(c->fd, &buf, fds, &nfds, MSG_DONTWAIT);
	if (n == -EAGAIN)
		return true;
	if (n == -EMSGSIZE)
		return protocol_error(d, c, 0, 0, -EMSGSIZE, "message or fds too large");
	if (n == -EPROTO)
		return protocol_error(d, c, 0, 0, -EPROTO, "a packet of 0 bytes with fds");
	if (n <= 0) {
		kvd_conn_drop(d, c, n ? strerror((int)-n) : "closed");
		return false;
	}
	ret = kvdmsg_check(&buf, (size_t)n, nfds, &why);
	seq = (size_t)n >= sizeof(buf.hdr) ? buf.hdr.seq : 0;
	type = (size_t)n >= sizeof(buf.hdr) ? buf.hdr.type : 0;
	if (ret) {
		kvdmsg_close_fds(fds, nfds);
		return protocol_error(d, c, seq, type, ret, why);
	}
	/* Only a registered engine's HANDOFF keeps its fds (handoffs.c owns them). */
	if (type != KVD_MSG_HANDOFF || !c->registered) {
		kvdmsg_close_fds(fds, nfds);
		nfds = 0;
	}
	if (!c->registered && type != KVD_MSG_REGISTER && type != KVD_MSG_LIST_ENGINES &&
	    type != KVD_MSG_LIST_HANDOFFS && type != KVD_MSG_MIGRATE_REQ &&
	    type != KVD_MSG_DRAIN && type != KVD_MSG_LIST_MIGRATIONS &&
	    type != KVD_MSG_LIST_CLUSTER)
		return protocol_error(d, c, seq, type, -EPROTO, "register first");

	switch (type) {
	case KVD_MSG_REGISTER:
		if (c->registered)
			return protocol_error(d, c, seq, type, -EPROTO, "registered already");
		on_register(d, c, (const void *)&buf);
		break;
	case KVD_MSG_QUOTA:
		on_quota(d, c, (const void *)&buf);
		break;
	case KVD_MSG_RELEASED:
		ret = kvd_pressure_released(d, c, (const void *)&buf);
		if (ret)
			return protocol_error(d, c, seq, type, ret,
					      "RELEASED answers no release request");
		break;
	case KVD_MSG_HANDOFF:
		ret = kvd_handoff_queue(d, c, (const void *)&buf, fds);
		if (ret == -EPROTO)
			return protocol_error(d, c, seq, type, ret, "bad hand-off");
		break;
	case KVD_MSG_HANDOFF_ACK:
		ret = kvd_handoff_ack(d, c, (const void *)&buf);
		if (ret == -EPROTO)
			return protocol_error(d, c, seq, type, ret,
					      "HANDOFF_ACK names no hand-off offered to this engine");
		break;
	case KVD_MSG_LOAD:
		kvd_mig_load(d, c, (const void *)&buf);
		break;
	case KVD_MSG_XFER_ADDR:
		if (!(c->features & KVD_FEAT_XMIGRATION))
			return protocol_error(d, c, seq, type, -EPROTO,
					      "XFER_ADDR without KVD_FEAT_XMIGRATION");
		pthread_mutex_lock(&d->lock);
		memcpy(c->xfer_addr, ((const struct kvd_xfer_addr *)&buf)->addr, sizeof(c->xfer_addr));
		pthread_mutex_unlock(&d->lock);
		kvd_log(LOG_INFO, "engine %s: takes other nodes' migrations at %s", c->name,
			c->xfer_addr[0] ? c->xfer_addr : "(nowhere now)");
		break;
	case KVD_MSG_MIGRATE_STARTED:
		if (kvd_mig_started(d, c, (const void *)&buf))
			return protocol_error(d, c, seq, type, -EPROTO,
					      "MIGRATE_STARTED names no migration asked of this engine");
		break;
	case KVD_MSG_MIGRATED:
		if (kvd_mig_migrated(d, c, (const void *)&buf))
			return protocol_error(d, c, seq, type, -EPROTO,
					      "MIGRATED names no migration of this engine");
		break;
	case KVD_MSG_LIST_ENGINES:
	case KVD_MSG_LIST_HANDOFFS:
	case KVD_MSG_MIGRATE_REQ:
	case KVD_MSG_DRAIN:
	case KVD_MSG_LIST_MIGRATIONS:
	case KVD_MSG_LIST_CLUSTER:
		if (!c->admin) {
			kvd_send_error(d, c, seq, type, -EPERM, false,
				       "admin requests need root or the admin group");
			break;
		}
		if (type == KVD_MSG_LIST_ENGINES)
			list_engines(d, c, seq);
		else if (type == KVD_MSG_LIST_HANDOFFS)
			list_handoffs(d, c, seq);
		else if (type == KVD_MSG_MIGRATE_REQ)
			kvd_mig_request(d, c, (const void *)&buf);
		else if (type == KVD_MSG_DRAIN)
			kvd_mig_drain(d, c, (const void *)&buf);
		else if (type == KVD_MSG_LIST_CLUSTER)
			kvd_cl_list(d, c, seq);
		else
			kvd_mig_list(d, c, seq);
		break;
	default:
		/* A type only the daemon sends. */
		return protocol_error(d, c, seq, type, -EPROTO,
				      "message type is not a request");
	}
	return true;
}
