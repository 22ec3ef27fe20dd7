# SPDX-License-Identifier: MIT
"""ctypes mirrors of accel.h's device, region and engine parts and their
prototypes. tests/python checks every size and offset against the C
compiler's (tests/python/layout.c)."""

from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_int64, c_size_t,
                    c_uint, c_uint32, c_uint64, c_void_p)

PATH_MAX = 64               # ACCEL_PATH_MAX
NODE_ANY = -1               # ACCEL_NODE_ANY
ENGINE_PRIORITY_MAX = 7     # ACCEL_ENGINE_PRIORITY_MAX
HANDOFF_MAX = 16            # ACCEL_HANDOFF_MAX
HANDOFF_REGION = 1          # ACCEL_HANDOFF_REGION
HANDOFF_SPACE = 2           # ACCEL_HANDOFF_SPACE
HANDOFF_MEMFD = 3           # ACCEL_HANDOFF_MEMFD (a sealed memfd)


class DeviceInfo(Structure):
    _fields_ = [("sz", c_size_t),
                ("path", c_char * PATH_MAX),
                ("abi_major", c_uint32),
                ("abi_minor", c_uint32),
                ("caps", c_uint64),
                ("block_sizes", c_uint64),
                ("limit", c_uint64),
                ("usage", c_uint64),
                ("process_usage", c_uint64),
                ("process_quota", c_uint64)]


class Handoff(Structure):
    _fields_ = [("from", c_char_p),
                ("tag", c_uint64),
                ("count", c_uint),
                ("fds", POINTER(c_int)),
                ("kinds", POINTER(c_int)),
                ("sizes", POINTER(c_uint64))]


class HandoffSender(Structure):
    _fields_ = [("sz", c_size_t),
                ("incarnation", c_uint64),
                ("uid", c_uint32),
                ("pid", c_uint32)]


RELEASE_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, POINTER(c_uint64))
RECEIVE_FN = CFUNCTYPE(c_int, c_void_p, POINTER(Handoff))
DONE_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_int)


class EngineOps(Structure):
    _fields_ = [("release", RELEASE_FN),
                ("receive", RECEIVE_FN),
                ("handoff_done", DONE_FN)]


STRUCTS = {
    "accel_device_info": DeviceInfo,
    "accel_handoff": Handoff,
    "accel_handoff_sender": HandoffSender,
    "accel_engine_ops": EngineOps,
}

_P = c_void_p
_ip = POINTER(c_int)

PROTOS = {
    "accel_device_list": (c_int, [POINTER(c_char * PATH_MAX), c_int]),
    "accel_device_open": (_P, [c_char_p]),
    "accel_device_close": (None, [_P]),
    "accel_device_info": (c_int, [_P, POINTER(DeviceInfo)]),
    "accel_device_fd": (c_int, [_P]),
    "accel_region_create": (_P, [_P, c_uint64, c_uint32, c_int]),
    "accel_region_destroy": (None, [_P]),
    "accel_region_size": (c_uint64, [_P]),
    "accel_region_block_size": (c_uint32, [_P]),
    "accel_region_id": (c_uint64, [_P]),
    "accel_region_node": (c_int, [_P]),
    "accel_region_map": (_P, [_P]),
    "accel_region_export": (c_int, [_P, _ip]),
    "accel_region_import": (_P, [_P, c_int]),
    "accel_region_is_foreign": (c_int, [_P]),
    "accel_engine_connect": (_P, [c_char_p, c_char_p, c_uint, POINTER(EngineOps), _P]),
    "accel_engine_close": (None, [_P]),
    "accel_engine_fd": (c_int, [_P]),
    "accel_engine_dispatch": (c_int, [_P, c_int64]),
    "accel_engine_quota": (c_int, [_P, c_uint64, POINTER(c_uint64)]),
    "accel_engine_quota_now": (c_uint64, [_P]),
    "accel_engine_handoff": (c_int, [_P, c_char_p, c_uint64, _ip, _ip, c_uint]),
    "accel_engine_handoff_wait": (c_int, [_P, c_uint64, c_int64]),
    "accel_engine_pending": (c_int, [_P]),
    "accel_engine_reconnect": (c_int, [_P]),
    "accel_handoff_sender": (c_int, [POINTER(Handoff), POINTER(HandoffSender)]),
}
