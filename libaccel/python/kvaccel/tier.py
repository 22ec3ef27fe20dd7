# SPDX-License-Identifier: MIT
"""kvaccel.Tier: the memory behind a block manager's block ids
(accel_tier_*): a host tier in a kvaccel region of a Device, a memfd tier
that needs no device (no quotas, no isolation, no zero-copy remap), or a
CUDA device tier, allocated by the library or registered over the engine's
own device memory (a torch tensor's data_ptr(), for instance).

Each kind is one constructor (Tier.host(), Tier.memfd(), Tier.cuda(),
Tier.register_cuda()) over one C call."""

import ctypes
import errno
from collections import namedtuple
from ctypes import byref

from . import _mover_types as T
from ._base import Handle
from ._lib import check, check_null, error, lib
from ._map import export_fd, map_export, unmap

HOST = T.TIER_HOST
MEMFD = T.TIER_MEMFD
CUDA = T.TIER_CUDA
CUDA_REGISTERED = T.TIER_CUDA_REGISTERED
LAYOUT_BLOCKS = T.LAYOUT_BLOCKS
LAYOUT_LAYERS = T.LAYOUT_LAYERS
BLOCK_MAX = T.TIER_BLOCK_MAX

TierInfo = namedtuple("TierInfo", "kind blocks block_bytes region_block_bytes layers device "
                      "layout block_stride")


class Tier(Handle):
    """A tier of blocks blocks of block_bytes bytes each, each cut into
    layers equal layer pieces. Build one with Tier.host(dev, ...),
    Tier.memfd(...), Tier.cuda(...) or Tier.register_cuda(...). buffer() is
    a host tier as a writable memoryview, block(i) one block of it
    (Python's own mapping of the tier's export: views stay valid after
    close()); device tiers have no buffer (EOPNOTSUPP). A tier a Mover job
    still uses refuses close() with EBUSY."""

    _what = "Tier"

    def __init__(self, *a, **kw):
        raise TypeError("use Tier.host(), Tier.memfd(), Tier.cuda() or Tier.register_cuda()")

    @classmethod
    def _create(cls, create, args, opts, cpu=True, dev=None):
        self = object.__new__(cls)
        self._l = lib()
        self._mm = None
        self._busy = 0
        self._cpu = cpu
        self._hd = check_null(create(*args, byref(opts)), create.__name__)
        i = self.info()
        self.kind, self.blocks, self.block_bytes = i.kind, i.blocks, i.block_bytes
        self.layers = i.layers
        self.device = dev
        if dev is not None:
            dev._adopt(self)
        return self

    @staticmethod
    def _host_opts(block_bytes, blocks, node, layers):
        o = T.TierOpts(sz=ctypes.sizeof(T.TierOpts), block_bytes=block_bytes, blocks=blocks,
                       layers=layers)
        if node is not None:
            o.node = node
            o.flags |= T.TIER_ON_NODE
        return o

    @classmethod
    def host(cls, dev, block_bytes, blocks, node=None, layers=1):
        """A host tier in a kvaccel region of dev (a Device), on NUMA node
        node if given (accel_tier_create_host())."""
        l = lib()
        return cls._create(l.accel_tier_create_host, (dev._h(),),
                           cls._host_opts(block_bytes, blocks, node, layers), dev=dev)

    @classmethod
    def memfd(cls, block_bytes, blocks, layers=1):
        """A host tier in a memfd, no device needed (accel_tier_create_memfd())."""
        l = lib()
        return cls._create(l.accel_tier_create_memfd, (),
                           cls._host_opts(block_bytes, blocks, None, layers))

    @classmethod
    def cuda(cls, device, block_bytes, blocks, layers=1):
        """A device tier the library allocates on CUDA device ordinal
        device and frees on close() (accel_tier_create_cuda())."""
        l = lib()
        o = T.TierCudaOpts(sz=ctypes.sizeof(T.TierCudaOpts), device=device,
                           block_bytes=block_bytes, blocks=blocks, layers=layers)
        return cls._create(l.accel_tier_create_cuda, (), o, cpu=False)

    @classmethod
    def register_cuda(cls, device, block_bytes, blocks, base=None, layer_base=None,
                      block_stride=0, layers=None):
        """A device tier over the engine's own memory on CUDA device
        ordinal device, which the library never frees: one block per block
        id at base + b * block_stride (base: a device pointer, an int), or,
        with layer_base (one device pointer per layer: per-layer tensors),
        layer l of block b at layer_base[l] + b * block_stride
        (accel_tier_register_cuda()). block_stride 0: packed."""
        l = lib()
        o = T.TierCudaOpts(sz=ctypes.sizeof(T.TierCudaOpts), device=device,
                           block_bytes=block_bytes, blocks=blocks, block_stride=block_stride)
        keep = None
        if layer_base is not None:
            if base is not None:
                raise ValueError("base or layer_base, not both")
            keep = (ctypes.c_uint64 * max(len(layer_base), 1))(*layer_base)
            o.layout = T.LAYOUT_LAYERS
            o.layer_base = ctypes.cast(keep, ctypes.POINTER(ctypes.c_uint64))
            o.nr_layer_base = len(layer_base)
            o.layers = len(layer_base) if layers is None else layers
        else:
            o.layout = T.LAYOUT_BLOCKS
            o.base = base or 0
            o.layers = layers or 1
        return cls._create(l.accel_tier_register_cuda, (), o, cpu=False)

    def close(self):
        if self._hd and self._busy:
            raise error(errno.EBUSY, "Tier.close")  # a mover job uses it
        super().close()

    def _release(self, hd):
        mm, self._mm = self._mm, None
        unmap(mm)
        self._l.accel_tier_destroy(hd)

    def info(self):
        i = T.TierInfo(sz=ctypes.sizeof(T.TierInfo))
        check(self._l.accel_tier_info(self._h(), byref(i)), "accel_tier_info")
        return TierInfo(i.kind, i.blocks, i.block_bytes, i.region_block_bytes, i.layers,
                        i.device, i.layout, i.block_stride)

    def __len__(self):
        return self.blocks

    @property
    def nbytes(self):
        return self.blocks * self.block_bytes

    def block_addr(self, i):
        """The library's mapping of block i, an int (for C callers); a
        device tier's: the block's device pointer."""
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
                raise error(errno.EOPNOTSUPP, "Tier.buffer")  # not CPU memory
            self._mm = map_export(self.export, self.nbytes, "Tier")
        return memoryview(self._mm)

    def block(self, i):
        """Block i: a memoryview of block_bytes bytes."""
        if not 0 <= i < self.blocks:
            raise IndexError("block index out of range")
        bb = self.block_bytes
        return self.buffer()[i * bb:(i + 1) * bb]
