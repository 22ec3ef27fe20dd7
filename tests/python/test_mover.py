#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvaccel.Tier (memfd tiers) and kvaccel.Mover natively, no device:
tier shapes and bad options as OSError, block views, the export seen by a
second mapping, numpy and torch.frombuffer views (alive after close()),
scattered runs copied and checked byte for byte, a block manager's plan
executed, bad runs refused with nothing submitted, poll order, max and
timeouts, the fd with select and asyncio (wait(), completions()), tiers
busy while a job uses them, close, context managers and use after close.
Prints TAP (tests/python/tap.py); $KVACCEL_LIB names the library."""

import array
import asyncio
import errno
import mmap
import os
import select
import unittest

import common
import kvaccel
import tap

KB = 1024
MB = 1024 * KB


def fill(tier, i, tag):
    """Block i of tier: every 8 bytes its (tag, i, offset) pattern."""
    b = tier.block(i)
    n = len(b)
    pat = bytes(((tag * 131 + i * 7 + k) & 0xff for k in range(256)))
    b[:] = (pat * (n // 256 + 1))[:n]
    return bytes(b)


class Tiers(unittest.TestCase):
    def test_memfd_shapes(self):
        for bb, n in ((4 * KB, 1), (12 * KB, 3), (5 * MB, 2)):
            with kvaccel.Tier.memfd(bb, n) as t:
                i = t.info()
                self.assertEqual((i.kind, i.blocks, i.block_bytes, i.region_block_bytes),
                                 (kvaccel.tier.MEMFD, n, bb, 0))
                self.assertEqual(len(t), n)
                self.assertEqual(len(t.buffer()), bb * n)
                self.assertEqual(len(t.block(n - 1)), bb)
                self.assertNotEqual(t.block_addr(0), 0)

    def test_bad_options_are_oserror_einval(self):
        for bb, n in ((0, 1), (4 * KB + 1, 1), (4 * KB, 0), (128 * MB, 1)):
            with self.assertRaises(OSError) as cm:
                kvaccel.Tier.memfd(bb, n)
            self.assertEqual(cm.exception.errno, errno.EINVAL, (bb, n))

    def test_block_index_and_addr_errors(self):
        with kvaccel.Tier.memfd(4 * KB, 2) as t:
            with self.assertRaises(IndexError):
                t.block(2)
            with self.assertRaises(OSError) as cm:
                t.block_addr(2)
            self.assertEqual(cm.exception.errno, errno.EINVAL)

    def test_export_seen_by_a_second_mapping(self):
        with kvaccel.Tier.memfd(8 * KB, 4) as t:
            fd = t.export()
            try:
                with mmap.mmap(fd, 32 * KB) as mm:
                    t.block(2)[:4] = b"kvac"
                    self.assertEqual(mm[16 * KB:16 * KB + 4], b"kvac")
                    mm[0:3] = b"abc"
                    self.assertEqual(bytes(t.block(0)[:3]), b"abc")
            finally:
                os.close(fd)

    def test_buffer_is_the_librarys_memory(self):
        import ctypes
        with kvaccel.Tier.memfd(4 * KB, 2) as t:
            t.block(1)[:5] = b"hello"
            self.assertEqual(ctypes.string_at(t.block_addr(1), 5), b"hello")

    @unittest.skipIf(common.numpy is None, "python3-numpy is not installed")
    def test_numpy_view(self):
        np = common.numpy
        t = kvaccel.Tier.memfd(4 * KB, 8)
        a = np.frombuffer(t.buffer(), dtype=np.float32).reshape(8, KB)
        a[3, :] = 1.5
        self.assertEqual(bytes(t.block(3)[:4]), np.float32(1.5).tobytes())
        blk = np.frombuffer(t.block(5), dtype=np.int32)
        blk[:] = np.arange(KB, dtype=np.int32)
        self.assertEqual(int(a.view(np.int32)[5, 7]), 7)
        t.close()
        # The view keeps the pages mapped after close().
        self.assertEqual(float(a[3, 100]), 1.5)
        self.assertEqual(int(blk[1023]), 1023)

    @unittest.skipIf(common.torch is None, "python3-torch is not installed")
    def test_torch_frombuffer_view(self):
        torch = common.torch
        t = kvaccel.Tier.memfd(4 * KB, 4)
        x = torch.frombuffer(t.buffer(), dtype=torch.float32).view(4, KB)
        x[2].fill_(2.25)
        self.assertEqual(bytes(t.block(2)[:4]), bytes(memoryview(
            torch.tensor([2.25], dtype=torch.float32).numpy())))
        y = torch.frombuffer(t.block(1), dtype=torch.int16)
        y[:] = 7
        self.assertEqual(int(x.view(torch.int16)[1, 5]), 7)
        t.close()
        self.assertEqual(float(x[2, 9]), 2.25)

    def test_close_and_use_after_close(self):
        t = kvaccel.Tier.memfd(4 * KB, 1)
        with t as same:
            self.assertIs(same, t)
        self.assertTrue(t.closed)
        t.close()  # idempotent
        for f in (t.buffer, t.info, t.export, lambda: t.block_addr(0)):
            with self.assertRaises(ValueError):
                f()
        with self.assertRaises(ValueError):
            with t:
                pass

    def test_plain_constructor_refused(self):
        with self.assertRaises(TypeError):
            kvaccel.Tier()


class MoverTest(unittest.TestCase):
    def setUp(self):
        self.a = kvaccel.Tier.memfd(16 * KB, 32)
        self.b = kvaccel.Tier.memfd(16 * KB, 32)
        self.m = kvaccel.Mover()

    def tearDown(self):
        self.m.close()
        self.a.close()
        self.b.close()

    def test_scattered_runs_copied(self):
        src = [1, 5, 6, 7, 20, 31]
        dst = [30, 0, 2, 3, 9, 10]
        want = {d: fill(self.a, s, 1) for s, d in zip(src, dst)}
        untouched = {i: fill(self.b, i, 2) for i in range(32) if i not in want}
        j = self.m.submit([self.a, self.b], kvaccel.runs(0, src, 1, dst), user_data=77)
        done = self.m.poll(timeout=5)
        self.assertEqual(done, [kvaccel.Done(j, 77, 0)])
        for d, data in want.items():
            self.assertEqual(bytes(self.b.block(d)), data, d)
        for i, data in untouched.items():
            self.assertEqual(bytes(self.b.block(i)), data, i)

    def test_run_forms(self):
        fill(self.a, 4, 3)
        fill(self.a, 5, 4)
        # Tuples with a count, a ctypes array, a numpy array: the same job.
        j1 = self.m.submit([self.a, self.b], [(0, 4, 1, 10, 2)])
        self.assertEqual(self.m.poll(timeout=5)[0][:1], (j1,))
        self.assertEqual(bytes(self.b.block(11)), bytes(self.a.block(5)))
        if common.numpy is not None:
            np = common.numpy
            r = np.array([[0, 4, 0, 20, 1]], dtype=np.uint32)
            self.m.submit([self.a], r)
            self.assertEqual(self.m.poll(timeout=5)[0].status, 0)
            self.assertEqual(bytes(self.a.block(20)), bytes(self.a.block(4)))
        # Within one tier, and an empty job.
        j = self.m.submit([self.a], [])
        self.assertEqual(self.m.poll(timeout=5), [kvaccel.Done(j, 0, 0)])

    def test_block_manager_plan_executed(self):
        bm = kvaccel.BlockManager([32, 32], block_tokens=4)
        seq = bm.seq_create(tier=0)
        bm.seq_start(seq, list(range(40)))
        _off, ids = bm.block_tables([seq])
        data = {i: fill(self.a, i, 9) for i in ids}
        plan = bm.move(seq, 1)
        j = self.m.submit([self.a, self.b], plan.runs, user_data=plan.id)
        d, = self.m.poll(timeout=5)
        self.assertEqual((d.job_id, d.user_data, d.status), (j, plan.id, 0))
        bm.plan_done(d.user_data, d.status)
        _off, hids = bm.block_tables([seq])
        self.assertEqual([bytes(self.b.block(h)) for h in hids], [data[i] for i in ids])
        bm.close()

    def test_bad_runs_submit_nothing(self):
        bad = [(0, 32, 1, 0, 1),       # past the source's end
               (0, 0, 1, 31, 2),       # past the destination's end
               (0, 0, 2, 0, 1),        # no such tier
               (0, 0, 0, 1, 2),        # overlaps itself
               (0, 0, 1, 0, 0)]        # no block
        for r in bad:
            with self.assertRaises(OSError) as cm:
                self.m.submit([self.a, self.b], [(0, 1, 1, 1, 1), r])
            self.assertEqual(cm.exception.errno, errno.EINVAL, r)
        self.assertEqual(self.m.pending, 0)
        self.assertEqual(self.m.poll(), [])
        with kvaccel.Tier.memfd(4 * KB, 4) as small:
            with self.assertRaises(OSError) as cm:
                self.m.submit([self.a, small], [(0, 0, 1, 0, 1)])  # block sizes differ
            self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(ValueError):
            self.m.submit([self.a], [(0, 0, 0)])
        with self.assertRaises(ValueError):
            self.m.submit([self.a], array.array("I", [0, 0, 0, 1]))

    def test_poll_order_max_timeout(self):
        ids = [self.m.submit([self.a, self.b], [(0, i, 1, i, 1)], user_data=i)
               for i in range(5)]
        got = []
        while len(got) < 5:
            d = self.m.poll(max=2, timeout=5)
            self.assertLessEqual(len(d), 2)
            got += d
        self.assertEqual([d.job_id for d in got], ids)
        self.assertEqual([d.user_data for d in got], list(range(5)))
        self.assertEqual(self.m.poll(timeout=0.01), [])
        self.assertEqual(self.m.pending, 0)

    def test_fd_readable_while_completions_wait(self):
        fd = self.m.fileno()
        self.assertEqual(select.select([fd], [], [], 0)[0], [])
        self.m.submit([self.a, self.b], [(0, 0, 1, 0, 4)])
        self.assertEqual(select.select([fd], [], [], 5)[0], [fd])
        self.assertEqual(len(self.m.poll()), 1)
        self.assertEqual(select.select([fd], [], [], 0)[0], [])

    def test_asyncio_wait_and_completions(self):
        m, a, b = self.m, self.a, self.b

        async def main():
            j1 = m.submit([a, b], [(0, 0, 1, 0, 8)], user_data=1)
            j2 = m.submit([a, b], [(0, 8, 1, 8, 8)], user_data=2)
            d2 = await asyncio.wait_for(m.wait(j2), 5)
            d1 = await asyncio.wait_for(m.wait(j1), 5)
            # Unclaimed jobs come through completions(), in order.
            more = [m.submit([a, b], [(0, i, 1, i, 1)], user_data=10 + i) for i in range(3)]
            seen = []
            async for d in m.completions():
                seen.append(d)
                if len(seen) == 3:
                    break
            # Several waits at once on one loop.
            js = [m.submit([b, a], [(0, i, 1, i, 1)], user_data=i) for i in range(4)]
            ds = await asyncio.wait_for(asyncio.gather(*(m.wait(j) for j in js)), 5)
            return d1, d2, more, seen, js, ds

        d1, d2, more, seen, js, ds = asyncio.run(main())
        self.assertEqual((d1.user_data, d1.status, d2.user_data, d2.status), (1, 0, 2, 0))
        self.assertEqual([d.job_id for d in seen], more)
        self.assertEqual([d.job_id for d in ds], js)
        self.assertEqual([d.user_data for d in ds], list(range(4)))

    def test_tier_busy_until_polled(self):
        self.m.submit([self.a, self.b], [(0, 0, 1, 0, 32)])
        with self.assertRaises(OSError) as cm:
            self.a.close()
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        self.assertFalse(self.a.closed)
        self.assertEqual(len(self.m.poll(timeout=5)), 1)
        self.a.close()
        self.assertTrue(self.a.closed)
        with self.assertRaises(ValueError):
            self.m.submit([self.a, self.b], [(0, 0, 1, 0, 1)])

    def test_close_waits_and_releases_tiers(self):
        self.m.submit([self.a, self.b], [(0, 0, 1, 0, 32)])
        self.m.close()
        self.b.close()  # the mover's close released it
        for f in (self.m.poll, self.m.fileno, lambda: self.m.submit([], [])):
            with self.assertRaises(ValueError):
                f()
        with self.assertRaises(ValueError):
            asyncio.run(self.m.wait(1))


if __name__ == "__main__":
    tap.main("python_mover")
