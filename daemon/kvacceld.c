// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the node memory daemon (Documentation/kvacceld.rst).
 *
 * Reads and checks the configuration (--check-config says exactly what is
 * wrong, with the line), applies the device limit, default quota and
 * watermarks over generic netlink, rebuilds its view from the kernel's
 * dumps, then serves: the engine socket (engines.c: registration, quotas,
 * hand-offs in handoffs.c), the kernel's events (logged and counted; a
 * pressure event starts a round of release requests, pressure.c), metrics
 * over HTTP (metrics.c), and with [cluster] enabled this node published into
 * etcd with a view of the others (cluster_node.c, cluster.c). One sd-event
 * loop on the main thread; libmicrohttpd and the cluster part run their own. Under systemd it reports readiness with sd_notify and logs
 * to the journal.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "etcd.h"
#include "kvd.h"
#include "kvnl.h"

static const char *prog = "kvacceld";
static bool journal;

/* What a reload parses again: the file and the command line's overrides. */
static struct {
	const char *path;
	struct kvd_config_override over[16];
	unsigned int n;
} args;

int64_t kvd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void kvd_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (journal) {
		sd_journal_printv(prio, fmt, ap);
	} else {
		fprintf(stderr, "%s: ", prog);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--config FILE] [--check-config] [OVERRIDES]\n"
		"  --config FILE        INI file (default /etc/kvacceld.conf when it exists)\n"
		"  --check-config       check the configuration, print what is wrong, exit\n"
		"overrides ([device] / [daemon] keys):\n"
		"  --limit SIZE  --default-quota SIZE  --high-watermark SIZE  --low-watermark SIZE\n"
		"  --socket PATH  --metrics HOST:PORT|off  --admin-group NAME\n"
		"  --release-deadline MS  --handoff-timeout MS\n",
		prog);
}

static int apply(struct kvnl *nl, const struct kvd_config *c)
{
	struct nl_msg *msg;
	int ret;

	if (!c->limit_set && !c->default_quota_set && !c->high_wm_set)
		return 0;
	msg = kvnl_request(nl, KVACCEL_CMD_DEVICE_SET, false);
	if (msg && ((c->limit_set && nla_put_u64(msg, KVACCEL_A_LIMIT, c->limit)) ||
		    (c->default_quota_set &&
		     nla_put_u64(msg, KVACCEL_A_DEFAULT_QUOTA, c->default_quota)) ||
		    (c->high_wm_set && (nla_put_u64(msg, KVACCEL_A_HIGH_WM, c->high_wm) ||
					nla_put_u64(msg, KVACCEL_A_LOW_WM, c->low_wm))))) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = kvnl_exec(nl, msg, NULL, NULL);
	if (ret)
		kvd_log(LOG_ERR, "applying the configuration: %s%s%s", strerror(-ret),
			*kvnl_errmsg(nl) ? ": " : "", kvnl_errmsg(nl));
	return ret;
}

static int handle_event(const struct kvnl_msg *m, void *arg)
{
	const char *name = kvnl_event_name(m->cmd), *comm = kvnl_str(m, KVACCEL_A_COMM);
	uint64_t id = 0, size = 0, usage = 0;
	struct kvd *d = arg;
	struct kvd_conn *c;
	uint8_t pressure = 0;
	uint32_t pid = 0;

	if (!name)
		return 0;
	pthread_mutex_lock(&d->lock);
	d->events[m->cmd]++;
	pthread_mutex_unlock(&d->lock);
	kvnl_u32(m, KVACCEL_A_PID, &pid);
	if (!kvnl_u64(m, KVACCEL_A_CLIENT_ID, &id))
		kvnl_u64(m, KVACCEL_A_REGION_ID, &id);
	kvnl_u64(m, KVACCEL_A_SIZE, &size);
	kvnl_u64(m, KVACCEL_A_USAGE, &usage);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &pressure);
	if (m->cmd == KVACCEL_CMD_PRESSURE_NTF) {
		kvd_log(LOG_INFO, "event pressure=%u usage=%" PRIu64, pressure, usage);
		kvd_pressure_event(d, pressure, usage);
		return 0;
	}
	kvd_log(LOG_INFO, "event %s id=%" PRIu64 " pid=%u comm=%s size=%" PRIu64, name, id, pid,
		comm ? comm : "-", size);
	if (m->cmd == KVACCEL_CMD_CLIENT_CLOSE_NTF) {
		const char *engine = NULL;
		unsigned int i;

		for (c = d->conns; c && !engine; c = c->next)
			if (c->registered && (uint32_t)c->pid == pid)
				engine = c->name;
		for (i = 0; !engine && i < sizeof(d->gone) / sizeof(d->gone[0]); i++)
			if (d->gone[i].pid && (uint32_t)d->gone[i].pid == pid)
				engine = d->gone[i].name;
		if (engine)
			kvd_log(LOG_INFO, "engine %s (pid %u) closed a device file; the kernel freed "
				"what it held there (its process now holds %" PRIu64 " bytes)", engine, pid,
				usage);
	}
	return 0;
}

struct view {
	unsigned int clients, regions;
	uint8_t pressure;
	uint64_t usage;
};

static int count_client(const struct kvnl_msg *m, void *arg)
{
	(void)m;
	((struct view *)arg)->clients++;
	return 0;
}

static int count_region(const struct kvnl_msg *m, void *arg)
{
	(void)m;
	((struct view *)arg)->regions++;
	return 0;
}

static int device_state(const struct kvnl_msg *m, void *arg)
{
	struct view *v = arg;

	kvnl_u8(m, KVACCEL_A_PRESSURE, &v->pressure);
	kvnl_u64(m, KVACCEL_A_USAGE, &v->usage);
	return 0;
}

/* The kernel is the source of truth: (re)build the view from its dumps. */
static int read_view(struct kvd *d, struct view *v)
{
	int ret;

	memset(v, 0, sizeof(*v));
	ret = kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_CLIENT_GET, true), count_client, v);
	if (!ret)
		ret = kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_REGION_GET, true),
				count_region, v);
	if (!ret)
		ret = kvnl_exec(d->nl, kvnl_request(d->nl, KVACCEL_CMD_DEVICE_GET, false),
				device_state, v);
	return ret;
}

static int64_t next_deadline(const struct kvd *d)
{
	int64_t a = kvd_handoff_next_deadline(d), b = kvd_pressure_next_deadline(d);
	int64_t c = kvd_mig_next_deadline(d), e = kvd_cl_next_deadline(d);

	a = a < b ? a : b;
	a = a < e ? a : e;
	return a < c ? a : c;
}

/* The loop's sources besides the socket's (engines.c) and their state. */
struct loop {
	struct kvd *d;
	struct kvnl *ev;
	sd_event_source *events, *deadline, *post;
};

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	(void)arg;
	kvd_log(LOG_INFO, "%s", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct loop *l = arg;
	struct kvd *d = l->d;
	int r = kvnl_wait_events(l->ev, 0, handle_event, d);

	(void)fd;
	(void)revents;
	/* libnl reports a receive overrun (ENOBUFS) as -ENOMEM. */
	if (r == -ENOBUFS || r == -ENOMEM) {
		struct view v;

		/* Events were lost: the dumps say where things stand. */
		if (!read_view(d, &v)) {
			kvd_log(LOG_WARNING, "events lost: view re-read: %u clients, %u regions",
				v.clients, v.regions);
			if (v.pressure != d->pressure)
				kvd_pressure_event(d, v.pressure, v.usage);
		}
	} else if (r < 0 && r != -EINTR && r != -EAGAIN) {
		kvd_log(LOG_ERR, "events: %s", strerror(-r));
		return sd_event_exit(sd_event_source_get_event(s), 1);
	}
	return 0;
}

/* The deadline timer's work is done by on_post(), which follows every dispatch. */
static int on_deadline(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	(void)arg;
	return 0;
}

/*
 * After every event: hand-offs and release requests past their deadlines,
 * the peers marked dead dropped, the timer set to the next deadline.
 */
static int on_post(sd_event_source *s, void *arg)
{
	struct loop *l = arg;
	struct kvd *d = l->d;
	int64_t now = kvd_now(), next;

	(void)s;
	kvd_handoff_expire(d, now);
	kvd_pressure_tick(d, now);
	kvd_mig_tick(d, now);
	kvd_cl_tick(d, now);
	kvd_reap(d);
	next = next_deadline(d);
	if (next == INT64_MAX)
		return sd_event_source_set_enabled(l->deadline, SD_EVENT_OFF);
	/* In microseconds, rounded up: never early. */
	sd_event_source_set_time(l->deadline, (uint64_t)(next < now ? now : next) / 1000 + 1);
	return sd_event_source_set_enabled(l->deadline, SD_EVENT_ONESHOT);
}

/*
 * SIGHUP: the configuration parsed again and what changed applied: the
 * module's settings (one DEVICE_SET), the deadlines (for what starts from
 * now on), the admin group (connections already open included), the
 * metrics endpoint (restarted). The socket path needs a restart: it stays.
 * A configuration that does not parse or check, or that the module
 * refuses, changes nothing.
 */
static void reload(struct kvd *d)
{
	struct kvd_config next, *cur = (struct kvd_config *)d->cfg;
	gid_t gid = 0;
	char err[256];
	int changes;

	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading %s\nMONOTONIC_USEC=%llu",
		   args.path ? args.path : "the configuration",
		   (unsigned long long)(kvd_now() / 1000));
	changes = kvd_config_reparse(cur, &next, args.path, args.over, args.n, err, sizeof(err));
	if (changes < 0) {
		kvd_log(LOG_ERR, "reload: %s: configuration kept", err);
		goto out;
	}
	if ((changes & KVD_CFG_ADMIN_GROUP) && next.admin_group[0]) {
		struct group *g = getgrnam(next.admin_group);

		if (!g) {
			kvd_log(LOG_ERR, "reload: admin_group: no group '%s': configuration kept",
				next.admin_group);
			goto out;
		}
		gid = g->gr_gid;
	}
	if ((changes & KVD_CFG_DEVICE) && apply(d->nl, &next)) {
		kvd_log(LOG_ERR, "reload: the module refused the device settings: "
			"configuration kept");
		goto out;
	}
	if (changes & KVD_CFG_SOCKET)
		kvd_log(LOG_WARNING, "reload: socket %s needs a restart: serving %s until then",
			next.socket_path, cur->socket_path);
	/* The socket being served is the one to remove at stop. */
	memcpy(next.socket_path, cur->socket_path, sizeof(next.socket_path));
	if (changes & KVD_CFG_METRICS)
		kvd_metrics_stop();
	{
		struct kvd_config old = *cur;

		*cur = next;
		if ((changes & KVD_CFG_METRICS) && kvd_metrics_start(d)) {
			kvd_log(LOG_ERR, "reload: metrics %s: keeping %s", next.metrics,
				old.metrics);
			memcpy(cur->metrics, old.metrics, sizeof(cur->metrics));
			kvd_metrics_start(d);
		}
	}
	if (changes & KVD_CFG_CLUSTER) {
		/* The part restarts with the new [cluster]: a new lease, a new view. */
		kvd_cl_stop(d);
		kvd_cl_start(d);
	}
	if (changes & KVD_CFG_ADMIN_GROUP) {
		d->admin_gid = gid;
		d->admin_gid_set = next.admin_group[0] != 0;
		kvd_conns_admin_update(d);
	}
	kvd_log(LOG_INFO, "reloaded%s%s:%s%s%s%s%s%s", args.path ? " " : "",
		args.path ? args.path : "", !changes ? " no change" : "",
		changes & KVD_CFG_DEVICE ? " device" : "",
		changes & KVD_CFG_TIMEOUTS ? " deadlines" : "",
		changes & KVD_CFG_ADMIN_GROUP ? " admin_group" : "",
		changes & KVD_CFG_MIGRATION ? " migration" : "",
		changes & KVD_CFG_CLUSTER ? " cluster" : "");
	if (changes & KVD_CFG_METRICS)
		kvd_log(LOG_INFO, "reloaded: metrics %s", cur->metrics);
out:
	sd_notify(0, "READY=1\nSTATUS=serving");
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	(void)s;
	(void)si;
	reload(((struct loop *)arg)->d);
	return 0;
}

/* WATCHDOG=1 from the loop itself, at half the interval: a stuck loop misses it. */
static int on_watchdog(sd_event_source *s, uint64_t usec, void *arg)
{
	uint64_t *period = arg;

	sd_notify(0, "WATCHDOG=1");
	sd_event_source_set_time(s, usec + *period);
	return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

/*
 * The loop: until SIGTERM or SIGINT (0) or a fatal error (1). The signals
 * it handles are blocked in main() before any thread started.
 */
static int serve(struct kvd *d, struct kvnl *ev)
{
	struct loop l = { .d = d, .ev = ev };
	sd_event_source *wd = NULL;
	uint64_t wd_usec = 0, period = 0, now;
	int ret;

	ret = sd_event_add_signal(d->ev, NULL, SIGTERM, on_stop, &l);
	if (ret >= 0)
		ret = sd_event_add_signal(d->ev, NULL, SIGINT, on_stop, &l);
	if (ret >= 0)
		ret = sd_event_add_io(d->ev, &l.events, kvnl_fd(ev), EPOLLIN, on_events, &l);
	if (ret >= 0)
		ret = sd_event_add_time(d->ev, &l.deadline, CLOCK_MONOTONIC, UINT64_MAX, 1000,
					on_deadline, &l);
	if (ret >= 0)
		ret = sd_event_add_signal(d->ev, NULL, SIGHUP, on_reload, &l);
	if (ret >= 0)
		ret = sd_event_add_post(d->ev, &l.post, on_post, &l);
	if (ret >= 0 && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec) {
		period = wd_usec / 2;
		sd_event_now(d->ev, CLOCK_MONOTONIC, &now);
		ret = sd_event_add_time(d->ev, &wd, CLOCK_MONOTONIC, now + period, period / 10,
					on_watchdog, &period);
		if (ret >= 0)
			kvd_log(LOG_INFO, "watchdog: WATCHDOG=1 every %llu ms",
				(unsigned long long)(period / 1000));
	}
	if (ret < 0) {
		kvd_log(LOG_ERR, "event loop: %s", strerror(-ret));
		return 1;
	}
	/* The deadlines of what started before the loop (a pressure round at start). */
	on_post(NULL, &l);
	ret = sd_event_loop(d->ev);
	if (ret < 0) {
		kvd_log(LOG_ERR, "event loop: %s", strerror(-ret));
		ret = 1;
	}
	sd_event_source_disable_unref(wd);
	sd_event_source_disable_unref(l.post);
	sd_event_source_disable_unref(l.deadline);
	sd_event_source_disable_unref(l.events);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "limit", required_argument, NULL, 'L' },
		{ "default-quota", required_argument, NULL, 'Q' },
		{ "high-watermark", required_argument, NULL, 'H' },
		{ "low-watermark", required_argument, NULL, 'W' },
		{ "socket", required_argument, NULL, 'S' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "admin-group", required_argument, NULL, 'G' },
		{ "release-deadline", required_argument, NULL, 'R' },
		{ "handoff-timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kvd_config_override *over = args.over;
	const char *path = NULL;
	struct kvd d = { .listen_fd = -1, .state_fd = -1 };
	struct kvd_config cfg;
	struct kvnl *nl, *ev;
	int activated = -1, nfds, *rest, nrest = 0;
	char **names = NULL, **rest_names;
	struct view v;
	sigset_t mask;
	int c, i, n = 0, check = 0, ret;
	char err[256];

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		const char *dev = "device", *dmn = "daemon";

		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'L': over[n++] = (struct kvd_config_override) { dev, "limit", optarg }; break;
		case 'Q': over[n++] = (struct kvd_config_override) { dev, "default_quota", optarg }; break;
		case 'H': over[n++] = (struct kvd_config_override) { dev, "high_watermark", optarg }; break;
		case 'W': over[n++] = (struct kvd_config_override) { dev, "low_watermark", optarg }; break;
		case 'S': over[n++] = (struct kvd_config_override) { dmn, "socket", optarg }; break;
		case 'M': over[n++] = (struct kvd_config_override) { dmn, "metrics", optarg }; break;
		case 'G': over[n++] = (struct kvd_config_override) { dmn, "admin_group", optarg }; break;
		case 'R': over[n++] = (struct kvd_config_override) { dmn, "release_deadline_ms", optarg }; break;
		case 'T': over[n++] = (struct kvd_config_override) { dmn, "handoff_timeout_ms", optarg }; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (n == (int)(sizeof(args.over) / sizeof(args.over[0]))) {
			fprintf(stderr, "%s: too many overrides\n", prog);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	kvd_config_defaults(&cfg);
	if (!path && !access("/etc/kvacceld.conf", F_OK))
		path = "/etc/kvacceld.conf";
	if (path && kvd_config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (kvd_config_set(&cfg, over[i].section, over[i].key, over[i].value, err,
				   sizeof(err))) {
			fprintf(stderr, "%s: override: %s\n", prog, err);
			return 1;
		}
	}
	if (kvd_config_check(&cfg, err, sizeof(err))) {
		fprintf(stderr, "%s: %s%s%s\n", prog, path ? path : "", path ? ": " : "", err);
		return 1;
	}
	if (cfg.admin_group[0]) {
		struct group *g = getgrnam(cfg.admin_group);

		if (!g) {
			fprintf(stderr, "%s: %s%sadmin_group: no group '%s'\n", prog,
				path ? path : "", path ? ": " : "", cfg.admin_group);
			return 1;
		}
		d.admin_gid = g->gr_gid;
		d.admin_gid_set = true;
	}

	args.path = path;
	args.n = (unsigned int)n;
	if (check) {
		printf("%s: configuration OK%s%s\n", prog, path ? ": " : "", path ? path : "");
		return 0;
	}

	journal = getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID");
	d.cfg = &cfg;
	pthread_mutex_init(&d.lock, NULL);
	ret = kvnl_open(&nl);
	if (!ret)
		ret = kvnl_open(&ev);
	if (ret) {
		kvd_log(LOG_ERR, "%s", ret == -ENOENT ?
			"the kvaccel module is not loaded" : strerror(-ret));
		return 1;
	}
	d.nl = nl;
	ret = kvnl_subscribe(ev);
	if (ret) {
		kvd_log(LOG_ERR, "joining the events group: %s", strerror(-ret));
		return 1;
	}
	if (apply(nl, &cfg))
		return 1;
	ret = read_view(&d, &v);
	if (ret) {
		kvd_log(LOG_ERR, "reading the kernel's view: %s", strerror(-ret));
		return 1;
	}
	/* Before libmicrohttpd starts its thread, which must not take them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	ret = sd_event_default(&d.ev);
	if (ret < 0) {
		kvd_log(LOG_ERR, "event loop: %s", strerror(-ret));
		return 1;
	}
	/*
	 * From the service manager: the engine socket (kvacceld.socket) and
	 * what the fd store kept for this daemon (hand-offs in flight).
	 */
	nfds = sd_listen_fds_with_names(1, &names);
	if (nfds < 0) {
		kvd_log(LOG_ERR, "LISTEN_FDS: %s", strerror(-nfds));
		nfds = 0;
	}
	rest = calloc(nfds ? nfds : 1, sizeof(*rest));
	rest_names = calloc(nfds ? nfds : 1, sizeof(*rest_names));
	if (!rest || !rest_names)
		return 1;
	d.fdstore = getenv("NOTIFY_SOCKET") != NULL;
	for (i = 0; i < nfds; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (activated < 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0) {
			activated = fd;
			continue;
		}
		rest[nrest] = fd;
		rest_names[nrest++] = names ? names[i] : NULL;
	}
	if (kvd_socket_open(&d, activated) || kvd_metrics_start(&d))
		return 1;
	/* etcd down is no reason not to serve: the part retries on its own. */
	if (etcd_global_init()) {
		kvd_log(LOG_ERR, "libcurl: %s", strerror(ENOMEM));
		return 1;
	}
	kvd_cl_start(&d);
	kvd_handoff_restore(&d, rest, rest_names, nrest);
	if (names) {
		for (i = 0; i < nfds; i++)
			free(names[i]);
		free(names);
	}
	free(rest);
	free(rest_names);
	kvd_log(LOG_INFO, "ready: %u clients, %u regions, usage %" PRIu64 " bytes%s; socket %s%s",
		v.clients, v.regions, v.usage, v.pressure ? ", under pressure" : "",
		cfg.socket_path, d.listen_activated ? " (from the service manager)" : "");
	sd_notify(0, "READY=1");
	if (v.pressure)
		kvd_pressure_event(&d, true, v.usage);

	ret = serve(&d, ev);
	sd_notify(0, "STOPPING=1");
	kvd_log(LOG_INFO, "stopping");
	kvd_metrics_stop();
	kvd_cl_stop(&d);
	kvd_socket_close(&d);
	kvd_handoff_free_all(&d);
	kvd_mig_free_all(&d);
	sd_event_unref(d.ev);
	kvnl_close(ev);
	kvnl_close(nl);
	return ret;
}
