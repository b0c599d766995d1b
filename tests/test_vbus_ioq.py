"""vbus-ioq: the jitted model against its pure-Python references (tests/reference/vbus.py), for
both transports, and the call() transport under the engine.

Random interleavings of driver and device operations run through the model and its reference
side by side (the harness of tests/reference/lockstep.py): every answer must agree, and so must
every field a peer can read in the arena, checked after every step: IOQ indexes, slot ownership
and contents, the venet_sg entries, shm-signal mailboxes, the call() descriptors. Each run ends
with a drain after which the model's own audit must be clean.

* ``transport = "ring"``: any options (queue size, TX mitigation, pool or flat scatter/gather,
  the Linux or Windows EOI policy, either shm-signal barrier).
* ``transport = "call"``: the random schedule respects what a synchronous call is (the host
  serves a call only inside the exit its doorbell caused, once; the vCPU is stalled until the
  result is written) and interleaves everything else around it.

A few fixed scenarios pin every slot being usable, a device taking several requests before it
completes them, and one call() step by step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import counters, simulate
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.common import Popped
from reference.lockstep import (
    ADD,
    MAX_SIZE,
    POP,
    IoqAt,
    Step,
    VbusPair,
    payload_addr,
    random_steps,
    rd,
    steps_of,
)
from reference.vbus import (
    CALL_DEVH,
    CALL_FUNC,
    DEVICECALL_BYTES,
    DONE,
    EVENT_BYTES,
    HC_DEVCALL,
    IDLE,
    RUNG,
    SERVED,
    IoqCallRef,
    IoqRef,
)

from vbench.counters import IO_DIR, IO_REQ, IO_SEGS, IO_SIZE, IO_SYNC
from vbench.layout import (
    IOQ_RING_DESC,
    VBUS_EVENT,
    VBUS_PCI_DEVICECALL,
    VBUS_PCI_FASTCALL_DESC,
    VBUS_PCI_HC_DEVCALL,
    VENET_EVENT_TXC,
    Struct,
)
from vbench.memory import ARENA_GPA
from vbench.models import get_model
from vbench.models.interface import Needs
from vbench.simulation import summarize
from vbench.workload import WorkloadSpec, generate


# ================================================================================================
# transport = "ring"
# ================================================================================================
class IoqPair(VbusPair):  # the default play hooks: slots handed back in order
    def __init__(self, opts: dict[str, Any], max_segments: int) -> None:
        hop = opts.get("signal_path", "eventq") == "eventq"
        ref = IoqRef(
            opts["queue_size"],
            txmitigation=opts["txmitigation"],
            sg_pool=opts["sg"] == "pool",
            eoi_windows=opts.get("eoi") == "windows",
            eventq_size=opts.get("eventq_size", 1024) if hop else 0,
            txc=opts.get("tx_completion") == "event",
        )
        super().__init__("vbus-ioq", opts, Needs(max_segments, MAX_SIZE), ref)
        lay = self.inst.layout
        self.ioq = IoqAt.of(lay.area("ioq"), opts["queue_size"])
        pool = ref.sg_pool
        self.pool = lay.area("sg_pool").offset if pool else 0
        self.entry = lay.params["sg_entry_size"] if pool else 0
        # the event queues in use, each (name, where, reference, payload offset, event struct)
        self.queues = [
            (
                name,
                IoqAt.of(lay.area(f"{name}.ioq"), q.size),
                q,
                lay.area(f"{name}.events").offset,
                s,
            )
            for name, q, s in (("txc", ref.txcq, VENET_EVENT_TXC), ("evq0", ref.bridge, VBUS_EVENT))
            if q is not None
        ]
        assert [a.name for a in lay.areas if a.name.endswith(".events")] == [
            name for name, *_ in self.queues for name in [f"{name}.events"]
        ]

    def scalars(self) -> dict[str, int]:
        return self.ioq.scalars(self.inst.mem)

    def event(self, struct: Struct, ev: int) -> tuple[int, ...]:
        """An event's header fields as the reference keeps them (the TXC event: flags, size,
        id, txqid, cookie; the bridge's: flags, size, cookie)."""
        mem = self.inst.mem
        if struct is VBUS_EVENT:
            paths = (("flags", 4), ("size", 4), ("cookie", 8))
        else:
            paths = (
                ("header.flags", 4),
                ("header.size", 4),
                ("header.id", 4),
                ("txqid", 4),
                ("cookie", 8),
            )
        return tuple(rd(mem, ev + struct.offset(f), n) for f, n in paths)

    def check(self, full: bool = False) -> None:
        deep = full or len(self.trace) % 4 == 0
        self.check_ioq("ioq", self.ioq, self.ref, self.pool, self.entry, deep)
        mem = self.inst.mem
        for name, at, q, events, struct in self.queues:
            self._eq(f"{name} indexes/mailboxes", at.scalars(mem), q.shared_scalars())
            self._eq(f"{name} ownership", [at.slot(mem, i)[2] for i in range(q.size)], q.sown)
            got = [self.event(struct, events + struct.size * i) for i in range(q.size)]
            self._eq(f"{name} events", got, q.events)
            if deep:  # every slot as the guest posted it at registration
                for i in range(q.size):
                    d, ev = at.desc(i), events + struct.size * i
                    ptr = ARENA_GPA + ev if struct is VBUS_EVENT else struct.size * i
                    posted = tuple(
                        rd(mem, d + IOQ_RING_DESC.offset(f), n)
                        for f, n in (("cookie", 8), ("ptr", 8), ("len", 8), ("valid", 1))
                    )
                    self._eq(f"{name} slot {i} posting", posted, (ev, ptr, struct.size, 1))


ioq_opts = st.fixed_dictionaries(
    {
        "queue_size": st.integers(2, 64),
        "txmitigation": st.integers(1, 12),
        "sg": st.sampled_from(["pool", "flat"]),
        "eoi": st.sampled_from(["linux", "windows"]),
        # only the barrier's kind differs: the reference (which has none) must still agree
        "signal_barrier": st.sampled_from(["wmb", "mb"]),
        "signal_path": st.sampled_from(["eventq", "direct"]),
        "eventq_size": st.integers(1, 3),  # one slot is all a signal needs
        "tx_completion": st.sampled_from(["ring", "event"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(opts=ioq_opts, max_segments=st.integers(1, 8), steps=random_steps)
def test_vbus_matches_reference(opts, max_segments, steps):
    # the device completes each request before it takes the next, as the engine drives it
    IoqPair(opts, max_segments).play(steps, max_segments, max_held=1)


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


def test_vbus_pop_takes_the_request():
    """A device may take several requests before completing them (ioq_iter walks on)."""
    p = IoqPair({"queue_size": 4, "txmitigation": 10, "sg": "pool"}, max_segments=1)
    p.add(64, 1, write=False, last=True)
    p.add(64, 1, write=False, last=True)
    assert p.pop().req == 0
    assert p.pop().req == 1  # the model answers 0 again


# ================================================================================================
# transport = "call"
# ================================================================================================
class CallPair(VbusPair):
    def __init__(self, opts: dict[str, Any], max_segments: int) -> None:
        ref = IoqCallRef(
            opts["queue_size"],
            txmitigation=opts["txmitigation"],
            sg_pool=opts["sg"] == "pool",
            eoi_windows=opts["eoi"] == "windows",
        )
        opts = {**opts, "transport": "call"}
        super().__init__("vbus-ioq", opts, Needs(max_segments, MAX_SIZE), ref)
        lay = self.inst.layout
        self.ioq = IoqAt.of(lay.area("ioq"), opts["queue_size"])
        self.fastcall = lay.area("call").at("fastcall")
        self.devicecall = lay.area("call").at("devicecall")

    def _run(self, op: int, slots: dict[int, int] | None = None) -> tuple[int, np.ndarray]:
        """The host serves a call only inside the exit its doorbell caused: the engine says so
        with IO_SYNC on pop; a pop at any other time (a polling device) finds nothing."""
        if op == POP:
            slots = {**(slots or {}), IO_SYNC: int(self.ref.phase == RUNG)}
        return super()._run(op, slots)

    def add(self, size: int, segs: int, write: bool, last: bool = True) -> int:
        """One call(): the driver fills the descriptors and rings the doorbell; the add must say
        it is synchronous (IO_SYNC), and no kick decision follows (the doorbell is the exit)."""
        del last
        req = self.next_req
        self.trace.append(f"call(r{req},{size}B,{segs}s)")
        got, io = self._run(ADD, {IO_REQ: req, IO_SIZE: size, IO_SEGS: segs, IO_DIR: int(write)})
        self._eq("add", got, self.ref.add(req, size, segs, write))
        self._eq("IO_SYNC", int(io[IO_SYNC]), int(self.ref.sync))
        if got:
            self.next_req += 1
        self.check()
        return got

    def call_descriptors(self) -> dict[str, int]:
        mem, fc, dc = self.inst.mem, self.fastcall, self.devicecall
        f, d = VBUS_PCI_FASTCALL_DESC, VBUS_PCI_DEVICECALL
        return {
            "fc.vector": rd(mem, fc + f.offset("call.vector"), 4),
            "fc.len": rd(mem, fc + f.offset("call.len"), 4),
            "fc.datap": rd(mem, fc + f.offset("call.datap"), 8),
            "fc.result": rd(mem, fc + f.offset("result"), 4),
            "dc.devh": rd(mem, dc + d.offset("devh"), 8),
            "dc.func": rd(mem, dc + d.offset("func"), 4),
            "dc.len": rd(mem, dc + d.offset("len"), 4),
            "dc.flags": rd(mem, dc + d.offset("flags"), 4),
            "dc.datap": rd(mem, dc + d.offset("datap"), 8),
        }

    def ref_call_descriptors(self) -> dict[str, int]:
        fc, dc = self.ref.fastcall, self.ref.devicecall
        return {
            "fc.vector": fc["vector"],
            "fc.len": fc["len"],
            "fc.datap": ARENA_GPA + self.devicecall if fc["names_devicecall"] else 0,
            "fc.result": fc["result"],
            "dc.devh": dc["devh"],
            "dc.func": dc["func"],
            "dc.len": dc["len"],
            "dc.flags": dc["flags"],
            "dc.datap": payload_addr(dc["req"], 0) if dc["req"] >= 0 else 0,
        }

    def check(self, full: bool = False) -> None:
        self._eq("call descriptors", self.call_descriptors(), self.ref_call_descriptors())
        deep = full or len(self.trace) % 4 == 0
        if deep:  # the IOQ the device registered is never used: slots stay empty
            self.check_ioq("ioq", self.ioq, self.ref, 0, 0, deep)
        else:
            self._eq(
                "ioq indexes/mailboxes", self.ioq.scalars(self.inst.mem), self.ref.shared_scalars()
            )

    def finish_call(self) -> None:
        """Run the open call's exit to its end and resume the vCPU (read the result)."""
        if self.ref.phase == RUNG:
            self.pop()
        if self.ref.phase == SERVED:
            self.push(0)
        if self.ref.phase == DONE:
            assert self.reap() is not None

    def drain(self) -> None:
        """No ring to drain: finish the open call, let the handler run once, audit."""
        self.finish_call()
        self.irq(True)
        self.finish()


CALL_ACTIONS = (
    ["add"] * 4
    + ["pop"] * 3
    + ["push"] * 3
    + ["reap"] * 3
    + ["kick", "irq_off", "irq_on", "irq", "kick_off", "kick_on"]
)
DRIVER_NOTIFY = {"kick", "irq_off", "irq_on"}


def play_call(p: CallPair, steps: list[Step], max_segments: int) -> None:
    """Random steps within what a synchronous call allows: the host serves a call once, only in
    the exit its doorbell caused, and completes it only after reading it; the stalled vCPU does
    nothing until the result is written, except that a second add may be tried at any time and
    must be refused (one call at a time per vCPU) without touching anything. The host's own
    notification controls run at any time."""
    for action, _, size, segs, flag in steps:
        phase = p.ref.phase
        if action == "add":
            if phase == IDLE or flag:
                p.add(size, min(segs, max_segments), flag)
        elif action == "pop":
            if phase == RUNG:
                p.pop()
        elif action == "push":
            if phase == SERVED:
                p.push(0)
        elif action == "reap":
            if phase in (IDLE, DONE):
                p.reap()
        elif action in DRIVER_NOTIFY:
            if phase == IDLE:
                getattr(p, action)(*([True] if action == "kick" else []))
        elif action == "irq":
            p.irq(flag)
        else:
            getattr(p, action)()
    p.drain()


call_opts = st.fixed_dictionaries(
    {
        "queue_size": st.integers(2, 16),
        "txmitigation": st.integers(1, 12),
        "sg": st.sampled_from(["pool", "flat"]),
        "eoi": st.sampled_from(["linux", "windows"]),
    }
)
call_steps = steps_of(CALL_ACTIONS, 5, 60)


@settings(max_examples=120, deadline=None)
@given(opts=call_opts, max_segments=st.integers(1, 8), steps=call_steps)
def test_vbus_call_matches_reference(opts, max_segments, steps):
    play_call(CallPair(opts, max_segments), steps, max_segments)


def test_call_is_one_synchronous_exchange() -> None:
    """One call, step by step: what the driver writes, what the host reads and answers."""
    p = CallPair({"queue_size": 4, "txmitigation": 1, "sg": "pool", "eoi": "linux"}, 4)
    assert p.add(1000, 3, write=False) == 1
    d = p.call_descriptors()
    assert (d["dc.devh"], d["dc.func"], d["dc.len"]) == (CALL_DEVH, CALL_FUNC, 1000)
    assert d["dc.datap"] == payload_addr(0, 0)  # gathered: one buffer
    assert d["fc.datap"] == ARENA_GPA + p.devicecall
    assert p.add(10, 1, write=False) == 0  # a call is open: refused, nothing written
    assert p.pop() == Popped(0, 1000, 1, 0, 0)
    p.push(0)
    assert p.reap() == 0 and p.reap() is None
    assert p.irq(True) == -1 and p.kick(True) == -1  # no ring: nothing to notify
    assert p.add(10, 1, write=True) == 1
    p.drain()


def test_call_pop_without_a_call_in_flight_finds_nothing() -> None:
    """A polling device's pop outside a call's exit finds nothing, before and after a call
    (it used to serve the stale descriptors again: a bad-request stop under device='poll')."""
    p = CallPair({"queue_size": 4, "txmitigation": 1, "sg": "flat", "eoi": "linux"}, 1)
    assert p.pop() is None  # nothing rang the doorbell yet
    p.add(100, 1, write=False)
    p.finish_call()
    assert p.pop() is None  # the call was served and completed


def test_call_constants_match_the_layout() -> None:
    """The reference's call() constants are the layout's (written independently)."""
    assert HC_DEVCALL == VBUS_PCI_HC_DEVCALL
    assert VBUS_PCI_DEVICECALL.size == DEVICECALL_BYTES


@pytest.mark.parametrize("device", ["sleep", "poll"])
def test_call_transport_runs_under_either_device(device: str) -> None:
    """Through the engine: every request one call, one exit, no ring notification, whether the
    device sleeps or busy-polls between calls (a polling device finds nothing to serve)."""
    n = 200
    wl = {"requests": n, "arrival": {"kind": "poisson", "rate": 1e6}, "segments": 2}
    c = counters(simulate("vbus-ioq", {"transport": "call"}, wl, {"device": device}))
    assert c["requests"] == n
    assert c["kicks"] == n and c["vm_exits"] == n
    assert c["interrupts"] == 0


# ================================================================================================
# the PCI bridge's event queue (signal_path) and venet's TX-complete events (tx_completion)
# ================================================================================================
HOP = {"queue_size": 4, "txmitigation": 1, "sg": "pool", "eventq_size": 2}


def test_a_device_signal_reaches_the_guest_as_a_bridge_event() -> None:
    """The first completion's signal fires: one event queued in the bridge's queue, whose own
    signal raises the MSI. Two more signals while that event's wakeup is open only set the
    ring's dirty flag (merged): one event for three signals. The handler takes the event,
    reaps all three, and ends the wakeup (pending = 0) once the ring is drained."""
    p = IoqPair(HOP, max_segments=1)
    for _ in range(3):
        p.add(64, 1, write=False, last=True)
    fired = []
    for _ in range(3):
        p.pop()
        p.push(0)
        fired.append(p.irq(False))
    assert fired == [1, 0, 0]
    bridge = p.ref.bridge
    assert (bridge.idx["inuse"]["head"], bridge.idx["inuse"]["tail"]) == (0, 1)
    assert bridge.events[0] == (0, EVENT_BYTES, 0)  # the event names the ring's signal
    p.irq_off()
    assert [p.reap() for _ in range(4)] == [0, 1, 2, None]
    assert p.ref.mbox["north"]["pending"] == 0 and not p.ref.open
    assert p.irq_on() == 1
    p.drain()


def test_a_signal_while_the_wakeup_is_open_is_looked_at_again() -> None:
    """The device signals after the guest drained the ring but before it ended the wakeup:
    ending it finds dirty set and looks at the ring again (no event, no MSI needed)."""
    p = IoqPair(HOP, max_segments=1)
    p.add(64, 1, write=False, last=True)
    p.pop()
    p.push(0)
    assert p.irq(True) == 1
    p.irq_off()
    p.add(64, 1, write=False, last=True)  # a second request, served before the first reap
    p.pop()
    p.push(0)
    assert p.irq(True) == 0  # merged: the first event's wakeup is still open
    assert [p.reap() for _ in range(3)] == [0, 1, None]
    assert p.ref.bridge.idx["inuse"]["tail"] == 1  # still the one event
    p.drain()


TXC = {**HOP, "tx_completion": "event"}


def test_tx_complete_events_name_each_packet_and_signal_their_queue() -> None:
    """venetdev_rx with VENET_CAP_EVQ_TXC: each slot handed back is followed by a TX-complete
    event naming its packet, and the signal goes to venet's event queue (through the bridge),
    never to the ring's own mailbox. The guest's first event takes back every slot handed
    back (vbus_enet_tx_reap), each event completes its packet, and the events are cleared."""
    p = IoqPair(TXC, max_segments=2)
    for _ in range(2):
        p.add(100, 2, write=False, last=True)
    for _ in range(2):
        p.pop()
        p.push(0)
    txc = p.ref.txcq
    assert [e[4] for e in txc.events[:2]] == [0, 1]  # the packets' cookies, in order
    assert p.irq(True) == 1
    assert p.ref.mbox["north"]["dirty"] == 0  # the ring's own signal is never injected
    p.irq_off()
    assert p.reap() == 0
    assert p.ref.idx["valid"]["head"] == 2  # both slots already back in the free list
    assert p.reap() == 1
    assert p.reap() is None
    assert txc.events[:2] == [(0, 0, 0, 0, 0)] * 2  # the guest's memset
    p.drain()


@pytest.mark.parametrize("signal_path", ["eventq", "direct"])
def test_tx_complete_runs_end_clean_under_the_engine(signal_path: str) -> None:
    """Many requests through a small ring in every engine mode: nothing lost (run_model checks
    every request completes once), the audit clean, one event per request written."""
    opts = {"queue_size": 8, "tx_completion": "event", "signal_path": signal_path}
    wl = {"requests": 3000, "arrival": {"kind": "poisson", "rate": 5e6}, "segments": 2}
    for engine in ({"batch": 8}, {"batch": 8, "driver": "poll"}, {"batch": 4, "device": "poll"}):
        run = simulate("vbus-ioq", opts, wl, engine)
        c = counters(run)
        assert c["requests"] == 3000
        assert get_model("vbus-ioq").audit(run.instance) == []
        ring = simulate("vbus-ioq", {**opts, "tx_completion": "ring"}, wl, engine)
        # each packet's TX-complete event is one more descriptor written by the device
        assert c["desc_written"] - counters(ring)["desc_written"] >= 3000


def test_the_hop_costs_event_queue_lines_and_direct_has_none() -> None:
    """The default delivers signals through the bridge's event queue: its header,
    descriptors and events cost lines that the direct what-if does not have, and nothing
    else about the ring changes (same requests, kicks)."""
    wl = {"requests": 4000, "arrival": {"kind": "poisson", "rate": 1e6}}
    rows = {}
    for path in ("eventq", "direct"):
        run = simulate("vbus-ioq", {"signal_path": path}, wl, {"batch": 8})
        rows[path] = summarize(run, generate(WorkloadSpec.model_validate(wl), 1))
    hop, direct = rows["eventq"], rows["direct"]
    for area in ("evq_header", "evq_desc", "events"):
        assert hop[f"lines_per_req_{area}"] > 0, area
        assert direct[f"lines_per_req_{area}"] == 0, area
    assert hop["lines_per_req"] > direct["lines_per_req"]
    assert hop["requests"] == direct["requests"] == 4000


def test_check_refuses_tx_complete_events_on_call() -> None:
    mdef = get_model("vbus-ioq")
    needs = Needs(max_segments=1, max_size=1500)
    msg = mdef.check(mdef.options(transport="call", tx_completion="event"), needs, 1)
    assert msg is not None and "tx_completion" in msg and "\n" not in msg
    assert mdef.check(mdef.options(transport="call"), needs, 1) is None


def test_layout_places_both_event_queues_on_lines_of_their_own() -> None:
    mdef = get_model("vbus-ioq")
    opts = mdef.options(queue_size=16, tx_completion="event", eventq_size=32)
    lay = mdef.layout(opts, Needs(max_segments=2, max_size=1500))
    names = [a.name for a in lay.areas]
    assert names == ["ioq", "sg_pool", "txc.ioq", "txc.events", "evq0.ioq", "evq0.events"]
    for a in lay.areas:
        assert a.offset % 64 == 0, a.name
    assert lay.area("txc.events").size == 24 * 16  # EVQ_EVSIZE x tx_ringlen
    assert lay.area("evq0.events").size == 144 * 32
    ends = sorted((a.offset, a.offset + a.size) for a in lay.areas)
    assert all(e0 <= s1 for (_, e0), (s1, _) in zip(ends, ends[1:], strict=False))
    direct = mdef.layout(mdef.options(signal_path="direct"), Needs(1, 1500))
    assert [a.name for a in direct.areas] == ["ioq", "sg_pool"]
