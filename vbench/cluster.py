"""Run a sweep's points on a Dask cluster instead of the local process pool.

``vbench run CONFIG --cluster tcp://HOST:8786`` sends the points to a running Dask scheduler;
``--cluster local:N`` starts a LocalCluster of N single-thread worker processes for the run and
stops it after. A config's ``[cluster]`` section says the same (``address``, and ``timeout``:
seconds to reach the scheduler and to find a worker there). Nothing else changes: the client
journals each point as it arrives, so the results folder, ``--resume`` and the table are those
of the local pool, row for row (only the timing columns differ).

What makes that hold:

- Every worker must run this vbench: same version and same source (``journal.code_hash``, the
  hash that keys the journal). :func:`check_workers` asks each one before anything is
  submitted and refuses on a mismatch; a worker that joins later is checked by each point it
  runs (:func:`run_point`), which stops the sweep rather than journal a foreign row.
- :class:`WarmModels`, a worker plugin, compiles (or loads from numba's cache) every model of
  the sweep on each worker, also on workers that join later, in a thread so the worker keeps
  answering its heartbeat. Workers sharing one cache directory warm one at a time (a ``flock``
  beside the cache): the first compiles and saves, the others load.
- The engine's entry points release the GIL (``nogil=True``), so a point of minutes does not
  starve the worker's heartbeat and get it declared dead.
- At most a few points per worker thread are in flight; the rest wait on the client, so an
  interrupted sweep has little to cancel.

Ctrl-C: a LocalCluster's workers ignore the terminal's SIGINT (the client stops them: closed,
then killed if still there), so the exit is quick and leaves no process. On a remote cluster
the points not started are cancelled; the ones running finish their call on their workers (a
jitted call cannot be interrupted) and their results are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vbench.errors import VbenchError

try:  # optional (pip install -e '.[cluster]'): without it, require() says how to install it
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:
    _WorkerPlugin = object

INSTALL = "pip install -e '.[cluster]'"
DEFAULT_TIMEOUT = 10.0
SECTION_KEYS = ("address", "timeout")
#: points in flight per worker thread: enough to keep every thread busy between two answers
IN_FLIGHT_PER_THREAD = 2
PLUGIN_NAME = "vbench-warm"

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")
_LOCAL = re.compile(r"^local:(.*)$")


@dataclass(frozen=True)
class ClusterSpec:
    """Where the points run: a scheduler's ``address``, or ``local:N`` (``workers`` = N)."""

    address: str
    workers: int = 0  # N of local:N; 0 for a scheduler's address
    timeout: float = DEFAULT_TIMEOUT

    @property
    def local(self) -> bool:
        return self.workers > 0


def parse(text: str, where: str = "--cluster", timeout: float = DEFAULT_TIMEOUT) -> ClusterSpec:
    """``tcp://HOST:PORT`` (or ``tls://``) or ``local:N``, N ≥ 1; anything else is one line."""
    text = str(text).strip()
    m = _LOCAL.match(text)
    if m:
        n = m.group(1)
        if not n.isdigit() or int(n) < 1:
            raise VbenchError(
                f"{where} {text!r}: local:N needs N ≥ 1 worker processes, e.g. local:4"
            )
        return ClusterSpec(text, int(n), timeout)
    m = _ADDRESS.match(text)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise VbenchError(
            f"{where} {text!r}: give a scheduler's address, tcp://HOST:PORT (Dask's default port "
            "is 8786), or local:N for N worker processes on this machine"
        )
    return ClusterSpec(text, 0, timeout)


def from_section(section: Any, where: str) -> ClusterSpec | None:
    """A config's ``[cluster]`` table: ``address`` (as ``--cluster``) and ``timeout`` (s)."""
    if section is None:
        return None
    example = 'e.g. [cluster] address = "tcp://HOST:8786" (or "local:4"), timeout = 10'
    from vbench.config import check_section

    check_section(section, "cluster", SECTION_KEYS, example, where)
    timeout = section.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise VbenchError(f"{where}: cluster.timeout must be seconds > 0 (got {timeout!r})")
    if not isinstance(section.get("address"), str):
        raise VbenchError(f"{where}: cluster.address must be a string: {example}")
    return parse(section["address"], f"{where}: cluster.address", float(timeout))


def choose(flag: str | None, section: Any, where: str, jobs: int) -> ClusterSpec | None:
    """The cluster a run uses: ``--cluster`` (``none`` for the local pool), else the config's
    section; refused beside ``--jobs > 1`` (the cluster's workers are the parallelism)."""
    spec = from_section(section, where)
    if flag is not None:
        spec = None if flag.strip() == "none" else parse(flag, timeout=_timeout(spec))
    if spec is not None and jobs > 1:
        source = "--cluster" if flag is not None else f"{where}'s [cluster]"
        raise VbenchError(
            f"--jobs {jobs} and {source} {spec.address}: the points run on the cluster's "
            "workers, leave out --jobs (or give --cluster none to run them here)"
        )
    return spec


def _timeout(spec: ClusterSpec | None) -> float:
    return spec.timeout if spec is not None else DEFAULT_TIMEOUT


def require() -> None:
    """distributed is an optional dependency: one line saying how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise VbenchError(
            f"--cluster needs Dask's distributed, which is not installed: {INSTALL} "
            "(or pip install distributed)"
        ) from None


# --- on the workers -----------------------------------------------------------------------------
def identity() -> tuple[str, str]:
    """This process's vbench: its version and the hash of its source (the journal's key)."""
    from vbench import __version__, journal

    return __version__, journal.code_hash()


class WorkerMismatch(VbenchError):
    """A worker runs another vbench than the client's: its rows must not be journaled."""


def run_point(point: Any, verify: bool, expect: tuple[str, str]) -> Any:
    """One point on a worker, as the local pool runs it (:func:`vbench.sweep._run_point_safe`),
    once this worker is known to run the client's vbench."""
    from vbench.sweep import _run_point_safe

    mine = identity()
    if mine != expect:
        raise WorkerMismatch(_mismatch_line("a worker that joined", mine, expect))
    return _run_point_safe(point, verify)


def _mismatch_line(who: str, theirs: tuple[str, str], mine: tuple[str, str]) -> str:
    return (
        f"{who} runs vbench {theirs[0]} with source {theirs[1]}, this client vbench {mine[0]} "
        f"with source {mine[1]}: install this vbench on every worker (pip install -e . from "
        "the same checkout); nothing was submitted to it"
    )


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Hold a lock beside numba's cache directory: workers on one machine (or on a shared
    filesystem whose flock works across machines) warm one after the other."""
    import fcntl

    fd = None
    with contextlib.suppress(OSError):
        folder = os.environ.get("NUMBA_CACHE_DIR") or ""
        if folder:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, "warm.lock"), os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


class WarmModels(_WorkerPlugin):  # type: ignore[misc, valid-type]
    """A worker plugin that compiles (or loads) each model of ``todo`` (the arguments of
    :func:`vbench.sweep._warm_one`) on every worker, present and to come."""

    name = PLUGIN_NAME

    def __init__(self, todo: list[tuple[Any, ...]], expect: tuple[str, str]) -> None:
        self.todo = todo
        self.expect = expect

    async def setup(self, worker: Any) -> None:
        import asyncio

        # in a thread: compiling takes seconds to minutes, the heartbeat must go on meanwhile
        await asyncio.get_running_loop().run_in_executor(None, self.warm)

    def warm(self) -> None:
        from vbench.sweep import _warm_one

        if identity() != self.expect:
            return  # refused by the client; its points refuse to run (run_point)
        with _one_at_a_time():
            for args in self.todo:
                _warm_one(*args)


# --- on the client ------------------------------------------------------------------------------
@dataclass
class Session:
    """A connected client (and the LocalCluster it started), ready to run points."""

    spec: ClusterSpec
    client: Any = None
    cluster: Any = None  # the LocalCluster this session started, or None
    pids: list[int] = field(default_factory=list)  # its worker processes
    threads: int = 0
    workers: int = 0
    pending: set[Any] = field(default_factory=set)
    interrupted: bool = False

    @property
    def expect(self) -> tuple[str, str]:
        return identity()

    def connect(self) -> None:
        require()
        from distributed import Client

        # the client's own warnings (a closed stream while stopping) are not the user's news
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.spec.local:
            self.cluster = _start_local(self.spec.workers)
            self.pids = _worker_pids(self.cluster)
            self.client = Client(self.cluster, set_as_default=False)
        else:
            try:
                self.client = Client(
                    self.spec.address, timeout=self.spec.timeout, set_as_default=False
                )
            except (OSError, ValueError) as e:
                raise VbenchError(
                    f"--cluster {self.spec.address}: no scheduler answered within "
                    f"{self.spec.timeout:g} s ({_first_line(e)}): start one with dask scheduler, "
                    "or check the host and port"
                ) from None
        try:
            self.client.wait_for_workers(1, timeout=self.spec.timeout)
        except (OSError, TimeoutError):
            raise VbenchError(
                f"--cluster {self.spec.address}: the scheduler has no worker after "
                f"{self.spec.timeout:g} s: start some with dask worker {self.spec.address} "
                "--nthreads 1 --nworkers N --memory-limit 0"
            ) from None
        self.check_workers()

    def check_workers(self) -> None:
        """Every worker's vbench version and source hash must be the client's."""
        answers = self.client.run(identity, on_error="return")
        expect = self.expect
        for addr, got in sorted(answers.items()):
            if isinstance(got, BaseException):
                raise VbenchError(
                    f"--cluster {self.spec.address}: worker {addr} cannot run vbench "
                    f"({type(got).__name__}: {_first_line(got)}): install this vbench on every "
                    "worker (pip install -e . from the same checkout)"
                )
            if tuple(got) != expect:
                raise VbenchError(
                    f"--cluster {self.spec.address}: "
                    + _mismatch_line(f"worker {addr}", tuple(got), expect)
                )
        info = self.client.scheduler_info(n_workers=-1)
        self.workers = len(info.get("workers", {}))
        self.threads = max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))

    def warm(self, todo: list[tuple[Any, ...]]) -> None:
        """Register :class:`WarmModels`: every worker compiles or loads every model now."""
        self.client.register_plugin(WarmModels(todo, self.expect), name=PLUGIN_NAME)

    def run(
        self,
        points: list[Any],
        verify: bool,
        finished: Callable[[int, Any, Any], None],
    ) -> None:
        """Submit the points (a bounded number in flight), hand each result to ``finished``
        in completion order; on any exception (an interrupt) cancel what is left."""
        from distributed import as_completed

        index: dict[str, int] = {}
        todo = iter(points)
        limit = IN_FLIGHT_PER_THREAD * self.threads
        expect = self.expect

        def submit() -> Any:
            point = next(todo, None)
            if point is None:
                return None
            key = f"vbench-point-{point.index}-{uuid.uuid4().hex[:12]}"
            index[key] = point.index
            fut = self.client.submit(run_point, point, verify, expect, key=key, pure=False)
            self.pending.add(fut)
            return fut

        first = [f for f in (submit() for _ in range(limit)) if f is not None]
        arrivals = as_completed(first, loop=self.client.loop)
        try:
            for fut in arrivals:
                self.pending.discard(fut)
                nxt = submit()  # keep the workers busy while this one is journaled
                if nxt is not None:
                    arrivals.add(nxt)
                finished(*self._outcome(fut, index[fut.key]))
        except BaseException:
            self.interrupted = True
            self.cancel()
            raise

    def _outcome(self, fut: Any, idx: int) -> tuple[int, Any, Any]:
        from distributed import KilledWorker

        from vbench.sweep import Failure

        try:
            return fut.result()
        except KilledWorker as e:
            why = f"the workers running it died ({_first_line(e)})"
            return idx, None, Failure(idx, "error", why)

    def cancel(self) -> None:
        if self.pending and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.pending), force=True)
        self.pending.clear()

    def close(self) -> None:
        """Close the client and what this session started; leave no worker process."""
        with contextlib.suppress(Exception):
            if self.client is not None and not self.spec.local:
                self.client.unregister_worker_plugin(PLUGIN_NAME)
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=2)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=3)
        for pid in self.pids:  # still there (a point held it): end it
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        if self.spec.local:  # and the resource tracker their start left: reaped, not orphaned
            with contextlib.suppress(Exception):
                from multiprocessing import resource_tracker

                resource_tracker._resource_tracker._stop()
        self.client = self.cluster = None
        self.pids = []


def _start_local(workers: int) -> Any:
    """A LocalCluster of single-thread worker processes that ignore the terminal's SIGINT
    (they inherit SIG_IGN as they are started: the client stops them on Ctrl-C)."""
    from distributed import LocalCluster

    ignore = _main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignore else None
    try:
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # its HTTP server (no dashboard without bokeh) on a free port
            memory_limit=0,
            silence_logs=logging.ERROR,
        )
    finally:
        if ignore:
            signal.signal(signal.SIGINT, old)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _worker_pids(cluster: Any) -> list[int]:
    pids = []
    for nanny in cluster.workers.values():
        with contextlib.suppress(AttributeError):
            pids.append(int(nanny.process.process.pid))
    return pids


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__


class SyncCancelRace(logging.Filter):
    """Drops the log record of one known race in Dask, so Ctrl-C ends with vbench's one line.

    ``distributed.utils.sync`` (2026.8.0) answers a KeyboardInterrupt in a blocking client
    call by scheduling its ``cancel`` callback on the event loop. ``cancel`` reads the
    coroutine's ``future``, which is unbound when the interrupt came before the coroutine
    created it. The NameError is then logged by tornado ("Exception in callback"), with a
    traceback, beside vbench's own report of the interrupt: in 1 of 8 and 1 of 6 interrupted
    runs of a local cluster on 2026-12-07, none of 30 with this filter. Every other record
    passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NameError) or exc.__traceback__ is None:
            return True
        last = traceback.extract_tb(exc.__traceback__)[-1]
        in_sync = last.filename.endswith(os.path.join("distributed", "utils.py"))
        return not (in_sync and last.name == "cancel")


@contextlib.contextmanager
def session(spec: ClusterSpec) -> Iterator[Session]:
    """A connected, checked session; closed (and its LocalCluster stopped) on the way out."""
    s = Session(spec)
    race = SyncCancelRace()
    loop_log = logging.getLogger("tornado.application")
    loop_log.addFilter(race)
    try:
        s.connect()
        yield s
    finally:
        s.close()
        loop_log.removeFilter(race)


def interrupt_note(spec: ClusterSpec) -> str:
    """What an interrupt did to the points that were running."""
    if spec.local:
        return "the cluster's workers were stopped"
    return (
        f"points already running on {spec.address} finish their call there (a jitted call "
        "cannot be interrupted); their results are dropped"
    )
