// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the HTTP server's engine thread: the only thread that
 * steps the engine. An HTTP thread adds its request to the scheduler
 * itself (serve_driver_add(): an urgent arrival makes the running
 * prefills yield at once) and hands the job over through a locked queue,
 * waking this thread with an eventfd (so do cancellations); this thread
 * steps the scheduler and the engine (serve_driver_step()), delivers the
 * new tokens to each job, waking its HTTP thread, and answers kvacceld's
 * pressure rounds. With nothing to run it sleeps in poll() on the eventfd,
 * the scheduler's fd, the mover's and the daemon's socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "http_int.h"

double http_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void http_kick(struct serve_http *h)
{
	uint64_t one = 1;

	if (write(h->efd, &one, sizeof(one)) < 0)
		perror("kvaccel-serve: eventfd");
}

struct http_job *http_job_new(const struct http_creq *r)
{
	struct http_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->req = *r;
	j->tok = calloc(r->p.max_tokens, sizeof(*j->tok));
	j->digest = calloc(r->p.max_tokens, sizeof(*j->digest));
	if (!j->tok || !j->digest) {
		free(j->tok);
		free(j->digest);
		free(j);
		return NULL;
	}
	pthread_cond_init(&j->cond, NULL);
	j->refs = 1;
	j->status = 200;
	j->t_arrive = http_now();
	return j;
}

void http_job_put(struct http_job *j)
{
	if (--j->refs)
		return;
	pthread_cond_destroy(&j->cond);
	free(j->req.prompt);
	free(j->tok);
	free(j->digest);
	free(j);
}

/* Client names share the scheduler's fair-share counters by hash. */
static uint32_t client_id(const char *name, uint32_t max)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return max ? h % max : 0;
}

int http_submit(struct serve_http *h, struct http_job *j)
{
	int ret = 0;

	pthread_mutex_lock(&h->mu);
	if (h->quiescing || h->stopping)
		ret = -ESHUTDOWN;
	else if (h->in_flight >= h->o.max_concurrent)
		ret = -EBUSY;
	if (!ret)
		h->in_flight++;
	pthread_mutex_unlock(&h->mu);
	if (ret)
		return ret;
	j->req.p.client = client_id(j->req.client, h->o.max_clients ? h->o.max_clients : 64);
	j->req.p.offline = j->req.offline;
	ret = serve_driver_add(h->o.driver, j->req.prompt, j->req.n_prompt, &j->req.p, &j->id);
	pthread_mutex_lock(&h->mu);
	if (ret) {
		h->in_flight--;
	} else {
		j->seq = ++h->next_seq;
		j->refs++;
		*h->queue_tail = j;
		h->queue_tail = &j->next;
	}
	pthread_mutex_unlock(&h->mu);
	if (!ret)
		http_kick(h);
	return ret;
}

void http_job_abandon(struct serve_http *h, struct http_job *j)
{
	bool kick;

	pthread_mutex_lock(&h->mu);
	kick = !j->done;
	j->cancelled = true;
	http_job_put(j);
	pthread_mutex_unlock(&h->mu);
	if (kick)
		http_kick(h);
}

static void observe(uint64_t *b, uint64_t *n, double *sum, double ms)
{
	int i;

	for (i = 0; i < HTTP_NR_BUCKETS; i++)
		if (ms <= http_buckets[i])
			b[i]++;
	(*n)++;
	*sum += ms;
}

/* Under mu: the job ends with @status; the engine thread's reference goes. */
static void finish(struct serve_http *h, struct http_job *j, int status, const char *msg)
{
	j->done = true;
	j->status = status;
	if (msg)
		snprintf(j->msg, sizeof(j->msg), "%s", msg);
	if (status == 200) {
		h->st.generated += j->n_out;
		h->st.prompt_tokens += j->req.n_prompt;
		if (j->n_out) {
			observe(h->st.ttft_b, &h->st.ttft_n, &h->st.ttft_sum,
				(j->t_first - j->t_arrive) * 1e3);
		}
		if (j->n_out > 1)
			observe(h->st.tpot_b, &h->st.tpot_n, &h->st.tpot_sum,
				(j->t_last - j->t_first) * 1e3 / (j->n_out - 1));
	}
	h->st.cancelled += status == 499;
	h->in_flight--;
	pthread_cond_broadcast(&j->cond);
	http_job_put(j);
}

struct eng {
	struct serve_http *h;
	struct http_job *active;
};

/* Take the queue (its requests are the scheduler's already). */
static void admit(struct eng *g)
{
	struct serve_http *h = g->h;
	struct http_job *q, *j;

	pthread_mutex_lock(&h->mu);
	q = h->queue;
	h->queue = NULL;
	h->queue_tail = &h->queue;
	pthread_mutex_unlock(&h->mu);
	while ((j = q)) {
		q = j->next;
		j->next = g->active;
		g->active = j;
	}
}

/* Under mu: a finished request's queueing and stall, as the scheduler counted them. */
static void account(struct serve_http *h, const struct accel_sched_req_info *q)
{
	observe(h->st.queue_b, &h->st.queue_n, &h->st.queue_sum, (double)q->queue_ns / 1e6);
	h->st.stall_sum += (double)q->stall_ns / 1e6;
}

/*
 * Deliver new tokens; end finished and aborted jobs; abort the cancelled
 * ones (all, with @abort: they end when the scheduler has let them go).
 */
static void deliver(struct eng *g, bool abort)
{
	struct serve_http *h = g->h;
	struct serve_driver *d = h->o.driver;
	struct http_job **pp = &g->active, *j;
	struct serve_driver_info in;
	uint32_t run = 0, wait = 0, swp = 0, t;
	double now = http_now();

	pthread_mutex_lock(&h->mu);
	while ((j = *pp)) {
		if (serve_driver_info(d, j->id, &in)) {
			*pp = j->next;
			finish(h, j, 500, "the engine lost the request");
			continue;
		}
		if (in.req.n_generated > j->n_out) {
			memcpy(j->tok + j->n_out, in.req.tokens + j->n_out,
			       (in.req.n_generated - j->n_out) * sizeof(*j->tok));
			memcpy(j->digest + j->n_out, in.req.digests + j->n_out,
			       (in.req.n_generated - j->n_out) * sizeof(*j->digest));
			if (!j->n_out)
				j->t_first = now;
			j->t_last = now;
			j->n_out = in.req.n_generated;
			pthread_cond_broadcast(&j->cond);
		}
		if (!j->t_sched && in.sched.first_sched_ns)
			j->t_sched = now;
		j->preemptions = in.sched.swaps_out + in.sched.recomputes;
		j->swaps = in.sched.swaps_out;
		j->recomputes = in.sched.recomputes;
		j->yields = in.sched.yields;
		j->recomputed = in.sched.recomputed_tokens;
		j->swapped_bytes = in.sched.swapped_bytes;
		j->preempted_ms = (double)in.sched.stall_ns / 1e6;
		if ((j->cancelled || abort) && !j->abort_sent &&
		    in.sched.state != ACCEL_SCHED_FINISHED) {
			j->abort_sent = true;
			serve_driver_abort(d, j->id);
			if (serve_driver_info(d, j->id, &in)) {
				*pp = j->next;
				finish(h, j, 500, "the engine lost the request");
				continue;
			}
		}
		if (in.sched.state == ACCEL_SCHED_FINISHED ||
		    in.sched.state == ACCEL_SCHED_ABORTED) {
			bool ok = in.sched.state == ACCEL_SCHED_FINISHED;

			*pp = j->next;
			if (ok)
				account(h, &in.sched);
			serve_driver_release(d, j->id);
			finish(h, j, ok ? 200 : j->cancelled ? 499 : abort ? 503 : 500,
			       ok ? NULL : abort ? "the server is shutting down" :
			       "the engine could not take the request");
			continue;
		}
		run += in.req.state == SERVE_RUNNING;
		wait += in.req.state == SERVE_WAITING;
		swp += in.req.state == SERVE_SWAPPED;
		pp = &j->next;
	}
	h->st.running = run;
	h->st.waiting = wait;
	h->st.swapped = swp;
	for (t = 0; t < 2; t++)
		serve_driver_usage(d, t, &h->st.used[t], &h->st.total[t]);
	h->st.sched.sz = sizeof(h->st.sched);
	serve_driver_stats(d, &h->st.sched);
	h->st.pressure_rounds = serve_kvd_rounds(h->o.kvd);
	pthread_mutex_unlock(&h->mu);
}

/* Jobs aborted at shutdown whose runs or swaps were in flight: step until they let go. */
static void drain(struct eng *g)
{
	int i;

	for (i = 0; g->active && i < 1000; i++) {
		if (serve_driver_step(g->h->o.driver, NULL) < 0)
			break;
		deliver(g, true);
	}
	while (g->active) {
		struct http_job *j = g->active;

		g->active = j->next;
		pthread_mutex_lock(&g->h->mu);
		finish(g->h, j, 503, "the server is shutting down");
		pthread_mutex_unlock(&g->h->mu);
	}
}

static void *engine_main(void *arg)
{
	struct eng g = { .h = arg };
	struct serve_http *h = g.h;
	struct serve_driver_step ss;
	uint64_t v;
	bool stop;
	int ret;

	for (;;) {
		pthread_mutex_lock(&h->mu);
		stop = h->stopping;
		pthread_mutex_unlock(&h->mu);
		admit(&g);
		deliver(&g, stop);
		if (stop)
			break;
		ret = serve_driver_step(h->o.driver, &ss);
		if (ret < 0) {
			fprintf(stderr, "kvaccel-serve: a step failed: %s\n", strerror(-ret));
			deliver(&g, true);
			continue;
		}
		pthread_mutex_lock(&h->mu);
		h->st.steps += ss.runs != 0;
		h->st.swap_out_blocks += ss.swap_out_blocks;
		h->st.swap_in_blocks += ss.swap_in_blocks;
		pthread_mutex_unlock(&h->mu);
		if (!ret) {
			/*
			 * Idle until a job, a cancel, a swap completion or the
			 * daemon; with requests alive, no longer than a step (a
			 * paced decode runs once the clock has moved).
			 */
			int fds[2] = { h->efd, serve_kvd_fd(h->o.kvd) };

			deliver(&g, false);
			serve_driver_wait(h->o.driver, fds, 2, serve_driver_idle_ms(h->o.driver));
		}
		if (h->o.kvd) {
			struct pollfd pf = { .fd = serve_kvd_fd(h->o.kvd), .events = POLLIN };

			if (pf.fd >= 0 && poll(&pf, 1, 0) > 0)
				serve_kvd_dispatch(h->o.kvd);
		}
		if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			perror("kvaccel-serve: eventfd");
	}
	drain(&g);
	return NULL;
}

int http_engine_start(struct serve_http *h)
{
	int ret;

	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0)
		return -errno;
	ret = -pthread_create(&h->thread, NULL, engine_main, h);
	if (ret) {
		close(h->efd);
		h->efd = -1;
		return ret;
	}
	h->thread_started = true;
	return 0;
}

void http_engine_stop(struct serve_http *h)
{
	if (!h->thread_started)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_mutex_unlock(&h->mu);
	http_kick(h);
	pthread_join(h->thread, NULL);
	h->thread_started = false;
	close(h->efd);
	h->efd = -1;
}
