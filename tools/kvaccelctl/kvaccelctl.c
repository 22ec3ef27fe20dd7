// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccelctl - inspect and administer kvaccel over its generic netlink
 * family, and the node daemon kvacceld over its engine socket
 * (Documentation/kvaccelctl.rst).
 *
 *   kvaccelctl [--json] status | clients | regions
 *   kvaccelctl limit set SIZE | default-quota set SIZE | quota set PID SIZE
 *   kvaccelctl watermarks set HIGH LOW | watermarks off
 *   kvaccelctl [--json] watch [--count N] [--timeout SECONDS]
 *   kvaccelctl [--json] engines | handoffs | migrations [--socket PATH]
 *   kvaccelctl [--json] migrate ENGINE REQ TO | drain [--cancel] ENGINE
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "kvdmsg.h"
#include "kvnl.h"
#include "kvsize.h"
#include "render.h"

static const char *prog = "kvaccelctl";
static bool opt_json;
static const char *opt_socket;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--json] [--socket PATH] COMMAND\n"
		"  status                     the device: limit, usage, watermarks, counters\n"
		"  clients                    open files of the device (yours, or all as admin)\n"
		"  regions                    regions alive (yours, or all as admin)\n"
		"  limit set SIZE             device limit (0: half of RAM)        [admin]\n"
		"  default-quota set SIZE     quota of processes without one (0: none) [admin]\n"
		"  quota set PID SIZE         a process's quota (0: the default)   [admin]\n"
		"  watermarks set HIGH LOW    pressure watermarks                  [admin]\n"
		"  watermarks off             no pressure events                   [admin]\n"
		"  watch [--count N] [--timeout SECONDS]\n"
		"                             print events as they happen          [admin]\n"
		"  engines [--socket PATH]    engines registered with kvacceld     [daemon admin]\n"
		"  handoffs [--socket PATH]   kvacceld's hand-offs in flight       [daemon admin]\n"
		"  migrations [--socket PATH] live migrations, recent ones, drains [daemon admin]\n"
		"  migrate ENGINE REQ TO      move ENGINE's request REQ to TO (NODE/ENGINE:\n"
		"                             another node's, from the cluster view) [daemon admin]\n"
		"  drain [--cancel] ENGINE    migrate ENGINE's requests away, then\n"
		"                             ask it to exit                       [daemon admin]\n"
		"  cluster [--socket PATH]    kvacceld's view of the cluster's nodes\n"
		"                             and engines (through etcd)           [daemon admin]\n"
		"SIZE: bytes with an optional binary suffix K, M, G, T (KiB, MiB, ... too).\n"
		"--json prints JSON (one object per line for watch).\n"
		"--socket: kvacceld's socket (else $KVACCELD_SOCKET, else %s).\n"
		"[daemon admin]: root or a member of kvacceld's admin_group.\n",
		prog, KVD_SOCKET_PATH);
}

static int fail(const char *what, int err, struct kvnl *nl)
{
	const char *ext = nl ? kvnl_errmsg(nl) : "";

	if (err == -EPERM)
		fprintf(stderr, "%s: %s: permission denied (needs CAP_NET_ADMIN)\n",
			prog, what);
	else
		fprintf(stderr, "%s: %s: %s%s%s\n", prog, what, strerror(-err),
			*ext ? ": " : "", ext);
	return 1;
}

static int connect_family(struct kvnl **nl)
{
	int ret = kvnl_open(nl);

	if (ret == -ENOENT)
		fprintf(stderr, "%s: the kvaccel module is not loaded "
			"(no generic netlink family \"%s\")\n", prog, KVACCEL_GENL_NAME);
	else if (ret)
		fprintf(stderr, "%s: cannot open generic netlink: %s\n", prog,
			strerror(-ret));
	return ret;
}

static int arg_size(const char *s, uint64_t *out)
{
	if (kvsize_parse(s, out)) {
		fprintf(stderr, "%s: bad size '%s' (bytes, or a number with K, M, G, T)\n",
			prog, s);
		return -EINVAL;
	}
	return 0;
}

static void print_json(json_object *obj)
{
	printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int collect(const struct kvnl_msg *msg, void *arg)
{
	json_object *obj = render_json(msg);

	if (!obj)
		return -ENOMEM;
	return json_object_array_add(arg, obj) ? -ENOMEM : 0;
}

static int cmd_get(const char *what, int cmd, bool dump)
{
	json_object *all = json_object_new_array();
	struct kvnl *nl;
	int ret;

	if (!all)
		return fail(what, -ENOMEM, NULL);
	if (connect_family(&nl)) {
		json_object_put(all);
		return 1;
	}
	ret = kvnl_exec(nl, kvnl_request(nl, cmd, dump), collect, all);
	if (ret) {
		fail(what, ret, nl);
	} else if (!dump && json_object_array_length(all) != 1) {
		fprintf(stderr, "%s: %s: no reply from the module\n", prog, what);
		ret = -EIO;
	} else if (opt_json) {
		print_json(dump ? all : json_object_array_get_idx(all, 0));
	} else if (cmd == KVACCEL_CMD_DEVICE_GET) {
		render_status(stdout, json_object_array_get_idx(all, 0));
	} else if (cmd == KVACCEL_CMD_CLIENT_GET) {
		render_clients(stdout, all);
	} else {
		render_regions(stdout, all);
	}
	json_object_put(all);
	kvnl_close(nl);
	return ret ? 1 : 0;
}

/* An admin request: DEVICE_SET or QUOTA_SET with up to two u64 values. */
static int cmd_set(const char *what, int cmd, int a1, uint64_t v1, int a2, uint64_t v2,
		   uint32_t pid)
{
	struct nl_msg *msg;
	struct kvnl *nl;
	int ret;

	if (connect_family(&nl))
		return 1;
	msg = kvnl_request(nl, cmd, false);
	if (msg && ((pid && nla_put_u32(msg, KVACCEL_A_PID, pid)) ||
		    nla_put_u64(msg, a1, v1) || (a2 && nla_put_u64(msg, a2, v2)))) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = kvnl_exec(nl, msg, NULL, NULL);
	if (ret)
		fail(what, ret, nl);
	kvnl_close(nl);
	return ret ? 1 : 0;
}

struct watch {
	long count;
	long seen;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_event(const struct kvnl_msg *msg, void *arg)
{
	struct watch *w = arg;
	const char *name = kvnl_event_name(msg->cmd);
	json_object *obj;

	if (!name)
		return 0;
	obj = render_json(msg);
	if (!obj)
		return -ENOMEM;
	json_object_object_add(obj, "event", json_object_new_string(name));
	if (opt_json) {
		printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
	} else {
		render_event(stdout, obj);
	}
	json_object_put(obj);
	w->seen++;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch w = { .count = 0 };
	double timeout = 0, deadline;
	struct sigaction sa = { .sa_handler = on_signal };
	struct kvnl *nl;
	char *end;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			w.count = strtol(optarg, &end, 10);
			if (*end || w.count < 1) {
				fprintf(stderr, "%s: watch: bad count '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || !(timeout > 0)) {
				fprintf(stderr, "%s: watch: bad timeout '%s'\n", prog, optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (connect_family(&nl))
		return 1;
	ret = kvnl_subscribe(nl);
	if (ret) {
		kvnl_close(nl);
		return fail("watch: joining the events group", ret, NULL);
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "%s: watching kvaccel events\n", prog);

	deadline = now() + timeout;
	while (!stop && (!w.count || w.seen < w.count)) {
		int ms = -1;

		if (timeout > 0) {
			double left = deadline - now();

			if (left <= 0)
				break;
			ms = (int)(left * 1000) + 1;
		}
		ret = kvnl_wait_events(nl, ms, print_event, &w);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			fail("watch", ret, NULL);
			break;
		}
	}
	kvnl_close(nl);
	return ret < 0 ? 1 : 0;
}

/* How a refused or failed daemon request is reported. */
static void daemon_fail(const char *what, const char *path, int ret,
			const struct daemon_error *err)
{
	if (err->connect && (ret == -ENOENT || ret == -ECONNREFUSED))
		fprintf(stderr, "%s: kvacceld is not running (no socket at %s)\n", prog, path);
	else if (err->connect)
		fprintf(stderr, "%s: %s: cannot connect to kvacceld at %s: %s\n", prog, what, path,
			err->msg);
	else if (err->refused && ret == -EPERM)
		fprintf(stderr, "%s: %s: permission denied: %s\n", prog, what,
			"needs root or the daemon's admin group");
	else
		fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, err->msg, strerror(-ret));
}

/* kvaccelctl migrate ENGINE REQ TO | drain [--cancel] ENGINE */
static int cmd_migrate(int argc, char **argv, bool drain)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "cancel", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *what = drain ? "drain" : "migrate", *path;
	struct daemon_error err;
	bool cancel = false;
	json_object *all;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:c", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt_socket = optarg;
			break;
		case 'c':
			if (drain) {
				cancel = true;
				break;
			}
			/* fall through */
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != (drain ? 1 : 3)) {
		usage(stderr);
		return 2;
	}
	path = daemon_socket(opt_socket);
	if (drain) {
		ret = daemon_drain(path, argv[optind], cancel, &err);
		if (ret) {
			daemon_fail(what, path, ret, &err);
			return 1;
		}
		if (opt_json)
			printf("{\"engine\":\"%s\",\"draining\":%s}\n", argv[optind],
			       cancel ? "false" : "true");
		else
			printf("%s: %s\n", argv[optind], cancel ? "drain cancelled" : "draining");
		return 0;
	}
	{
		char *end;
		unsigned long long req;

		errno = 0;
		req = strtoull(argv[optind + 1], &end, 0);
		if (errno || *end || !*argv[optind + 1] || argv[optind + 1][0] == '-') {
			fprintf(stderr, "%s: bad request id '%s'\n", prog, argv[optind + 1]);
			return 2;
		}
		all = json_object_new_array();
		if (!all)
			return fail(what, -ENOMEM, NULL);
		ret = daemon_migrate(path, argv[optind], req, argv[optind + 2], all, &err);
	}
	if (ret) {
		daemon_fail(what, path, ret, &err);
	} else if (opt_json) {
		print_json(json_object_array_get_idx(all, 0));
	} else {
		json_object *m = json_object_array_get_idx(all, 0);

		printf("migration %" PRIu64 ": request %" PRIu64 " of %s -> %s asked\n",
		       json_object_get_uint64(json_object_object_get(m, "id")),
		       json_object_get_uint64(json_object_object_get(m, "req")),
		       json_object_get_string(json_object_object_get(m, "from")),
		       json_object_get_string(json_object_object_get(m, "to")));
	}
	json_object_put(all);
	return ret ? 1 : 0;
}

/* kvacceld's admin lists: engines or hand-offs. */
static int cmd_daemon(int argc, char **argv, const char *what, unsigned int type)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *all;
	struct daemon_error err;
	const char *path;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt_socket = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	path = daemon_socket(opt_socket);
	/* The cluster view is an object (status, nodes, engines); the lists are arrays. */
	all = type == KVD_MSG_LIST_CLUSTER ? json_object_new_object() : json_object_new_array();
	if (!all)
		return fail(what, -ENOMEM, NULL);
	ret = type == KVD_MSG_LIST_CLUSTER ? daemon_cluster(path, all, &err) :
	      daemon_list(path, type, all, &err);
	if (!ret) {
		if (opt_json)
			print_json(all);
		else if (type == KVD_MSG_LIST_CLUSTER)
			render_cluster(stdout, all);
		else if (type == KVD_MSG_LIST_ENGINES)
			render_engines(stdout, all);
		else if (type == KVD_MSG_LIST_HANDOFFS)
			render_handoffs(stdout, all);
		else
			render_migrations(stdout, all);
	} else if (err.connect && (ret == -ENOENT || ret == -ECONNREFUSED)) {
		fprintf(stderr, "%s: kvacceld is not running (no socket at %s)\n", prog, path);
	} else if (err.connect) {
		fprintf(stderr, "%s: %s: cannot connect to kvacceld at %s: %s\n", prog, what, path,
			err.msg);
	} else if (err.refused && ret == -EPERM) {
		fprintf(stderr, "%s: %s: permission denied: %s\n", prog, what,
			"needs root or the daemon's admin group");
	} else {
		fprintf(stderr, "%s: %s: %s\n", prog, what, err.msg);
	}
	json_object_put(all);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v1, v2;
	const char *cmd;
	char *end;
	int c;

	/* Options before the command only: the command parses its own. */
	while ((c = getopt_long(argc, argv, "+js:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt_json = true;
			break;
		case 's':
			opt_socket = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	cmd = argv[0];

	if (!strcmp(cmd, "status") && argc == 1)
		return cmd_get("status", KVACCEL_CMD_DEVICE_GET, false);
	if (!strcmp(cmd, "clients") && argc == 1)
		return cmd_get("clients", KVACCEL_CMD_CLIENT_GET, true);
	if (!strcmp(cmd, "regions") && argc == 1)
		return cmd_get("regions", KVACCEL_CMD_REGION_GET, true);
	if (!strcmp(cmd, "watch"))
		return cmd_watch(argc, argv);
	if (!strcmp(cmd, "engines"))
		return cmd_daemon(argc, argv, "engines", KVD_MSG_LIST_ENGINES);
	if (!strcmp(cmd, "handoffs"))
		return cmd_daemon(argc, argv, "handoffs", KVD_MSG_LIST_HANDOFFS);
	if (!strcmp(cmd, "migrations"))
		return cmd_daemon(argc, argv, "migrations", KVD_MSG_LIST_MIGRATIONS);
	if (!strcmp(cmd, "cluster"))
		return cmd_daemon(argc, argv, "cluster", KVD_MSG_LIST_CLUSTER);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc, argv, false);
	if (!strcmp(cmd, "drain"))
		return cmd_migrate(argc, argv, true);
	if (!strcmp(cmd, "limit") && argc == 3 && !strcmp(argv[1], "set")) {
		if (arg_size(argv[2], &v1))
			return 2;
		return cmd_set("limit set", KVACCEL_CMD_DEVICE_SET, KVACCEL_A_LIMIT, v1,
			       0, 0, 0);
	}
	if (!strcmp(cmd, "default-quota") && argc == 3 && !strcmp(argv[1], "set")) {
		if (arg_size(argv[2], &v1))
			return 2;
		return cmd_set("default-quota set", KVACCEL_CMD_DEVICE_SET,
			       KVACCEL_A_DEFAULT_QUOTA, v1, 0, 0, 0);
	}
	if (!strcmp(cmd, "quota") && argc == 4 && !strcmp(argv[1], "set")) {
		long pid = strtol(argv[2], &end, 10);

		if (*end || pid < 1 || pid > INT32_MAX) {
			fprintf(stderr, "%s: bad pid '%s'\n", prog, argv[2]);
			return 2;
		}
		if (arg_size(argv[3], &v1))
			return 2;
		return cmd_set("quota set", KVACCEL_CMD_QUOTA_SET, KVACCEL_A_QUOTA, v1,
			       0, 0, (uint32_t)pid);
	}
	if (!strcmp(cmd, "watermarks") && argc == 4 && !strcmp(argv[1], "set")) {
		if (arg_size(argv[2], &v1) || arg_size(argv[3], &v2))
			return 2;
		return cmd_set("watermarks set", KVACCEL_CMD_DEVICE_SET, KVACCEL_A_HIGH_WM,
			       v1, KVACCEL_A_LOW_WM, v2, 0);
	}
	if (!strcmp(cmd, "watermarks") && argc == 2 && !strcmp(argv[1], "off"))
		return cmd_set("watermarks off", KVACCEL_CMD_DEVICE_SET, KVACCEL_A_HIGH_WM,
			       0, KVACCEL_A_LOW_WM, 0, 0);

	fprintf(stderr, "%s: unknown command or wrong arguments: '%s'\n", prog, cmd);
	usage(stderr);
	return 2;
}
