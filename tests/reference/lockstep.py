"""The lock-step harness shared by the reference tests: one jitted model instance and its
pure-Python reference, every interface operation run on both, every answer compared.

Subclasses (per ring, in the model's test module) say how to read and compare the shared state
(``check``) and may refine single operations (e.g. to check an event window rule). Here also:
the random operation sequences the rings' tests draw (:data:`random_steps`, :func:`steps_of`);
:class:`SplitView`, which reads one split ring's shared areas back from the arena (the lone
split ring and each virtio-mq queue); :class:`IoqAt`, the same for one vbus IOQ region, and
:class:`VbusPair`, the checks the vbus pairs share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies
from numba import njit

from vbench.counters import (
    IO_DIR,
    IO_HANDLE,
    IO_LAST,
    IO_LEN,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIGNALED,
    IO_SIZE,
    IO_TRIGGERED,
    N_IO,
)
from vbench.layout import (
    IOQ_IDX_INUSE,
    IOQ_IDX_VALID,
    IOQ_RING_DESC,
    IOQ_RING_HEAD,
    IOQ_RING_IDX,
    IOQ_RING_MAGIC,
    IOQ_RING_VER,
    SHM_NORTH,
    SHM_SIGNAL_DESC,
    SHM_SIGNAL_IRQ,
    SHM_SOUTH,
    VENET_IOV,
    VENET_SG,
    Area,
)
from vbench.memory import ARENA_GPA, DATA_GPA, DATA_SHIFT, new_tracker, view
from vbench.models import get_model, interface
from vbench.models.interface import Instance, ModelDef, Needs

from .common import Popped
from .split import F_INDIRECT, F_NEXT, BlkHeader, SplitRef

ADD, KICK, REAP, IRQ_OFF, IRQ_ON, POP, PUSH, IRQ, KICK_OFF, KICK_ON = range(10)


@njit
def call(op, cfg, mem, st, ctr, io):
    """Run interface operation ``op`` (0..9 in interface order) on one model instance."""
    if op == 0:
        return interface.add(cfg, mem, st, ctr, io)
    if op == 1:
        return interface.kick_needed(cfg, mem, st, ctr, io)
    if op == 2:
        return interface.reap(cfg, mem, st, ctr, io)
    if op == 3:
        return interface.disable_interrupts(cfg, mem, st, ctr, io)
    if op == 4:
        return interface.enable_interrupts(cfg, mem, st, ctr, io)
    if op == 5:
        return interface.pop(cfg, mem, st, ctr, io)
    if op == 6:
        return interface.push_used(cfg, mem, st, ctr, io)
    if op == 7:
        return interface.interrupt_needed(cfg, mem, st, ctr, io)
    if op == 8:
        return interface.disable_kicks(cfg, mem, st, ctr, io)
    return interface.enable_kicks(cfg, mem, st, ctr, io)


@njit
def warm(cfg, mem, drv, dev, ctr, k, classes=1):
    """``k`` one-segment round trips per class in turn (class 0's first): add, kick decision,
    pop, push, end-of-batch decision, then the interrupt handler (disable, reap, enable)."""
    io = np.zeros(N_IO, dtype=np.int64)
    for c in range(classes):
        for _ in range(k):
            io[:] = 0
            io[IO_SIZE] = 1
            io[IO_SEGS] = 1
            io[IO_PRIO] = c
            interface.add(cfg, mem, drv, ctr, io)
            io[IO_LAST] = 1
            interface.kick_needed(cfg, mem, drv, ctr, io)
            io[:] = 0
            interface.pop(cfg, mem, dev, ctr, io)
            interface.push_used(cfg, mem, dev, ctr, io)
            io[IO_LAST] = 1
            interface.interrupt_needed(cfg, mem, dev, ctr, io)
            interface.disable_interrupts(cfg, mem, drv, ctr, io)
            interface.reap(cfg, mem, drv, ctr, io)
            interface.enable_interrupts(cfg, mem, drv, ctr, io)


def split_ref_options(opts: dict[str, Any]) -> dict[str, Any]:
    """SplitRef's keyword options for a dict of the split model's options (absent ones at
    their defaults)."""
    return {
        "event_idx": opts["event_idx"],
        "indirect": opts["indirect"],
        "publish_on_add": opts["publish"] == "add",
        "qemu_avail_event": opts["avail_event"] == "qemu",
        "used_batch": opts["used_batch"],
        "signal_batch": opts.get("signal_batch"),
        "reap_policy": opts.get("reap", "napi"),
        "napi_budget": opts.get("napi_budget", 64),
        "in_order": opts.get("in_order", False),
        "lookahead": opts.get("lookahead", 0),
        "tx_timer_ns": int(opts.get("tx_timer_ns", 0)),
    }


# the options of a small split ring the fixed scenarios start from (virtio-split, virtio-mq)
SPLIT_DEFAULT: dict[str, Any] = {
    "queue_size": 8,
    "event_idx": True,
    "indirect": False,
    "publish": "add",
    "avail_event": "vhost",
    "used_batch": 1,
}


def fitting_batches(opts: dict[str, Any]) -> dict[str, Any]:
    """``opts`` with drawn ``used_batch`` and ``signal_batch`` made legal (the check refuses
    others): each at most the queue, ``signal_batch`` at least ``used_batch`` (the device
    decides only on what it has published)."""
    opts["used_batch"] = min(opts["used_batch"], opts["queue_size"])
    if opts.get("signal_batch") is not None:
        wanted = max(opts["signal_batch"], opts["used_batch"])
        opts["signal_batch"] = min(wanted, opts["queue_size"])
    return opts


def fitting_segments(opts: dict[str, Any], max_segments: int) -> int:
    """The most segments a drawn request may have: without indirect tables a request's chain
    takes one ring descriptor per segment, so it must fit the ring (the check refuses more)."""
    return max_segments if opts["indirect"] else min(max_segments, opts["queue_size"])


def new_instance(
    name: str, opts: dict[str, Any], needs: Needs
) -> tuple[ModelDef, Instance, np.ndarray]:
    """(model, instance, counters) as the engine builds them for a batch of 1: the options must
    pass the model's check, and the counters track every line of the arena."""
    model = get_model(name)
    o = model.options(**opts)
    assert model.check(o, needs, 1) is None
    inst = model.build(o, needs)
    return model, inst, new_tracker(inst.mem)  # counters, then one line state per line


# --- the harness: one model instance and its reference, driven in lock step ----------------------
class Pair:
    """A model instance and its reference; every operation runs on both and must agree."""

    reap_len = False  # does the reference's reap also answer the used length?
    triggers = False  # does the reference's disable_interrupts take ``triggered``?

    def __init__(self, name: str, opts: dict[str, Any], needs: Needs, ref: Any) -> None:
        self.model, self.inst, self.ctr = new_instance(name, opts, needs)
        self.cfg = self.inst.cfg[0]
        self.ref = ref
        self.held: list[Popped] = []
        self.next_req = 0
        self.trace: list[str] = []
        self.decisions: list[tuple[str, int]] = []
        self.last_len = 0  # the used length the model's last successful reap answered

    def _run(self, op: int, slots: dict[int, int] | None = None) -> tuple[int, np.ndarray]:
        io = np.zeros(N_IO, dtype=np.int64)
        for k, v in (slots or {}).items():
            io[k] = v
        state = self.inst.drv if op < POP else self.inst.dev
        return int(call(op, self.inst.cfg, self.inst.mem, state, self.ctr, io)), io

    def _eq(self, what: str, got: Any, want: Any) -> None:
        assert got == want, f"{what}: model {got}, reference {want}; ops: {' '.join(self.trace)}"

    # driver
    def add(self, size: int, segs: int, write: bool, last: bool, prio: int | None = None) -> int:
        """Add the next request, then the kick decision; ``prio`` (its class) goes to the model
        in IO_PRIO and to the reference's ``add`` only when given, so the references of rings
        that ignore classes keep their four-argument ``add``."""
        req = self.next_req
        cls = "" if prio is None else f",c{prio}"
        self.trace.append(f"add(r{req},{size}B,{segs}s,{'w' if write else 'r'}{cls})")
        slots = {IO_REQ: req, IO_SIZE: size, IO_SEGS: segs, IO_DIR: int(write)}
        if prio is None:
            want = self.ref.add(req, size, segs, write)
        else:
            slots[IO_PRIO] = prio
            want = self.ref.add(req, size, segs, write, prio)
        got, _ = self._run(ADD, slots)
        self._eq("add", got, want)
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
        self.last_len = int(io[IO_LEN])
        self.check()
        return got

    def irq_off(self, triggered: bool = False) -> None:
        """The driver disables interrupts; ``triggered``: right after an interrupt fired (the
        engine's handler), passed to the rings whose reference knows what that changes."""
        self.trace.append(f"irq_off{'(triggered)' if triggered else ''}")
        got = self._run(IRQ_OFF, {IO_TRIGGERED: int(triggered)})[0]
        want = (
            self.ref.disable_interrupts(triggered) if triggered else self.ref.disable_interrupts()
        )
        self._eq("disable_interrupts", got, want)
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
        got, io = self._run(POP, {IO_SIGNALED: -1})  # as the engine calls pop
        want = self.ref.pop()
        # pop's own interrupt decision: only rings that signal a queue run dry make one
        self._eq("pop's signals", int(io[IO_SIGNALED]), getattr(self.ref, "pop_signals", -1))
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

    # random play: the step loop every lock-step test shares; rings refine the hooks
    max_size = 1 << 16

    def add_size(self, r: int, segs: int) -> int:
        return 1 + (r >> 8) % self.max_size

    def add_prio(self, r: int) -> int | None:
        return None

    def push_index(self, r: int) -> int:
        """Which held request the device completes next (default: the oldest)."""
        return 0

    def kick_off_step(self, r: int) -> None:
        self.kick_off()

    def may_kick_on(self) -> bool:
        return True

    def fast_forward(self, k: int) -> None:
        """``k`` round trips on model and reference alike (rings that start mid-lap)."""
        raise NotImplementedError

    def play_from(
        self, base: int, steps: list[tuple[str, int]], max_segments: int, max_held: int
    ) -> None:
        """:meth:`play` after ``base`` fast-forwarded round trips (none for 0): the random
        tests start next to an index wrap or mid-lap as well as on a fresh ring."""
        if base:
            self.fast_forward(base)
        self.play(steps, max_segments, max_held)

    def play(self, steps: list[tuple[str, int]], max_segments: int, max_held: int) -> None:
        """Run random ``(action, r)`` steps (r: random bits for the action's arguments), then
        drain: every answer and the shared state compared along the way."""
        for action, r in steps:
            if action == "add":
                segs = 1 + r % max_segments
                size = self.add_size(r, segs)
                self.add(size, segs, bool(r >> 4 & 1), bool(r & 1), prio=self.add_prio(r))
            elif action == "kick":
                self.kick(True)
            elif action == "reap":
                self.reap()
            elif action == "irq_off":
                self.irq_off(triggered=self.triggers and bool(r & 2))
            elif action == "irq_on":
                self.irq_on()
            elif action == "pop":
                if len(self.held) < max_held:
                    self.pop()
            elif action == "push":
                if self.held:
                    self.push(self.push_index(r))
            elif action == "irq":
                self.irq(bool(r & 1))
            elif action == "kick_off":
                self.kick_off_step(r)
            elif action == "kick_on" and self.may_kick_on():
                self.kick_on()
        self.drain()

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
        self.finish()

    def finish(self) -> None:
        """The interrupt handler as the engine runs it (disable, reap all, re-enable with a
        re-check, again while it finds more); then the shared state and the audit are clean."""
        while True:
            self.irq_off()
            while self.reap() is not None:
                pass
            if self.irq_on() == 1:
                break
        self.check(full=True)
        assert self.model.audit(self.inst) == [], " ".join(self.trace)


def assert_fills_exactly_at_capacity(p: Pair, segs: int, indirect: bool, write: bool) -> None:
    """Requests of ``segs`` segments fill a ring of ``p.n`` descriptors with exactly as many
    chains as fit (one descriptor per chain when an indirect table takes the segments), and
    one completion frees exactly one chain's descriptors: the next add fits, the one after not
    (``p.n % per`` descriptors are left over, fewer than a chain)."""
    per = 1 if (indirect and segs > 1) else segs
    added = 0
    while p.add(100, segs, write=write, last=False):
        added += 1
    assert added == p.n // per
    p.kick(True)
    p.pop()
    p.push(0)
    p.irq(True)
    assert p.reap() == 0
    assert p.add(100, segs, write=False, last=True) == 1
    assert p.add(100, segs, write=False, last=True) == 0
    p.drain()


# --- reading a split ring back from the arena ----------------------------------------------------
def rd(mem: np.ndarray, off: int, nbytes: int) -> int:
    """A little-endian unsigned field of the arena."""
    return int.from_bytes(view(mem, np.uint8)[off : off + nbytes].tobytes(), "little")


def payload_addr(req: int, off: int) -> int:
    """The guest-physical address of byte ``off`` of request ``req``'s buffer."""
    return DATA_GPA + (req << DATA_SHIFT) + off


Eq = Callable[[str, Any, Any], None]


class SplitView:
    """One split ring's shared areas as a peer reads them, found through its config record (a
    lone virtio-split ring, or one queue of virtio-mq), compared with a :class:`SplitRef`."""

    def __init__(self, mem: np.ndarray, c: Any) -> None:
        self.mem = mem
        self.n = int(c["split_n"])
        self.desc = int(c["desc"])
        self.avail = int(c["avail"])
        self.used = int(c["used"])
        self.hdr = int(c["hdr"])

    def scalars(self) -> dict[str, int]:
        mem, n, a, u = self.mem, self.n, self.avail, self.used
        return {
            "avail.flags": rd(mem, a, 2),
            "avail.idx": rd(mem, a + 2, 2),
            "used_event": rd(mem, a + 4 + 2 * n, 2),
            "used.flags": rd(mem, u, 2),
            "used.idx": rd(mem, u + 2, 2),
            "avail_event": rd(mem, u + 4 + 8 * n, 2),
        }

    def header(self, head: int) -> BlkHeader:
        h = self.hdr + 16 * head
        return BlkHeader(rd(self.mem, h, 4), rd(self.mem, h + 4, 4), rd(self.mem, h + 8, 8))

    def compare(self, eq: Eq, ref: SplitRef, what: str = "", descriptors: bool = True) -> None:
        """The indexes, flags, event fields and both rings; with ``descriptors`` also every
        outstanding request's descriptors and every request header written."""
        mem, n, a, u = self.mem, self.n, self.avail, self.used
        eq(f"{what}shared indexes/flags", self.scalars(), ref.shared_scalars())
        ring = mem[a + 4 : a + 4 + 2 * n].view("<u2").tolist()
        eq(f"{what}avail.ring", ring, ref.avail["ring"])
        elems = mem[u + 4 : u + 4 + 8 * n].view("<u4").reshape(n, 2).tolist()
        eq(f"{what}used.ring", [(i, ln) for i, ln in elems], ref.used["ring"])
        if descriptors:
            self.compare_descriptors(eq, ref, what)

    def compare_descriptors(self, eq: Eq, ref: SplitRef, what: str = "") -> None:
        """Every outstanding request's descriptors read as the reference wrote them, and (with a
        look-ahead device) every request header slot ever written holds what it last got."""
        mem, base = self.mem, self.desc
        for head, (req, ids) in ref.chains.items():
            d = base + 16 * head
            if head in ref.tables:
                table = ref.tables[head]
                eq(f"{what}desc {head} flags", rd(mem, d + 12, 2), F_INDIRECT)
                eq(f"{what}desc {head} len", rd(mem, d + 8, 4), 16 * len(table))
                tbl = rd(mem, d, 8) - ARENA_GPA
                entries = [(tbl + 16 * j, x) for j, x in enumerate(table)]
            else:
                entries = [(base + 16 * i, ref.desc[i]) for i in ids]
            for off, x in entries:
                eq(f"{what}r{req} addr", rd(mem, off, 8), payload_addr(x.req, x.off))
                eq(f"{what}r{req} len", rd(mem, off + 8, 4), x.len)
                eq(f"{what}r{req} flags", rd(mem, off + 12, 2), x.flags)
                if x.flags & F_NEXT:
                    eq(f"{what}r{req} next", rd(mem, off + 14, 2), x.next)
        if ref.headers:
            got = {h: self.header(h) for h in ref.headers}
            eq(f"{what}request headers", got, ref.headers)


# --- random operation sequences ------------------------------------------------------------------
MAX_SIZE = 1 << 16  # the largest request a random step adds, in bytes
# weights: the data path more often than the notification toggles
ACTIONS = (
    ["add"] * 5
    + ["kick"] * 2
    + ["reap"] * 3
    + ["irq_off", "irq_on"]
    + ["pop"] * 4
    + ["push"] * 3
    + ["irq"] * 2
    + ["kick_off", "kick_on"]
)
# steps for Pair.play: (action, r), r the random bits for the action's arguments
random_steps = strategies.lists(
    strategies.tuples(strategies.sampled_from(ACTIONS), strategies.integers(0, 1 << 30)),
    max_size=90,
)


class Step(NamedTuple):
    """One random step: the operation and the arguments an add would use."""

    action: str
    prio: int
    size: int
    segs: int
    flag: bool  # add: the device writes the buffer; kick/irq: end of batch; call add: retry


def steps_of(
    actions: list[str], min_size: int, max_size: int
) -> strategies.SearchStrategy[list[Step]]:
    """Operation sequences; each add's arguments drawn on their own, so that hypothesis spreads
    them rather than deriving them all from one small integer."""
    step = strategies.builds(
        Step,
        action=strategies.sampled_from(actions),
        prio=strategies.integers(0, 4),
        size=strategies.integers(1, MAX_SIZE),
        segs=strategies.integers(1, 8),
        flag=strategies.booleans(),
    )
    return strategies.lists(step, min_size=min_size, max_size=max_size)


# --- reading a vbus IOQ back from the arena ------------------------------------------------------
@dataclass(frozen=True)
class IoqAt:
    """Where one registered IOQ region's parts sit in the arena, from the layout alone."""

    region: int
    ring: int
    count: int

    @classmethod
    def of(cls, area: Area, count: int) -> IoqAt:
        return cls(area.offset, area.at("ring"), count)

    def _idx(self, which: int) -> int:
        return self.region + IOQ_RING_HEAD.offset("idx") + IOQ_RING_IDX.size * which

    def _mbox(self, side: int) -> int:
        sig = self.region + IOQ_RING_HEAD.offset("signal") + SHM_SIGNAL_DESC.offset("irq")
        return sig + SHM_SIGNAL_IRQ.size * side

    def desc(self, i: int) -> int:
        return self.ring + IOQ_RING_DESC.size * i

    def scalars(self, mem: np.ndarray) -> dict[str, int]:
        """The indexes and both mailboxes, keyed as the references' ``shared_scalars``."""
        out = {}
        for name, which in (("valid", IOQ_IDX_VALID), ("inuse", IOQ_IDX_INUSE)):
            ix = self._idx(which)
            out[f"{name}.head"] = rd(mem, ix + IOQ_RING_IDX.offset("head"), 4)
            out[f"{name}.tail"] = rd(mem, ix + IOQ_RING_IDX.offset("tail"), 4)
            out[f"{name}.full"] = rd(mem, ix + IOQ_RING_IDX.offset("full"), 1)
        for who, side in (("north", SHM_NORTH), ("south", SHM_SOUTH)):
            mbox = self._mbox(side)
            for k in ("enabled", "pending", "dirty"):
                out[f"{who}.{k}"] = rd(mem, mbox + SHM_SIGNAL_IRQ.offset(k), 1)
        return out

    def slot(self, mem: np.ndarray, i: int) -> tuple[int, int, int]:
        d = self.desc(i)
        return (
            rd(mem, d + IOQ_RING_DESC.offset("cookie"), 8),
            rd(mem, d + IOQ_RING_DESC.offset("valid"), 1),
            rd(mem, d + IOQ_RING_DESC.offset("sown"), 1),
        )

    def registration(self, mem: np.ndarray) -> tuple[int, int, int]:
        """What the guest wrote when it registered the region (never changes)."""
        r = self.region
        return (
            rd(mem, r + IOQ_RING_HEAD.offset("magic"), 4),
            rd(mem, r + IOQ_RING_HEAD.offset("ver"), 4),
            rd(mem, r + IOQ_RING_HEAD.offset("count"), 4),
        )


class VbusPair(Pair):
    """Checks shared by the vbus pairs: a request IOQ's state and its slots' buffers."""

    def check_ioq(self, what: str, at: IoqAt, ref: Any, pool: int, entry: int, deep: bool) -> None:
        mem = self.inst.mem
        self._eq(f"{what} indexes/mailboxes", at.scalars(mem), ref.shared_scalars())
        for i, s in enumerate(ref.slots):
            self._eq(
                f"{what} slot {i} cookie/valid/sown", at.slot(mem, i), (s.cookie, s.valid, s.sown)
            )
            if s.valid and deep:
                self.check_buffer(at.desc(i), s, ref.sg_pool, pool, entry)
        if deep:
            self._eq(
                f"{what} registration",
                at.registration(mem),
                (IOQ_RING_MAGIC, IOQ_RING_VER, at.count),
            )

    def check_buffer(self, d: int, s: Any, sg_pool: bool, pool: int, entry: int) -> None:
        """What the slot points at describes the request the reference put there."""
        mem = self.inst.mem
        ptr = rd(mem, d + IOQ_RING_DESC.offset("ptr"), 8)
        ln = rd(mem, d + IOQ_RING_DESC.offset("len"), 8)
        if not sg_pool:
            self._eq("flat ptr/len", (ptr, ln), (payload_addr(s.cookie, 0), s.size))
            return
        self._eq("pool entry len", ln, entry)
        e = pool + ptr
        hdr = (
            rd(mem, e + VENET_SG.offset("cookie"), 8),
            rd(mem, e + VENET_SG.offset("len"), 4),
            rd(mem, e + VENET_SG.offset("count"), 4),
        )
        self._eq("venet_sg header", hdr, (s.cookie, s.size, s.segs))
        off = 0
        for j in range(s.segs):
            v = e + VENET_SG.offset("iov") + VENET_IOV.size * j
            self._eq(
                f"iov {j} ptr", rd(mem, v + VENET_IOV.offset("ptr"), 8), payload_addr(s.cookie, off)
            )
            off += rd(mem, v + VENET_IOV.offset("len"), 4)
        self._eq("iov lengths sum", off, s.size)
