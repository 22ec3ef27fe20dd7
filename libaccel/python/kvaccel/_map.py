# SPDX-License-Identifier: MIT
"""Python's own mapping of an object's memory (a region's dma-buf, a memfd
tier's memfd), so that its buffer follows Python's rules: a memoryview,
numpy array or torch tensor over it keeps the pages mapped after the
object is closed (the memory is freed with the last view), and nothing
reads unmapped memory."""

import mmap
import os

from ._lib import check


def map_export(export, size, what):
    """An mmap.mmap of size bytes of the fd export() gives (closed after)."""
    fd = export()
    try:
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def unmap(mm):
    """Unmap mm now, or leave it to its last view (BufferError: views exist)."""
    if mm is None:
        return
    try:
        mm.close()
    except BufferError:
        pass  # numpy/torch/memoryview views hold it: unmapped with the last one


def export_fd(fn, hd, what):
    """The fd a C export call (fn(hd, &fd)) gives."""
    import ctypes
    fd = ctypes.c_int(-1)
    check(fn(hd, ctypes.byref(fd)), what)
    return fd.value
