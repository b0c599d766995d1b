"""The jitted ring models against the small pure-Python references of tests/reference_rings.py.

Random interleavings of driver and device operations (not the engine's schedule) run through a
model and its reference side by side: every answer must agree (add, kick decisions, pop's
request and io slots, reap's request, interrupt decisions, the re-arm re-checks), and so must
the shared state a peer can read from the arena, checked after every step. A drain at the end
must leave the model's own audit clean. A few fixed scenarios pin the capacity rules and the
EVENT_IDX window rule.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import Pair
from numba import njit
from reference_rings import (
    F_INDIRECT,
    F_NEXT,
    IoqRef,
    SplitRef,
)

from vbench.counters import (
    IO_LAST,
    IO_SEGS,
    IO_SIZE,
    N_IO,
)
from vbench.layout import IOQ_RING_DESC, IOQ_RING_IDX, SHM_SIGNAL_IRQ, VENET_IOV, VENET_SG
from vbench.memory import ARENA_GPA, DATA_GPA, DATA_SHIFT, view
from vbench.models import interface as m
from vbench.models.interface import Needs

U16 = 0xFFFF
MAX_SIZE = 1 << 16


@njit
def warm(cfg, mem, drv, dev, ctr, k):
    """``k`` one-segment round trips: add, kick decision, pop, push, end-of-batch decision, then
    the interrupt handler (disable, reap, enable)."""
    io = np.zeros(N_IO, dtype=np.int64)
    for _ in range(k):
        io[:] = 0
        io[IO_SIZE] = 1
        io[IO_SEGS] = 1
        m.add(cfg, mem, drv, ctr, io)
        io[IO_LAST] = 1
        m.kick_needed(cfg, mem, drv, ctr, io)
        io[:] = 0
        m.pop(cfg, mem, dev, ctr, io)
        m.push_used(cfg, mem, dev, ctr, io)
        io[IO_LAST] = 1
        m.interrupt_needed(cfg, mem, dev, ctr, io)
        m.disable_interrupts(cfg, mem, drv, ctr, io)
        m.reap(cfg, mem, drv, ctr, io)
        m.enable_interrupts(cfg, mem, drv, ctr, io)


def rd(mem: np.ndarray, off: int, nbytes: int) -> int:
    """A little-endian unsigned field of the arena."""
    return int.from_bytes(view(mem, np.uint8)[off : off + nbytes].tobytes(), "little")


def payload_addr(req: int, off: int) -> int:
    return DATA_GPA + (req << DATA_SHIFT) + off


class SplitPair(Pair):
    reap_len = True

    def __init__(self, opts: dict[str, Any], max_segments: int) -> None:
        ref = SplitRef(
            opts["queue_size"],
            event_idx=opts["event_idx"],
            indirect=opts["indirect"],
            publish_on_add=opts["publish"] == "add",
            qemu_avail_event=opts["avail_event"] == "qemu",
            used_batch=opts["used_batch"],
            reap_policy=opts.get("reap", "napi"),
            napi_budget=opts.get("napi_budget", 64),
        )
        super().__init__("virtio-split", opts, Needs(max_segments, MAX_SIZE), ref)
        self.n = opts["queue_size"]
        self.avail = int(self.cfg["avail"])
        self.used = int(self.cfg["used"])
        self.kick_old = 0  # avail.idx at the last kick decision (for the window rule)
        self.irq_old = 0  # used.idx at the last interrupt decision

    def fast_forward(self, k: int) -> None:
        i = self.inst
        warm(i.cfg, i.mem, i.drv, i.dev, self.ctr, k)
        self.ref.fast_forward(k)
        self.kick_old = self.irq_old = k & U16
        self.check(full=True)

    def scalars(self) -> dict[str, int]:
        mem, n, a, u = self.inst.mem, self.n, self.avail, self.used
        return {
            "avail.flags": rd(mem, a, 2),
            "avail.idx": rd(mem, a + 2, 2),
            "used_event": rd(mem, a + 4 + 2 * n, 2),
            "used.flags": rd(mem, u, 2),
            "used.idx": rd(mem, u + 2, 2),
            "avail_event": rd(mem, u + 4 + 8 * n, 2),
        }

    # the window rule, checked on the model alone: a decision after publishing old .. new-1 is
    # 1 iff the peer's event index is one of them
    def kick(self, last: bool) -> int:
        ev = self.scalars()["avail_event"]
        got = super().kick(last)
        if got >= 0:
            new = self.scalars()["avail.idx"]
            if self.ref.event_idx:
                window = {(self.kick_old + j) & U16 for j in range((new - self.kick_old) & U16)}
                assert got == int(ev in window), (ev, self.kick_old, new, self.trace)
            self.kick_old = new
        return got

    def irq(self, last: bool) -> int:
        ev = self.scalars()["used_event"]
        got = super().irq(last)
        if got >= 0:
            new = self.scalars()["used.idx"]
            if self.ref.event_idx:
                window = {(self.irq_old + j) & U16 for j in range((new - self.irq_old) & U16)}
                assert got == int(ev in window), (ev, self.irq_old, new, self.trace)
            self.irq_old = new
        return got

    def check(self, full: bool = False) -> None:
        self._eq("shared indexes/flags", self.scalars(), self.ref.shared_scalars())
        mem, n, a, u = self.inst.mem, self.n, self.avail, self.used
        ring = [rd(mem, a + 4 + 2 * i, 2) for i in range(n)]
        self._eq("avail.ring", ring, self.ref.avail["ring"])
        used = [(rd(mem, u + 4 + 8 * i, 4), rd(mem, u + 8 + 8 * i, 4)) for i in range(n)]
        self._eq("used.ring", used, self.ref.used["ring"])
        if full or len(self.trace) % 4 == 0:
            self.check_descriptors()

    def check_descriptors(self) -> None:
        """Every outstanding request's descriptors read as the reference wrote them."""
        mem, base = self.inst.mem, int(self.cfg["desc"])
        ref = self.ref
        for head, (req, ids) in ref.chains.items():
            d = base + 16 * head
            if head in ref.tables:
                table = ref.tables[head]
                self._eq(f"desc {head} flags", rd(mem, d + 12, 2), F_INDIRECT)
                self._eq(f"desc {head} len", rd(mem, d + 8, 4), 16 * len(table))
                tbl = rd(mem, d, 8) - ARENA_GPA
                entries = [(tbl + 16 * j, x) for j, x in enumerate(table)]
            else:
                entries = [(base + 16 * i, ref.desc[i]) for i in ids]
            for off, x in entries:
                self._eq(f"r{req} addr", rd(mem, off, 8), payload_addr(x.req, x.off))
                self._eq(f"r{req} len", rd(mem, off + 8, 4), x.len)
                self._eq(f"r{req} flags", rd(mem, off + 12, 2), x.flags)
                if x.flags & F_NEXT:
                    self._eq(f"r{req} next", rd(mem, off + 14, 2), x.next)


class IoqPair(Pair):
    def __init__(self, opts: dict[str, Any], max_segments: int) -> None:
        ref = IoqRef(
            opts["queue_size"],
            txmitigation=opts["txmitigation"],
            sg_pool=opts["sg"] == "pool",
            eoi_windows=opts.get("eoi") == "windows",
        )
        super().__init__("vbus-ioq", opts, Needs(max_segments, MAX_SIZE), ref)
        self.count = opts["queue_size"]

    def scalars(self) -> dict[str, int]:
        mem, c = self.inst.mem, self.cfg
        out = {}
        for name in ("valid", "inuse"):
            ix = int(c[f"{name}_idx"])
            out[f"{name}.head"] = rd(mem, ix + IOQ_RING_IDX.offset("head"), 4)
            out[f"{name}.tail"] = rd(mem, ix + IOQ_RING_IDX.offset("tail"), 4)
            out[f"{name}.full"] = rd(mem, ix + IOQ_RING_IDX.offset("full"), 1)
        for who in ("north", "south"):
            mb = int(c[who])
            for k in ("enabled", "pending", "dirty"):
                out[f"{who}.{k}"] = rd(mem, mb + SHM_SIGNAL_IRQ.offset(k), 1)
        return out

    def check(self, full: bool = False) -> None:
        self._eq("indexes/mailboxes", self.scalars(), self.ref.shared_scalars())
        mem, ring, size = self.inst.mem, int(self.cfg["ring"]), IOQ_RING_DESC.size
        for i, s in enumerate(self.ref.slots):
            d = ring + size * i
            got = (
                rd(mem, d + IOQ_RING_DESC.offset("cookie"), 8),
                rd(mem, d + IOQ_RING_DESC.offset("valid"), 1),
                rd(mem, d + IOQ_RING_DESC.offset("sown"), 1),
            )
            self._eq(f"slot {i} cookie/valid/sown", got, (s.cookie, s.valid, s.sown))
            if s.valid and (full or len(self.trace) % 4 == 0):
                self.check_buffer(d, s)

    def check_buffer(self, d: int, s: Any) -> None:
        """What the slot points at describes the request the reference put there."""
        mem = self.inst.mem
        ptr = rd(mem, d + IOQ_RING_DESC.offset("ptr"), 8)
        ln = rd(mem, d + IOQ_RING_DESC.offset("len"), 8)
        if not self.ref.sg_pool:
            self._eq("flat ptr/len", (ptr, ln), (payload_addr(s.cookie, 0), s.size))
            return
        e = int(self.cfg["pool"]) + ptr
        hdr = (
            rd(mem, e + VENET_SG.offset("cookie"), 8),
            rd(mem, e + VENET_SG.offset("len"), 4),
            rd(mem, e + VENET_SG.offset("count"), 4),
        )
        self._eq("venet_sg header", hdr, (s.cookie, s.size, s.segs))
        off = 0
        for j in range(s.segs):
            v = e + VENET_SG.offset("iov") + VENET_IOV.size * j
            seg = rd(mem, v + VENET_IOV.offset("len"), 4)
            self._eq(
                f"iov {j} ptr", rd(mem, v + VENET_IOV.offset("ptr"), 8), payload_addr(s.cookie, off)
            )
            off += seg
        self._eq("iov lengths sum", off, s.size)


# --- random operation sequences ------------------------------------------------------------------
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
steps_st = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1 << 30)), max_size=90)


def play(p: Pair, steps: list[tuple[str, int]], max_segments: int, max_held: int) -> None:
    for action, r in steps:
        if action == "add":
            segs = 1 + r % max_segments
            size = 1 + (r >> 8) % MAX_SIZE
            p.add(size, segs, write=bool(r >> 4 & 1), last=bool(r & 1))
        elif action == "kick":
            p.kick(True)
        elif action == "reap":
            p.reap()
        elif action == "irq_off":
            p.irq_off()
        elif action == "irq_on":
            p.irq_on()
        elif action == "pop":
            if len(p.held) < max_held:
                p.pop()
        elif action == "push":
            if p.held:
                # split completes in any order; an IOQ hands slots back in order
                p.push(r % len(p.held) if isinstance(p, SplitPair) else 0)
        elif action == "irq":
            p.irq(bool(r & 1))
        elif action == "kick_off":
            p.kick_off()
        elif action == "kick_on" and (not isinstance(p, SplitPair) or p.ref.device_drained()):
            # a vhost device re-arms once it has taken all it saw (its cached avail.idx)
            p.kick_on()
    p.drain()


split_opts = st.fixed_dictionaries(
    {
        "queue_size": st.sampled_from([4, 8, 16, 32, 64]),
        "event_idx": st.booleans(),
        "indirect": st.booleans(),
        "publish": st.sampled_from(["add", "kick"]),
        "avail_event": st.sampled_from(["vhost", "qemu"]),
        "used_batch": st.integers(1, 4),
        "reap": st.sampled_from(["napi", "get_buf", "delayed"]),
        "napi_budget": st.sampled_from([1, 2, 3, 64]),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    opts=split_opts,
    max_segments=st.integers(1, 8),
    base=st.sampled_from([0, 0, 0, 65536 - 2, 65536 - 9]),
    steps=steps_st,
)
def test_split_matches_reference(opts, max_segments, base, steps):
    if not opts["indirect"]:
        max_segments = min(max_segments, opts["queue_size"])
    p = SplitPair(opts, max_segments)
    if base:
        p.fast_forward(base)  # start next to the u16 wrap of every index
    play(p, steps, max_segments, max_held=4)


ioq_opts = st.fixed_dictionaries(
    {
        "queue_size": st.integers(2, 64),
        "txmitigation": st.integers(1, 12),
        "sg": st.sampled_from(["pool", "flat"]),
        "eoi": st.sampled_from(["linux", "windows"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(opts=ioq_opts, max_segments=st.integers(1, 8), steps=steps_st)
def test_vbus_matches_reference(opts, max_segments, steps):
    # the device completes each request before it takes the next (see the xfail below)
    play(IoqPair(opts, max_segments), steps, max_segments, max_held=1)


# --- fixed scenarios ------------------------------------------------------------------------------
SPLIT_DEFAULT = {
    "queue_size": 8,
    "event_idx": True,
    "indirect": False,
    "publish": "add",
    "avail_event": "vhost",
    "used_batch": 1,
}


@pytest.mark.parametrize("indirect", [False, True])
@pytest.mark.parametrize("segs", [1, 2, 3, 8])
def test_split_fills_exactly_at_capacity(indirect, segs):
    n = 8
    p = SplitPair({**SPLIT_DEFAULT, "indirect": indirect}, max_segments=segs)
    per = 1 if (indirect and segs > 1) else segs
    added = 0
    while p.add(100, segs, write=False, last=False):
        added += 1
    assert added == n // per
    # one completion frees exactly one chain's descriptors
    p.kick(True)
    p.pop()
    p.push(0)
    p.irq(True)
    assert p.reap() == 0
    assert p.add(100, segs, write=False, last=True) == 1
    assert p.add(100, segs, write=False, last=True) == 0  # n % per < per left over
    p.drain()


@pytest.mark.parametrize("count", [2, 3, 8, 64])
def test_vbus_all_slots_usable(count):
    p = IoqPair({"queue_size": count, "txmitigation": 10, "sg": "pool"}, max_segments=2)
    for _ in range(count):
        assert p.add(64, 2, write=False, last=False) == 1
    s = p.scalars()
    assert (s["valid.head"], s["valid.tail"], s["valid.full"]) == (0, 0, 1)
    assert p.add(64, 2, write=False, last=True) == 0  # full: nothing changes
    assert p.scalars() == s
    # one completion and one reap make exactly one slot usable again
    p.pop()
    p.push(0)
    p.irq(True)
    assert p.reap() == 0
    assert p.add(64, 2, write=False, last=True) == 1
    assert p.add(64, 2, write=False, last=True) == 0
    p.drain()


@pytest.mark.parametrize("publish", ["add", "kick"])
@pytest.mark.parametrize("base", [0, 65536 - 2])
def test_split_kick_window(publish, base):
    """After a drained device re-arms (avail_event = the index it stopped at), the first batch
    that publishes that index kicks and later batches do not, across the u16 wrap too."""
    p = SplitPair({**SPLIT_DEFAULT, "queue_size": 16, "publish": publish}, max_segments=1)
    p.fast_forward(base)
    for _ in range(3):
        p.add(10, 1, write=False, last=False)
    p.kick(True)
    while p.pop() is not None:
        pass
    assert p.kick_on() == 1  # drained: avail_event = base + 3
    assert p.scalars()["avail_event"] == (base + 3) & U16
    decisions = []
    for batch in (2, 1, 3):
        for _ in range(batch):
            p.add(10, 1, write=False, last=False)
        decisions.append(p.kick(True))  # SplitPair.kick also asserts the window rule
    assert decisions == [1, 0, 0]
    p.drain()


@pytest.mark.parametrize("base", [0, 65536 - 1])
def test_split_interrupt_window(base):
    """used_event = last_used after each reap: the device interrupts for the first completion
    the driver waits for; while the handler runs (used_event = 0) it stays quiet."""
    p = SplitPair({**SPLIT_DEFAULT, "queue_size": 16}, max_segments=1)
    p.fast_forward(base)
    for _ in range(4):
        p.add(10, 1, write=False, last=False)
    p.kick(True)
    p.pop()
    p.push(0)
    assert p.irq(False) == 1  # used_event == base: the first new entry
    p.irq_off()  # handler: used_event = 0
    p.pop()
    p.push(0)
    # the window is base+1 .. base+1 and contains 0 only where base+1 wraps to 0
    assert p.irq(False) == (1 if (base + 1) & U16 == 0 else 0)
    assert p.reap() == 0 and p.reap() == 1 and p.reap() is None
    assert p.irq_on() == 1
    p.pop()
    p.push(0)
    assert p.irq(True) == 1
    p.drain()


def test_split_delayed_interrupt():
    """enable_cb_delayed arms used_event at 3/4 of the outstanding buffers, and its re-check
    calls it safe to wait while fewer than that have completed."""
    p = SplitPair({**SPLIT_DEFAULT, "queue_size": 16, "reap": "delayed"}, max_segments=1)
    for i in range(8):
        p.add(10, 1, write=False, last=i == 7)
    assert p.irq_on() == 1
    assert p.scalars()["used_event"] == 6
    decisions = []
    for k in range(8):
        p.pop()
        p.push(0)
        decisions.append(p.irq(False))
        if k == 4:
            assert p.irq_on() == 1  # 5 completions waiting, the interrupt comes at the 7th
    assert decisions == [0, 0, 0, 0, 0, 0, 1, 0]
    p.drain()


def test_reference_fast_forward_is_round_trips():
    """The reference's closed-form fast-forward equals doing the round trips one by one."""
    for qemu, event_idx, policy, budget in itertools.product(
        (False, True), (False, True), ("napi", "get_buf", "delayed"), (1, 64)
    ):
        kw = {
            "event_idx": event_idx,
            "indirect": True,
            "publish_on_add": False,
            "used_batch": 2,
            "qemu_avail_event": qemu,
            "reap_policy": policy,
            "napi_budget": budget,
        }
        a = SplitRef(8, **kw)
        b = SplitRef(8, **kw)
        for _ in range(21):
            a.add(0, 1, 1, False)
            a.kick_needed(True)
            q = a.pop()
            a.push_used(q.handle, q.length)
            a.interrupt_needed(True)
            a.disable_interrupts()
            a.reap()
            a.enable_interrupts()
        b.fast_forward(21)
        assert vars(a) == vars(b), kw


def test_vbus_pop_takes_the_request():
    """A device may take several requests before completing them (ioq_iter walks on)."""
    p = IoqPair({"queue_size": 4, "txmitigation": 10, "sg": "pool"}, max_segments=1)
    p.add(64, 1, write=False, last=True)
    p.add(64, 1, write=False, last=True)
    assert p.pop().req == 0
    assert p.pop().req == 1  # the model answers 0 again
