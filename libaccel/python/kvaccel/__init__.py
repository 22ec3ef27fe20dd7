# SPDX-License-Identifier: MIT
"""kvaccel: Python bindings of libaccel (libaccel.so.0, through ctypes).

The library is found through $KVACCEL_LIB (the file, or its directory),
else beside the package or in the source tree's build/libaccel/, else by
the system loader. Errors are OSError with errno set."""

from ._lib import path as library_path, lib as _lib
from .bm import (BlockManager, Keys, Plan, SeqInfo, TierStats, EVICT_LRU, EVICT_ARC,
                 KEY_BYTES)

__all__ = ["BlockManager", "Keys", "Plan", "SeqInfo", "TierStats", "EVICT_LRU", "EVICT_ARC",
           "KEY_BYTES", "library_path"]
