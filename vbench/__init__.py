"""vbench: vbus (shm-signal + IOQ) against virtio (virtqueues), measured rather than argued."""

__version__ = "0.1.0"

# Point numba's cache at a directory keyed by the jitted sources before numba is imported
# anywhere (see vbench/jit.py); this module itself imports nothing heavy.
from vbench import jit as _jit  # noqa: E402,F401
