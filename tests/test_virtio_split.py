"""virtio-split: the jitted model against its pure-Python reference (tests/reference/split.py).

Random interleavings of driver and device operations (not the engine's schedule) run through the
model and its reference side by side (the harness of tests/reference/lockstep.py): every answer
must agree (add, kick decisions, pop's request and io slots, reap's request and used length,
interrupt decisions, the re-arm re-checks), and so must the shared state a peer can read from
the arena, checked after every step. A drain at the end must leave the model's own audit clean.
The split ring's options are all drawn, IN_ORDER, the device look-ahead window (with requests of
several classes) and the TX mitigation timer (with a clock that moves between device wakeups)
included. A few fixed scenarios pin the capacity rules, the EVENT_IDX window rule and what each
of those three options does.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference.lockstep import (
    ACTIONS,
    KICK_OFF,
    MAX_SIZE,
    SPLIT_DEFAULT,
    Pair,
    SplitView,
    assert_fills_exactly_at_capacity,
    fitting_batches,
    fitting_segments,
    random_steps,
    split_ref_options,
    view,
    warm,
)
from reference.split import SplitRef

from vbench.counters import (
    IO_NOW,
    IO_WAKE_AT,
)
from vbench.models import get_model
from vbench.models.interface import Needs

U16 = 0xFFFF


def split_ref(opts: dict[str, Any]) -> SplitRef:
    """The reference for a dict of the split model's options."""
    return SplitRef(opts["queue_size"], **split_ref_options(opts))


class SplitPair(Pair):
    triggers = True  # the reference's disable_interrupts takes an interrupt's trigger
    reap_len = True

    def __init__(self, opts: dict[str, Any], max_segments: int) -> None:
        super().__init__("virtio-split", opts, Needs(max_segments, MAX_SIZE), split_ref(opts))
        self.n = opts["queue_size"]
        self.view = SplitView(self.inst.mem, self.cfg)
        self.kick_old = 0  # avail.idx at the last kick decision (for the window rule)
        self.irq_old = 0  # used.idx at the last interrupt decision
        self.now = 0  # the device's clock, for the TX timer

    def fast_forward(self, k: int) -> None:
        i = self.inst
        warm(i.cfg, i.mem, i.drv, i.dev, self.ctr, k)
        self.ref.fast_forward(k)
        self.kick_old = self.irq_old = k & U16
        self.check(full=True)

    def scalars(self) -> dict[str, int]:
        return self.view.scalars()

    # play hooks: requests of several classes (only a look-ahead device reads them); any
    # completion order except IN_ORDER's; a device clock for the TX timer; vhost re-arms once
    # it has served all it saw (its cached avail.idx)
    def add_prio(self, r: int) -> int:
        return (r >> 5) % CLASSES

    def push_index(self, r: int) -> int:
        return 0 if self.ref.in_order else r % len(self.held)

    def kick_off_step(self, r: int) -> None:
        self.kick_off((r >> 3) % 6 * TICK_NS)  # 0-5 ticks: a 2-tick timer also fires on time

    def may_kick_on(self) -> bool:
        return self.ref.device_drained()

    def kick_off(self, advance: int = 0) -> int:
        """A device wakeup ``advance`` ns after the previous one: the model sees the clock in
        IO_NOW and, when a TX timer defers the work, must name its deadline in IO_WAKE_AT."""
        self.now += advance
        self.trace.append(f"kick_off(t={self.now})")
        got, io = self._run(KICK_OFF, {IO_NOW: self.now})
        want = self.ref.disable_kicks(self.now)
        self._eq("disable_kicks", got, want)
        self._eq("wake-up time", int(io[IO_WAKE_AT]), self.ref.wake_at if want == 1 else 0)
        self.check()
        return got

    def kick(self, last: bool) -> int:
        event = self.scalars()["avail_event"]
        got = super().kick(last)
        self.kick_old = self._window_rule(got, event, self.kick_old, "avail.idx")
        return got

    def irq(self, last: bool) -> int:
        event = self.scalars()["used_event"]
        got = super().irq(last)
        self.irq_old = self._window_rule(got, event, self.irq_old, "used.idx")
        return got

    def _window_rule(self, got: int, event: int, old: int, index: str) -> int:
        """The window rule, checked on the model alone (not through the reference): under
        EVENT_IDX a decision after publishing ``old`` .. new-1 (new: the ``index`` now) is 1
        iff the peer's ``event`` index is one of them. The index the next decision's window
        starts from."""
        if got < 0:
            return old  # no decision: the window goes on
        new = self.scalars()[index]
        if self.ref.event_idx:
            window = {(old + j) & U16 for j in range((new - old) & U16)}
            assert got == int(event in window), (event, old, new, self.trace)
        return new

    def check(self, full: bool = False) -> None:
        self.view.compare(self._eq, self.ref, descriptors=full or len(self.trace) % 4 == 0)


CLASSES = 4  # request classes drawn for the split ring (only a look-ahead device reads them)
TICK_NS = 250  # the device clock moves by a multiple of this between wakeups


split_opts = st.fixed_dictionaries(
    {
        "queue_size": st.sampled_from([4, 8, 16, 32, 64]),
        "event_idx": st.booleans(),
        "indirect": st.booleans(),
        "publish": st.sampled_from(["add", "kick"]),
        "avail_event": st.sampled_from(["vhost", "qemu"]),
        "used_batch": st.integers(1, 4),
        "signal_batch": st.sampled_from([None, None, 1, 2, 4, 6]),
        "reap": st.sampled_from(["napi", "get_buf", "delayed"]),
        "napi_budget": st.sampled_from([1, 2, 3, 64]),
        "in_order": st.booleans(),
        "lookahead": st.sampled_from([0, 0, 1, 2, 3, 8]),
        "tx_timer_ns": st.sampled_from([0.0, 0.0, 2.0 * TICK_NS, 3.5 * TICK_NS]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    opts=split_opts,
    max_segments=st.integers(1, 8),
    base=st.sampled_from([0, 0, 0, 65536 - 2, 65536 - 9]),
    steps=random_steps,
)
def test_split_matches_reference(opts, max_segments, base, steps):
    if opts["in_order"]:
        opts["lookahead"] = 0  # look-ahead completes out of order: a configuration error
    opts["lookahead"] = min(opts["lookahead"], opts["queue_size"])
    max_segments = fitting_segments(fitting_batches(opts), max_segments)
    # base: start next to the u16 wrap of every index
    SplitPair(opts, max_segments).play_from(base, steps, max_segments, max_held=4)


@settings(max_examples=300, deadline=None)
@given(
    opts=split_opts,
    n=st.sampled_from([4, 8, 16]),  # small rings: full rings and wraps within a sequence
    order=st.sampled_from(["in_order", "lookahead", "fifo"]),
    window=st.sampled_from([2, 3, 4, 8]),
    timer=st.sampled_from([0.0, 2.0 * TICK_NS, 3.5 * TICK_NS]),
    max_segments=st.integers(1, 4),
    base=st.sampled_from([0, 0, 65536 - 3]),
    max_held=st.integers(2, 6),
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1 << 30)), min_size=30, max_size=120
    ),
)
def test_split_order_and_timer_match_reference(
    opts, n, order, window, timer, max_segments, base, max_held, steps
):
    """The options that change which buffer is used when, drawn every time: IN_ORDER (one used
    element per flush), a look-ahead window over requests of four classes, and the TX timer
    (alone or with either), with longer sequences and more requests held by the device."""
    assume(order != "fifo" or timer > 0)
    opts.update(
        queue_size=n,
        in_order=order == "in_order",
        lookahead=min(window, n) if order == "lookahead" else 0,
        tx_timer_ns=timer,
    )
    max_segments = fitting_segments(fitting_batches(opts), max_segments)
    SplitPair(opts, max_segments).play_from(base, steps, max_segments, max_held=max_held)


# --- fixed scenarios ------------------------------------------------------------------------------
@pytest.mark.parametrize("indirect", [False, True])
@pytest.mark.parametrize("segs", [1, 2, 3, 8])
def test_split_fills_exactly_at_capacity(indirect, segs):
    p = SplitPair({**SPLIT_DEFAULT, "indirect": indirect}, max_segments=segs)
    assert_fills_exactly_at_capacity(p, segs, indirect, write=False)


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


def test_split_in_order_one_used_element_per_flush():
    """IN_ORDER: descriptors go out in ring order across the wrap, a flush of three completions
    writes one used element (the last buffer's id and length) and moves used.idx by three, and
    the driver completes all three with only the last one learning a length."""
    p = SplitPair(
        {**SPLIT_DEFAULT, "in_order": True, "used_batch": 4, "event_idx": False}, max_segments=2
    )
    p.fast_forward(7)  # the next descriptor is 7: chains wrap to 0
    for segs, size in ((2, 100), (1, 200), (2, 300)):
        p.add(size, segs, write=True, last=False)
    p.kick(True)
    assert list(p.ref.chains) == [7, 1, 2] and p.ref.chains[7][1] == [7, 0]
    for _ in range(3):
        p.pop()
        p.push(0)
        assert p.irq(False) == -1  # fewer than used_batch: nothing published yet
    assert p.irq(True) == 1
    assert p.scalars()["used.idx"] == 10
    assert p.ref.used["ring"][7] == (2, 300)
    p.irq_off()
    lengths = []
    for _ in range(3):
        p.reap()  # SplitPair compares the model's IO_LEN with the reference's
        lengths.append(p.last_len)
    assert lengths == [0, 0, 300]
    p.drain()


@pytest.mark.parametrize("in_order", [True, False])
def test_split_in_order_device_takes_heads_without_reading_the_avail_ring(in_order):
    """vhost's in-order pop deduces each head from the last chain taken (next_avail_head), so
    avail ring entries rotated behind its back change nothing; a device that reads the ring
    (the control) serves the rotated order."""
    p = SplitPair({**SPLIT_DEFAULT, "in_order": in_order, "queue_size": 16}, max_segments=2)
    p.fast_forward(14)  # the chains wrap the table
    for segs in (2, 1, 2):
        p.add(64, segs, write=False, last=False)
    p.kick(True)
    slots = [(14 + k) % 16 for k in range(3)]
    heads = [p.ref.avail["ring"][i] for i in slots]
    rotated = heads[1:] + heads[:1]
    arena = view(p.inst.mem, np.uint8)
    for i, head in zip(
        slots, rotated, strict=True
    ):  # the same rotation in the model's ring and the ref's
        arena[p.view.avail + 4 + 2 * i : p.view.avail + 6 + 2 * i] = [head & 0xFF, head >> 8]
        p.ref.avail["ring"][i] = head
    served = [p.pop().req for _ in range(3)]
    assert served == ([0, 1, 2] if in_order else [1, 2, 0])
    for _ in range(3):
        p.push(0)
    p.drain()


def test_split_lookahead_serves_the_highest_class_in_its_window():
    """A window of 4: the device serves the most urgent of the entries it has read, the oldest
    first among equals, and refills from the ring as it goes (a class-3 request beyond the first
    window overtakes the class-2 and older ones once it is in)."""
    p = SplitPair({**SPLIT_DEFAULT, "lookahead": 4}, max_segments=1)
    for prio in (0, 2, 1, 2, 3):
        p.add(64, 1, write=False, last=False, prio=prio)
    p.kick(True)
    served = [p.pop().req for _ in range(5)]
    assert served == [1, 4, 3, 2, 0]
    assert p.pop() is None
    for _ in range(5):
        p.push(len(p.held) - 1)
    p.drain()


def test_split_tx_timer_defers_until_it_fires():
    """The first wakeup arms the timer and defers to its deadline; a wakeup before the deadline
    defers to the same deadline; one at the deadline flushes, and the next one arms it again."""
    p = SplitPair({**SPLIT_DEFAULT, "event_idx": False, "tx_timer_ns": 1000.0}, max_segments=1)
    assert p.kick_off(100) == 1 and p.ref.wake_at == 1100
    assert p.scalars()["used.flags"] == 1  # notifications stay off meanwhile
    assert p.kick_off(400) == 1 and p.ref.wake_at == 1100
    assert p.kick_off(600) == 0  # t = 1100: the timer fires, the queue is flushed now
    assert p.kick_off(1) == 1 and p.ref.wake_at == 2101
    p.drain()


def test_reference_fast_forward_is_round_trips():
    """The reference's closed-form fast-forward equals doing the round trips one by one."""
    for qemu, event_idx, policy, budget, order, k in itertools.product(
        (False, True),
        (False, True),
        ("napi", "get_buf", "delayed"),
        (1, 64),
        ("fifo", "in_order", "lookahead"),
        (5, 21),
    ):
        kw = {
            "event_idx": event_idx,
            "indirect": True,
            "publish_on_add": False,
            "used_batch": 2,
            "qemu_avail_event": qemu,
            "reap_policy": policy,
            "napi_budget": budget,
            "in_order": order == "in_order",
            "lookahead": 2 if order == "lookahead" else 0,
        }
        a = SplitRef(8, **kw)
        b = SplitRef(8, **kw)
        for _ in range(k):
            a.add(0, 1, 1, False)
            a.kick_needed(True)
            q = a.pop()
            a.push_used(q.handle, q.length)
            a.interrupt_needed(True)
            a.disable_interrupts()
            a.reap()
            a.enable_interrupts()
        b.fast_forward(k)
        assert vars(a) == vars(b), kw


# --- the device's batches (vhost-net's defaults) -------------------------------------------------
def test_split_batches_default_to_vhost_net():
    """``used_batch`` and ``signal_batch`` default to ``VHOST_NET_BATCH`` (64), at most the
    queue, as ``handle_tx_copy`` flushes ``vq->heads`` through ``vhost_net_signal_used``."""
    model = get_model("virtio-split")
    assert (model.options().used_batch, model.options().signal_batch) == (64, 64)
    small = model.options(queue_size=16)
    assert (small.used_batch, small.signal_batch) == (16, 16)
    assert model.options(used_batch=4).signal_batch == 4


def test_split_signal_batch_decides_once_per_batch():
    """Published every completion, decided every third (or when the ring runs empty): the
    vhost-scsi pattern of ``vhost_add_used`` per command and one ``vhost_signal`` after them."""
    p = SplitPair({**SPLIT_DEFAULT, "used_batch": 1, "signal_batch": 3}, max_segments=1)
    for _ in range(4):
        p.add(100, 1, write=False, last=False)
    p.kick(True)
    decisions, published = [], []
    for k in range(4):
        p.pop()
        p.push(0)
        decisions.append(p.irq(k == 3))
        published.append(p.scalars()["used.idx"])
    assert published == [1, 2, 3, 4]
    # used_event is 0: the first decision covers entries 0-2 and notifies, the last one (3) not
    assert decisions == [-1, -1, 1, 0]
    p.drain()


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"queue_size": 8, "used_batch": 16}, "used_batch = 16 is larger than the ring"),
        ({"used_batch": 8, "signal_batch": 4}, "signal_batch = 4 is smaller than used_batch = 8"),
        ({"queue_size": 8, "used_batch": 2, "signal_batch": 9}, "signal_batch = 9 is larger"),
    ],
)
def test_split_batches_checked(opts, words):
    model = get_model("virtio-split")
    problem = model.check(model.options(**opts), Needs(1, MAX_SIZE), 1)
    assert problem is not None and words in problem
