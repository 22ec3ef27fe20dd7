# SPDX-License-Identifier: MIT
"""ctypes mirrors of accel_offload.h and the prototypes of accel_offload_*.
tests/python checks them against the C compiler's layout."""

from ctypes import POINTER, Structure, c_int, c_size_t, c_uint32, c_uint64, c_void_p

from ._bm_types import Key

NO_BLOCK = 0xffffffff       # ACCEL_OFFLOAD_NO_BLOCK


class Opts(Structure):
    _fields_ = [("sz", c_size_t),
                ("blocks", c_uint32),
                ("evict", c_uint32),
                ("arc_ghosts", c_uint32),
                ("flags", c_uint32)]


class Stats(Structure):
    _fields_ = [("sz", c_size_t),
                ("blocks", c_uint32),
                ("free", c_uint32),
                ("storing", c_uint32),
                ("ready", c_uint32),
                ("pinned", c_uint32),
                ("pad", c_uint32),
                ("evictions", c_uint64)]


STRUCTS = {
    "accel_offload_opts": Opts,
    "accel_offload_stats": Stats,
}

_P = c_void_p
_keyp = POINTER(Key)
_u32p = POINTER(c_uint32)

PROTOS = {
    "accel_offload_create": (_P, [POINTER(Opts)]),
    "accel_offload_destroy": (None, [_P]),
    "accel_offload_lookup": (c_int, [_P, _keyp, c_uint32]),
    "accel_offload_prepare_store": (c_int, [_P, _keyp, c_uint32, _u32p, _keyp, _u32p]),
    "accel_offload_complete_store": (c_int, [_P, _keyp, c_uint32, c_int]),
    "accel_offload_prepare_load": (c_int, [_P, _keyp, c_uint32, _u32p]),
    "accel_offload_complete_load": (c_int, [_P, _keyp, c_uint32]),
    "accel_offload_touch": (c_int, [_P, _keyp, c_uint32]),
    "accel_offload_stats": (c_int, [_P, POINTER(Stats)]),
}
