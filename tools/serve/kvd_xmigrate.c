// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - kvacceld's migrations to and from other nodes (--xfer):
 * the engine listens for other nodes' engines over accel_xfer (UCX),
 * announces that address to its daemon (which publishes it in the cluster
 * view), and answers the daemon's MIGRATE_REMOTE by moving the request
 * itself with multi-stage pre-copy (migrate_net.h). The destination's
 * daemon takes no part: its engine takes what arrives, and its load
 * reports show it. Documentation/serve.rst, "Across nodes".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvd_int.h"
#include "migrate_net.h"

/* Split "HOST:PORT" (a kvdmsg_addr_ok() address) into @host and @port. */
static int split_addr(const char *addr, char *host, size_t len, uint16_t *port)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	unsigned long p;

	if (!colon || colon == addr || (size_t)(colon - addr) >= len)
		return -EINVAL;
	p = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p > 65535)
		return -EINVAL;
	memcpy(host, addr, colon - addr);
	host[colon - addr] = 0;
	if (host[0] == '[' && colon[-1] == ']') {	/* [v6]:port */
		memmove(host, host + 1, strlen(host) - 2);
		host[colon - addr - 2] = 0;
	}
	*port = (uint16_t)p;
	return 0;
}

static struct kvd_departure *departure_of(struct serve_kvd *k, uint64_t id)
{
	for (uint32_t i = 0; i < k->nr_out; i++)
		if (k->out[i].id == id)
			return &k->out[i];
	return NULL;
}

/* Migration @id is over: its endpoint is closed after this step (not in a callback). */
static void ep_over(struct serve_kvd *k, uint64_t id)
{
	for (uint32_t i = 0; i < k->nr_eps; i++)
		if (k->eps[i].id == id)
			k->eps[i].over = true;
}

/* Forget and close the endpoints of migrations that are over (@all: every one). */
static void eps_release(struct serve_kvd *k, bool all)
{
	for (uint32_t i = 0; i < k->nr_eps;) {
		if (!all && !k->eps[i].over) {
			i++;
			continue;
		}
		serve_xmig_forget(k->xn, k->eps[i].ep);
		accel_xfer_ep_close(k->eps[i].ep);
		k->eps[i] = k->eps[--k->nr_eps];
	}
}

static void x_done(void *arg, uint64_t id, int status, const struct serve_xmig_stats *st)
{
	struct serve_kvd *k = arg;
	struct kvd_departure *dp = departure_of(k, id);
	ACCEL_OPTS(accel_engine_migration_stats, ms, .downtime_us = st->downtime_us,
		   .total_us = st->total_us, .bytes_copied = st->bytes_copied,
		   .blocks = st->blocks);

	if (dp) {
		dp->status = status;
		dp->st = (struct serve_nmig_stats) {
			.downtime_us = st->downtime_us, .total_us = st->total_us,
			.bytes_copied = st->bytes_copied, .blocks = st->blocks,
			.tokens = st->tokens,
		};
	}
	fprintf(stderr, "kvaccel-serve: migration %llu of request %u to %s: %s (%u stages, "
		"%llu bytes put, %llu while stopped, downtime %.2f ms, %.2f ms in all)\n",
		(unsigned long long)id, dp ? dp->h : 0, dp ? dp->to : "?",
		status ? strerror(-status) : "done", st->stages,
		(unsigned long long)st->bytes_copied, (unsigned long long)st->final_bytes,
		st->downtime_us / 1e3, st->total_us / 1e3);
	accel_engine_migrated(k->e, id, status, &ms);
	ep_over(k, id);
}

static void x_arrived(void *arg, uint64_t id, uint32_t h, const struct serve_migr_hdr *hdr)
{
	if (serve_kvd_arrival_add(arg, h, "another node", hdr, NULL))
		return;
	fprintf(stderr, "kvaccel-serve: migration %llu from another node: its request %llu is "
		"request %u here (%u tokens)\n", (unsigned long long)id,
		(unsigned long long)hdr->source, h, hdr->n_prompt + hdr->n_gen);
}

static void x_aborted(void *arg, uint64_t id, int status)
{
	(void)arg;
	fprintf(stderr, "kvaccel-serve: migration %llu from another node ended before it "
		"arrived: %s\n", (unsigned long long)id, strerror(-status));
}

/* The daemon's MIGRATE_REMOTE: connect to @addr and move request @req there. */
int serve_kvd_migrate_remote(void *arg, uint64_t id, uint64_t req, const char *node,
			     const char *to, const char *addr)
{
	struct serve_kvd *k = arg;
	struct accel_xfer_ep *ep = NULL;
	struct kvd_departure *v;
	char host[KVD_XFER_ADDR_MAX];
	uint16_t port;
	void *p;
	int ret;

	if (!k->xn)
		return -EOPNOTSUPP;
	if (req > UINT32_MAX)
		return -ENOENT;
	ret = split_addr(addr, host, sizeof(host), &port);
	if (ret)
		return ret;
	p = realloc(k->out, (k->nr_out + 1) * sizeof(*k->out));
	if (!p)
		return -ENOMEM;
	k->out = p;
	p = realloc(k->eps, (k->nr_eps + 1) * sizeof(*k->eps));
	if (!p)
		return -ENOMEM;
	k->eps = p;
	/* A short wait on the engine thread: a connection on a working network takes ms. */
	ret = accel_xfer_connect(k->x, host, port, 2000000000ll, &ep);
	if (ret) {
		fprintf(stderr, "kvaccel-serve: migration %llu: connecting to %s/%s at %s: %s\n",
			(unsigned long long)id, node, to, addr, strerror(-ret));
		return ret;
	}
	ret = serve_xmig_start(k->xn, id, (uint32_t)req, ep);
	if (ret) {
		accel_xfer_ep_close(ep);
		return ret;
	}
	k->eps[k->nr_eps++] = (struct kvd_xep) { .id = id, .ep = ep };
	v = &k->out[k->nr_out++];
	*v = (struct kvd_departure) { .id = id, .h = (uint32_t)req, .status = 1 };
	snprintf(v->to, sizeof(v->to), "%s/%s", node, to);
	fprintf(stderr, "kvaccel-serve: migration %llu of request %u to %s at %s: started\n",
		(unsigned long long)id, v->h, v->to, addr);
	return 0;
}

int serve_kvd_xfer(struct serve_kvd *k, struct accel_bm *bm, struct accel_tier *tier0,
		   const char *addr, char *err, size_t errlen)
{
	static const struct serve_xmig_ops ops = { .done = x_done, .arrived = x_arrived,
						   .aborted = x_aborted };
	char host[KVD_XFER_ADDR_MAX];
	uint16_t port, bound;
	int ret;

	if (!k || k->x || !addr || strlen(addr) >= sizeof(k->xaddr) ||
	    split_addr(addr, host, sizeof(host), &port) || !port) {
		snprintf(err, errlen, "--xfer '%s': HOST:PORT expected", addr ? addr : "");
		return -EINVAL;
	}
	k->x = accel_xfer_create(NULL);
	if (!k->x) {
		ret = -errno;
		snprintf(err, errlen, "--xfer: no transport (libucp): %s", strerror(-ret));
		return ret;
	}
	ret = accel_xfer_listen(k->x, host, port, &bound);
	if (!ret) {
		k->xn = serve_xmig_create(k->d, bm, tier0, k->x, &ops, k);
		if (!k->xn)
			ret = -errno;
	}
	if (ret) {
		snprintf(err, errlen, "--xfer: listening at %s: %s", addr, strerror(-ret));
		accel_xfer_destroy(k->x);
		k->x = NULL;
		return ret;
	}
	snprintf(k->xaddr, sizeof(k->xaddr), "%s", addr);
	return 0;
}

void serve_kvd_xfer_announce(struct serve_kvd *k)
{
	int ret;

	if (!k->xn)
		return;
	ret = accel_engine_set_xfer_addr(k->e, k->xaddr);
	if (ret)
		fprintf(stderr, "kvaccel-serve: the transfer address %s not announced to kvacceld: "
			"%s (no migrations from other nodes)\n", k->xaddr, strerror(-ret));
}

void serve_kvd_xstep(struct serve_kvd *k)
{
	serve_xmig_step(k->xn);
	eps_release(k, false);
}

unsigned int serve_kvd_xpending(const struct serve_kvd *k)
{
	return k->xn ? serve_xmig_pending(k->xn) : 0;
}

int serve_kvd_xfer_fd(const struct serve_kvd *k)
{
	return k && k->x ? accel_xfer_fd(k->x) : -1;
}

void serve_kvd_xfer_end(struct serve_kvd *k)
{
	/* Migrations out undone first (the requests stay here), then their endpoints. */
	serve_xmig_destroy(k->xn);
	k->xn = NULL;
	eps_release(k, true);
	free(k->eps);
	k->eps = NULL;
	accel_xfer_destroy(k->x);
	k->x = NULL;
}
