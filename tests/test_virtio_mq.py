"""virtio-mq: one split virtqueue per priority class.

What must hold: the rings stay correct (every request completes once, every queue audits
clean) however the classes interleave in a batch; notifications stay exact (one kick and one
interrupt per request in ping-pong, whichever queue it uses); with one class the model *is* the
split ring, counter for counter; and under load the urgent class no longer waits behind the
bulk class, which is the point of the model.

Against its pure-Python reference (tests/reference/mq.py), op by op: random interleavings of
driver and device operations over requests of every class (and one class above the last queue,
which shares the last queue) run through the jitted model and an :class:`~reference.mq.MqRef`
side by side. Every answer must agree: add, the kick decision of each add (one or two queues
deciding), pop's request and io slots (the highest non-empty queue first), the used length of
every reap (the highest class first), the interrupt answer (how many queues interrupt), the
re-arm re-checks over every queue. After every step the shared state of every queue (indexes,
flags, event fields, both rings, the outstanding descriptors) must read as the reference's, and
so must the notifications the model counts itself. The device holds up to several requests of
different queues and completes them in any order (in pop order per queue under IN_ORDER). A
drain at the end must leave the model's own audit clean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import SPLIT_OPTION_SETS, counters, layout_json, simulate
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.lockstep import (
    ADD,
    IRQ,
    IRQ_OFF,
    IRQ_ON,
    KICK,
    KICK_OFF,
    KICK_ON,
    MAX_SIZE,
    POP,
    PUSH,
    REAP,
    SPLIT_DEFAULT,
    Pair,
    SplitView,
    call,
    fitting_batches,
    fitting_segments,
    new_instance,
    split_ref_options,
    warm,
)
from reference.mq import MqRef

from vbench.costs import load_preset
from vbench.counters import (
    C_IRQS_SUPPRESSED,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_VM_EXITS,
    IO_HANDLE,
    IO_LAST,
    IO_PRIO,
    IO_REQ,
    IO_SEGS,
    IO_SIGNALED,
    IO_SIZE,
    N_IO,
)
from vbench.layout import VRING_USED_F_NO_NOTIFY
from vbench.memory import view
from vbench.models import get_model
from vbench.models.interface import Needs
from vbench.simulation import summarize
from vbench.workload import WorkloadSpec, generate

MQ = "virtio-mq"

PING_PONG_OPTIONS: list[dict[str, Any]] = [
    {},
    {"event_idx": False},
    {"indirect": False},
    {"in_order": True},
    {"event_idx": False, "in_order": True, "publish": "kick"},
]


def _classes(k: int) -> dict[str, Any]:
    return {"classes": k, "shares": [1.0 / k] * k}


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("opts", PING_PONG_OPTIONS, ids=str)
def test_ping_pong_one_kick_one_interrupt(classes: int, opts: dict[str, Any]) -> None:
    """One request at a time: whichever queue it lands on, that queue's ring is idle and armed,
    so it takes exactly one kick and one interrupt, and nobody wakes for nothing."""
    wl = {
        "requests": 300,
        "arrival": {"kind": "closed", "in_flight": 1},
        "priority": _classes(classes),
        "segments": {"kind": "range", "low": 1, "high": 3},
    }
    c = counters(simulate(MQ, opts, wl, {"batch": 1, "device": "sleep", "driver": "interrupt"}))
    assert c["requests"] == 300
    assert c["kicks"] == 300
    assert c["kicks_suppressed"] == 0
    assert c["interrupts"] == 300
    assert c["interrupts_delivered"] == 300
    assert c["interrupts_suppressed"] == 0
    assert c["spurious_device_wakeups"] == 0
    assert c["spurious_driver_wakeups"] == 0


STALL_OPTIONS: list[dict[str, Any]] = [
    {},
    {"event_idx": False},
    {"indirect": False},
    {"publish": "kick", "avail_event": "qemu"},
    {"used_batch": 3},
    {"in_order": True, "event_idx": False},
    {"reap": "get_buf"},
    {"reap": "delayed", "used_batch": 4},
    {"napi_budget": 2},
    {"queues": 4},
]


@pytest.mark.parametrize("opts", STALL_OPTIONS, ids=str)
@pytest.mark.parametrize(
    "engine",
    [{}, {"device": "poll"}, {"driver": "poll"}, {"batch": 5}],
    ids=["sleep-irq", "dev-poll", "drv-poll", "batch5"],
)
def test_every_request_completes_with_ring_full_stalls(
    opts: dict[str, Any], engine: dict[str, Any]
) -> None:
    """Mixed-class batches against small queues: the driver stalls on full rings and batches
    switch queue over and over; still no wakeup is lost, every request completes exactly once
    and every queue audits clean (run_model raises otherwise)."""
    wl = {
        "requests": 3000,
        "arrival": {"kind": "closed", "in_flight": 64},
        "priority": {"classes": 2, "shares": [0.7, 0.3]},
        "segments": {"kind": "range", "low": 1, "high": 4},
    }
    c = counters(simulate(MQ, {"queue_size": 16, **opts}, wl, engine))
    assert c["requests"] == 3000
    assert c["ring_full_stalls"] > 0


def test_bursty_three_classes_complete() -> None:
    """On/off bursts over three classes: the queues drain and sleep between bursts."""
    wl = {
        "requests": 4000,
        "arrival": {"kind": "onoff", "rate": 4e6, "on_us": 20, "off_us": 40},
        "priority": {"classes": 3, "shares": [0.5, 0.3, 0.2]},
    }
    c = counters(simulate(MQ, {"queue_size": 16}, wl, {"batch": 8}))
    assert c["requests"] == 4000
    assert c["ring_full_stalls"] > 0
    assert c["kicks"] > 0 and c["interrupts"] > 0


def _one_class_sets() -> list[dict[str, Any]]:
    """The split option sets virtio-mq accepts (no TX timer, no look-ahead window)."""
    return [o for o in SPLIT_OPTION_SETS if not o.get("tx_timer_ns") and not o.get("lookahead")][
        ::4
    ]


@pytest.mark.parametrize("opts", _one_class_sets(), ids=str)
def test_one_class_is_the_split_ring(opts: dict[str, Any]) -> None:
    """With one class there is one queue: every counter, cause and latency bucket equals the
    split ring's over the same workload (same arena, same accesses, same decisions), when its
    operations cost what the split ring's do (the preset prices mq's own code, a little
    dearer, and time feeds back into the counts)."""
    wl = {
        "requests": 2000,
        "arrival": {"kind": "onoff", "rate": 3e6, "on_us": 30, "off_us": 30},
        "segments": {"kind": "range", "low": 1, "high": 4},
        "size": {"kind": "uniform", "low": 64, "high": 4000},
    }
    preset = load_preset("kvm-modern")
    table = preset.op_costs.ns
    same = preset.op_costs.model_copy(update={"ns": {**table, MQ: table["virtio-split"]}})
    preset = preset.model_copy(update={"op_costs": same})
    a = simulate("virtio-split", opts, wl, {"batch": 8}, preset=preset)
    b = simulate(MQ, opts, wl, {"batch": 8}, preset=preset)
    np.testing.assert_array_equal(a.counters, b.counters)
    np.testing.assert_array_equal(a.causes, b.causes)
    np.testing.assert_array_equal(a.hist, b.hist)


# --- the operations one by one, without the engine -----------------------------------------------
class _Rig:
    """One virtio-mq instance driven op by op, as the engine would drive it: one io array
    for every operation, so what pop fills in is what push reads."""

    def __init__(self, **opts: Any) -> None:
        needs = Needs(max_segments=1, max_size=1500, classes=2)
        _, self.inst, self.ctr = new_instance(MQ, {"queue_size": 16, **opts}, needs)
        self.io = np.zeros(N_IO, dtype=np.int64)

    def drv(self, op: int, last: int = 0) -> int:
        return self._call(op, self.inst.drv, last)

    def dev(self, op: int, last: int = 0) -> int:
        return self._call(op, self.inst.dev, last)

    def _call(self, op: int, state: np.ndarray, last: int) -> int:
        self.io[IO_LAST] = last
        i = self.inst
        return int(call(op, i.cfg, i.mem, state, self.ctr, self.io))

    def add(self, req: int, prio: int, last: int) -> int:
        """add then kick_needed, as the engine submits: the kick decision is returned."""
        self.io[IO_REQ], self.io[IO_PRIO], self.io[IO_SIZE], self.io[IO_SEGS] = req, prio, 100, 1
        assert self.drv(ADD) == 1
        return self.drv(KICK, last)

    def no_notify(self, q: int) -> None:
        """Queue q's device has turned its kicks off (VRING_USED_F_NO_NOTIFY)."""
        used = self.inst.layout.area(f"q{q}.used").offset
        view(self.inst.mem, np.uint16)[used >> 1] = VRING_USED_F_NO_NOTIFY


def test_a_batch_across_queues_decides_each_queue() -> None:
    """A batch 0, 1, 1, 0: each switch closes the previous queue's batch with its own decision,
    and the end decides the last one; a batch that switches at its last add decides both and
    counts the second decision itself (the engine counts the answer)."""
    r = _Rig(event_idx=False)
    r.no_notify(1)  # only queue 0 wants kicks
    assert r.add(0, 0, 0) == -1
    assert r.add(1, 1, 0) == 1  # queue 0's batch closes: kick
    assert r.add(2, 1, 0) == -1
    assert r.add(3, 0, 1) == 1  # queue 1 closes (suppressed), then queue 0 (kick)
    assert r.ctr[C_KICKS_SUPPRESSED] == 1 and r.ctr[C_KICKS] == 0
    # switching at the last add, the other way round: queue 1 suppressed first, queue 0 kicks
    r = _Rig(event_idx=False)
    r.no_notify(1)
    assert r.add(0, 1, 0) == -1
    assert r.add(1, 0, 1) == 1
    assert r.ctr[C_KICKS_SUPPRESSED] == 1
    # both queues want a kick: two exits, one answered, one counted here
    r = _Rig(event_idx=False)
    assert r.add(0, 0, 0) == -1
    assert r.add(1, 1, 1) == 1
    assert r.ctr[C_KICKS] == 1 and r.ctr[C_VM_EXITS] == 1 and r.ctr[C_KICKS_SUPPRESSED] == 0
    # both suppressed: the answer is 0 and one more suppression is counted here
    r = _Rig(event_idx=False)
    r.no_notify(0)
    r.no_notify(1)
    assert r.add(0, 0, 0) == -1
    assert r.add(1, 1, 1) == 0
    assert r.ctr[C_KICKS_SUPPRESSED] == 1 and r.ctr[C_KICKS] == 0


def _used_idx(r: _Rig, q: int) -> int:
    used = r.inst.layout.area(f"q{q}.used").offset
    return int(view(r.inst.mem, np.uint16)[(used >> 1) + 1])


def _pop(r: _Rig) -> tuple[int, int]:
    """pop as the engine calls it: the request and pop's own interrupt decision
    (``IO_SIGNALED``, -1: none)."""
    r.io[IO_SIGNALED] = -1
    return r.dev(POP), int(r.io[IO_SIGNALED])


def test_device_serves_high_first_and_a_queue_run_dry_signals_before_the_next() -> None:
    """The device takes queue 1 before queue 0 whatever the order of the adds. Queue 1, found
    dry on the way to queue 0's requests, publishes its batch and raises its vector then,
    before they are served (vhost-net's handle_tx flushing as its queue runs empty); queue 0
    does at the ring-empty decision. The driver reaps class 1 first."""
    r = _Rig(used_batch=4)
    assert r.add(0, 0, 0) == -1
    assert r.add(1, 1, 0) == 1  # queue 0 closes: avail_event 0 asks for a kick
    assert r.add(2, 0, 1) == 1  # queue 1 kicks; queue 0 is past its avail_event: suppressed
    assert r.ctr[C_KICKS_SUPPRESSED] == 1
    assert r.dev(KICK_OFF) == 0
    served, signals, published = [], [], []
    for _ in range(3):
        request, signal = _pop(r)
        served.append(request)
        signals.append(signal)
        published.append((_used_idx(r, 0), _used_idx(r, 1)))
        assert r.io[IO_HANDLE] >= 0
        r.dev(PUSH)
        assert r.dev(IRQ, 0) == -1  # a batch of 4 is not full: nothing published
    assert served == [1, 0, 2]
    assert signals == [-1, 1, -1]  # queue 1 found dry with its completion: one vector
    assert published == [(0, 0), (0, 1), (0, 1)]
    assert _pop(r) == (-1, -1)  # every queue dry: the ring-empty decision, not pop's
    assert r.dev(IRQ, 1) == 1  # queue 0 publishes both and raises its vector
    assert (_used_idx(r, 0), _used_idx(r, 1)) == (2, 1)
    assert r.ctr[C_IRQS_SUPPRESSED] == 0
    assert r.dev(IRQ, 1) == -1  # nothing new: no decision
    assert r.dev(KICK_ON) == 1
    assert r.drv(IRQ_OFF) == 0
    assert [r.drv(REAP) for _ in range(4)] == [1, 0, 2, -1]
    assert r.drv(IRQ_ON) == 1
    assert get_model(MQ).audit(r.inst) == []


def test_queues_that_run_dry_together_raise_one_vector_each() -> None:
    """Both queues hold unpublished completions when the device runs empty: pop decides
    nothing, and the ring-empty decision publishes both and raises both vectors."""
    r = _Rig(used_batch=4)
    assert r.add(0, 0, 1) == 1
    assert r.dev(KICK_OFF) == 0
    assert _pop(r) == (0, -1)  # queue 1 looked at first: dry, with nothing to publish
    r.dev(PUSH)
    assert r.dev(IRQ, 0) == -1
    r.add(1, 1, 1)
    assert _pop(r) == (1, -1)
    r.dev(PUSH)
    assert r.dev(IRQ, 0) == -1
    assert _pop(r) == (-1, -1)
    assert (_used_idx(r, 0), _used_idx(r, 1)) == (0, 0)
    assert r.dev(IRQ, 1) == 2
    assert (_used_idx(r, 0), _used_idx(r, 1)) == (1, 1)


def test_round_robin_signals_a_queue_it_passes_dry() -> None:
    """In turn: after serving queue 1's only request and one of queue 0's, the device looks at
    queue 1 first, finds it dry with that completion unpublished, and signals it on its way
    to queue 0's next request."""
    r = _Rig(used_batch=4, schedule="round-robin")
    for req, prio in ((0, 1), (1, 0), (2, 0), (3, 0)):
        r.add(req, prio, 1 if req == 3 else 0)
    assert r.dev(KICK_OFF) == 0
    looks = []
    for _ in range(4):
        looks.append(_pop(r))
        r.dev(PUSH)
        assert r.dev(IRQ, 0) == -1
    assert looks == [(1, -1), (0, -1), (2, -1), (3, 1)]
    assert (_used_idx(r, 0), _used_idx(r, 1)) == (0, 1)
    assert _pop(r) == (-1, -1)
    assert r.dev(IRQ, 1) == 1  # queue 0's three


PRIO_WORKLOAD: dict[str, Any] = {
    "requests": 20000,
    # near the device's capacity: Poisson bursts saturate it part of the time. (At 2.0 M req/s,
    # since the line tracker prices invalidations, virtio-mq's device saturates: each look at
    # the other queue's avail.idx costs it a miss; at 1.8 M both models keep up.)
    "arrival": {"kind": "poisson", "rate": 1.8e6},
    "priority": {"classes": 2, "shares": [0.8, 0.2]},
    "size": 1500,
}
PRIO_ENGINE: dict[str, Any] = {"batch": 16, "service_ns": 300}


def test_priority_class_one_waits_less() -> None:
    """The urgent class's p99 falls well below the split ring's (which serves in arrival order),
    and its head-of-line blocking behind bulk requests all but disappears."""
    wl = generate(WorkloadSpec.model_validate(PRIO_WORKLOAD), 1)
    # split publishing every completion, as the multi-queue model does (its used_batch 1)
    split = simulate("virtio-split", {"used_batch": 1}, PRIO_WORKLOAD, PRIO_ENGINE)
    mq = simulate(MQ, {}, PRIO_WORKLOAD, PRIO_ENGINE)
    s_split, s_mq = summarize(split, wl), summarize(mq, wl)
    # the load really backs requests up on the split ring
    assert split.hol[1] > 0
    assert s_split["c1_lat_p99_ns"] > 3 * (300 + 0.05 * 1500)
    assert s_mq["c1_lat_p99_ns"] < 0.6 * s_split["c1_lat_p99_ns"]
    assert s_mq["c1_lat_p50_ns"] < s_split["c1_lat_p50_ns"]
    assert mq.hol[1] < 0.05 * split.hol[1]
    # the bulk class pays for it
    assert s_mq["c0_lat_p99_ns"] > s_split["c0_lat_p99_ns"]


def test_queues_follow_classes_and_check_refuses_bad_options() -> None:
    mdef = get_model(MQ)
    opts = mdef.options()
    three = Needs(max_segments=1, max_size=1500, classes=3)
    assert mdef.layout(opts, three).params["queues"] == 3
    assert mdef.check(opts, three, 16) is None
    few = mdef.check(mdef.options(queues=2), three, 16)
    assert few is not None and "queues >= 3" in few
    timer = mdef.check(mdef.options(tx_timer_ns=150000.0), three, 16)
    assert timer is not None and "tx_timer_ns" in timer
    look = mdef.check(mdef.options(lookahead=4), three, 16)
    assert look is not None and "lookahead" in look
    big = mdef.check(mdef.options(queue_size=16), three, 32)
    assert big is not None and "batch" in big
    chain = mdef.check(mdef.options(queue_size=8, indirect=False), Needs(16, 1500, classes=1), 4)
    assert chain is not None and "indirect" in chain


def test_layout_queues_are_disjoint_and_aligned() -> None:
    mdef = get_model(MQ)
    lay = mdef.layout(mdef.options(queue_size=64), Needs(max_segments=4, max_size=1500, classes=3))
    names = [a.name for a in lay.areas]
    for q in range(3):
        for part in ("desc", "avail", "used", "indirect"):
            assert f"q{q}.{part}" in names
        assert lay.area(f"q{q}.desc").offset % 4096 == 0
        assert lay.area(f"q{q}.used").offset % 4096 == 0
    spans = sorted((a.offset, a.offset + a.size) for a in lay.areas)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start


def test_cli_layout_json() -> None:
    d = layout_json(MQ, 64)
    assert d["model"] == MQ and d["queue_size"] == 64
    names = {a["name"] for a in d["areas"]}
    assert {"q0.desc", "q0.avail", "q0.used"} <= names
    assert d["params"]["queues"] == 1


# ================================================================================================
# against the reference, op by op
# ================================================================================================
# the notifications virtio-mq counts itself (the engine counts one per answer)
COUNTED = {
    "kicks": C_KICKS,
    "vm_exits": C_VM_EXITS,
    "kicks_suppressed": C_KICKS_SUPPRESSED,
    "interrupts_suppressed": C_IRQS_SUPPRESSED,
}


class MqPair(Pair):
    """virtio-mq and :class:`MqRef`, compared queue by queue after every step."""

    triggers = True  # the reference's disable_interrupts takes an interrupt's trigger

    reap_len = True

    def __init__(self, opts: dict[str, Any], queues: int, max_segments: int) -> None:
        strict = opts.get("schedule", "strict") == "strict"
        ref = MqRef(queues, opts["queue_size"], strict, **split_ref_options(opts))
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
MQ_ACTIONS = (
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
        "signal_batch": st.sampled_from([None, None, 1, 2, 4, 6]),
        "in_order": st.booleans(),
        "reap": st.sampled_from(["napi", "get_buf", "delayed"]),
        "napi_budget": st.sampled_from([1, 2, 64]),
        "schedule": st.sampled_from(["strict", "round-robin"]),
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
        st.tuples(st.sampled_from(MQ_ACTIONS), st.integers(0, 1 << 30)), min_size=10, max_size=120
    ),
)
def test_mq_matches_reference(opts, queues, max_segments, base, max_held, steps):
    max_segments = fitting_segments(fitting_batches(opts), max_segments)
    MqPair(opts, queues, max_segments).play_from(base, steps, max_segments, max_held)


def _two_queue_pair(**opts: Any) -> MqPair:
    """Two queues of eight descriptors, one segment per request, the split ring's defaults."""
    return MqPair({**SPLIT_DEFAULT, **opts}, queues=2, max_segments=1)


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
