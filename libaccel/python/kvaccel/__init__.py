# SPDX-License-Identifier: MIT
"""kvaccel: Python bindings of libaccel (libaccel.so.0, through ctypes).

Devices and regions (Device, Region), tiers and the data mover (Tier,
Mover), the block manager (BlockManager), the offload manager
(OffloadManager), engine connections to kvacceld (Engine) and MoE expert
placement (kvaccel.moe: EPLB, the cost-aware planner, load statistics).

The library is found through $KVACCEL_LIB (the file, or its directory),
else beside the package or in the source tree's build/libaccel/, else by
the system loader. Errors are OSError with errno set; every object has
close() and is a context manager; a closed one raises ValueError."""

from ._lib import path as library_path, lib as _lib  # kvaccel._lib(): the CDLL
from .bm import (BlockManager, Keys, Plan, SeqInfo, TierStats, EVICT_LRU, EVICT_ARC,
                 KEY_BYTES)
from .device import Device, DeviceInfo, Region, devices, NODE_ANY
from .engine import Engine, Handoff, Sender, HANDOFF_REGION, HANDOFF_SPACE
from .mover import Done, Mover, runs
from .offload import NO_BLOCK, OffloadManager, OffloadStats, Store
from .tier import (Tier, TierInfo, HOST, MEMFD, CUDA, CUDA_REGISTERED, LAYOUT_BLOCKS,
                   LAYOUT_LAYERS)
from . import moe  # kvaccel.moe: EPLB, the cost-aware planner, load statistics

__all__ = ["BlockManager", "Keys", "Plan", "SeqInfo", "TierStats", "EVICT_LRU", "EVICT_ARC",
           "KEY_BYTES", "library_path", "Device", "DeviceInfo", "Region", "devices",
           "NODE_ANY", "Engine", "Handoff", "Sender", "HANDOFF_REGION", "HANDOFF_SPACE",
           "Done", "Mover", "runs", "NO_BLOCK", "OffloadManager", "OffloadStats", "Store",
           "Tier", "TierInfo", "HOST", "MEMFD", "CUDA", "CUDA_REGISTERED", "LAYOUT_BLOCKS",
           "LAYOUT_LAYERS", "moe"]
