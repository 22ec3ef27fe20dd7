#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvaccel's device tiers (Tier.cuda(), Tier.register_cuda()) and the
mover's layer-wise and CUDA-event options, natively against the fake CUDA
driver (tests/libaccel/fake_cuda.c, found through LD_LIBRARY_PATH, strict
access checks on): round trips memfd -> device -> memfd checked byte for
byte through an allocated tier and through engine memory registered in
both layouts, layer-wise jobs changing only their layers, a job held by
wait_event until the engine's stream runs, record_event complete once the
job is, bad options as OSError EINVAL, device tiers without a buffer; the
MoE expert store on the cuda backend over two fake GPUs
(kvaccel.moe.Store: windows read back, a rotation across the GPUs under
steps, rebinds within one, a store made from another's copies).
Without the fake driver (no libcuda.so.1 found): every test skips."""

import ctypes
import errno
import os
import unittest

import common  # noqa: F401 (sys.path)
import kvaccel
import tap

KB = 1024
MB = 1024 * KB


class Cuda:
    """The few driver calls a test plays the engine with, from the fake's
    cuGetProcAddress_v2 (the real driver has it too)."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")
        gpa = self.lib.cuGetProcAddress_v2
        gpa.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                        ctypes.c_uint64, ctypes.POINTER(ctypes.c_int)]
        self._gpa = gpa
        P, U, I = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
        self.cuInit = self._fn("cuInit", [U])
        self.cuDeviceGet = self._fn("cuDeviceGet", [ctypes.POINTER(I), I])
        self.cuDevicePrimaryCtxRetain = self._fn("cuDevicePrimaryCtxRetain",
                                                 [ctypes.POINTER(P), I])
        self.cuDevicePrimaryCtxRelease = self._fn("cuDevicePrimaryCtxRelease", [I])
        self.cuCtxPushCurrent = self._fn("cuCtxPushCurrent", [P])
        self.cuCtxPopCurrent = self._fn("cuCtxPopCurrent", [ctypes.POINTER(P)])
        self.cuStreamCreate = self._fn("cuStreamCreate", [ctypes.POINTER(P), U])
        self.cuStreamDestroy = self._fn("cuStreamDestroy", [P])
        self.cuStreamSynchronize = self._fn("cuStreamSynchronize", [P])
        self.cuEventCreate = self._fn("cuEventCreate", [ctypes.POINTER(P), U])
        self.cuEventDestroy = self._fn("cuEventDestroy", [P])
        self.cuEventRecord = self._fn("cuEventRecord", [P, P])
        self.cuEventQuery = self._fn("cuEventQuery", [P])
        self.hold = self.lib.fake_cuda_hold
        self.hold.argtypes = [P, I]
        self.ok(self.cuInit(0))
        self.ctx = P()
        self.ok(self.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), 0))

    def _fn(self, name, args):
        p = ctypes.c_void_p()
        st = ctypes.c_int()
        r = self._gpa(name.encode(), ctypes.byref(p), 12080, 0, ctypes.byref(st))
        if r or not p.value:
            raise OSError(errno.ENOSYS, "no %s" % name)
        return ctypes.CFUNCTYPE(ctypes.c_int, *args)(p.value)

    @staticmethod
    def ok(r):
        if r:
            raise OSError(errno.EIO, "CUDA error %d" % r)

    def __enter__(self):
        self.ok(self.cuCtxPushCurrent(self.ctx))
        return self

    def __exit__(self, *exc):
        old = ctypes.c_void_p()
        self.ok(self.cuCtxPopCurrent(ctypes.byref(old)))

    def close(self):
        self.cuDevicePrimaryCtxRelease(0)


def fake_cuda():
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    return Cuda() if hasattr(lib, "fake_cuda_hold") else None


CUDA = fake_cuda()


def pattern(n, tag):
    pat = bytes(((tag * 131 + k * 7 + k // 251) & 0xff for k in range(4096)))
    return (pat * (n // 4096 + 1))[:n]


@unittest.skipIf(CUDA is None, "no fake libcuda.so.1 on LD_LIBRARY_PATH")
class DeviceTiers(unittest.TestCase):
    def setUp(self):
        self.m = kvaccel.Mover()

    def tearDown(self):
        self.m.close()

    def run_job(self, tiers, runs, **kw):
        jid = self.m.submit(tiers, runs, **kw)
        d = self.m.poll(timeout=10)
        self.assertEqual([(jid, 0)], [(x.job_id, x.status) for x in d])

    def round_trip(self, dev, bb, n):
        """memfd -> dev -> another memfd, every block; the bytes match."""
        with kvaccel.Tier.memfd(bb, n) as a, kvaccel.Tier.memfd(bb, n) as b:
            a.buffer()[:] = pattern(bb * n, 3)
            self.run_job((a, dev), kvaccel.runs(0, range(n), 1, reversed(range(n))))
            self.run_job((dev, b), kvaccel.runs(0, reversed(range(n)), 1, range(n)))
            self.assertEqual(bytes(a.buffer()), bytes(b.buffer()))

    def test_allocated_tier(self):
        with kvaccel.Tier.cuda(0, 64 * KB, 8, layers=4) as d:
            i = d.info()
            self.assertEqual((kvaccel.CUDA, 8, 64 * KB, 4, 0), i[:3] + (i.layers, i.device))
            self.assertTrue(d.block_addr(0))
            with self.assertRaises(OSError) as e:
                d.buffer()
            self.assertEqual(errno.EOPNOTSUPP, e.exception.errno)
            self.round_trip(d, 64 * KB, 8)

    def test_registered_blocks_layout(self):
        # The engine's memory: an allocated tier's, with a stride of two blocks.
        with kvaccel.Tier.cuda(0, 2 * MB, 1) as eng:
            base = eng.block_addr(0)
            with kvaccel.Tier.register_cuda(0, 64 * KB, 16, base=base,
                                            block_stride=128 * KB) as r:
                i = r.info()
                self.assertEqual((kvaccel.CUDA_REGISTERED, kvaccel.LAYOUT_BLOCKS, 128 * KB),
                                 (i.kind, i.layout, i.block_stride))
                self.assertEqual(base + 3 * 128 * KB, r.block_addr(3))
                self.round_trip(r, 64 * KB, 16)
            # Closing the registered tier left the engine's memory alone.
            with kvaccel.Tier.memfd(2 * MB, 1) as h:
                self.run_job((eng, h), kvaccel.runs(0, [0], 1, [0]))
                got = bytes(h.block(0))
                self.assertNotEqual(bytes(2 * MB), got)

    def test_registered_layers_layout_layer_wise(self):
        L, piece, n = 4, 16 * KB, 8
        with kvaccel.Tier.cuda(0, 2 * MB, 1) as eng:
            base = eng.block_addr(0)
            # Per-layer tensors of n pieces each, 256 KiB apart.
            lb = [base + l * 256 * KB for l in range(L)]
            with kvaccel.Tier.register_cuda(0, L * piece, n, layer_base=lb) as r, \
                    kvaccel.Tier.memfd(L * piece, n, layers=L) as a, \
                    kvaccel.Tier.memfd(L * piece, n, layers=L) as b:
                self.assertEqual((kvaccel.LAYOUT_LAYERS, L), (r.info().layout, r.layers))
                a.buffer()[:] = pattern(L * piece * n, 5)
                self.run_job((a, r), kvaccel.runs(0, range(n), 1, range(n)))
                # Layer by layer back: after layers 1 and 2 only those arrived.
                b.buffer()[:] = bytes(L * piece * n)
                self.run_job((r, b), kvaccel.runs(0, range(n), 1, range(n)), layers=(1, 2))
                for blk in range(n):
                    got, want = bytes(b.block(blk)), bytes(a.block(blk))
                    self.assertEqual(bytes(piece), got[:piece])
                    self.assertEqual(want[piece:3 * piece], got[piece:3 * piece])
                    self.assertEqual(bytes(piece), got[3 * piece:])
                self.run_job((r, b), kvaccel.runs(0, range(n), 1, range(n)), layers=(0, 1))
                self.run_job((r, b), kvaccel.runs(0, range(n), 1, range(n)), layers=(3, 1))
                self.assertEqual(bytes(a.buffer()), bytes(b.buffer()))

    def test_events_in_and_out(self):
        with CUDA as cu, kvaccel.Tier.cuda(0, 64 * KB, 4) as d, \
                kvaccel.Tier.memfd(64 * KB, 4) as h:
            h.buffer()[:] = pattern(256 * KB, 9)
            s, ev_in, ev_out = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
            cu.ok(cu.cuStreamCreate(ctypes.byref(s), 1))
            cu.ok(cu.cuEventCreate(ctypes.byref(ev_in), 2))
            cu.ok(cu.cuEventCreate(ctypes.byref(ev_out), 2))
            try:
                # The engine's stream is held: its event stays pending.
                self.assertEqual(0, cu.hold(s, 1))
                cu.ok(cu.cuEventRecord(ev_in, s))
                jid = self.m.submit((h, d), kvaccel.runs(0, range(4), 1, range(4)),
                                    wait_event=ev_in.value, record_event=ev_out.value)
                self.assertEqual([], self.m.poll(timeout=0.2))
                self.assertEqual(1, self.m.pending)
                self.assertNotEqual(0, cu.cuEventQuery(ev_out))  # not ready
                self.assertEqual(0, cu.hold(s, 0))
                d_ = self.m.poll(timeout=10)
                self.assertEqual([(jid, 0)], [(x.job_id, x.status) for x in d_])
                self.assertEqual(0, cu.cuEventQuery(ev_out))
                with kvaccel.Tier.memfd(64 * KB, 4) as back:
                    self.run_job((d, back), kvaccel.runs(0, range(4), 1, range(4)))
                    self.assertEqual(bytes(h.buffer()), bytes(back.buffer()))
            finally:
                cu.hold(s, 0)
                cu.cuStreamSynchronize(s)
                cu.cuEventDestroy(ev_in)
                cu.cuEventDestroy(ev_out)
                cu.cuStreamDestroy(s)

    def test_bad_options(self):
        for kw in (dict(block_bytes=0, blocks=1), dict(block_bytes=64 * KB, blocks=0),
                   dict(block_bytes=64 * KB, blocks=1, layers=3)):
            with self.assertRaises(OSError) as e:
                kvaccel.Tier.cuda(0, **kw)
            self.assertEqual(errno.EINVAL, e.exception.errno)
        with self.assertRaises(OSError) as e:
            kvaccel.Tier.register_cuda(0, 64 * KB, 4, base=0)
        self.assertEqual(errno.EINVAL, e.exception.errno)
        with self.assertRaises(OSError) as e:
            kvaccel.Tier.register_cuda(0, 64 * KB, 4, base=1 << 40, block_stride=4 * KB)
        self.assertEqual(errno.EINVAL, e.exception.errno)
        with self.assertRaises(OSError) as e:
            kvaccel.Tier.cuda(7, 64 * KB, 1)
        self.assertIn(e.exception.errno, (errno.ENODEV, errno.EINVAL))
        # Events on a job without a device tier.
        with kvaccel.Tier.memfd(4 * KB, 2) as a:
            with self.assertRaises(OSError) as e:
                self.m.submit((a,), kvaccel.runs(0, [0], 0, [1]), record_event=1)
            self.assertEqual(errno.EINVAL, e.exception.errno)
            self.assertEqual(0, self.m.pending)


def expert_bytes(layer, expert, n):
    return pattern(n, layer * 16 + expert + 1)


@unittest.skipIf(CUDA is None, "no fake libcuda.so.1 on LD_LIBRARY_PATH")
class MoeStore(unittest.TestCase):
    """kvaccel.moe.Store on the cuda backend over the fake's two GPUs (no
    kvaccel device): every replica read through its window (the fake's
    device memory is host memory), a rotation across the GPUs under steps
    on the store's thread, a permutation within each GPU with no copy, a
    store made from another's copies, bad input."""

    LAYERS, EXPERTS, SPD, EB = 2, 4, 3, 3 * MB

    def initial(self):
        # GPU 0: experts 0, 2, 0; GPU 1: 1, 3, 1 (each layer).
        return [[0, 2, 0, 1, 3, 1]] * self.LAYERS

    def store(self, p, **kw):
        return kvaccel.moe.Store(self.LAYERS, self.EXPERTS, 2, self.SPD, self.EB, p,
                                 gpus=[0, 1], **kw)

    def check_all(self, s, v):
        for l in range(self.LAYERS):
            for e in range(self.EXPERTS):
                want = expert_bytes(l, e, self.EB)
                reps = s.replicas(v, l, e)
                self.assertTrue(reps)
                for r in range(len(reps)):
                    a = s.expert(v, l, e, r)
                    self.assertEqual(ctypes.string_at(a, self.EB), want, (l, e, r))

    def fill(self, s):
        for l in range(self.LAYERS):
            for e in range(self.EXPERTS):
                s.write(l, e, expert_bytes(l, e, self.EB))

    def test_rebalances_on_gpus(self):
        with self.store(self.initial(), thread=True, max_inflight=2) as s:
            self.fill(s)
            st = s.stats()
            self.assertEqual((st.devices, st.block_size, st.blocks_per_expert),
                             (2, 2 * MB, 2))
            self.assertEqual(st.live_copies, [2 * self.LAYERS, 2 * self.LAYERS])
            with s.step() as v:
                self.check_all(s, v)
            # Every slot to the other GPU: each expert copied across.
            rot = [[1, 3, 1, 0, 2, 0]] * self.LAYERS
            s.apply(rot)
            busy = True
            while busy:
                with s.step() as v:
                    self.check_all(s, v)
                busy = s.progress()
            s.settle(10)
            st = s.stats()
            self.assertEqual((st.rebalances, st.last_error), (1, 0))
            self.assertGreaterEqual(st.copies, 2 * 2 * self.LAYERS)
            self.assertEqual([list(r) for r in s.placement()], rot)
            # A permutation within each GPU: rebinds, no copy.
            c0 = st.copies
            s.apply([[3, 1, 1, 2, 0, 0]] * self.LAYERS)
            s.settle(10)
            st = s.stats()
            self.assertEqual(st.copies, c0)
            self.assertGreater(st.rebinds, 0)
            with s.step() as v:
                self.check_all(s, v)
            # A second store from this one's copies: nothing written.
            with self.store(self.initial(), from_store=s) as t:
                self.assertEqual(t.stats().fetched, 2 * 2 * self.LAYERS)
                with t.step() as v:
                    self.check_all(t, v)

    def test_bad_input(self):
        with self.assertRaises(OSError) as e:
            kvaccel.moe.Store(self.LAYERS, self.EXPERTS, 2, self.SPD, self.EB, self.initial(),
                              gpus=[0, 7])
        self.assertEqual(errno.ENODEV, e.exception.errno)
        with self.assertRaises(OSError) as e:   # the host backend needs a kvaccel device
            kvaccel.moe.Store(self.LAYERS, self.EXPERTS, 2, self.SPD, self.EB, self.initial())
        self.assertEqual(errno.EINVAL, e.exception.errno)
        with self.assertRaises(ValueError):
            self.store([[0, 1, 2, 3]] * self.LAYERS)
        with self.assertRaises(ValueError):
            kvaccel.moe.Store(self.LAYERS, self.EXPERTS, 2, self.SPD, self.EB, self.initial(),
                              gpus=[0])
        with self.store(self.initial()) as s:
            with self.assertRaises(ValueError):
                s.write(0, 0, b"short")
            with self.assertRaises(OSError) as e:
                s.write(0, 9, bytes(self.EB))
            self.assertEqual(errno.EINVAL, e.exception.errno)
            with self.assertRaises(OSError) as e:
                s.apply([[0, 0, 0, 0, 0, 0]] * self.LAYERS)     # experts without a slot
            self.assertEqual(errno.EINVAL, e.exception.errno)
            with self.assertRaises(OSError) as e:
                s.expert(99, 0, 0)                             # no step of that version
            self.assertEqual(errno.EINVAL, e.exception.errno)
            with self.assertRaises(OSError) as e:
                s.end(0)                                       # no step in flight
            self.assertEqual(errno.EINVAL, e.exception.errno)
        with self.assertRaises(ValueError):
            s.begin()                                          # closed


if __name__ == "__main__":
    try:
        tap.main("python_cuda")
    finally:
        if CUDA is not None:
            CUDA.close()
