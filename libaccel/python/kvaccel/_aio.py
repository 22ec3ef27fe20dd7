# SPDX-License-Identifier: MIT
"""asyncio over a Mover's eventfd: loop.add_reader() on it while someone
waits, each readiness a poll() without waiting; completions go to the
wait() of their job or, unclaimed, to completions()."""

import asyncio
import collections


class Dispatch:
    def __init__(self, mover):
        self._m = mover
        self._loop = None
        self._fd = mover.fileno()
        self._waiters = {}          # job id -> future
        self._unclaimed = collections.OrderedDict()
        self._iters = []            # futures of completions() waiting
        self._reading = False

    def _want(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._stop()
            self._loop = loop
        if not self._reading:
            loop.add_reader(self._fd, self._ready)
            self._reading = True
        return loop

    def _stop(self):
        if self._reading and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._reading = False

    def _idle(self):
        if not self._waiters and not self._iters:
            self._stop()

    def _ready(self):
        try:
            done = self._m.poll()
        except (OSError, ValueError) as e:
            for f in list(self._waiters.values()) + self._iters:
                if not f.done():
                    f.set_exception(e)
            self._waiters.clear()
            self._iters.clear()
            self._stop()
            return
        for d in done:
            f = self._waiters.pop(d.job_id, None)
            if f is not None and not f.done():
                f.set_result(d)
            else:
                self._unclaimed[d.job_id] = d
        while self._iters and self._unclaimed:
            f = self._iters.pop(0)
            if not f.done():
                f.set_result(self._unclaimed.popitem(last=False)[1])
        self._idle()

    async def wait(self, job_id):
        d = self._unclaimed.pop(job_id, None)
        if d is not None:
            return d
        if job_id in self._waiters:
            raise ValueError("job %d is waited for already" % job_id)
        loop = self._want()
        f = loop.create_future()
        self._waiters[job_id] = f
        try:
            return await f
        finally:
            if self._waiters.get(job_id) is f:
                del self._waiters[job_id]
            self._idle()

    async def iterate(self):
        while True:
            if self._unclaimed:
                yield self._unclaimed.popitem(last=False)[1]
                continue
            loop = self._want()
            f = loop.create_future()
            self._iters.append(f)
            try:
                d = await f
            finally:
                if f in self._iters:
                    self._iters.remove(f)
                self._idle()
            yield d

    def close(self):
        for f in list(self._waiters.values()) + self._iters:
            if not f.done():
                f.set_exception(ValueError("the Mover was closed"))
        self._waiters.clear()
        self._iters.clear()
        self._stop()
