// SPDX-License-Identifier: MIT
/*
 * libaccel - the data mover (accel_mover.h).
 *
 * A job between host tiers of one device is a chain of copy-engine jobs
 * (coalesced segments, at most KVACCEL_COPY_MAX_SEGMENTS and
 * KVACCEL_COPY_MAX_BYTES each, each after the previous one), the job's
 * fence the last one's. A job with a device tier is a CUDA job: its
 * copies are queued on CUDA streams at submission (tier_cuda.c), and the
 * mover keeps the tickets to wait for. Any other job is a memcpy on the
 * worker thread. The worker runs queued memcpy jobs, and otherwise poll()s
 * the sync_file fds of the copy-engine jobs in flight and its wake-up
 * eventfd. CUDA jobs have a thread of their own, started with the first:
 * it waits for their tickets in submission order (accel_cuda_tier_wait(),
 * blocking in cuEventSynchronize: no spinning), so a CUDA job finishes no
 * earlier than the CUDA jobs submitted before it. Finished jobs go on a
 * done list, which the eventfd the caller sees (accel_mover_fd()) mirrors:
 * readable while the list is not empty.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../cuda/cuda_tier.h"
#include "mover.h"

enum job_kind { JOB_MEMCPY, JOB_ENGINE, JOB_CUDA };

/* A memcpy run, resolved to addresses at submission. */
struct mc_run {
	unsigned char *src, *dst;
	size_t len;
};

struct job {
	struct job *next;		/* a queue, the engine list, or the done list */
	enum job_kind kind;
	struct mc_run *runs;		/* JOB_MEMCPY */
	uint32_t nr_runs;
	struct accel_fence *fence;	/* JOB_ENGINE */
	int fd;				/* its sync_file */
	struct accel_cuda_wait *waits;	/* JOB_CUDA: the tickets to wait for */
	uint32_t nr_waits;
	int cuda_status;		/* a failure after part of it was queued */
	/* What accel_mover_poll() hands back; the job stays allocated till then. */
	struct accel_mover_done d;
};

/* A copy-engine job the worker polls, and the state it read. */
struct watch {
	struct job *job;
	int status;
};

struct accel_mover {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;	/* a job finished */
	pthread_t worker;
	int event_fd;			/* the caller's: readable while done is not empty */
	int wake_fd;			/* the worker's */
	/* Under lock: */
	bool stop;
	uint64_t next_id;
	struct job *mc_head, **mc_tail;	/* memcpy jobs queued, FIFO */
	struct job *engine;		/* copy-engine jobs in flight */
	uint32_t nr_engine;
	struct job *done_head, **done_tail;
	uint32_t pending;
	struct job *cu_head, **cu_tail;	/* CUDA jobs in flight, FIFO */
	pthread_cond_t cu_cond;		/* a CUDA job queued, or stop */
	pthread_t cu_waiter;
	bool cu_started;
	/* The worker's own: */
	struct pollfd *pfd;
	struct watch *watched;		/* the job of each pfd[i], i >= 1 */
	uint32_t pfd_cap;
};

static void wake(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));

	(void)r;	/* EAGAIN: the counter is full, so readable anyway */
}

static void drain(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));

	(void)r;
}

static void job_release(struct job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	accel_fence_destroy(j->fence);
	j->fence = NULL;
	free(j->runs);
	j->runs = NULL;
	free(j->waits);
	j->waits = NULL;
}

/*
 * Under m->lock: @j (released already: its fd closed and its fence dropped
 * outside the lock) finished with @status; onto the done list.
 */
static void finish(struct accel_mover *m, struct job *j, int status)
{
	j->d.status = status;
	j->next = NULL;
	*m->done_tail = j;
	m->done_tail = &j->next;
	m->pending--;
	wake(m->event_fd);
	pthread_cond_broadcast(&m->done_cond);
}

static void run_memcpy(struct job *j)
{
	uint32_t i;

	for (i = 0; i < j->nr_runs; i++)
		memcpy(j->runs[i].dst, j->runs[i].src, j->runs[i].len);
}

/* Room for @n watched fds (and their jobs); short of memory, fewer (the rest later). */
static void watch_room(struct accel_mover *m, uint32_t n)
{
	struct pollfd *p;
	struct watch *w;

	if (n <= m->pfd_cap)
		return;
	n += 16;
	p = realloc(m->pfd, n * sizeof(*p));
	if (p)
		m->pfd = p;
	w = p ? realloc(m->watched, n * sizeof(*w)) : NULL;
	if (w) {
		m->watched = w;
		m->pfd_cap = n;
	}
}

/*
 * Only the worker takes jobs off the engine list, so the jobs it watches
 * stay put while it polls and reads their state without the lock.
 */
static void *worker(void *arg)
{
	struct accel_mover *m = arg;
	uint32_t n, i;

	for (;;) {
		struct job *j, **pp;

		pthread_mutex_lock(&m->lock);
		if (m->mc_head) {
			j = m->mc_head;
			m->mc_head = j->next;
			if (!m->mc_head)
				m->mc_tail = &m->mc_head;
			pthread_mutex_unlock(&m->lock);
			run_memcpy(j);
			job_release(j);
			pthread_mutex_lock(&m->lock);
			finish(m, j, 0);
			pthread_mutex_unlock(&m->lock);
			continue;
		}
		if (m->stop && !m->engine) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		watch_room(m, m->nr_engine + 1);
		m->pfd[0] = (struct pollfd) { .fd = m->wake_fd, .events = POLLIN };
		n = 1;
		for (j = m->engine; j && n < m->pfd_cap; j = j->next) {
			m->watched[n] = (struct watch) { .job = j };
			m->pfd[n++] = (struct pollfd) { .fd = j->fd, .events = POLLIN };
		}
		pthread_mutex_unlock(&m->lock);

		if (poll(m->pfd, n, -1) < 0)
			continue;	/* EINTR */
		if (m->pfd[0].revents)
			drain(m->wake_fd);
		/* The state of each job whose fence signalled. */
		for (i = 1; i < n; i++) {
			struct watch *w = &m->watched[i];

			if (!m->pfd[i].revents)
				continue;
			w->status = accel_fence_status(w->job->fence);
			if (w->status == 0 && (m->pfd[i].revents & (POLLERR | POLLNVAL)))
				w->status = -EIO;
			/* Final: the job stays on the list, its fd and fence go now. */
			if (w->status)
				job_release(w->job);
		}
		pthread_mutex_lock(&m->lock);
		for (i = 1; i < n; i++) {
			int status = m->watched[i].status;

			if (status == 0)
				continue;
			j = m->watched[i].job;
			for (pp = &m->engine; *pp != j; pp = &(*pp)->next)
				;
			*pp = j->next;
			m->nr_engine--;
			finish(m, j, status == 1 ? 0 : status);
		}
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

/*
 * The CUDA jobs' waiter: the oldest job's tickets, one after the other,
 * each a blocking wait; the first failure is the job's status.
 */
static void *cuda_waiter(void *arg)
{
	struct accel_mover *m = arg;

	for (;;) {
		struct job *j;
		uint32_t i;
		int st;

		pthread_mutex_lock(&m->lock);
		while (!m->cu_head && !m->stop)
			pthread_cond_wait(&m->cu_cond, &m->lock);
		j = m->cu_head;
		if (!j) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		m->cu_head = j->next;
		if (!m->cu_head)
			m->cu_tail = &m->cu_head;
		pthread_mutex_unlock(&m->lock);
		st = j->cuda_status;
		for (i = 0; i < j->nr_waits; i++) {
			int r = accel_cuda_tier_wait(j->waits[i].ct, j->waits[i].ticket, -1);

			st = st ? st : r;
		}
		job_release(j);
		pthread_mutex_lock(&m->lock);
		finish(m, j, st);
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

ACCEL_EXPORT struct accel_mover *accel_mover_create(const struct accel_mover_opts *opts)
{
	struct accel_mover *m;
	pthread_condattr_t ca;
	int ret = accel_opts_valid(opts, sizeof(*opts));

	if (!ret && ACCEL_OPTS_GET(opts, flags, 0))
		ret = -EINVAL;
	if (ret) {
		errno = -ret;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->mc_tail = &m->mc_head;
	m->done_tail = &m->done_head;
	m->cu_tail = &m->cu_head;
	m->next_id = 1;
	m->event_fd = -1;
	m->wake_fd = -1;
	m->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->event_fd < 0 || m->wake_fd < 0) {
		ret = errno;
		goto err;
	}
	m->pfd = calloc(16, sizeof(*m->pfd));
	m->watched = calloc(16, sizeof(*m->watched));
	if (!m->pfd || !m->watched) {
		ret = ENOMEM;
		goto err;
	}
	m->pfd_cap = 16;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->done_cond, &ca);
	pthread_cond_init(&m->cu_cond, NULL);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&m->worker, NULL, worker, m);
	if (ret) {
		pthread_cond_destroy(&m->cu_cond);
		pthread_cond_destroy(&m->done_cond);
		pthread_mutex_destroy(&m->lock);
		goto err;
	}
	return m;
err:
	free(m->pfd);
	free(m->watched);
	if (m->event_fd >= 0)
		close(m->event_fd);
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	free(m);
	errno = ret;
	return NULL;
}

ACCEL_EXPORT void accel_mover_destroy(struct accel_mover *m)
{
	struct job *e, *next;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cu_cond);
	pthread_mutex_unlock(&m->lock);
	wake(m->wake_fd);
	pthread_join(m->worker, NULL);
	/* It drains the CUDA jobs in flight before it stops. */
	if (m->cu_started)
		pthread_join(m->cu_waiter, NULL);
	for (e = m->done_head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(m->pfd);
	free(m->watched);
	close(m->event_fd);
	close(m->wake_fd);
	pthread_cond_destroy(&m->cu_cond);
	pthread_cond_destroy(&m->done_cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/*
 * Check every run against its tiers and @sel; *engine: all of them on one
 * device's copy engine; *cuda: some run has a device tier.
 */
static int runs_check(const struct accel_tier *const tiers[], uint32_t nr_tiers,
		      const struct accel_bm_run *runs, uint32_t n,
		      const struct accel_piece_sel *sel, bool *engine, bool *cuda)
{
	struct accel_device *dev = NULL;
	uint32_t i;

	*engine = n > 0;
	*cuda = false;
	for (i = 0; i < n; i++) {
		const struct accel_bm_run *r = &runs[i];
		const struct accel_tier *s, *d;

		if (r->src_tier >= nr_tiers || r->dst_tier >= nr_tiers)
			return -EINVAL;
		s = tiers[r->src_tier];
		d = tiers[r->dst_tier];
		if (!s || !d || !r->count || s->block_bytes != d->block_bytes ||
		    r->src_block >= s->blocks || r->count > s->blocks - r->src_block ||
		    r->dst_block >= d->blocks || r->count > d->blocks - r->dst_block)
			return -EINVAL;
		/* A run overlapping itself. */
		if (s == d && r->src_block != r->dst_block &&
		    (r->src_block < r->dst_block ? r->dst_block - r->src_block :
						   r->src_block - r->dst_block) < r->count)
			return -EINVAL;
		if (s == d && r->src_block == r->dst_block)
			return -EINVAL;
		/* Layer pieces: the same cut on both ends. */
		if (sel->layers && (s->layers != d->layers || sel->first >= s->layers ||
				    sel->count > s->layers - sel->first))
			return -EINVAL;
		if (!accel_tier_contiguous(s) && !accel_tier_contiguous(d) && s->layers != d->layers)
			return -EINVAL;
		if (accel_tier_is_cuda(s) || accel_tier_is_cuda(d))
			*cuda = true;
		if (s->kind != ACCEL_TIER_HOST || d->kind != ACCEL_TIER_HOST ||
		    s->dev != d->dev || (dev && s->dev != dev))
			*engine = false;
		dev = s->dev;
	}
	return 0;
}

static int submit_memcpy(struct job *j, const struct accel_tier *const tiers[],
			 const struct accel_bm_run *runs, uint32_t n,
			 const struct accel_piece_sel *sel)
{
	struct accel_piece *p;
	uint64_t cap = 0;
	size_t nr = 0, i;

	j->kind = JOB_MEMCPY;
	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		cap += accel_run_pieces_max(tiers[runs[i].src_tier], tiers[runs[i].dst_tier],
					    &runs[i], sel);
	if (cap > SIZE_MAX / sizeof(*p) || cap > UINT32_MAX)
		return -ENOMEM;
	p = calloc(cap, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		nr = accel_run_pieces(tiers[runs[i].src_tier], tiers[runs[i].dst_tier], &runs[i],
				      sel, p, nr, SIZE_MAX);
	j->runs = calloc(nr, sizeof(*j->runs));
	if (!j->runs) {
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < nr; i++)
		j->runs[i] = (struct mc_run){
			.src = (unsigned char *)(uintptr_t)p[i].src,
			.dst = (unsigned char *)(uintptr_t)p[i].dst,
			.len = p[i].len,
		};
	j->nr_runs = (uint32_t)nr;
	free(p);
	return 0;
}

/*
 * Segments of the copy engine: the runs' pieces, adjacent ones coalesced
 * (within one pair of objects: each tier's region, or a window tier's
 * space, which the module resolves to what its slots are bound to at
 * submission), each segment at most
 * KVACCEL_COPY_MAX_BYTES (and @max_seg, if not 0); chained jobs of at
 * most KVACCEL_COPY_MAX_SEGMENTS segments and KVACCEL_COPY_MAX_BYTES
 * bytes. Shared with the KV cache's host backend (mover.h).
 */
int accel_tier_copy_engine(const struct accel_tier *const tiers[], const struct accel_bm_run *runs,
			   uint32_t n, const struct accel_piece_sel *sel, uint64_t max_seg,
			   struct accel_fence **fence)
{
	uint64_t cap = 0, most = 0, k, max_len = KVACCEL_COPY_MAX_BYTES;
	struct accel_device *dev;
	struct accel_piece *pc = NULL;
	struct accel_copy_seg *segs;
	size_t nr = 0, np, q;
	uint32_t i;
	int ret = 0;

	*fence = NULL;
	if (!n)
		return 0;
	if (max_seg && max_seg < max_len)
		max_len = max_seg;
	dev = tiers[runs[0].src_tier]->dev;
	for (i = 0; i < n; i++) {
		k = accel_run_pieces_max(tiers[runs[i].src_tier], tiers[runs[i].dst_tier], &runs[i],
					 sel);
		cap += k;
		most = k > most ? k : most;
	}
	if (cap > SIZE_MAX / sizeof(*segs) || most > SIZE_MAX / sizeof(*pc))
		return -ENOMEM;
	segs = calloc(cap, sizeof(*segs));
	pc = calloc(most, sizeof(*pc));
	if (!segs || !pc) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct accel_tier *s = tiers[runs[i].src_tier], *d = tiers[runs[i].dst_tier];
		struct accel_obj *so = accel_tier_obj(s), *dob = accel_tier_obj(d);

		np = accel_run_pieces(s, d, &runs[i], sel, pc, 0, max_len);
		for (q = 0; q < np; q++) {
			struct accel_copy_seg *p = nr ? &segs[nr - 1] : NULL;
			uint64_t src = pc[q].src - (uintptr_t)s->base;
			uint64_t dst = pc[q].dst - (uintptr_t)d->base;

			/* Coalesce with the previous segment where it ends where this starts. */
			if (p && p->src == so && p->dst == dob && p->src_offset + p->length == src &&
			    p->dst_offset + p->length == dst && p->length + pc[q].len <= max_len) {
				p->length += pc[q].len;
			} else {
				segs[nr++] = (struct accel_copy_seg) {
					.src = so, .src_offset = src, .dst = dob, .dst_offset = dst,
					.length = pc[q].len,
				};
			}
		}
	}
	ret = accel_copy_chain(dev, segs, nr, fence);
out:
	free(pc);
	free(segs);
	return ret;
}

static int submit_engine(struct job *j, const struct accel_tier *const tiers[],
			 const struct accel_bm_run *runs, uint32_t n,
			 const struct accel_piece_sel *sel)
{
	struct accel_fence *fence = NULL;
	int ret;

	j->kind = JOB_ENGINE;
	ret = accel_tier_copy_engine(tiers, runs, n, sel, 0, &fence);
	if (ret)
		return ret;
	j->fence = fence;
	/* Done already (a small copy the kernel finished): no fd needed. */
	if (accel_fence_status(fence) == 0) {
		ret = accel_fence_fd(fence);
		if (ret < 0) {
			/* No fd to watch: finish it here. */
			accel_fence_wait(fence, -1);
			return 0;
		}
		j->fd = ret;
	}
	return 0;
}

/* The submission's piece selection and events: 0, or -EINVAL. */
static int submit_opts_check(const struct accel_mover_submit_opts *opts,
			     struct accel_piece_sel *sel, void **wait_ev, void **rec_ev)
{
	uint32_t flags = ACCEL_OPTS_GET(opts, flags, 0);

	if (flags & ~ACCEL_MOVER_SUBMIT_FLAGS || ACCEL_OPTS_GET(opts, pad, 0))
		return -EINVAL;
	sel->layers = flags & ACCEL_MOVER_LAYERS;
	sel->first = ACCEL_OPTS_GET(opts, layer_first, 0);
	sel->count = ACCEL_OPTS_GET(opts, layer_count, 0);
	if (sel->layers ? !sel->count : sel->first || sel->count)
		return -EINVAL;
	*wait_ev = ACCEL_OPTS_GET(opts, wait_event, NULL);
	*rec_ev = ACCEL_OPTS_GET(opts, record_event, NULL);
	if (!(flags & ACCEL_MOVER_WAIT_EVENT) != !*wait_ev ||
	    !(flags & ACCEL_MOVER_RECORD_EVENT) != !*rec_ev)
		return -EINVAL;
	return 0;
}

ACCEL_EXPORT int accel_mover_submit(struct accel_mover *m, const struct accel_tier *const tiers[],
				    uint32_t nr_tiers, const struct accel_bm_run *runs, uint32_t n,
				    const struct accel_mover_submit_opts *opts, uint64_t *job_id)
{
	struct accel_piece_sel sel;
	void *wait_ev, *rec_ev;
	bool engine, cuda;
	struct job *j;
	int ret, st = 0;

	if (!m || !job_id || (n && (!runs || !tiers || !nr_tiers)))
		return -EINVAL;
	ret = accel_opts_valid(opts, sizeof(*opts));
	if (ret)
		return ret;
	ret = submit_opts_check(opts, &sel, &wait_ev, &rec_ev);
	if (ret)
		return ret;
	ret = runs_check(tiers, nr_tiers, runs, n, &sel, &engine, &cuda);
	if (ret)
		return ret;
	/* Events are CUDA's: a job without a device tier has no stream to order. */
	if ((wait_ev || rec_ev) && !cuda)
		return -EINVAL;
	engine = engine && !cuda;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->d.user_data = ACCEL_OPTS_GET(opts, user_data, 0);
	if (cuda) {
		j->kind = JOB_CUDA;
		ret = accel_mover_cuda_queue(tiers, runs, n, &sel, wait_ev, rec_ev, &j->waits,
					     &j->nr_waits, &j->cuda_status);
	} else {
		ret = engine ? submit_engine(j, tiers, runs, n, &sel) :
		      submit_memcpy(j, tiers, runs, n, &sel);
	}
	if (ret) {
		job_release(j);
		free(j);
		return ret;
	}
	if (engine && j->fd < 0) {
		st = accel_fence_status(j->fence);
		st = st == 1 ? 0 : st == 0 ? -EIO : st;
		job_release(j);
	}
	pthread_mutex_lock(&m->lock);
	if (cuda && !m->cu_started) {
		ret = pthread_create(&m->cu_waiter, NULL, cuda_waiter, m);
		if (ret) {
			pthread_mutex_unlock(&m->lock);
			/* Queued already: wait for it here, and fail the submission. */
			for (uint32_t i = 0; i < j->nr_waits; i++)
				accel_cuda_tier_wait(j->waits[i].ct, j->waits[i].ticket, -1);
			job_release(j);
			free(j);
			return -ret;
		}
		m->cu_started = true;
	}
	j->d.job_id = m->next_id++;
	*job_id = j->d.job_id;
	m->pending++;
	if (cuda) {
		*m->cu_tail = j;
		m->cu_tail = &j->next;
		pthread_cond_signal(&m->cu_cond);
		j = NULL;
	} else if (!engine) {
		*m->mc_tail = j;
		m->mc_tail = &j->next;
	} else if (j->fd < 0) {
		finish(m, j, st);
		j = NULL;
	} else {
		j->next = m->engine;
		m->engine = j;
		m->nr_engine++;
	}
	pthread_mutex_unlock(&m->lock);
	if (j)
		wake(m->wake_fd);
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ACCEL_EXPORT int accel_mover_poll(struct accel_mover *m, struct accel_mover_done *out,
				  uint32_t max, int64_t timeout_ns)
{
	struct timespec ts;
	int64_t end = 0;
	uint32_t got = 0;

	if (!m || !out || !max || timeout_ns < -1)
		return -EINVAL;
	if (timeout_ns > 0) {
		end = now_ns();
		end = timeout_ns > INT64_MAX - end ? INT64_MAX : end + timeout_ns;
		ts.tv_sec = end / 1000000000;
		ts.tv_nsec = end % 1000000000;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->done_head && timeout_ns) {
		int r = timeout_ns < 0 ? pthread_cond_wait(&m->done_cond, &m->lock) :
			pthread_cond_timedwait(&m->done_cond, &m->lock, &ts);

		if (r == ETIMEDOUT)
			break;
	}
	while (m->done_head && got < max) {
		struct job *e = m->done_head;

		m->done_head = e->next;
		out[got++] = e->d;
		free(e);
	}
	if (!m->done_head) {
		m->done_tail = &m->done_head;
		drain(m->event_fd);
	}
	pthread_mutex_unlock(&m->lock);
	return (int)got;
}

ACCEL_EXPORT int accel_mover_fd(const struct accel_mover *m)
{
	return m ? m->event_fd : -EINVAL;
}

ACCEL_EXPORT int accel_mover_pending(const struct accel_mover *m)
{
	struct accel_mover *mm = (struct accel_mover *)m;
	int n;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&mm->lock);
	n = (int)mm->pending;
	pthread_mutex_unlock(&mm->lock);
	return n;
}
