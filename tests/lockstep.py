"""The lock-step harness shared by the reference tests: one jitted model instance and its
pure-Python reference, every interface operation run on both, every answer compared.

Subclasses (per ring) say how to read and compare the shared state (``check``) and may refine
single operations (e.g. to check an event window rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from reference_rings import Popped

from vbench.counters import IO_DIR, IO_HANDLE, IO_LAST, IO_LEN, IO_REQ, IO_SEGS, IO_SIZE, N_IO
from vbench.memory import new_tracker
from vbench.models import get_model
from vbench.models import interface as m
from vbench.models.interface import Needs

ADD, KICK, REAP, IRQ_OFF, IRQ_ON, POP, PUSH, IRQ, KICK_OFF, KICK_ON = range(10)


@njit
def call(op, cfg, mem, st, ctr, io):
    """Run interface operation ``op`` (0..9 in interface order) on one model instance."""
    if op == 0:
        return m.add(cfg, mem, st, ctr, io)
    if op == 1:
        return m.kick_needed(cfg, mem, st, ctr, io)
    if op == 2:
        return m.reap(cfg, mem, st, ctr, io)
    if op == 3:
        return m.disable_interrupts(cfg, mem, st, ctr, io)
    if op == 4:
        return m.enable_interrupts(cfg, mem, st, ctr, io)
    if op == 5:
        return m.pop(cfg, mem, st, ctr, io)
    if op == 6:
        return m.push_used(cfg, mem, st, ctr, io)
    if op == 7:
        return m.interrupt_needed(cfg, mem, st, ctr, io)
    if op == 8:
        return m.disable_kicks(cfg, mem, st, ctr, io)
    return m.enable_kicks(cfg, mem, st, ctr, io)


# --- the harness: one model instance and its reference, driven in lock step ----------------------
class Pair:
    """A model instance and its reference; every operation runs on both and must agree."""

    reap_len = False  # does the reference's reap also answer the used length?

    def __init__(self, name: str, opts: dict[str, Any], needs: Needs, ref: Any) -> None:
        self.model = get_model(name)
        o = self.model.options(**opts)
        assert self.model.check(o, needs, 1) is None
        self.inst = self.model.build(o, needs)
        self.cfg = self.inst.cfg[0]
        self.ctr = new_tracker(self.inst.mem)  # counters, then one line state per line
        self.ref = ref
        self.held: list[Popped] = []
        self.next_req = 0
        self.trace: list[str] = []
        self.decisions: list[tuple[str, int]] = []

    def _run(self, op: int, slots: dict[int, int] | None = None) -> tuple[int, np.ndarray]:
        io = np.zeros(N_IO, dtype=np.int64)
        for k, v in (slots or {}).items():
            io[k] = v
        st_ = self.inst.drv if op < POP else self.inst.dev
        return int(call(op, self.inst.cfg, self.inst.mem, st_, self.ctr, io)), io

    def _eq(self, what: str, got: Any, want: Any) -> None:
        assert got == want, f"{what}: model {got}, reference {want}; ops: {' '.join(self.trace)}"

    # driver
    def add(self, size: int, segs: int, write: bool, last: bool) -> int:
        req = self.next_req
        self.trace.append(f"add(r{req},{size}B,{segs}s,{'w' if write else 'r'})")
        got, _ = self._run(ADD, {IO_REQ: req, IO_SIZE: size, IO_SEGS: segs, IO_DIR: int(write)})
        self._eq("add", got, self.ref.add(req, size, segs, write))
        if got:
            self.next_req += 1
        self.check()
        self.kick(last)
        return got

    def kick(self, last: bool) -> int:
        self.trace.append(f"kick(last={int(last)})")
        got, _ = self._run(KICK, {IO_LAST: int(last)})
        self._eq("kick_needed", got, self.ref.kick_needed(last))
        self.decisions.append(("kick", got))
        self.check()
        return got

    def reap(self) -> int | None:
        self.trace.append("reap")
        got, io = self._run(REAP)
        want = self.ref.reap()
        if want is None:
            self._eq("reap", got, -1)
            self.check()
            return None
        self._eq("reap", got, want[0])
        if self.reap_len:
            self._eq("reap used len", int(io[IO_LEN]), want[1])
        self.check()
        return got

    def irq_off(self) -> None:
        self.trace.append("irq_off")
        self._eq("disable_interrupts", self._run(IRQ_OFF)[0], self.ref.disable_interrupts())
        self.check()

    def irq_on(self) -> int:
        self.trace.append("irq_on")
        got = self._run(IRQ_ON)[0]
        self._eq("enable_interrupts", got, self.ref.enable_interrupts())
        self.check()
        return got

    # device
    def pop(self) -> Popped | None:
        self.trace.append("pop")
        got, io = self._run(POP)
        want = self.ref.pop()
        if want is None:
            self._eq("pop", got, -1)
        else:
            seen = Popped(
                got, int(io[IO_SIZE]), int(io[IO_SEGS]), int(io[IO_HANDLE]), int(io[IO_LEN])
            )
            self._eq("pop", seen, want)
            self.held.append(want)
        self.check()
        return want

    def push(self, k: int) -> None:
        p = self.held.pop(k)
        self.trace.append(f"push(r{p.req})")
        got, _ = self._run(PUSH, {IO_HANDLE: p.handle, IO_LEN: p.length})
        self._eq("push_used", got, self.ref.push_used(p.handle, p.length))
        self.check()

    def irq(self, last: bool) -> int:
        self.trace.append(f"irq(last={int(last)})")
        got = self._run(IRQ, {IO_LAST: int(last)})[0]
        self._eq("interrupt_needed", got, self.ref.interrupt_needed(last))
        self.decisions.append(("irq", got))
        self.check()
        return got

    def kick_off(self) -> None:
        self.trace.append("kick_off")
        self._eq("disable_kicks", self._run(KICK_OFF)[0], self.ref.disable_kicks())
        self.check()

    def kick_on(self) -> int:
        self.trace.append("kick_on")
        got = self._run(KICK_ON)[0]
        self._eq("enable_kicks", got, self.ref.enable_kicks())
        self.check()
        return got

    # shared state
    def check(self, full: bool = False) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        """Complete everything outstanding on both sides, then the model's audit must be clean."""
        while self.held:
            self.push(0)
        self.kick(True)
        while self.pop() is not None:
            self.push(len(self.held) - 1)
            self.irq(False)
        self.irq(True)
        while True:  # the interrupt handler, as the engine runs it
            self.irq_off()
            while self.reap() is not None:
                pass
            if self.irq_on() == 1:
                break
        self.check(full=True)
        assert self.model.audit(self.inst) == [], " ".join(self.trace)
