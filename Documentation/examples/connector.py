#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The flow of a vLLM-style KV offloading connector over kvaccel, end to
end on memfd tiers (no kvaccel device needed): per request, look the
prompt's block keys up on the host tier, load the hits into the engine's
KV blocks, run the model over the rest, store the new blocks to the host
tier, and drop the keys the store evicted from the connector's index.

The "engine" here is a memfd tier standing in for the GPU KV tensor and a
model that writes a pattern derived from each block's key (so a loaded
block can be checked). tests/python/test_offload.py runs this file.

    KVACCEL_LIB=build/libaccel/libaccel.so.0 \\
        PYTHONPATH=libaccel/python python3 Documentation/examples/connector.py
"""

import asyncio
import hashlib

import kvaccel

BLOCK_TOKENS = 16
BLOCK_BYTES = 64 * 1024     # one block's KV, every layer
DEV, HOST = 0, 1            # indexes into the mover's tier list


def kv_of(key):
    """What the model writes for the block whose key is key."""
    return (hashlib.sha256(key).digest() * (BLOCK_BYTES // 32))


class Connector:
    def __init__(self, device_blocks=64, host_blocks=24, make_tier=kvaccel.Tier.memfd):
        # make_tier(block_bytes, blocks): memfd tiers here; with a kvaccel
        # device, lambda bb, n: kvaccel.Tier.host(dev, bb, n) (copy engine).
        self.device = make_tier(BLOCK_BYTES, device_blocks)  # the engine's KV
        self.host = make_tier(BLOCK_BYTES, host_blocks)      # the offload tier
        self.tiers = [self.device, self.host]
        self.mover = kvaccel.Mover()
        self.offload = kvaccel.OffloadManager(host_blocks, evict="lru")
        self.keyer = kvaccel.BlockManager([1], block_tokens=BLOCK_TOKENS)  # keys only
        self.free = list(range(device_blocks))   # the engine's own allocator
        self.index = set()                       # keys the connector believes offloaded
        self.evicted = 0

    def close(self):
        for o in (self.mover, self.offload, self.keyer, self.device, self.host):
            o.close()

    async def request(self, prompt):
        """Serve one prompt; returns (blocks loaded, blocks computed, blocks stored)."""
        keys = self.keyer.keys(prompt)                     # SHA-256 chain, full blocks
        db = [self.free.pop() for _ in range(len(keys))]   # device blocks of the request

        # 1. Lookup (scheduler): leading blocks on the host tier, no side effect.
        hit = self.offload.lookup(keys)

        # 2. Load the hits: pinned until complete_load(), copied by the mover.
        if hit:
            hb = self.offload.prepare_load(keys[:hit])
            job = self.mover.submit(self.tiers, kvaccel.runs(HOST, hb, DEV, db[:hit]))
            done = await self.mover.wait(job)
            self.offload.complete_load(keys[:hit])
            if done.status:
                raise OSError(-done.status, "load failed")
            for i in range(hit):
                assert bytes(self.device.block(db[i])) == kv_of(keys[i]), "loaded KV differs"

        # 3. Run the model over the rest of the prompt: it writes their KV.
        for i in range(hit, len(keys)):
            self.device.block(db[i])[:] = kv_of(keys[i])

        # 4. Store the new blocks: host blocks for the keys not stored yet.
        st = self.offload.prepare_store(keys)
        stored = 0
        if st.allocated:
            # Runs db[i] -> st.blocks[i] for the keys given a block.
            job = self.mover.submit(self.tiers, st.runs(DEV, db, HOST))
            done = await self.mover.wait(job)
            self.offload.complete_store(st, ok=done.status == 0)
            if done.status == 0:
                stored = st.allocated
                self.index.update(st.keys())

        # 5. Evict: keys the store pushed out of the host tier.
        for k in st.evicted:
            self.index.discard(k)
        self.evicted += len(st.evicted)

        self.free.extend(db)                               # the request finished
        return hit, len(keys) - hit, stored


async def main(verbose=True, make_tier=kvaccel.Tier.memfd):
    c = Connector(make_tier=make_tier)
    try:
        shared = list(range(1000, 1000 + 8 * BLOCK_TOKENS))       # an 8-block system prompt
        a = shared + list(range(5000, 5000 + 4 * BLOCK_TOKENS))   # + 4 blocks
        b = shared + list(range(7000, 7000 + 6 * BLOCK_TOKENS + 3))
        other = list(range(9000, 9000 + 20 * BLOCK_TOKENS))      # 20 unrelated blocks
        log = []
        for name, p in (("a", a), ("b", b), ("a again", a), ("other", other), ("a late", a)):
            r = await c.request(p)
            log.append((name,) + r)
            if verbose:
                print("%-8s loaded %2d computed %2d stored %2d" % ((name,) + r))
        st = c.offload.stats()
        if verbose:
            print("host tier: %d ready of %d, %d evicted; index %d keys" %
                  (st.ready, st.blocks, st.evictions, len(c.index)))
        assert log[0][1:] == (0, 12, 12)      # a: all computed and stored
        assert log[1][1:] == (8, 6, 6)        # b: the shared prompt loaded
        assert log[2][1:] == (12, 0, 0)       # a again: everything loaded
        assert log[3][1:] == (0, 20, 20)      # other: evicts to make room
        assert log[4][1] < 12                 # a late: its blocks were evicted
        assert st.evictions == c.evicted and st.ready == len(c.index)
        return log, st
    finally:
        c.close()


if __name__ == "__main__":
    asyncio.run(main())
