#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Python bindings' cost on the block manager: one connector-shaped
bookkeeping round of a 64-block chain (16-token blocks, a tier of 4M
blocks): lookup + seq_create + seq_start + commit + seq_free, with the keys
computed once per request beforehand (as a connector does) and with them
computed in the round; prefix hit (the chain cached) and miss (a new chain
each round). Median of 7 runs of 2000 rounds, us per round; the C figures
are tools/bench/kvaccel-bench-bm's (build/tools/kvaccel-bench-bm)."""

import array
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "libaccel", "python"))
import kvaccel  # noqa: E402

BLOCKS, BT, ROUNDS, RUNS = 64, 16, 2000, 7


def median_us(fn):
    out = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) / ROUNDS * 1e6)
    return statistics.median(out)


def main():
    bm = kvaccel.BlockManager([4 << 20], block_tokens=BT)
    tok = array.array("i", range(BLOCKS * BT))
    keys = bm.keys(tok)
    lookup, create, start, commit, free = (bm.lookup, bm.seq_create, bm.seq_start, bm.commit,
                                           bm.seq_free)

    def hit():
        for _ in range(ROUNDS):
            lookup(keys)
            s = create()
            start(s, tok, keys)
            commit(s, BLOCKS)
            free(s)

    def hit_keys():
        for _ in range(ROUNDS):
            k = bm.keys(tok)
            lookup(k)
            s = create()
            start(s, tok, k)
            commit(s, BLOCKS)
            free(s)

    chains = []
    for r in range(RUNS * ROUNDS):
        t = array.array("i", tok)
        t[0] = 1000000 + r
        chains.append((t, bm.keys(t)))
    it = iter(chains)

    def miss():
        for _ in range(ROUNDS):
            t, k = next(it)
            lookup(k)
            s = create()
            start(s, t, k)
            commit(s, BLOCKS)
            free(s)

    L, h = kvaccel._lib(), bm._h()
    from ctypes import byref, c_int32, c_uint32, c_uint64
    from kvaccel import _bm_types as T
    hits, sq, cached = (c_uint32 * 1)(), c_uint32(), c_uint64()
    ctok, karr = (c_int32 * len(tok)).from_buffer(tok), keys._arr
    so = T.opts(T.SeqOpts)

    def raw():  # the same C calls, arguments prepared once: C + ctypes' own cost
        for _ in range(ROUNDS):
            L.accel_bm_lookup(h, karr, BLOCKS, hits)
            L.accel_bm_seq_create(h, byref(so), byref(sq))
            L.accel_bm_seq_start(h, sq.value, ctok, len(tok), karr, byref(cached))
            L.accel_bm_commit(h, sq.value, BLOCKS)
            L.accel_bm_seq_free(h, sq.value)

    null = kvaccel._lib().accel_bm_seq_info  # one ctypes call that fails at once

    def calls():
        for _ in range(ROUNDS):
            null(None, 0, None)

    hit()  # warm: the chain cached
    print("kvaccel (Python %s, %s) bookkeeping round, %d blocks of %d tokens, "
          "us per round (median of %d x %d):" % (sys.version.split()[0], kvaccel.library_path(),
                                                 BLOCKS, BT, RUNS, ROUNDS))
    print("  hit,  keys given     %7.2f" % median_us(hit))
    print("  hit,  keys computed  %7.2f" % median_us(hit_keys))
    print("  miss, keys given     %7.2f" % median_us(miss))
    print("  hit,  raw ctypes     %7.2f   (the same C calls, no wrapper)" % median_us(raw))
    print("  a bare ctypes call   %7.2f" % median_us(calls))
    bm.close()


if __name__ == "__main__":
    main()
