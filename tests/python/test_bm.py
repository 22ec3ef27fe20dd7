#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Python bindings of the block manager (kvaccel.BlockManager over
libaccel.so.0's accel_bm_*), natively: the ctypes structs against the C
layout (tests/python/bm_layout.c, $KVACCEL_BM_LAYOUT or compiled here),
errors as OSError, lifetimes, keys, lookup and commit gating, start with
prefix hits, copy-on-write plans done and undone, truncate, moves with
runs fetched past the first batch, block tables, tier stats.
Prints TAP (tests/python/tap.py); $KVACCEL_LIB names the library."""

import array
import ctypes
import errno
import gc
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common                       # noqa: E402 (the package and tap.py on sys.path)
import kvaccel                      # noqa: E402
from kvaccel import _bm_types       # noqa: E402
import tap                          # noqa: E402

BT = 4
T = list(range(1, 65))


class Layout(unittest.TestCase):
    def test_structs_match_c(self):
        got = common.layout("KVACCEL_BM_LAYOUT", "bm_layout.c")
        if got is None:
            self.skipTest("no C compiler and no $KVACCEL_BM_LAYOUT")
        structs, consts = got
        self.assertEqual(set(structs), set(_bm_types.STRUCTS))
        for name, cls in _bm_types.STRUCTS.items():
            c = structs[name]
            self.assertEqual(c.pop("size"), (ctypes.sizeof(cls), ctypes.alignment(cls)), name)
            py = {f: (getattr(cls, f).offset, getattr(cls, f).size) for f, _ in cls._fields_}
            self.assertEqual(py, c, name)
        self.assertEqual(consts["ACCEL_BM_TIERS_MAX"], _bm_types.TIERS_MAX)
        self.assertEqual(consts["ACCEL_BM_KEY_BYTES"], kvaccel.KEY_BYTES)
        self.assertEqual(consts["ACCEL_BM_EVICT_LRU"], kvaccel.EVICT_LRU)
        self.assertEqual(consts["ACCEL_BM_EVICT_ARC"], kvaccel.EVICT_ARC)


class Base(unittest.TestCase):
    def setUp(self):
        self.bm = kvaccel.BlockManager([16, 16], block_tokens=BT)

    def tearDown(self):
        self.bm.close()

    def started(self, tokens, tier=0, keys=None):
        s = self.bm.seq_create(tier=tier)
        cached = self.bm.seq_start(s, tokens, keys)
        return s, cached


class Lifetime(unittest.TestCase):
    def test_loads_the_library_named(self):
        want = os.environ.get("KVACCEL_LIB")
        if want:
            self.assertEqual(kvaccel.library_path(), want)
        self.assertTrue(kvaccel._lib().accel_bm_create)

    def test_create_errors_are_oserror(self):
        for bad in (dict(tier_blocks=[16], block_tokens=0),
                    dict(tier_blocks=[], block_tokens=4),
                    dict(tier_blocks=[1] * 9, block_tokens=4),
                    dict(tier_blocks=[16], block_tokens=4, evict=7)):
            with self.assertRaises(OSError) as cm:
                kvaccel.BlockManager(**bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL, bad)

    def test_seq_create_reserve_tokens(self):
        with kvaccel.BlockManager([8], block_tokens=BT) as bm:
            s = bm.seq_create(reserve_tokens=8 * BT)  # the whole tier: fine
            self.assertEqual(bm.seq_start(s, T[:2 * BT]), 0)
            with self.assertRaises(OSError) as cm:
                bm.seq_create(reserve_tokens=8 * BT + 1)
            self.assertEqual(cm.exception.errno, errno.E2BIG)

    def test_close_context_manager_del(self):
        with kvaccel.BlockManager([8], block_tokens=BT, evict="arc") as bm:
            self.assertFalse(bm.closed)
            bm.seq_create()
        self.assertTrue(bm.closed)
        bm.close()  # twice: nothing
        with self.assertRaises(ValueError):
            bm.seq_create()
        for _ in range(100):  # dropped without close(): __del__ destroys it
            b = kvaccel.BlockManager([1024], block_tokens=BT)
            b.seq_start(b.seq_create(), T)
            del b
        gc.collect()


class Keys(Base):
    def test_chain_and_parent(self):
        k = self.bm.keys(T[:10])  # 2 full blocks, 2 tokens left
        self.assertEqual(len(k), 2)
        self.assertEqual(len(k[0]), kvaccel.KEY_BYTES)
        k2 = self.bm.keys(T[8:16], parent=k.last)
        self.assertEqual(list(self.bm.keys(T[:16])), list(k) + list(k2))
        self.assertEqual(self.bm.keys(T[:16])[2:], k2)
        self.assertEqual(len(self.bm.keys(T[:3])), 0)
        self.assertIsNone(self.bm.keys([]).last)

    def test_extra_keys_change_keys(self):
        a, b = self.bm.keys(T[:8]), self.bm.keys(T[:8], extra=b"lora-7")
        self.assertNotEqual(a[0], b[0])
        self.assertEqual(b, self.bm.keys(T[:8], extra=b"lora-7"))

    def test_token_types(self):
        want = self.bm.keys(T)
        self.assertEqual(self.bm.keys(array.array("i", T)), want)
        self.assertEqual(self.bm.keys(tuple(T)), want)
        self.assertEqual(self.bm.keys(bytes(array.array("i", T))), want)  # read-only 'B': copied
        self.assertEqual(self.bm.keys(memoryview(bytes(array.array("i", T))).cast("i")), want)

    def test_from_bytes(self):
        k = self.bm.keys(T)
        self.assertEqual(kvaccel.Keys.from_bytes(list(k)), k)
        self.assertEqual(bytes(k), b"".join(k))
        with self.assertRaises(ValueError):
            kvaccel.Keys.from_bytes([b"short"])
        self.assertEqual(self.bm.lookup(list(k)), [0, 0])


class Sequences(Base):
    def test_lookup_commit_gating_and_hits(self):
        k = self.bm.keys(T[:16])
        self.assertEqual(self.bm.lookup(k), [0, 0])
        s, cached = self.started(T[:18], keys=k)
        self.assertEqual(cached, 0)
        self.assertEqual(self.bm.lookup(k), [0, 0])  # not committed yet
        self.assertEqual(self.bm.commit(s, 3), 3)
        self.assertEqual(self.bm.lookup(k), [3, 0])
        info = self.bm.seq_info(s)
        self.assertEqual((info.tier, info.nr_blocks, info.nr_tokens, info.nr_committed),
                         (0, 5, 18, 3))
        s2, cached = self.started(T[:16], keys=k)
        self.assertEqual(cached, 12)
        st = self.bm.tier_stats(0)
        self.assertEqual((st.blocks, st.hits), (16, 3))
        self.assertEqual(st.used, 5 + 1)
        with self.assertRaises(OSError) as cm:
            self.bm.commit(s, 5)
        self.assertEqual(cm.exception.errno, errno.ERANGE)
        self.assertEqual(self.bm.seq_keys(s, 0, 3), k[:3])

    def test_errors(self):
        with self.assertRaises(OSError) as cm:
            self.bm.seq_free(12345)
        self.assertIn(cm.exception.errno, (errno.ENOENT, errno.EINVAL))
        s, _ = self.started(T[:8])
        with self.assertRaises(OSError) as cm:
            self.bm.seq_start(s, T[:4])
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError) as cm:
            self.started(T * 2)  # 32 blocks on a tier of 16
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.assertEqual(self.bm.tier_stats(0).used, 2)  # all or nothing
        with self.assertRaises(OSError) as cm:
            self.bm.plan_done(99)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        with self.assertRaises(OSError) as cm:
            self.bm.tier_stats(2)

    def test_copy_on_write_done_and_undone(self):
        s, _ = self.started(T[:6])
        c = self.bm.seq_fork(s)
        self.assertIsNone(self.bm.append(s, [], None))
        plan = self.bm.append(c, [7])  # the shared partial block is copied
        self.assertIsNotNone(plan)
        self.assertNotEqual(plan.id, 0)
        self.assertEqual(plan.blocks, 1)
        self.assertEqual(len(plan.runs), 1)
        st, sb, dt, db, n = plan.runs[0]
        off, ids = self.bm.block_tables([s, c])
        self.assertEqual((st, dt, n, sb, db), (0, 0, 1, ids[1], ids[3]))
        with self.assertRaises(OSError) as cm:  # pending plan
            self.bm.append(c, [8])
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        self.assertEqual(self.bm.seq_info(c).plan_id, plan.id)
        self.bm.plan_done(plan)
        self.assertEqual(self.bm.seq_info(c).nr_tokens, 7)
        plan = self.bm.append(self.bm.seq_fork(s), [9])
        self.bm.plan_done(plan.id, errno.EIO)  # failed: undone
        self.assertEqual(self.bm.tier_stats(0).reserved, 0)

    def test_truncate(self):
        s, _ = self.started(T[:8])
        self.bm.commit(s, 2)
        k = self.bm.keys(T[:8])
        self.assertEqual(self.bm.lookup(k), [2, 0])
        self.assertEqual(self.bm.truncate(s, 3), 0)  # block 1 partial: unkeyed, kept
        self.assertEqual(self.bm.seq_info(s).nr_tokens, 5)
        self.assertEqual(self.bm.lookup(k), [1, 0])
        self.assertEqual(self.bm.truncate(s, 2), 1)
        self.assertEqual(self.bm.seq_info(s).nr_blocks, 1)


    def test_written_and_evict(self):
        s, _ = self.started(T[:10])  # 3 blocks, none committed
        self.bm.plan_done(self.bm.move(s, 1))
        self.assertEqual(self.bm.move(s, 0).reused, 3)  # the device copies kept
        self.bm.written(s, 1)
        plan = self.bm.move(s, 1)
        self.assertEqual((plan.blocks, plan.reused), (2, 1))
        self.bm.plan_done(plan)
        with self.assertRaises(OSError) as e:
            self.bm.written(s, 3)
        self.assertEqual(e.exception.errno, errno.ERANGE)
        # The copies the moves left on tier 0 are what evict frees there.
        free0 = self.bm.tier_stats(0).free
        self.assertEqual(self.bm.evict(0, 16), 3)
        self.assertEqual(self.bm.tier_stats(0).free, free0 + 3)


class Plans(unittest.TestCase):
    def test_move_runs_past_first_batch_and_reuse(self):
        with kvaccel.BlockManager([256, 256], block_tokens=BT, max_run=1) as bm:
            s = bm.seq_create()
            bm.seq_start(s, list(range(4 * 40)))
            bm.commit(s, 40)
            plan = bm.move(s, 1)
            self.assertEqual((plan.blocks, plan.reused), (40, 0))
            self.assertEqual(len(plan.runs), 40)  # more than one call's batch
            self.assertEqual(bm.plan_runs(plan.id), plan.runs)
            off, ids, tiers = bm.block_tables([s], tiers=True)
            self.assertEqual(list(tiers), [1])
            self.assertEqual([r[3] for r in plan.runs], list(ids))
            self.assertTrue(all(r[0] == 0 and r[2] == 1 and r[4] == 1 for r in plan.runs))
            self.assertEqual(bm.tier_stats(0).reserved, 40)
            bm.plan_done(plan)
            self.assertEqual(bm.tier_stats(0).reserved, 0)
            back = bm.move(s, 0)  # the copies left on tier 0 are still valid
            self.assertEqual((back.blocks, back.reused, back.runs), (0, 40, []))
            bm.plan_done(back)  # id 0: nothing to do
            with self.assertRaises(OSError) as cm:
                bm.move(s, 0)
            self.assertEqual(cm.exception.errno, errno.EALREADY)

    def test_failed_move_undone(self):
        with kvaccel.BlockManager([16, 16], block_tokens=BT) as bm:
            s = bm.seq_create()
            bm.seq_start(s, T[:16])
            plan = bm.move(s, 1)
            self.assertEqual(plan.runs, [(0, 0, 1, 0, 4)])
            bm.plan_done(plan, -errno.EIO)
            self.assertEqual(bm.seq_info(s).tier, 0)


class Tables(Base):
    def test_block_tables_grow_past_max_ids(self):
        seqs = [self.started(T[:4 * i])[0] for i in (1, 2, 3)]
        for m in (None, 0, 1):
            off, ids = self.bm.block_tables(seqs, max_ids=m)
            self.assertIsInstance(ids, array.array)
            self.assertEqual(list(off), [0, 1, 3, 6])
            self.assertEqual(len(set(ids)), 6)
        self.assertEqual(self.bm.block_tables([]), (array.array("I", [0]), array.array("I")))


class Documentation(unittest.TestCase):
    def test_example_in_libaccel_rst_runs(self):
        """The Python section's example, as printed."""
        text = open(os.path.join(common.TOP, "Documentation", "libaccel.rst")).read()
        sec = text.split("\nPython\n======\n", 1)[1]
        body = sec.split(".. code-block:: python\n\n", 1)[1]
        lines = []
        for line in body.splitlines():
            if line and not line.startswith("    "):
                break
            lines.append(line[4:])
        code = "\n".join(lines)
        self.assertIn("plan_done", code)
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()) as out:
            exec(compile(code, "libaccel.rst:Python", "exec"), {})
        self.assertIn("TierStats(", out.getvalue())


if __name__ == "__main__":
    tap.main("python_bm")
