"""The one small interface every ring model implements.

In the spirit of Linux ``tools/virtio/ringtest`` (every ring one file with the same few
operations), a model is one module that provides ten jitted operations with one signature,
``op(cfg, mem, st, ctr, io) -> int64``:

driver side (``st`` is the driver's private state)
    ``add``                 make one request available (io: REQ, SIZE, SEGS, DIR, PRIO); 1 added,
                            0 no room (and nothing changed)
    ``kick_needed``         called after every add, ``io[IO_LAST]`` = 1 at the end of a batch:
                            1 kick, 0 suppressed, -1 no decision here
    ``reap``                take one completion: the request id, or -1
    ``disable_interrupts``  start of the interrupt handler (or polling mode)
    ``enable_interrupts``   re-arm and re-check: 1 nothing pending (safe to wait), 0 reap again
device side (``st`` is the device's private state)
    ``pop``                 take one available request: its id (io: SIZE, SEGS, HANDLE, LEN
                            filled), or -1 if the ring is empty
    ``push_used``           complete the popped request ``io[IO_HANDLE]``
    ``interrupt_needed``    after every push and when the ring ran empty (``io[IO_LAST]`` = 1):
                            k >= 1 interrupts (one per vector: a multi-queue device may
                            raise several), 0 suppressed, -1 no decision here
    ``disable_kicks``       the device starts servicing after a wakeup (or polling mode)
    ``enable_kicks``        re-arm and re-check: 1 still empty (safe to sleep), 0 look again

``cfg`` is a one-element structured array whose dtype is unique to the model: the code that
calls the operations (:mod:`vbench.protocol`, run by both engines) is written once and
specialised per model at compile time by dispatching on that dtype, so numba can cache every
specialisation (first-class function arguments and closures cannot be cached).
A model's operations are ``@njit(inline="always")``: inlined into the engines at numba IR
level (an out-of-line call with five array arguments costs ~8 ns, which halved the simulated
request rate); the small memory accessors they call are left to LLVM's inliner.
Shared state lives only in ``mem`` (the arena); ``st`` holds what one side keeps privately, as a
real driver keeps its free list and shadow indexes.

A model module defines its ten operations under exactly the names above (``def add(cfg, mem,
st, ctr, io)``...) and ends with ``implement(CFG, sys.modules[__name__])``, which binds them by
name; a missing one is an error at import.

Names of slots, one scheme for everything the jitted code indexes with module constants:

``DRV_<NAME>`` / ``DEV_<NAME>``
    a slot of the driver's / the device's private state (``Instance.drv`` / ``Instance.dev``, the
    ``st`` of the operations), defined in the model's module; ``DRV_BASE`` / ``DEV_BASE`` is the
    first slot after the fixed ones, where a model's per-descriptor or per-queue tables start,
    and ``DRV_SLOTS`` / ``DEV_SLOTS`` the length of a state that has only fixed slots
    (virtio-mq's ``DRV_GLOBAL_SLOTS`` follow its queues' states);
``<STRUCT>_<FIELD>`` / ``<STRUCT>_BYTES``
    a model's offset of a field inside a shared structure (``DESC_FLAGS``; ``_DESC_COOKIE``
    with a leading ``_`` where private to the module) / the structure's size;
``C_<NAME>``, ``IO_<NAME>``, ``T_<NAME>``
    the counters (``ctr``), the ``io`` array through which the engines and the operations
    talk, and the causes of modelled time, in :mod:`vbench.counters`;
``CLOCK_<NAME>``
    the place of each of an engine's run arrays in its clock tuple (:mod:`vbench.engine`,
    :mod:`vbench.native.loops`). Its parameters and state are not slotted vectors but
    one-element record arrays with named fields (each module's ``PARAMS`` and ``STATE``
    dtypes); no model sees any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numba import from_dtype
from numba.extending import overload
from pydantic import BaseModel, ConfigDict, Field

from vbench import counters
from vbench.layout import ArenaLayout


def add(cfg, mem, st, ctr, io): ...  # noqa: D103 (stubs: implemented per model by overloads)
def kick_needed(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def reap(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def disable_interrupts(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def enable_interrupts(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def pop(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def push_used(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def interrupt_needed(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def disable_kicks(cfg, mem, st, ctr, io): ...  # noqa: D103,E302
def enable_kicks(cfg, mem, st, ctr, io): ...  # noqa: D103,E302


OPS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        add,
        kick_needed,
        reap,
        disable_interrupts,
        enable_interrupts,
        pop,
        push_used,
        interrupt_needed,
        disable_kicks,
        enable_kicks,
    )
}


if tuple(OPS) != counters.OPS:  # the operation counters and op_costs vectors follow this order
    raise ImportError(f"interface.OPS {tuple(OPS)} and counters.OPS {counters.OPS} differ")


def implement(cfg_dtype: np.dtype, module: ModuleType) -> None:
    """Register the jitted operations ``module`` defines under the names of :data:`OPS` as the
    model's implementation for configs of ``cfg_dtype`` (a dtype unique to the model).

    A model module ends with ``implement(CFG, sys.modules[__name__])``; a TypeError names any
    operation it does not define, or defines without ``@njit``.
    """
    missing = [name for name in OPS if not hasattr(module, name)]
    if missing:
        raise TypeError(
            f"implement(): model module {module.__name__} does not define {', '.join(missing)}: "
            f"a model defines every operation of vbench.models.interface.OPS ({', '.join(OPS)})"
        )
    impls = {name: getattr(module, name) for name in OPS}
    not_jitted = [name for name, fn in impls.items() if not hasattr(fn, "py_func")]
    if not_jitted:
        raise TypeError(
            f"implement(): {', '.join(f'{module.__name__}.{n}' for n in not_jitted)} not jitted: "
            'decorate every operation with @njit(inline="always")'
        )
    nb_type = from_dtype(cfg_dtype)
    for name, fn in impls.items():
        _register(OPS[name], fn, nb_type)


def _register(stub: Callable[..., Any], fn: Callable[..., Any], nb_type: Any) -> None:
    @overload(stub, jit_options={"cache": True}, inline="always")
    def _ov(cfg, mem, st, ctr, io):
        if getattr(cfg, "dtype", None) == nb_type:
            # the model's own Python function is the implementation (not a lambda calling its
            # dispatcher): one level of inlining less for numba to type, per op and per model
            return fn.py_func
        return None


class ModelOptions(BaseModel):
    """Options every model accepts; each model extends this with its own."""

    model_config = ConfigDict(extra="forbid")
    queue_size: int = Field(256, description="descriptors (slots) in the ring")


@dataclass(frozen=True)
class Needs:
    """What the workload asks of a ring: sizes the model's tables and pools."""

    max_segments: int
    max_size: int
    classes: int = 1


@dataclass
class Instance:
    """One model ready to run: its layout, config record, arena and both sides' private state."""

    name: str
    layout: ArenaLayout
    cfg: np.ndarray
    mem: np.ndarray  # the byte arena (vbench.memory.new_mem)
    drv: np.ndarray
    dev: np.ndarray


@dataclass(frozen=True)
class ModelDef:
    """What a model module exports as ``MODEL``: the registry reads only this."""

    name: str
    summary: str
    options: type[ModelOptions]
    build: Callable[[ModelOptions, Needs], Instance]
    layout: Callable[[ModelOptions, Needs], ArenaLayout]
    audit: Callable[[Instance], list[str]]
    # check(options, needs, batch) -> None or a one-line problem with its fix (ConfigError text)
    check: Callable[[ModelOptions, Needs, int], str | None]
    # each priority class has its own ring: the driver submits per class, and a full ring
    # stops only its class (a multi-queue guest stops only the full queue)
    queue_per_class: bool = False
