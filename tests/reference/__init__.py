"""Pure-Python references of the ring models, and the harness that runs a model against one.

Each reference is written from the protocol rules alone: it holds shared memory as plain dicts
and lists (no byte arena, nothing from the jitted models), each side's private state as
attributes, and exposes the same ten operations with the same return conventions as
:mod:`vbench.models.interface`, so a test can run one operation sequence through both and
compare every answer and the shared state the peers can see. ``pop`` returns ``None`` or a
:class:`~reference.common.Popped`; ``reap`` returns ``None`` or ``(request, used_len)``; the
other operations return the interface's int.

- :mod:`reference.common`: what every reference shares (the u16 event window, segment lengths,
  :class:`~reference.common.Popped`);
- :mod:`reference.split`: virtio-split; :mod:`reference.packed`: virtio-packed;
  :mod:`reference.mq`: virtio-mq (one split reference per queue);
- :mod:`reference.vbus`: vbus-ioq (the IOQ ring and the ``call()`` transport) and vbus-prio;
- :mod:`reference.lockstep`: the lock-step harness (a model instance and its reference driven
  together, every answer and the shared state compared) and the arena readers it uses.

The tests import this package as ``reference`` (pytest puts ``tests/`` on ``sys.path``).
"""
