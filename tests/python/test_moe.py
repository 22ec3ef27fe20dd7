#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvaccel.moe, natively: rebalance_experts() against an independent numpy
EPLB (tests/libaccel/eplb_oracle.py) on Zipf loads full of ties, both
policies, byte for byte; a small case by hand; plan()'s goals against EPLB
on the same loads (balance no worse than the global policy, fewer experts
moved from the same starting placement, cross-node traffic cut when given
co-activation counts); every placement valid (each expert a replica,
replica counts summing to the slots, log2phy the inverse of phy2log);
cost() agreeing with plan()'s; moves() turning the old placement into the
new; Stats counting loads and co-activations over its window; torch
tensors and nested lists giving what numpy gives; bad input refused."""

import errno
import os
import sys
import unittest

import common
import tap
from kvaccel import moe

np = common.numpy
sys.path.insert(0, os.path.join(common.TOP, "tests", "libaccel"))
try:
    import eplb_oracle
except ImportError:  # no numpy
    eplb_oracle = None


def zipf(rng, layers, experts, skew):
    """Loads with ties: Zipf ranks of shuffled experts, rounded to integers."""
    w = np.zeros((layers, experts), dtype=np.float32)
    for l in range(layers):
        ranks = rng.permutation(experts) + 1
        w[l] = np.floor(10000.0 / ranks ** skew)
    return w


def valid(test, phy2log, log2phy, logcnt, experts, slots):
    layers = phy2log.shape[0]
    test.assertEqual(phy2log.shape, (layers, slots))
    for l in range(layers):
        counts = np.bincount(phy2log[l], minlength=experts)
        test.assertEqual(len(counts), experts)
        test.assertTrue((counts >= 1).all(), "an expert without a replica")
        test.assertEqual(list(counts), list(logcnt[l]))
        test.assertEqual(int(logcnt[l].sum()), slots)
        for e in range(experts):
            rep = [int(s) for s in log2phy[l, e] if s >= 0]
            test.assertEqual(len(rep), logcnt[l, e])
            test.assertEqual(sorted(rep), sorted(np.flatnonzero(phy2log[l] == e).tolist()))


@unittest.skipIf(np is None, "no numpy")
class Eplb(unittest.TestCase):
    def test_matches_the_oracle(self):
        rng = np.random.default_rng(7)
        shapes = [  # layers, experts, slots, groups, nodes, gpus
            (4, 16, 32, 4, 2, 8),    # hierarchical
            (3, 16, 24, 3, 2, 4),    # groups % nodes != 0: global
            (2, 64, 80, 8, 4, 16),
            (2, 12, 12, 1, 1, 4),    # no redundant slot
        ]
        for shape in shapes:
            layers, experts, slots, groups, nodes, gpus = shape
            for skew in (0.6, 1.2):
                w = zipf(rng, layers, experts, skew)
                with self.subTest(shape=shape, skew=skew):
                    p, l2p, cnt = moe.rebalance_experts(w, slots, groups, nodes, gpus)
                    maxcnt, op, ocnt, ol2p = eplb_oracle.rebalance(w, slots, groups, nodes,
                                                                   gpus, 0)
                    self.assertEqual(p.tolist(), op.tolist())
                    self.assertEqual(cnt.tolist(), ocnt.tolist())
                    self.assertEqual(l2p.shape[2], maxcnt)
                    self.assertEqual(l2p.tolist(), ol2p.tolist())
                    valid(self, p, l2p, cnt, experts, slots)
                    gp, _, _ = moe.rebalance_experts(w, slots, groups, nodes, gpus,
                                                     policy="global")
                    _, ogp, _, _ = eplb_oracle.rebalance(w, slots, groups, nodes, gpus, 2)
                    self.assertEqual(gp.tolist(), ogp.tolist())

    def test_by_hand(self):
        # 4 experts on 2 GPUs of 2 slots, one group and node: no replica to
        # add, so only the packing: 4 (e0) to GPU 0, 2 (e3) to GPU 1, 1 (e1)
        # to GPU 1 (lighter), 1 (e2) to GPU 0 (GPU 1 full). Each GPU's slots
        # in the order its experts were packed.
        p, l2p, cnt = moe.rebalance_experts(np.array([[4, 1, 1, 2]], dtype=np.float32),
                                            4, 1, 1, 2)
        self.assertEqual(p.tolist(), [[0, 2, 3, 1]])
        self.assertEqual(cnt.tolist(), [[1, 1, 1, 1]])
        self.assertEqual(l2p.tolist(), [[[0], [3], [1], [2]]])

    def test_inputs_of_every_kind(self):
        w = zipf(np.random.default_rng(3), 2, 8, 1.0)
        want = [a.tolist() for a in moe.rebalance_experts(w, 12, 2, 2, 4)]
        got = moe.rebalance_experts(w.tolist(), 12, 2, 2, 4)
        self.assertEqual([a.tolist() for a in got], want)
        if common.torch is not None:
            got = moe.rebalance_experts(common.torch.tensor(w), 12, 2, 2, 4)
            self.assertEqual([a.tolist() for a in got], want)

    def test_keeps_slots_of_the_old_placement(self):
        w = zipf(np.random.default_rng(5), 2, 16, 1.0)
        old, _, _ = moe.rebalance_experts(w, 24, 4, 2, 4)
        w2 = zipf(np.random.default_rng(6), 2, 16, 1.0)
        plain, _, _ = moe.rebalance_experts(w2, 24, 4, 2, 4)
        kept, _, _ = moe.rebalance_experts(w2, 24, 4, 2, 4, old_phy2log=old)
        # The same experts per GPU, reordered so fewer slots change.
        for l in range(2):
            for g in range(4):
                self.assertEqual(sorted(kept[l, g * 6:(g + 1) * 6]),
                                 sorted(plain[l, g * 6:(g + 1) * 6]))
        self.assertLessEqual(int((kept != old).sum()), int((plain != old).sum()))

    def test_eplb_bad_input(self):
        w = np.ones((2, 10), dtype=np.float32)
        with self.assertRaises(OSError) as e:
            moe.rebalance_experts(w, 20, 4, 2, 4)        # 10 experts in 4 groups
        self.assertEqual(e.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError) as e:
            moe.rebalance_experts(w, 8, 1, 1, 4)         # fewer slots than experts
        self.assertEqual(e.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError):
            moe.rebalance_experts(-w, 20, 1, 1, 4)       # negative loads
        with self.assertRaises(ValueError):
            moe.rebalance_experts(np.ones(10), 20, 1, 1, 4)
        with self.assertRaises(ValueError):
            moe.rebalance_experts(w, 20, 1, 1, 4, policy="greedy")
        with self.assertRaises(OSError) as e:
            moe.rebalance_experts(w, -1, 1, 1, 4)
        self.assertEqual(e.exception.errno, errno.EINVAL)


@unittest.skipIf(np is None, "no numpy")
class Planner(unittest.TestCase):
    def test_goals_against_eplb(self):
        rng = np.random.default_rng(11)
        layers, experts, slots, groups, nodes, gpus = 8, 64, 80, 8, 4, 16
        w0 = zipf(rng, layers, experts, 1.0)
        w1 = zipf(rng, layers, experts, 1.0)          # the load shifted
        cur, _, _ = moe.rebalance_experts(w0, slots, groups, nodes, gpus)
        eg, _, _ = moe.rebalance_experts(w1, slots, groups, nodes, gpus, policy="global")
        eh, _, _ = moe.rebalance_experts(w1, slots, groups, nodes, gpus)
        p, l2p, cnt, c = moe.plan(w1, slots, nodes, gpus, current=cur, num_groups=groups)
        valid(self, p, l2p, cnt, experts, slots)
        cg, per_g = moe.cost(w1, eg, nodes, gpus, old_phy2log=cur)
        ch, _ = moe.cost(w1, eh, nodes, gpus, old_phy2log=cur)
        cp, per_p = moe.cost(w1, p, nodes, gpus, old_phy2log=cur)
        self.assertEqual(cp, c)
        for l in range(layers):
            self.assertLessEqual(per_p[l], per_g[l] * (1 + 1e-5), "layer %d" % l)
        self.assertLess(c.moves, cg.moves)
        self.assertLess(c.moves, ch.moves)

    def test_traffic_cut_with_coact(self):
        rng = np.random.default_rng(13)
        layers, experts, slots, nodes, gpus = 4, 32, 40, 4, 8
        w = zipf(rng, layers, experts, 0.8)
        # Expert i of a layer mostly followed by expert i of the next.
        co = np.zeros((layers - 1, experts, experts), dtype=np.uint32)
        for l in range(layers - 1):
            co[l] = rng.integers(0, 3, size=(experts, experts))
            co[l][np.arange(experts), np.arange(experts)] += 200
        _, _, _, with_t = moe.plan(w, slots, nodes, gpus, coact=co)
        p, _, _, without = moe.plan(w, slots, nodes, gpus, coact=co, traffic=False)
        c_without, _ = moe.cost(w, p, nodes, gpus, coact=co)
        self.assertGreater(with_t.traffic, 0)
        self.assertLess(with_t.cross_node, c_without.cross_node)

    def test_moves_turn_old_into_new(self):
        rng = np.random.default_rng(17)
        experts, slots, nodes, gpus = 16, 24, 2, 4
        old, _, _ = moe.rebalance_experts(zipf(rng, 3, experts, 1.0), slots, 2, nodes, gpus)
        new, _, _, _ = moe.plan(zipf(rng, 3, experts, 1.0), slots, nodes, gpus, current=old)
        for k in (1, 2):
            mv = moe.moves(old, new, experts, nodes, gpus, max_inflight=k)
            self.assertEqual(len(mv), int((old != new).sum()))
            got = old.copy()
            for m in mv:
                self.assertEqual(got[m.layer, m.slot], m.old_expert)
                if m.kind != moe.MOVE_STORE:
                    self.assertEqual(old[m.layer, m.src_slot], m.new_expert)
                got[m.layer, m.slot] = m.new_expert
            self.assertEqual(got.tolist(), new.tolist())
            for layer in range(3):
                per = {}
                for m in mv:
                    if m.layer == layer and m.kind in (moe.MOVE_NODE, moe.MOVE_REMOTE,
                                                       moe.MOVE_STORE):
                        key = (m.slot // (slots // gpus), m.round)
                        per[key] = per.get(key, 0) + 1
                self.assertTrue(all(v <= k for v in per.values()))

    def test_plan_bad_input(self):
        w = np.ones((2, 8), dtype=np.float32)
        with self.assertRaises(ValueError):
            moe.plan(w, 12, 2, 4, current=np.zeros((2, 11), dtype=np.int32))
        with self.assertRaises(ValueError):
            moe.plan(w, 12, 2, 4, coact=np.zeros((2, 8, 8), dtype=np.uint32))
        with self.assertRaises(OSError) as e:
            moe.plan(w, 12, 3, 4)                       # 4 GPUs in 3 nodes
        self.assertEqual(e.exception.errno, errno.EINVAL)
        bad = np.zeros((2, 12), dtype=np.int32)           # experts 1..7 without a slot
        with self.assertRaises(OSError) as e:
            moe.cost(w, bad, 2, 4)
        self.assertEqual(e.exception.errno, errno.EINVAL)


@unittest.skipIf(np is None, "no numpy")
class Statistics(unittest.TestCase):
    def test_window_and_coact(self):
        with moe.Stats(2, 4, 2, coact=True) as st:
            st.route([[[0, 1], [2, 3]], [[0, 2], [2, 1]]])   # two tokens, top-2
            st.record(1, [3, 3])
            st.step_end()
            counts, weight, steps = st.load()
            self.assertEqual(steps, 1)
            self.assertEqual(counts.tolist(), [[2, 1, 1, 0], [0, 1, 2, 3]])
            self.assertEqual(weight.tolist(), [[2.0, 1.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
            co = st.coact()
            self.assertEqual(co.shape, (1, 4, 4))
            self.assertEqual(int(co.sum()), 8)                # 2 tokens x 2 x 2 pairs
            self.assertEqual(int(co[0, 0, 2]), 2)
            st.step_end()
            st.step_end()                                     # the first step leaves
            counts, _, steps = st.load()
            self.assertEqual(steps, 2)
            self.assertEqual(int(counts.sum()), 0)
            with self.assertRaises(OSError) as e:
                st.record(0, [4])
            self.assertEqual(e.exception.errno, errno.EINVAL)
        with self.assertRaises(ValueError):
            st.step_end()                                     # closed
        with moe.Stats(1, 4, 2) as st:
            with self.assertRaises(OSError) as e:
                st.coact()
            self.assertEqual(e.exception.errno, errno.ENOENT)
        with self.assertRaises(OSError) as e:
            moe.Stats(0, 4, 2)
        self.assertEqual(e.exception.errno, errno.EINVAL)


if __name__ == "__main__":
    tap.main("python_moe")
