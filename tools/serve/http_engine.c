// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the HTTP server's engine thread: the only thread that
 * calls the engine. HTTP threads hand it jobs through a locked submission
 * queue and wake it with an eventfd (so do cancellations); it plans a batch
 * (http_plan(): the one place a scheduler would replace the FCFS policy),
 * steps, and delivers the new tokens to each job, waking its HTTP thread.
 * With nothing to run it sleeps in read() on the eventfd.
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

int http_submit(struct serve_http *h, struct http_job *j)
{
	int ret = 0;

	pthread_mutex_lock(&h->mu);
	if (h->quiescing || h->stopping)
		ret = -ESHUTDOWN;
	else if (h->in_flight >= h->o.max_concurrent)
		ret = -EBUSY;
	if (!ret) {
		j->seq = ++h->next_seq;
		j->refs++;
		h->in_flight++;
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

/* The policy: the built-in FCFS planner (a scheduler replaces this one function). */
static int http_plan(struct serve_http *h, struct serve_batch_buf *bb)
{
	return serve_fcfs_plan(h->o.engine, &h->o.fcfs, bb);
}

struct eng {
	struct serve_http *h;
	struct http_job *active;
	struct serve_batch_buf bb;
};

/* Take the queue; add its jobs to the engine. */
static void admit(struct eng *g)
{
	struct serve_http *h = g->h;
	struct http_job *q, *j;
	int ret;

	pthread_mutex_lock(&h->mu);
	q = h->queue;
	h->queue = NULL;
	h->queue_tail = &h->queue;
	pthread_mutex_unlock(&h->mu);
	while ((j = q)) {
		q = j->next;
		ret = serve_engine_add(h->o.engine, j->req.prompt, j->req.n_prompt, &j->req.p,
				       &j->id);
		if (ret) {
			pthread_mutex_lock(&h->mu);
			finish(h, j, ret == -E2BIG ? 413 : ret == -EINVAL ? 400 : 500,
			       ret == -E2BIG ? "the prompt and max_tokens exceed the context or the "
			       "compute tier" : strerror(-ret));
			pthread_mutex_unlock(&h->mu);
			continue;
		}
		j->next = g->active;
		g->active = j;
	}
}

/* Deliver new tokens; end finished, cancelled (all, with @abort) jobs. */
static void deliver(struct eng *g, bool abort)
{
	struct serve_http *h = g->h;
	struct http_job **pp = &g->active, *j;
	struct serve_req_info in;
	uint32_t run = 0, wait = 0, swp = 0, t;
	double now = http_now();

	pthread_mutex_lock(&h->mu);
	while ((j = *pp)) {
		if (serve_engine_info(h->o.engine, j->id, &in)) {
			*pp = j->next;
			finish(h, j, 500, "the engine lost the request");
			continue;
		}
		if (in.n_generated > j->n_out) {
			memcpy(j->tok + j->n_out, in.tokens + j->n_out,
			       (in.n_generated - j->n_out) * sizeof(*j->tok));
			memcpy(j->digest + j->n_out, in.digests + j->n_out,
			       (in.n_generated - j->n_out) * sizeof(*j->digest));
			if (!j->n_out)
				j->t_first = now;
			j->t_last = now;
			j->n_out = in.n_generated;
			pthread_cond_broadcast(&j->cond);
		}
		if (!j->t_sched && in.n_computed)
			j->t_sched = now;
		j->preemptions = in.swaps_out + in.drops;
		if (in.state == SERVE_FINISHED || j->cancelled || abort) {
			*pp = j->next;
			h->st.swaps += in.swaps_out;
			h->st.recomputes += in.drops;
			serve_engine_release(h->o.engine, j->id);
			finish(h, j, in.state == SERVE_FINISHED ? 200 : j->cancelled ? 499 : 503,
			       in.state == SERVE_FINISHED ? NULL : "the server is shutting down");
			continue;
		}
		run += in.state == SERVE_RUNNING;
		wait += in.state == SERVE_WAITING;
		swp += in.state == SERVE_SWAPPED;
		pp = &j->next;
	}
	h->st.running = run;
	h->st.waiting = wait;
	h->st.swapped = swp;
	for (t = 0; t < 2; t++)
		serve_engine_usage(h->o.engine, t, &h->st.used[t], &h->st.total[t]);
	pthread_mutex_unlock(&h->mu);
}

static void *engine_main(void *arg)
{
	struct eng g = { .h = arg };
	struct serve_http *h = g.h;
	struct serve_step_stats ss;
	struct pollfd pfd = { .fd = h->efd, .events = POLLIN };
	uint64_t v;
	bool stop;
	int ret;

	if (serve_batch_buf_init(&g.bb, 16)) {
		fprintf(stderr, "kvaccel-serve: out of memory\n");
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&h->mu);
		stop = h->stopping;
		pthread_mutex_unlock(&h->mu);
		admit(&g);
		deliver(&g, stop);
		if (stop)
			break;
		ret = g.active ? http_plan(h, &g.bb) : 0;
		if (ret < 0) {
			fprintf(stderr, "kvaccel-serve: planning failed: %s\n", strerror(-ret));
			deliver(&g, true);
			continue;
		}
		if (!ret) {
			/* Idle (or stuck: nothing can run), until a job or a cancel comes. */
			if (g.active)
				fprintf(stderr, "kvaccel-serve: no batch can run; waiting\n");
			while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
				;
			if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				perror("kvaccel-serve: eventfd");
			continue;
		}
		ret = serve_engine_step(h->o.engine, &g.bb.b, &ss);
		if (ret) {
			fprintf(stderr, "kvaccel-serve: a step failed: %s\n", strerror(-ret));
			deliver(&g, true);
			continue;
		}
		pthread_mutex_lock(&h->mu);
		h->st.steps++;
		h->st.swap_out_blocks += ss.swap_out_blocks;
		h->st.swap_in_blocks += ss.swap_in_blocks;
		pthread_mutex_unlock(&h->mu);
		if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			perror("kvaccel-serve: eventfd");
	}
	serve_batch_buf_fini(&g.bb);
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
