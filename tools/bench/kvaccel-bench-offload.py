#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Python overhead of an offload store/load round through the data
mover, natively on memfd tiers: 64 blocks of 4 KiB (small, so that the
copies themselves cost little next to the calls) between a "device" tier
and a host tier of the offload manager.

  store: prepare_store (evicting the oldest chain once the host tier is
         full) + runs + submit + poll (waiting) + complete_store
  load:  lookup + prepare_load + runs + submit + poll (waiting) + complete_load
  round: one store and one load of a 64-block chain

Each figure is per round over ROUNDS rounds timed one by one (median and
p99, us), with two baselines from the same run: the mover alone (submit +
poll of one prepared 64-run job: the C library's and the worker thread's
own cost, copies included), the bookkeeping alone (the offload calls
without the mover), and the same C calls through bare ctypes with their
arguments prepared once (the bindings' overhead is the difference).
The issue's goal: the Python overhead of a round under 50 us."""

import array
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "libaccel", "python"))
import kvaccel  # noqa: E402

BLOCKS, BB, CHAINS, ROUNDS = 64, 4096, 16, int(os.environ.get("ROUNDS", "5000"))
DEV, HOST = 0, 1


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1e6, xs[int(len(xs) * 0.99) - 1] * 1e6


def main():
    dev = kvaccel.Tier.memfd(BB, BLOCKS)
    host = kvaccel.Tier.memfd(BB, BLOCKS * 8)      # 8 chains fit: stores evict
    tiers = [dev, host]
    mover = kvaccel.Mover()
    off = kvaccel.OffloadManager(BLOCKS * 8)
    bm = kvaccel.BlockManager([1], block_tokens=16)
    chains = [bm.keys(range(c * 100000, c * 100000 + 16 * BLOCKS)) for c in range(CHAINS)]
    db = array.array("I", range(BLOCKS))   # the engine's blocks of the chain
    runs, submit, poll = kvaccel.runs, mover.submit, mover.poll

    def store(keys):
        st = off.prepare_store(keys)
        if st.allocated:
            submit(tiers, st.runs(DEV, db, HOST))
            d, = poll(1, None)
            off.complete_store(st, d.status == 0)

    def load(keys):
        hit = off.lookup(keys)
        if hit:
            k = keys[:hit] if hit < len(keys) else keys
            hb = off.prepare_load(k)
            submit(tiers, runs(HOST, hb, DEV, db[:hit]))
            poll(1, None)
            off.complete_load(k)
        return hit

    def book(keys):  # the bookkeeping only
        st = off.prepare_store(keys)
        off.complete_store(st, True)
        hit = off.lookup(keys)
        off.prepare_load(keys)
        off.complete_load(keys)
        return hit

    plain = runs(DEV, db, HOST, range(BLOCKS))

    def mover_only(_keys):
        submit(tiers, plain)
        poll(1, None)

    # The same C calls through bare ctypes, arguments prepared once (runs
    # prebuilt, not from the blocks the manager names): C + ctypes' own cost.
    import ctypes
    from ctypes import byref, c_uint32, c_uint64, c_void_p
    from kvaccel import _bm_types as B, _mover_types as M
    L, oh, mh = kvaccel._lib(), off._hd, mover._hd
    tarr = (c_void_p * 2)(dev._hd, host._hd)
    rarr = (B.Run * BLOCKS).from_buffer(plain)
    so, jid = M.SubmitOpts(sz=ctypes.sizeof(M.SubmitOpts)), c_uint64()
    done, hb, ev, ne = (M.Done * 1)(), (c_uint32 * BLOCKS)(), (B.Key * BLOCKS)(), c_uint32()

    def raw_store(keys):
        k = keys._arr
        if L.accel_offload_prepare_store(oh, k, BLOCKS, hb, ev, byref(ne)) > 0:
            L.accel_mover_submit(mh, tarr, 2, rarr, BLOCKS, byref(so), byref(jid))
            L.accel_mover_poll(mh, done, 1, -1)
            L.accel_offload_complete_store(oh, k, BLOCKS, 1)

    def raw_load(keys):
        k = keys._arr
        if L.accel_offload_lookup(oh, k, BLOCKS) == BLOCKS:
            L.accel_offload_prepare_load(oh, k, BLOCKS, hb)
            L.accel_mover_submit(mh, tarr, 2, rarr, BLOCKS, byref(so), byref(jid))
            L.accel_mover_poll(mh, done, 1, -1)
            L.accel_offload_complete_load(oh, k, BLOCKS)

    def raw_round(keys):
        raw_store(keys)
        raw_load(keys)

    def round_(keys):
        store(keys)
        if load(keys) != BLOCKS:
            raise SystemExit("kvaccel-bench-offload: the chain was not stored")

    def timed(fn):
        out = []
        pc = time.perf_counter
        for r in range(ROUNDS):
            keys = chains[r % CHAINS]
            t = pc()
            fn(keys)
            out.append(pc() - t)
        return stats(out)

    for r in range(2 * CHAINS):  # warm: every chain stored once, the host tier full
        round_(chains[r % CHAINS])
    res = [("round (store + load)", timed(round_)),
           ("store", timed(store)),
           ("load (a hit)", timed(load)),
           ("raw ctypes round", timed(raw_round)),
           ("raw ctypes store", timed(raw_store)),
           ("raw ctypes load", timed(raw_load)),
           ("mover alone (submit + poll)", timed(mover_only)),
           ("bookkeeping alone", timed(book))]
    print("kvaccel (Python %s, %s) offload round of %d blocks of %d bytes on memfd tiers, "
          "%d rounds, us:" % (sys.version.split()[0], kvaccel.library_path(), BLOCKS, BB,
                              ROUNDS))
    for name, (med, p99) in res:
        print("  %-28s median %7.2f   p99 %7.2f" % (name, med, p99))
    st = off.stats()
    print("  (host tier: %d ready of %d, %d evictions)" % (st.ready, st.blocks, st.evictions))
    for o in (mover, off, bm, dev, host):
        o.close()


if __name__ == "__main__":
    main()
