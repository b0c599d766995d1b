"""vbench: vbus (shm-signal + IOQ) against virtio (virtqueues), measured rather than argued."""

__version__ = "0.1.0"
