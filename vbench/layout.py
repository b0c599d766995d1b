"""Byte layouts of every shared structure, defined once.

Every model, test and the ``vbench layout`` report reads offsets from here, so a layout mistake
shows up everywhere at once and is caught by the tests that compile the real Linux uapi header
(``<linux/virtio_ring.h>``) and a C declaration of the vbus structs with gcc.

Structs are laid out with C natural alignment on x86-64 (little-endian), which is how the real
headers lay them out. A model's shared memory is an *arena*: a list of :class:`Area` objects at
fixed offsets, each made of fields (scalars, structs or arrays of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vbench.counters import AREAS

LINE = 64  # bytes per cache line: the unit of coherence traffic

# --- virtio split ring constants (virtio spec "Split Virtqueues"; linux/virtio_ring.h) -------
VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
VRING_DESC_F_INDIRECT = 4
VRING_USED_F_NO_NOTIFY = 1
VRING_AVAIL_F_NO_INTERRUPT = 1
VIRTIO_PCI_VRING_ALIGN = 4096  # legacy virtio-pci ring alignment
SPLIT_MAX_QUEUE = 32768

# --- vbus constants (AlacrityVM include/linux/shm_signal.h, ioq.h, venet.h) ------------------
SHM_SIGNAL_MAGIC = 0x58FA39DF
SHM_SIGNAL_VER = 1
IOQ_RING_MAGIC = 0x47FA2FE4
IOQ_RING_VER = 4
IOQ_MAX_COUNT = 2048  # the host's limit for a venet queue
SHM_NORTH = 0  # irq[0]: the driver's (guest's) mailbox
SHM_SOUTH = 1  # irq[1]: the device's (host's) mailbox
IOQ_IDX_VALID = 0
IOQ_IDX_INUSE = 1

SCALARS: dict[str, int] = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}


@dataclass(frozen=True)
class Member:
    """One member of a struct as declared: a scalar type name or a nested :class:`Struct`."""

    name: str
    type: str | Struct
    count: int = 1  # > 1 for a fixed-size array member

    @property
    def elem_size(self) -> int:
        return SCALARS[self.type] if isinstance(self.type, str) else self.type.size

    @property
    def align(self) -> int:
        return SCALARS[self.type] if isinstance(self.type, str) else self.type.align


@dataclass(frozen=True)
class Field:
    """A laid-out member: where it sits and how large it is."""

    name: str
    offset: int
    size: int
    type: str  # scalar name or struct name
    count: int = 1


@dataclass(frozen=True)
class Struct:
    """A C struct laid out with natural alignment (what gcc does on x86-64)."""

    name: str
    members: tuple[Member, ...]
    fields: tuple[Field, ...] = field(init=False)
    size: int = field(init=False)
    align: int = field(init=False)

    def __post_init__(self) -> None:
        off, align, out = 0, 1, []
        for m in self.members:
            a = m.align
            off = _align_up(off, a)
            size = m.elem_size * m.count
            tname = m.type if isinstance(m.type, str) else m.type.name
            out.append(Field(m.name, off, size, tname, m.count))
            off += size
            align = max(align, a)
        object.__setattr__(self, "fields", tuple(out))
        object.__setattr__(self, "align", align)
        object.__setattr__(self, "size", _align_up(off, align))

    def offset(self, path: str) -> int:
        """Offset of a member, nested members as ``a.b``."""
        head, _, rest = path.partition(".")
        for f, m in zip(self.fields, self.members, strict=True):
            if f.name == head:
                if rest:
                    assert isinstance(m.type, Struct)
                    return f.offset + m.type.offset(rest)
                return f.offset
        raise KeyError(f"{self.name} has no member {path!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "align": self.align,
            "fields": [
                {
                    "name": f.name,
                    "offset": f.offset,
                    "size": f.size,
                    "type": f.type,
                    "count": f.count,
                }
                for f in self.fields
            ],
        }


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


def _s(name: str, *members: tuple) -> Struct:
    return Struct(name, tuple(Member(*m) for m in members))


# --- the structures ----------------------------------------------------------------------------
VRING_DESC = _s("vring_desc", ("addr", "u64"), ("len", "u32"), ("flags", "u16"), ("next", "u16"))
VRING_USED_ELEM = _s("vring_used_elem", ("id", "u32"), ("len", "u32"))
# virtio-blk's request header (virtio spec "Device Operation: Block"): the class a device with
# a look-ahead window reads is its ioprio field, in the first buffer of each chain.
VIRTIO_BLK_OUTHDR = _s("virtio_blk_outhdr", ("type", "u32"), ("ioprio", "u32"), ("sector", "u64"))

SHM_SIGNAL_IRQ = _s("shm_signal_irq", ("enabled", "u8"), ("pending", "u8"), ("dirty", "u8"))
SHM_SIGNAL_DESC = _s(
    "shm_signal_desc", ("magic", "u32"), ("ver", "u32"), ("irq", SHM_SIGNAL_IRQ, 2)
)
IOQ_RING_IDX = _s("ioq_ring_idx", ("head", "u32"), ("tail", "u32"), ("full", "u8"))
IOQ_RING_DESC = _s(
    "ioq_ring_desc",
    ("cookie", "u64"),
    ("ptr", "u64"),
    ("len", "u64"),
    ("valid", "u8"),
    ("sown", "u8"),
)
# ioq_ring_head without its flexible ring[] member; the ring starts at the aligned end.
IOQ_RING_HEAD = _s(
    "ioq_ring_head",
    ("magic", "u32"),
    ("ver", "u32"),
    ("signal", SHM_SIGNAL_DESC),
    ("idx", IOQ_RING_IDX, 2),
    ("count", "u32"),
)
VENET_IOV = _s("venet_iov", ("len", "u32"), ("ptr", "u64"))
VENET_SG_CSUM = _s("venet_sg_csum", ("start", "u16"), ("offset", "u16"))
VENET_SG_GSO = _s("venet_sg_gso", ("type", "u8"), ("hdrlen", "u16"), ("size", "u16"))
VENET_SG = _s(
    "venet_sg",
    ("cookie", "u64"),
    ("flags", "u32"),
    ("len", "u32"),
    ("csum", VENET_SG_CSUM),
    ("gso", VENET_SG_GSO),
    ("count", "u32"),
    ("iov", VENET_IOV, 1),
)
# venet's own event queue (VENET_CAP_GROUP_EVENTQ): the TX-complete event the device sends per
# packet when VENET_CAP_EVQ_TXC is negotiated; the guest's pool holds count events of
# sizeof(struct venet_event_txc) bytes (device.c: EVQ_EVSIZE), back to back.
VENET_EVENT_HEADER = _s("venet_event_header", ("flags", "u32"), ("size", "u32"), ("id", "u32"))
VENET_EVENT_TXC = _s(
    "venet_event_txc", ("header", VENET_EVENT_HEADER), ("txqid", "u32"), ("cookie", "u64")
)
VENET_EVENT_ID_TXC = 1  # VENET_EVENT_TXC

# vbus call(): the guest fills its per-CPU fastcall descriptor, which points at a devicecall
# (AlacrityVM include/linux/vbus_pci.h), then writes its CPU number to the fastcall doorbell.
VBUS_PCI_CALL_DESC = _s("vbus_pci_call_desc", ("vector", "u32"), ("len", "u32"), ("datap", "u64"))
VBUS_PCI_FASTCALL_DESC = _s(
    "vbus_pci_fastcall_desc", ("call", VBUS_PCI_CALL_DESC), ("result", "u32")
)
VBUS_PCI_DEVICECALL = _s(
    "vbus_pci_devicecall",
    ("devh", "u64"),
    ("func", "u32"),
    ("len", "u32"),
    ("flags", "u32"),
    ("datap", "u64"),
)
VBUS_PCI_HC_DEVCALL = 5  # the bridge's hypercall vector for a device call (vbench's numbering)

STRUCTS: dict[str, Struct] = {
    s.name: s
    for s in (
        VRING_DESC,
        VRING_USED_ELEM,
        VIRTIO_BLK_OUTHDR,
        SHM_SIGNAL_IRQ,
        SHM_SIGNAL_DESC,
        IOQ_RING_IDX,
        IOQ_RING_DESC,
        IOQ_RING_HEAD,
        VENET_IOV,
        VENET_SG_CSUM,
        VENET_SG_GSO,
        VENET_SG,
        VENET_EVENT_HEADER,
        VENET_EVENT_TXC,
        VBUS_PCI_CALL_DESC,
        VBUS_PCI_FASTCALL_DESC,
        VBUS_PCI_DEVICECALL,
    )
}


def vsg_desc_size(segments: int) -> int:
    """``VSG_DESC_SIZE(count)``: a venet_sg header with room for ``segments`` iovs."""
    return VENET_SG.size + VENET_IOV.size * (segments - 1)


def ioq_ring_offset() -> int:
    """Offset of ``ring[0]`` in ``ioq_ring_head`` (the flexible array, aligned for its u64s)."""
    return _align_up(IOQ_RING_HEAD.size, IOQ_RING_DESC.align)


def ioq_region_size(count: int) -> int:
    """The only region length the host accepts for an IOQ of ``count`` descriptors."""
    return ioq_ring_offset() + IOQ_RING_DESC.size * count


# --- the split ring's areas ------------------------------------------------------------------
def split_desc_bytes(n: int) -> int:
    return VRING_DESC.size * n


def split_avail_bytes(n: int) -> int:
    """flags, idx, ring[n], used_event."""
    return 2 * (3 + n)


def split_used_bytes(n: int) -> int:
    """flags, idx, ring[n] of {id, len}, avail_event."""
    return 2 * 3 + VRING_USED_ELEM.size * n


def vring_size(n: int, align: int) -> int:
    """Bytes of the legacy contiguous ring, as ``vring_size()`` in linux/virtio_ring.h."""
    return _align_up(split_desc_bytes(n) + split_avail_bytes(n), align) + split_used_bytes(n)


def vring_init_offsets(n: int, align: int) -> tuple[int, int, int]:
    """(desc, avail, used) offsets as ``vring_init()`` computes them in linux/virtio_ring.h."""
    desc = 0
    avail = split_desc_bytes(n)
    used = _align_up(avail + 4 + 2 * n + 2, align)
    return desc, avail, used


@dataclass(frozen=True)
class Area:
    """A contiguous piece of shared memory: where it is, who writes it, what it holds."""

    name: str
    offset: int
    size: int
    align: int
    writer: str  # "driver", "device" or "both"
    fields: tuple[Field, ...]  # offsets relative to the area's start
    what: str = ""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"area {self.name} has no field {name!r}")

    def at(self, name: str) -> int:
        """Absolute arena offset of a field."""
        return self.offset + self.field(name).offset


@dataclass(frozen=True)
class ArenaLayout:
    """All shared memory of one model instance, area by area, in one byte arena."""

    model: str
    queue_size: int
    areas: tuple[Area, ...]
    params: dict[str, int]

    @property
    def size(self) -> int:
        return max(a.offset + a.size for a in self.areas) if self.areas else 0

    @property
    def lines(self) -> int:
        return -(-self.size // LINE)

    def line_areas(self) -> np.ndarray:
        """For each line of the arena, the index in :data:`vbench.counters.AREAS` of the area
        whose traffic it counts in (the first area on a line shared by two; 0 for padding)."""
        out = np.zeros(self.lines, dtype=np.int64)
        for a in reversed(self.areas):  # the first area on a shared line wins
            first, end = a.offset // LINE, -(-(a.offset + a.size) // LINE)
            kind = a.name.split(".")[-1]
            if kind != "ioq":
                out[first:end] = AREAS.index(kind)
                continue
            prefix = "evq" if a.name.startswith(("evq", "txc")) else "ioq"
            split = -(-a.at("ring") // LINE)  # a line holding header and descriptors: header
            out[first:end] = AREAS.index(f"{prefix}_desc")
            out[first:split] = AREAS.index(f"{prefix}_header")
        return out

    def area(self, name: str) -> Area:
        for a in self.areas:
            if a.name == name:
                return a
        raise KeyError(f"{self.model} layout has no area {name!r}")

    def structs(self) -> dict[str, Struct]:
        """Every struct named by a field of this layout, nested ones included."""
        out: dict[str, Struct] = {}

        def visit(tname: str) -> None:
            s = STRUCTS.get(tname)
            if s is None or s.name in out:
                return
            out[s.name] = s
            for m in s.members:
                if isinstance(m.type, Struct):
                    visit(m.type.name)

        for a in self.areas:
            for f in a.fields:
                visit(f.type)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``vbench layout --format json`` (keys documented in docs/results-schema.md)."""
        return {
            "model": self.model,
            "queue_size": self.queue_size,
            "line_bytes": LINE,
            "total_bytes": self.size,
            "total_lines": self.lines,
            "params": dict(self.params),
            "areas": [
                {
                    "name": a.name,
                    "offset": a.offset,
                    "size": a.size,
                    "align": a.align,
                    "writer": a.writer,
                    "what": a.what,
                    "fields": [
                        {
                            "name": f.name,
                            "offset": a.offset + f.offset,
                            "size": f.size,
                            "type": f.type,
                            "count": f.count,
                        }
                        for f in a.fields
                    ],
                }
                for a in self.areas
            ],
            "structs": {name: s.as_dict() for name, s in self.structs().items()},
        }


def _area(name: str, offset: int, align: int, writer: str, what: str, *fields: Field) -> Area:
    size = max((f.offset + f.size for f in fields), default=0)
    return Area(name, offset, size, align, writer, tuple(fields), what)


def split_layout(
    n: int,
    align: int = VIRTIO_PCI_VRING_ALIGN,
    indirect_segments: int = 0,
    headers: bool = False,
) -> ArenaLayout:
    """The legacy contiguous split ring (exactly as vring_init places it), then indirect tables.

    Indirect tables live in their own memory (one table slot per possible chain head, each
    aligned to a cache line as a kmalloc'd buffer of that size would be), written by the driver
    and read by the device, so their lines are tracked like the ring's.
    """
    d, a, u = vring_init_offsets(n, align)
    areas = [
        _area(
            "desc",
            d,
            16,
            "driver",
            "descriptor table",
            Field("ring", 0, split_desc_bytes(n), "vring_desc", n),
        ),
        _area(
            "avail",
            a,
            2,
            "driver",
            "available ring",
            Field("flags", 0, 2, "u16"),
            Field("idx", 2, 2, "u16"),
            Field("ring", 4, 2 * n, "u16", n),
            Field("used_event", 4 + 2 * n, 2, "u16"),
        ),
        _area(
            "used",
            u,
            4,
            "device",
            "used ring",
            Field("flags", 0, 2, "u16"),
            Field("idx", 2, 2, "u16"),
            Field("ring", 4, 8 * n, "vring_used_elem", n),
            Field("avail_event", 4 + 8 * n, 2, "u16"),
        ),
    ]
    params = {"align": align, "vring_size": vring_size(n, align)}
    if indirect_segments > 0:
        stride = _align_up(VRING_DESC.size * indirect_segments, LINE)
        off = _align_up(vring_size(n, align), LINE)
        areas.append(
            _area(
                "indirect",
                off,
                LINE,
                "driver",
                f"indirect tables: one slot of {indirect_segments} descriptors per chain head",
                Field("tables", 0, stride * n, "vring_desc", (stride // VRING_DESC.size) * n),
            )
        )
        params["indirect_stride"] = stride
        params["indirect_segments"] = indirect_segments
    if headers:
        off = _align_up(max(a.offset + a.size for a in areas), LINE)
        areas.append(
            _area(
                "headers",
                off,
                LINE,
                "driver",
                "request headers (virtio_blk_outhdr) per chain head: the class a look-ahead reads",
                Field("hdr", 0, VIRTIO_BLK_OUTHDR.size * n, "virtio_blk_outhdr", n),
            )
        )
    return ArenaLayout("virtio-split", n, tuple(areas), params)


def ioq_layout(
    count: int,
    sg_segments: int = 0,
    call: bool = False,
    eventq_size: int = 0,
    txc: bool = False,
) -> ArenaLayout:
    """One vbus IOQ region (ioq_ring_head + ring[count]) and, for SG mode, the venet_sg pool;
    with ``txc`` venet's own event queue for TX-complete events (``txc.*``, ``count`` slots, as
    vbus-enet.c sizes it: ``vbus_enet_evq_negcap(priv, tx_ringlen)``); with ``eventq_size``
    the PCI bridge's event queue (``evq0.*``) through which every device signal reaches the guest.

    The pool is the region venet registers once with shm() ("pre-mapped tx descriptors"):
    ``count`` entries of ``VSG_DESC_SIZE(sg_segments)`` bytes packed back to back, so entries
    straddle lines exactly as they would in the guest.
    """
    ring_off = ioq_ring_offset()
    head_fields = tuple(
        Field(f.name, f.offset, f.size, f.type, f.count) for f in IOQ_RING_HEAD.fields
    )
    areas = [
        _area(
            "ioq",
            0,
            8,
            "both",
            "ioq_ring_head with its embedded shm_signal_desc, then ring[count]",
            *head_fields,
            Field("ring", ring_off, IOQ_RING_DESC.size * count, "ioq_ring_desc", count),
        )
    ]
    params = {"region_size": ioq_region_size(count)}
    if sg_segments > 0:
        entry = vsg_desc_size(sg_segments)
        off = _align_up(ioq_region_size(count), LINE)
        areas.append(
            _area(
                "sg_pool",
                off,
                8,
                "driver",
                f"pre-registered venet_sg pool: {count} entries of {entry} bytes",
                Field("entries", 0, entry * count, "venet_sg", count),
            )
        )
        params["sg_entry_size"] = entry
        params["sg_segments"] = sg_segments
    if call:
        off = _align_up(max(a.offset + a.size for a in areas), LINE)
        areas.append(
            _area(
                "call",
                off,
                LINE,
                "both",
                "per-CPU call() descriptors: the fastcall (own line) and the devicecall it names",
                Field("fastcall", 0, VBUS_PCI_FASTCALL_DESC.size, "vbus_pci_fastcall_desc"),
                Field("devicecall", LINE, VBUS_PCI_DEVICECALL.size, "vbus_pci_devicecall"),
            )
        )
    if txc:
        areas.extend(
            eventq_areas("txc", _end(areas), count, "venet event queue (TX-complete)", txc=True)
        )
        params["txc_event_size"] = VENET_EVENT_TXC.size
    if eventq_size > 0:
        areas.extend(eventq_areas("evq0", _end(areas), eventq_size, "PCI bridge event queue"))
        params["eventq_size"] = eventq_size
        params["event_size"] = VBUS_EVENT.size
    return ArenaLayout("vbus-ioq", count, tuple(areas), params)


def _end(areas: list[Area]) -> int:
    return max(a.offset + a.size for a in areas)


# --- vbus-prio: event queues (appended for vbench.models.vbus_prio) -----------------------------
# One host->guest event: models.md gives 144 bytes per event. vbench fills only the header (flags,
# size, and the cookie naming the device signal that fired); the bytes after the cookie are
# padding here. Not listed in STRUCTS, which mirrors the C declarations checked with gcc.
VBUS_EVENT_BYTES = 144
VBUS_EVENT = _s(
    "vbus_event",
    ("flags", "u32"),
    ("size", "u32"),
    ("cookie", "u64"),
    ("pad", "u8", VBUS_EVENT_BYTES - 16),
)
assert VBUS_EVENT.size == VBUS_EVENT_BYTES
VBUS_EVENTQ_MAX = 8  # the host connector routes a signal to event queue min(prio, count - 1)


def _shift_area(a: Area, name: str, offset: int) -> Area:
    """``a`` renamed and moved to ``offset`` (its fields stay relative to its start)."""
    return Area(name, offset, a.size, a.align, a.writer, a.fields, a.what)


def eventq_areas(name: str, end: int, count: int, what: str, txc: bool = False) -> list[Area]:
    """An event queue placed at the first line at or after ``end``: its IOQ (``<name>.ioq``, a
    ring of ``count`` descriptors) and, on the next line, the payload area the guest registers
    (``<name>.events``): the PCI bridge's 144-byte events, or with ``txc`` venet's TX-complete
    events of ``sizeof(struct venet_event_txc)`` bytes."""
    base = _align_up(end, LINE)
    (ring,) = ioq_layout(count).areas
    event, kind = (VENET_EVENT_TXC, "venet_event_txc") if txc else (VBUS_EVENT, "vbus_event")
    off = _align_up(base + ring.size, LINE)
    return [
        Area(
            f"{name}.ioq",
            base,
            ring.size,
            ring.align,
            "both",
            ring.fields,
            f"{what}: ioq_ring_head with its shm_signal, then ring[{count}]",
        ),
        _area(
            f"{name}.events",
            off,
            LINE,
            "device",
            f"{what} payloads: {count} events of {event.size} bytes",
            Field("events", 0, event.size * count, kind, count),
        ),
    ]


def vbus_prio_layout(
    count: int, classes: int, sg_segments: int, eventqs: int, eventq_size: int
) -> ArenaLayout:
    """vbus with one IOQ per priority class plus ``eventqs`` host->guest event queues.

    Each request IOQ (and its venet_sg pool) is :func:`ioq_layout` shifted to the next
    line-aligned offset, so no two queues share a line; each event queue is an IOQ of
    ``eventq_size`` descriptors followed by its payload area of 144-byte events, which the guest
    allocates and posts to the host once at registration.
    """
    areas: list[Area] = []
    end = 0
    for k in range(classes):
        base = _align_up(end, LINE)
        for a in ioq_layout(count, sg_segments).areas:
            areas.append(_shift_area(a, f"q{k}.{a.name}", base + a.offset))
        end = max(a.offset + a.size for a in areas)
    for e in range(eventqs):
        pair = eventq_areas(f"evq{e}", end, eventq_size, f"event queue {e}")
        areas.extend(pair)
        end = pair[1].offset + pair[1].size
    params = {
        "region_size": ioq_region_size(count),
        "classes": classes,
        "eventqs": eventqs,
        "eventq_size": eventq_size,
        "eventq_region_size": ioq_region_size(eventq_size),
        "event_size": VBUS_EVENT.size,
    }
    if sg_segments > 0:
        params["sg_entry_size"] = vsg_desc_size(sg_segments)
        params["sg_segments"] = sg_segments
    return ArenaLayout("vbus-prio", count, tuple(areas), params)


# --- the packed ring (virtio 1.1+ "Packed Virtqueues"; linux/virtio_ring.h) ------------------
# Appended rather than interleaved so the split ring's definitions above stay untouched.
# Beware: linux/virtio_ring.h defines VRING_PACKED_DESC_F_AVAIL/USED as bit *numbers* (7, 15);
# here they are the masks a flags word is tested against (1 << 7, 1 << 15).
VRING_PACKED_DESC_F_AVAIL = 1 << 7
VRING_PACKED_DESC_F_USED = 1 << 15
VRING_PACKED_EVENT_FLAG_ENABLE = 0
VRING_PACKED_EVENT_FLAG_DISABLE = 1
VRING_PACKED_EVENT_FLAG_DESC = 2  # only with EVENT_IDX: notify at the descriptor in off_wrap
VRING_PACKED_EVENT_F_WRAP_CTR = 15  # bit of off_wrap that holds the wrap counter
PACKED_MAX_QUEUE = 32768  # off_wrap keeps 15 bits of offset

# id and flags sit in the opposite order to the split descriptor's flags and next
VRING_PACKED_DESC = _s(
    "vring_packed_desc", ("addr", "u64"), ("len", "u32"), ("id", "u16"), ("flags", "u16")
)
VRING_PACKED_DESC_EVENT = _s("vring_packed_desc_event", ("off_wrap", "u16"), ("flags", "u16"))
STRUCTS.update({s.name: s for s in (VRING_PACKED_DESC, VRING_PACKED_DESC_EVENT)})


def packed_layout(n: int, indirect_segments: int = 0) -> ArenaLayout:
    """The packed ring: the descriptor ring and the two event suppression areas, then tables.

    Linux allocates the ring and each suppression area separately (``vring_alloc_queue_packed``),
    so each starts on its own line here: the driver's area (which it writes to control
    interrupts) never shares a line with the device's (which controls kicks) or with the ring.
    Indirect tables are indexed by buffer id, not by slot, because in the packed ring a buffer's
    slot moves every lap while its id is what the driver tracks; one line-aligned table per id.
    """
    ring = VRING_PACKED_DESC.size * n
    drv_off = _align_up(ring, LINE)
    dev_off = drv_off + LINE
    ev = VRING_PACKED_DESC_EVENT
    ev_fields = tuple(Field(f.name, f.offset, f.size, f.type) for f in ev.fields)
    areas = [
        _area(
            "desc",
            0,
            16,  # the spec's alignment for the ring and for each suppression area: 16, 4, 4
            "both",
            "descriptor ring: the driver makes descriptors available, the device marks them used",
            Field("ring", 0, ring, "vring_packed_desc", n),
        ),
        _area(
            "driver_event",
            drv_off,
            4,
            "driver",
            "driver event suppression: off_wrap and flags, controls interrupts",
            *ev_fields,
        ),
        _area(
            "device_event",
            dev_off,
            4,
            "device",
            "device event suppression: off_wrap and flags, controls kicks",
            *ev_fields,
        ),
    ]
    params = {"ring_bytes": ring, "event_bytes": ev.size}
    if indirect_segments > 0:
        stride = _align_up(VRING_PACKED_DESC.size * indirect_segments, LINE)
        off = _align_up(dev_off + ev.size, LINE)
        areas.append(
            _area(
                "indirect",
                off,
                LINE,
                "driver",
                f"indirect tables: one slot of {indirect_segments} descriptors per buffer id",
                Field(
                    "tables",
                    0,
                    stride * n,
                    "vring_packed_desc",
                    (stride // VRING_PACKED_DESC.size) * n,
                ),
            )
        )
        params["indirect_stride"] = stride
        params["indirect_segments"] = indirect_segments
    return ArenaLayout("virtio-packed", n, tuple(areas), params)
