# SPDX-License-Identifier: MIT
"""kvaccel.BlockManager: accel_bm_* (accel_bm.h), the bookkeeping of a paged
KV cache with no device and no memory, for an engine's scheduler process.

Every call raises OSError (errno set) where the C call returns -errno."""

import array
import ctypes
from collections import namedtuple
from ctypes import byref, c_int32, c_uint32, c_uint64, sizeof

from . import _bm_types as T
from ._base import Handle
from ._lib import check, check_null, lib

Key = T.Key
EVICT_LRU = T.EVICT_LRU
EVICT_ARC = T.EVICT_ARC
KEY_BYTES = T.KEY_BYTES

#: A transfer plan: id (0: nothing to move; give it to plan_done() otherwise),
#: runs (src_tier, src_block, dst_tier, dst_block, count) tuples, blocks to
#: copy, blocks reused without a copy.
Plan = namedtuple("Plan", "id runs blocks reused")
SeqInfo = namedtuple("SeqInfo", "tier nr_blocks nr_tokens nr_committed plan_id")
TierStats = namedtuple("TierStats", [f for f, _ in T.TierStats._fields_[1:]])

_RUNS = 32  # runs fetched with the call itself; more through accel_bm_plan_runs()


class Keys:
    """A chain of block keys in one C array (what accel_bm_keys() fills),
    passed to lookup(), seq_start() and append() without a copy. Indexing
    gives bytes (32 of them); slicing gives Keys over the same memory."""

    __slots__ = ("_arr", "_n")

    def __init__(self, arr, n):
        self._arr = arr
        self._n = n

    @classmethod
    def from_bytes(cls, keys):
        """Keys from an iterable of 32-byte keys (or Keys itself)."""
        if isinstance(keys, Keys):
            return keys
        keys = [bytes(k) for k in keys]
        for k in keys:
            if len(k) != KEY_BYTES:
                raise ValueError("a block key is %d bytes" % KEY_BYTES)
        n = len(keys)
        if not n:
            return cls(None, 0)
        return cls((Key * n).from_buffer_copy(b"".join(keys)), n)

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            a, b, step = i.indices(self._n)
            if step != 1:
                return Keys.from_bytes(self[j] for j in range(a, b, step))
            m = max(b - a, 0)
            if not m:
                return Keys(None, 0)
            return Keys((Key * m).from_buffer(self._arr, a * KEY_BYTES), m)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("key index out of range")
        return bytes(self._arr[i].b)

    def __iter__(self):
        for i in range(self._n):
            yield bytes(self._arr[i].b)

    def __bytes__(self):
        return bytes(memoryview(self._arr).cast("B")) if self._n else b""

    def __eq__(self, other):
        if isinstance(other, Keys):
            return bytes(self) == bytes(other)
        return NotImplemented

    def __repr__(self):
        return "<kvaccel.Keys of %d>" % self._n

    @property
    def last(self):
        """The last key (the parent of the chain's next block), or None."""
        return self[self._n - 1] if self._n else None


def _keys_arg(keys):
    """(pointer or None, count, keepalive) for a C call's keys."""
    if keys is None:
        return None, 0, None
    if not isinstance(keys, Keys):
        keys = Keys.from_bytes(keys)
    return keys._arr, keys._n, keys


def _key1(key):
    """A single key (bytes, a Key, or None) as a Key pointer argument."""
    if key is None:
        return None
    if isinstance(key, Key):
        return byref(key)
    key = bytes(key)
    if len(key) != KEY_BYTES:
        raise ValueError("a block key is %d bytes" % KEY_BYTES)
    return byref(Key.from_buffer_copy(key))


def _tokens(tokens):
    """(int32 array or None, count) for tokens: array.array('i'), any
    contiguous int32 buffer (numpy int32, memoryview), or a sequence of ints."""
    try:
        mv = memoryview(tokens)
    except TypeError:
        mv = None
    if mv is not None and mv.itemsize == 4 and mv.format in ("i", "=i", "<i", "I", "l") \
            and mv.c_contiguous and mv.ndim == 1:
        n = mv.shape[0]
        if not n:
            return None, 0
        if mv.readonly:
            return (c_int32 * n).from_buffer_copy(mv), n
        return (c_int32 * n).from_buffer(mv), n
    a = array.array("i", tokens)
    n = len(a)
    if not n:
        return None, 0
    return (c_int32 * n).from_buffer(a), n


class BlockManager(Handle):
    """A block manager (accel_bm_create()): tiers of tier_blocks[i] blocks
    of block_tokens tokens each; evict EVICT_LRU or EVICT_ARC ("lru", "arc").

    Release it with close() or a with-statement."""

    def __init__(self, tier_blocks, block_tokens=16, evict=EVICT_LRU, arc_ghosts=0,
                 max_run=0, flags=0):
        self._hd = None
        if isinstance(evict, str):
            evict = {"lru": EVICT_LRU, "arc": EVICT_ARC}[evict.lower()]
        tier_blocks = list(tier_blocks)
        nt = len(tier_blocks)
        blocks = (c_uint32 * max(nt, 1))(*tier_blocks)
        cfg = T.opts(T.Config, block_tokens=block_tokens, nr_tiers=nt,
                     tier_blocks=ctypes.cast(blocks, ctypes.POINTER(c_uint32)),
                     evict=evict, arc_ghosts=arc_ghosts, max_run=max_run, flags=flags)
        self._l = lib()
        self._hd = check_null(self._l.accel_bm_create(byref(cfg)), "accel_bm_create")
        self.block_tokens = block_tokens
        self.nr_tiers = nt
        self.tier_blocks = tuple(tier_blocks)

    # ---- lifetime ----

    _what = "BlockManager"

    def _release(self, hd):
        """close(): destroy the manager (every sequence, plan and cached block with it)."""
        self._l.accel_bm_destroy(hd)

    # ---- keys and lookup ----

    def keys(self, tokens, parent=None, extra=b""):
        """The keys of the full blocks of tokens following the block whose
        key is parent (None: a sequence's start), with extra keys (bytes)."""
        tok, n = _tokens(tokens)
        full = n // self.block_tokens
        if not full:
            return Keys(None, 0)
        arr = (Key * full)()
        extra = bytes(extra)
        got = check(self._l.accel_bm_keys(self._h(), _key1(parent), tok, n,
                                          extra or None, len(extra), arr), "accel_bm_keys")
        return Keys(arr, got)

    def lookup(self, keys):
        """How many leading keys of the chain each tier caches: a list, one
        count per tier. No side effect (no reference, no recency change)."""
        p, n, _keep = _keys_arg(keys)
        hits = (c_uint32 * self.nr_tiers)()
        check(self._l.accel_bm_lookup(self._h(), p, n, hits), "accel_bm_lookup")
        return hits[:]

    # ---- sequences ----

    def seq_create(self, tier=0, extra=b"", reserve_tokens=0):
        """A new, empty sequence on tier (its blocks' keys hashed with extra);
        reserve_tokens sizes its tables for that many tokens up front (a hint,
        not a limit; more than the tier holds: E2BIG)."""
        extra = bytes(extra)
        buf = ctypes.create_string_buffer(extra, len(extra)) if extra else None
        o = T.opts(T.SeqOpts, tier=tier,
                   extra_keys=ctypes.cast(buf, ctypes.c_void_p) if buf else None,
                   extra_keys_len=len(extra), reserve_tokens=reserve_tokens)
        s = c_uint32()
        check(self._l.accel_bm_seq_create(self._h(), byref(o), byref(s)), "accel_bm_seq_create")
        return s.value

    def seq_free(self, seq):
        """Release the sequence's blocks (those a pending plan reserves stay so)."""
        check(self._l.accel_bm_seq_free(self._h(), seq), "accel_bm_seq_free")

    def seq_fork(self, seq):
        """A new sequence sharing every block of seq; its id."""
        c = c_uint32()
        check(self._l.accel_bm_seq_fork(self._h(), seq, byref(c)), "accel_bm_seq_fork")
        return c.value

    def seq_start(self, seq, tokens, keys=None):
        """Start an empty sequence with a prompt (keys: its full blocks' keys
        from keys(), or None). Returns the tokens found in the prefix cache."""
        tok, n = _tokens(tokens)
        p, _nk, _keep = _keys_arg(keys)
        cached = c_uint64()
        check(self._l.accel_bm_seq_start(self._h(), seq, tok, n, p, byref(cached)),
              "accel_bm_seq_start")
        return cached.value

    def append(self, seq, tokens, keys=None):
        """Append tokens; a Plan (a one-block copy-on-write) or None."""
        tok, n = _tokens(tokens)
        p, _nk, _keep = _keys_arg(keys)
        runs = (T.Run * 1)()
        plan = T.opts(T.Plan, runs=runs, max_runs=1)
        check(self._l.accel_bm_append(self._h(), seq, tok, n, p, byref(plan)),
              "accel_bm_append")
        return self._plan(plan, runs) if plan.id else None

    def commit(self, seq, up_to_block):
        """The KV of the first up_to_block blocks is written: publish them.
        Returns the blocks published."""
        return check(self._l.accel_bm_commit(self._h(), seq, up_to_block), "accel_bm_commit")

    def truncate(self, seq, n):
        """Drop the last n tokens; returns the blocks released."""
        return check(self._l.accel_bm_truncate(self._h(), seq, n), "accel_bm_truncate")

    def written(self, seq, first_block):
        """The KV of blocks first_block.. was written again without an
        append (a resumed prefill chunk): the copies a move left of them
        are released, so the next move copies them."""
        check(self._l.accel_bm_seq_written(self._h(), seq, first_block), "accel_bm_seq_written")

    def seq_move(self, seq, tier):
        """Move the sequence to tier: a Plan (id 0 if nothing is to copy)."""
        runs = (T.Run * _RUNS)()
        plan = T.opts(T.Plan, runs=runs, max_runs=_RUNS)
        check(self._l.accel_bm_seq_move(self._h(), seq, tier, byref(plan)), "accel_bm_seq_move")
        return self._plan(plan, runs)

    move = seq_move

    # ---- plans ----

    def _plan(self, plan, runs):
        got = min(plan.nr_runs, plan.max_runs)
        out = [runs[i].astuple() for i in range(got)]
        if plan.nr_runs > got:
            out += self.plan_runs(plan.id, got)
        return Plan(plan.id, out, plan.blocks, plan.reused)

    def plan_runs(self, plan_id, first=0):
        """A pending plan's runs from first on, as tuples."""
        bm = self._h()
        total = check(self._l.accel_bm_plan_runs(bm, plan_id, first, None, 0),
                      "accel_bm_plan_runs")
        m = max(total - first, 0)
        if not m:
            return []
        runs = (T.Run * m)()
        check(self._l.accel_bm_plan_runs(bm, plan_id, first, runs, m), "accel_bm_plan_runs")
        return [r.astuple() for r in runs]

    def plan_done(self, plan_id, status=0):
        """Plan plan_id (a Plan or its id) finished: status 0, or -errno
        (or a positive errno) to undo it. Its blocks stop being reserved. A
        Plan with id 0 (nothing to move) is accepted and ignored."""
        if isinstance(plan_id, Plan):
            plan_id = plan_id.id
            if not plan_id:
                return  # nothing was to move
        if status > 0:
            status = -status
        check(self._l.accel_bm_plan_done(self._h(), plan_id, status), "accel_bm_plan_done")

    # ---- reading ----

    def seq_info(self, seq):
        i = T.opts(T.SeqInfo)
        check(self._l.accel_bm_seq_info(self._h(), seq, byref(i)), "accel_bm_seq_info")
        return SeqInfo(i.tier, i.nr_blocks, i.nr_tokens, i.nr_committed, i.plan_id)

    def seq_keys(self, seq, first=0, n=None):
        """Keys of the sequence's blocks [first, first + n) (zeros: not full)."""
        if n is None:
            n = max(self.seq_info(seq).nr_blocks - first, 0)
        arr = (Key * n)() if n else None
        check(self._l.accel_bm_seq_keys(self._h(), seq, first, n, arr), "accel_bm_seq_keys")
        return Keys(arr, n)

    def block_tables(self, seqs, tiers=False, max_ids=None):
        """The block tables of seqs in one array: (offsets, ids), both
        array.array('I'); ids[offsets[i]:offsets[i + 1]] is seqs[i]'s table.
        With tiers=True, (offsets, ids, tiers)."""
        bm = self._h()
        if not isinstance(seqs, array.array) or seqs.typecode != "I":
            seqs = array.array("I", seqs)
        n = len(seqs)
        offsets = array.array("I", bytes(4 * (n + 1)))
        tr = array.array("I", bytes(4 * n)) if tiers else None
        if max_ids is None:
            max_ids = 256 * max(n, 1)
        cs = (c_uint32 * max(n, 1)).from_buffer(seqs) if n else None
        co = (c_uint32 * (n + 1)).from_buffer(offsets)
        ct = (c_uint32 * n).from_buffer(tr) if tiers and n else None
        while True:
            ids = array.array("I", bytes(4 * max_ids))
            ci = (c_uint32 * max_ids).from_buffer(ids) if max_ids else None
            ret = self._l.accel_bm_block_tables(bm, cs, n, co, ci, max_ids, ct)
            if ret != -105:  # ENOBUFS: offsets[n] says how many
                break
            max_ids = offsets[n]
            del ci
        total = check(ret, "accel_bm_block_tables")
        del ci, co, cs, ct  # release the buffer exports before resizing
        del ids[total:]
        return (offsets, ids, tr) if tiers else (offsets, ids)

    def evict(self, tier, n):
        """Make up to n more blocks of tier free (cached blocks no one
        references, then copies moves left there); returns how many."""
        return check(self._l.accel_bm_evict(self._h(), tier, n), "accel_bm_evict")

    def tier_stats(self, tier):
        st = T.opts(T.TierStats)
        check(self._l.accel_bm_tier_stats(self._h(), tier, byref(st)), "accel_bm_tier_stats")
        return TierStats(*(getattr(st, f) for f in TierStats._fields))
