"""The driver/device protocol around a ring, written once for both engines.

Linux ``tools/virtio/ringtest`` has one ``main.c`` that drives every ring; this module is that
``main.c``. It says *what* each side does with the ring's ten operations
(:mod:`vbench.models.interface`): the driver's submit-and-kick batch, its reap round (disable
interrupts, reap everything, re-enable with the lost-wakeup re-check), and the device's service
of one request (pop, serve, push, interrupt decision). The two engines run exactly this code:

- the simulation (:mod:`vbench.engine`) decides *when* each side acts and prices every step on
  its own clocks;
- the native run (:mod:`vbench.native.loops`) runs each side on a real thread and measures.

What differs between them is a **clock**: a tuple ``(params, state, ...)`` whose first element is
a one-element record array with a dtype unique to the engine. The clock's hooks below are
overloaded per engine (:func:`implement_clock`, the way a model registers its operations), so
numba specialises this code per engine at compile time: the simulation's hooks charge time and
fold completions into its digest; the native hooks write payloads, read the TSC and write
eventfds. ``params`` has the fields ``requests``, ``batch``, ``cap`` (0: no in-flight bound);
``state`` (``clock[1]``) has ``next_request``, ``in_flight``, ``completed``, ``blocked``,
``detail``. A side's ring arguments travel as one tuple ``(cfg, mem, st, ctr, io)``.

The hooks (each engine implements all of them, with these signatures):

driver
    ``upcoming(clock)``               the request the driver would add next (``params.requests``:
                                      none): the next in arrival order, or, where each class has
                                      its own ring, the oldest of a class whose ring has room
    ``advance(clock, r)``             r was added: move past it
    ``refused(clock, r)``             the ring had no room for r: stop submitting (its class
                                      only, where each class has its own ring); True when
                                      another class may still submit
    ``request_ready(clock, r)``       may request r be made available now (it has arrived)?
    ``before_add(clock, r)``          ready r for its add (the native run writes its payload)
    ``after_add(clock, r, added)``    account the add (its cost; the request's start time)
    ``after_op(clock, side)``         account the side's last ring operation(s) (time charged)
    ``op_time(clock, op)``            price operation ``op``'s own CPU work (a preset's
                                      ``op_costs``; ``vbench.counters.OP_*``), on its side
    ``kick(clock)``                   deliver a kick: a status
    ``synchronous(clock, r)``         serve r inside one exit (vbus ``call()``): a status
    ``complete(clock, r)``            check and record r's completion: a status
    ``linger(clock, side)``           before re-arming interrupts: (reaped, status)
device
    ``before_pop(clock)``             the device looks at the ring
    ``serve(clock, r)``               check and serve popped request r: a status
    ``ring_empty(clock)``             the device found the ring empty
    ``interrupt(clock, count)``       deliver ``count`` interrupts: a status
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from numba import from_dtype, njit, types
from numba.extending import overload

from vbench.counters import (
    C_BYTES,
    C_IRQS,
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_OPS,
    C_RING_FULL,
    IO_DIR,
    IO_LAST,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIGNALED,
    IO_SIZE,
    IO_SYNC,
    IO_TRIGGERED,
    OP_ADD,
    OP_DISABLE_INTERRUPTS,
    OP_ENABLE_INTERRUPTS,
    OP_INTERRUPT_NEEDED,
    OP_KICK_NEEDED,
    OP_POP,
    OP_PUSH_USED,
    OP_REAP,
    SIDE_DEVICE,
    SIDE_DRIVER,
)
from vbench.models import interface as ring

# --- statuses: one table for both engines (a side reports one, the engine says why it ended) ---
STATUS_OK = 0
STATUS_DEADLOCK = 1  # nobody can act and requests are outstanding: a lost notification
STATUS_DUPLICATE = 2  # a request completed twice
STATUS_BAD_REQUEST = 3  # a side took something from the ring that is no outstanding request
STATUS_NO_PROGRESS = 4  # the simulation's step budget ran out
STATUS_MORE = 5  # the simulation paused: its window needs the next requests (not an error)
STATUS_STALL = 6  # native: the deadline passed
STATUS_PEER = 7  # native: stopped because the other side failed
STATUS_CHECKSUM = 8  # native: a payload whose checksum does not match
STATUS_HEADER = 9  # native: another request's buffer or a wrong size in the payload slot
STATUS_STAMP = 10  # native: a completion the device never processed
STATUS_LENGTH = 11  # native: a used length that is neither 0 nor the request's size
STATUS_ERRNO = 12  # native: an eventfd call failed (detail: -errno)
STATUS_TEXT = {
    STATUS_DEADLOCK: "lost wakeup: requests outstanding but neither side will ever act again",
    STATUS_DUPLICATE: "a request completed twice",
    STATUS_BAD_REQUEST: "a side took something from the ring that is not an outstanding request",
    STATUS_NO_PROGRESS: "the simulation stopped making progress",
    STATUS_STALL: "stalled",
    STATUS_PEER: "stopped by the other side",
    STATUS_CHECKSUM: "payload checksum mismatch (a corrupted buffer)",
    STATUS_HEADER: "the device found another request's buffer or a wrong size",
    STATUS_STAMP: "a completion the device never processed",
    STATUS_LENGTH: "a completion with a wrong used length",
    STATUS_ERRNO: "an eventfd call failed",
}


# --- the clock's hooks: stubs, overloaded per engine by implement_clock ------------------------
def upcoming(clock): ...  # noqa: D103 (stubs: implemented per engine)
def advance(clock, request): ...  # noqa: D103,E302
def refused(clock, request): ...  # noqa: D103,E302
def request_ready(clock, request): ...  # noqa: D103,E302
def before_add(clock, request): ...  # noqa: D103,E302
def after_add(clock, request, added): ...  # noqa: D103,E302
def after_op(clock, side): ...  # noqa: D103,E302
def op_time(clock, op): ...  # noqa: D103,E302
def kick(clock): ...  # noqa: D103,E302
def synchronous(clock, request): ...  # noqa: D103,E302
def complete(clock, request): ...  # noqa: D103,E302
def linger(clock, side): ...  # noqa: D103,E302
def before_pop(clock): ...  # noqa: D103,E302
def serve(clock, request): ...  # noqa: D103,E302
def ring_empty(clock): ...  # noqa: D103,E302
def interrupt(clock, count): ...  # noqa: D103,E302


HOOKS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        upcoming,
        advance,
        refused,
        request_ready,
        before_add,
        after_add,
        after_op,
        op_time,
        kick,
        synchronous,
        complete,
        linger,
        before_pop,
        serve,
        ring_empty,
        interrupt,
    )
}


def implement_clock(params_dtype: np.dtype, module: ModuleType) -> None:
    """Bind the hooks of :data:`HOOKS` to the functions of the same names in ``module`` (each
    ``@njit``), for clocks whose first element is a record array of ``params_dtype``."""
    missing = [name for name in HOOKS if not hasattr(module, name)]
    if missing:
        raise TypeError(f"implement_clock({module.__name__}): missing hooks {missing}")
    nb_type = from_dtype(params_dtype)
    for name, stub in HOOKS.items():
        _bind(stub, getattr(module, name), nb_type)


def _bind(stub: Callable[..., Any], fn: Callable[..., Any], nb_type: Any) -> None:
    # numba wants the typing function's parameters to be the implementation's: make one with
    # the stub's own names (the engines' hooks use the same names)
    names = ", ".join(inspect.signature(stub).parameters)
    scope: dict[str, Any] = {"pick": _picker(fn, nb_type)}
    exec(f"def typing({names}):\n    return pick(clock)\n", scope)  # noqa: S102
    overload(stub, inline="always")(scope["typing"])


def _picker(fn: Callable[..., Any], nb_type: Any) -> Callable[[Any], Any]:
    def pick(clock: Any) -> Any:
        if isinstance(clock, types.BaseTuple) and getattr(clock.types[0], "dtype", None) == nb_type:
            return fn.py_func
        return None

    return pick


# --- every ring operation run is counted, then priced ---------------------------------------------
@njit(inline="always")
def ran(clock, ctr, op):
    """Operation ``op`` (``vbench.counters.OP_*``) just ran: count it, and let the engine price
    its own CPU work (the simulation charges the preset's figure for the model's operation to
    the operation's side; the native run pays it for real and adds nothing)."""
    ctr[C_OPS + op] += 1
    op_time(clock, op)


# --- the driver ----------------------------------------------------------------------------------
@njit(inline="always")
def _may_add_more(clock, added):
    """After an add: may the batch take the next request too?"""
    params = clock[0][0]
    state = clock[1][0]
    nxt = upcoming(clock)
    return (
        added < params.batch
        and nxt < params.requests
        and request_ready(clock, nxt)
        and (params.cap == 0 or state.in_flight < params.cap)
    )


@njit(inline="always")
def _load_request(clock, side, request):
    """The request's fields into the io slots ``add`` reads."""
    io = side[4]
    size, segments, prio, direction, mask = clock[2]
    j = np.uint64(request) & mask
    io[IO_REQ] = request
    io[IO_SIZE] = size[j]
    io[IO_SEGS] = segments[j]
    io[IO_DIR] = direction[j]
    io[IO_PRIO] = prio[j]
    io[IO_SYNC] = 0


@njit(inline="always")
def submit_batch(clock, side):
    """One batch: up to ``batch`` adds of requests that are ready, a kick decision after each
    (``IO_LAST`` on the last one: virtqueue_add + virtqueue_kick_prepare in Linux's
    ``virtio_ring.c``, ``tools/virtio/ringtest/main.c::run_guest``), a kick when the ring asks
    for one. A full ring ends the batch (the driver is then blocked until it reaps), unless each
    class has its own ring and another class's ring has room: then only that class waits, as a
    multi-queue guest stops only the full queue (Linux ``netif_stop_subqueue``). A status."""
    cfg, mem, st, ctr, io = side
    state = clock[1][0]
    added = 0
    decided = False
    while True:
        request = upcoming(clock)
        _load_request(clock, side, request)
        before_add(clock, request)
        ok = ring.add(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_ADD)
        after_add(clock, request, ok)
        if ok == 0:
            ctr[C_RING_FULL] += 1
            if refused(clock, request) and _may_add_more(clock, added):
                continue  # only this request's class waits: the batch goes on with another
            last = True
        else:
            advance(clock, request)
            state.in_flight += 1
            added += 1
            last = not _may_add_more(clock, added)
            if io[IO_SYNC] != 0:
                # a synchronous call was served inside its exit: no kick decision to make
                status = synchronous(clock, request)
                if status != STATUS_OK or last:
                    return status
                continue
        if added == 0:
            return STATUS_OK
        io[IO_LAST] = 1 if last else 0
        if ok == 0 and decided:
            return STATUS_OK
        decision = ring.kick_needed(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_KICK_NEEDED)
        after_op(clock, SIDE_DRIVER)
        if last:
            decided = True
        if decision == 1:
            ctr[C_KICKS] += 1
            status = kick(clock)
            if status != STATUS_OK:
                return status
        elif decision == 0:
            ctr[C_KICKS_SUPPRESSED] += 1
        if last:
            return STATUS_OK


@njit(inline="always")
def reap_all(clock, side):
    """Take every completion the ring has now, checking each: (reaped, status)."""
    cfg, mem, st, ctr, io = side
    state = clock[1][0]
    got = 0
    while True:
        request = ring.reap(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_REAP)
        after_op(clock, SIDE_DRIVER)
        if request < 0:
            if request < -1:
                state.detail = request
                return got, STATUS_BAD_REQUEST
            return got, STATUS_OK
        status = complete(clock, request)
        if status != STATUS_OK:
            state.detail = request
            return got, status
        got += 1


@njit(inline="always")
def reap_round(clock, side, handler):
    """Reap completions: with ``handler`` an interrupt handler, blk/NAPI style (disable
    interrupts, reap all, re-enable with the re-check of ``virtqueue_enable_cb`` /
    ``virtqueue_poll``, again while the re-check finds more); without, one polling round (its
    disable_interrupts resets a NAPI budget). Returns (reaped, status)."""
    cfg, mem, st, ctr, io = side
    total = 0
    io[IO_TRIGGERED] = 1 if handler else 0  # the handler's first disable follows an interrupt
    while True:
        ring.disable_interrupts(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_DISABLE_INTERRUPTS)
        io[IO_TRIGGERED] = 0  # enable_cb_prepare clears it: a re-check's disable writes
        got, status = reap_all(clock, side)
        total += got
        if status != STATUS_OK or not handler:
            return total, status
        got, status = linger(clock, side)
        total += got
        if status != STATUS_OK:
            return total, status
        rearmed = ring.enable_interrupts(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_ENABLE_INTERRUPTS)
        after_op(clock, SIDE_DRIVER)
        if rearmed == 1:
            return total, STATUS_OK


# --- the device ----------------------------------------------------------------------------------
@njit(inline="always")
def _interrupt_decided(clock, ctr, count):
    """Count one interrupt decision of the device (-1: none made; 0: suppressed or merged;
    k >= 1: k interrupts, a multi-queue device raising one per vector) and send what it
    raised. A status."""
    if count >= 1:
        ctr[C_IRQS] += count
        return interrupt(clock, count)
    if count == 0:
        ctr[C_IRQS_SUPPRESSED] += 1
    return STATUS_OK


@njit(inline="always")
def serve_one(clock, side):
    """The device's look at the ring: pop one request, serve and complete it, then the
    interrupt decision (``IO_LAST`` when the ring was empty: vhost's ``handle_tx``/``handle_rx``
    loop of get_vq_desc, add_used and signal, ringtest's ``run_host``).
    Returns (request popped or -1, status)."""
    cfg, mem, st, ctr, io = side
    io[IO_DIR] = 0
    io[IO_SYNC] = 0  # an ordinary look at the rings, not inside a synchronous call
    io[IO_SIGNALED] = -1
    before_pop(clock)
    request = ring.pop(cfg, mem, st, ctr, io)
    ran(clock, ctr, OP_POP)
    after_op(clock, SIDE_DEVICE)
    # a look that ended the service pass of a queue run dry sends its signal now, before the
    # next request's service (vbus-prio; venet's venetdev_rx); other rings decide nothing here
    status = _interrupt_decided(clock, ctr, io[IO_SIGNALED])
    if status != STATUS_OK:
        return request, status
    if request >= 0:
        status = serve(clock, request)
        if status != STATUS_OK:
            clock[1][0].detail = request
            return request, status
        ctr[C_BYTES] += io[IO_SIZE]
        ring.push_used(cfg, mem, st, ctr, io)
        ran(clock, ctr, OP_PUSH_USED)
        io[IO_LAST] = 0
    elif request < -1:
        clock[1][0].detail = request
        return request, STATUS_BAD_REQUEST
    else:
        io[IO_LAST] = 1
        ring_empty(clock)
    count = ring.interrupt_needed(cfg, mem, st, ctr, io)
    ran(clock, ctr, OP_INTERRUPT_NEEDED)
    after_op(clock, SIDE_DEVICE)
    return request, _interrupt_decided(clock, ctr, count)
