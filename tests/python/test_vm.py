#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Python bindings against the kvaccel module (in the VM): devices and
their info, regions as memoryview and numpy arrays (the library's mapping
and Python's the same bytes), export and import, bad sizes as OSError;
host tiers of several block sizes with the copy engine through the mover
(scattered runs checked byte for byte, asyncio), a host tier's dma-buf
imported as a region; the connector example on host tiers; an Engine
connection to kvacceld (quota, a region handed from one engine to
another and read back, a release request answered by the callback,
reconnecting after the daemon restarted, the errors). kvacceld and kvaccelctl on PATH.
Prints TAP (tests/python/tap.py)."""

import asyncio
import ctypes
import errno
import importlib.util
import os
import socket
import subprocess
import time
import unittest

import common
import kvaccel
import tap

KB = 1024
MB = 1024 * KB
SOCK = "/tmp/py-kvd.sock"


class DeviceTest(unittest.TestCase):
    def test_list_open_info(self):
        paths = kvaccel.devices()
        self.assertGreaterEqual(len(paths), 1)
        with kvaccel.Device() as d:
            i = d.info()
            self.assertEqual(i.path, paths[0])
            self.assertEqual(i.abi_major, 1)
            self.assertTrue(i.block_sizes & (1 << 12))
            self.assertGreaterEqual(d.fileno(), 0)
        with kvaccel.Device(paths[0]) as d:
            self.assertEqual(d.info().path, paths[0])

    def test_open_errors(self):
        with self.assertRaises(OSError) as cm:
            kvaccel.Device("/dev/null")
        self.assertEqual(cm.exception.errno, errno.ENODEV)
        d = kvaccel.Device()
        d.close()
        with self.assertRaises(ValueError):
            d.info()


class RegionTest(unittest.TestCase):
    def setUp(self):
        self.d = kvaccel.Device()

    def tearDown(self):
        self.d.close()

    def test_buffer_is_the_regions_memory(self):
        with self.d.region(4 * 64 * KB, 64 * KB) as r:
            self.assertEqual((r.size, r.block_size, r.foreign), (256 * KB, 64 * KB, False))
            self.assertGreater(r.id, 0)
            mv = r.buffer()
            self.assertEqual(len(mv), 256 * KB)
            self.assertEqual(bytes(mv[:16]), bytes(16))        # zero-filled
            r.block(2)[:5] = b"hello"
            self.assertEqual(ctypes.string_at(r.address() + 128 * KB, 5), b"hello")
            ctypes.memmove(r.address() + 8, b"world", 5)
            self.assertEqual(bytes(mv[8:13]), b"world")
            del mv

    @unittest.skipIf(common.numpy is None, "numpy is not shipped")
    def test_numpy_view_outlives_close(self):
        np = common.numpy
        r = self.d.region(2 * MB, 2 * MB)
        a = np.frombuffer(r.buffer(), dtype=np.float32)
        a[:] = np.arange(a.size, dtype=np.float32)
        self.assertEqual(ctypes.c_float.from_address(r.address() + 4 * 1000).value, 1000.0)
        r.close()
        self.assertEqual(float(a[12345]), 12345.0)   # still mapped (the dma-buf's mmap)
        del a

    def test_export_import(self):
        with self.d.region(8 * 4 * KB, 4 * KB) as r:
            r.block(3)[:3] = b"abc"
            fd = r.export()
            try:
                with kvaccel.Device() as d2, d2.import_region(fd) as r2:
                    self.assertEqual(r2.size, r.size)
                    self.assertEqual(r2.id, r.id)
                    self.assertEqual(bytes(r2.block(3)[:3]), b"abc")
                    r2.block(0)[:2] = b"xy"
                self.assertEqual(bytes(r.block(0)[:2]), b"xy")
            finally:
                os.close(fd)

    def test_bad_sizes(self):
        for size, bs in ((4 * KB, 3 * KB), (6 * KB, 4 * KB), (0, 4 * KB), (4 * MB, 4 * MB)):
            with self.assertRaises(OSError) as cm:
                self.d.region(size, bs)
            self.assertEqual(cm.exception.errno, errno.EINVAL, (size, bs))

    def test_device_close_closes_its_objects(self):
        r = self.d.region(64 * KB, 64 * KB)
        t = kvaccel.Tier.host(self.d, 64 * KB, 2)
        self.d.close()
        self.assertTrue(r.closed and t.closed)


def fill(tier, i, tag):
    b = tier.block(i)
    n = len(b)
    pat = bytes(((tag * 131 + i * 7 + k) & 0xff for k in range(256)))
    b[:] = (pat * (n // 256 + 1))[:n]
    return bytes(b)


class HostTierTest(unittest.TestCase):
    def setUp(self):
        self.d = kvaccel.Device()
        self.m = kvaccel.Mover()

    def tearDown(self):
        self.m.close()
        self.d.close()

    def test_shapes(self):
        for bb, rb in ((4 * KB, 4 * KB), (12 * KB, 4 * KB), (64 * KB, 64 * KB),
                       (5 * MB, 1 * MB)):
            with kvaccel.Tier.host(self.d, bb, 3) as t:
                i = t.info()
                self.assertEqual((i.kind, i.blocks, i.block_bytes, i.region_block_bytes),
                                 (kvaccel.tier.HOST, 3, bb, rb))
                t.block(2)[-4:] = b"tail"
                self.assertEqual(ctypes.string_at(t.block_addr(2) + bb - 4, 4), b"tail")

    def test_copy_engine_scattered_runs(self):
        a = kvaccel.Tier.host(self.d, 64 * KB, 16)
        b = kvaccel.Tier.host(self.d, 64 * KB, 16)
        src, dst = [0, 3, 4, 5, 9, 15], [15, 1, 2, 3, 8, 0]
        want = {dd: fill(a, s, 1) for s, dd in zip(src, dst)}
        keep = {i: fill(b, i, 2) for i in range(16) if i not in want}
        j = self.m.submit([a, b], kvaccel.runs(0, src, 1, dst), user_data=5)
        self.assertEqual(self.m.poll(timeout=30), [kvaccel.Done(j, 5, 0)])
        for dd, data in want.items():
            self.assertEqual(bytes(b.block(dd)), data, dd)
        for i, data in keep.items():
            self.assertEqual(bytes(b.block(i)), data, i)
        a.close()
        b.close()

    def test_copy_engine_5m_blocks_asyncio(self):
        a = kvaccel.Tier.host(self.d, 5 * MB, 3)
        b = kvaccel.Tier.host(self.d, 5 * MB, 3)
        data = [fill(a, i, 3) for i in range(3)]

        async def main():
            j1 = self.m.submit([a, b], [(0, 0, 1, 2, 1), (0, 1, 1, 0, 1)])
            j2 = self.m.submit([a, b], [(0, 2, 1, 1, 1)])
            return await asyncio.wait_for(asyncio.gather(self.m.wait(j1), self.m.wait(j2)), 60)

        d1, d2 = asyncio.run(main())
        self.assertEqual((d1.status, d2.status), (0, 0))
        self.assertEqual([bytes(b.block(i)) for i in (2, 0, 1)], data)
        a.close()
        b.close()

    def test_region_and_memfd_tiers_mixed(self):
        h = kvaccel.Tier.host(self.d, 16 * KB, 4)
        f = kvaccel.Tier.memfd(16 * KB, 4)
        x = fill(h, 1, 4)
        self.m.submit([h, f], [(0, 1, 1, 3, 1)])
        self.assertEqual(self.m.poll(timeout=30)[0].status, 0)
        self.assertEqual(bytes(f.block(3)), x)
        h.close()
        f.close()

    def test_tier_export_imported_as_region(self):
        with kvaccel.Tier.host(self.d, 64 * KB, 2) as t:
            t.block(1)[:4] = b"tier"
            fd = t.export()
            try:
                with self.d.import_region(fd) as r:
                    self.assertEqual(bytes(r.buffer()[64 * KB:64 * KB + 4]), b"tier")
            finally:
                os.close(fd)

    def test_connector_example_on_host_tiers(self):
        path = os.path.join(common.TOP, "Documentation", "examples", "connector.py")
        spec = importlib.util.spec_from_file_location("connector", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        log, st = asyncio.run(mod.main(verbose=False,
                                       make_tier=lambda bb, n: kvaccel.Tier.host(self.d, bb, n)))
        self.assertEqual(log[2][1:], (12, 0, 0))
        self.assertGreater(st.evictions, 0)


def start_daemon(*extra):
    try:
        os.unlink(SOCK)
    except FileNotFoundError:
        pass
    log = open("/tmp/py-kvd.log", "ab")
    p = subprocess.Popen(["kvacceld", "--socket", SOCK, "--metrics", "off"] + list(extra),
                         stderr=log, stdout=log)
    for _ in range(300):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(SOCK)
            return p
        except OSError:
            if p.poll() is not None:
                raise RuntimeError("kvacceld exited %d" % p.returncode)
            time.sleep(0.05)
        finally:
            s.close()
    p.kill()
    raise RuntimeError("kvacceld did not come up")


class EngineTest(unittest.TestCase):
    def setUp(self):
        self.dev = kvaccel.Device()
        self.daemon = start_daemon("--limit", "512M")

    def tearDown(self):
        self.daemon.terminate()
        self.assertEqual(self.daemon.wait(30), 0)
        subprocess.run("kvaccelctl watermarks off >/dev/null 2>&1; "
                       "kvaccelctl limit set 0 >/dev/null 2>&1", shell=True)
        self.dev.close()

    def test_connect_quota_errors(self):
        with kvaccel.Engine("py-q", priority=1, path=SOCK) as e:
            self.assertGreaterEqual(e.fileno(), 0)
            self.assertEqual(e.dispatch(0), 0)
            self.assertEqual(e.pending, 0)
            self.assertEqual(e.quota(64 * MB), 64 * MB)
            self.assertEqual(e.quota_now, 64 * MB)
            with self.assertRaises(OSError) as cm:
                e.quota(1024 * MB)
            self.assertEqual(cm.exception.errno, errno.ENOSPC)
            with self.assertRaises(OSError) as cm:
                e.quota(12345)                       # not whole MiB
            self.assertEqual(cm.exception.errno, errno.EINVAL)
            with self.assertRaises(OSError) as cm:
                kvaccel.Engine("py-q", path=SOCK)
            self.assertEqual(cm.exception.errno, errno.EEXIST)
        with self.assertRaises(ValueError):
            e.dispatch()
        with self.assertRaises(OSError) as cm:
            kvaccel.Engine("py-x", path="/tmp/no-such.sock")
        self.assertIn(cm.exception.errno, (errno.ENOENT, errno.ECONNREFUSED))

    def test_region_handed_to_another_engine(self):
        got = []
        done = []

        def receive(h):
            got.append(h)
            return True

        a = kvaccel.Engine("py-a", path=SOCK, handoff_done=lambda tag, st: done.append((tag, st)))
        b = kvaccel.Engine("py-b", path=SOCK, receive=receive)
        r = self.dev.region(4 * 64 * KB, 64 * KB)
        r.block(1)[:8] = b"handoff!"
        a.handoff("py-b", 7, [r])
        self.assertEqual(a.pending, 1)
        for _ in range(100):
            if got:
                break
            b.dispatch(0.1)
        self.assertEqual(len(got), 1)
        h = got[0]
        self.assertEqual((h.sender_name, h.tag, h.kinds, h.sizes),
                         ("py-a", 7, [kvaccel.HANDOFF_REGION], [256 * KB]))
        if h.sender is not None:
            self.assertEqual(h.sender.pid, os.getpid())
        with self.dev.import_region(h.fds[0]) as r2:
            self.assertEqual(bytes(r2.block(1)[:8]), b"handoff!")
        for fd in h.fds:
            os.close(fd)
        self.assertEqual(a.handoff_wait(7, timeout=10), 0)
        self.assertEqual(done, [(7, 0)])
        self.assertEqual(a.pending, 0)
        with self.assertRaises(OSError) as cm:
            a.handoff_wait(99, timeout=0.1)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        r.close()
        b.close()
        a.close()

    def test_reconnect_after_the_daemon_restarts(self):
        with kvaccel.Engine("py-r", path=SOCK) as e:
            self.daemon.terminate()
            self.assertEqual(self.daemon.wait(30), 0)
            with self.assertRaises(OSError) as cm:
                for _ in range(50):
                    e.dispatch(0.1)
            self.assertEqual(cm.exception.errno, errno.ECONNRESET)
            with self.assertRaises(OSError) as cm:
                e.reconnect()
            self.assertIn(cm.exception.errno, (errno.ENOENT, errno.ECONNREFUSED))
            self.daemon = start_daemon("--limit", "512M")
            e.reconnect()
            self.assertEqual(e.dispatch(0), 0)

    def test_callback_exception_raised_by_dispatch(self):
        def receive(h):
            raise RuntimeError("refused in Python")

        a = kvaccel.Engine("py-c", path=SOCK)
        b = kvaccel.Engine("py-d", path=SOCK, receive=receive)
        with self.dev.region(64 * KB, 64 * KB) as r:
            a.handoff("py-d", 1, [r])
            with self.assertRaises(RuntimeError):
                for _ in range(100):
                    b.dispatch(0.1)
            self.assertLess(a.handoff_wait(1, timeout=10), 0)   # refused
        b.close()
        a.close()


class PressureTest(unittest.TestCase):
    """The daemon's release request reaches the release callback: 28 MiB in
    use crosses the 24 MiB high watermark, the engine is asked for 12 MiB
    (down to the 16 MiB low watermark) and frees 16 MiB."""

    def setUp(self):
        self.dev = kvaccel.Device()
        self.daemon = start_daemon("--high-watermark", "24M", "--low-watermark", "16M")

    def tearDown(self):
        self.daemon.terminate()
        self.assertEqual(self.daemon.wait(30), 0)
        subprocess.run("kvaccelctl watermarks off >/dev/null 2>&1; "
                       "kvaccelctl limit set 0 >/dev/null 2>&1", shell=True)
        self.dev.close()

    def test_release_callback(self):
        held = [self.dev.region(8 * MB, 2 * MB) for _ in range(2)]
        asked = []

        def release(nbytes):
            asked.append(nbytes)
            freed = sum(r.size for r in held)
            for r in held:
                r.close()
            held.clear()
            return freed

        with kvaccel.Engine("py-low", priority=0, path=SOCK, release=release) as e:
            more = self.dev.region(12 * MB, 2 * MB)
            for _ in range(300):
                if asked:
                    break
                e.dispatch(0.1)
            self.assertEqual(asked, [12 * MB])
            self.assertEqual(held, [])
            more.close()


if __name__ == "__main__":
    tap.main("python_vm")
