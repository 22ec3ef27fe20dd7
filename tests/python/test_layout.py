#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The ctypes mirrors of accel.h's device and engine structs, accel_mover.h,
accel_offload.h, accel_moe_plan.h and accel_moe.h against the C compiler's layout (tests/python/layout.c,
$KVACCEL_LAYOUT or compiled here), and the constants. A struct whose first
member is sz may have grown in C: its mirror must be a prefix of it (every
member the mirror has at the C offset and size; what C has beyond the
mirror's size only). Prints TAP (tests/python/tap.py)."""

import ctypes
import unittest

import common
from kvaccel import _dev_types, _moe_types, _mover_types, _offload_types
import tap

MODULES = (_dev_types, _mover_types, _offload_types, _moe_types)


def mirrors():
    out = {}
    for m in MODULES:
        out.update(m.STRUCTS)
    return out


class Layout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.got = common.layout("KVACCEL_LAYOUT", "layout.c")

    def setUp(self):
        if self.got is None:
            self.skipTest("no C compiler and no $KVACCEL_LAYOUT")

    def test_every_struct_mirrored(self):
        self.assertEqual(set(self.got[0]), set(mirrors()))

    def test_structs_match_c(self):
        for name, cls in mirrors().items():
            with self.subTest(struct=name):
                c = dict(self.got[0][name])
                csize, calign = c.pop("size")
                py = {f: (getattr(cls, f).offset, getattr(cls, f).size) for f, _ in cls._fields_}
                grows = cls._fields_[0][0] == "sz"
                self.assertEqual(ctypes.alignment(cls), calign, name)
                if not grows:
                    self.assertEqual(ctypes.sizeof(cls), csize, name)
                    self.assertEqual(py, c, name)
                    continue
                self.assertLessEqual(ctypes.sizeof(cls), csize, name)
                for f, where in py.items():
                    self.assertEqual(where, c.get(f), "%s.%s" % (name, f))
                for f, (off, _sz) in c.items():
                    if f not in py:
                        self.assertGreaterEqual(off, ctypes.sizeof(cls),
                                                "%s.%s is not appended" % (name, f))

    def test_constants(self):
        consts = self.got[1]
        want = {
            "ACCEL_PATH_MAX": _dev_types.PATH_MAX,
            "ACCEL_NODE_ANY": _dev_types.NODE_ANY,
            "ACCEL_ENGINE_PRIORITY_MAX": _dev_types.ENGINE_PRIORITY_MAX,
            "ACCEL_HANDOFF_MAX": _dev_types.HANDOFF_MAX,
            "ACCEL_HANDOFF_REGION": _dev_types.HANDOFF_REGION,
            "ACCEL_HANDOFF_SPACE": _dev_types.HANDOFF_SPACE,
            "ACCEL_HANDOFF_MEMFD": _dev_types.HANDOFF_MEMFD,
            "ACCEL_TIER_HOST": _mover_types.TIER_HOST,
            "ACCEL_TIER_MEMFD": _mover_types.TIER_MEMFD,
            "ACCEL_TIER_ON_NODE": _mover_types.TIER_ON_NODE,
            "ACCEL_TIER_WINDOW": _mover_types.TIER_WINDOW,
            "ACCEL_TIER_BLOCK_MAX": _mover_types.TIER_BLOCK_MAX,
            "ACCEL_TIER_CUDA": _mover_types.TIER_CUDA,
            "ACCEL_TIER_CUDA_REGISTERED": _mover_types.TIER_CUDA_REGISTERED,
            "ACCEL_TIER_LAYOUT_BLOCKS": _mover_types.LAYOUT_BLOCKS,
            "ACCEL_TIER_LAYOUT_LAYERS": _mover_types.LAYOUT_LAYERS,
            "ACCEL_MOVER_LAYERS": _mover_types.MOVER_LAYERS,
            "ACCEL_MOVER_WAIT_EVENT": _mover_types.MOVER_WAIT_EVENT,
            "ACCEL_MOVER_RECORD_EVENT": _mover_types.MOVER_RECORD_EVENT,
            "ACCEL_OFFLOAD_NO_BLOCK": _offload_types.NO_BLOCK,
            "ACCEL_MOE_STATS_COACT": _moe_types.STATS_COACT,
            "ACCEL_MOE_PLAN_NO_TRAFFIC": _moe_types.PLAN_NO_TRAFFIC,
            "ACCEL_EPLB_AUTO": _moe_types.EPLB_AUTO,
            "ACCEL_EPLB_HIERARCHICAL": _moe_types.EPLB_HIERARCHICAL,
            "ACCEL_EPLB_GLOBAL": _moe_types.EPLB_GLOBAL,
            "ACCEL_MOE_MAX_LAYERS": _moe_types.MAX_LAYERS,
            "ACCEL_MOE_MAX_EXPERTS": _moe_types.MAX_EXPERTS,
            "ACCEL_MOE_MOVE_DEVICE": _moe_types.MOVE_DEVICE,
            "ACCEL_MOE_MOVE_NODE": _moe_types.MOVE_NODE,
            "ACCEL_MOE_MOVE_REMOTE": _moe_types.MOVE_REMOTE,
            "ACCEL_MOE_MOVE_STORE": _moe_types.MOVE_STORE,
            "ACCEL_MOE_STORE_MAX_DEVICES": _moe_types.STORE_MAX_DEVICES,
            "ACCEL_MOE_STORE_THREAD": _moe_types.STORE_THREAD,
            "ACCEL_MOE_STORE_HOST": _moe_types.STORE_HOST,
            "ACCEL_MOE_STORE_CUDA": _moe_types.STORE_CUDA,
        }
        self.assertEqual({k: consts[k] for k in want}, want)

    def test_prefix_rule_catches_a_shifted_member(self):
        # The check itself: a mirror with a member at the wrong offset fails.
        class Bad(ctypes.Structure):
            _fields_ = [("sz", ctypes.c_size_t), ("blocks", ctypes.c_uint32),
                        ("block_bytes", ctypes.c_uint64)]
        c = self.got[0]["accel_tier_opts"]
        self.assertNotEqual((Bad.block_bytes.offset, Bad.block_bytes.size), c["block_bytes"])


if __name__ == "__main__":
    tap.main("python_layout")
