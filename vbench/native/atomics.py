"""Memory-ordering primitives for two threads sharing a ring: acquire, release, fences.

Why these exist: numba compiles a plain ``a[i]`` load to an ordinary LLVM load, which LLVM may
keep in a register for a whole spin loop (hoisting it out: the loop never sees the peer's
store and hangs) and may reorder freely against other plain accesses. The primitives below are
LLVM *atomic* operations with an explicit ordering, emitted through numba intrinsics, so the
compiler keeps every one of them and orders the surrounding accesses as the C11 model says:

- ``load_acquire`` / ``st_release_*``: the message-passing pair. A release store makes every
  earlier access of its thread visible before the stored value; an acquire load that reads it
  sees them all. On x86-64 (TSO) both compile to a plain ``mov``: the ordering costs nothing
  but the compiler's freedom.
- ``fence``: a full sequentially consistent fence (``mfence`` or a locked op on x86). Needed
  only for store-then-load across threads ("publish my index, then check whether the peer
  wants a notification"): TSO lets a load pass an earlier store to another address, the one
  reordering x86 does, and the lost-wakeup races of every ring are exactly that pattern.
  ``tests/test_litmus.py`` shows it on this machine.
- ``compiler_barrier``: no instruction, only the compiler may not move memory accesses across
  it (``wmb``/``rmb`` on x86, where TSO already orders store-store and load-load).
- ``load_relaxed`` / ``store_relaxed``: atomic but unordered: a stop flag or a statistic
  that must be re-read on every loop iteration but orders nothing.
- ``fetch_add``: a sequentially consistent read-modify-write (``lock xadd``).
- ``cpu_relax``: ``pause`` in a spin loop (saves power, frees the sibling hyper-thread, avoids
  the memory-order machine clear on loop exit); ``rdtsc``: the time-stamp counter.

Element forms take a 1-D int64 or uint64 array and an element index. Byte-arena forms
(``ld_acquire_{8,16,32,64}``, ``st_release_{8,16,32,64}``) take the native arena (a uint64
view of a model's byte arena) and a *byte* offset, and access a little-endian field of that
width there; a field must be naturally aligned (LLVM atomics require it, and an x86 access
that straddles two cache lines is not atomic): :func:`vbench.native.runner.check_alignment`
verifies every field of a model's layout before a run. Loads zero-extend to int64, as the
simulation's accessors in :mod:`vbench.memory` do.

All are usable from ``@njit(nogil=True)`` code (none touches the GIL or Python objects).
x86-64 first: on another architecture the fences are still correct (LLVM lowers them), the
pause becomes ``yield`` on AArch64 and nothing elsewhere.
"""

from __future__ import annotations

import platform

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# numba's JIT initialises LLVM's native target and asm printer but not its asm parser, which
# inline asm (pause, the compiler barrier) needs to be assembled: without it LLVM aborts.
llvm.initialize_native_asmparser()

_I64 = ir.IntType(64)
_ARCH = platform.machine().lower()
_PAUSE = (
    "pause"
    if _ARCH in ("x86_64", "amd64", "i686", "i386")
    else ("yield" if _ARCH in ("aarch64", "arm64") else "")
)


def _word_array(a: types.Type) -> bool:
    return isinstance(a, types.Array) and a.ndim == 1 and a.dtype in (types.int64, types.uint64)


def _any_array(a: types.Type) -> bool:
    # the byte-arena forms accept any 1-D array: vbench.memory's accessors type them for the
    # simulation's uint8 arena too, in a branch that is never taken there (folded away)
    return isinstance(a, types.Array) and a.ndim == 1


def _elem_ptr(context, builder, aryty, ary_val, idx_val, idx_ty):
    """Pointer to element ``idx`` of a 1-D array (no bounds check, no wraparound)."""
    ary = context.make_array(aryty)(context, builder, ary_val)
    idx = context.cast(builder, idx_val, idx_ty, types.intp)
    return builder.gep(ary.data, [idx])


def _byte_ptr(context, builder, aryty, ary_val, off_val, off_ty, bits):
    """Pointer to an ``bits``-wide field at byte offset ``off`` of an array's data."""
    ary = context.make_array(aryty)(context, builder, ary_val)
    base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
    off = context.cast(builder, off_val, off_ty, types.intp)
    return builder.bitcast(builder.gep(base, [off]), ir.IntType(bits).as_pointer())


# --- element forms ---------------------------------------------------------------------------
def _make_load(ordering: str):
    @intrinsic
    def _load(typingctx, a, i):
        if not (_word_array(a) and isinstance(i, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
            return builder.load_atomic(ptr, ordering, 8)

        return a.dtype(a, i), codegen

    return _load


def _make_store(ordering: str):
    @intrinsic
    def _store(typingctx, a, i, v):
        if not (
            _word_array(a)
            and isinstance(i, types.Integer)
            and isinstance(v, (types.Integer, types.Boolean))
        ):
            return None

        def codegen(context, builder, sig, args):
            ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
            val = context.cast(builder, args[2], sig.args[2], sig.args[0].dtype)
            builder.store_atomic(val, ptr, ordering, 8)
            return context.get_dummy_value()

        return types.void(a, i, v), codegen

    return _store


load_acquire = _make_load("acquire")
load_relaxed = _make_load("monotonic")
store_release = _make_store("release")
store_relaxed = _make_store("monotonic")


@intrinsic
def fetch_add(typingctx, a, i, v):
    """Sequentially consistent ``a[i] += v``; returns the old value (``lock xadd``)."""
    if not (_word_array(a) and isinstance(i, types.Integer) and isinstance(v, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        val = context.cast(builder, args[2], sig.args[2], sig.args[0].dtype)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return a.dtype(a, i, v), codegen


# --- fences, pause, cycle counter ----------------------------------------------------------------
@intrinsic
def fence(typingctx):
    """Full sequentially consistent fence: no load moves above an earlier store (mfence)."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


def _asm_void(builder, text: str) -> None:
    fty = ir.FunctionType(ir.VoidType(), [])
    builder.asm(fty, text, "~{memory}", [], True)


@intrinsic
def compiler_barrier(typingctx):
    """No instruction; the compiler may not move memory accesses across it."""

    def codegen(context, builder, sig, args):
        _asm_void(builder, "")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cpu_relax(typingctx):
    """``pause`` (x86) / ``yield`` (AArch64): the body of every spin loop; also a compiler
    barrier, as Linux's ``cpu_relax``."""

    def codegen(context, builder, sig, args):
        _asm_void(builder, _PAUSE)
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def rdtsc(typingctx):
    """The time-stamp counter (``llvm.readcyclecounter``: ``rdtsc`` on x86), as int64."""

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_I64, []), "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return types.int64(), codegen


# --- byte-arena forms ----------------------------------------------------------------------------
def _make_ld(bits: int):
    @intrinsic
    def _ld(typingctx, arena, off):
        if not (_any_array(arena) and isinstance(off, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            p = _byte_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1], bits)
            v = builder.load_atomic(p, "acquire", bits // 8)
            return v if bits == 64 else builder.zext(v, _I64)

        return types.int64(arena, off), codegen

    return _ld


def _make_st(bits: int):
    @intrinsic
    def _st(typingctx, arena, off, v):
        if not (
            _any_array(arena)
            and isinstance(off, types.Integer)
            and isinstance(v, (types.Integer, types.Boolean))
        ):
            return None

        def codegen(context, builder, sig, args):
            p = _byte_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1], bits)
            val = context.cast(builder, args[2], sig.args[2], types.int64)
            if bits < 64:
                val = builder.trunc(val, ir.IntType(bits))
            builder.store_atomic(val, p, "release", bits // 8)
            return context.get_dummy_value()

        return types.void(arena, off, v), codegen

    return _st


ld_acquire_8 = _make_ld(8)
ld_acquire_16 = _make_ld(16)
ld_acquire_32 = _make_ld(32)
ld_acquire_64 = _make_ld(64)
st_release_8 = _make_st(8)
st_release_16 = _make_st(16)
st_release_32 = _make_st(32)
st_release_64 = _make_st(64)
