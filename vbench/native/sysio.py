"""The operating-system calls of the native engine: eventfds, polling, pinning, the clock.

The native engine runs a model's driver and device on two OS threads that notify each other the
way KVM's ioeventfd (kick) and irqfd (call) do: by writing to an eventfd, which a sleeping
peer waits on with poll(2). This module is the one place that talks to the kernel for that.

Two halves:

- **Python side** (called before the threads start): :func:`eventfd`, :func:`close`,
  :func:`pin_current_thread`, :func:`cpu_pair`.
- **Jitted side** (``@njit``, callable from nopython code with the GIL released):
  :func:`efd_signal`, :func:`efd_take`, :func:`efd_wait`, :func:`monotonic_ns`.

Why not ctypes function pointers in the jitted side: numba embeds a ctypes pointer's address
as a constant ("dynamic global"), and refuses to cache any function that reaches one, so every
native entry point would recompile on every run. Instead each libc function is registered once
under a private symbol name (``vbench_sysio_<name>``) with llvmlite's ``add_symbol`` at import
time, and small intrinsics declare and call that symbol: the cached object code refers to the
name, which is bound again to the current process's libc whenever this module is imported.
Importing this module is therefore required before loading any cached code that uses it
(importing the module that calls these functions does that).

Errors come back as ``-errno`` (a negative int64), never as exceptions: the jitted loops run
without the GIL and must decide themselves what an error means.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import llvmlite.binding as ll
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from vbench.errors import VbenchError

# --- libc symbols, bound by name so cached code stays valid ------------------------------------
_PREFIX = "vbench_sysio_"
_LIBC_FUNCS = ("write", "read", "ppoll", "clock_gettime", "__errno_location")

_libc = ctypes.CDLL(None, use_errno=True)
for _name in _LIBC_FUNCS:
    ll.add_symbol(_PREFIX + _name, ctypes.cast(getattr(_libc, _name), ctypes.c_void_p).value)

_I16 = ir.IntType(16)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VOIDP = ir.IntType(8).as_pointer()
_TIMESPEC = ir.LiteralStructType([_I64, _I64])  # struct timespec {time_t tv_sec; long tv_nsec}
_POLLFD = ir.LiteralStructType([_I32, _I16, _I16])  # struct pollfd {int fd; short events, revents}

CLOCK_MONOTONIC = 1
POLLIN = 0x001
EAGAIN = 11
EINTR = 4
EBADF = 9


def _libc_fn(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ret, args), _PREFIX + name
    )


def _ret_or_errno(builder: ir.IRBuilder, ret: ir.Value) -> ir.Value:
    """``ret`` if it is >= 0, else ``-errno`` (read right after the call, on this thread)."""
    errno_fn = _libc_fn(builder, "__errno_location", _I32.as_pointer(), [])
    out = cgutils.alloca_once_value(builder, ret)
    with builder.if_then(builder.icmp_signed("<", ret, ir.Constant(_I64, 0)), likely=False):
        err = builder.sext(builder.load(builder.call(errno_fn, [])), _I64)
        builder.store(builder.neg(err), out)
    return builder.load(out)


@intrinsic
def _write_u64(typingctx, fd, value):  # type: ignore[no-untyped-def]
    """write(fd, &value, 8): 8 or -errno."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = _libc_fn(builder, "write", _I64, [_I32, _VOIDP, _I64])
        slot = cgutils.alloca_once_value(builder, args[1])
        ret = builder.call(
            fn, [builder.trunc(args[0], _I32), builder.bitcast(slot, _VOIDP), ir.Constant(_I64, 8)]
        )
        return _ret_or_errno(builder, ret)

    return sig, codegen


@intrinsic
def _read_u64(typingctx, fd):  # type: ignore[no-untyped-def]
    """read(fd, &v, 8): the 8-byte value read (an eventfd counter is < 2**63), or -errno."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = _libc_fn(builder, "read", _I64, [_I32, _VOIDP, _I64])
        slot = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
        ret = _ret_or_errno(
            builder,
            builder.call(
                fn,
                [builder.trunc(args[0], _I32), builder.bitcast(slot, _VOIDP), ir.Constant(_I64, 8)],
            ),
        )
        ok = builder.icmp_signed(">=", ret, ir.Constant(_I64, 0))
        return builder.select(ok, builder.load(slot), ret)

    return sig, codegen


@intrinsic
def _ppoll_in(typingctx, fd, timeout_ns):  # type: ignore[no-untyped-def]
    """ppoll one fd for POLLIN with a nanosecond timeout: 1 ready, 0 timed out, or -errno."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = _libc_fn(builder, "ppoll", _I32, [_VOIDP, _I64, _VOIDP, _VOIDP])
        pfd = cgutils.alloca_once(builder, _POLLFD)
        builder.store(builder.trunc(args[0], _I32), cgutils.gep_inbounds(builder, pfd, 0, 0))
        builder.store(ir.Constant(_I16, POLLIN), cgutils.gep_inbounds(builder, pfd, 0, 1))
        builder.store(ir.Constant(_I16, 0), cgutils.gep_inbounds(builder, pfd, 0, 2))
        ts = cgutils.alloca_once(builder, _TIMESPEC)
        billion = ir.Constant(_I64, 1_000_000_000)
        builder.store(builder.sdiv(args[1], billion), cgutils.gep_inbounds(builder, ts, 0, 0))
        builder.store(builder.srem(args[1], billion), cgutils.gep_inbounds(builder, ts, 0, 1))
        ret = builder.call(
            fn,
            [
                builder.bitcast(pfd, _VOIDP),
                ir.Constant(_I64, 1),
                builder.bitcast(ts, _VOIDP),
                ir.Constant(_VOIDP, None),
            ],
        )
        return _ret_or_errno(builder, builder.sext(ret, _I64))

    return sig, codegen


@intrinsic
def _clock_monotonic(typingctx):  # type: ignore[no-untyped-def]
    """clock_gettime(CLOCK_MONOTONIC) in ns (the vDSO: no system call)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = _libc_fn(builder, "clock_gettime", _I32, [_I32, _VOIDP])
        ts = cgutils.alloca_once(builder, _TIMESPEC)
        builder.call(fn, [ir.Constant(_I32, CLOCK_MONOTONIC), builder.bitcast(ts, _VOIDP)])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(_I64, 1_000_000_000)), nsec)

    return sig, codegen


# --- jitted API ---------------------------------------------------------------------------------
@njit
def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds, comparable across threads (unlike a raw TSC read)."""
    return _clock_monotonic()


@njit
def efd_signal(fd: int) -> int:
    """Add 1 to the eventfd's counter (a kick or a call): 0, or -errno."""
    ret = _write_u64(fd, 1)
    return 0 if ret >= 0 else ret


@njit
def efd_take(fd: int) -> int:
    """Non-blocking read: the counter (signals since the last read, coalesced), 0 if none.

    The fd is non-blocking (see :func:`eventfd`), so an empty counter reads as EAGAIN: 0.
    """
    ret = _read_u64(fd)
    if ret == -EAGAIN:
        return 0
    return ret


@njit
def efd_wait(fd: int, timeout_ns: int) -> int:
    """Sleep until the eventfd is signalled or ``timeout_ns`` passes; then take the counter.

    Returns the counter value (>= 1), 0 on timeout (``timeout_ns <= 0`` only polls once), or
    -errno. A signal interrupting ppoll (EINTR) waits again for the time that is left, so the
    timeout is a bound on the wait, not on each system call.
    """
    if fd < 0:
        return -EBADF  # ppoll would silently ignore a negative fd and sleep the whole timeout
    if timeout_ns <= 0:
        return efd_take(fd)
    deadline = _clock_monotonic() + timeout_ns
    left = timeout_ns
    while True:
        r = _ppoll_in(fd, left)
        if r > 0:
            got = efd_take(fd)
            if got != 0:
                return got
            # another reader took the counter between ppoll and read: keep waiting
        elif r == 0:
            return 0
        elif r != -EINTR:
            return r
        left = deadline - _clock_monotonic()
        if left <= 0:
            return efd_take(fd)


# --- Python side ------------------------------------------------------------------------------
def eventfd() -> int:
    """A new eventfd (counter 0), non-blocking and close-on-exec."""
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def close(fd: int) -> None:
    """Close an fd from :func:`eventfd` (closing twice is an error in the caller)."""
    os.close(fd)


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask, which a container may narrow)."""
    return sorted(os.sched_getaffinity(0))


def pin_current_thread(cpu: int) -> set[int]:
    """Pin the calling OS thread to ``cpu``; returns its previous CPU set (to restore it).

    ``sched_setaffinity(0, ...)`` acts on the calling thread only (Linux affinity is per
    thread), so each engine thread pins itself once it is running. Threads started afterwards
    by this thread inherit the mask: restore it with :func:`set_affinity` if that matters.
    """
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        raise VbenchError(
            f"cannot pin a thread to CPU {cpu} ({exc}): allowed CPUs are "
            f"{allowed_cpus()}; turn pinning off with engine.native.pin = false"
        ) from None
    return before


def set_affinity(cpus: set[int]) -> None:
    """Give the calling thread the CPU set ``cpus`` (e.g. the one :func:`pin_current_thread`
    returned)."""
    os.sched_setaffinity(0, cpus)


def _siblings(cpu: int) -> set[int]:
    """The SMT siblings of ``cpu`` (itself included), from sysfs; {cpu} if unknown."""
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    try:
        text = path.read_text().strip()
    except OSError:
        return {cpu}
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out or {cpu}


def cpu_pair() -> tuple[int, int] | None:
    """Two distinct allowed CPUs for the driver and the device thread, or None on one CPU.

    Prefers two separate physical cores (not SMT siblings of one core): ringtest's experiment
    is a guest and a host on different cores, where every shared line really moves between
    caches. Falls back to siblings when the machine offers nothing else.
    """
    cpus = allowed_cpus()
    if len(cpus) < 2:
        return None
    first = cpus[0]
    siblings = _siblings(first)
    for other in cpus[1:]:
        if other not in siblings:
            return first, other
    return first, cpus[1]
