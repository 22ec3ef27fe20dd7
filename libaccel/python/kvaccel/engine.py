# SPDX-License-Identifier: MIT
"""kvaccel.Engine: an engine's connection to the node daemon kvacceld
(accel_engine_*): registering, quota, release requests, hand-offs of
regions and spaces to other engines, reconnecting."""

import ctypes
import os
from collections import namedtuple
from ctypes import byref, c_int, c_uint64

from . import _dev_types as T
from ._base import Handle
from ._lib import check, check_null, error, lib

PRIORITY_MAX = T.ENGINE_PRIORITY_MAX
HANDOFF_MAX = T.HANDOFF_MAX
HANDOFF_REGION = T.HANDOFF_REGION
HANDOFF_SPACE = T.HANDOFF_SPACE

#: Who sent a hand-off, as kvacceld saw it (None where the daemon did not say).
Sender = namedtuple("Sender", "incarnation uid pid")
#: A hand-off offered to this engine: the sending engine, its tag, the
#: dma-buf fds (close-on-exec), their kinds and sizes, the sender.
Handoff = namedtuple("Handoff", "sender_name tag fds kinds sizes sender")


class Engine(Handle):
    """Connect to kvacceld at path (None: $KVACCELD_SOCKET, else
    /run/kvacceld/engine.sock) as name with priority (0 to PRIORITY_MAX).

    Callbacks, run inside dispatch() (and any call that reads the socket):
    release(nbytes) -> bytes freed (an int; None: 0); receive(Handoff) ->
    True to take its fds (then they are yours: import, then close them),
    False to refuse (the library closes them); handoff_done(tag, status).
    An exception in a callback is raised again by the call it ran under,
    once the callback's C return has been made (release: 0 freed; receive:
    refused)."""

    _what = "Engine"

    def __init__(self, name, priority=0, path=None, release=None, receive=None,
                 handoff_done=None):
        self._l = lib()
        self._exc = None
        self._release_cb, self._receive_cb, self._done_cb = release, receive, handoff_done
        ops = T.EngineOps()
        self._fns = []
        if release is not None:
            ops.release = self._keep(T.RELEASE_FN(self._on_release))
        if receive is not None:
            ops.receive = self._keep(T.RECEIVE_FN(self._on_receive))
        if handoff_done is not None:
            ops.handoff_done = self._keep(T.DONE_FN(self._on_done))
        self._ops = ops
        p = path.encode() if isinstance(path, str) else path
        self._hd = check_null(self._l.accel_engine_connect(p, name.encode(), priority,
                                                           byref(ops), None),
                              "accel_engine_connect")
        self.name = name

    def _keep(self, fn):
        self._fns.append(fn)
        return fn

    def _release(self, hd):
        self._l.accel_engine_close(hd)

    # ---- callbacks (C -> Python) ----

    def _note(self, e):
        if self._exc is None:
            self._exc = e

    def _on_release(self, _arg, nbytes, released):
        try:
            got = self._release_cb(nbytes)
            released[0] = int(got or 0)
        except BaseException as e:  # noqa: B902 (kept for the caller)
            released[0] = 0
            self._note(e)
        return 0

    def _on_receive(self, _arg, hp):
        h = hp.contents
        n = h.count
        fds = [h.fds[i] for i in range(n)]
        try:
            s = T.HandoffSender(sz=ctypes.sizeof(T.HandoffSender))
            ret = self._l.accel_handoff_sender(hp, byref(s))
            sender = Sender(s.incarnation, s.uid, s.pid) if ret == 0 else None
            ho = Handoff(getattr(h, "from").decode(errors="replace"), h.tag, fds,
                         [h.kinds[i] for i in range(n)], [h.sizes[i] for i in range(n)], sender)
            return 0 if self._receive_cb(ho) else -1  # -EPERM: refused
        except BaseException as e:  # noqa: B902
            self._note(e)
            return -95  # EOPNOTSUPP

    def _on_done(self, _arg, tag, status):
        try:
            self._done_cb(tag, status)
        except BaseException as e:  # noqa: B902
            self._note(e)

    def _call(self, ret, what):
        e, self._exc = self._exc, None
        if e is not None:
            raise e
        return check(ret, what)

    # ---- calls ----

    def fileno(self):
        """The socket: poll it for reading, then dispatch()."""
        return check(self._l.accel_engine_fd(self._h()), "accel_engine_fd")

    def dispatch(self, timeout=0):
        """Handle what the daemon sent, waiting up to timeout seconds (0:
        only what is there, None: until something comes); the messages
        handled. OSError ECONNRESET when the daemon went away (reconnect())."""
        ns = -1 if timeout is None else int(timeout * 1e9)
        return self._call(self._l.accel_engine_dispatch(self._h(), ns), "accel_engine_dispatch")

    def quota(self, nbytes):
        """Ask for a quota of nbytes (whole MiB) for this process (which has
        a Device open); the quota granted. OSError ENOSPC when refused."""
        g = c_uint64()
        self._call(self._l.accel_engine_quota(self._h(), nbytes, byref(g)), "accel_engine_quota")
        return g.value

    @property
    def quota_now(self):
        """The quota the kernel keeps for this process, as of registering."""
        return self._l.accel_engine_quota_now(self._h())

    def handoff(self, to, tag, objs):
        """Hand dma-bufs to engine to under tag: objs are Region objects
        (exported for it) or (fd, kind) pairs (the fds stay the caller's).
        Returns once the daemon queued it; handoff_wait() for the outcome."""
        hd = self._h()
        fds, kinds, mine = [], [], []
        try:
            for o in objs:
                if isinstance(o, tuple):
                    fd, kind = o
                else:
                    fd, kind = o.export(), HANDOFF_REGION
                    mine.append(fd)
                fds.append(fd)
                kinds.append(kind)
            n = len(fds)
            cf = (c_int * max(n, 1))(*fds)
            ck = (c_int * max(n, 1))(*kinds)
            self._call(self._l.accel_engine_handoff(hd, to.encode(), tag, cf, ck, n),
                       "accel_engine_handoff")
        finally:
            for fd in mine:
                os.close(fd)  # the library keeps its own duplicates

    def handoff_wait(self, tag, timeout=None):
        """Wait up to timeout seconds (None: forever) for hand-off tag: its
        status (0 taken, or -errno); OSError ETIMEDOUT, ENOENT."""
        ns = -1 if timeout is None else int(timeout * 1e9)
        ret = self._l.accel_engine_handoff_wait(self._h(), tag, ns)
        e, self._exc = self._exc, None
        if e is not None:
            raise e
        if ret in (-110, -2):  # ETIMEDOUT, ENOENT: the wait's own errors
            raise error(-ret, "accel_engine_handoff_wait")
        return ret

    @property
    def pending(self):
        """Hand-offs sent and not finished yet."""
        return check(self._l.accel_engine_pending(self._h()), "accel_engine_pending")

    def reconnect(self):
        """After ECONNRESET: connect again and resend unfinished hand-offs."""
        self._call(self._l.accel_engine_reconnect(self._h()), "accel_engine_reconnect")
