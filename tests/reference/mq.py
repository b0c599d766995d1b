"""A pure-Python reference of virtio-mq: one :class:`~reference.split.SplitRef` per class.

virtio offers priorities without changing the ring format by giving each class its own
virtqueue (virtio-blk ``num_queues``, virtio-fs ``hiprio``, multiqueue with one vector per
queue). Every queue is a complete split ring with its own event suppression and its own
interrupt, so this reference holds nothing but the queues and the few rules that compose them,
written from that design (not from the jitted model):

* a request goes to the queue of its class, ``min(class, queues - 1)``;
* every queue takes its own kick decision (its own doorbell). The driver is asked once per add
  (``kick_needed``), so a batch that moves from queue p to queue q closes p's batch at that add,
  and the end of a batch decides the queue in use then. Two decisions falling on one answer
  answer 1 if either kicks; the notification that answer does not carry is counted by the
  model itself (a second kick and its exit, or a second suppression), which
  :attr:`MqRef.counted` mirrors;
* the device serves the highest non-empty queue first and completes on the queue a request
  came from (the handle it answers is ``queue << 16 | head``); each queue batches its used
  entries, and a queue the device looks at and finds dry, on its way to another queue's
  request, publishes them and decides its interrupt then (vhost-net's handle_tx flushing as
  its queue runs empty);
* every queue decides its own interrupt; the answer is the number of queues that interrupt
  (one vector each), and suppressed decisions beyond the one the answer carries are counted;
* the driver reaps the highest class first; enabling or disabling notifications applies to
  every queue, and a re-check reports "nothing pending" only if every queue does (every queue is
  re-armed, none skipped).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from .common import Popped
from .split import SplitRef


class MqRef:
    """Reference virtio-mq: ``queues`` split rings of ``n`` entries and the rules above."""

    def __init__(self, queues: int, n: int, strict: bool = True, **split_options: Any) -> None:
        self.n = n
        self.strict = strict  # the device's schedule: highest queue with work, or in turn
        self.last = queues - 1  # the queue served last (round-robin starts at queue 0)
        self.pop_signals = -1  # pop's own interrupt decision (IO_SIGNALED)
        self.queues = [SplitRef(n, **split_options) for _ in range(queues)]
        self.open: int | None = None  # the queue added to since its last kick decision
        self.closing: int | None = None  # the queue whose batch the last add closed
        # notifications the model counts itself: "kicks", "vm_exits", "kicks_suppressed",
        # "interrupts_suppressed"
        self.counted: Counter[str] = Counter()

    def queue_of(self, prio: int) -> int:
        return min(max(prio, 0), len(self.queues) - 1)

    # --- driver ----------------------------------------------------------------------------
    def add(self, req: int, size: int, segs: int, write: bool, prio: int = 0) -> int:
        q = self.queue_of(prio)
        if not self.queues[q].add(req, size, segs, write, prio):
            return 0
        if self.open is not None and self.open != q:
            self.closing = self.open  # switching queue ends the other queue's batch
        self.open = q
        return 1

    def kick_needed(self, last: bool) -> int:
        decisions = []
        if self.closing is not None:
            decisions.append(self.queues[self.closing].kick_needed(True))
            self.closing = None
        if last and self.open is not None:
            decisions.append(self.queues[self.open].kick_needed(True))
            self.open = None
        if not decisions:
            return -1
        answer = max(decisions)  # 1 if either queue kicks
        extra_kicks = decisions.count(1) - (answer == 1)
        self.counted["kicks"] += extra_kicks
        self.counted["vm_exits"] += extra_kicks
        self.counted["kicks_suppressed"] += decisions.count(0) - (answer == 0)
        return answer

    def reap(self) -> tuple[int, int] | None:
        for ring in reversed(self.queues):  # the most urgent class's vector first
            got = ring.reap()
            if got is not None:
                return got
        return None

    def disable_interrupts(self, triggered: bool = False) -> int:
        for ring in self.queues:
            ring.disable_interrupts(triggered)
        return 0

    def enable_interrupts(self) -> int:
        quiet = [ring.enable_interrupts() for ring in self.queues]  # every queue re-armed
        return 1 if all(x == 1 for x in quiet) else 0

    # --- device ----------------------------------------------------------------------------
    def device_drained(self) -> bool:
        return all(ring.device_drained() for ring in self.queues)

    def pop(self) -> Popped | None:
        """The first queue with work in the schedule's order. The queues looked at before it
        and found dry end their service pass: each publishes what it holds and decides its
        interrupt (:attr:`pop_signals`, as :meth:`interrupt_needed` answers). With every queue
        dry nothing is decided here: the ring-empty decision does it."""
        nq = len(self.queues)
        if self.strict:
            order = list(reversed(range(nq)))
        else:
            order = [(self.last + i) % nq for i in range(1, nq + 1)]
        self.pop_signals = -1
        for k, q in enumerate(order):
            got = self.queues[q].pop()
            if got is not None:
                self.last = q
                self.pop_signals = self._decide([self.queues[d] for d in order[:k]], True)
                return replace(got, handle=q << 16 | got.handle)
        return None

    def push_used(self, handle: int, length: int) -> int:
        q, head = handle >> 16, handle & 0xFFFF
        return self.queues[q].push_used(head, length)

    def interrupt_needed(self, last: bool) -> int:
        return self._decide(self.queues, last)

    def _decide(self, rings: list[SplitRef], last: bool) -> int:
        """Each of ``rings`` decides; the answer is the number of interrupts (one vector per
        queue), 0 if all were suppressed, -1 if none decided."""
        decisions = [ring.interrupt_needed(last) for ring in rings]
        sent = sum(d for d in decisions if d >= 1)
        suppressed = decisions.count(0)
        if sent:
            self.counted["interrupts_suppressed"] += suppressed
            return sent
        if suppressed:
            self.counted["interrupts_suppressed"] += suppressed - 1  # the answer carries one
            return 0
        return -1

    def disable_kicks(self) -> int:
        for ring in self.queues:
            ring.disable_kicks()
        return 0

    def enable_kicks(self) -> int:
        empty = [ring.enable_kicks() for ring in self.queues]  # every queue re-armed
        return 1 if all(x == 1 for x in empty) else 0
