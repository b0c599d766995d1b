"""Shared memory as a byte arena, with a cache-line tracker on every access.

A model never touches the arena's bytes directly: it calls the ``ld*``/``st*`` accessors
here, which (1) read or write the little-endian field through a typed view of the same buffer
and (2) charge a line transfer when the accessing side touches a 64-byte line last written by
the other side. That is how layout quirks (an ``avail_event`` sharing a line with used
elements, an IOQ descriptor straddling two lines) become costs without anyone assuming them.

Line state (one uint8 per line): bits 0-1 last writer (0 nobody, 1 driver, 2 device); bit 2 the
driver holds the current version; bit 3 the device does; bit 4 the line was ever touched.
A read by side s of a line last written by the other side is a transfer unless s already holds
that version (a re-read of an unchanged line hits in s's cache, so a busy-polling side pays once
per change, not per poll); a write by s to a line last written by the other side is always a
transfer (the line must be fetched for ownership).
"""

from __future__ import annotations

import numpy as np
from numba import njit

import vbench.jit  # noqa: F401  (sets the numba cache directory first)
from vbench.counters import C_LINES_DRV, C_LINES_TOUCHED, C_MB_DRV, C_RMB, C_WMB

LINE_SHIFT = 6

# Guest-physical addresses: the arena (rings, tables, pools) sits at ARENA_GPA; payload buffers
# of request r start at DATA_GPA + r * DATA_STRIDE. The device recovers r from the addresses it
# reads in shared memory, as a real device finds its buffers.
ARENA_GPA = 1 << 32
DATA_GPA = 1 << 40
DATA_SHIFT = 24
DATA_STRIDE = 1 << DATA_SHIFT  # 16 MiB: the largest request the workload may ask for
MAX_REQUEST_BYTES = DATA_STRIDE


def new_mem(size: int) -> np.ndarray:
    """A zeroed arena of ``size`` bytes (rounded up to whole lines), line states appended.

    One flat uint8 array holds the shared bytes followed by one state byte per line: passing a
    single array keeps every jitted access free of reference-count traffic (a tuple of views
    cost ~40 ns per access).
    """
    nbytes = max(64, -(-size // 64) * 64)
    return np.zeros(nbytes + (nbytes >> LINE_SHIFT), dtype=np.uint8)


def arena_size(mem: np.ndarray) -> int:
    """Bytes of shared memory in ``mem`` (without the line states)."""
    return (mem.shape[0] // 65) * 64


def view(mem: np.ndarray, dtype: type) -> np.ndarray:
    """A little-endian typed view of the shared bytes, for set-up and audits (Python side)."""
    return mem[: arena_size(mem)].view(np.dtype(dtype).newbyteorder("<"))


def line_states(mem: np.ndarray) -> np.ndarray:
    return mem[arena_size(mem) :]


@njit(inline="always")
def touch(mem, ctr, side, off, write):
    """Account one access by ``side`` (0 driver, 1 device) to the line holding byte ``off``."""
    li = (mem.shape[0] // 65) * 64 + (off >> LINE_SHIFT)
    st = np.int64(mem[li])
    if st == 0:
        ctr[C_LINES_TOUCHED] += 1
    writer = st & 3
    mine = side + 1
    have = (st >> (2 + side)) & 1
    if writer != 0 and writer != mine and (write or have == 0):
        ctr[C_LINES_DRV + side] += 1
    if write:
        mem[li] = np.uint8(mine | (1 << (2 + side)) | 16)
    else:
        mem[li] = np.uint8(st | (1 << (2 + side)) | 16)


@njit(inline="always")
def _get(mem, off, nbytes):
    v = np.int64(0)
    for k in range(nbytes):
        v |= np.int64(mem[off + k]) << (8 * k)
    return v


@njit(inline="always")
def _put(mem, off, nbytes, v):
    for k in range(nbytes):
        mem[off + k] = np.uint8((v >> (8 * k)) & 0xFF)


@njit(inline="always")
def ld8(mem, ctr, side, off):
    touch(mem, ctr, side, off, False)
    return np.int64(mem[off])


@njit(inline="always")
def st8(mem, ctr, side, off, v):
    touch(mem, ctr, side, off, True)
    mem[off] = np.uint8(v & 0xFF)


@njit(inline="always")
def ld16(mem, ctr, side, off):
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 2)


@njit(inline="always")
def st16(mem, ctr, side, off, v):
    touch(mem, ctr, side, off, True)
    _put(mem, off, 2, v)


@njit(inline="always")
def ld32(mem, ctr, side, off):
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 4)


@njit(inline="always")
def st32(mem, ctr, side, off, v):
    touch(mem, ctr, side, off, True)
    _put(mem, off, 4, v)


@njit(inline="always")
def ld64(mem, ctr, side, off):
    touch(mem, ctr, side, off, False)
    return _get(mem, off, 8)


@njit(inline="always")
def st64(mem, ctr, side, off, v):
    touch(mem, ctr, side, off, True)
    _put(mem, off, 8, v)


@njit(inline="always")
def mb(ctr, side):
    """Full barrier (a locked op on x86): counted per side, charged by the preset."""
    ctr[C_MB_DRV + side] += 1


@njit(inline="always")
def wmb(ctr):
    """Write barrier: a compiler barrier on x86 (TSO); counted, not charged."""
    ctr[C_WMB] += 1


@njit(inline="always")
def rmb(ctr):
    """Read barrier: a compiler barrier on x86 (TSO); counted, not charged."""
    ctr[C_RMB] += 1


@njit(inline="always")
def need_event(event, new, old):
    """``vring_need_event``: notify iff ``event`` is one of the entries old .. new-1 (u16)."""
    return ((new - event - 1) & 0xFFFF) < ((new - old) & 0xFFFF)


@njit(inline="always")
def seg_len(size, segs, j):
    """Length of segment j when ``size`` bytes are split into ``segs`` near-equal pieces."""
    base = size // segs
    return base + (1 if j < size - base * segs else 0)


@njit(inline="always")
def seg_addr(req, size, segs, j):
    """Guest-physical address of segment j of request ``req``."""
    base = size // segs
    rem = size - base * segs
    return DATA_GPA + (req << DATA_SHIFT) + j * base + min(j, rem)


@njit(inline="always")
def req_of_addr(addr):
    """The request a payload address belongs to (-1 if it is not a payload address)."""
    if addr < DATA_GPA:
        return -1
    return (addr - DATA_GPA) >> DATA_SHIFT
