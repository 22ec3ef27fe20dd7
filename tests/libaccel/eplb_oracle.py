#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""eplb_oracle.py IN OUT - DeepSeek's EPLB (rebalance_experts) written again
in numpy, independently of libaccel's C port, with the tie rules of
Documentation/moe.rst ("EPLB"): stable sorts (the lower index first among
equal weights), float32 sums in the reference's order (a group's experts in
order; a pack's items in the order they are placed), float32 division by
the replica count, the first index winning argmin/argmax.

IN: int32 layers, experts, slots, groups, nodes, gpus, policy (0 auto,
1 hierarchical, 2 global), then float32 weight[layers][experts] (native
byte order). OUT: int32 maxcnt, phy2log[layers][slots],
logcnt[layers][experts], log2phy[layers][experts][maxcnt] (replica-rank
order, -1 after), or a single -1 where a constraint does not hold."""

import sys

import numpy as np

F32 = np.float32


def balanced_packing(weight, num_packs):
    """[rows, n] weights to packs of n / num_packs items: (pack, rank)."""
    rows, n = weight.shape
    assert n % num_packs == 0
    per = n // num_packs
    if per == 1:
        return (np.tile(np.arange(n, dtype=np.int64), (rows, 1)),
                np.zeros((rows, n), dtype=np.int64))
    order = np.argsort(-weight, axis=-1, kind="stable")
    pack = np.full((rows, n), -1, dtype=np.int64)
    rank = np.full((rows, n), -1, dtype=np.int64)
    for r in range(rows):
        load = np.zeros(num_packs, dtype=F32)
        items = np.zeros(num_packs, dtype=np.int64)
        for item in order[r]:
            open_packs = np.nonzero(items < per)[0]
            p = open_packs[int(np.argmin(load[open_packs]))]
            pack[r, item] = p
            rank[r, item] = items[p]
            load[p] = F32(load[p] + weight[r, item])
            items[p] += 1
    return pack, rank


def replicate_experts(weight, num_phy):
    """[rows, num_log] to num_phy replicas: (phy2log, rank, logcnt)."""
    rows, num_log = weight.shape
    assert num_phy >= num_log
    phy2log = np.tile(np.arange(num_phy, dtype=np.int64), (rows, 1))
    rank = np.zeros((rows, num_phy), dtype=np.int64)
    logcnt = np.ones((rows, num_log), dtype=np.int64)
    at = np.arange(rows)
    for i in range(num_log, num_phy):
        best = np.argmax(weight / logcnt.astype(F32), axis=-1)
        phy2log[:, i] = best
        rank[:, i] = logcnt[at, best]
        logcnt[at, best] += 1
    return phy2log, rank, logcnt


def inverse(perm):
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.broadcast_to(np.arange(perm.shape[1]), perm.shape), axis=1)
    return inv


def hierarchical(weight, num_phy, groups, nodes, gpus):
    layers, num_log = weight.shape
    assert num_log % groups == 0 and groups % nodes == 0
    assert gpus % nodes == 0 and num_phy % gpus == 0
    gsize = num_log // groups
    per_node = groups // nodes
    per_gpu = num_phy // gpus
    # Groups onto nodes: each group's load summed in expert order.
    grouped = weight.reshape(layers, groups, gsize)
    gload = np.zeros((layers, groups), dtype=F32)
    for k in range(gsize):
        gload = (gload + grouped[:, :, k]).astype(F32)
    gpack, grank = balanced_packing(gload, nodes)
    log2mlog = (((gpack * per_node + grank) * gsize)[:, :, None]
                + np.arange(gsize)).reshape(layers, num_log)
    mlog2log = inverse(log2mlog)
    # Replicas within each node.
    mload = np.take_along_axis(weight, mlog2log, axis=1).reshape(-1, num_log // nodes)
    phy2mlog, phyrank, mlogcnt = replicate_experts(mload, num_phy // nodes)
    # Replicas onto the node's GPUs.
    pload = np.take_along_axis(mload / mlogcnt.astype(F32), phy2mlog, axis=1)
    pack, rank = balanced_packing(pload, gpus // nodes)
    pphy2phy = inverse(pack * per_gpu + rank)
    pphy2mlog = np.take_along_axis(phy2mlog, pphy2phy, axis=1)
    pphy2mlog = (pphy2mlog.reshape(layers, nodes, -1)
                 + np.arange(0, num_log, num_log // nodes)[None, :, None]).reshape(layers, -1)
    pphy2log = np.take_along_axis(mlog2log, pphy2mlog, axis=1)
    pphyrank = np.take_along_axis(phyrank, pphy2phy, axis=1).reshape(layers, -1)
    logcnt = np.take_along_axis(mlogcnt.reshape(layers, -1), log2mlog, axis=1)
    return pphy2log, pphyrank, logcnt


def rebalance(weight, num_phy, groups, nodes, gpus, policy):
    layers, num_log = weight.shape
    hier = groups % nodes == 0 and policy != 2
    if policy == 1 and not hier:
        raise AssertionError("hierarchical needs groups % nodes == 0")
    if hier:
        phy2log, rank, logcnt = hierarchical(weight, num_phy, groups, nodes, gpus)
    else:
        phy2log, rank, logcnt = hierarchical(weight, num_phy, 1, 1, gpus)
    maxcnt = int(logcnt.max())
    log2phy = np.full((layers, num_log * maxcnt), -1, dtype=np.int64)
    np.put_along_axis(log2phy, phy2log * maxcnt + rank,
                      np.broadcast_to(np.arange(num_phy), phy2log.shape), axis=1)
    return maxcnt, phy2log, logcnt, log2phy.reshape(layers, num_log, maxcnt)


def main():
    raw = open(sys.argv[1], "rb").read()
    layers, experts, slots, groups, nodes, gpus, policy = np.frombuffer(raw[:28], dtype=np.int32)
    weight = np.frombuffer(raw[28:], dtype=F32).reshape(layers, experts).copy()
    with open(sys.argv[2], "wb") as out:
        try:
            maxcnt, phy2log, logcnt, log2phy = rebalance(weight, int(slots), int(groups),
                                                         int(nodes), int(gpus), int(policy))
        except AssertionError:
            out.write(np.int32(-1).tobytes())
            return
        out.write(np.int32(maxcnt).tobytes())
        for a in (phy2log, logcnt, log2phy):
            out.write(a.astype(np.int32).tobytes())


if __name__ == "__main__":
    main()
