// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the node memory daemon (Documentation/kvacceld.rst).
 *
 * This first step: read and check the configuration (--check-config says
 * exactly what is wrong, with the line), apply the device limit, default
 * quota and watermarks over generic netlink, rebuild the daemon's view of
 * clients and regions from the kernel's dumps, then follow the events
 * group and log each event until SIGTERM or SIGINT. The engine socket,
 * pressure rounds and metrics come next.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kvnl.h"

static const char *prog = "kvacceld";
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--config FILE] [--check-config] [OVERRIDES]\n"
		"  --config FILE        INI file (default /etc/kvacceld.conf when it exists)\n"
		"  --check-config       check the configuration, print what is wrong, exit\n"
		"overrides ([device] / [daemon] keys):\n"
		"  --limit SIZE  --default-quota SIZE  --high-watermark SIZE  --low-watermark SIZE\n"
		"  --socket PATH  --metrics HOST:PORT  --admin-group NAME\n",
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
		fprintf(stderr, "%s: applying the configuration: %s%s%s\n", prog, strerror(-ret),
			*kvnl_errmsg(nl) ? ": " : "", kvnl_errmsg(nl));
	return ret;
}

static int count(const struct kvnl_msg *m, void *arg)
{
	(void)m;
	(*(unsigned int *)arg)++;
	return 0;
}

static int log_event(const struct kvnl_msg *m, void *arg)
{
	const char *name = kvnl_event_name(m->cmd), *comm = kvnl_str(m, KVACCEL_A_COMM);
	uint64_t id = 0, size = 0, usage = 0;
	uint32_t pid = 0;
	uint8_t pressure = 0;

	(void)arg;
	if (!name)
		return 0;
	kvnl_u32(m, KVACCEL_A_PID, &pid);
	if (!kvnl_u64(m, KVACCEL_A_CLIENT_ID, &id))
		kvnl_u64(m, KVACCEL_A_REGION_ID, &id);
	kvnl_u64(m, KVACCEL_A_SIZE, &size);
	kvnl_u64(m, KVACCEL_A_USAGE, &usage);
	kvnl_u8(m, KVACCEL_A_PRESSURE, &pressure);
	if (m->cmd == KVACCEL_CMD_PRESSURE_NTF)
		fprintf(stderr, "%s: event pressure=%u usage=%" PRIu64 "\n", prog, pressure, usage);
	else
		fprintf(stderr, "%s: event %s id=%" PRIu64 " pid=%u comm=%s size=%" PRIu64 "\n",
			prog, name, id, pid, comm ? comm : "-", size);
	return 0;
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct { const char *section, *key, *value; } over[16];
	const char *path = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	struct kvd_config cfg;
	struct kvnl *nl, *ev;
	unsigned int clients = 0, regions = 0;
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
	if (check) {
		printf("%s: configuration OK%s%s\n", prog, path ? ": " : "", path ? path : "");
		return 0;
	}

	ret = kvnl_open(&nl);
	if (!ret)
		ret = kvnl_open(&ev);
	if (ret) {
		fprintf(stderr, "%s: %s\n", prog, ret == -ENOENT ?
			"the kvaccel module is not loaded" : strerror(-ret));
		return 1;
	}
	ret = kvnl_subscribe(ev);
	if (ret) {
		fprintf(stderr, "%s: joining the events group: %s\n", prog, strerror(-ret));
		return 1;
	}
	if (apply(nl, &cfg))
		return 1;
	/* The kernel is the source of truth: rebuild the view from its dumps. */
	ret = kvnl_exec(nl, kvnl_request(nl, KVACCEL_CMD_CLIENT_GET, true), count, &clients);
	if (!ret)
		ret = kvnl_exec(nl, kvnl_request(nl, KVACCEL_CMD_REGION_GET, true), count, &regions);
	if (ret) {
		fprintf(stderr, "%s: reading the kernel's view: %s\n", prog, strerror(-ret));
		return 1;
	}
	fprintf(stderr, "%s: ready: %u clients, %u regions\n", prog, clients, regions);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		ret = kvnl_wait_events(ev, 1000, log_event, NULL);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "%s: events: %s\n", prog, strerror(-ret));
			break;
		}
	}
	fprintf(stderr, "%s: stopping\n", prog);
	kvnl_close(ev);
	kvnl_close(nl);
	return ret < 0 && ret != -EINTR ? 1 : 0;
}
