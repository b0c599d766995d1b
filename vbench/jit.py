"""Numba set-up, imported before numba by every module that jit-compiles.

Two facts shape it:

1. Only *entry points* (the engine's ``simulate``) are compiled with ``cache=True``. A callee
   loaded from numba's cache is linked as object code and cannot be inlined, which made every
   shared-memory access cost a real call. Helpers are plain ``@njit`` functions (model
   operations ``inline="always"``) compiled together with, and cached inside, the entry point.
2. Numba checks only the entry point's own source file to decide whether a cache entry is
   stale, so an edit to a model would silently keep the old engine. The cache therefore lives in
   a directory named after a hash of every jitted source file: change one and the cache is new.
3. Every model's engine is one overload of the same function, and numba names a new overload's
   file from the index it has just read: two processes saving at once (a parallel warm-up) can
   take the same name and leave the index pointing at the other's code. Saves to an index are
   therefore serialised by :func:`lock_cache_saves`.
4. The entry points are compiled with ``_nrt=False`` (numba's runtime off): the caller owns
   every array for the whole call and no jitted code allocates, so reference counting buys
   nothing, and with it numba counts a reference (an atomic increment and decrement) for
   every array taken out of the run's tuple: 1,770 such calls in the compiled ``simulate``,
   which then ran at 0.35 M simulated req/s against 11 M without (virtio-split, 2026-12-04,
   same machine and load; the earlier engine, which took its arrays as arguments, ran at 2.1 M
   there). Code that must allocate (``np.zeros`` in a jitted function) cannot run there.
5. An out-of-line jitted helper that received a ring side's tuple ``(cfg, mem, st, ctr, io)``
   as its argument and unpacked it lost the model's last store before a return (numba 0.68.1;
   the TX timer's disarm in virtio-split's ``disable_kicks``, caught by a test). Such helpers
   take the arrays as arguments (``vbench.engine._ring_control``); inlined functions may unpack
   tuples, and every engine change is checked against the committed baseline's digests.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

_PKG = Path(__file__).resolve().parent
_JITTED = (
    "memory.py",
    "counters.py",
    "engine.py",
    "histogram.py",
    "layout.py",
    "models",
    "native",
)


def source_hash(names: tuple[str, ...] = _JITTED) -> str:
    """Hash of the sources that end up in compiled code (the cache key); ``names`` (files and
    folders of the package, ``"."`` for all of it) for another selection."""
    h = hashlib.sha256()
    for name in names:
        p = _PKG / name
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(f.relative_to(_PKG).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vbench" / f"numba-{source_hash()}"


def _prune(current: Path, keep: int = 3) -> None:
    """Drop caches of older sources (all but the ``keep`` most recently used)."""
    import shutil

    try:
        dirs = sorted(
            (p for p in current.parent.glob("numba-*") if p != current),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in dirs[keep - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


def lock_cache_saves() -> None:
    """Serialise numba's cache saves with an advisory lock on a file beside each index.

    Called by the modules that compile, after numba is imported (this module must not import
    it: ``vbench --help`` stays instant). Idempotent."""
    import fcntl

    from numba.core import caching

    cls = caching.IndexDataCacheFile
    if getattr(cls.save, "_vbench_locked", False):
        return
    plain = cls.save

    def save(self: Any, key: Any, data: Any) -> None:
        try:
            fd = os.open(self._index_path + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError:  # a read-only cache: numba copes (it does not save either)
            return plain(self, key, data)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held from reading the index to writing the data
            return plain(self, key, data)
        finally:
            os.close(fd)  # releases the lock

    save._vbench_locked = True  # type: ignore[attr-defined]
    cls.save = save


if "NUMBA_CACHE_DIR" not in os.environ:
    _dir = cache_dir()
    if not _dir.exists():
        _prune(_dir)
    os.environ["NUMBA_CACHE_DIR"] = str(_dir)
    if "numba" in sys.modules:
        # numba read its environment when it was imported (a test runner or the user's own
        # code may have imported it first): point its live config at the keyed directory too
        sys.modules["numba"].core.config.CACHE_DIR = str(_dir)
