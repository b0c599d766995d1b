"""The native engine: a model's own jitted operations on two OS threads over real shared memory.

Where :mod:`vbench.engine` *simulates* a driver and a device with two clocks and a cost preset,
the native engine *runs* them: a driver thread and a device thread (nogil jitted loops, pinned
to distinct CPUs where the machine has them) execute the very same ring operations of
:mod:`vbench.models.interface` on one shared arena, notify each other through eventfds or by
polling, and measure throughput and latency with a real clock, in the manner of Linux
``tools/virtio/ringtest``.

- :mod:`vbench.native.atomics`: the memory-ordering primitives (acquire / release / fences);
- :mod:`vbench.native.sysio`: eventfds, poll, pinning and the clock;
- :mod:`vbench.native.runner`: ``run_point``, the two-thread run and its result rows.

Nothing here is imported on the path of ``vbench --help``: importing numba is slow.
"""
