// SPDX-License-Identifier: MIT
/*
 * libaccel - passing dma-buf fds (regions, spaces) between processes over
 * a Unix socket (SCM_RIGHTS).
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Control data for SCM_RIGHTS, aligned for struct cmsghdr. */
union share_cmsg {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * ACCEL_MAX_FDS)];
};

ACCEL_EXPORT int accel_send_fds(int sock, const int *fds, int nfds, const void *data, size_t len)
{
	union share_cmsg cbuf;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (sock < 0 || nfds < 0 || nfds > ACCEL_MAX_FDS || (nfds && !fds) || !data || !len)
		return -EINVAL;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

ACCEL_EXPORT int accel_recv_fds(int sock, int *fds, int *nfds, void *data, size_t *len)
{
	union share_cmsg cbuf;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	int got = 0, room, ret = 0;
	ssize_t n;

	if (sock < 0 || !nfds || *nfds < 0 || (*nfds && !fds) || !data || !len || !*len)
		return -EINVAL;
	room = *nfds;
	iov.iov_base = data;
	iov.iov_len = *len;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Every fd that came is kept in @fds or closed, on every path. */
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		int i, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (got < room)
				fds[got++] = fd;
			else {
				close(fd);
				ret = -EMSGSIZE;
			}
		}
	}
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		ret = -EMSGSIZE;
	/* 0 bytes: the peer closed, unless fds came (a packet no peer of ours sends). */
	if (!ret && !n)
		ret = got ? -EPROTO : -ECONNRESET;
	if (ret) {
		while (got)
			close(fds[--got]);
		return ret;
	}
	*nfds = got;
	*len = (size_t)n;
	return 0;
}
