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
 * over HTTP (metrics.c). One epoll loop on the main thread; libmicrohttpd
 * runs its own. Under systemd it reports readiness with sd_notify and logs
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
#include <sys/signalfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "kvd.h"
#include "kvnl.h"

static const char *prog = "kvacceld";
static bool journal;

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

	return a < b ? a : b;
}

/*
 * The epoll loop: until SIGTERM or SIGINT (0) or a fatal error (1). @stop
 * holds those two, blocked in main() before any thread started.
 */
static int serve(struct kvd *d, struct kvnl *ev, const sigset_t *stop)
{
	struct epoll_event e = { .events = EPOLLIN };
	int sfd, ret = 0;

	sfd = signalfd(-1, stop, SFD_CLOEXEC | SFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || d->epfd < 0)
		return 1;
	e.data.ptr = &sfd;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, sfd, &e);
	e.data.ptr = ev;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, kvnl_fd(ev), &e);
	e.data.ptr = d;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->listen_fd, &e);

	for (;;) {
		struct epoll_event evs[32];
		int64_t now = kvd_now(), next = next_deadline(d);
		int timeout = next == INT64_MAX ? -1 :
			      next <= now ? 0 : (int)((next - now) / 1000000 + 1);
		int i, n;

		n = epoll_wait(d->epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			kvd_log(LOG_ERR, "epoll: %s", strerror(errno));
			ret = 1;
			break;
		}
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &sfd) {
				close(sfd);
				close(d->epfd);
				return ret;
			} else if (p == ev) {
				int r = kvnl_wait_events(ev, 0, handle_event, d);

				/* libnl reports a receive overrun (ENOBUFS) as -ENOMEM. */
				if (r == -ENOBUFS || r == -ENOMEM) {
					struct view v;

					/* Events were lost: the dumps say where things stand. */
					if (!read_view(d, &v)) {
						kvd_log(LOG_WARNING, "events lost: view re-read: "
							"%u clients, %u regions", v.clients,
							v.regions);
						if (v.pressure != d->pressure)
							kvd_pressure_event(d, v.pressure, v.usage);
					}
				} else if (r < 0 && r != -EINTR && r != -EAGAIN) {
					kvd_log(LOG_ERR, "events: %s", strerror(-r));
					ret = 1;
					goto out;
				}
			} else if (p == d) {
				kvd_accept(d);
			} else {
				kvd_conn_input(d, p);
			}
		}
		now = kvd_now();
		kvd_handoff_expire(d, now);
		kvd_pressure_tick(d, now);
		kvd_reap(d);
	}
out:
	close(sfd);
	close(d->epfd);
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
	struct { const char *section, *key, *value; } over[16];
	const char *path = NULL;
	struct kvd d = { .listen_fd = -1, .epfd = -1 };
	struct kvd_config cfg;
	struct kvnl *nl, *ev;
	struct view v;
	sigset_t mask;
	int c, i, n = 0, check = 0, ret;
	char err[256];

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		const char *dev = "device", *dmn = "daemon";

		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'L': over[n++] = (typeof(over[0])) { dev, "limit", optarg }; break;
		case 'Q': over[n++] = (typeof(over[0])) { dev, "default_quota", optarg }; break;
		case 'H': over[n++] = (typeof(over[0])) { dev, "high_watermark", optarg }; break;
		case 'W': over[n++] = (typeof(over[0])) { dev, "low_watermark", optarg }; break;
		case 'S': over[n++] = (typeof(over[0])) { dmn, "socket", optarg }; break;
		case 'M': over[n++] = (typeof(over[0])) { dmn, "metrics", optarg }; break;
		case 'G': over[n++] = (typeof(over[0])) { dmn, "admin_group", optarg }; break;
		case 'R': over[n++] = (typeof(over[0])) { dmn, "release_deadline_ms", optarg }; break;
		case 'T': over[n++] = (typeof(over[0])) { dmn, "handoff_timeout_ms", optarg }; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (n == (int)(sizeof(over) / sizeof(over[0]))) {
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
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if (kvd_socket_open(&d) || kvd_metrics_start(&d))
		return 1;
	kvd_log(LOG_INFO, "ready: %u clients, %u regions, usage %" PRIu64 " bytes%s; socket %s",
		v.clients, v.regions, v.usage, v.pressure ? ", under pressure" : "",
		cfg.socket_path);
	sd_notify(0, "READY=1");
	if (v.pressure)
		kvd_pressure_event(&d, true, v.usage);

	ret = serve(&d, ev, &mask);
	sd_notify(0, "STOPPING=1");
	kvd_log(LOG_INFO, "stopping");
	kvd_metrics_stop();
	kvd_socket_close(&d);
	kvd_handoff_free_all(&d);
	kvnl_close(ev);
	kvnl_close(nl);
	return ret;
}
