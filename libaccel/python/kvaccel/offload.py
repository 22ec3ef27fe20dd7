# SPDX-License-Identifier: MIT
"""kvaccel.OffloadManager: the offload manager (accel_offload_*), the books
of a host tier of KV blocks stored by block key (vLLM's OffloadingManager
shape). It moves no bytes: copy with a Mover between the engine's tier and
the host tier whose block ids it names."""

import array
import ctypes
from collections import namedtuple
from ctypes import byref, c_uint32

from . import _bm_types as B
from . import _offload_types as T
from ._base import Handle
from ._lib import check, check_null, lib
from .bm import Keys, _keys_arg

NO_BLOCK = T.NO_BLOCK

OffloadStats = namedtuple("OffloadStats", "blocks free storing ready pinned evictions")


class Store:
    """What prepare_store() gave: blocks (array.array("I"), one per key:
    its host block, or NO_BLOCK for a key stored already), evicted (Keys
    evicted to make room: drop them from your own index), allocated (how
    many keys got a block). index() and keys() are the keys to copy."""

    __slots__ = ("blocks", "evicted", "allocated", "_keys")

    def __init__(self, blocks, evicted, allocated, keys):
        self.blocks, self.evicted, self.allocated, self._keys = blocks, evicted, allocated, keys

    def index(self):
        """The positions of the keys given a block."""
        if self.allocated == len(self.blocks):
            return range(len(self.blocks))
        return [i for i, b in enumerate(self.blocks) if b != NO_BLOCK]

    def keys(self):
        """The keys given a block (what complete_store() takes)."""
        if self.allocated == len(self.blocks):
            return self._keys
        return Keys.from_bytes(self._keys[i] for i in self.index())

    def runs(self, src_tier, src_blocks, dst_tier):
        """The mover's runs of the copies to make: src_blocks[i] of
        src_tier (the engine's block of key i) -> this store's block i of
        dst_tier (the host tier), for the keys given a block."""
        from .mover import runs
        if self.allocated == len(self.blocks):
            return runs(src_tier, src_blocks, dst_tier, self.blocks)
        idx = self.index()
        return runs(src_tier, [src_blocks[i] for i in idx], dst_tier,
                    [self.blocks[i] for i in idx])

    def __repr__(self):
        return "<kvaccel.Store %d of %d, %d evicted>" % (self.allocated, len(self.blocks),
                                                         len(self.evicted))


def _u32(n):
    a = array.array("I", bytes(4 * n))
    return a, (c_uint32 * n).from_buffer(a)


class OffloadManager(Handle):
    """An offload manager of blocks host blocks, evicting "lru" or "arc"
    (accel_offload_create()). Keys: a Keys (BlockManager.keys()) or an
    iterable of 32-byte keys."""

    _what = "OffloadManager"

    def __init__(self, blocks, evict="lru", arc_ghosts=0, flags=0):
        self._l = lib()
        if isinstance(evict, str):
            evict = {"lru": B.EVICT_LRU, "arc": B.EVICT_ARC}[evict.lower()]
        o = T.Opts(sz=ctypes.sizeof(T.Opts), blocks=blocks, evict=evict, arc_ghosts=arc_ghosts,
                   flags=flags)
        self._hd = check_null(self._l.accel_offload_create(byref(o)), "accel_offload_create")
        self.blocks = blocks

    def _release(self, hd):
        self._l.accel_offload_destroy(hd)

    def lookup(self, keys):
        """How many leading keys are stored and ready (no side effect)."""
        p, n, _keep = _keys_arg(keys)
        return check(self._l.accel_offload_lookup(self._h(), p, n), "accel_offload_lookup")

    def prepare_store(self, keys):
        """Host blocks for the keys not stored yet, all or nothing: a Store.
        OSError ENOSPC when too few blocks are free or evictable."""
        hd = self._h()
        keys = Keys.from_bytes(keys)
        p, n = keys._arr, keys._n
        blocks, cb = _u32(n) if n else (array.array("I"), None)
        ev = (B.Key * n)() if n else None
        ne = c_uint32()
        got = check(self._l.accel_offload_prepare_store(hd, p, n, cb, ev, byref(ne)),
                    "accel_offload_prepare_store")
        del cb
        return Store(blocks, Keys(ev, ne.value) if ne.value else Keys(None, 0), got, keys)

    def complete_store(self, keys, ok=True):
        """The copies of a prepare_store() finished: ok, the keys become
        ready; not ok, their blocks are freed. keys: Store.keys() (keys not
        being stored are skipped), or the Store itself."""
        if isinstance(keys, Store):
            keys = keys.keys()
        p, n, _keep = _keys_arg(keys)
        check(self._l.accel_offload_complete_store(self._h(), p, n, 1 if ok else 0),
              "accel_offload_complete_store")

    def prepare_load(self, keys):
        """Pin the keys' blocks (never evicted until complete_load()) and
        return them, an array.array("I"). OSError ENOENT if any is not ready."""
        p, n, _keep = _keys_arg(keys)
        blocks, cb = _u32(n) if n else (array.array("I"), None)
        check(self._l.accel_offload_prepare_load(self._h(), p, n, cb),
              "accel_offload_prepare_load")
        del cb
        return blocks

    def complete_load(self, keys):
        """Drop the pins of a prepare_load() of the same keys."""
        p, n, _keep = _keys_arg(keys)
        check(self._l.accel_offload_complete_load(self._h(), p, n), "accel_offload_complete_load")

    def touch(self, keys):
        """Mark the ready keys used now, in order (the last most recent)."""
        p, n, _keep = _keys_arg(keys)
        check(self._l.accel_offload_touch(self._h(), p, n), "accel_offload_touch")

    def stats(self):
        s = T.Stats(sz=ctypes.sizeof(T.Stats))
        check(self._l.accel_offload_stats(self._h(), byref(s)), "accel_offload_stats")
        return OffloadStats(s.blocks, s.free, s.storing, s.ready, s.pinned, s.evictions)
