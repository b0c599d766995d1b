"""The report's hand-written text: mechanisms, fairness rules, what is not modelled.

Nothing here states a result: every number of the report comes from
:mod:`vbench.report.conclusions`. What is here explains why the numbers come out as they do,
from the code of both designs, so a reader can judge the experiments.
"""

from __future__ import annotations

TITLE = "vbench report: how is shm() different from add_buf, and what does one do with priority?"

INTRO = (
    "In August 2009 Anthony Liguori asked Gregory Haskins on LKML, of vbus's shared-memory "
    'interface: "how is this different than the virtio->add_buf concept?" and "what does one '
    'do with priority, btw?". This report answers both from simulations of faithful '
    "implementations of both rings over one shared workload. Every sentence that states a "
    "result below was generated from the result tables, carries its number, links the figure "
    "it rests on, and says whether it survives every cost figure's stated range (E5)."
)

FAIRNESS = [
    "Each side at its best configuration: virtio with the event index, indirect descriptors, "
    "avail.idx published at every add and vhost-net's used batching (64 completions per "
    "used-index write and interrupt decision); vbus with txmitigation 10 (E2 sweeps 1, 10 and "
    "64), the venet_sg pool registered once, and the full barrier (mb) in shm-signal's "
    "store-then-check, since the shipped wmb loses wakeups.",
    "The same workload for every model of a sweep point (the rows share a workload "
    "fingerprint), the same device and guest work per request, the same cost preset.",
    "Lost wakeups are reported apart from speed: every speed above is vbus with mb, and E8 "
    "counts, with the shipped wmb and with mb, how many runs end in a lost wakeup (natively, "
    "where x86 may reorder shm-signal's store and its check, and in the simulation, which "
    "checks for one at the end of every run: such a run fails rather than reporting a speed).",
    "Times are modelled from exact counts (cache-line transfers, barriers, exits, interrupts, "
    "wake-ups, the work) through a cost preset whose every figure states its source and range "
    "(see Provenance); E6 holds the simulation against the native engine on this machine.",
]

Q1_CATEGORY = [
    "shm() and add_buf are not the same kind of call. vbus's shm() registers a region of "
    "shared memory once, with an id, a priority and an optional shm-signal: it sits where "
    "creating a virtqueue sits, not where add_buf does. add_buf is per request: it writes "
    "descriptors for a scatter/gather list into an already shared ring and publishes them.",
    "vbus's per-request counterpart of add_buf is a push onto an IOQ (a ring living in a region "
    "registered by shm()) plus, for a multi-segment packet, a venet_sg entry in a pool that "
    "was itself registered once. The layouts below show both rings' shared memory side by side "
    "(vbench layout): virtio's descriptor table, available and used rings against the IOQ's "
    "header (both sides' mailboxes and indexes), its descriptors and the sg pool.",
]

E1_PROSE = (
    "Where each design's cache lines go per request: the IOQ keeps both sides' mailboxes and "
    "indexes on one header line that both sides write every round, and its 32-byte descriptors "
    "and 48-byte pool entries straddle lines; virtio separates what the driver writes (avail) "
    "from what the device writes (used)."
)

E2_PROSE = (
    "virtio suppresses kicks and interrupts with the event index (the other side says at which "
    "index it wants to hear) or with flags; vbus's shm-signal has a per-direction enable flag "
    "and a pending bit that merges signals, and its device signals every txmitigation "
    "completions and when it runs empty. A polling device takes no kicks at all."
)

E3_PROSE = (
    "A virtio request of k segments takes k descriptors as a chain or one descriptor pointing "
    "at an indirect table; vbus's IOQ entry points at one venet_sg list in the pre-registered "
    "pool, or the segments are gathered by a copy into one flat buffer. So a chain takes k of "
    "the ring's entries and every other form one (the ring entries per request, counted where "
    "each model's add takes them): a chain fills the ring k times faster, which the ring-full "
    "stalls show."
)

E4_PROSE = (
    "Under an open loop the achieved rate equals the offer until a design's knee; past it the "
    "queue grows and latency explodes. The maximum sustainable rate is the highest offered rate "
    "still carried (97 % or more) with p99 under the stated bound."
)

E5_PROSE = (
    "E5 is vbench sensitivity: the points each of E1, E3, P1 and P2 reads its "
    "conclusions at, and the whole sweeps of E2, E4 and E7 (their conclusions read a count of "
    "points, a knee, a history), run at the preset's figures, then with each cost figure at the "
    "low and the high end of its stated range (every case simulated afresh). A comparison's "
    "robustness is read from these cases when their base case reproduces its numbers exactly; "
    "E4's is the order of the two maximum sustainable rates recomputed in every case, E2's "
    "whether its counts or its number of winning points move, E7's whether the 2009 and final "
    "orders and the step that moved virtio most stay. E6 is a measurement (its robustness is "
    "its spread over repetitions) and E8 a count of runs, which no cost figure enters. The "
    "tornados show how far each figure moves E1's vbus-ioq / virtio-split ratios."
)

E6_PROSE = (
    "The native engine runs the same ring code on two pinned threads of this machine, so the "
    "counts share the protocol with the simulation but the time is measured. Absolute "
    "throughputs differ (the simulation prices no per-request CPU work here); the question is "
    "whether the engines order the designs alike."
)

E8_PROSE = (
    "vbus as shipped orders shm-signal's store-then-check with wmb only: inject writes dirty "
    "then tests enabled and pending; enable (or the end of a wakeup) writes enabled (or "
    "pending) then tests dirty. x86 may let each side's load pass its own earlier store, so "
    "both can miss the other: the guest goes to sleep with requests outstanding and no signal "
    "comes. Every other experiment runs vbus with the full barrier (mb); E8 runs it sleeping "
    "(batch 32, the whole queue in flight, the configuration that stalled in docs/findings.md) "
    "with both barriers, each run its own point, natively on two threads of this machine "
    "(a run is a lost wakeup when its deadline passes with both sides asleep and requests "
    "outstanding) and in the simulation, whose steps are atomic (a lost wakeup there would be "
    "the engine's own lost-wakeup failure)."
)

E7_PROSE = (
    "The 2009 argument was held against virtio as QEMU ran it then: the device in host user "
    "space (each exit served by QEMU), avail.idx published only at kick time, a 150 µs TX "
    "mitigation timer, NO_NOTIFY/NO_INTERRUPT flags instead of the event index, and one "
    "used-ring write per completion. vbus ran in the host kernel from the start. The steps "
    "below add, cumulatively, what came later, on the 2009 host's costs."
)

E7_STEPS = [
    "2009 (QEMU, kick publish, TX timer, flags)",
    "without the TX timer",
    "with vhost (backend in the host kernel)",
    "with publish at add",
    "with the event index",
    "with vhost-net's used batching",
]

Q2_MECHANISM = [
    "vbus's prio is an argument of shm(): it only decides which event queue carries a "
    "host-to-guest signal, so the guest can take urgent signals first. The device never sees "
    "it, kicks (guest to host) ignore it, and which queue the device serves next is the "
    "device's own choice. As shipped, venet registered one TX queue with prio 0: priority had "
    "no effect.",
    "P1 sweeps the urgent share and the offered load for every design: virtio FIFO, virtio "
    "look-ahead (the device reads ahead W entries and serves the highest class first), one "
    "virtqueue per class, vbus's single IOQ, per-class IOQs behind one event queue, and one "
    "event queue per class (the design as proposed), each multi-queue variant with strict and "
    "round-robin device scheduling.",
]

P2_PROSE = [
    "Three situations where priority could matter. A device saturated by bulk traffic: the "
    "device's own queue grows, and a notification's priority cannot shorten it; only the order "
    "in which the device serves does. A ring full of bulk requests: an urgent request cannot "
    "even be added, whatever its priority, until a slot frees; only a separate ring lets it "
    "in. A guest busy with completions: then the order in which the guest takes its signals "
    "could matter, which is what vbus's per-class event queues change.",
    "Where each class has its own ring (a virtqueue or an IOQ per class), the guest submits "
    "per class: a full bulk ring stops only bulk submissions, as a multi-queue guest stops "
    "only the full queue. Past the device's capacity the bulk backlog grows for as long as "
    "the run lasts, so a saturated device's ratios between an urgent class served first and "
    "one stuck behind that backlog have no fixed size: they grow with the run.",
    "The busy guest is one vCPU whose time carries its submissions, its interrupt entries and "
    "its work on each completion as it takes it (engine.completion_ns, 1.5 us here: a "
    "packet's receive path, an estimate), raised until that vCPU, not the device, is the "
    "bottleneck. A completion then finishes when the guest gets to it, so the order in which "
    "the guest takes completions (one FIFO ring, one IOQ, a queue per class reaped highest "
    "first, vbus's event queues) decides who waits. What is not modelled: other guest work "
    "competing for that vCPU (only the ring's own work is on it), and interrupt moderation "
    "beyond the rings' own suppression.",
]
