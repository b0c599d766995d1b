"""Store buffering on this machine: the one reordering x86 does, and the fence that stops it.

Two pinned threads, many rounds, each round started together through a barrier:

    thread 0: x = 1; [fence]; r0 = y        thread 1: y = 1; [fence]; r1 = x

Sequential consistency forbids r0 == r1 == 0 (one store came first, so its thread's peer must
see it). x86's store buffer allows it without a fence: each store is still in its own core's
buffer when the other core's load runs. The native engine's ``mb`` (``atomics.fence``) sits
exactly there (publish an index, then read the peer's event index), so this test is the proof
that it is needed and sufficient. Reorderings without the fence are reported (they depend on
timing and the machine), never asserted; with the fence none may occur.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from numba import njit

from vbench.native import atomics, sysio

ROUNDS = 100_000
# words: x at 0 and y at 8 (one cache line each), the barrier counter at 16
X, Y, BAR = 0, 8, 16
SPIN_LIMIT = 50_000_000  # spins per barrier before a thread gives up (a descheduled peer)


@njit(nogil=True)
def _barrier(w, target):
    """Arrive, then wait until both threads have: False if the peer never came."""
    atomics.fetch_add(w, BAR, 1)
    spins = 0
    while atomics.load_acquire(w, BAR) < target:
        atomics.cpu_relax()
        spins += 1
        if spins > SPIN_LIMIT:
            return False
    return True


@njit(nogil=True, cache=True)
def _side(w, me, rounds, fenced, seed, out):
    """One thread's part: ``out[i]`` = what it read in round i; returns rounds completed."""
    mine = X if me == 0 else Y
    other = Y if me == 0 else X
    rng = np.uint64(seed)
    for i in range(rounds):
        if not _barrier(w, 2 * (2 * i + 1)):
            return i
        # a small random delay so that the two stores meet in every relative timing
        rng = rng * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
        for _ in range((rng >> np.uint64(60)) & np.uint64(7)):
            atomics.cpu_relax()
        atomics.store_relaxed(w, mine, 1)
        if fenced:
            atomics.fence()
        else:
            atomics.compiler_barrier()  # only the hardware may reorder, not the compiler
        out[i] = atomics.load_relaxed(w, other)
        if not _barrier(w, 2 * (2 * i + 2)):
            return i
        atomics.store_relaxed(w, mine, 0)  # visible to the peer before its next barrier arrival
    return rounds


def _run(fenced: bool, rounds: int = ROUNDS) -> tuple[int, int]:
    """(rounds where both threads read 0, rounds completed by both)."""
    pair = sysio.cpu_pair()
    assert pair is not None
    w = np.zeros(32, dtype=np.int64)
    outs = [np.full(rounds, -1, dtype=np.int64) for _ in range(2)]
    done = [0, 0]
    _side(np.zeros(32, dtype=np.int64), 0, 0, fenced, 1, outs[0])  # compile before threads

    def body(me: int) -> None:
        sysio.pin_current_thread(pair[me])
        done[me] = _side(w, me, rounds, fenced, 12345 + 777 * me, outs[me])

    threads = [threading.Thread(target=body, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = min(done)
    both_zero = int(np.sum((outs[0][:n] == 0) & (outs[1][:n] == 0)))
    return both_zero, n


needs_two_cpus = pytest.mark.skipif(
    sysio.cpu_pair() is None, reason="store buffering needs two CPUs"
)


@needs_two_cpus
def test_store_buffering_without_fence_is_reported(record_property):
    both_zero, n = _run(fenced=False)
    assert n > 0  # the barrier worked at all
    record_property("sb_reorderings_without_fence", both_zero)
    record_property("sb_rounds_without_fence", n)
    print(f"store buffering without a fence: r0 == r1 == 0 in {both_zero} of {n} rounds")


@needs_two_cpus
def test_full_fence_forbids_store_buffering(record_property):
    both_zero, n = _run(fenced=True)
    assert n > ROUNDS // 2  # enough rounds ran to mean something
    record_property("sb_reorderings_with_fence", both_zero)
    assert both_zero == 0, f"{both_zero} store-buffering outcomes in {n} rounds despite the fence"


def test_primitives_values():
    """The element and byte-arena forms read and write what they say (little-endian, widths)."""

    @njit
    def f(a, arena):
        atomics.store_release(a, 0, 5)
        atomics.store_relaxed(a, 1, atomics.load_acquire(a, 0) + 1)
        old = atomics.fetch_add(a, 2, 10)
        atomics.st_release_16(arena, 2, 0x1234)
        atomics.st_release_8(arena, 9, 0x1FF)  # truncated to the field's width
        atomics.st_release_32(arena, 12, -1)
        atomics.st_release_64(arena, 16, -2)
        return (
            atomics.load_relaxed(a, 1),
            old,
            atomics.ld_acquire_16(arena, 2),
            atomics.ld_acquire_8(arena, 9),
            atomics.ld_acquire_32(arena, 12),
            atomics.ld_acquire_64(arena, 16),
            atomics.rdtsc() > 0,
        )

    a = np.array([0, 0, 7, 0], dtype=np.int64)
    mem = np.zeros(64, dtype=np.uint8)
    got = f(a, mem.view(np.uint64))
    assert got == (6, 7, 0x1234, 0xFF, 0xFFFFFFFF, -2, True)
    assert a[2] == 17
    assert bytes(mem[:24]) == bytes.fromhex("000034120000000000ff0000fffffffffeffffffffffffff")
