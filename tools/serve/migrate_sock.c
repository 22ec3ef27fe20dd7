// SPDX-License-Identifier: MIT
/* kvaccel-serve - a socketpair standing in for kvacceld's hand-offs (migrate_sock.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "migrate_sock.h"

enum { FR_MSG = 1, FR_DONE = 2 };

struct frame {
	uint32_t type, count;
	uint64_t tag;
	int32_t status;
	uint32_t kinds[ACCEL_HANDOFF_MAX];
};

void serve_msock_init(struct serve_msock *ms, int sock, const char *peer)
{
	memset(ms, 0, sizeof(*ms));
	ms->sock = sock;
	ms->peer = peer;
}

int serve_msock_send(void *arg, const char *to, uint64_t tag, const int *fds,
		     const enum accel_handoff_kind *kinds, unsigned int n)
{
	struct serve_msock *ms = arg;
	struct frame f = { .type = FR_MSG, .count = n, .tag = tag };
	int ret;

	if (strcmp(to, ms->peer) || ms->peer_gone)
		return -ENOENT;
	if (n > ACCEL_HANDOFF_MAX || ms->nr_pending == SERVE_MSOCK_PENDING_MAX)
		return -EBUSY;
	for (unsigned int i = 0; i < n; i++)
		f.kinds[i] = kinds[i];
	ret = accel_send_fds(ms->sock, fds, (int)n, &f, sizeof(f));
	if (ret)
		return ret;
	ms->pending[ms->nr_pending++] = tag;
	return 0;
}

static void answered(struct serve_msock *ms, uint64_t tag, int status)
{
	for (uint32_t i = 0; i < ms->nr_pending; i++) {
		if (ms->pending[i] == tag) {
			ms->pending[i] = ms->pending[--ms->nr_pending];
			break;
		}
	}
	serve_nmig_sent(ms->n, tag, status);
}

static void reply(struct serve_msock *ms, uint64_t tag, int status)
{
	struct frame d = { .type = FR_DONE, .tag = tag, .status = status };

	accel_send_fds(ms->sock, NULL, 0, &d, sizeof(d));
}

void serve_msock_pump(struct serve_msock *ms, int ms_wait)
{
	struct pollfd pf = { .fd = ms->sock, .events = POLLIN };

	while (!ms->peer_gone && poll(&pf, 1, ms_wait) > 0) {
		enum accel_handoff_kind kinds[ACCEL_HANDOFF_MAX];
		int fds[ACCEL_HANDOFF_MAX], nfd = ACCEL_HANDOFF_MAX, i;
		struct frame f;
		size_t len = sizeof(f);
		uint32_t kind;
		int ret;

		ms_wait = 0;
		ret = accel_recv_fds(ms->sock, fds, &nfd, &f, &len);
		if (ret || len != sizeof(f) || f.count != (uint32_t)nfd) {
			/* The peer died (or speaks garbage): what it did not answer failed. */
			ms->peer_gone = true;
			while (ms->nr_pending)
				answered(ms, ms->pending[0], -ECONNRESET);
			return;
		}
		if (f.type == FR_DONE) {
			answered(ms, f.tag, f.status);
			continue;
		}
		kind = (uint32_t)(f.tag & 7);
		if (ms->die_on && kind == ms->die_on)
			_exit(0);
		for (i = 0; i < nfd; i++)
			kinds[i] = f.kinds[i];
		ret = ms->ignore_on && kind == ms->ignore_on ? 0 :
			serve_nmig_receive(ms->n, ms->peer, fds, kinds, (unsigned int)nfd);
		for (i = 0; i < nfd; i++)
			close(fds[i]);
		reply(ms, f.tag, ret);
	}
}
