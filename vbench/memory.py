"""Shared memory as a byte arena, with a cache-line tracker on every access.

A model never touches the arena's bytes directly: it calls the ``ld*``/``st*`` accessors
here, which (1) read or write the little-endian field through a typed view of the same buffer
and (2) count the coherence traffic the access causes on its 64-byte line (misses and
invalidations, the MESI rules below). That is how layout quirks (an ``avail_event`` sharing a line with used
elements, an IOQ descriptor straddling two lines) become costs without anyone assuming them.

Line state (one int64 word per line, kept after the counters in the tracker array): bits 0-1
last writer (0 nobody, 1 driver, 2 device); bit 2 the driver holds a valid copy; bit 3 the
device does; bit 4 the line was ever touched. With two caches that is MESI: a side holding the
line alone after writing it has it Modified, both holding it have it Shared, a side without
the bit has it Invalid. What each access costs:

- a read by side s of a line it holds: a hit (a busy-polling side pays once per change, not per
  poll);
- a read by s of a line the other side wrote last and s does not hold: a **miss**
  (``lines_driver``/``lines_device``): the data comes from the other cache, both then share it;
- a write by s to a line it does not hold and the other side wrote last: a miss too (a read for
  ownership: the data comes from the other cache, whose copy is invalidated in the same
  transaction);
- a write by s to a line it holds while the other side holds a copy too: an **invalidation**
  (``lines_invalidated_*``): no data moves, but the write must wait for the other cache to
  drop its copy (an upgrade from Shared to Modified), e.g. the driver writing the next avail
  entry in a line the device has just read;
- a write by s to a line it holds alone, or to a line never touched: free (a first touch
  counts in ``lines_touched``).

The same accessors also run a model on real shared memory between two threads (the native
engine): handed a uint64 view of the arena instead of the bytes, they compile to acquire
loads, release stores and real fences, without line tracking (see "two arena flavours" below).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from vbench.counters import (
    AREA_BASE,
    AREA_INVALIDATED_DRV,
    AREA_MISS_DRV,
    C_INVALIDATED_DRV,
    C_LINES_DRV,
    C_LINES_TOUCHED,
    C_MB_DRV,
    C_RMB,
    C_WMB,
    LINE_BASE,
)
from vbench.jit import lock_cache_saves
from vbench.native import atomics as A

lock_cache_saves()  # every compiling module imports this one (see vbench/jit.py, point 3)

LINE_SHIFT = 6
_AREA_SHIFT = 8  # a line state word: MESI bits below, the line's area index from here up
_STATE_MASK = (1 << _AREA_SHIFT) - 1

# Guest-physical addresses: the arena (rings, tables, pools) sits at ARENA_GPA; payload buffers
# of request r start at DATA_GPA + r * DATA_STRIDE. The device recovers r from the addresses it
# reads in shared memory, as a real device finds its buffers.
ARENA_GPA = 1 << 32
DATA_GPA = 1 << 40
DATA_SHIFT = 24
DATA_STRIDE = 1 << DATA_SHIFT  # 16 MiB: the largest request the workload may ask for
MAX_REQUEST_BYTES = DATA_STRIDE


def new_mem(size: int) -> np.ndarray:
    """A zeroed byte arena of ``size`` bytes, rounded up to whole lines."""
    return np.zeros(max(64, -(-size // 64) * 64), dtype=np.uint8)


def new_tracker(mem: np.ndarray, line_areas: np.ndarray | None = None) -> np.ndarray:
    """The int64 accounting array for ``mem``: the counters, the per-area counts, then one
    state word per line (its MESI bits low, its area's index from ``line_areas`` above bit 8).

    Keeping the line states behind the counters (at the compile-time constant LINE_BASE)
    rather than in the arena keeps the arena a plain byte image of shared memory and lets
    every access find its line state without arithmetic on the arena's size.
    """
    tracker = np.zeros(LINE_BASE + (mem.shape[0] >> LINE_SHIFT), dtype=np.int64)
    if line_areas is not None:
        tracker[LINE_BASE:] = line_areas.astype(np.int64) << _AREA_SHIFT
    return tracker


def view(mem: np.ndarray, dtype: type) -> np.ndarray:
    """A little-endian typed view of the arena, for set-up and audits (Python side)."""
    return mem.view(np.dtype(dtype).newbyteorder("<"))


# --- the accessors: one name, two arena flavours --------------------------------------------------
# A model's operations call ld*/st*/touch/mb/wmb/rmb and never look at the arena's type: the
# flavour is decided at compile time from the arena's element type (``_native(mem)`` is the
# constant True or False of that type, so LLVM drops the other flavour's branch), so the same
# model code is both the simulation and the real thing:
#
# - a **uint8** arena (``new_mem``) is the simulation: plain little-endian loads and stores, a
#   line transfer charged on every access (``touch``), barriers only counted;
# - a **uint64** arena (``native_arena(mem)``: the same bytes seen as words) is a native run on
#   two threads (:mod:`vbench.native`): no line tracking (the hardware does the transfers),
#   every load an acquire and every store a release (LLVM atomics: never hoisted out of a
#   spin loop nor reordered across each other; plain ``mov`` on x86), ``mb`` a real full
#   fence (the store-then-load of every notification re-check), ``wmb``/``rmb`` compiler
#   barriers (TSO orders store-store and load-load). Each side counts in its own ``ctr``.
#
# (Plain @njit functions with a folded branch, not per-flavour overloads: the simulation's
# code is then what it was, and so is its speed. The barriers take the arena only to know the
# flavour; they are inlined in numba's IR so that passing it costs no reference counting.)


def _native(mem):  # noqa: D103 (a stub: the overload below gives the constant)
    raise TypeError("jitted code only")


@overload(_native, inline="always")
def _native_of(mem):
    # not ``mem.itemsize == 8``: numba reads itemsize from the array at run time, and the test
    # left in every accessor halved the simulation's speed
    if getattr(mem, "dtype", None) == types.uint64:
        return lambda mem: True
    return lambda mem: False


def aligned_zeros(nbytes: int, align: int = 4096) -> np.ndarray:
    """``nbytes`` zeroed bytes starting on an ``align``-byte boundary (numpy itself promises
    only 16): shared memory for real threads must sit on real cache lines."""
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + nbytes]  # keeps ``raw`` alive as its base


def native_arena(mem: np.ndarray) -> np.ndarray:
    """The native flavour of byte arena ``mem``: a page-aligned copy seen as uint64 words.

    Page alignment makes the layout's 64-byte lines the hardware's lines (so the line quirks the
    simulation charges are the ones the native run pays) and keeps every naturally aligned
    field naturally aligned, which the atomic accessors need. ``new_mem`` sizes arenas in whole
    lines, so the word view always exists; its ``.view(np.uint8)`` is the same memory as bytes
    (for a model's audit after the run)."""
    out = aligned_zeros(mem.shape[0])
    out[:] = mem
    return out.view(np.uint64)


def _transitions() -> np.ndarray:
    """The MESI rules above as a table, for :func:`touch`: the entry at
    ``(state << 2) | (side << 1) | write`` packs the line's next state (bits 0-7), the counter
    the access adds to (bits 8-15) and how much (bit 24: one or nothing), and the kind of area
    count it adds to (bits 16-17) and how much (bit 26).

    A table rather than branches: every access inlines ``touch``, and with the per-area counts
    its branches made the accessors too big for LLVM to inline them into the engine's loop,
    which halved the simulator's speed; a lookup and two unconditional adds keep them small."""
    table = np.zeros(32 * 4, dtype=np.int64)
    for state, side, write in np.ndindex(32, 2, 2):
        writer, have, other = state & 3, 4 << side, 4 << (1 - side)
        after = (side + 1) | have | 16 if write else state | have | 16
        counter = area_kind = counts = area_counts = 0
        if (state == after) if write else (state & have):
            after = state  # a hit (touch returns before the table; kept for completeness)
        elif state == 0:
            counter, counts = C_LINES_TOUCHED, 1  # first touch: no area count
        elif writer not in (0, side + 1) and not state & have:
            # a miss: a read, or a write's read for ownership
            counter, area_kind = C_LINES_DRV + side, AREA_MISS_DRV + side
            counts = area_counts = 1
        elif write and state & other:
            # Shared -> Modified: an upgrade
            counter, area_kind = C_INVALIDATED_DRV + side, AREA_INVALIDATED_DRV + side
            counts = area_counts = 1
        entry = after | counter << 8 | area_kind << 16 | counts << 24 | area_counts << 26
        table[(state << 2) | (side << 1) | write] = entry
    return table


_TRANSITION = _transitions()


@njit
def touch(mem, ctr, side, off, write):
    """Account one access by ``side`` (0 driver, 1 device) to the line holding byte ``off``."""
    if _native(mem):
        return  # native: the cache hierarchy does the real transfers; nothing to account
    # unsigned indexes: numba then skips its negative-index wraparound test, which otherwise
    # costs a compare and a select per access and stops LLVM from merging byte loads
    li = np.uint64(LINE_BASE + (off >> LINE_SHIFT))
    word = ctr[li]
    st = word & _STATE_MASK
    if write:
        if st == (side + 1) | (4 << side) | 16:
            return  # already ours alone (Modified): the common case, nothing changes
    elif st & (4 << side):
        return  # we hold the current version: a cache hit
    entry = _TRANSITION[np.uint64((st << 2) | (side << 1) | (1 if write else 0))]
    ctr[np.uint64((entry >> 8) & 0xFF)] += (entry >> 24) & 1
    area_slot = AREA_BASE + 4 * (word >> _AREA_SHIFT) + ((entry >> 16) & 3)
    ctr[np.uint64(area_slot)] += (entry >> 26) & 1
    ctr[li] = (word - st) | (entry & 0xFF)


@njit
def _get(mem, off, nbytes):
    """Little-endian load of ``nbytes`` at ``off``: LLVM merges it into one (unaligned) load."""
    v = np.int64(0)
    for k in range(nbytes):
        v |= np.int64(mem[np.uint64(off + k)]) << (8 * k)
    return v


@njit
def _put(mem, off, nbytes, v):
    """Little-endian store of ``nbytes`` at ``off``: LLVM merges it into one store."""
    for k in range(nbytes):
        mem[np.uint64(off + k)] = np.uint8((v >> (8 * k)) & 0xFF)


# In each accessor the native branch comes first: an acquire load (later accesses stay after
# it) or a release store (earlier accesses are visible before it) of the field's width.
@njit
def ld8(mem, ctr, side, off):
    if _native(mem):
        return A.ld_acquire_8(mem, off)
    touch(mem, ctr, side, off, False)
    return np.int64(mem[np.uint64(off)])


@njit
def st8(mem, ctr, side, off, v):
    if _native(mem):
        A.st_release_8(mem, off, v)
        return
    touch(mem, ctr, side, off, True)
    mem[np.uint64(off)] = np.uint8(v & 0xFF)


@njit
def ld16(mem, ctr, side, off):
    if _native(mem):
        return A.ld_acquire_16(mem, off)
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 2)


@njit
def st16(mem, ctr, side, off, v):
    if _native(mem):
        A.st_release_16(mem, off, v)
        return
    touch(mem, ctr, side, off, True)
    _put(mem, off, 2, v)


@njit
def ld32(mem, ctr, side, off):
    if _native(mem):
        return A.ld_acquire_32(mem, off)
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 4)


@njit
def st32(mem, ctr, side, off, v):
    if _native(mem):
        A.st_release_32(mem, off, v)
        return
    touch(mem, ctr, side, off, True)
    _put(mem, off, 4, v)


@njit
def ld64(mem, ctr, side, off):
    if _native(mem):
        return A.ld_acquire_64(mem, off)
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 8)


@njit
def st64(mem, ctr, side, off, v):
    if _native(mem):
        A.st_release_64(mem, off, v)
        return
    touch(mem, ctr, side, off, True)
    _put(mem, off, 8, v)


@njit(inline="always")
def mb(mem, ctr, side):
    """Full barrier (a locked op on x86): counted per side, charged by the preset. Native: a
    real fence, pairing with the peer's: my store (an index, a flag) is globally visible before
    my next load (the peer's event index or flag): the store-buffering order x86 does not keep."""
    if _native(mem):
        A.fence()
    ctr[np.uint64(C_MB_DRV + side)] += 1


@njit(inline="always")
def wmb(mem, ctr):
    """Write barrier: a compiler barrier on x86 (TSO); counted, not charged."""
    if _native(mem):
        A.compiler_barrier()  # release stores already keep store-store order
    ctr[C_WMB] += 1


@njit(inline="always")
def rmb(mem, ctr):
    """Read barrier: a compiler barrier on x86 (TSO); counted, not charged."""
    if _native(mem):
        A.compiler_barrier()  # acquire loads already keep load-load order
    ctr[C_RMB] += 1


@njit
def need_event(event, new, old):
    """``vring_need_event``: notify iff ``event`` is one of the entries old .. new-1 (u16)."""
    return ((new - event - 1) & 0xFFFF) < ((new - old) & 0xFFFF)


@njit
def seg_len(size, segs, j):
    """Length of segment j when ``size`` bytes are split into ``segs`` near-equal pieces (one
    segment answered without the division: a native add pays for every instruction here)."""
    if segs == 1:
        return size
    base = size // segs
    return base + (1 if j < size - base * segs else 0)


@njit
def seg_addr(req, size, segs, j):
    """Guest-physical address of segment j of request ``req``."""
    if segs == 1:
        return DATA_GPA + (req << DATA_SHIFT)
    base = size // segs
    rem = size - base * segs
    return DATA_GPA + (req << DATA_SHIFT) + j * base + min(j, rem)


@njit
def req_of_addr(addr):
    """The request a payload address belongs to (-1 if it is not a payload address)."""
    if addr < DATA_GPA:
        return -1
    return (addr - DATA_GPA) >> DATA_SHIFT
