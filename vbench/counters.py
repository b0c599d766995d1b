"""Names and slots of everything a run counts, defined once.

The jitted code indexes a flat int64 array with the module-level constants below (numba folds
them into compile-time constants); the result tables take their column names from
:data:`COUNTERS` and :data:`CAUSES`, so a counter cannot be renamed in one place only.
"""

from __future__ import annotations

COUNTERS: tuple[str, ...] = (
    "requests",  # completed requests
    "kicks",  # driver->device notifications sent (each one VM exit)
    "kicks_suppressed",  # kick decisions that sent nothing
    "interrupts",  # device->driver notifications sent
    "interrupts_suppressed",  # interrupt decisions that sent nothing
    "interrupts_delivered",  # interrupt handler runs (sends merged while one was pending count once)
    "spurious_device_wakeups",  # device woken (kick or replay) that found no work
    "spurious_driver_wakeups",  # driver interrupt handler runs that reaped nothing
    "device_wakeups",  # times the device left sleep or replayed
    "vm_exits",  # kicks plus the exits each delivered interrupt costs under the preset
    "desc_written",  # ring or indirect/sg descriptors written (by either side)
    "desc_read",  # ring or indirect/sg descriptors read (by either side)
    "lines_driver",  # misses: lines whose data the driver took from the device's cache (read, or
    # write with ownership: the device held it modified)
    "lines_device",  # misses: lines whose data the device took from the driver's cache
    "lines_touched",  # distinct shared lines ever touched
    "mb_driver",  # full barriers on the driver side
    "mb_device",  # full barriers on the device side
    "wmb",  # write barriers (compiler barriers on x86)
    "rmb",  # read barriers (compiler barriers on x86)
    "bytes",  # payload bytes moved by the device
    "bytes_copied",  # payload bytes copied to gather or bounce data
    "ring_full_stalls",  # times the driver found the ring full
    "ring_slots",  # ring entries the driver's adds took: a chain of k descriptors takes k, an
    # indirect table or an IOQ entry (its venet_sg list lives in the registered pool) takes 1,
    # vbus's synchronous call() none
    "signal_injects",  # vbus shm_signal_inject calls (notification decisions)
    "segments",  # scatter/gather elements the device walked
    "lines_invalidated_driver",  # driver writes to a line the device held a copy of while the
    # driver held it too (an upgrade: the device's copy invalidated, no data moved)
    "lines_invalidated_device",  # device writes to a line the driver held a copy of, likewise
    # ring operations run, one counter per operation of vbench.models.interface (OPS below, in
    # its order): what the per-operation CPU cost of a preset's op_costs is charged for
    "ops_add",
    "ops_kick_needed",
    "ops_reap",
    "ops_disable_interrupts",
    "ops_enable_interrupts",
    "ops_pop",
    "ops_push_used",
    "ops_interrupt_needed",
    "ops_disable_kicks",
    "ops_enable_kicks",
)

(
    C_REQUESTS,
    C_KICKS,
    C_KICKS_SUPPRESSED,
    C_IRQS,
    C_IRQS_SUPPRESSED,
    C_IRQS_DELIVERED,
    C_SPURIOUS_DEV,
    C_SPURIOUS_DRV,
    C_DEV_WAKEUPS,
    C_VM_EXITS,
    C_DESC_WRITTEN,
    C_DESC_READ,
    C_LINES_DRV,
    C_LINES_DEV,
    C_LINES_TOUCHED,
    C_MB_DRV,
    C_MB_DEV,
    C_WMB,
    C_RMB,
    C_BYTES,
    C_BYTES_COPIED,
    C_RING_FULL,
    C_RING_SLOTS,
    C_INJECTS,
    C_SEGMENTS,
    C_INVALIDATED_DRV,
    C_INVALIDATED_DEV,
    C_OPS,  # the first of the ten operation counters: operation k counts at C_OPS + k
) = range(len(COUNTERS) - 9)
N_COUNTERS = len(COUNTERS)

#: The ten ring operations, in the order of their counters and of a model's op_costs vector
#: (:data:`vbench.models.interface.OPS` binds a model's functions under these names and checks
#: it has the same order): the driver's five, then the device's five.
OPS: tuple[str, ...] = tuple(name.removeprefix("ops_") for name in COUNTERS[C_OPS:])
(
    OP_ADD,
    OP_KICK_NEEDED,
    OP_REAP,
    OP_DISABLE_INTERRUPTS,
    OP_ENABLE_INTERRUPTS,
    OP_POP,
    OP_PUSH_USED,
    OP_INTERRUPT_NEEDED,
    OP_DISABLE_KICKS,
    OP_ENABLE_KICKS,
) = range(len(OPS))
N_OPS = len(OPS)
#: operations below this index are the driver's, the rest the device's
OP_FIRST_DEVICE = OP_POP

#: The memory areas whose coherence traffic a simulation reports per request: a layout area's
#: name without its queue prefix (``q1.avail`` is ``avail``), an IOQ region split at its
#: descriptor array into its header (the shm-signal mailboxes and the two indexes) and its
#: descriptors, an event queue's IOQ likewise (see :meth:`vbench.layout.ArenaLayout.line_areas`).
AREAS: tuple[str, ...] = (
    "desc",  # virtio descriptor table (split) or descriptor ring (packed)
    "avail",  # split: the available ring and used_event
    "used",  # split: the used ring and avail_event
    "indirect",  # indirect descriptor tables
    "headers",  # split with a look-ahead device: the request headers it reads ahead
    "driver_event",  # packed: the driver's event suppression structure
    "device_event",  # packed: the device's
    "ioq_header",  # vbus IOQ: ring head, shm-signal mailboxes, valid/inuse indexes
    "ioq_desc",  # vbus IOQ: the descriptor array
    "sg_pool",  # vbus: the pre-registered venet_sg pool
    "call",  # vbus-ioq, transport = "call": the parameters a synchronous call copies
    "evq_header",  # vbus-prio event queue: its IOQ's header
    "evq_desc",  # its descriptors
    "events",  # the event payloads
)
N_AREAS = len(AREAS)
#: Per area, four counts kept after the counters: misses by the driver and by the device, then
#: invalidations by each (``AREA_BASE + 4 * area + AREA_<KIND>``).
AREA_MISS_DRV, AREA_MISS_DEV, AREA_INVALIDATED_DRV, AREA_INVALIDATED_DEV = range(4)
AREA_BASE = N_COUNTERS
#: Where the line states start in a tracker array: after the counters and the area counts.
LINE_BASE = AREA_BASE + 4 * N_AREAS

# Where modeled time went, summed over both sides (nanoseconds).
CAUSES: tuple[str, ...] = (
    "exits",  # VM exits: kicks and interrupt-related exits
    "interrupts",  # guest handler entry and the host's cost to raise them
    "wakeups",  # backend wake latency after a kick to a sleeping device
    "lines",  # coherence: shared cache-line misses and invalidations
    "barriers",  # full memory barriers
    "service",  # the device's work on the payload
    "driver",  # the guest's own per-request work
    "copies",  # data copies (gather / bounce)
    "ops",  # the CPU work of the ring operations themselves (a preset's op_costs)
)
T_EXITS, T_IRQ, T_WAKE, T_LINES, T_BARRIERS, T_SERVICE, T_DRIVER, T_COPY, T_OPS = range(len(CAUSES))
N_CAUSES = len(CAUSES)

# Slots of the small int64 "io" array through which the engine and a model's operations talk.
IO_REQ = 0  # request id (add: in; pop/reap: out)
IO_SIZE = 1  # bytes of the request
IO_SEGS = 2  # scatter/gather segments
IO_DIR = 3  # 0 device reads the buffer, 1 device writes it
IO_PRIO = 4  # priority class
IO_LAST = 5  # 1 when this is the end of a batch (kick_needed) or the device ran empty
IO_HANDLE = 6  # model's handle for push_used (virtio head, IOQ slot)
IO_LEN = 7  # bytes the device wrote (used length)
IO_NOW = 8  # the calling side's clock, ns (for timer-based policies)
IO_WAKE_AT = 9  # disable_kicks returning 1: the device defers work and sleeps until this time
IO_SYNC = 10  # set by add: the request is a synchronous call, done inside one exit (no ring);
# on pop, set by the engine when the device runs inside that call's exit
# disable_interrupts: 1 when an interrupt has just fired (Linux's event_triggered, set by
# vring_interrupt under EVENT_IDX and cleared by enable_cb_prepare)
IO_TRIGGERED = 12
IO_SIGNALED = 11  # pop's own interrupt decision, made before the request is served: -1 none
# (the engine sets it before pop); else the MSIs raised by signals of queues the look found run dry
# (a queue's service pass ends with its signal: venet's venetdev_rx, ``if (dirty) ioq_signal``)
N_IO = 16

SIDE_DRIVER = 0
SIDE_DEVICE = 1
