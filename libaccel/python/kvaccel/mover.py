# SPDX-License-Identifier: MIT
"""kvaccel.Mover: the data mover (accel_mover_*), which runs transfer plans
between tiers as jobs and reports each job once it finished: poll(), its
fd (fileno()) for select/epoll, and asyncio (wait(), completions())."""

import array
import ctypes
from collections import namedtuple
from ctypes import byref, c_uint64, c_void_p

from . import _bm_types as B
from . import _mover_types as T
from ._aio import Dispatch
from ._base import Handle
from ._lib import check, check_null, lib

#: A finished job: its id, the submission's user_data, 0 or -errno.
Done = namedtuple("Done", "job_id user_data status")

_POLL_MAX = 64


_templates = {}  # (src_tier, dst_tier, n) -> runs with their constant columns filled


def runs(src_tier, src_blocks, dst_tier, dst_blocks):
    """Single-block runs src_blocks[i] of tier src_tier -> dst_blocks[i] of
    dst_tier, as the array.array("I") (5 numbers per run) submit() takes."""
    if not isinstance(src_blocks, array.array) or src_blocks.typecode != "I":
        src_blocks = array.array("I", src_blocks)
    if not isinstance(dst_blocks, array.array) or dst_blocks.typecode != "I":
        dst_blocks = array.array("I", dst_blocks)
    n = len(src_blocks)
    if len(dst_blocks) != n:
        raise ValueError("as many source as destination blocks")
    key = (src_tier, dst_tier, n)
    t = _templates.get(key)
    if t is None:
        t = array.array("I", (src_tier, 0, dst_tier, 0, 1)) * n
        if len(_templates) < 256:
            _templates[key] = t
    a = array.array("I", t)
    a[1::5] = src_blocks
    a[3::5] = dst_blocks
    return a


def _runs_arg(r):
    """(ctypes Run array or None, count, keepalive) of runs: an
    array.array("I") or other uint32 buffer of 5 numbers per run, a ctypes
    Run array, or a sequence of 5-tuples (Plan.runs)."""
    if isinstance(r, ctypes.Array) and r._type_ is B.Run:
        return (r if len(r) else None), len(r), r
    if not isinstance(r, (array.array, memoryview)) and not hasattr(r, "__array_interface__"):
        flat = array.array("I")
        for t in r:
            if len(t) != 5:
                raise ValueError("a run is (src_tier, src_block, dst_tier, dst_block, count)")
            flat.extend(t)
        r = flat
    mv = memoryview(r).cast("B")
    if len(mv) % 20:
        raise ValueError("runs: 5 uint32 per run")
    n = len(mv) // 20
    if not n:
        return None, 0, None
    if mv.readonly:
        arr = (B.Run * n).from_buffer_copy(mv)
    else:
        arr = (B.Run * n).from_buffer(mv)
    return arr, n, (arr, mv)


class Mover(Handle):
    """A data mover with its worker thread (accel_mover_create()). close()
    waits for the jobs still running."""

    _what = "Mover"

    def __init__(self, flags=0):
        self._l = lib()
        o = T.MoverOpts(sz=ctypes.sizeof(T.MoverOpts), flags=flags)
        self._hd = check_null(self._l.accel_mover_create(byref(o)), "accel_mover_create")
        self._jobs = {}
        self._done = (T.Done * _POLL_MAX)()
        self._sub = T.SubmitOpts(sz=ctypes.sizeof(T.SubmitOpts))
        self._id = c_uint64()
        self._tiers_key = None
        self._tiers_arr = None
        self._aio = None

    def _release(self, hd):
        if self._aio is not None:
            self._aio.close()
            self._aio = None
        self._l.accel_mover_destroy(hd)
        for tiers in self._jobs.values():
            for t in tiers:
                t._busy -= 1
        self._jobs.clear()

    def submit(self, tiers, runs, user_data=0, flags=0, layers=None, wait_event=None,
               record_event=None):
        """Copy runs (tier numbers index tiers, a sequence of Tier) as one
        job; returns its id. layers=(first, count): only those layer pieces
        of each block (layer-wise transfers). wait_event, record_event
        (CUDA jobs: CUevent handles as ints, e.g. torch.cuda.Event's
        cuda_event): the job's copies wait for wait_event's latest record,
        and record_event is recorded once they are done. The tiers cannot
        be closed until the job finished and was polled. OSError EINVAL for
        a bad run (nothing submitted)."""
        hd = self._h()
        tiers = tuple(tiers)
        if tiers != self._tiers_key:
            self._tiers_arr = (c_void_p * max(len(tiers), 1))(*[t._h() for t in tiers])
            self._tiers_key = tiers
        else:
            for t in tiers:
                t._h()
        arr, n, _keep = _runs_arg(runs)
        o = self._sub
        o.user_data = user_data
        if layers is not None:
            flags |= T.MOVER_LAYERS
            o.layer_first, o.layer_count = layers[0], layers[1]
        if wait_event is not None:
            flags |= T.MOVER_WAIT_EVENT
        if record_event is not None:
            flags |= T.MOVER_RECORD_EVENT
        o.wait_event = wait_event
        o.record_event = record_event
        o.flags = flags
        check(self._l.accel_mover_submit(hd, self._tiers_arr, len(tiers), arr, n, byref(o),
                                         byref(self._id)), "accel_mover_submit")
        jid = self._id.value
        for t in tiers:
            t._busy += 1
        self._jobs[jid] = tiers
        return jid

    def poll(self, max=_POLL_MAX, timeout=0):
        """Finished jobs, oldest first, each once: a list of Done. Waits up
        to timeout seconds (0: not at all, None: forever) when none has."""
        hd = self._h()
        if timeout is None:
            ns = -1
        else:
            ns = int(timeout * 1e9)
        out = self._done if max <= _POLL_MAX else (T.Done * max)()
        got = check(self._l.accel_mover_poll(hd, out, min(max, len(out)), ns),
                    "accel_mover_poll")
        res = []
        jobs = self._jobs
        for i in range(got):
            d = out[i]
            jid = d.job_id
            for t in jobs.pop(jid, ()):
                t._busy -= 1
            res.append(Done(jid, d.user_data, d.status))
        return res

    def fileno(self):
        """The mover's eventfd: readable while finished jobs wait to be
        polled (owned by the mover; no need to read it)."""
        return check(self._l.accel_mover_fd(self._h()), "accel_mover_fd")

    @property
    def pending(self):
        """Jobs submitted and not finished yet."""
        return check(self._l.accel_mover_pending(self._h()), "accel_mover_pending")

    # ---- asyncio ----

    def _dispatch(self):
        self._h()
        if self._aio is None:
            self._aio = Dispatch(self)
        return self._aio

    async def wait(self, job_id):
        """Wait (asyncio, on the running loop) for job job_id: its Done."""
        return await self._dispatch().wait(job_id)

    def completions(self):
        """An async iterator of the Done of jobs no wait() is waiting for."""
        return self._dispatch().iterate()
