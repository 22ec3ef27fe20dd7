# SPDX-License-Identifier: MIT
"""kvaccel.moe: libaccel's MoE expert placement from Python
(accel_moe_plan.h, Documentation/moe.rst "Planner"):

- rebalance_experts(): DeepSeek's EPLB exactly, with vLLM's and EPLB's
  signature (weight, num_replicas, num_groups, num_nodes, num_gpus) ->
  (phy2log, log2phy, logcnt), ties broken as the docs say;
- plan(): the cost-aware planner (as balanced as EPLB's global policy,
  fewer experts moved from the current placement, co-activated experts of
  consecutive layers kept together), with what its plan costs;
- cost(): what any placement costs; moves(): the move plan from one
  placement to another, in rounds of at most max_inflight copies per GPU;
- Stats: the per-expert load over a sliding window of steps and the
  co-activation counts between consecutive layers;
- Store: the expert store itself (accel_moe.h): copies in kvaccel regions
  or in GPUs' memory, per-layer windows, versioned tables, rebalances
  under serving.

Placements are EPLB's: phy2log[layers][slots], slots GPU-major (slot s on
GPU s // (slots // num_gpus)), GPUs node-major. Arrays in: numpy arrays,
torch CPU tensors or nested sequences; arrays out: numpy arrays (int32,
float32, uint32, uint64) when numpy is installed, else nested lists. Bad
input raises OSError (EINVAL: a shape, an id or a divisibility constraint)
or ValueError (an array of the wrong rank)."""

import ctypes
from collections import namedtuple
from ctypes import POINTER, byref, c_float, c_int32, c_size_t, c_uint32, c_uint64

from . import _moe_types as T
from ._base import Handle
from ._lib import check, check_null, declare, error, lib

try:
    import numpy as _np
except ImportError:  # nested lists then
    _np = None

MoeCost = namedtuple("MoeCost", "imbalance max_imbalance max_load mean_load moves traffic "
                     "cross_device cross_node")
MoeMove = namedtuple("MoeMove", "layer slot old_expert new_expert src_slot kind round")

MOVE_DEVICE, MOVE_NODE, MOVE_REMOTE, MOVE_STORE = (T.MOVE_DEVICE, T.MOVE_NODE, T.MOVE_REMOTE,
                                                  T.MOVE_STORE)
_POLICY = {"auto": T.EPLB_AUTO, "hierarchical": T.EPLB_HIERARCHICAL, "global": T.EPLB_GLOBAL}
_NP = {c_float: "float32", c_int32: "int32", c_uint32: "uint32", c_uint64: "uint64"}

_declared = False


def _lib():
    global _declared
    l = lib()
    if not _declared:
        declare(l, T.PROTOS)
        _declared = True
    return l


def _flat(x, depth):
    """x (nested sequences of depth @depth) as (flat list, shape)."""
    if depth == 0:
        return [x], ()
    x = list(x)
    if not x:
        return [], (0,) * depth
    parts = [_flat(v, depth - 1) for v in x]
    shape = parts[0][1]
    if any(p[1] != shape for p in parts):
        raise ValueError("a ragged array")
    return [v for p in parts for v in p[0]], (len(x),) + shape


class _In:
    """An input array as C memory of @ctype: .ptr, .shape (kept alive with it)."""

    def __init__(self, x, ctype, ndim, what):
        if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
            x = x.detach().cpu()
            x = x.numpy() if _np is not None else x.tolist()
        if _np is not None:
            a = _np.ascontiguousarray(x, dtype=_NP[ctype])
            if a.ndim != ndim:
                raise ValueError("%s: %d dimensions, not %d" % (what, a.ndim, ndim))
            self._keep, self.shape = a, a.shape
            self.ptr = a.ctypes.data_as(POINTER(ctype))
            return
        flat, shape = _flat(x, ndim)
        arr = (ctype * max(len(flat), 1))(*flat)
        self._keep, self.shape, self.ptr = arr, shape, ctypes.cast(arr, POINTER(ctype))


class _Out:
    """An output array of @shape and @ctype: .ptr, then .value()."""

    def __init__(self, shape, ctype):
        self.shape, n = tuple(shape), 1
        for d in shape:
            n *= d
        if _np is not None:
            self._a = _np.zeros(self.shape, dtype=_NP[ctype])
            self.ptr = self._a.ctypes.data_as(POINTER(ctype))
        else:
            self._a = (ctype * max(n, 1))()
            self.ptr = ctypes.cast(self._a, POINTER(ctype))

    def value(self):
        if _np is not None:
            return self._a
        flat = list(self._a)[:_size(self.shape)]
        for d in reversed(self.shape[1:]):
            flat = [flat[i:i + d] for i in range(0, len(flat), d)]
        return flat


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _topo(layers, experts, slots, gpus, nodes, groups):
    for v in (layers, experts, slots, gpus, nodes, groups):
        if not isinstance(v, int) or v < 0 or v > 0xffffffff:
            raise error(22, "topology")
    return T.Topo(ctypes.sizeof(T.Topo), layers, experts, slots, gpus, nodes, groups)


def _placement(x, topo, what):
    p = _In(x, c_int32, 2, what)
    if p.shape != (topo.layers, topo.slots):
        raise ValueError("%s: shape %s, not (%d, %d)" % (what, p.shape, topo.layers,
                                                         topo.slots))
    return p


def _coact(x, topo):
    if x is None:
        return None
    c = _In(x, c_uint32, 3, "coact")
    if c.shape != (topo.layers - 1, topo.experts, topo.experts):
        raise ValueError("coact: shape %s, not (%d, %d, %d)" % (
            c.shape, topo.layers - 1, topo.experts, topo.experts))
    return c


def _cost(c):
    return MoeCost(c.imbalance, c.max_imbalance, c.max_load, c.mean_load, c.moves, c.traffic,
                   c.cross_device, c.cross_node)


def _trim(log2phy, width):
    """log2phy [layers][experts][width'] cut to the largest logcnt (EPLB's width)."""
    if _np is not None:
        return _np.ascontiguousarray(log2phy[:, :, :width])
    return [[row[:width] for row in layer] for layer in log2phy]


def _max_count(logcnt):
    if _np is not None:
        return int(logcnt.max()) if logcnt.size else 0
    return max((c for layer in logcnt for c in layer), default=0)


def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus, policy="auto",
                      old_phy2log=None):
    """DeepSeek's EPLB (accel_eplb_rebalance()): weight [layers][experts]
    (tokens per expert, finite, >= 0), num_replicas physical slots over
    num_gpus GPUs in num_nodes nodes, experts in num_groups groups. policy:
    "auto" (hierarchical when num_groups % num_nodes == 0, else global, as
    EPLB), "hierarchical" or "global". old_phy2log: keep each GPU's experts
    in the slots they had (vLLM's preserve_intragpu_slots). Returns
    (phy2log [layers][num_replicas], log2phy [layers][experts][max count]
    with -1 padding, logcnt [layers][experts])."""
    if policy not in _POLICY:
        raise ValueError("policy: %r is none of %s" % (policy, ", ".join(_POLICY)))
    w = _In(weight, c_float, 2, "weight")
    layers, experts = w.shape
    topo = _topo(layers, experts, num_replicas, num_gpus, num_nodes, num_groups)
    opts = T.EplbOpts(ctypes.sizeof(T.EplbOpts), _POLICY[policy], 0, None)
    old = None
    if old_phy2log is not None:
        old = _placement(old_phy2log, topo, "old_phy2log")
        opts.old_phy2log = old.ptr
    width = max(num_replicas - experts + 1, 1)
    phy2log = _Out((layers, num_replicas), c_int32)
    log2phy = _Out((layers, experts, width), c_int32)
    logcnt = _Out((layers, experts), c_int32)
    maxcnt = c_uint32()
    check(_lib().accel_eplb_rebalance(byref(topo), w.ptr, byref(opts), phy2log.ptr,
                                      log2phy.ptr, width, logcnt.ptr, byref(maxcnt)),
          "accel_eplb_rebalance")
    return phy2log.value(), _trim(log2phy.value(), maxcnt.value), logcnt.value()


def plan(weight, num_replicas, num_nodes, num_gpus, coact=None, current=None, num_groups=0,
         balance_slack=0.0, move_tokens=0.0, max_moves=0, traffic=True):
    """The cost-aware planner (accel_moe_plan()): a placement for weight
    [layers][experts] as balanced as EPLB's global policy, moving as few
    experts from current ([layers][num_replicas], or None) as it can and,
    with coact ([layers - 1][experts][experts] co-activation counts) and
    traffic, cutting the tokens that cross GPUs and nodes between
    consecutive layers. balance_slack, move_tokens and max_moves: as
    struct accel_moe_plan_opts. Returns (phy2log, log2phy, logcnt, cost)
    (log2phy's slots ascending, -1 padding; cost a MoeCost, moves counted
    from current)."""
    w = _In(weight, c_float, 2, "weight")
    layers, experts = w.shape
    topo = _topo(layers, experts, num_replicas, num_gpus, num_nodes, num_groups)
    cur = _placement(current, topo, "current") if current is not None else None
    co = _coact(coact, topo)
    opts = T.PlanOpts(ctypes.sizeof(T.PlanOpts), balance_slack, move_tokens, max_moves,
                      0 if traffic else T.PLAN_NO_TRAFFIC)
    width = max(num_replicas - experts + 1, 1)
    phy2log = _Out((layers, num_replicas), c_int32)
    log2phy = _Out((layers, experts, width), c_int32)
    logcnt = _Out((layers, experts), c_int32)
    c = T.Cost(ctypes.sizeof(T.Cost))
    check(_lib().accel_moe_plan(byref(topo), w.ptr, co.ptr if co else None,
                                cur.ptr if cur else None, byref(opts), phy2log.ptr,
                                log2phy.ptr, width, logcnt.ptr, byref(c)), "accel_moe_plan")
    cnt = logcnt.value()
    return phy2log.value(), _trim(log2phy.value(), _max_count(cnt)), cnt, _cost(c)


def cost(weight, phy2log, num_nodes, num_gpus, coact=None, old_phy2log=None):
    """What placement phy2log costs under weight (accel_moe_cost()): a
    MoeCost (moves counted from old_phy2log, traffic from coact) and each
    layer's max / mean GPU load."""
    w = _In(weight, c_float, 2, "weight")
    layers, experts = w.shape
    p = _In(phy2log, c_int32, 2, "phy2log")
    if p.shape[0] != layers:
        raise ValueError("phy2log: %d layers, weight %d" % (p.shape[0], layers))
    topo = _topo(layers, experts, p.shape[1], num_gpus, num_nodes, 0)
    old = _placement(old_phy2log, topo, "old_phy2log") if old_phy2log is not None else None
    co = _coact(coact, topo)
    c = T.Cost(ctypes.sizeof(T.Cost))
    per = _Out((layers,), c_float)
    check(_lib().accel_moe_cost(byref(topo), w.ptr, co.ptr if co else None,
                                old.ptr if old else None, p.ptr, byref(c), per.ptr),
          "accel_moe_cost")
    return _cost(c), per.value()


def moves(old_phy2log, new_phy2log, num_experts, num_nodes, num_gpus, max_inflight=1):
    """The moves from one placement to another (accel_moe_moves()), a list
    of MoeMove (kind MOVE_DEVICE: a rebind on the GPU; MOVE_NODE: a copy
    from another GPU of the node; MOVE_REMOTE: from another node;
    MOVE_STORE: from the store), in rounds of at most max_inflight
    incoming copies per GPU."""
    o = _In(old_phy2log, c_int32, 2, "old_phy2log")
    topo = _topo(o.shape[0], num_experts, o.shape[1], num_gpus, num_nodes, 0)
    n = _placement(new_phy2log, topo, "new_phy2log")
    cap = _size(o.shape)
    out = (T.Move * max(cap, 1))()
    count = c_size_t()
    check(_lib().accel_moe_moves(byref(topo), o.ptr, n.ptr, max_inflight, out, cap,
                                 byref(count)), "accel_moe_moves")
    return [MoeMove(m.layer, m.slot, m.old_expert, m.new_expert, m.src_slot, m.kind, m.round)
            for m in out[:count.value]]


class Stats(Handle):
    """Tokens routed to each expert over the last window_steps steps
    (accel_moe_stats_*), and with coact=True the co-activation counts of
    consecutive layers' experts. One thread at a time (no lock)."""

    _what = "Stats"

    def __init__(self, layers, experts, window_steps, coact=False):
        self.layers, self.experts = layers, experts
        self._hd = check_null(_lib().accel_moe_stats_create(
            layers, experts, window_steps, T.STATS_COACT if coact else 0),
            "accel_moe_stats_create")

    def _release(self, hd):
        _lib().accel_moe_stats_destroy(hd)

    def record(self, layer, experts):
        """Count one token per entry of experts (ids of layer's experts) in the current step."""
        e = _In(experts, c_uint32, 1, "experts")
        check(_lib().accel_moe_stats_record(self._h(), layer, e.ptr, e.shape[0]),
              "accel_moe_stats_record")

    def route(self, experts):
        """Count tokens with their experts in every layer: experts
        [tokens][layers][top_k] (loads, and co-activations with coact)."""
        e = _In(experts, c_uint32, 3, "experts")
        tokens, layers, top_k = e.shape
        if layers != self.layers:
            raise ValueError("experts: %d layers, the stats have %d" % (layers, self.layers))
        if tokens:
            check(_lib().accel_moe_stats_route(self._h(), e.ptr, tokens, top_k),
                  "accel_moe_stats_route")

    def step_end(self):
        """Close the current step (it enters the window)."""
        check(_lib().accel_moe_stats_step_end(self._h()), "accel_moe_stats_step_end")

    def load(self):
        """(counts uint64 [layers][experts], weight float32 [layers][experts]
        (EPLB's input), steps in the window)."""
        counts = _Out((self.layers, self.experts), c_uint64)
        weight = _Out((self.layers, self.experts), c_float)
        steps = c_uint32()
        check(_lib().accel_moe_stats_load(self._h(), counts.ptr, weight.ptr, byref(steps)),
              "accel_moe_stats_load")
        return counts.value(), weight.value(), steps.value

    def coact(self):
        """The co-activation counts [layers - 1][experts][experts] (OSError
        ENOENT without coact=True or with one layer)."""
        out = _Out((max(self.layers - 1, 0), self.experts, self.experts), c_uint32)
        check(_lib().accel_moe_stats_coact(self._h(), out.ptr), "accel_moe_stats_coact")
        return out.value()


StoreStats = namedtuple("StoreStats", "layers experts devices num_slots block_size "
                        "blocks_per_expert slot_stride version steps_in_flight rebalancing "
                        "retired_pending rebalances waves rebinds copies copy_bytes reclaims "
                        "over_k max_inflight_seen last_error live_copies peak_copies adopted "
                        "fetched exported shared_copies")


class Store(Handle):
    """The expert store (accel_moe_store_*, Documentation/moe.rst "Expert
    store"): every layer's experts in copies on the devices that hold them,
    read through a per-layer window at the table version of the step, and
    rebalanced under serving. phy2log: the initial placement
    [layers][devices * slots_per_device].

    Where the copies live: gpus=[ordinal per device] puts them in the GPUs'
    memory (the cuda backend: no kvaccel device needed; expert() then
    gives device addresses for the engine's kernels); else device=Device
    (kvaccel regions on device_node=[node per device]). thread=True runs
    the rebalances on the store's own thread; from_store=Store starts a
    cuda store from another one's copies (no write needed).

    A step: `with store.step() as v:` (or begin()/end(v)); expert(v,
    layer, expert, hint) is the address valid until that step ends. On the
    GPUs, end a step once its kernels are done."""

    _what = "Store"

    def __init__(self, layers, experts, devices, slots_per_device, expert_bytes, phy2log,
                 device=None, gpus=None, device_node=None, max_inflight=0, thread=False,
                 block_size=0, from_store=None):
        l = _lib()
        self.layers, self.num_slots = layers, devices * slots_per_device
        self.expert_bytes = expert_bytes
        p = _In(phy2log, c_int32, 2, "phy2log")
        if p.shape != (layers, self.num_slots):
            raise ValueError("phy2log: shape %s, not (%d, %d)" % (p.shape, layers,
                                                                  self.num_slots))
        o = T.StoreOpts(ctypes.sizeof(T.StoreOpts), layers, experts, devices,
                        slots_per_device, expert_bytes, block_size)
        o.max_inflight = max_inflight
        o.flags = T.STORE_THREAD if thread else 0
        keep = []
        if gpus is not None:
            g = (ctypes.c_int * devices)(*gpus) if len(gpus) == devices else None
            if g is None:
                raise ValueError("gpus: %d ordinals for %d devices" % (len(gpus), devices))
            keep.append(g)
            o.backend, o.device_gpu = T.STORE_CUDA, ctypes.cast(g, POINTER(ctypes.c_int))
        if device_node is not None:
            if len(device_node) != devices:
                raise ValueError("device_node: %d nodes for %d devices" % (len(device_node),
                                                                          devices))
            n = (ctypes.c_int * devices)(*device_node)
            keep.append(n)
            o.device_node = ctypes.cast(n, POINTER(ctypes.c_int))
        if from_store is not None:
            o.from_store = from_store._h()
        dev = device._h() if device is not None else None
        self._hd = check_null(l.accel_moe_store_create(dev, byref(o), p.ptr,
                                                       _size(p.shape)),
                              "accel_moe_store_create")
        # The device (or the store filled from) outlives this store's use of it.
        self._device, self._from = device, from_store

    def _release(self, hd):
        _lib().accel_moe_store_destroy(hd)

    def write(self, layer, expert, data):
        """Copy expert_bytes bytes (any buffer: bytes, a numpy array) into
        every copy of layer's expert (EBUSY during a rebalance)."""
        mv = memoryview(data).cast("B")
        if mv.nbytes != self.expert_bytes:
            raise ValueError("%d bytes, an expert is %d" % (mv.nbytes, self.expert_bytes))
        buf = (ctypes.c_char * mv.nbytes).from_buffer_copy(mv) if mv.readonly else \
            (ctypes.c_char * mv.nbytes).from_buffer(mv)
        check(_lib().accel_moe_store_write(self._h(), layer, expert, buf, mv.nbytes),
              "accel_moe_store_write")

    def begin(self):
        """A step begins: the table version it reads with."""
        v = c_uint64()
        check(_lib().accel_moe_store_step_begin(self._h(), byref(v)),
              "accel_moe_store_step_begin")
        return v.value

    def end(self, version):
        """The step of version ended."""
        check(_lib().accel_moe_store_step_end(self._h(), version), "accel_moe_store_step_end")

    def step(self):
        """A context manager around begin() and end(): `with s.step() as v:`."""
        return _Step(self)

    def expert(self, version, layer, expert, hint=0):
        """The window address (an int) of layer's expert for a step of version."""
        a = _lib().accel_moe_store_expert(self._h(), version, layer, expert, hint)
        return check_null(a, "accel_moe_store_expert")

    def replicas(self, version, layer, expert):
        """The physical slots holding layer's expert at version, ascending."""
        out = (c_uint32 * self.num_slots)()
        n = check(_lib().accel_moe_store_replicas(self._h(), version, layer, expert, out,
                                                  self.num_slots), "accel_moe_store_replicas")
        return list(out[:n])

    def placement(self):
        """The newest placement [layers][num_slots]."""
        out = _Out((self.layers, self.num_slots), c_int32)
        check(_lib().accel_moe_store_placement(self._h(), out.ptr,
                                               self.layers * self.num_slots),
              "accel_moe_store_placement")
        return out.value()

    def apply(self, phy2log):
        """Start a rebalance to phy2log (the work runs in steps or on the store's thread)."""
        p = _In(phy2log, c_int32, 2, "phy2log")
        check(_lib().accel_moe_store_apply(self._h(), p.ptr, _size(p.shape)),
              "accel_moe_store_apply")

    def progress(self):
        """A bounded share of the executor's work: True while some is pending."""
        return check(_lib().accel_moe_store_progress(self._h()),
                     "accel_moe_store_progress") > 0

    def settle(self, timeout=None):
        """Run until idle, for at most timeout seconds (None: no limit;
        OSError ETIME past it, or the rebalance's error)."""
        ns = -1 if timeout is None else int(timeout * 1e9)
        check(_lib().accel_moe_store_settle(self._h(), ns), "accel_moe_store_settle")

    def stats(self):
        """A StoreStats (live_copies and peak_copies per device)."""
        st = T.StoreStats(ctypes.sizeof(T.StoreStats))
        check(_lib().accel_moe_store_stats(self._h(), byref(st)), "accel_moe_store_stats")
        d = st.devices
        vals = []
        for f in StoreStats._fields:
            v = getattr(st, f)
            vals.append(list(v[:d]) if f in ("live_copies", "peak_copies") else v)
        return StoreStats(*vals)


class _Step:
    __slots__ = ("_s", "version")

    def __init__(self, store):
        self._s, self.version = store, None

    def __enter__(self):
        self.version = self._s.begin()
        return self.version

    def __exit__(self, *exc):
        self._s.end(self.version)
        return False
