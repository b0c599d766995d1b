"""virtio-mq against its pure-Python reference (tests/reference_mq.py), op by op.

Random interleavings of driver and device operations over requests of every class (and one
class above the last queue, which shares the last queue) run through the jitted model and an
:class:`~reference_mq.MqRef` side by side. Every answer must agree: add, the kick decision of
each add (one or two queues deciding), pop's request and io slots (the highest non-empty queue
first), the used length of every reap (the highest class first), the interrupt answer (how many
queues interrupt), the re-arm re-checks over every queue. After every step the shared state of
every queue (indexes, flags, event fields, both rings, the outstanding descriptors) must read
as the reference's, and so must the notifications the model counts itself. The device holds up
to several requests of different queues and completes them in any order (in pop order per
queue under IN_ORDER). A drain at the end must leave the model's own audit clean.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import Pair, SplitView, split_ref_options, warm
from reference_mq import MqRef

from vbench.counters import (
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_VM_EXITS,
)
from vbench.models.interface import Needs

MAX_SIZE = 1 << 16
U16 = 0xFFFF
# the notifications virtio-mq counts itself (the engine counts one per answer)
COUNTED = {
    "kicks": C_KICKS,
    "vm_exits": C_VM_EXITS,
    "kicks_suppressed": C_KICKS_SUPPRESSED,
    "interrupts_suppressed": C_IRQS_SUPPRESSED,
}


class MqPair(Pair):
    """virtio-mq and :class:`MqRef`, compared queue by queue after every step."""

    reap_len = True

    def __init__(self, opts: dict[str, Any], queues: int, max_segments: int) -> None:
        ref = MqRef(queues, opts["queue_size"], **split_ref_options(opts))
        needs = Needs(max_segments, MAX_SIZE, classes=queues)
        super().__init__("virtio-mq", {**opts, "queues": queues}, needs, ref)
        self.n = opts["queue_size"]
        self.views = [SplitView(self.inst.mem, self.inst.cfg[1 + q]) for q in range(queues)]

    # play hooks: one class above the last queue (it shares that queue); completions in any
    # order across queues, but within an IN_ORDER queue in the order popped; the device re-arms
    # every queue once it has served all it saw
    def add_prio(self, r: int) -> int:
        return (r >> 5) % (len(self.views) + 1)

    def push_index(self, r: int) -> int:
        k = r % len(self.held)
        if self.ref.queues[0].in_order:
            q = self.queue_of_held(k)
            k = next(j for j in range(len(self.held)) if self.queue_of_held(j) == q)
        return k

    def may_kick_on(self) -> bool:
        return self.ref.device_drained()

    def fast_forward(self, k: int) -> None:
        """``k`` round trips on every queue: each queue's indexes end next to the u16 wrap."""
        i = self.inst
        warm(i.cfg, i.mem, i.drv, i.dev, self.ctr, k, len(self.views))
        for ring in self.ref.queues:
            ring.fast_forward(k)
        if k:
            # the later queues' handlers disabled and re-armed the earlier, idle queues too
            for ring in self.ref.queues[:-1]:
                ring.disable_interrupts()
                ring.enable_interrupts()
        self.check(full=True)

    def queue_of_held(self, k: int) -> int:
        return self.held[k].handle // self.n

    def check(self, full: bool = False) -> None:
        descriptors = full or len(self.trace) % 4 == 0
        for q, (v, ring) in enumerate(zip(self.views, self.ref.queues, strict=True)):
            v.compare(self._eq, ring, f"q{q} ", descriptors)
        counted = {name: int(self.ctr[c]) for name, c in COUNTED.items()}
        want = {name: self.ref.counted[name] for name in COUNTED}
        self._eq("notifications the model counts itself", counted, want)


# weights: the device keeps up with the driver often enough to run dry and re-arm every queue
ACTIONS = (
    ["add"] * 5
    + ["kick"] * 2
    + ["reap"] * 3
    + ["irq_off", "irq_on"]
    + ["pop"] * 5
    + ["push"] * 4
    + ["irq"] * 2
    + ["kick_off"] * 2
    + ["kick_on"] * 2
)


mq_opts = st.fixed_dictionaries(
    {
        "queue_size": st.sampled_from([4, 8, 16]),
        "event_idx": st.booleans(),
        "indirect": st.booleans(),
        "publish": st.sampled_from(["add", "kick"]),
        "avail_event": st.sampled_from(["vhost", "qemu"]),
        "used_batch": st.integers(1, 3),
        "in_order": st.booleans(),
        "reap": st.sampled_from(["napi", "get_buf", "delayed"]),
        "napi_budget": st.sampled_from([1, 2, 64]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    opts=mq_opts,
    queues=st.sampled_from([1, 2, 2, 3, 3]),
    max_segments=st.integers(1, 4),
    base=st.sampled_from([0, 0, 0, 65536 - 3]),
    max_held=st.integers(1, 5),
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1 << 30)), min_size=10, max_size=120
    ),
)
def test_mq_matches_reference(opts, queues, max_segments, base, max_held, steps):
    if not opts["indirect"]:
        max_segments = min(max_segments, opts["queue_size"])
    p = MqPair(opts, queues, max_segments)
    if base:
        p.fast_forward(base)
    p.play(steps, max_segments, max_held)


def _two_queue_pair(**opts: Any) -> MqPair:
    base = {
        "queue_size": 8,
        "event_idx": True,
        "indirect": False,
        "publish": "add",
        "avail_event": "vhost",
        "used_batch": 1,
        "in_order": False,
        "reap": "napi",
        "napi_budget": 64,
    }
    return MqPair({**base, **opts}, queues=2, max_segments=1)


def test_mq_rearm_reaches_every_queue():
    """A re-check that finds work on queue 0 must still re-arm queue 1 (kicks and interrupts),
    or queue 1 would sleep with its notifications off and its next request wait forever."""
    p = _two_queue_pair(event_idx=False)
    p.kick_off()  # NO_NOTIFY on both queues
    p.irq_off()  # NO_INTERRUPT on both queues
    p.add(100, 1, write=False, last=True, prio=0)
    assert p.kick_on() == 0  # queue 0 has work: look again ...
    assert [v.scalars()["used.flags"] for v in p.views] == [0, 0]  # ... but both re-armed
    assert p.pop().req == 0
    p.push(0)
    assert p.irq(True) == 0  # interrupts are off on queue 0
    assert p.irq_on() == 0  # a completion waits on queue 0 ...
    assert [v.scalars()["avail.flags"] for v in p.views] == [0, 0]  # ... both re-armed
    p.drain()


def test_mq_device_completes_held_requests_of_two_queues_in_any_order():
    """A device holding requests of two queues completes each on its own queue, whichever it
    completes first (the handle names the queue), and the driver reaps class 1 first."""
    p = _two_queue_pair()
    p.add(100, 1, write=True, last=True, prio=0)
    assert p.pop().req == 0
    p.add(200, 1, write=True, last=True, prio=1)
    assert p.pop().req == 1
    p.push(0)  # the class-0 request, popped before the class-1 one
    p.push(0)
    assert p.irq(True) == 2  # both queues publish and both want an interrupt
    p.irq_off()
    assert [p.reap(), p.reap(), p.reap()] == [1, 0, None]
    p.drain()
