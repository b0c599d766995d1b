"""Pure-Python references of the vbus models (the conventions every reference follows are in
:mod:`reference`). Written from the protocol (``shared/reference/models.md`` sections 3-5); the
only things taken from the models are their documented, observable choices (what goes into which
io slot, the handle encoding, the values written into the call descriptors and event headers).

* :class:`IoqRef`: ``vbus-ioq``, one IOQ + shm-signal driven as venet drives its TX queue: the
  driver pushes on both indexes and injects the device's signal; the device takes slots at the
  ``inuse`` head while it owns them, hands each back and injects the driver's signal every
  ``txmitigation`` completions and when it runs empty; the driver reaps at the ``valid`` head
  what the device handed back. A mailbox already masked has no wakeup to run; with the Windows
  EOI policy the driver's handler only clears ``dirty`` and its end (EOI) clears ``pending``,
  the mailbox staying on. With the PCI bridge's event queue (``eventq_size``) a device signal
  that fires queues an event whose own mailbox raises the interrupt; the guest takes the events
  (each starting the signal's wakeup: ``dirty = 0``), reaps, and ends the wakeup once drained
  (``pending = 0``, again if ``dirty`` was set meanwhile). With TX-complete events (``txc``)
  the device queues one event per packet it hands back (venet's own event queue, as many slots
  as the ring) and signals that queue instead of the ring; the guest, per event, first takes
  back every slot handed back, then completes the packet the event names, clears the event and
  hands its slot back with a signal to the host (whose mailbox there is off).
* :class:`IoqCallRef`: ``vbus-ioq`` with ``transport = "call"``. A request is one synchronous
  vbus_pci ``call()``: the driver fills its per-CPU devicecall (the parameters) and the fastcall
  that names it, then rings the doorbell; the host serves the call inside that one exit (reads
  both descriptors, copies the parameters in, runs the handler, copies the result out, writes
  the status) and the vCPU resumes with the result. No ring slot, no shm-signal inject, no
  interrupt; one call at a time per vCPU.
* :class:`PrioRef`: ``vbus-prio``. One :class:`IoqRef` per priority class (the
  venet TX path, unchanged), plus the host-to-guest event queues: a device signal that really
  fires (its guest mailbox enabled, nothing pending) queues the signal's one event in event
  queue ``min(class, E - 1)``, whose own shm-signal raises the MSI. The guest consumes events
  highest queue first, which opens the signalled IOQ; it reaps the open IOQs (in event order as
  shipped, highest class first as designed) and closes an IOQ once it is drained and its signal
  was not set again meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import Popped


# ================================================================================================
# vbus-ioq: one IOQ with its shm-signal
# ================================================================================================
@dataclass
class Slot:
    cookie: int = 0
    size: int = 0
    segs: int = 0
    valid: int = 0
    sown: int = 0


class IoqRef:
    """Reference IOQ: one descriptor array, two head/tail/full indexes, two mailboxes."""

    def __init__(
        self,
        count: int,
        *,
        txmitigation: int,
        sg_pool: bool,
        eoi_windows: bool = False,
        eventq_size: int = 0,
        txc: bool = False,
    ) -> None:
        self.count = count
        self.eoi_windows = eoi_windows
        # venet's TX-complete queue and the PCI bridge's event queue, when in use
        self.txcq = EventQueueRef(count, empty=TXC_CLEARED) if txc else None
        self.bridge = EventQueueRef(eventq_size) if eventq_size else None
        self.open = False  # driver: the signal's wakeup, started by a bridge event
        self.cookies: dict[int, int] = {}  # device: per slot taken, the packet's cookie
        self.txmitigation = txmitigation
        self.sg_pool = sg_pool
        # --- shared memory ---
        self.slots = [Slot() for _ in range(count)]
        self.idx = {
            "valid": {"head": 0, "tail": 0, "full": 0},
            "inuse": {"head": 0, "tail": 0, "full": 0},
        }
        # the driver takes interrupts and the device sleeps on kicks from the start
        self.mbox = {
            "north": {"enabled": 1, "pending": 0, "dirty": 0},
            "south": {"enabled": 1, "pending": 0, "dirty": 0},
        }
        # --- private ---
        self.push_inject = -1  # driver: the last push's inject, reported by the kick decision
        self.taken = 0  # device: slots taken at the inuse head and not yet handed back
        self.unsignalled = 0  # device: completions since its last signal

    # --- shm-signal and index rules ----------------------------------------------------------
    def _inject(self, who: str) -> int:
        m = self.mbox[who]
        m["dirty"] = 1
        if m["enabled"] and not m["pending"]:
            m["pending"] = 1
            return 1
        return 0

    def _disable(self, who: str) -> int:
        if not self.mbox[who]["enabled"]:
            return 0  # masked already (a polling side): no wakeup runs
        # the wakeup: the handler clears dirty, masks the mailbox and, drained, clears pending
        self.mbox[who].update(enabled=0, dirty=0, pending=0)
        return 0

    def _enable(self, who: str) -> int:
        m = self.mbox[who]
        m["enabled"] = 1
        return 0 if (m["dirty"] or m["pending"]) else 1

    def _signal_mbox(self) -> Mailbox:
        """The mailbox the device signals: the ring's, or with TX-complete events the queue's."""
        return self.txcq.mbox["north"] if self.txcq else self.mbox["north"]

    def _irq_mbox(self) -> Mailbox:
        """The mailbox that raises the interrupt: the signal's own, or the bridge queue's."""
        return self.bridge.mbox["north"] if self.bridge else self._signal_mbox()

    def _push_tail(self, name: str) -> None:
        ix = self.idx[name]
        t = (ix["tail"] + 1) % self.count
        if t == ix["head"]:
            ix["full"] = 1
        ix["tail"] = t

    def _pop_head(self, name: str) -> None:
        ix = self.idx[name]
        ix["head"] = (ix["head"] + 1) % self.count
        ix["full"] = 0

    # --- driver ----------------------------------------------------------------------------
    def add(self, req: int, size: int, segs: int, write: bool) -> int:
        del write  # a TX queue has one direction
        v = self.idx["valid"]
        if v["full"]:
            return 0
        s = self.slots[v["tail"]]
        if s.sown:
            return 0
        s.cookie, s.size, s.segs, s.valid = req, size, segs, 1
        self._push_tail("valid")
        self._push_tail("inuse")
        s.sown = 1
        self.push_inject = self._inject("south")
        return 1

    def kick_needed(self, last: bool) -> int:
        del last  # decided by the push itself
        r, self.push_inject = self.push_inject, -1
        return r

    def _reap_ring(self) -> tuple[int, int] | None:
        s = self.slots[self.idx["valid"]["head"]]
        if not s.valid or s.sown:
            return None
        s.valid = 0
        self._pop_head("valid")
        return (s.cookie, 0)

    def _reap_txc(self) -> tuple[int, int] | None:
        """One TX-complete event: every slot handed back is taken back first, then the packet
        the event names completes; the event is cleared and its slot handed back (a signal)."""
        q = self.txcq
        if q.sown[q.idx["inuse"]["head"]]:
            return None
        while self._reap_ring() is not None:
            pass
        h, event = q.take()
        assert event[:4] == (0, TXC_BYTES, TXC_ID, 0), f"not a TX-complete event: {event}"
        q.events[h] = TXC_CLEARED
        inject(q.mbox["south"])
        return (event[4], 0)

    def _reap_one(self) -> tuple[int, int] | None:
        return self._reap_txc() if self.txcq else self._reap_ring()

    def reap(self) -> tuple[int, int] | None:
        if self.bridge is None:
            return self._reap_one()
        for signal in self.bridge.consume():
            assert signal == 0, "one device signal: its cookie is 0"
            self._signal_mbox()["dirty"] = 0
            self.open = True
        while self.open:
            got = self._reap_one()
            if got is not None:
                return got
            m = self._signal_mbox()  # drained: the wakeup ends unless signalled again
            m["pending"] = 0
            if m["dirty"]:
                m["dirty"] = 0
                continue
            self.open = False
        return None

    def disable_interrupts(self) -> int:
        if self.eoi_windows:
            self._irq_mbox()["dirty"] = 0  # the handler is deferred; the mailbox stays on
            return 0
        return wakeup_and_mask(self._irq_mbox())

    def enable_interrupts(self) -> int:
        idle = 0 if self.open else 1
        m = self._irq_mbox()
        if self.eoi_windows:
            m["pending"] = 0  # EOI
            return 0 if m["dirty"] else idle
        return unmask(m) and idle

    # --- device ----------------------------------------------------------------------------
    def pop(self) -> Popped | None:
        """Take the next slot the device owns and has not taken yet."""
        if self.taken == self.count:
            return None
        h = (self.idx["inuse"]["head"] + self.taken) % self.count
        s = self.slots[h]
        if not s.sown:
            return None
        self.taken += 1
        self.cookies[h] = s.cookie  # venetdev_rx keeps it for the TX-complete event
        segs = s.segs if self.sg_pool else 1
        return Popped(s.cookie, s.size, segs, h, 0)

    def push_used(self, handle: int, length: int) -> int:
        """Hand back the oldest taken slot (IOQ completes in order)."""
        del length
        assert self.taken > 0 and handle == self.idx["inuse"]["head"], "in-order completion"
        self.taken -= 1
        self._pop_head("inuse")
        self.slots[handle].sown = 0
        if self.txcq:
            self.txcq.push((0, TXC_BYTES, TXC_ID, 0, self.cookies[handle]))
        self.unsignalled += 1
        return 0

    def interrupt_needed(self, last: bool) -> int:
        k = self.unsignalled
        if k == 0 or (k < self.txmitigation and not last):
            return -1
        self.unsignalled = 0
        fired = inject(self._signal_mbox())
        if self.bridge is None or not fired:
            return fired
        return self.bridge.produce(0)

    def disable_kicks(self) -> int:
        return self._disable("south")

    def enable_kicks(self) -> int:
        return self._enable("south")

    # --- what the peers can see --------------------------------------------------------------
    def shared_scalars(self) -> dict[str, int]:
        out = {}
        for name, ix in self.idx.items():
            for k, v in ix.items():
                out[f"{name}.{k}"] = v
        for who, m in self.mbox.items():
            for k, v in m.items():
                out[f"{who}.{k}"] = v
        return out


# --- the shm-signal mailbox rules (models.md 3.3), on one {enabled, pending, dirty} dict -------
Mailbox = dict[str, int]


def new_mailbox(enabled: int) -> Mailbox:
    return {"enabled": enabled, "pending": 0, "dirty": 0}


def inject(m: Mailbox) -> int:
    """The peer changed shared memory: 1 if that crossed the boundary, 0 if suppressed."""
    m["dirty"] = 1
    if m["enabled"] and not m["pending"]:
        m["pending"] = 1
        return 1
    return 0


def wakeup_and_mask(m: Mailbox) -> int:
    """The owner's wakeup whose handler masks the mailbox and defers the work; nothing to run
    when the mailbox is masked already (a polling side)."""
    if m["enabled"]:
        m.update(enabled=0, dirty=0, pending=0)
    return 0


def unmask(m: Mailbox) -> int:
    """shm_signal_enable: 1 safe to wait, 0 a replay is due (something happened meanwhile)."""
    m["enabled"] = 1
    return 0 if (m["dirty"] or m["pending"]) else 1


# ================================================================================================
# vbus-ioq, transport = "call"
# ================================================================================================
HC_DEVCALL = 5  # the bridge's hypercall vector for a device call (vbench's numbering)
DEVICECALL_BYTES = 32  # vbus_pci_devicecall: u64 devh, u32 func, u32 len, u32 flags, u64 datap
CALL_DEVH = 1  # the one device this driver opened
CALL_FUNC = 0  # its "transmit" function

# where a call is: nothing open; rung (the vCPU is in the exit, the host has not read it);
# served (the host read it and runs the handler); done (result written, the vCPU may resume)
IDLE, RUNG, SERVED, DONE = "idle", "rung", "served", "done"


class IoqCallRef(IoqRef):
    """``vbus-ioq`` sending every request as a synchronous ``call()``.

    The IOQ region still exists (the device registered it) but is never used: its indexes,
    slots and mailboxes stay as built except for the mailbox masks the two sides toggle.
    Shared call descriptors: ``fastcall`` {vector, len, names_devicecall, result} and
    ``devicecall`` {devh, func, len, flags, req}; ``names_devicecall`` stands for the fastcall's
    datap pointing at this vCPU's devicecall, ``req`` for the devicecall's datap pointing at the
    request's (gathered, one-piece) payload.
    """

    def __init__(
        self, count: int, *, txmitigation: int, sg_pool: bool, eoi_windows: bool = False
    ) -> None:
        # call() takes one buffer: a multi-segment request is gathered by a copy, so the pool
        # (the ring transport's venet_sg entries) plays no part
        del sg_pool
        super().__init__(count, txmitigation=txmitigation, sg_pool=False, eoi_windows=eoi_windows)
        # --- shared memory: this vCPU's call descriptors, zero until its first call ---
        self.fastcall = {"vector": 0, "len": 0, "names_devicecall": 0, "result": 0}
        self.devicecall = {"devh": 0, "func": 0, "len": 0, "flags": 0, "req": -1}
        # --- the call in progress (the driver's request, the exit's progress) ---
        self.req = -1
        self.size = 0
        self.phase = IDLE
        self.sync = False  # the last add was a synchronous call (the interface's IO_SYNC)

    # --- driver ----------------------------------------------------------------------------
    def add(self, req: int, size: int, segs: int, write: bool) -> int:
        del segs, write  # gathered into one buffer; a call has no direction of its own
        self.sync = False
        if self.phase != IDLE:
            return 0  # one call at a time per vCPU: nothing written
        self.devicecall.update(devh=CALL_DEVH, func=CALL_FUNC, len=size, flags=0, req=req)
        self.fastcall.update(vector=HC_DEVCALL, len=DEVICECALL_BYTES, names_devicecall=1)
        self.req, self.size, self.phase = req, size, RUNG  # the doorbell: the exit begins
        self.sync = True
        return 1

    def kick_needed(self, last: bool) -> int:
        del last
        return -1  # the doorbell is the call itself: there is no separate kick to decide

    def reap(self) -> tuple[int, int] | None:
        if self.phase == IDLE:
            return None
        assert self.phase == DONE, "the vCPU is stalled in the exit until the host answers"
        assert self.fastcall["result"] == 0, "the host reported a failed call"
        self.phase = IDLE
        return (self.req, 0)

    # --- device (the host, inside the exit) -------------------------------------------------
    def pop(self) -> Popped | None:
        """The host reads the call the doorbell announced: one request, one piece."""
        if self.phase != RUNG:
            return None  # no exit in progress: no call to serve
        assert self.fastcall["vector"] == HC_DEVCALL and self.fastcall["names_devicecall"]
        assert self.fastcall["len"] == DEVICECALL_BYTES
        self.phase = SERVED
        return Popped(self.devicecall["req"], self.devicecall["len"], 1, 0, 0)

    def push_used(self, handle: int, length: int) -> int:
        """The handler finished: the result is copied out and the status written."""
        del handle, length
        assert self.phase == SERVED, "a call is completed only after the host read it"
        self.fastcall["result"] = 0
        self.phase = DONE
        return 0

    def interrupt_needed(self, last: bool) -> int:
        del last
        return -1  # the result comes back with the exit: no interrupt


# ================================================================================================
# vbus-prio
# ================================================================================================
EVENTQ_MAX = 8  # the connector routes a signal to event queue min(prio, count - 1), count <= 8
EVENT_BYTES = 144  # one vbus event; vbench writes its header {u32 flags, u32 size, u64 cookie}
HANDLE_Q = 1 << 16  # the device's push handle: class * HANDLE_Q + slot in that class's IOQ
# venet.h: struct venet_event_txc {{u32 flags, u32 size, u32 id} header, u32 txqid, u64 cookie},
# 24 bytes with x86-64 alignment; VENET_EVENT_TXC = 1. An event as the tuple of those fields.
TXC_BYTES = 24
TXC_ID = 1
TXC_CLEARED = (0, 0, 0, 0, 0)  # what the guest's memset leaves


class EventQueueRef:
    """One host-to-guest event queue: an IOQ whose every slot the guest posted to the host once
    at registration (valid = 1, owned by the host; the valid index full for good). The host
    produces at the inuse tail while it owns the slot and flips it to the guest; the guest
    consumes at the inuse head while it owns the slot and flips it back."""

    def __init__(self, size: int, empty: tuple[int, ...] = (0, 0, 0)) -> None:
        self.size = size
        # --- shared memory ---
        self.sown = [1] * size  # 1: the slot (its event) is the host's
        self.events = [empty] * size  # each slot's event, as its header's fields
        self.idx = {
            "valid": {"head": 0, "tail": 0, "full": 1},
            "inuse": {"head": 0, "tail": 0, "full": 0},
        }
        # the guest takes this queue's MSI; the host never waits for room, so its mask stays off
        self.mbox = {"north": new_mailbox(1), "south": new_mailbox(0)}

    def push(self, event: tuple[int, ...]) -> None:
        """Host: queue ``event`` at the inuse tail and hand its slot to the guest."""
        ix = self.idx["inuse"]
        t = ix["tail"]
        if not self.sown[t]:
            raise AssertionError("event queue overflow: an event would be lost")
        self.events[t] = event
        ix["tail"] = (t + 1) % self.size
        if ix["tail"] == ix["head"]:
            ix["full"] = 1
        self.sown[t] = 0

    def produce(self, signal: int) -> int:
        """Host (the PCI bridge): queue the event of device signal ``signal``; 1 if that raised
        the MSI."""
        self.push((0, EVENT_BYTES, signal))
        return inject(self.mbox["north"])

    def take(self) -> tuple[int, tuple[int, ...]]:
        """Guest: the slot at the inuse head and its event, the slot handed back to the host."""
        ix = self.idx["inuse"]
        h = ix["head"]
        assert not self.sown[h], "no event queued"
        ix["head"] = (h + 1) % self.size
        ix["full"] = 0
        self.sown[h] = 1
        return h, self.events[h]

    def consume(self) -> list[int]:
        """Guest: take every queued event (oldest first); the signals they name. After taking
        any, the guest signals the host (a dirty write)."""
        out = []
        while not self.sown[self.idx["inuse"]["head"]]:
            out.append(self.take()[1][2])
        if out:
            inject(self.mbox["south"])
        return out

    def shared_scalars(self) -> dict[str, int]:
        out = {f"{n}.{k}": v for n, ix in self.idx.items() for k, v in ix.items()}
        out.update({f"{w}.{k}": v for w, m in self.mbox.items() for k, v in m.items()})
        return out


class PrioRef:
    """vbus with one request IOQ per priority class and one (shipped) or one-per-class
    (designed, up to :data:`EVENTQ_MAX`) event queues."""

    def __init__(
        self,
        classes: int,
        count: int,
        *,
        txmitigation: int,
        sg_pool: bool,
        designed: bool,
        eventq_size: int,
        strict: bool = True,
    ) -> None:
        self.classes = classes
        self.designed = designed
        self.strict = strict  # the device's schedule: highest class with work, or in turn
        self.pop_signals = -1  # pop's own interrupt decision (IO_SIGNALED)
        self.txmitigation = txmitigation
        # each class IOQ is the plain venet TX ring; its north mailbox is the class's device
        # signal, enabled for good (the guest takes its signals as events)
        self.ioqs = [
            IoqRef(count, txmitigation=txmitigation, sg_pool=sg_pool) for _ in range(classes)
        ]
        n_evq = min(classes, EVENTQ_MAX) if designed else 1
        self.evqs = [EventQueueRef(eventq_size) for _ in range(n_evq)]
        # --- driver private ---
        self.push_inject = -1  # the last successful add's inject, for the kick decision
        self.open: list[int] = []  # IOQs whose signal the guest is handling, in opening order
        # --- device private ---
        self.last = classes - 1  # the class served last: round-robin starts at class 0

    # --- driver ----------------------------------------------------------------------------
    def add(self, req: int, size: int, segs: int, write: bool, prio: int) -> int:
        q = self.ioqs[min(prio, self.classes - 1)]
        if not q.add(req, size, segs, write):
            return 0
        self.push_inject = q.kick_needed(True)  # guest->host kicks ignore prio
        return 1

    def kick_needed(self, last: bool) -> int:
        del last
        r, self.push_inject = self.push_inject, -1
        return r

    def _take_events(self) -> None:
        """Consume every queued event, highest event queue first; each opens its IOQ and starts
        that signal's wakeup (dirty = 0)."""
        for evq in reversed(self.evqs):
            for k in evq.consume():
                self.ioqs[k].mbox["north"]["dirty"] = 0
                if k not in self.open:
                    self.open.append(k)

    def reap(self) -> tuple[int, int] | None:
        self._take_events()
        while self.open:
            k = max(self.open) if self.designed else self.open[0]
            got = self.ioqs[k].reap()
            if got is not None:
                return got
            # drained: the signal's wakeup ends (pending = 0) unless it was set again meanwhile
            m = self.ioqs[k].mbox["north"]
            m["pending"] = 0
            if m["dirty"]:
                m["dirty"] = 0
                continue
            self.open.remove(k)
        return None

    def disable_interrupts(self) -> int:
        for evq in self.evqs:
            wakeup_and_mask(evq.mbox["north"])
        return 0

    def enable_interrupts(self) -> int:
        r = 0 if self.open else 1
        for evq in self.evqs:
            if unmask(evq.mbox["north"]) == 0:
                r = 0
        return r

    # --- device ----------------------------------------------------------------------------
    def _service_order(self) -> list[int]:
        """The classes in the device's service order: highest first (strict), or in turn
        starting after the one served last (round-robin)."""
        if self.strict:
            return list(reversed(range(self.classes)))
        return [(self.last + i) % self.classes for i in range(1, self.classes + 1)]

    def pop(self) -> Popped | None:
        """Take the next request the device has not taken yet, from the first class in service
        order that has one (each class IOQ walks on from its inuse head, as ioq_iter does). A
        class looked at and found run dry with completions not yet signalled ends its service
        pass with its signal (venet's venetdev_rx: ``if (dirty) ioq_signal``)."""
        self.pop_signals = -1
        for k in self._service_order():
            q = self.ioqs[k]
            all_taken = q.taken == q.count  # every slot taken: not run dry
            p = q.pop()
            if p is not None:
                self.last = k
                return Popped(p.req, p.size, p.segs, k * HANDLE_Q + p.handle, p.length)
            if not all_taken and q.unsignalled > 0:
                q.unsignalled = 0
                self.pop_signals = max(self.pop_signals, 0) + self._signal(k)
        return None

    def push_used(self, handle: int, length: int) -> int:
        k, h = divmod(handle, HANDLE_Q)
        return self.ioqs[k].push_used(h, length)  # counts the class's unsignalled completions

    def _signal(self, k: int) -> int:
        """Inject class ``k``'s device signal; if it fires, its event goes to event queue
        ``min(k, E - 1)``. 1 if that raised an MSI."""
        if inject(self.ioqs[k].mbox["north"]) == 0:
            return 0  # its event is still queued or being handled: merged
        return self.evqs[min(k, len(self.evqs) - 1)].produce(k)

    def interrupt_needed(self, last: bool) -> int:
        if last:  # ran empty: signal every class with completions, in service order
            due = [k for k in self._service_order() if self.ioqs[k].unsignalled > 0]
        else:  # mid-run: only the class just served, once txmitigation completions piled up
            due = [self.last] if self.ioqs[self.last].unsignalled >= self.txmitigation else []
        if not due:
            return -1
        msi = 0
        for k in due:
            self.ioqs[k].unsignalled = 0
            msi += self._signal(k)
        return msi

    def disable_kicks(self) -> int:
        for q in self.ioqs:
            wakeup_and_mask(q.mbox["south"])
        return 0

    def enable_kicks(self) -> int:
        r = 1
        for q in self.ioqs:
            if unmask(q.mbox["south"]) == 0:
                r = 0
        return r
