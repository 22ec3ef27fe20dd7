# SPDX-License-Identifier: MIT
"""kvaccel.Device and kvaccel.Region: a kvaccel device node (accel_device_*)
and its regions of pinned host memory (accel_region_*), a region's memory
as a buffer numpy and torch take (np.frombuffer, torch.frombuffer)."""

import ctypes
import weakref
from collections import namedtuple
from ctypes import byref

from . import _dev_types as T
from ._base import Handle
from ._lib import check, check_null, lib
from ._map import export_fd, map_export, unmap

NODE_ANY = T.NODE_ANY

DeviceInfo = namedtuple("DeviceInfo", [f for f, _ in T.DeviceInfo._fields_[1:]])


def devices(max=16):
    """The kvaccel device nodes found (accel_device_list()), paths as str."""
    paths = (ctypes.c_char * T.PATH_MAX * max)()
    n = check(lib().accel_device_list(paths, max), "accel_device_list")
    return [paths[i].value.decode() for i in range(min(n, max))]


class Device(Handle):
    """An open kvaccel device (accel_device_open(); path None: the first
    one). Closing it closes its regions and tiers first."""

    _what = "Device"

    def __init__(self, path=None):
        self._l = lib()
        p = path.encode() if isinstance(path, str) else path
        self._hd = check_null(self._l.accel_device_open(p), "accel_device_open")
        self._children = weakref.WeakSet()

    def _adopt(self, obj):
        self._children.add(obj)
        return obj

    def close(self):
        if self._hd:
            for c in list(self._children):
                c.close()
        super().close()

    def _release(self, hd):
        self._l.accel_device_close(hd)

    def info(self):
        """accel_device_info() as a DeviceInfo (path a str)."""
        i = T.DeviceInfo(sz=ctypes.sizeof(T.DeviceInfo))
        check(self._l.accel_device_info(self._h(), byref(i)), "accel_device_info")
        vals = [getattr(i, f) for f in DeviceInfo._fields]
        vals[0] = vals[0].decode()
        return DeviceInfo(*vals)

    def fileno(self):
        """The device's fd (owned by the device)."""
        return check(self._l.accel_device_fd(self._h()), "accel_device_fd")

    def region(self, size, block_size, node=NODE_ANY):
        """A new Region of size bytes in blocks of block_size."""
        return Region(self, size, block_size, node)

    def import_region(self, fd):
        """The Region of a dma-buf (Region.import_fd())."""
        return Region.import_fd(self, fd)


class Region(Handle):
    """Pinned, zero-filled host memory (accel_region_create()). buffer() is
    its memory as a writable memoryview (Python's own mapping of the
    region's dma-buf: views stay valid after close(), the memory is freed
    with the last one)."""

    _what = "Region"

    def __init__(self, dev, size, block_size, node=NODE_ANY, _hd=None):
        self._l = lib()
        self._mm = None
        if _hd is None:
            _hd = check_null(self._l.accel_region_create(dev._h(), size, block_size, node),
                             "accel_region_create")
        self._hd = _hd
        self.device = dev
        dev._adopt(self)

    @classmethod
    def import_fd(cls, dev, fd):
        """Import a dma-buf fd (a kvaccel region's, any process's, or another
        driver's CPU-reachable buffer: a foreign region). The fd stays the
        caller's."""
        hd = check_null(lib().accel_region_import(dev._h(), fd), "accel_region_import")
        return cls(dev, 0, 0, _hd=hd)

    def _release(self, hd):
        mm, self._mm = self._mm, None
        unmap(mm)
        self._l.accel_region_destroy(hd)

    @property
    def size(self):
        return self._l.accel_region_size(self._h())

    @property
    def block_size(self):
        return self._l.accel_region_block_size(self._h())

    @property
    def id(self):
        """The device-wide id (as kvaccelctl shows it), 0 for a foreign import."""
        return self._l.accel_region_id(self._h())

    @property
    def node(self):
        return self._l.accel_region_node(self._h())

    @property
    def foreign(self):
        return bool(check(self._l.accel_region_is_foreign(self._h()), "accel_region_is_foreign"))

    def address(self):
        """The library's mapping (accel_region_map()), an int, for C callers."""
        return check_null(self._l.accel_region_map(self._h()), "accel_region_map")

    def export(self):
        """A dma-buf fd of the region (close-on-exec), owned by the caller."""
        return export_fd(self._l.accel_region_export, self._h(), "accel_region_export")

    def buffer(self):
        """The region's memory: a writable memoryview of bytes."""
        hd = self._h()
        if self._mm is None:
            self._mm = map_export(self.export, self._l.accel_region_size(hd), "Region")
        return memoryview(self._mm)

    def block(self, i):
        """Block i of the region: a memoryview."""
        bs = self.block_size
        if not 0 <= i < self.size // bs:
            raise IndexError("block index out of range")
        return self.buffer()[i * bs:(i + 1) * bs]
