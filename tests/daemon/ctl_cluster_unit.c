// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVD_MSG_LIST_CLUSTER end to end without the kernel: the daemon's encoder
 * (daemon/cluster_info.c) answers a request on a real SOCK_SEQPACKET
 * socket, kvaccelctl's side (tools/kvaccelctl/daemon.c) reads the replies
 * through kvdmsg_check() into JSON, and render_cluster() prints the
 * tables. Also an ERROR reply (-ENOTCONN: the part is off) and a reply
 * stream without its status.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster.h"
#include "daemon.h"
#include "kvdmsg.h"
#include "render.h"

enum mode { ANSWER, REFUSE, NO_STATUS };

struct fake {
	char dir[64], path[108];
	int fd;
	pthread_t t;
	enum mode mode;
	unsigned int got_type;
};

static int emit(const struct kvd_cluster_info *i, void *arg)
{
	int fd = *(int *)arg;

	return kvdmsg_send(fd, i, NULL, 0);
}

static void snap(struct kvd_cluster_snap *s)
{
	static struct kvd_cview_node nodes[2];
	static struct kvd_cview_engine engines[2];

	memset(s, 0, sizeof(*s));
	memset(nodes, 0, sizeof(nodes));
	memset(engines, 0, sizeof(engines));
	snprintf(s->st.node, sizeof(s->st.node), "alpha");
	snprintf(s->st.cluster, sizeof(s->st.cluster), "prod");
	snprintf(s->st.endpoint, sizeof(s->st.endpoint), "http://10.0.0.9:2379");
	snprintf(s->st.error, sizeof(s->st.error), "keepalive: timed out");
	s->st.stale = true;
	s->st.age_ms = 4200;
	s->st.revision = 77;
	s->st.lease = 0x1234;
	s->st.publishes = 5;
	s->st.keepalive_errors = 2;
	snprintf(nodes[0].name, sizeof(nodes[0].name), "beta");
	nodes[0].capacity = 64ull << 30;
	nodes[0].usage = 3ull << 30;
	nodes[0].pressure = true;
	nodes[0].engines = 1;
	nodes[0].updated_ms = 1;	/* long ago */
	snprintf(nodes[0].ucx_address, sizeof(nodes[0].ucx_address), "10.0.0.2:13337");
	snprintf(nodes[1].name, sizeof(nodes[1].name), "alpha");
	nodes[1].capacity = 32ull << 30;
	nodes[1].limit = 16ull << 30;
	nodes[1].engines = 1;
	nodes[1].updated_ms = INT64_MAX;	/* in the future: age 0 */
	snprintf(engines[0].node, sizeof(engines[0].node), "beta");
	snprintf(engines[0].name, sizeof(engines[0].name), "decode-1");
	engines[0].blocks_total = 1000;
	engines[0].blocks_free = 250;
	engines[0].load = 0.75;
	engines[0].running = 4;
	engines[0].draining = true;
	engines[0].nmodels = 2;
	snprintf(engines[0].models[0], sizeof(engines[0].models[0]), "tiny-moe");
	snprintf(engines[0].models[1], sizeof(engines[0].models[1]), "dense-7");
	snprintf(engines[1].node, sizeof(engines[1].node), "alpha");
	snprintf(engines[1].name, sizeof(engines[1].name), "prefill");
	engines[1].priority = 5;
	s->nodes = nodes;
	s->nnodes = 2;
	s->engines = engines;
	s->nengines = 2;
}

static void *serve(void *arg)
{
	struct fake *f = arg;
	union kvdmsg_buf buf;
	int fds[KVD_HANDOFF_MAX_FDS];
	unsigned int nfds;
	const char *why;
	struct kvd_hdr end;
	long n;
	int c = accept(f->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	n = kvdmsg_recv(c, &buf, fds, &nfds, 0);
	if (n > 0 && !kvdmsg_check(&buf, (size_t)n, nfds, &why)) {
		struct kvd_cluster_snap s;

		f->got_type = buf.hdr.type;
		snap(&s);
		if (f->mode == REFUSE) {
			struct kvd_error e = { 0 };

			kvdmsg_hdr(&e.hdr, KVD_MSG_ERROR, sizeof(e), buf.hdr.seq);
			e.error = -ENOTCONN;
			e.type = KVD_MSG_LIST_CLUSTER;
			snprintf(e.message, sizeof(e.message), "the cluster part is off");
			kvdmsg_send(c, &e, NULL, 0);
		} else {
			if (f->mode == NO_STATUS)
				s.nnodes = 0;
			if (f->mode == ANSWER)
				kvd_cluster_infos(&s, buf.hdr.seq, emit, &c);
			kvdmsg_hdr(&end, KVD_MSG_END, sizeof(end), buf.hdr.seq);
			kvdmsg_send(c, &end, NULL, 0);
		}
	}
	close(c);
	return NULL;
}

static void start(struct fake *f, enum mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kvd-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (void *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->fd, 1), 0);
	assert_int_equal(pthread_create(&f->t, NULL, serve, f), 0);
}

static void stop(struct fake *f)
{
	pthread_join(f->t, NULL);
	close(f->fd);
	unlink(f->path);
	rmdir(f->dir);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void view_as_json_and_tables(void **state)
{
	struct daemon_error err;
	json_object *view = json_object_new_object(), *st, *nodes, *engines, *b, *e;
	struct fake f;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	start(&f, ANSWER);
	assert_int_equal(daemon_cluster(f.path, view, &err), 0);
	stop(&f);
	assert_int_equal(f.got_type, KVD_MSG_LIST_CLUSTER);
	st = member(view, "status");
	assert_string_equal(json_object_get_string(member(st, "cluster")), "prod");
	assert_true(json_object_get_boolean(member(st, "stale")));
	assert_false(json_object_get_boolean(member(st, "published")));
	assert_int_equal(json_object_get_int64(member(st, "age_ms")), 4200);
	assert_int_equal(json_object_get_int64(member(st, "nodes")), 2);
	assert_int_equal(json_object_get_int64(member(st, "keepalive_errors")), 2);
	assert_string_equal(json_object_get_string(member(st, "endpoint")), "http://10.0.0.9:2379");
	nodes = member(view, "nodes");
	assert_int_equal(json_object_array_length(nodes), 2);
	/* Sorted by node: alpha (this one) first. */
	assert_string_equal(json_object_get_string(member(json_object_array_get_idx(nodes, 0),
							   "node")), "alpha");
	assert_true(json_object_get_boolean(member(json_object_array_get_idx(nodes, 0), "self")));
	b = json_object_array_get_idx(nodes, 1);
	assert_false(json_object_get_boolean(member(b, "self")));
	assert_true(json_object_get_boolean(member(b, "pressure")));
	assert_string_equal(json_object_get_string(member(b, "ucx_address")), "10.0.0.2:13337");
	assert_true(json_object_get_int64(member(b, "age_ms")) > 1000000);
	assert_int_equal(json_object_get_int64(member(json_object_array_get_idx(nodes, 0),
						      "age_ms")), 0);
	engines = member(view, "engines");
	assert_int_equal(json_object_array_length(engines), 2);
	e = json_object_array_get_idx(engines, 1);
	assert_string_equal(json_object_get_string(member(e, "name")), "decode-1");
	assert_true(json_object_get_double(member(e, "load")) == 0.75);
	assert_true(json_object_get_boolean(member(e, "draining")));
	assert_int_equal(json_object_array_length(member(e, "models")), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(member(e, "models"),
									     1)), "dense-7");
	assert_int_equal(json_object_array_length(member(json_object_array_get_idx(engines, 0),
							 "models")), 0);

	out = open_memstream(&text, &len);
	render_cluster(out, view);
	fclose(out);
	if (getenv("CTL_CLUSTER_PRINT"))
		fputs(text, stderr);
	assert_non_null(strstr(text, "cluster prod, node alpha: view STALE (age 4.2 s), NOT "
			       "published, revision 77, via http://10.0.0.9:2379\n"));
	assert_non_null(strstr(text, "last error: keepalive: timed out\n"));
	assert_non_null(strstr(text, "alpha*"));
	assert_non_null(strstr(text, "10.0.0.2:13337"));
	assert_non_null(strstr(text, " 75.0%"));
	free(text);
	json_object_put(view);
}

static void refused_and_malformed(void **state)
{
	struct daemon_error err;
	json_object *view = json_object_new_object();
	struct fake f;

	(void)state;
	start(&f, REFUSE);
	assert_int_equal(daemon_cluster(f.path, view, &err), -ENOTCONN);
	stop(&f);
	assert_true(err.refused);
	assert_non_null(strstr(err.msg, "cluster part is off"));
	json_object_put(view);

	view = json_object_new_object();
	start(&f, NO_STATUS);
	assert_int_equal(daemon_cluster(f.path, view, &err), -EPROTO);
	stop(&f);
	assert_non_null(strstr(err.msg, "no cluster status"));
	json_object_put(view);

	view = json_object_new_object();
	assert_int_equal(daemon_cluster("/tmp/kvd-ctl-none/sock", view, &err), -ENOENT);
	assert_true(err.connect);
	json_object_put(view);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(view_as_json_and_tables),
		cmocka_unit_test(refused_and_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
