"""A small pure-Python reference of the virtio split virtqueue, written from the protocol rules
alone (the conventions every reference follows are in :mod:`reference`).

The policies mirrored are the ones the model documents (virtio 1.x "Split Virtqueues"): a
Linux-style driver (a LIFO free list of descriptors, chains or one INDIRECT descriptor for
multi-segment requests, avail.idx published on every add or only at the kick decision,
``get_buf`` re-arming ``used_event`` on every buffer while interrupts are on, ``disable_cb``
writing ``used_event = 0`` under EVENT_IDX) and a vhost-style device (``avail_event`` written
when kicks are re-enabled, and with the QEMU option on every pop as well; used.idx published once
per ``used_batch`` completions or when the device runs empty; an interrupt decision only when
something new was published). The driver's interrupt handler follows one of three policies:
``napi`` (disable, reap at most a budget, re-enable with a re-check unless the budget ran out),
``get_buf`` (interrupts stay armed) or ``delayed`` (``enable_cb_delayed``: arm at 3/4 of the
outstanding buffers). Options: VIRTIO_F_IN_ORDER, a device look-ahead window that serves the
highest class first, and the 2009 QEMU TX mitigation timer (see :class:`SplitRef`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .common import U16, Popped, need_event, segment_lengths

# virtio flag bits (virtio spec / linux/virtio_ring.h)
F_NEXT = 1
F_WRITE = 2
F_INDIRECT = 4
USED_F_NO_NOTIFY = 1
AVAIL_F_NO_INTERRUPT = 1
# virtio-blk request types (linux/virtio_blk.h): the device writes the buffer / reads it
VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1


# ================================================================================================
# virtio split virtqueue
# ================================================================================================
@dataclass
class Desc:
    """One descriptor as the device reads it; ``req``/``off`` stand for the buffer address."""

    req: int = -1
    off: int = 0
    len: int = 0
    flags: int = 0
    next: int = 0


class BlkHeader(NamedTuple):
    """The virtio-blk request header (``struct virtio_blk_outhdr``) a look-ahead device reads."""

    type: int  # VIRTIO_BLK_T_IN (device writes the buffer) or VIRTIO_BLK_T_OUT
    ioprio: int  # the request's priority class
    sector: int  # the model puts the request id here


class SplitRef:
    """Reference split ring: shared areas as dicts, each side's private state as attributes.

    Beyond the base protocol it covers three options, each from its own source:

    * ``in_order`` (VIRTIO_F_IN_ORDER, spec "In-order use of descriptors"): the driver takes
      descriptors in ring order, so its free list is a position and a count; the device uses
      buffers in the order they were made available and writes one used element per flush (the
      id and length of the batch's last buffer) while used.idx moves by the batch size; the
      driver, knowing the order, completes the buffers before that id without reading the ring.
      As Linux's in-order ``get_buf`` does, only the batch's last buffer learns the used length;
      the others answer 0 (the device wrote no length for them).
    * ``lookahead`` W: the device keeps a private window of up to W entries it has taken from
      the avail ring (in ring order: the ring itself is consumed in order) and serves the entry of
      the highest class in it, the oldest among equals. It reads each entry's class from the
      ioprio of the virtio-blk header the driver wrote for that request (one header slot per
      chain head). It refreshes its copy of avail.idx only when the window has room and the
      entries it already knew of are all taken, as vhost refreshes its cached avail.idx.
    * ``tx_timer_ns`` T: the 2009 QEMU virtio-net TX timer. A device wakeup (``disable_kicks``
      at time ``now``) that finds the timer idle arms it for ``now + T``; while ``now`` is before
      the deadline the work is deferred (answer 1, the deadline as the wake-up time); the first
      wakeup at or after it disarms the timer and the queue is flushed (answer 0).
    """

    def __init__(
        self,
        n: int,
        *,
        event_idx: bool,
        indirect: bool,
        publish_on_add: bool,
        qemu_avail_event: bool,
        used_batch: int,
        signal_batch: int | None = None,
        reap_policy: str = "napi",
        napi_budget: int = 64,
        in_order: bool = False,
        lookahead: int = 0,
        tx_timer_ns: int = 0,
    ) -> None:
        assert not (in_order and lookahead), "look-ahead completes out of order: not IN_ORDER"
        self.n = n
        self.event_idx = event_idx
        self.indirect = indirect
        self.publish_on_add = publish_on_add
        self.qemu_avail_event = qemu_avail_event
        self.used_batch = used_batch
        self.signal_batch = used_batch if signal_batch is None else signal_batch
        self.reap_policy = reap_policy
        self.napi_budget = napi_budget
        self.in_order = in_order
        self.lookahead = lookahead
        self.tx_timer_ns = tx_timer_ns
        # --- shared memory ---
        self.desc = [Desc() for _ in range(n)]
        self.tables: dict[int, list[Desc]] = {}  # indirect table of each head slot
        self.avail: dict[str, Any] = {"flags": 0, "idx": 0, "ring": [0] * n, "used_event": 0}
        self.used: dict[str, Any] = {
            "flags": 0,
            "idx": 0,
            "ring": [(0, 0)] * n,
            "avail_event": 0,
        }
        self.headers: dict[int, BlkHeader] = {}  # look-ahead: the header slot of each head
        # --- driver private ---
        self.free = list(range(n))  # the free list in order: front is taken first
        self.next_desc = 0  # IN_ORDER: the next descriptor in ring order ...
        self.num_free = n  # ... and how many are free from there on
        # head -> (request, descriptors), in the order the chains were made available
        self.chains: dict[int, tuple[int, list[int]]] = {}
        self.next_avail = 0  # where the next head goes (the driver's avail shadow)
        self.last_decided = 0  # next_avail at the last kick decision
        self.last_used = 0
        self.irq_off = False
        self.reaped = 0  # buffers reaped since the handler started
        self.batch: tuple[int, int] | None = None  # IN_ORDER: the used element being worked off
        # --- device private ---
        self.last_avail = 0
        self.avail_seen = 0  # the avail.idx value the device last read
        self.next_head = 0  # IN_ORDER: the head of the next chain (vhost's next_avail_head)
        self.window: list[tuple[int, int]] = []  # look-ahead: (head, class), oldest first
        self.next_used = 0  # where the next used element goes
        self.unflushed: list[tuple[int, int]] = []  # IN_ORDER: (id, len) since the last flush
        self.signalled = 0  # used.idx at the last interrupt decision
        self.timer_at: int | None = None  # TX timer: the deadline while it is armed
        self.wake_at = 0  # TX timer: the deadline the last deferring wakeup answered

    # --- set-up ----------------------------------------------------------------------------
    def fast_forward(self, k: int) -> None:
        """The state after ``k`` complete one-segment round trips from a fresh ring.

        One round trip is: add (request 0, size 1, device reads, class 0), kick decision, pop,
        push, interrupt decision at the end of a batch, then the driver's handler: disable
        interrupts, reap, enable interrupts. Nothing else may have happened before. Every index
        moves by ``k``; a LIFO free list ends as it began (every trip uses descriptor 0) while
        IN_ORDER uses descriptor ``t mod n`` on trip ``t``; a NAPI budget of 1 is spent by every
        handler, which then leaves interrupts off.
        """
        assert self.last_used == 0 and self.next_avail == 0 and not self.chains
        if k == 0:
            return
        v = k & U16
        n = self.n
        for i in range(min(k, n)):
            head = i if self.in_order else 0  # the latest trip through slot i used this head
            self.avail["ring"][i] = head
            self.used["ring"][i] = (head, 0)
            self.desc[head] = Desc(req=0, off=0, len=1, flags=0, next=0)
            if self.lookahead:
                self.headers[head] = BlkHeader(VIRTIO_BLK_T_OUT, 0, 0)
        if self.in_order:
            self.next_desc = self.next_head = k % n
        self.avail["idx"] = self.used["idx"] = v
        self.next_avail = self.last_decided = self.last_used = v
        self.last_avail = self.avail_seen = self.next_used = self.signalled = v
        self.reaped = 1
        stays_off = self.reap_policy == "napi" and self.napi_budget <= 1
        if stays_off:
            self.irq_off = True
            if not self.event_idx:
                self.avail["flags"] = AVAIL_F_NO_INTERRUPT
        # the handler's enable writes used_event in both modes (never, when the budget stays off)
        self.avail["used_event"] = 0 if stays_off else v
        if self.event_idx and self.qemu_avail_event:
            self.used["avail_event"] = v

    # --- driver ----------------------------------------------------------------------------
    def free_count(self) -> int:
        return self.num_free if self.in_order else len(self.free)

    def _take(self, need: int) -> list[int]:
        """Descriptors for one request: the next ones in ring order under IN_ORDER, else the
        front of the free list."""
        if self.in_order:
            ids = [(self.next_desc + j) % self.n for j in range(need)]
            self.next_desc = (self.next_desc + need) % self.n
            self.num_free -= need
            return ids
        ids = self.free[:need]
        del self.free[:need]
        return ids

    def _give_back(self, ids: list[int]) -> None:
        if self.in_order:
            self.num_free += len(ids)  # they are the oldest in use: the counter says it all
        else:
            self.free[0:0] = ids

    def add(self, req: int, size: int, segs: int, write: bool, prio: int = 0) -> int:
        lens = segment_lengths(size, segs)
        as_table = self.indirect and segs > 1
        need = 1 if as_table else segs
        if self.free_count() < need:
            return 0
        ids = self._take(need)
        wflag = F_WRITE if write else 0
        offs = [sum(lens[:j]) for j in range(segs)]
        if as_table:
            table = [
                Desc(req, offs[j], lens[j], wflag | (F_NEXT if j < segs - 1 else 0), j + 1)
                for j in range(segs)
            ]
            self.tables[ids[0]] = table
            self.desc[ids[0]] = Desc(-1, 0, 16 * segs, F_INDIRECT, 0)
        else:
            for j, i in enumerate(ids):
                more = j < segs - 1
                nxt = ids[j + 1] if more else 0
                self.desc[i] = Desc(req, offs[j], lens[j], wflag | (F_NEXT if more else 0), nxt)
        head = ids[0]
        if self.lookahead:
            kind = VIRTIO_BLK_T_IN if write else VIRTIO_BLK_T_OUT
            self.headers[head] = BlkHeader(kind, prio, req)
        self.chains[head] = (req, ids)
        self.avail["ring"][self.next_avail % self.n] = head
        self.next_avail = (self.next_avail + 1) & U16
        if self.publish_on_add:
            self.avail["idx"] = self.next_avail
        return 1

    def kick_needed(self, last: bool) -> int:
        if not last:
            return -1
        old, new = self.last_decided, self.next_avail
        self.last_decided = new
        self.avail["idx"] = new  # a no-op when every add already published
        if self.event_idx:
            return int(need_event(self.used["avail_event"], new, old))
        return 0 if self.used["flags"] & USED_F_NO_NOTIFY else 1

    def _budget_spent(self) -> bool:
        return self.reap_policy == "napi" and self.reaped >= self.napi_budget

    def reap(self) -> tuple[int, int] | None:
        if self._budget_spent():
            return None  # the poll ends here and is rescheduled
        if self.in_order:
            if self.batch is None:
                if self.used["idx"] == self.last_used:
                    return None
                self.batch = self.used["ring"][self.last_used % self.n]
            head = next(iter(self.chains))  # the oldest buffer made available is used first
            if head == self.batch[0]:
                length = self.batch[1]
                self.batch = None
            else:
                length = 0  # no used element names this buffer: no length either
        else:
            if self.used["idx"] == self.last_used:
                return None
            head, length = self.used["ring"][self.last_used % self.n]
            if head not in self.chains:
                return (-2, length)
        req, ids = self.chains.pop(head)
        self._give_back(ids)
        self.tables.pop(head, None)
        self.last_used = (self.last_used + 1) & U16
        self.reaped += 1
        if not self.irq_off:  # get_buf re-arms used_event in flags mode too
            self.avail["used_event"] = self.last_used
        return (req, length)

    def disable_interrupts(self, triggered: bool = False) -> int:
        """``triggered``: an interrupt has just fired (Linux's event_triggered): under EVENT_IDX
        the device will not send another, so nothing is written."""
        self.reaped = 0
        if self.reap_policy == "get_buf":
            return 0  # the handler leaves interrupts armed
        if not self.irq_off:
            self.irq_off = True
            if self.event_idx and triggered:
                return 0
            if self.event_idx:
                self.avail["used_event"] = 0
            else:
                self.avail["flags"] |= AVAIL_F_NO_INTERRUPT
        return 0

    def enable_interrupts(self) -> int:
        if self._budget_spent():
            return 0  # stay off and poll again
        if self.irq_off:
            self.irq_off = False
            if not self.event_idx:
                self.avail["flags"] &= ~AVAIL_F_NO_INTERRUPT
        # delayed: the interrupt is wanted once 3/4 of the outstanding buffers are used
        later = 0
        if self.reap_policy == "delayed":
            later = ((self.next_avail - self.last_used) & U16) * 3 // 4
        waiting = (self.used["idx"] - self.last_used) & U16
        self.avail["used_event"] = (self.last_used + later) & U16  # in flags mode too
        if self.event_idx:
            return 1 if waiting <= later else 0
        return 1 if waiting == 0 else 0

    # --- device ----------------------------------------------------------------------------
    def device_drained(self) -> bool:
        """The device has served every entry it has seen (vhost's precondition to re-arm)."""
        return self.last_avail == self.avail_seen and not self.window

    def _choose(self) -> int | None:
        """Look-ahead: top up the window in ring order, then take its most urgent entry."""
        if len(self.window) < self.lookahead and self.last_avail == self.avail_seen:
            self.avail_seen = self.avail["idx"]  # look for more to choose from
        while len(self.window) < self.lookahead and self.last_avail != self.avail_seen:
            head = self.avail["ring"][self.last_avail % self.n]
            self.window.append((head, self.headers[head].ioprio))
            self.last_avail = (self.last_avail + 1) & U16
        if not self.window:
            return None
        top = max(cls for _, cls in self.window)
        k = next(k for k, (_, cls) in enumerate(self.window) if cls == top)
        return self.window.pop(k)[0]

    def pop(self) -> Popped | None:
        if self.lookahead:
            head = self._choose()
            if head is None:
                return None
        else:
            if self.last_avail == self.avail_seen:
                self.avail_seen = self.avail["idx"]
                if self.avail_seen == self.last_avail:
                    return None
            # vhost's in-order pop takes the head after the last chain instead of the ring's
            ring = self.avail["ring"][self.last_avail % self.n]
            head = self.next_head if self.in_order else ring
            self.last_avail = (self.last_avail + 1) & U16
        if self.event_idx and self.qemu_avail_event:
            self.used["avail_event"] = self.last_avail
        d = self.desc[head]
        if d.flags & F_INDIRECT:
            chain = self.tables[head]
        else:
            chain = [d]
            while chain[-1].flags & F_NEXT:
                chain.append(self.desc[chain[-1].next])
        if self.in_order:  # an indirect chain takes one table slot, a direct one one per segment
            self.next_head = (head + (1 if d.flags & F_INDIRECT else len(chain))) % self.n
        total = sum(x.len for x in chain)
        wrote = any(x.flags & F_WRITE for x in chain)
        return Popped(chain[0].req, total, len(chain), head, total if wrote else 0)

    def push_used(self, handle: int, length: int) -> int:
        if self.in_order:
            self.unflushed.append((handle, length))  # written at the flush, as one element
            return 0
        self.used["ring"][self.next_used % self.n] = (handle, length)
        self.next_used = (self.next_used + 1) & U16
        return 0

    def interrupt_needed(self, last: bool) -> int:
        if self.in_order and self.unflushed:
            k = len(self.unflushed)
            if k < self.used_batch and not last:
                return -1
            # one element for the batch, naming its last buffer; used.idx moves by k
            self.used["ring"][self.next_used % self.n] = self.unflushed[-1]
            self.next_used = (self.next_used + k) & U16
            self.unflushed = []
        unpublished = (self.next_used - self.used["idx"]) & U16
        if unpublished:
            if unpublished < self.used_batch and not last:
                return -1
            self.used["idx"] = self.next_used
        new, old = self.used["idx"], self.signalled
        if new == old:
            return -1
        if ((new - old) & U16) < self.signal_batch and not last:
            return -1  # a decision per signal_batch published completions, or when empty
        self.signalled = new
        if self.event_idx:
            return int(need_event(self.avail["used_event"], new, old))
        return 0 if self.avail["flags"] & AVAIL_F_NO_INTERRUPT else 1

    def disable_kicks(self, now: int = 0) -> int:
        """The device starts servicing after a wakeup at ``now``: 1 when a TX timer defers the
        work to :attr:`wake_at`, else 0."""
        if not self.event_idx:
            self.used["flags"] |= USED_F_NO_NOTIFY
        if self.tx_timer_ns:
            if self.timer_at is None:
                self.timer_at = now + self.tx_timer_ns  # the kick that finds it idle arms it
            if now < self.timer_at:
                self.wake_at = self.timer_at
                return 1
            self.timer_at = None  # it has fired: flush the queue now
        return 0

    def enable_kicks(self) -> int:
        """Re-arm at the avail.idx last read and re-check (vhost_enable_notify); the engine calls
        it on a drained device (see :meth:`device_drained`)."""
        if self.event_idx:
            self.used["avail_event"] = self.avail_seen
        else:
            self.used["flags"] &= ~USED_F_NO_NOTIFY
        return 1 if self.avail["idx"] == self.avail_seen else 0

    # --- what the peers can see --------------------------------------------------------------
    def shared_scalars(self) -> dict[str, int]:
        return {
            "avail.flags": self.avail["flags"],
            "avail.idx": self.avail["idx"],
            "used_event": self.avail["used_event"],
            "used.flags": self.used["flags"],
            "used.idx": self.used["idx"],
            "avail_event": self.used["avail_event"],
        }

    def outstanding(self) -> dict[int, tuple[int, list[Desc]]]:
        """head -> (head descriptor, the segment descriptors) of every outstanding request."""
        out = {}
        for head, (_, ids) in self.chains.items():
            if head in self.tables:
                out[head] = (self.desc[head], self.tables[head])
            else:
                out[head] = (self.desc[head], [self.desc[i] for i in ids])
        return out
