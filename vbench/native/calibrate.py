"""``vbench calibrate``: measure this machine and write the ``calibrated`` cost preset.

The simulation turns counts into time through a preset; the native engine measures time for
real. Holding one against the other (``configs/validate.toml``) only means something if the
preset describes the machine and the experiment the native engine runs, so this module
measures the figures that can be measured here and derives the rest from the native engine's
own definition of each event, never copying a number from another preset:

=========================  ==========================================================  ===
figure                     how                                                         tag
=========================  ==========================================================  ===
``line_transfer_ns``       ping-pong on one 64-byte line between two pinned threads    M
                           (acquire loads, release stores): one-way = round trip / 2
                           of every trip, pooled over the repetitions; the value is
                           the most common of its modes, the range spans them all
``full_barrier_ns``        store, ``atomics.fence()``, load in a loop, minus the same  M
                           loop without the fence
``copy_ns_per_byte``       a loop of 1500-byte copies (cache-hot)                      M
``wake_ns``                a thread asleep in ``efd_wait``: signal to wake-up time      M
``vcpu_wake_ns``           the same wake-up: the native driver sleeps the same way     M
``exit_ns``                a kick (``loops._notify``): exit + entry emulation cycles /   D
                           the measured TSC rate + a measured eventfd write
``irq_send_ns``            a call: the very same notify as a kick                      D
``irq_handler_ns``         the exit + entry cycles the driver spends around its sleep  D
                           (``loops._wait_notify``); the eventfd read is in ``wake_ns``
``irq_exits``              0: the cycles are all in ``irq_handler_ns``                 D
``user_space_exit_factor`` 1: the native device is one plain thread                   D
``line_invalidate_ns``     not measured yet: the measured line transfer (and range)    E
=========================  ==========================================================  ===

The derived figures follow the native engine's own notification code (ringtest's ``notify``
and ``wait_for_notify``): they hold for the exit emulation of :data:`EXIT_CYCLES` and
:data:`ENTRY_CYCLES`, the native engine's defaults. The cost of an eventfd read and of a clock
read are measured too and listed in the file's header.

Every measured figure is the median of several repetitions; the spread (min to max over the
repetitions) is printed and recorded in the figure's source. Spin loops are bounded by a
deadline, so a wedged peer ends the calibration with an error instead of hanging it.

The line transfer is the exception to the median, because on a virtual machine it has modes:
the host moves the vCPUs, and a transfer between the same two CPUs takes about 30 ns in one
placement and about 185 ns in another (native throughput moves 3-5x with it). A median of
such a sample is a figure no run ever saw, so every trip is kept, the modes are found
(:mod:`vbench.native.modes`), printed, written to the preset's header, and the figure states
a range over them. :func:`line_probe_ns` is the same ping-pong in short, for a native run to
record which mode it ran in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from vbench import jit as _jit  # sets the keyed numba cache dir (imported first by vbench)
from vbench.costs import COST_FIELDS, Figure, OpCosts, Preset, calibrated_path
from vbench.errors import VbenchError
from vbench.native import atomics as A
from vbench.native import sysio
from vbench.native.modes import Mode, find_modes
from vbench.native.modes import describe as describe_modes

if TYPE_CHECKING:
    from vbench.native.opcost import OpTiming, SumCheck

_jit.lock_cache_saves()

#: ringtest's exit emulation (tools/virtio/ringtest/main.h: VMEXIT_CYCLES, VMENTRY_CYCLES),
#: the native engine's default; a kick in the native run busy-waits both around the write.
EXIT_CYCLES = 500
ENTRY_CYCLES = 500

_SPIN_CHECK = 4096  # spins between two deadline checks in a spin loop
_TIMEOUT_NS = 10_000_000_000  # no single measurement may wait longer than this
PROBE_TRIPS = 2_000  # a line probe's round trips: under 1 ms in either mode
_PROBE_TIMEOUT_NS = 1_000_000_000  # a probe that stalls this long gives NaN, not an error


# --- jitted kernels -------------------------------------------------------------------------------
@njit(inline="always")
def _await(line: np.ndarray, value: int, deadline: int) -> bool:
    """Spin (acquire loads, ``pause``) until ``line[0] == value``; False past ``deadline``."""
    spins = 0
    while A.load_acquire(line, 0) != value:
        A.cpu_relax()
        spins += 1
        if spins == _SPIN_CHECK:
            spins = 0
            if sysio.monotonic_ns() > deadline:
                return False
    return True


@njit(nogil=True, cache=True)
def _ping(line: np.ndarray, trips: np.ndarray, deadline: int) -> int:
    """Initiator: write 2i+1, wait for the echo 2i+2; each round trip's TSC cycles into
    ``trips[i]``. 0, or -1 if the peer stopped answering before ``deadline``.

    Each trip is timed alone (rdtsc costs a few ns) so that the median ignores the trips
    during which the OS preempted either thread: on a busy machine those are microseconds."""
    for i in range(trips.shape[0]):
        c0 = A.rdtsc()
        # release: pairs with the pong's acquire load; the line moves to the pong's cache
        A.store_release(line, 0, 2 * i + 1)
        if not _await(line, 2 * i + 2, deadline):  # acquire: pairs with the pong's release
            return -1
        trips[i] = A.rdtsc() - c0
    return 0


@njit(nogil=True, cache=True)
def _pong(line: np.ndarray, n: int, deadline: int) -> int:
    """Responder: wait for 2i+1, answer 2i+2. 0, or -1 on the deadline."""
    for i in range(n):
        if not _await(line, 2 * i + 1, deadline):  # acquire: pairs with the ping's release
            return -1
        A.store_release(line, 0, 2 * i + 2)  # release: pairs with the ping's acquire
    return 0


@njit(nogil=True, cache=True)
def _local_line(line: np.ndarray, n: int) -> int:
    """One CPU only: a release store and an acquire load of an L1-resident line, n times."""
    t0 = sysio.monotonic_ns()
    acc = 0
    for i in range(n):
        A.store_release(line, 0, i)
        acc += A.load_acquire(line, 0)
    dt_ns = sysio.monotonic_ns() - t0
    return dt_ns if acc >= 0 else -dt_ns  # use acc so the loop is not optimised away


@njit(nogil=True, cache=True)
def _fence_loop(line: np.ndarray, n: int, full: bool) -> int:
    """The publish-then-check step n times: a release store, then (``full``) a fence or (not)
    only a compiler barrier, then an acquire load of another word. The difference of the two
    is what the fence adds where the rings use it (a fence alone in a loop costs nothing
    measurable: with no memory access around it there is nothing to drain)."""
    t0 = sysio.monotonic_ns()
    acc = 0
    for i in range(n):
        A.store_release(line, 0, i)
        if full:
            A.fence()
        else:
            A.compiler_barrier()
        acc += A.load_acquire(line, 1)
    return sysio.monotonic_ns() - t0 + (acc & 0)


@njit(nogil=True, cache=True)
def _copy_loop(src: np.ndarray, dst: np.ndarray, n: int) -> int:
    t0 = sysio.monotonic_ns()
    for i in range(n):
        src[0] = i & 0xFF  # a new first byte every time, so no copy is skipped
        # an explicit loop, not dst[:] = src: numba copies a slice assignment through a
        # temporary when it cannot prove the arrays disjoint; LLVM vectorises this loop
        for j in range(src.shape[0]):
            dst[j] = src[j]
    return sysio.monotonic_ns() - t0 + (dst[0] & 0)


@njit(nogil=True, cache=True)
def _clock_cost(n: int) -> int:
    t0 = sysio.monotonic_ns()
    for _ in range(n):
        sysio.monotonic_ns()
    return sysio.monotonic_ns() - t0


@njit(nogil=True, cache=True)
def _efd_writes(fd: int, n: int) -> int:
    """n eventfd writes nobody waits for, timed as a block; -1 on an error."""
    t0 = sysio.monotonic_ns()
    for _ in range(n):
        if sysio.efd_signal(fd) != 0:
            return -1
    dt_ns = sysio.monotonic_ns() - t0
    sysio.efd_take(fd)
    return dt_ns


@njit(nogil=True, cache=True)
def _efd_reads(fd: int, n: int) -> int:
    """n reads of a signalled counter, each timed alone (the signal is not timed); -1 on error."""
    total = 0
    for _ in range(n):
        if sysio.efd_signal(fd) != 0:
            return -1
        t0 = sysio.monotonic_ns()
        got = sysio.efd_take(fd)
        total += sysio.monotonic_ns() - t0
        if got != 1:
            return -1
    return total


@njit(nogil=True, cache=True)
def _sleeper(fd: int, ready: np.ndarray, woke: np.ndarray, timeout_ns: int) -> int:
    """Say ready, sleep in efd_wait, stamp the wake-up; ``len(woke)`` times. 0, or -1."""
    for i in range(woke.shape[0]):
        A.store_release(ready, 0, i + 1)  # pairs with the waker's acquire load
        got = sysio.efd_wait(fd, timeout_ns)
        woke[i] = sysio.monotonic_ns()
        if got <= 0:
            return -1
    return 0


@njit(nogil=True, cache=True)
def _waker(fd: int, ready: np.ndarray, sent: np.ndarray, settle_ns: int, deadline: int) -> int:
    """Wait until the sleeper is ready, let it fall asleep (``settle_ns``), stamp, signal."""
    for i in range(sent.shape[0]):
        while A.load_acquire(ready, 0) != i + 1:  # pairs with the sleeper's release
            A.cpu_relax()
            if sysio.monotonic_ns() > deadline:
                return -1
        t = sysio.monotonic_ns() + settle_ns
        while sysio.monotonic_ns() < t:
            A.cpu_relax()
        sent[i] = sysio.monotonic_ns()
        if sysio.efd_signal(fd) != 0:
            return -1
    return 0


@njit(nogil=True, cache=True)
def tsc_rate(window_ns: int) -> float:
    """TSC cycles per nanosecond of CLOCK_MONOTONIC over ``window_ns``."""
    t0 = sysio.monotonic_ns()
    c0 = A.rdtsc()
    t1 = t0
    while t1 - t0 < window_ns:
        A.cpu_relax()
        t1 = sysio.monotonic_ns()
    c1 = A.rdtsc()
    return (c1 - c0) / (t1 - t0)


# --- measurements ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """One measured quantity: a value per repetition; reported as median with min-max."""

    name: str
    unit: str
    what: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def lo(self) -> float:
        return float(min(self.samples))

    @property
    def hi(self) -> float:
        return float(max(self.samples))

    def spread(self) -> str:
        return (
            f"median of {len(self.samples)} runs, min {self.lo:.4g}, max {self.hi:.4g} {self.unit}"
        )


@dataclass
class Calibration:
    """Everything one ``vbench calibrate`` measured, and the preset derived from it."""

    date: str
    fingerprint: str
    cpus: tuple[int, int] | None
    exit_cycles: int
    entry_cycles: int
    measurements: dict[str, Measurement] = field(default_factory=dict)
    #: the modes of the line transfer's trips pooled over the repetitions (one CPU: of the
    #: repetitions' figures), by value; empty when not measured (the median is used then)
    line_modes: tuple[Mode, ...] = ()
    #: each model's ring operations on one thread (:mod:`vbench.native.opcost`): model ->
    #: operation -> ns per call, with the sum check of each model's figures against its loop
    op_costs: dict[str, dict[str, OpTiming]] = field(default_factory=dict)
    op_checks: dict[str, SumCheck] = field(default_factory=dict)
    #: the native engine's own work per request beyond the ring: driver_ns, device_ns
    harness: dict[str, OpTiming] = field(default_factory=dict)

    def m(self, name: str) -> Measurement:
        return self.measurements[name]

    def _src(self, what: str) -> str:
        return f"vbench calibrate {self.date}, machine {self.fingerprint}: {what}"

    def line_modes_words(self) -> str:
        """The line transfer's modes in words: ``2 modes: 30 ns (62 % of samples), 185 ns
        (38 %)``."""
        count = len(self.line_modes)
        return f"{count} mode{'s' if count != 1 else ''}: {describe_modes(self.line_modes)}"

    def _line_value(self) -> tuple[float, str]:
        """The line transfer figure and how it was chosen: the mode with the largest share
        (not the median: with two modes the median is a time no run saw), else the median."""
        x = self.m("line_transfer_ns")
        if not self.line_modes:
            return x.median, x.spread()
        top = max(self.line_modes, key=lambda mode: mode.share)
        pooled = f"{sum(mode.count for mode in self.line_modes)} samples pooled over the runs"
        if len(self.line_modes) == 1:
            return top.value, f"the median of {pooled}, one mode; {x.spread()}"
        words = self.line_modes_words()
        return top.value, f"the most common mode of {pooled}, which have {words}; {x.spread()}"

    def _line_range(self) -> dict[str, Any]:
        """``low``, ``high`` and ``range_source`` of the line figures: the smallest to the
        largest mode (one mode: its 5th to 95th percentile); empty without modes."""
        modes = self.line_modes
        if not modes:
            return {}
        if len(modes) == 1:
            low, high, how = modes[0].low, modes[0].high, "its 5th to 95th percentile"
        else:
            low, high, how = modes[0].value, modes[-1].value, "the smallest to the largest mode"
        return {
            "low": _positive(low),
            "high": _positive(high),
            "range_source": self._src(
                f"the cache-line ping-pong's {self.line_modes_words()}; the range is {how}"
            ),
        }

    def _where(self) -> str:
        return (
            f"threads pinned to CPUs {self.cpus[0]} and {self.cpus[1]}"
            if self.cpus
            else "one CPU only, threads unpinned"
        )

    def _line_figures(self) -> dict[str, Figure]:
        """Line transfer (the most common mode, the modes as its range) and invalidation."""
        line_what = (
            "one-way cache-line transfer, half the round trip of a ping-pong on one "
            f"64-byte line with acquire loads and release stores, {self._where()}"
            if self.cpus
            else "one CPU: no line moves between caches; a release store and an acquire load "
            "of one L1-resident line"
        )
        line_ns, line_how = self._line_value()
        line_range = self._line_range()
        return {
            "line_transfer_ns": Figure(
                value=_positive(line_ns),
                tag="M",
                source=self._src(f"{line_what} ({line_how})"),
                **line_range,
            ),
            "line_invalidate_ns": Figure(
                value=_positive(line_ns),
                tag="E",
                source=self._src(
                    "not measured yet: taken equal to this machine's measured one-way line "
                    "transfer, and its range (an upgrade from Shared waits on the same path, "
                    "without the data)"
                ),
                **line_range,
            ),
        }

    def _notify_figures(self) -> dict[str, Figure]:
        """Kicks and calls: the native engine's exit emulation around an eventfd write (D)."""
        tsc = self.measurements["tsc_cycles_per_ns"].median
        write = self.measurements["efd_write_ns"].median
        cycles_ns = (self.exit_cycles + self.entry_cycles) / tsc
        exit_ns = cycles_ns + write
        return {
            "exit_ns": Figure(
                value=_positive(exit_ns),
                tag="D",
                source=self._src(
                    f"a native kick is the exit emulation's {self.exit_cycles} + "
                    f"{self.entry_cycles} TSC cycles busy-waited around an eventfd write: "
                    f"{self.exit_cycles + self.entry_cycles} cycles / {tsc:.4g} cycles per ns "
                    f"(measured) + {write:.4g} ns eventfd write (measured) = {exit_ns:.4g} ns "
                    "(vbench.native.loops._notify)"
                ),
            ),
            "user_space_exit_factor": Figure(
                value=1.0,
                tag="D",
                source=self._src(
                    "the native device is one plain thread: an exit served in user space costs "
                    "the same as any other, factor 1"
                ),
            ),
            "irq_exits": Figure(
                value=0.0,
                tag="D",
                source=self._src(
                    "the native driver takes a call without a separate emulated exit: the "
                    "exit and entry cycles around its sleep are all in irq_handler_ns"
                ),
            ),
            "irq_handler_ns": Figure(
                value=_positive(cycles_ns),
                tag="D",
                source=self._src(
                    f"the native driver takes a call in ringtest's wait_for_notify: "
                    f"{self.exit_cycles} cycles of exit emulation before it blocks and "
                    f"{self.entry_cycles} of entry emulation after it wakes (the eventfd read "
                    f"is part of the measured wake-up): "
                    f"{self.exit_cycles + self.entry_cycles} cycles / {tsc:.4g} cycles per ns "
                    f"= {cycles_ns:.4g} ns"
                ),
            ),
            "irq_send_ns": Figure(
                value=_positive(exit_ns),
                tag="D",
                source=self._src(
                    f"a native call is the same notify as a kick: {self.exit_cycles} + "
                    f"{self.entry_cycles} cycles of exit emulation around one eventfd write, "
                    f"{cycles_ns:.4g} ns + {write:.4g} ns (measured) = {exit_ns:.4g} ns"
                ),
            ),
        }

    def _measured_figures(self) -> dict[str, Figure]:
        """Wake-up, fence and copy: measured (M), median of the runs with their spread."""
        m = self.measurements
        where = self._where()

        def measured(key: str, what: str) -> Figure:
            x = m[key]
            return Figure(
                value=_positive(x.median), tag="M", source=self._src(f"{what} ({x.spread()})")
            )

        return {
            "wake_ns": measured(
                "wake_ns",
                f"wake-up latency of a thread asleep in poll(2) on an eventfd, from the "
                f"signalling write to the woken thread's clock read, {where}",
            ),
            "vcpu_wake_ns": measured(
                "wake_ns",
                "the native driver sleeps on its call eventfd exactly as the device sleeps on "
                "its kick eventfd: the same wake-up latency",
            ),
            "full_barrier_ns": measured(
                "full_barrier_ns",
                "one seq_cst fence (atomics.fence, mfence) between a release store and an "
                "acquire load, in a loop, minus the same loop without it",
            ),
            "copy_ns_per_byte": measured(
                "copy_ns_per_byte", "copying a cache-hot 1500-byte buffer, per byte"
            ),
        }

    def op_cost_rows(self) -> list[list[str]]:
        """The ring operations' costs as a table for people: a header (``model``, the ten
        operations, ``sum check``), then one row per model of medians in ns per call and
        the ratio of their sum to the loop they were measured in. Empty when not measured."""
        from vbench.native.opcost import OP_NAMES

        if not self.op_costs:
            return []
        rows = [["model", *OP_NAMES, "sum check"]]
        for model, ops in self.op_costs.items():
            check = self.op_checks.get(model)
            ratio = f"{check.ratio:.3f}" if check else ""
            rows.append([model, *(f"{ops[op].median_ns:.3g}" for op in OP_NAMES), ratio])
        return rows

    def op_cost_lines(self) -> list[str]:
        """The same figures as lines (``vbench calibrate``'s progress on stderr and the preset
        file's header): one per model, then the native harness."""
        lines = []
        for model, ops in self.op_costs.items():
            figures = ", ".join(f"{op} {t.median_ns:.3g}" for op, t in ops.items())
            check = self.op_checks.get(model)
            lines.append(
                f"{model}: {figures}" + (f" (sum check {check.ratio:.3f})" if check else "")
            )
        if self.harness:
            lines.append(self.harness_words())
        return lines

    def harness_words(self) -> str:
        """``native harness per request: driver 38.3 ns [37.4-38.6], device 4.66 ns [...]``."""
        if not self.harness:
            return ""
        driver, device = self.harness["driver_ns"], self.harness["device_ns"]
        return f"native harness per request: driver {driver.words()}, device {device.words()}"

    def _op_cost_table(self) -> OpCosts | None:
        """The ring operations' table (M), None when not measured. Its range is a common factor
        from the spread of the runs: the lowest min/median and the highest max/median over
        every model and operation, clamped to [0.5, 2] (a wilder run says more about the load
        of the machine than about the operations)."""
        if not self.op_costs:
            return None
        timings = [t for ops in self.op_costs.values() for t in ops.values()]
        low = min(1.0, max(0.5, min(t.low_ns / t.median_ns for t in timings)))
        high = max(1.0, min(2.0, max(t.high_ns / t.median_ns for t in timings)))
        ratios = [check.ratio for check in self.op_checks.values()]
        check = (
            f" (the figures add up to {min(ratios):.3f}-{max(ratios):.3f}x that loop's time)"
            if ratios
            else ""
        )
        runs = max(t.runs for t in timings)
        barrier = self.m("full_barrier_ns").median
        return OpCosts(
            tag="M",
            source=self._src(
                "each model's ten ring operations in the protocol's cycle on one thread (the "
                f"arena in one core's cache: no line transfers; {self._where()}), batch 32, "
                "queue 256, 16-byte requests, default options: every call timed between "
                "lfence-serialized TSC stamps minus an empty pair, the mean per operation "
                "scaled within its phase (submit, service, handler) to the same loop run "
                f"without stamps{check}; the median of {runs} runs "
                "(vbench.native.opcost), minus the full fences each call executes (the mb "
                f"counters price them): fences x full_barrier_ns ({barrier:.3g} ns) scaled "
                "like the call (figure / serialized time), at most 90 % of the figure"
            ),
            low_factor=low,
            high_factor=high,
            range_source=self._src(
                f"the spread of the {runs} runs: min/median {low:.3f} and max/median "
                f"{high:.3f}, the extremes over every model and operation, clamped to [0.5, 2]"
            ),
            ns={
                model: {op: _without_fences(t, barrier) for op, t in ops.items()}
                for model, ops in self.op_costs.items()
            },
        )

    def _harness_figures(self) -> dict[str, Figure] | None:
        """The native engine's own work per request (M), its range the runs' min to max; None
        when not measured."""
        if not self.harness:
            return None
        what = {
            "driver_ns": "the native driver's own work per request beyond the ring: payload "
            "fill and checksum, the add's TSC stamp, the slot bookkeeping, the completion "
            "check and latency record",
            "device_ns": "the native device's own work per request beyond the ring: header "
            "and checksum verify, the stamp",
        }
        out = {}
        for key, timing in self.harness.items():
            value = _positive(timing.median_ns)
            out[key] = Figure(
                value=value,
                tag="M",
                source=self._src(
                    f"{what[key]}, 16-byte requests in batches of 32 on one thread, through "
                    "vbench.native.loops' own before_add, after_add, serve and complete, "
                    f"each phase timed unstamped ({timing.words()}, median of {timing.runs} "
                    "runs)"
                ),
                low=min(value, _positive(timing.low_ns)),
                high=max(value, _positive(timing.high_ns)),
                range_source=self._src(f"the min to the max of the {timing.runs} runs"),
            )
        return out

    def preset(self) -> Preset:
        """The ``calibrated`` preset: measured figures (M) and derived ones (D), each sourced;
        the ring operations' table and the native harness when they were measured."""
        found = {**self._line_figures(), **self._notify_figures(), **self._measured_figures()}
        assert set(found) == set(COST_FIELDS), "every cost figure must be measured or derived"
        return Preset(
            name="calibrated",
            description=(
                f"this machine ({self.fingerprint}) as the native engine runs it, measured by "
                f"vbench calibrate on {self.date}"
            ),
            figures={name: found[name] for name in COST_FIELDS},
            op_costs=self._op_cost_table(),
            harness=self._harness_figures(),
        )

    def toml(self) -> str:
        """The preset as a TOML file of the form of ``vbench/presets/*.toml``."""
        p = self.preset()
        lines = [
            "# Written by `vbench calibrate`: figures measured on this machine (tag M) or derived",
            "# from the native engine's definition of the event (tag D). Run it again to refresh.",
            "# Raw measurements (median [min, max] over repetitions):",
        ]
        for x in self.measurements.values():
            lines.append(f"#   {x.name} = {x.median:.6g} [{x.lo:.6g}, {x.hi:.6g}] {x.unit}")
        if self.line_modes:
            lines.append(f"# Line transfer, {self.line_modes_words()}")
            for mode in self.line_modes:
                lines.append(
                    f"#   {mode.value:.6g} ns: {mode.count} samples ({mode.share * 100:.1f} %), "
                    f"5th-95th percentile {mode.low:.6g} to {mode.high:.6g} ns"
                )
        if self.op_costs:
            lines.append("# Ring operations, ns per call on one thread (vbench.native.opcost):")
            lines += [f"#   {line}" for line in self.op_cost_lines()]
        lines += ["", f"name = {_q(p.name)}", f"description = {_q(p.description)}", ""]
        for name, f in p.figures.items():
            lines += _figure_toml(f"figures.{name}", f)
        if p.op_costs is not None:
            lines += _op_costs_toml(p.op_costs)
        for name, f in (p.harness or {}).items():
            lines += _figure_toml(f"harness.{name}", f)
        return "\n".join(lines)


def _figure_toml(table: str, f: Figure) -> list[str]:
    """One figure as a TOML table ``[table]`` (value, tag, source, the range if any)."""
    lines = [f"[{table}]", f"value = {float(f.value)!r}", f"tag = {_q(f.tag)}"]
    lines.append(f"source = {_q(f.source)}")
    if f.has_range:
        lines += [
            f"low = {float(f.low)!r}",
            f"high = {float(f.high)!r}",
            f"range_source = {_q(f.range_source)}",
        ]
    return [*lines, ""]


def _op_costs_toml(table: OpCosts) -> list[str]:
    """The ring operations' table: ``[op_costs]`` (tag, source, range), then one
    ``[op_costs.ns."<model>"]`` table per model, an ``op = ns`` line per operation."""
    lines = [
        "[op_costs]",
        f"tag = {_q(table.tag)}",
        f"source = {_q(table.source)}",
        f"low_factor = {float(table.low_factor)!r}",
        f"high_factor = {float(table.high_factor)!r}",
        f"range_source = {_q(table.range_source)}",
        "",
    ]
    for model, ops in table.ns.items():
        lines.append(f"[op_costs.ns.{_q(model)}]")
        lines += [f"{op} = {float(value)!r}" for op, value in ops.items()]
        lines.append("")
    return lines


def _without_fences(timing: Any, barrier_ns: float) -> float:
    """An operation's figure less the fences it executes, which the simulation prices through
    the mb counters and full_barrier_ns. The figure is the serialized per-call time scaled down
    to the overlapped loop, so the fences' part of it is scaled alike; a noisy fence figure
    could still exceed the call's own, so at least a tenth of the figure stays."""
    scale = timing.median_ns / timing.serialized_ns if timing.serialized_ns > 0 else 1.0
    fences = timing.fences * barrier_ns * min(scale, 1.0)
    return _positive(max(timing.median_ns - fences, 0.1 * timing.median_ns))


def _q(s: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML; ASCII only)."""
    return json.dumps(s, ensure_ascii=True)


def _positive(x: float) -> float:
    """Measured figures are clamped to a tiny positive number: a cost of exactly 0 (e.g. a
    subtraction that came out negative in the noise) would read as 'free', which nothing is."""
    return max(float(x), 0.001)


def default_path() -> Path:
    """Where ``preset = "calibrated"`` is looked up (:func:`vbench.costs.calibrated_path`)."""
    return calibrated_path()


def writable_target(path: Path | None = None) -> Path:
    """The preset file :func:`write` will write (``path`` or the default), checked before
    anything is measured: a path that cannot be written is refused with one line, so minutes of
    measuring are not thrown away at the end. Writes nothing that stays (a probe file in the
    nearest existing folder is created and removed)."""
    path = Path(path) if path else default_path()
    fix = "pass a writable --out PATH, e.g. --out calibrated.toml"
    if path.is_dir():
        raise VbenchError(
            f"--out {path} is a directory: give a file path, e.g. {path}/calibrated.toml"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise VbenchError(
            f"cannot write the calibrated preset to {path}: {folder} is not a folder: {fix}"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise VbenchError(
            f"cannot write the calibrated preset to {path} (permission denied): {fix}"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vbench-probe-"):
            pass
    except OSError as exc:
        raise VbenchError(
            f"cannot write the calibrated preset to {path} (a file in {folder}: {exc.strerror or exc}): {fix}"
        ) from None
    return path


def write(cal: Calibration, path: Path | None = None) -> Path:
    """Write the preset file (atomically: a crash never leaves half a preset) and return it."""
    path = Path(path) if path else default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(cal.toml(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise VbenchError(
            f"cannot write the calibrated preset to {path} ({exc.strerror}): "
            "pass a writable --out PATH"
        ) from None
    return path


# --- running the measurements ------------------------------------------------------------------
def _threads(a: Callable[[], None], b: Callable[[], None]) -> None:
    """Run two callables on two threads and join both (each bounds its own wait)."""
    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    tb.start()
    ta.start()
    ta.join()
    tb.join()


def _pinned(cpu: int | None, fn: Callable[[], int], box: list[int]) -> Callable[[], None]:
    def body() -> None:
        if cpu is not None:
            sysio.pin_current_thread(cpu)
        box.append(int(fn()))

    return body


def _aligned_line() -> np.ndarray:
    """A 64-byte-aligned int64 view of exactly one cache line (nothing else shares it)."""
    raw = np.zeros(32, dtype=np.int64)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip : skip + 8]


def _ping_pong(cpus: tuple[int, int], n: int, timeout_ns: int) -> np.ndarray | None:
    """The TSC cycles of each of n round trips of a line between threads pinned to ``cpus``;
    None if either side waited past ``timeout_ns``."""
    line = _aligned_line()
    deadline = sysio.monotonic_ns() + timeout_ns
    trips = np.zeros(n, dtype=np.int64)
    ping: list[int] = []
    pong: list[int] = []
    _threads(
        _pinned(cpus[0], lambda: _ping(line, trips, deadline), ping),
        _pinned(cpus[1], lambda: _pong(line, n, deadline), pong),
    )
    return None if ping[0] < 0 or pong[0] < 0 else trips


def _line_transfer(
    cpus: tuple[int, int] | None,
    n: int,
    cycles_per_ns: float,
    keep: list[np.ndarray] | None = None,
) -> float:
    """One-way line transfer in ns: half the median round trip (after n/10 warm-up trips).
    ``keep`` receives every trip's one-way ns (one CPU: the run's one figure), for the modes."""
    if cpus is None:
        one_way = np.array([abs(_local_line(_aligned_line(), n)) / n])
    else:
        trips = _ping_pong(cpus, n, _TIMEOUT_NS)
        if trips is None:
            raise VbenchError(
                "calibrate: the cache-line ping-pong stalled for 10 s: the machine is "
                "overloaded; run vbench calibrate again on an idle machine"
            )
        one_way = trips[n // 10 :] / cycles_per_ns / 2.0
    if keep is not None:
        keep.append(one_way)
    return float(np.median(one_way))


def line_probe_ns(cpus: tuple[int, int], ns_per_cycle: float, n: int = PROBE_TRIPS) -> float:
    """A short ping-pong on ``cpus``: the median one-way line transfer in ns over n trips
    (the first tenth dropped as warm-up), or NaN if it stalled for a second. A native run
    takes one before and after each repetition, so a row says which mode of the machine
    (:mod:`vbench.native.modes`) it ran in; it costs about a millisecond (two thread starts
    and n trips of at most a few hundred ns)."""
    line = _aligned_line()
    _ping(line, np.zeros(0, dtype=np.int64), 0)  # load both kernels here, not inside a thread
    _pong(line, 0, 0)
    trips = _ping_pong(cpus, n, _PROBE_TIMEOUT_NS)
    if trips is None:
        return float("nan")
    return float(np.median(trips[n // 10 :])) * ns_per_cycle / 2.0


def _wake(cpus: tuple[int, int] | None, n: int, settle_ns: int) -> float:
    fd = sysio.eventfd()
    try:
        ready = _aligned_line()
        woke = np.zeros(n, dtype=np.int64)
        sent = np.zeros(n, dtype=np.int64)
        deadline = sysio.monotonic_ns() + _TIMEOUT_NS
        rs: list[int] = []
        rw: list[int] = []
        waker_cpu, sleeper_cpu = cpus if cpus else (None, None)
        _threads(
            _pinned(sleeper_cpu, lambda: _sleeper(fd, ready, woke, 1_000_000_000), rs),
            _pinned(waker_cpu, lambda: _waker(fd, ready, sent, settle_ns, deadline), rw),
        )
    finally:
        sysio.close(fd)
    if rs[0] < 0 or rw[0] < 0:
        raise VbenchError(
            "calibrate: a sleeping thread was not woken within 1 s: the machine is overloaded; "
            "run vbench calibrate again on an idle machine"
        )
    return float(np.median(woke - sent))


def calibrate(
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    exit_cycles: int = EXIT_CYCLES,
    entry_cycles: int = ENTRY_CYCLES,
) -> Calibration:
    """Measure this machine. ``quick``: fewer and shorter repetitions (for tests; noisier).

    The one-thread figures are taken on a thread pinned to the first CPU of the pair, the
    driver's CPU in a native run (where kicks are written), so they do not wander between CPUs
    mid-measurement; the two-thread ones use both CPUs of the pair.
    """
    from vbench.results import fingerprint

    say = progress or (lambda _msg: None)
    reps = 3 if quick else 7
    scale = 20 if quick else 1
    cpus = sysio.cpu_pair()
    cal = Calibration(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        fingerprint=fingerprint(),
        cpus=cpus,
        exit_cycles=exit_cycles,
        entry_cycles=entry_cycles,
    )

    def record(name: str, unit: str, what: str, one: Callable[[], float]) -> None:
        say(f"measuring {what} ({reps} runs)")
        one()  # warm-up: compiles (or loads) the kernel and faults in the memory
        cal.measurements[name] = Measurement(name, unit, what, tuple(one() for _ in range(reps)))

    say(f"CPUs: {cpus if cpus else 'only one: threads unpinned'}")
    failed: list[BaseException] = []

    def one_thread() -> None:
        try:
            if cpus is not None:
                sysio.pin_current_thread(cpus[0])
            _one_thread_figures(record, cal, scale)
            _op_cost_figures(cal, quick, say)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            failed.append(exc)

    worker = threading.Thread(target=one_thread)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    pooled: list[np.ndarray] = []
    record(
        "line_transfer_ns",
        "ns",
        "cache-line ping-pong",
        lambda: _line_transfer(cpus, 200_000 // scale, cal.m("tsc_cycles_per_ns").median, pooled),
    )
    cal.line_modes = tuple(find_modes(np.concatenate(pooled[1:])))  # [0]: record's warm-up
    say(f"line transfer: {cal.line_modes_words()}")
    record(
        "wake_ns",
        "ns",
        "eventfd wake-up",
        # wake-ups per run: each costs the 50 us settle (the sleeper must be asleep) and the wake
        lambda: _wake(cpus, 60 if quick else 300, 50_000),
    )
    return cal


def _one_thread_figures(
    record: Callable[[str, str, str, Callable[[], float]], None], cal: Calibration, scale: int
) -> None:
    """TSC rate, clock cost, fence, copy and eventfd costs, measured on the calling thread."""
    record("tsc_cycles_per_ns", "cycles/ns", "TSC rate", lambda: tsc_rate(50_000_000 // scale))
    clock_n = 200_000 // scale
    record("clock_ns", "ns", "monotonic clock read", lambda: _clock_cost(clock_n) / clock_n)
    fence_n = 2_000_000 // scale
    fline = _aligned_line()
    record(
        "full_barrier_ns",
        "ns",
        "full fence",
        lambda: (_fence_loop(fline, fence_n, True) - _fence_loop(fline, fence_n, False)) / fence_n,
    )
    src = np.ones(1500, dtype=np.uint8)
    dst = np.zeros(1500, dtype=np.uint8)
    copy_n = 200_000 // scale
    record(
        "copy_ns_per_byte",
        "ns/byte",
        "1500-byte copy",
        lambda: _copy_loop(src, dst, copy_n) / copy_n / 1500.0,
    )
    fd = sysio.eventfd()
    try:
        efd_n = 100_000 // scale
        clock = cal.m("clock_ns").median

        def writes() -> float:
            took = _efd_writes(fd, efd_n)
            if took < 0:
                raise VbenchError("calibrate: eventfd write failed: check the open-file limit")
            return took / efd_n

        def reads() -> float:
            took = _efd_reads(fd, efd_n)
            if took < 0:
                raise VbenchError("calibrate: eventfd read failed: check the open-file limit")
            return took / efd_n - clock

        record("efd_write_ns", "ns", "eventfd write", writes)
        record("efd_read_ns", "ns", "eventfd read", reads)
    finally:
        sysio.close(fd)


def _op_cost_figures(cal: Calibration, quick: bool, say: Callable[[str], None]) -> None:
    """Every model's ten ring operations and the native engine's own per-request work, timed
    on the calling thread (:mod:`vbench.native.opcost`), into ``cal``; said as they come."""
    from vbench.native import opcost

    reps = 3 if quick else 5
    requests = 2_048 if quick else 50_000
    rate = cal.m("tsc_cycles_per_ns").median
    found = opcost.measure_models(
        repetitions=reps, requests=requests, cycles_per_ns=rate, progress=say
    )
    cal.op_costs = {label: costs.ops for label, costs in found.items()}
    cal.op_checks = {label: costs.check for label, costs in found.items()}
    say(f"timing the native engine's own work per request ({reps} runs)")
    cal.harness = opcost.measure_harness_costs(reps, requests, cycles_per_ns=rate)
    say("ring operations, ns per call (median of the runs):")
    for line in cal.op_cost_lines():
        say(f"  {line}")
