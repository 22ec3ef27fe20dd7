#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvaccel.OffloadManager natively: lookup without side effects, stores
all or nothing (ENOSPC), keys already stored given no block, evictions
(LRU order, touch, never pinned or in-flight blocks, never the call's own
keys), loads pinned (ENOENT, EINVAL), failed stores freed, ARC, bad
options, close; and Documentation/examples/connector.py, the connector
flow end to end on memfd tiers with its data checked.
Prints TAP (tests/python/tap.py); $KVACCEL_LIB names the library."""

import asyncio
import errno
import importlib.util
import os
import unittest

import common
import kvaccel
import tap

NO = kvaccel.NO_BLOCK


def chain(bm, start, blocks):
    return bm.keys(list(range(start, start + 4 * blocks)))


class Offload(unittest.TestCase):
    def setUp(self):
        self.bm = kvaccel.BlockManager([1], block_tokens=4)
        self.o = kvaccel.OffloadManager(8)

    def tearDown(self):
        self.o.close()
        self.bm.close()

    def store(self, keys, ok=True):
        st = self.o.prepare_store(keys)
        self.o.complete_store(st, ok)
        return st

    def test_lookup_has_no_side_effect(self):
        k = chain(self.bm, 0, 4)
        self.assertEqual(self.o.lookup(k), 0)
        st = self.o.prepare_store(k)
        self.assertEqual(self.o.lookup(k), 0)          # not visible while storing
        self.assertEqual(self.o.stats().storing, 4)
        self.o.complete_store(st)
        self.assertEqual(self.o.lookup(k), 4)
        self.assertEqual(self.o.lookup(k[:2]), 2)
        self.assertEqual(self.o.lookup([]), 0)
        s = self.o.stats()
        self.assertEqual((s.blocks, s.free, s.storing, s.ready, s.pinned, s.evictions),
                         (8, 4, 0, 4, 0, 0))

    def test_stored_keys_get_no_block(self):
        k = chain(self.bm, 0, 6)
        self.store(k[:3])
        st = self.o.prepare_store(k)
        self.assertEqual(list(st.blocks[:3]), [NO] * 3)
        self.assertNotIn(NO, list(st.blocks[3:]))
        self.assertEqual(st.allocated, 3)
        self.assertEqual(list(st.index()), [3, 4, 5])
        self.assertEqual(st.keys(), k[3:])
        r = st.runs(0, [10, 11, 12, 13, 14, 15], 1)     # the engine's blocks -> the new ones
        self.assertEqual(list(r), [v for i in (3, 4, 5)
                                   for v in (0, 10 + i, 1, st.blocks[i], 1)])
        self.o.complete_store(st)
        self.assertEqual(self.o.lookup(k), 6)

    def test_enospc_changes_nothing(self):
        k = chain(self.bm, 0, 9)
        with self.assertRaises(OSError) as cm:
            self.o.prepare_store(k)
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.assertEqual(self.o.stats().free, 8)

    def test_eviction_lru_and_touch(self):
        a, b = chain(self.bm, 0, 4), chain(self.bm, 100, 4)
        self.store(a)
        self.store(b)
        self.o.touch(a)                                 # a is now the most recent
        c = chain(self.bm, 200, 2)
        st = self.o.prepare_store(c)
        self.assertEqual(len(st.evicted), 2)
        self.assertTrue(set(st.evicted) <= set(b))      # from b, its tail first
        self.assertEqual(set(st.evicted), set(list(b)[2:]))
        self.o.complete_store(st)
        self.assertEqual(self.o.lookup(a), 4)
        self.assertEqual(self.o.lookup(b), 2)
        self.assertEqual(self.o.stats().evictions, 2)

    def test_pinned_and_storing_never_evicted(self):
        a, b = chain(self.bm, 0, 4), chain(self.bm, 100, 4)
        self.store(a)
        hb = self.o.prepare_load(a)
        self.assertEqual(len(set(hb)), 4)
        self.assertEqual(self.o.stats().pinned, 4)
        sb = self.o.prepare_store(b)                    # the other 4 blocks, in flight
        with self.assertRaises(OSError) as cm:
            self.o.prepare_store(chain(self.bm, 300, 1))
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.o.complete_load(a)
        self.o.complete_store(sb)
        st = self.o.prepare_store(chain(self.bm, 300, 1))
        self.assertEqual(len(st.evicted), 1)

    def test_loads(self):
        k = chain(self.bm, 0, 3)
        with self.assertRaises(OSError) as cm:
            self.o.prepare_load(k)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        st = self.store(k)
        hb = self.o.prepare_load(k)
        self.assertEqual(list(hb), list(st.blocks))
        self.o.complete_load(k)
        with self.assertRaises(OSError) as cm:
            self.o.complete_load(k)                     # not pinned any more
        self.assertEqual(cm.exception.errno, errno.EINVAL)

    def test_failed_store_frees(self):
        k = chain(self.bm, 0, 5)
        self.store(k, ok=False)
        self.assertEqual(self.o.lookup(k), 0)
        self.assertEqual(self.o.stats().free, 8)

    def test_keys_from_bytes(self):
        k = [bytes([i + 1]) * 32 for i in range(3)]  # (the zero key is no key)
        self.store(k)
        self.assertEqual(self.o.lookup(k), 3)
        with self.assertRaises(ValueError):
            self.o.lookup([b"short"])

    def test_arc_and_bad_options(self):
        with kvaccel.OffloadManager(4, evict="arc", arc_ghosts=2) as o:
            k = chain(self.bm, 0, 4)
            o.complete_store(o.prepare_store(k))
            self.assertEqual(o.lookup(k), 4)
        for kw in ({"blocks": 0}, {"blocks": 1 << 30}, {"blocks": 4, "evict": 7},
                   {"blocks": 4, "flags": 1}):
            with self.assertRaises(OSError) as cm:
                kvaccel.OffloadManager(**kw)
            self.assertEqual(cm.exception.errno, errno.EINVAL, kw)

    def test_close(self):
        o = kvaccel.OffloadManager(2)
        with o:
            pass
        for f in (lambda: o.lookup([]), o.stats, lambda: o.prepare_store([])):
            with self.assertRaises(ValueError):
                f()


class Example(unittest.TestCase):
    def test_connector_example(self):
        path = os.path.join(common.TOP, "Documentation", "examples", "connector.py")
        spec = importlib.util.spec_from_file_location("connector", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        log, st = asyncio.run(mod.main(verbose=False))
        self.assertEqual([r[0] for r in log], ["a", "b", "a again", "other", "a late"])
        self.assertGreater(st.evictions, 0)
        self.assertEqual(st.ready, st.blocks)


if __name__ == "__main__":
    tap.main("python_offload")
