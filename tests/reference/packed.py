"""A small pure-Python reference of the virtio packed ring, written from the protocol rules alone.

Shared memory is plain Python data (a list of descriptors, two suppression areas, indirect
tables keyed by their address); nothing comes from the jitted model. Where the model keeps a
slot and a wrap counter per position, this reference keeps one free-running *linear* position
per side and derives both (slot = pos mod N, wrap = 1 for even laps, 0 for odd ones), so the
two implementations share no arithmetic on positions.

Policies mirrored (see vbench/models/virtio_packed.py's docstring for the faithful sources):

* driver: free ids taken from the front of a list and returned to its front (LIFO); under
  IN_ORDER the id is the head slot. A chain takes consecutive slots, the id in every
  descriptor, NEXT on all but the last, WRITE when the device writes, AVAIL = wrap and
  USED = !wrap; a multi-segment request with INDIRECT on is one ring descriptor (flags INDIRECT)
  pointing at the table of its id, whose entries carry only WRITE. The kick decision (at the
  end of a batch only) reads the device's area: DISABLE no, DESC the wrap-adjusted
  ``vring_need_event``, anything else yes. ``get_buf`` re-arms off_wrap while the flags shadow
  is DESC; ``disable_cb`` writes DISABLE when the shadow differs; ``enable_cb`` writes off_wrap
  (EVENT_IDX), then DESC or ENABLE if the shadow was DISABLE, then re-checks.
* device: takes the chain at its position when AVAIL = wrap and USED != wrap; completions are
  written once ``used_batch`` are pending or when it runs empty, one used descriptor per chain
  (IN_ORDER: one per flush, the last buffer's id) with AVAIL = USED = the lap of its slot, each
  skipping its chain's slots; an interrupt decision only when something was written since the
  last one. ``enable_kicks`` writes off_wrap (EVENT_IDX) and DESC, or ENABLE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import U16, Popped, need_event, segment_lengths

F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
F_AVAIL, F_USED = 1 << 7, 1 << 15
EV_ENABLE, EV_DISABLE, EV_DESC = 0, 1, 2
DATA_GPA, DATA_SHIFT = 1 << 40, 24


@dataclass
class PDesc:
    addr: int = 0
    len: int = 0
    id: int = 0
    flags: int = 0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.addr, self.len, self.id, self.flags)


@dataclass
class Event:
    """A suppression area: what the other side reads in one 32-bit snapshot."""

    off_wrap: int = 0
    flags: int = EV_ENABLE


@dataclass
class PackedRef:
    n: int
    event_idx: bool
    indirect: bool
    used_batch: int
    in_order: bool
    table_gpa: dict[int, int]  # buffer id -> guest-physical address of its indirect table
    signal_batch: int = 0  # completions written per interrupt decision (0: used_batch)
    # --- shared memory ---
    ring: list[PDesc] = field(init=False)
    tables: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)  # gpa -> entries
    driver_event: Event = field(default_factory=Event)
    device_event: Event = field(default_factory=Event)

    def __post_init__(self) -> None:
        self.ring = [PDesc() for _ in range(self.n)]
        # driver private
        self.free = list(range(self.n))
        self.outstanding: dict[int, tuple[int, int]] = {}  # id -> (request, slots)
        self.avail_pos = 0
        self.added = 0  # slots made available since the last kick decision
        self.used_pos = 0  # the driver's last_used
        self.irq_shadow = EV_ENABLE
        self.batch_last: tuple[int, int] | None = None  # in-order batch: (last id, its len)
        # device private
        self.dev_pos = 0  # the device's last_avail
        self.held: dict[int, int] = {}  # id -> slots, popped and not yet written back
        self.pending: list[tuple[int, int]] = []
        self.next_used_pos = 0
        self.published = 0  # slots written back since the last interrupt decision
        self.kick_shadow = EV_ENABLE
        # the last decisions' windows, for the tests' window rule: (old, new) linear positions
        self.kick_window: tuple[int, int] | None = None
        self.irq_window: tuple[int, int] | None = None

    # --- positions ------------------------------------------------------------------------
    def slot(self, pos: int) -> int:
        return pos % self.n

    def wrap(self, pos: int) -> int:
        """Both wrap counters start at 1 and flip every lap."""
        return 1 - (pos // self.n) % 2

    def off_wrap(self, pos: int) -> int:
        return self.slot(pos) | (self.wrap(pos) << 15)

    def _decide(self, ev: Event, new_pos: int, added: int) -> int:
        if ev.flags == EV_DISABLE:
            return 0
        if ev.flags != EV_DESC:
            return 1
        event = ev.off_wrap & 0x7FFF
        if ev.off_wrap >> 15 != self.wrap(new_pos):
            event -= self.n  # the event lies in the previous lap
        new = self.slot(new_pos)
        return int(need_event(event & U16, new, (new - added) & U16))

    def _is_avail(self, pos: int) -> bool:
        f, w = self.ring[self.slot(pos)].flags, self.wrap(pos)
        return bool(f & F_AVAIL) == bool(w) and bool(f & F_USED) != bool(w)

    def _is_used(self, pos: int) -> bool:
        f, w = self.ring[self.slot(pos)].flags, self.wrap(pos)
        return bool(f & F_AVAIL) == bool(w) and bool(f & F_USED) == bool(w)

    # --- driver ---------------------------------------------------------------------------
    def add(self, req: int, size: int, segs: int, write: bool) -> int:
        ind = self.indirect and segs > 1
        slots = 1 if ind else segs
        in_use = sum(s for _, s in self.outstanding.values())
        if self.n - in_use < slots:
            return 0
        bid = self.slot(self.avail_pos) if self.in_order else self.free.pop(0)
        wf = F_WRITE if write else 0
        lens = segment_lengths(size, segs)
        addrs = [DATA_GPA + (req << DATA_SHIFT) + sum(lens[:j]) for j in range(segs)]
        if ind:
            gpa = self.table_gpa[bid]
            # a shorter table leaves the tail of a longer earlier one in memory, unread
            self.tables.setdefault(gpa, [])[:segs] = [
                (a, ln, wf) for a, ln in zip(addrs, lens, strict=True)
            ]
            parts = [(gpa, 16 * segs, F_INDIRECT)]
        else:
            parts = [
                (a, ln, wf | (F_NEXT if j < segs - 1 else 0))
                for j, (a, ln) in enumerate(zip(addrs, lens, strict=True))
            ]
        for k, (a, ln, f) in enumerate(parts):
            pos = self.avail_pos + k
            mark = F_AVAIL if self.wrap(pos) else F_USED
            self.ring[self.slot(pos)] = PDesc(a, ln, bid, f | mark)
        self.avail_pos += slots
        self.added += slots
        self.outstanding[bid] = (req, slots)
        return 1

    def kick_needed(self, last: bool) -> int:
        if not last:
            return -1
        added, self.added = self.added, 0
        self.kick_window = (self.avail_pos - added, self.avail_pos)
        return self._decide(self.device_event, self.avail_pos, added)

    def reap(self) -> tuple[int, int] | None:
        pos = self.used_pos
        if self.in_order and self.batch_last is not None:
            bid = self.slot(pos)
        else:
            if not self._is_used(pos):
                return None
            d = self.ring[self.slot(pos)]
            if self.in_order:
                self.batch_last = (d.id, d.len)
                bid = self.slot(pos)
            else:
                bid, length = d.id, d.len
        req, slots = self.outstanding.pop(bid)
        if self.in_order:
            assert self.batch_last is not None
            if bid == self.batch_last[0]:
                length = self.batch_last[1]
                self.batch_last = None
            else:
                length = 0
        else:
            self.free.insert(0, bid)
        self.used_pos += slots
        if self.irq_shadow == EV_DESC:
            self.driver_event.off_wrap = self.off_wrap(self.used_pos)
        return req, length

    def disable_interrupts(self, triggered: bool = False) -> int:
        """``triggered``: an interrupt has just fired: under EVENT_IDX nothing is written."""
        if self.irq_shadow != EV_DISABLE:
            self.irq_shadow = EV_DISABLE
            if not (self.event_idx and triggered):
                self.driver_event.flags = EV_DISABLE
        return 0

    def enable_interrupts(self) -> int:
        if self.event_idx:
            self.driver_event.off_wrap = self.off_wrap(self.used_pos)
        if self.irq_shadow == EV_DISABLE:
            self.irq_shadow = EV_DESC if self.event_idx else EV_ENABLE
            self.driver_event.flags = self.irq_shadow
        if self.in_order and self.batch_last is not None:
            return 0
        return 0 if self._is_used(self.used_pos) else 1

    # --- device ---------------------------------------------------------------------------
    def pop(self) -> Popped | None:
        pos = self.dev_pos
        if not self._is_avail(pos):
            return None
        head = self.ring[self.slot(pos)]
        if head.flags & F_INDIRECT:
            entries = self.tables[head.addr][: head.len // 16]
            bid, slots = head.id, 1
        else:
            chain = [head]
            while chain[-1].flags & F_NEXT:
                chain.append(self.ring[self.slot(pos + len(chain))])
            entries = [(d.addr, d.len, d.flags) for d in chain]
            bid, slots = chain[-1].id, len(chain)
        size = sum(ln for _, ln, _ in entries)
        wrote = any(f & F_WRITE for _, _, f in entries)
        self.dev_pos += slots
        self.held[bid] = slots
        req = (entries[0][0] - DATA_GPA) >> DATA_SHIFT
        return Popped(req, size, len(entries), bid, size if wrote else 0)

    def _write_used(self, pos: int, bid: int, length: int) -> None:
        d = self.ring[self.slot(pos)]
        d.id, d.len = bid, length
        d.flags = (F_AVAIL | F_USED) if self.wrap(pos) else 0

    def _flush(self) -> None:
        if not self.pending:
            return
        slots = [self.held.pop(bid) for bid, _ in self.pending]
        if self.in_order:
            self._write_used(self.next_used_pos, *self.pending[-1])
        else:
            pos = self.next_used_pos
            for (bid, length), s in zip(self.pending, slots, strict=True):
                self._write_used(pos, bid, length)
                pos += s
        self.next_used_pos += sum(slots)
        self.published += sum(slots)
        self.pending = []

    def push_used(self, handle: int, length: int) -> int:
        self.pending.append((handle, length))
        if len(self.pending) >= self.used_batch:
            self._flush()
        return 0

    def interrupt_needed(self, last: bool) -> int:
        if self.pending:
            if not last:
                return -1
            self._flush()
        if self.published == 0:
            return -1
        if self.published < (self.signal_batch or self.used_batch) and not last:
            return -1  # a decision per signal_batch written completions, or when empty
        added, self.published = self.published, 0
        self.irq_window = (self.next_used_pos - added, self.next_used_pos)
        return self._decide(self.driver_event, self.next_used_pos, added)

    def disable_kicks(self) -> int:
        if self.kick_shadow != EV_DISABLE:
            self.kick_shadow = self.device_event.flags = EV_DISABLE
        return 0

    def enable_kicks(self) -> int:
        want = EV_ENABLE
        if self.event_idx:
            self.device_event.off_wrap = self.off_wrap(self.dev_pos)
            want = EV_DESC
        if self.kick_shadow != want:
            self.kick_shadow = self.device_event.flags = want
        return 0 if self._is_avail(self.dev_pos) else 1
