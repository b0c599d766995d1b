"""How a virtio device batches its used-ring writes and its interrupt decisions, for the split
and packed rings alike (one definition of the options, their defaults and their checks).

The defaults are vhost-net's, the device a virtio user runs at its best: ``handle_tx_copy``
(``drivers/vhost/net.c``) keeps the heads it has finished in ``vq->heads`` and hands them to
``vhost_add_used_and_signal_n`` (one used-index write, then one ``vhost_signal`` decision)
through ``vhost_tx_batch`` / ``vhost_net_signal_used`` once ``VHOST_NET_BATCH`` (64) are done,
before busy-polling an empty ring (``vhost_net_tx_get_vq_desc``), and when the ring runs empty.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from vbench.models.interface import ModelOptions

#: ``VHOST_NET_BATCH`` in ``drivers/vhost/net.c``: used heads per ``vhost_net_signal_used``.
VHOST_NET_BATCH = 64


class UsedBatching(ModelOptions):
    """``used_batch`` and ``signal_batch``, resolved at validation: after it both are ints."""

    used_batch: int | None = Field(
        None,
        ge=1,
        description="completions per used-ring write (default vhost-net's VHOST_NET_BATCH, 64, "
        "at most queue_size); 1: every completion, as QEMU's virtqueue_push",
    )
    signal_batch: int | None = Field(
        None,
        ge=1,
        description="published completions per interrupt decision (default used_batch, as "
        "vhost-net; more: vhost-scsi's one vhost_signal after a batch)",
    )

    @model_validator(mode="after")
    def _resolve_batches(self) -> UsedBatching:
        if self.used_batch is None:
            self.used_batch = min(VHOST_NET_BATCH, self.queue_size)
        if self.signal_batch is None:
            self.signal_batch = self.used_batch
        return self


def batches_problem(opts: UsedBatching) -> str | None:
    """The batching options' problem with the ring's size, in words, or None."""
    n = opts.queue_size
    if opts.used_batch > n:
        return (
            f"used_batch = {opts.used_batch} is larger than the ring (queue_size = {n}): "
            f"at most {n}"
        )
    if opts.signal_batch < opts.used_batch:
        return (
            f"signal_batch = {opts.signal_batch} is smaller than used_batch = {opts.used_batch}: "
            "the device can only signal what it has published; raise signal_batch or lower "
            "used_batch"
        )
    if opts.signal_batch > n:
        return (
            f"signal_batch = {opts.signal_batch} is larger than the ring (queue_size = {n}): "
            f"at most {n}"
        )
    return None
