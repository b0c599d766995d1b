"""Native throughput: each model on two real threads, queue 256, batch 32, 256 in flight.

ringtest's experiment (configs/ringtest.toml) at one point, per model, in polling mode (both
sides spin) and sleeping mode (eventfd kick and call, 500 + 500 cycle exit emulation): the
median of the measured repetitions with min and max, in millions of requests per second.
Run from the repository root:

    python benchmarks/native_bench.py                 # 200k requests x 7 repetitions
    python benchmarks/native_bench.py --quick         # 50k x 5
    python benchmarks/native_bench.py --vs-c [--quick] [--runs N] [--buffers N]

:func:`native_figures` returns the figures (one dict per model and mode) for other benchmarks.
``--vs-c`` sets vbench beside the C rings of benchmarks/cring/ (split, in-order split, packed;
:func:`c_comparison`): poll and sleep, batch 1 and 32, C and vbench runs alternating, each after
waiting for a quiet machine, one line per point with the median of the paired ratios. The C
guests run vbench's protocol: rounds of up to a batch of adds, one kick check, then every used
buffer reaped (``-l``, as protocol.submit_batch then reap_round, and as Linux's virtio-net
start_xmit with free_old_xmit), and when polling the kick and call checks all the same (``-k``);
``--c-as-ringtest`` runs them as ringtest's run_guest does: one add and one reap alternating,
polling without the checks. The machine is shared and noisy: read medians, and the spread, not
bests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

# vbus-prio last: sleeping, it can stall for the whole timeout (docs/native.md, "A finding"), and the
# runs just after such a stall were seen to be slower, so nothing is measured after it
MODELS = (
    "virtio-split",
    "virtio-packed",
    "virtio-mq",
    "vbus-ioq",
    "vbus-ioq+mb",
    "vbus-prio+mb",
    "vbus-prio",
)
# labels beyond a model's name: the model with options (vbus with a full barrier in shm-signal's
# store-then-check, the fix for the lost wakeup docs/native.md describes)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "vbus-ioq+mb": ("vbus-ioq", {"signal_barrier": "mb"}),
    "vbus-prio+mb": ("vbus-prio", {"signal_barrier": "mb"}),
    "virtio-split+in_order": ("virtio-split", {"in_order": True}),
}
MODES = {"poll": ("poll", "poll"), "sleep": ("sleep", "interrupt")}


def native_figures(
    requests: int = 200_000,
    repetitions: int = 7,
    models: tuple[str, ...] = MODELS,
    modes: tuple[str, ...] = ("poll", "sleep"),
    queue_size: int = 256,
    batch: int = 32,
    size: int = 16,
    native: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Measured M requests/s of each model and mode: median, min, max over ``repetitions``
    runs (after one warm-up), with the per-request kick and interrupt rates (medians).
    ``native``: further ``engine.native`` options (e.g. ``{"verify": "off"}``).

    A run that fails (e.g. a lost wakeup: see docs/native.md) is reported with ``error`` set."""
    from vbench.costs import load_preset
    from vbench.errors import InvariantError
    from vbench.models import get_model
    from vbench.native.runner import run_point
    from vbench.simulation import EngineSpec
    from vbench.workload import WorkloadSpec, generate

    spec = WorkloadSpec(
        requests=requests,
        arrival={"kind": "closed", "in_flight": queue_size},
        size={"kind": "fixed", "bytes": size},
        segments={"kind": "fixed", "count": 1},
    )
    wl = generate(spec, 1)
    out = []
    for mode in modes:
        dev, drv = MODES[mode]
        eng = EngineSpec(
            batch=batch,
            device=dev,
            driver=drv,
            kind="native",
            native={"repetitions": repetitions, "warmup": 1, "timeout_s": 20, **(native or {})},
        )
        for label in models:
            name, opts = VARIANTS.get(label, (label, {}))
            md = get_model(name)
            fig: dict[str, Any] = {"model": label, "mode": mode, "requests": requests}
            try:
                rows = run_point(
                    [(label, md, md.options(queue_size=queue_size, **opts))],
                    wl,
                    eng,
                    load_preset("kvm-modern"),
                )
            except InvariantError as exc:
                fig["error"] = str(exc)
                out.append(fig)
                continue
            rates = [r["measured_requests_per_s"] / 1e6 for r in rows]
            fig.update(
                runs=len(rates),
                mreq_s_median=statistics.median(rates),
                mreq_s_min=min(rates),
                mreq_s_max=max(rates),
                kicks_per_req=statistics.median(r["measured_kicks_per_req"] for r in rows),
                interrupts_per_req=statistics.median(
                    r["measured_interrupts_per_req"] for r in rows
                ),
                lat_p50_ns=statistics.median(r["measured_lat_p50_ns"] for r in rows),
            )
            out.append(fig)
    return out


# the C yardsticks of benchmarks/cring/, one per layout: (program, vbench label)
C_LAYOUTS: dict[str, tuple[str, str]] = {
    "split": ("split_ring", "virtio-split"),
    "in-order": ("inorder_ring", "virtio-split+in_order"),
    "packed": ("packed_ring", "virtio-packed"),
}
CRING = Path(__file__).resolve().parent / "cring"
QUIET = 0.10  # the other processes' CPU share under which the machine counts as quiet


def build_c_rings(outdir: str | Path, programs: Iterable[str] | None = None) -> dict[str, Path]:
    """Compile the C rings of benchmarks/cring/ (``gcc -O2 -pthread``) into ``outdir``: program
    name -> executable. Raises FileNotFoundError without gcc, CalledProcessError if one fails."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc not found")
    out = {}
    for prog in programs if programs is not None else [p for p, _ in C_LAYOUTS.values()]:
        exe = Path(outdir) / prog
        src = CRING / f"{prog}.c"
        subprocess.run([gcc, "-O2", "-pthread", "-o", str(exe), str(src)], check=True)
        out[prog] = exe
    return out


def run_c_ring(
    exe: str | Path,
    buffers: int,
    queue: int = 256,
    batch: int = 32,
    mode: str = "poll",
    cpus: tuple[int, int] | None = None,
    timeout: float = 300,
    like_vbench: bool = True,
) -> dict[str, Any]:
    """One run of a C ring: its output line as a dict (numbers converted).
    ``like_vbench``: the guest's loop as vbench's protocol and Linux make it: rounds of up to
    ``batch`` adds, one kick check, then every used buffer reaped (``-l``), and, when polling,
    the kick and call checks all the same (``-k``); False: ringtest's loop (one add, one reap,
    alternating) and its polling without the checks. Raises CalledProcessError (with the
    program's stderr) if the run fails."""
    cmd = [str(exe), "-n", str(buffers), "-q", str(queue), "-b", str(batch)]
    if like_vbench:
        cmd.append("-l")
    if mode == "sleep":
        cmd.append("-s")
    elif like_vbench:
        cmd.append("-k")
    if cpus is not None:
        cmd += ["-g", str(cpus[0]), "-h", str(cpus[1])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout)
    fields: dict[str, Any] = {}
    for item in done.stdout.split():
        key, _, value = item.partition("=")
        try:
            fields[key] = float(value) if "." in value else int(value)
        except ValueError:
            fields[key] = value
    return fields


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat's first line."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    total = sum(vals[:8])  # guest time is already counted in user
    return total - idle, total


def other_load(interval: float = 0.5) -> float:
    """The share of all CPUs that other processes used over ``interval`` seconds (0..1):
    /proc/stat's busy time minus this process's own (its threads and waited children)."""
    tick = os.sysconf("SC_CLK_TCK")
    b0, t0 = _cpu_jiffies()
    o0 = sum(os.times()[:4])
    time.sleep(interval)
    b1, t1 = _cpu_jiffies()
    own = (sum(os.times()[:4]) - o0) * tick
    if t1 <= t0:
        return 0.0
    return max(0.0, min(1.0, (b1 - b0 - own) / (t1 - t0)))


class QuietWait:
    """Waits, before each run, for the other processes' CPU share to fall under ``threshold``:
    at most ``max_wait_s`` per run and ``budget_s`` in all (once spent, it only measures the
    load, 0.5 s); :meth:`wait` returns the load seen last, the one the run started under."""

    def __init__(self, threshold: float = QUIET, max_wait_s: float = 60, budget_s: float = 240):
        self.threshold, self.max_wait_s, self.budget_s = threshold, max_wait_s, budget_s
        self.waited_s = 0.0
        self.gave_up = 0

    def wait(self) -> float:
        t0 = time.monotonic()
        limit = min(self.max_wait_s, max(0.0, self.budget_s - self.waited_s))
        while True:
            load = other_load()
            spent = time.monotonic() - t0
            if load < self.threshold or spent >= limit:
                break
        self.waited_s += spent
        if load >= self.threshold:
            self.gave_up += 1
        return load


def c_comparison(
    layouts: Iterable[str] = tuple(C_LAYOUTS),
    modes: Iterable[str] = ("poll", "sleep"),
    batches: Iterable[int] = (1, 32),
    runs: int = 5,
    buffers: int = 200_000,
    queue_size: int = 256,
    waiter: QuietWait | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    native: dict[str, Any] | None = None,
    c_like_vbench: bool = True,
) -> list[dict[str, Any]] | None:
    """vbench's native rings beside the C rings of benchmarks/cring/, one point per layout
    (split, in-order split, packed), mode and batch: queue ``queue_size``, as many in flight,
    ``buffers`` per run, pinned threads on the same two CPUs. Builds the C programs with gcc,
    then alternates a C run and a vbench run of the same point ``runs`` times (so a change in
    the machine's load hits both), each after ``waiter.wait()`` (no waiting without one: the
    load is still measured). Per point: the paired ratios vbench/C and their median, the
    medians, mins and maxes of both in M buffers/s, kicks and calls per buffer (medians), the
    highest load seen before a run (``load``, 0..1); ``error`` if a run failed. ``on_point``
    gets each point as it is done; ``native``: vbench's ``engine.native`` options (its
    measurement: ``verify``, ``stamp``); ``c_like_vbench``: see :func:`run_c_ring`.
    None (with a note) where gcc or a second CPU is missing."""
    from vbench.native import sysio

    pair = sysio.cpu_pair()
    if shutil.which("gcc") is None or pair is None:
        print(f"  C rings: skipped ({'no gcc' if pair else 'one CPU only'})")
        return None
    layouts = list(layouts)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        exes = build_c_rings(tmp, [C_LAYOUTS[lay][0] for lay in layouts])
        for lay in layouts:
            prog, label = C_LAYOUTS[lay]
            for mode in modes:
                for batch in batches:
                    run = _Run(runs, buffers, queue_size, pair, waiter, native or {}, c_like_vbench)
                    pt = _c_point(exes[prog], label, mode, batch, run)
                    pt.update(layout=lay, mode=mode, batch=batch)
                    out.append(pt)
                    if on_point:
                        on_point(pt)
    return out


class _Run(NamedTuple):
    """How every point of :func:`c_comparison` is run (a NamedTuple, not a dataclass: the
    tests load this script by path, outside sys.modules, where a dataclass cannot resolve)."""

    runs: int
    buffers: int
    queue_size: int
    pair: tuple[int, int]
    waiter: QuietWait | None
    native: dict[str, Any]
    c_like_vbench: bool


def _c_point(exe: Path, label: str, mode: str, batch: int, run: _Run) -> dict[str, Any]:
    """One point of :func:`c_comparison`: ``run.runs`` alternating C and vbench runs."""
    waiter, buffers, queue_size = run.waiter, run.buffers, run.queue_size
    c_rates: list[float] = []
    v_rates: list[float] = []
    c_notes: list[float] = []
    v_notes: list[float] = []
    loads: list[float] = []
    pt: dict[str, Any] = {"runs": 0}
    for _ in range(run.runs):
        loads.append(waiter.wait() if waiter else other_load())
        try:
            c = run_c_ring(
                exe,
                buffers,
                queue_size,
                batch,
                mode,
                run.pair,
                like_vbench=run.c_like_vbench,
            )
        except subprocess.CalledProcessError as exc:
            pt["error"] = f"C run failed: {exc.stderr.strip()}"
            break
        loads.append(waiter.wait() if waiter else other_load())
        v = native_figures(buffers, 1, (label,), (mode,), queue_size, batch, native=run.native)[0]
        if "error" in v:
            pt["error"] = f"vbench run failed: {v['error']}"
            break
        c_rates.append(c["buffers_per_s"] / 1e6)
        c_notes.append((c["kicks"] + c["calls"]) / buffers)
        v_rates.append(v["mreq_s_median"])
        v_notes.append(v["kicks_per_req"] + v["interrupts_per_req"])
    pt["load"] = max(loads)
    if c_rates:
        pt.update(
            runs=len(c_rates),
            ratio=statistics.median(v / c for v, c in zip(v_rates, c_rates, strict=True)),
            c_median=statistics.median(c_rates),
            c_min=min(c_rates),
            c_max=max(c_rates),
            vbench_median=statistics.median(v_rates),
            vbench_min=min(v_rates),
            vbench_max=max(v_rates),
            c_notifications_per_buffer=statistics.median(c_notes),
            vbench_notifications_per_buffer=statistics.median(v_notes),
        )
    return pt


def format_c_point(pt: dict[str, Any]) -> str:
    """The line of one point: ``vbench/C <layout> <mode> b<batch>: <ratio> (median of N, C
    <M/s>, vbench <M/s>, load <x %>)``."""
    head = f"vbench/C {pt['layout']} {pt['mode']} b{pt['batch']}:"
    if "ratio" not in pt:
        return f"{head} failed: {pt.get('error', 'no run')} (load {pt['load'] * 100:.0f} %)"
    line = (
        f"{head} {pt['ratio']:.2f} (median of {pt['runs']}, C {pt['c_median']:.2f} M/s, "
        f"vbench {pt['vbench_median']:.2f} M/s, load {pt['load'] * 100:.0f} %)"
    )
    return line + (f"  [stopped: {pt['error']}]" if "error" in pt else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer requests and runs")
    ap.add_argument(
        "--vs-c",
        action="store_true",
        help="only vbench against the C rings of benchmarks/cring/: every layout, poll and "
        "sleep, batch 1 and 32, alternating runs on a quiet machine",
    )
    ap.add_argument("--runs", type=int, help="--vs-c: paired runs per point (5; --quick 3)")
    ap.add_argument("--buffers", type=int, help="--vs-c: buffers per run (200k; --quick 100k)")
    ap.add_argument("--layouts", default=",".join(C_LAYOUTS), help="--vs-c: which layouts")
    ap.add_argument("--modes", default="poll,sleep", help="--vs-c: poll, sleep or both")
    ap.add_argument("--batches", default="1,32", help="--vs-c: batch sizes")
    ap.add_argument(
        "--verify",
        choices=("full", "sample", "off", "ring"),
        help="vbench's payload check (engine default)",
    )
    ap.add_argument(
        "--stamp", choices=("all", "sample"), help="vbench's latency stamps (engine default)"
    )
    ap.add_argument(
        "--c-as-ringtest",
        action="store_true",
        help="C guests as ringtest's run_guest: one add and one reap alternating, polling "
        "without the kick and call checks (default: vbench's protocol, as Linux: rounds of "
        "adds, a kick check, every used buffer reaped; the checks when polling too)",
    )
    a = ap.parse_args()
    native = {k: v for k, v in (("verify", a.verify), ("stamp", a.stamp)) if v}
    if a.vs_c:
        vs_c(
            a.runs or (3 if a.quick else 5),
            a.buffers or (100_000 if a.quick else 200_000),
            budget_s=60 if a.quick else 240,
            points=(
                a.layouts.split(","),
                a.modes.split(","),
                [int(b) for b in a.batches.split(",")],
            ),
            native=native,
            c_like_vbench=not a.c_as_ringtest,
        )
        return
    n, reps = (50_000, 5) if a.quick else (a.requests, a.repeats)
    print(
        f"native: queue 256, batch 32, 256 in flight, 16-byte buffers, {n:,} requests per run; "
        f"median [min, max] of {reps} runs after 1 warm-up"
    )
    for f in native_figures(n, reps, native=native):
        head = f"  {f['model']:14s} {f['mode']:5s}"
        if "error" in f:
            print(f"{head}  failed: {f['error']}")
            continue
        print(
            f"{head} {f['mreq_s_median']:6.2f} M req/s [{f['mreq_s_min']:.2f}, "
            f"{f['mreq_s_max']:.2f}]  kicks/req {f['kicks_per_req']:.4f}  "
            f"irqs/req {f['interrupts_per_req']:.4f}  p50 {f['lat_p50_ns'] / 1000:.1f} us"
        )
    print(
        f"virtio-split polling, vbench native vs the C ring of benchmarks/cring/ "
        f"({n:,} buffers, {reps} alternating runs each; --vs-c for every layout):"
    )
    points = c_comparison(
        ("split",),
        ("poll",),
        (32,),
        reps,
        n,
        native=native,
        c_like_vbench=not a.c_as_ringtest,
    )
    for pt in points or []:
        print("  " + format_c_point(pt))


def vs_c(
    runs: int,
    buffers: int,
    budget_s: float = 240,
    max_wait_s: float = 60,
    points: tuple[Iterable[str], Iterable[str], Iterable[int]] | None = None,
    native: dict[str, Any] | None = None,
    c_like_vbench: bool = True,
) -> None:
    """``--vs-c``: every layout, mode and batch (or ``points``: layouts, modes, batches), one
    line per point as it is done; ``native``: vbench's measurement options;
    ``c_like_vbench``: see :func:`run_c_ring`."""
    layouts, modes, batches = points or (tuple(C_LAYOUTS), ("poll", "sleep"), (1, 32))
    from vbench.simulation import NativeSpec

    defaults = NativeSpec()
    chosen = {"verify": defaults.verify, "stamp": defaults.stamp} | (native or {})
    how = ", ".join(f"{k} = {v}" for k, v in chosen.items())
    print(
        f"vbench native vs the C rings of benchmarks/cring/: queue 256, as many in flight, "
        f"{buffers:,} buffers per run, {runs} C and {runs} vbench runs alternating per point; "
        f"each run after waiting for the other processes' CPU share < {QUIET:.0%} "
        f"(at most {max_wait_s:.0f} s a run, {budget_s:.0f} s in all); ratio = median of the "
        f"paired vbench/C, load = the highest seen before a run of the point; vbench's "
        f"measurement: {how}; C guest: "
        + (
            "vbench's protocol, rounds of adds, a kick check, every used buffer reaped (-l), "
            "and polling, the kick and call checks (-k)"
            if c_like_vbench
            else "ringtest's loop, one add and one reap alternating, and polling, no "
            "notification checks (--c-as-ringtest)"
        ),
        flush=True,
    )
    waiter = QuietWait(QUIET, max_wait_s, budget_s)
    t0 = time.monotonic()
    c_comparison(
        layouts,
        modes,
        batches,
        runs=runs,
        buffers=buffers,
        waiter=waiter,
        on_point=lambda pt: print(format_c_point(pt), flush=True),
        native=native,
        c_like_vbench=c_like_vbench,
    )
    print(
        f"({time.monotonic() - t0:.0f} s, {waiter.waited_s:.0f} s of it measuring the load and "
        f"waiting for quiet; {waiter.gave_up} of the waits gave up)"
    )


if __name__ == "__main__":
    main()
