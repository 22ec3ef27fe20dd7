# SPDX-License-Identifier: MIT
"""Loading libaccel.so.0 and turning its errors into OSError."""

import ctypes
import os

SONAME = "libaccel.so.0"

_lib = None


def _candidates():
    env = os.environ.get("KVACCEL_LIB")
    if env:
        # A file, or a directory holding libaccel.so.0.
        yield os.path.join(env, SONAME) if os.path.isdir(env) else env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    # Installed beside the package, or the package in its source tree
    # (libaccel/python/kvaccel) with the build tree at the top (build/libaccel).
    yield os.path.join(here, SONAME)
    top = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    yield os.path.join(top, "build", "libaccel", SONAME)
    yield SONAME  # the system loader


def path():
    """The library the package loads (or would load)."""
    for p in _candidates():
        if p == SONAME or os.path.exists(p) or "KVACCEL_LIB" in os.environ:
            return p
    return SONAME


def lib():
    """The loaded library (loaded once); OSError where it cannot be."""
    global _lib
    if _lib is None:
        l = ctypes.CDLL(path(), use_errno=True)
        from . import _bm_types, _dev_types, _mover_types, _offload_types
        for m in (_bm_types, _dev_types, _mover_types, _offload_types):
            declare(l, m.PROTOS)
        _lib = l
    return _lib


def declare(l, protos):
    """Set restype and argtypes of each function of protos on l."""
    for name, (res, args) in protos.items():
        f = getattr(l, name)
        f.restype = res
        f.argtypes = args


def error(err, what=None):
    """OSError(err, os.strerror(err)) (with what as its filename)."""
    if what is None:
        return OSError(err, os.strerror(err))
    return OSError(err, os.strerror(err), what)


def check(ret, what=None):
    """A call's return: itself if >= 0, else OSError of -ret."""
    if ret < 0:
        raise error(-ret, what)
    return ret


def check_null(ptr, what=None):
    """A constructor's return: itself if not NULL, else OSError of errno."""
    if not ptr:
        err = ctypes.get_errno() or 22  # EINVAL if it left none
        raise error(err, what)
    return ptr
