# SPDX-License-Identifier: MIT
"""kvaccel.Tier: the memory behind a block manager's block ids
(accel_tier_*): a host tier in a kvaccel region of a Device, or a memfd
tier that needs no device (no quotas, no isolation, no zero-copy remap).

Each kind is one constructor (Tier.host(), Tier.memfd()) over one C call;
a new kind (device tiers) is one more classmethod passing its create call
and whether the CPU can map it."""

import ctypes
from collections import namedtuple
from ctypes import byref

from . import _mover_types as T
from ._base import Handle
from ._lib import check, check_null, error, lib
from ._map import export_fd, map_export, unmap

HOST = T.TIER_HOST
MEMFD = T.TIER_MEMFD
BLOCK_MAX = T.TIER_BLOCK_MAX

TierInfo = namedtuple("TierInfo", "kind blocks block_bytes region_block_bytes")


class Tier(Handle):
    """A tier of blocks blocks of block_bytes bytes each. Build one with
    Tier.host(dev, ...) or Tier.memfd(...). buffer() is the whole tier as a
    writable memoryview, block(i) one block of it (Python's own mapping of
    the tier's export: views stay valid after close()). A tier a Mover job
    still uses refuses close() with EBUSY."""

    _what = "Tier"

    def __init__(self, *a, **kw):
        raise TypeError("use Tier.host() or Tier.memfd()")

    @classmethod
    def _create(cls, create, args, block_bytes, blocks, node=None, cpu=True, dev=None):
        self = object.__new__(cls)
        self._l = lib()
        self._mm = None
        self._busy = 0
        self._cpu = cpu
        o = T.TierOpts(sz=ctypes.sizeof(T.TierOpts), block_bytes=block_bytes, blocks=blocks)
        if node is not None:
            o.node = node
            o.flags |= T.TIER_ON_NODE
        self._hd = check_null(create(*args, byref(o)), create.__name__)
        i = self.info()
        self.kind, self.blocks, self.block_bytes = i.kind, i.blocks, i.block_bytes
        self.device = dev
        if dev is not None:
            dev._adopt(self)
        return self

    @classmethod
    def host(cls, dev, block_bytes, blocks, node=None):
        """A host tier in a kvaccel region of dev (a Device), on NUMA node
        node if given (accel_tier_create_host())."""
        l = lib()
        return cls._create(l.accel_tier_create_host, (dev._h(),), block_bytes, blocks, node,
                           dev=dev)

    @classmethod
    def memfd(cls, block_bytes, blocks):
        """A host tier in a memfd, no device needed (accel_tier_create_memfd())."""
        l = lib()
        return cls._create(l.accel_tier_create_memfd, (), block_bytes, blocks)

    def close(self):
        if self._hd and self._busy:
            raise error(16, "Tier.close")  # EBUSY: a mover job uses it
        super().close()

    def _release(self, hd):
        mm, self._mm = self._mm, None
        unmap(mm)
        self._l.accel_tier_destroy(hd)

    def info(self):
        i = T.TierInfo(sz=ctypes.sizeof(T.TierInfo))
        check(self._l.accel_tier_info(self._h(), byref(i)), "accel_tier_info")
        return TierInfo(i.kind, i.blocks, i.block_bytes, i.region_block_bytes)

    def __len__(self):
        return self.blocks

    @property
    def nbytes(self):
        return self.blocks * self.block_bytes

    def block_addr(self, i):
        """The library's mapping of block i, an int (for C callers)."""
        return check_null(self._l.accel_tier_block_addr(self._h(), i), "accel_tier_block_addr")

    def export(self):
        """An fd another process maps the tier with, owned by the caller: a
        host tier's region dma-buf, a memfd tier's memfd."""
        return export_fd(self._l.accel_tier_export, self._h(), "accel_tier_export")

    def buffer(self):
        """The whole tier: a writable memoryview of bytes (np.frombuffer,
        torch.frombuffer take it)."""
        self._h()
        if self._mm is None:
            if not self._cpu:
                raise error(95, "Tier.buffer")  # EOPNOTSUPP: not CPU memory
            self._mm = map_export(self.export, self.nbytes, "Tier")
        return memoryview(self._mm)

    def block(self, i):
        """Block i: a memoryview of block_bytes bytes."""
        if not 0 <= i < self.blocks:
            raise IndexError("block index out of range")
        bb = self.block_bytes
        return self.buffer()[i * bb:(i + 1) * bb]
