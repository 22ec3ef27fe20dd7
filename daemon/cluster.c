// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the cluster part (cluster.h): the publisher and watcher
 * threads over the etcd client (etcd.h) and the view (cluster_view.h).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "etcd.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000

struct kvd_cluster {
	struct kvd_cluster_config cfg;
	kvd_cluster_log_fn log;
	struct etcd *pub_etcd, *watch_etcd;
	pthread_t pub_thread, watch_thread;
	bool pub_started, watch_started;
	bool stop;			/* set atomically; the watcher reads it unlocked */
	bool revoke;
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* the publisher's wake-ups, stop */
	/* Publisher. */
	struct kvd_cluster_facts facts, pub;	/* the latest, the last published */
	bool have_facts, dirty, dirty_all, have_pub;
	int64_t lease, lease_ok_at, ka_at, next_pub_at, pub_retry_at;
	unsigned int pub_backoff;
	bool lease_failing;		/* the last lease request failed */
	bool pub_down_logged;
	/* Watcher. */
	struct kvd_cview view;
	bool in_sync;
	int64_t sync_at;		/* when the view was last known in sync (ms) */
	unsigned int watch_backoff;
	bool watch_down_logged;
	struct kvd_cluster_status st;
	unsigned int seed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next backoff (jittered +-25 %), doubling @b from BACKOFF_MIN_MS to BACKOFF_MAX_MS. */
static int64_t backoff(struct kvd_cluster *c, unsigned int *b)
{
	unsigned int ms = *b ? *b : BACKOFF_MIN_MS;

	*b = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
	return ms * 3 / 4 + (int64_t)(rand_r(&c->seed) % (ms / 2 + 1));
}

/* Wait on the condition until @until (ms, CLOCK_MONOTONIC) or a signal. Lock held. */
static void wait_until(struct kvd_cluster *c, int64_t until)
{
	struct timespec ts;
	int64_t now = mono_ms(), ms;

	if (until <= now || c->stop)
		return;
	ms = until - now;
	if (ms > 60000)
		ms = 60000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

static void set_error(struct kvd_cluster *c, const char *what, const struct etcd *e, int ret)
{
	snprintf(c->st.error, sizeof(c->st.error), "%s: %s", what,
		 etcd_errmsg(e)[0] ? etcd_errmsg(e) : strerror(-ret));
}

/* ---- change detection ------------------------------------------------- */

static bool beyond(uint64_t a, uint64_t b, double threshold, uint64_t base)
{
	uint64_t d = a > b ? a - b : b - a;

	return (double)d > threshold * (double)(base ? base : 1);
}

bool kvd_cluster_changed(const struct kvd_cluster_facts *pub, const struct kvd_cluster_facts *f,
			 double threshold)
{
	const struct kvd_cview_node *a = &pub->node, *b = &f->node;
	unsigned int i, k;

	if (a->pressure != b->pressure || a->limit != b->limit || a->capacity != b->capacity ||
	    pub->nengines != f->nengines || strcmp(a->ucx_address, b->ucx_address) ||
	    beyond(a->usage, b->usage, threshold, b->limit ? b->limit : b->capacity))
		return true;
	for (i = 0; i < f->nengines; i++) {
		const struct kvd_cview_engine *y = &f->engines[i], *x = NULL;

		for (k = 0; k < pub->nengines && !x; k++)
			if (!strcmp(pub->engines[k].name, y->name))
				x = &pub->engines[k];
		if (!x || x->priority != y->priority || x->draining != y->draining ||
		    x->blocks_total != y->blocks_total || x->block_bytes != y->block_bytes ||
		    x->nmodels != y->nmodels || strcmp(x->xfer, y->xfer) ||
		    memcmp(x->models, y->models, sizeof(x->models)) ||
		    beyond(x->blocks_free, y->blocks_free, threshold, y->blocks_total) ||
		    fabs(x->load - y->load) > threshold ||
		    (!x->running + !x->waiting) != (!y->running + !y->waiting) ||
		    beyond(x->running + x->waiting, y->running + y->waiting, threshold,
			   x->running + x->waiting))
			return true;
	}
	return false;
}

/* ---- the publisher ---------------------------------------------------- */

/* Put this node's keys (@f) under the lease; delete the engines of @old that left. */
static int publish(struct kvd_cluster *c, const struct kvd_cluster_facts *f,
		   const struct kvd_cluster_facts *old, int64_t lease)
{
	struct etcd *e = c->pub_etcd;
	char key[256], *val;
	unsigned int i, k;
	int ret;

	if (kvd_cview_node_key(&c->view, f->node.name, key, sizeof(key)))
		return -ENAMETOOLONG;
	val = kvd_cview_encode_node(&f->node);
	if (!val)
		return -ENOMEM;
	ret = etcd_put(e, key, val, strlen(val), lease, NULL);
	free(val);
	for (i = 0; !ret && i < f->nengines; i++) {
		if (kvd_cview_engine_key(&c->view, f->node.name, f->engines[i].name, key, sizeof(key)))
			return -ENAMETOOLONG;
		val = kvd_cview_encode_engine(&f->engines[i]);
		if (!val)
			return -ENOMEM;
		ret = etcd_put(e, key, val, strlen(val), lease, NULL);
		free(val);
	}
	for (i = 0; !ret && old && i < old->nengines; i++) {
		bool still = false;

		for (k = 0; k < f->nengines && !still; k++)
			still = !strcmp(old->engines[i].name, f->engines[k].name);
		if (still)
			continue;
		if (kvd_cview_engine_key(&c->view, f->node.name, old->engines[i].name, key,
					 sizeof(key)))
			return -ENAMETOOLONG;
		ret = etcd_delete(e, key, false, NULL);
	}
	return ret;
}

/* The lease is gone or given up: publish everything again under a new one. */
static void lease_lost(struct kvd_cluster *c, const char *why)
{
	c->log(LOG_WARNING, "cluster: lease %llx %s: publishing again under a new lease",
	       (unsigned long long)c->lease, why);
	c->lease = 0;
	c->st.lease = 0;
	c->st.published = false;
	c->dirty_all = true;
	c->pub_retry_at = 0;
}

static void pub_failed(struct kvd_cluster *c, const char *what, int ret, int64_t now)
{
	set_error(c, what, c->pub_etcd, ret);
	c->pub_retry_at = now + backoff(c, &c->pub_backoff);
	if (!c->pub_down_logged) {
		c->log(LOG_WARNING, "cluster: %s (retrying with backoff; the node is served as "
		       "before)", c->st.error);
		c->pub_down_logged = true;
	}
}

static void pub_ok(struct kvd_cluster *c)
{
	c->pub_backoff = 0;
	c->pub_retry_at = 0;
	if (c->pub_down_logged)
		c->log(LOG_INFO, "cluster: etcd answers again (%s)", etcd_endpoint(c->pub_etcd));
	c->pub_down_logged = false;
}

static void *pub_main(void *arg)
{
	struct kvd_cluster *c = arg;
	const int64_t ttl_ms = (int64_t)c->cfg.lease_ttl_s * 1000;
	struct kvd_cluster_facts *f = malloc(sizeof(*f)), *old = malloc(sizeof(*old));
	int64_t id, granted, lease;
	bool had_pub;
	int ret;

	pthread_mutex_lock(&c->lock);
	while (!c->stop && f && old) {
		int64_t now = mono_ms(), wake = INT64_MAX;

		if (!c->lease && now >= c->pub_retry_at) {
			pthread_mutex_unlock(&c->lock);
			ret = etcd_lease_grant(c->pub_etcd, c->cfg.lease_ttl_s, &id, &granted);
			pthread_mutex_lock(&c->lock);
			now = mono_ms();
			if (ret) {
				c->lease_failing = true;
				pub_failed(c, "lease grant", ret, now);
			} else {
				pub_ok(c);
				c->lease = id;
				c->st.lease = id;
				c->st.leases++;
				c->lease_ok_at = now;
				c->lease_failing = false;
				c->ka_at = now + ttl_ms / 3;
				c->dirty_all = true;
				c->log(LOG_INFO, "cluster: lease %llx granted (TTL %lld s) by %s",
				       (unsigned long long)id, (long long)granted,
				       etcd_endpoint(c->pub_etcd));
			}
		}
		if (c->lease && c->have_facts && (c->dirty || c->dirty_all) && now >= c->next_pub_at &&
		    now >= c->pub_retry_at) {
			*f = c->facts;
			*old = c->pub;
			had_pub = c->have_pub && !c->dirty_all;
			lease = c->lease;
			f->node.updated_ms = real_ms();
			pthread_mutex_unlock(&c->lock);
			ret = publish(c, f, had_pub ? old : NULL, lease);
			pthread_mutex_lock(&c->lock);
			now = mono_ms();
			if (!ret) {
				pub_ok(c);
				if (c->dirty_all)
					c->log(LOG_INFO, "cluster: node %s published with %u engines "
					       "under lease %llx", f->node.name, f->nengines,
					       (unsigned long long)lease);
				c->pub = *f;
				c->have_pub = true;
				c->dirty = c->dirty_all = false;
				/* Facts that came while it published are looked at again. */
				if (kvd_cluster_changed(&c->pub, &c->facts, c->cfg.change_threshold))
					c->dirty = true;
				c->next_pub_at = now + c->cfg.update_interval_ms;
				c->st.publishes++;
				c->st.published = true;
			} else if (ret == -ENOENT && lease == c->lease) {
				c->st.publish_errors++;
				lease_lost(c, "is gone (put refused)");
			} else {
				c->st.publish_errors++;
				pub_failed(c, "publishing", ret, now);
			}
		}
		/*
		 * Not renewed for a whole TTL (etcd away longer, or this thread's
		 * retries spaced by their backoff): the others may have seen the
		 * node go. Given up before any keepalive, even one that would
		 * succeed on a lease etcd kept across a restart.
		 */
		if (c->lease && now >= c->ka_at && now - c->lease_ok_at >= ttl_ms)
			lease_lost(c, "was not renewed for a whole TTL");
		if (c->lease && now >= c->ka_at) {
			lease = c->lease;
			pthread_mutex_unlock(&c->lock);
			ret = etcd_lease_keepalive(c->pub_etcd, lease, NULL);
			pthread_mutex_lock(&c->lock);
			now = mono_ms();
			if (!ret) {
				pub_ok(c);
				c->lease_ok_at = now;
				c->lease_failing = false;
				c->ka_at = now + ttl_ms / 3;
			} else if (ret == -ENOENT) {
				c->st.keepalive_errors++;
				lease_lost(c, "expired");
			} else {
				c->st.keepalive_errors++;
				c->lease_failing = true;
				pub_failed(c, "keepalive", ret, now);
				c->ka_at = c->pub_retry_at;
				if (now - c->lease_ok_at >= ttl_ms)
					lease_lost(c, "was not renewed for a whole TTL");
			}
		}
		if (c->stop)
			break;
		/* Sleep until the next thing to do. */
		if (c->lease)
			wake = c->ka_at;
		else
			wake = c->pub_retry_at;
		if (c->lease && c->have_facts && (c->dirty || c->dirty_all)) {
			int64_t p = c->next_pub_at > c->pub_retry_at ? c->next_pub_at : c->pub_retry_at;

			if (p < wake)
				wake = p;
		}
		wait_until(c, wake);
	}
	lease = c->revoke ? c->lease : 0;
	pthread_mutex_unlock(&c->lock);
	if (lease && etcd_lease_revoke(c->pub_etcd, lease))
		c->log(LOG_INFO, "cluster: revoking lease %llx: %s (its keys expire with it)",
		       (unsigned long long)lease, etcd_errmsg(c->pub_etcd));
	free(f);
	free(old);
	return NULL;
}

/* ---- the watcher ------------------------------------------------------ */

static void ignored_line(struct kvd_cluster *c, const char *why)
{
	c->log(LOG_WARNING, "cluster: ignored: %s", why);
}

struct range_ctx {
	struct kvd_cluster *c;
	struct kvd_cview v;
};

static int on_range(const struct etcd_kv *kv, void *arg)
{
	struct range_ctx *r = arg;
	char why[200];
	int ret = kvd_cview_apply(&r->v, false, kv->key, kv->key_len, kv->value, kv->value_len,
				  kv->mod_revision, why, sizeof(why));

	if (ret == 1)
		ignored_line(r->c, why);
	return ret < 0 ? ret : 0;
}

static int on_event(const struct etcd_event *ev, void *arg)
{
	struct kvd_cluster *c = arg;
	char why[200];
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = kvd_cview_apply(&c->view, ev->type == ETCD_EVENT_DELETE, ev->kv.key, ev->kv.key_len,
			      ev->kv.value, ev->kv.value_len, ev->revision, why, sizeof(why));
	c->st.revision = ev->revision;
	c->st.ignored = c->view.ignored;
	c->sync_at = mono_ms();
	pthread_mutex_unlock(&c->lock);
	if (ret == 1)
		ignored_line(c, why);
	return ret < 0 ? ret : 0;
}

static void watch_down(struct kvd_cluster *c, const char *what, int ret)
{
	int64_t wait;

	pthread_mutex_lock(&c->lock);
	if (c->in_sync)
		c->sync_at = mono_ms();	/* in sync until now */
	c->in_sync = false;
	set_error(c, what, c->watch_etcd, ret);
	if (!c->watch_down_logged) {
		c->log(LOG_WARNING, "cluster: %s: the view is stale (retrying with backoff)",
		       c->st.error);
		c->watch_down_logged = true;
	}
	wait = mono_ms() + backoff(c, &c->watch_backoff);
	while (!c->stop && mono_ms() < wait)
		wait_until(c, wait);
	pthread_mutex_unlock(&c->lock);
}

static void *watch_main(void *arg)
{
	struct kvd_cluster *c = arg;
	int64_t rev, compact;
	int ret;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		struct range_ctx r = { .c = c };

		kvd_cview_init(&r.v, c->cfg.prefix, c->cfg.name);
		rev = 0;
		ret = etcd_range_prefix(c->watch_etcd, r.v.base, on_range, &r, &rev);
		if (ret) {
			kvd_cview_free(&r.v);
			watch_down(c, "reading the cluster", ret);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		r.v.ignored += c->view.ignored;
		kvd_cview_free(&c->view);
		c->view = r.v;
		c->in_sync = true;
		c->sync_at = mono_ms();
		c->st.revision = rev;
		c->st.ignored = c->view.ignored;
		snprintf(c->st.endpoint, sizeof(c->st.endpoint), "%s", etcd_endpoint(c->watch_etcd));
		if (c->watch_down_logged)
			c->log(LOG_INFO, "cluster: view in sync again at revision %lld: %zu nodes, "
			       "%zu engines", (long long)rev, c->view.nnodes, c->view.nengines);
		c->watch_down_logged = false;
		c->watch_backoff = 0;
		pthread_mutex_unlock(&c->lock);
		compact = 0;
		ret = etcd_watch(c->watch_etcd, c->view.base, rev + 1, NULL, on_event, c, &c->stop,
				 &compact);
		if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
			break;
		pthread_mutex_lock(&c->lock);
		c->st.watch_restarts++;
		pthread_mutex_unlock(&c->lock);
		watch_down(c, "watching the cluster", ret);
	}
	return NULL;
}

/* ---- the loop's side -------------------------------------------------- */

struct kvd_cluster *kvd_cluster_start(const struct kvd_cluster_config *cfg,
				      kvd_cluster_log_fn log, char *err, size_t len)
{
	const char *eps[KVD_CLUSTER_ENDPOINTS_MAX];
	struct etcd_opts o = { 0 };
	struct kvd_cluster *c;
	unsigned int i;

	if (!cfg->n_endpoints || !kvd_cview_name_ok(cfg->node) || cfg->lease_ttl_s < 2) {
		snprintf(err, len, "cluster: endpoints, a node name and lease_ttl >= 2 are needed");
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, len, "cluster: %s", strerror(ENOMEM));
		return NULL;
	}
	c->cfg = *cfg;
	c->log = log;
	c->seed = (unsigned int)getpid() ^ (unsigned int)mono_ms();
	if (kvd_cview_init(&c->view, cfg->prefix, cfg->name)) {
		snprintf(err, len, "cluster: prefix '%s' or name '%s' is not usable", cfg->prefix,
			 cfg->name);
		free(c);
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < cfg->n_endpoints; i++)
		eps[i] = cfg->endpoints[i];
	o.endpoints = eps;
	o.n_endpoints = cfg->n_endpoints;
	o.user = cfg->user[0] ? cfg->user : NULL;
	o.password = cfg->password[0] ? cfg->password : NULL;
	o.ca = cfg->ca[0] ? cfg->ca : NULL;
	o.cert = cfg->cert[0] ? cfg->cert : NULL;
	o.key = cfg->key[0] ? cfg->key : NULL;
	o.timeout_ms = cfg->timeout_ms;
	o.connect_timeout_ms = cfg->timeout_ms / 3 ? cfg->timeout_ms / 3 : 1;
	c->pub_etcd = etcd_new(&o, err, len);
	if (c->pub_etcd)
		c->watch_etcd = etcd_new(&o, err, len);
	snprintf(c->st.node, sizeof(c->st.node), "%s", cfg->node);
	snprintf(c->st.cluster, sizeof(c->st.cluster), "%s", cfg->name);
	snprintf(c->st.endpoint, sizeof(c->st.endpoint), "%s", cfg->endpoints[0]);
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_condattr_t a;

		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cond, &a);
		pthread_condattr_destroy(&a);
	}
	if (!c->watch_etcd)
		goto fail;
	if (pthread_create(&c->pub_thread, NULL, pub_main, c)) {
		snprintf(err, len, "cluster: no thread");
		goto fail;
	}
	c->pub_started = true;
	if (pthread_create(&c->watch_thread, NULL, watch_main, c)) {
		snprintf(err, len, "cluster: no thread");
		goto fail;
	}
	c->watch_started = true;
	c->log(LOG_INFO, "cluster: node %s of cluster %s under %s, %u endpoints, lease TTL %u s",
	       cfg->node, cfg->name, c->view.base, cfg->n_endpoints, cfg->lease_ttl_s);
	return c;
fail:
	kvd_cluster_stop(c, false);
	errno = EINVAL;
	return NULL;
}

void kvd_cluster_stop(struct kvd_cluster *c, bool revoke)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
	c->revoke = revoke;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (c->pub_started)
		pthread_join(c->pub_thread, NULL);
	if (c->watch_started)
		pthread_join(c->watch_thread, NULL);
	etcd_free(c->pub_etcd);
	etcd_free(c->watch_etcd);
	kvd_cview_free(&c->view);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c->cfg.password, sizeof(c->cfg.password));
	free(c);
}

void kvd_cluster_update(struct kvd_cluster *c, const struct kvd_cluster_facts *f)
{
	pthread_mutex_lock(&c->lock);
	c->facts = *f;
	snprintf(c->facts.node.name, sizeof(c->facts.node.name), "%s", c->cfg.node);
	snprintf(c->facts.node.ucx_address, sizeof(c->facts.node.ucx_address), "%s",
		 c->cfg.ucx_address);
	c->facts.node.engines = f->nengines;
	{
		unsigned int i;

		for (i = 0; i < c->facts.nengines; i++)
			snprintf(c->facts.engines[i].node, sizeof(c->facts.engines[i].node), "%s",
				 c->cfg.node);
	}
	if (!c->have_facts || !c->have_pub ||
	    kvd_cluster_changed(&c->pub, &c->facts, c->cfg.change_threshold)) {
		c->dirty = true;
		pthread_cond_broadcast(&c->cond);
	}
	c->have_facts = true;
	pthread_mutex_unlock(&c->lock);
}

static void status_locked(struct kvd_cluster *c, struct kvd_cluster_status *st)
{
	int64_t now = mono_ms();

	*st = c->st;
	st->stale = !c->in_sync || c->lease_failing;
	st->age_ms = st->stale ? (c->sync_at ? now - c->sync_at : -1) : 0;
	/* While the lease fails, the view is as old as the last renewal. */
	if (c->in_sync && c->lease_failing)
		st->age_ms = now - c->lease_ok_at;
	st->published = c->lease && c->have_pub && !c->dirty_all && !c->lease_failing;
}

void kvd_cluster_status(struct kvd_cluster *c, struct kvd_cluster_status *st)
{
	pthread_mutex_lock(&c->lock);
	status_locked(c, st);
	pthread_mutex_unlock(&c->lock);
}

int kvd_cluster_snapshot(struct kvd_cluster *c, struct kvd_cluster_snap *s)
{
	int ret = 0;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&c->lock);
	status_locked(c, &s->st);
	if (c->view.nnodes) {
		s->nodes = malloc(c->view.nnodes * sizeof(*s->nodes));
		if (s->nodes) {
			memcpy(s->nodes, c->view.nodes, c->view.nnodes * sizeof(*s->nodes));
			s->nnodes = c->view.nnodes;
		} else {
			ret = -ENOMEM;
		}
	}
	if (c->view.nengines && !ret) {
		s->engines = malloc(c->view.nengines * sizeof(*s->engines));
		if (s->engines) {
			memcpy(s->engines, c->view.engines, c->view.nengines * sizeof(*s->engines));
			s->nengines = c->view.nengines;
		} else {
			ret = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		kvd_cluster_snap_free(s);
	return ret;
}

void kvd_cluster_snap_free(struct kvd_cluster_snap *s)
{
	free(s->nodes);
	free(s->engines);
	s->nodes = NULL;
	s->engines = NULL;
	s->nnodes = s->nengines = 0;
}
