"""The run journal: every finished sweep point is on disk the moment it finishes.

A results folder being made holds ``run.json`` (the config as run, its hash and the command's
overrides: enough to resume without the original file) and ``points.jsonl``, one JSON line per
finished point, appended and fsync'ed as the point finishes. A line is keyed by a hash of the
point's full config, its workload seed, the vbench version and a hash of vbench's own source
files, so ``vbench run --resume DIR`` skips exactly the points whose results would be recomputed
identically, and recomputes a point recorded by another vbench version or by edited code (a
development checkout with a model changed between the interrupted run and the resume). A line cut short by a crash is ignored (and reported): the
point simply runs again. The final table and ``meta.json`` are then written atomically by
:func:`vbench.results.write` from the journal's rows, so an interrupted, resumed sweep ends with
the same table as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np

from vbench import __version__, jit
from vbench.errors import ConfigError, VbenchError

RUN_FILE = "run.json"
JOURNAL_FILE = "points.jsonl"
# a generous bound on what one row costs on disk (journal line + table + histogram), used to
# refuse a sweep that cannot fit before it starts
BYTES_PER_ROW = 64 * 1024


@functools.cache
def code_hash() -> str:
    """Hash of every source file of the vbench package: the code that computes a row."""
    return jit.source_hash((".",))


def point_key(raw: dict[str, Any], seed: int) -> str:
    """The key of a point's results: its full config, its workload seed, the vbench version
    and the code that computes it (:func:`code_hash`)."""
    blob = json.dumps(
        {"config": raw, "seed": seed, "vbench": __version__, "code": code_hash()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) during a sweep; ``code`` is the exit code it asks for."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


_held = [0]  # depth of signals_held() blocks in the main thread
_caught: list[int] = []  # signals noted inside them, raised again when the outermost ends


def _on_signal(signum: int, _frame: Any) -> None:
    """SIGINT raises KeyboardInterrupt (130), SIGTERM :class:`Interrupted` (143), except inside
    a :func:`signals_held` block, where the signal is noted and raised when the block ends."""
    if _held[0] > 0:
        _caught.append(signum)
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(128 + signum)


@contextlib.contextmanager
def interrupt_handlers():
    """Install :func:`_on_signal` for SIGINT and SIGTERM (main thread only), so that both stop a
    sweep cleanly and both respect :func:`signals_held`."""
    old: dict[int, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_held():
    """Defer SIGINT and SIGTERM to the end of the block: an interrupt lands after a record is
    written (and added to the table), never in the middle of it.

    Two mechanisms, because one is not enough. The signals are blocked (``pthread_sigmask``),
    so none is *delivered* inside. But a signal delivered just before the block has its Python
    handler run at the next bytecode, which can be inside it (CI saw a point journaled and
    missing from the partial table): under :func:`interrupt_handlers` that handler only notes
    the signal while a block is open, and the outermost block raises it again as it ends."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, ValueError, OSError):  # not POSIX
        old = None
    _held[0] += 1
    try:
        yield
    finally:
        _held[0] -= 1
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if _held[0] == 0 and _caught:
            sig = _caught[0]
            _caught.clear()
            signal.raise_signal(sig)  # now, to the handler it would have met


def _encode_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k == "_hist":
            out[k] = [[int(c), idx.tolist(), cnt.tolist()] for c, idx, cnt in v]
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    if "_hist" in row:
        row["_hist"] = [
            (c, np.asarray(idx, dtype=np.int32), np.asarray(cnt, dtype=np.int64))
            for c, idx, cnt in row["_hist"]
        ]
    return row


def _io_error(what: str, path: Path, e: OSError) -> VbenchError:
    if e.errno == errno.ENOSPC:
        return VbenchError(f"disk full while writing {what} {path}: free some space")
    reason = e.strerror or str(e)
    return VbenchError(f"cannot write {what} {path}: {reason}: choose another --out folder")


class Journal:
    """The journal of one results folder (create it with :meth:`start`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL_FILE
        self.records: dict[str, dict[str, Any]] = {}  # key -> {"point": i, "rows": [...]}
        self.skipped_lines = 0

    # --- opening ---------------------------------------------------------------------------
    @classmethod
    def start(cls, folder: Path, run_info: dict[str, Any], rows_expected: int) -> Journal:
        """A new journal in ``folder``: refuse an unwritable folder, a folder that already
        holds a run, or a disk without room, before anything runs."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise VbenchError(f"--out {folder} is a file: give a folder path")
        if (folder / RUN_FILE).exists() or (folder / JOURNAL_FILE).exists():
            raise VbenchError(
                f"{folder} already holds a run: resume it with vbench run --resume {folder}, "
                "or choose another --out folder"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _io_error("the results folder", folder, e) from None
        need = rows_expected * BYTES_PER_ROW
        free = shutil.disk_usage(folder).free
        if free < need:
            raise VbenchError(
                f"not enough disk space in {folder}: {free / 2**20:.0f} MiB free, the sweep needs "
                f"about {need / 2**20:.0f} MiB: free some space or choose another --out folder"
            )
        j = cls(folder)
        j._write_run(run_info)
        try:
            j.path.touch()
        except OSError as e:
            raise _io_error("the journal", j.path, e) from None
        return j

    @classmethod
    def resume(cls, folder: Path) -> tuple[Journal, dict[str, Any]]:
        """The journal of an earlier run and what ``run.json`` recorded about it."""
        folder = Path(folder)
        if not folder.is_dir():
            raise VbenchError(f"--resume {folder}: no such results folder")
        info_path = folder / RUN_FILE
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
                raise ValueError("no config recorded")
        except FileNotFoundError:
            raise VbenchError(
                f"--resume {folder}: no {RUN_FILE} there: it was not made by vbench run "
                "(or by one older than resuming)"
            ) from None
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise VbenchError(f"--resume {folder}: {RUN_FILE} is unreadable ({e})") from None
        j = cls(folder)
        j._load()
        return j, info

    def _write_run(self, info: dict[str, Any]) -> None:
        from vbench.results import atomic_write_text

        try:
            atomic_write_text(self.folder / RUN_FILE, json.dumps(info, indent=2, default=str))
        except OSError as e:
            raise _io_error("the results folder", self.folder, e) from None

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    key, point, rows = rec["key"], int(rec["point"]), rec["rows"]
                    if not isinstance(rows, list):
                        raise ValueError
                except (ValueError, KeyError, TypeError):
                    self.skipped_lines += 1  # cut short by a crash: that point runs again
                    continue
                self.records[key] = {"point": point, "rows": [_decode_row(r) for r in rows]}

    # --- recording -------------------------------------------------------------------------
    def append(self, key: str, point: int, rows: list[dict[str, Any]]) -> None:
        """Record a finished point: one line, flushed and fsync'ed before returning."""
        line = json.dumps({"key": key, "point": point, "rows": [_encode_row(r) for r in rows]})
        with signals_held():
            try:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise _io_error("the journal", self.path, e) from None
        self.records[key] = {"point": point, "rows": rows}

    def rows_for(self, key: str, point: int) -> list[dict[str, Any]] | None:
        """The recorded rows of a point (renumbered to its index in this plan), if any."""
        rec = self.records.get(key)
        if rec is None:
            return None
        return [{**r, "point": point} for r in rec["rows"]]


def check_same_config(info: dict[str, Any], config_hash: str, folder: Path) -> None:
    if info.get("config_hash") != config_hash:
        raise ConfigError(
            f"--resume {folder}: it was made from a different config "
            f"(hash {str(info.get('config_hash'))[:12]}, this one {config_hash[:12]}): resume "
            "without a CONFIG argument to use the recorded one, or run into a new --out folder"
        )
