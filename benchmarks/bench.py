"""Speed benchmark: simulated requests per second per model, and CLI timings.

Speed is measured here, not in timed tests. Run from the repository root:

    python benchmarks/bench.py              # all figures
    python benchmarks/bench.py --quick      # simulator only, fewer repeats

Prints medians over repeats (the machine is shared and noisy: medians and ratios, not bests).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


MODES = {"sleeping": ("sleep", "interrupt"), "polling": ("poll", "poll")}


def bench_workload(n: int):
    """The benchmark's workload: ``n`` one-segment 1500-byte requests, closed loop 64 in flight
    (shared with benchmarks/ab.py)."""
    from vbench.workload import WorkloadSpec, generate

    spec = WorkloadSpec(
        requests=n,
        arrival={"kind": "closed", "in_flight": 64},
        size={"kind": "fixed", "bytes": 1500},
        segments={"kind": "fixed", "count": 1},
    )
    return generate(spec, 1)


def sim_times(model: str, n: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, Work]]:
    """Wall seconds of the simulation itself (``ModelRun.wall_s``: the engine's calls, not
    building the model or sliding the workload window), line tracker on, for each mode
    (a sleeping device with an interrupt-driven driver; both sides polling), the modes
    interleaved repeat by repeat so that the machine's load falls on both alike; and each
    mode's modelled work (the same every repeat: the run is deterministic)."""
    from vbench.costs import load_preset
    from vbench.models import get_model
    from vbench.simulation import EngineSpec, run_model

    wl = bench_workload(n)
    mdef = get_model(model)
    opts = mdef.options(queue_size=256)
    preset = load_preset("kvm-modern")
    engines = {
        mode: EngineSpec(batch=32, device=device, driver=driver)
        for mode, (device, driver) in MODES.items()
    }
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    work: dict[str, Work] = {}
    for k in range(repeats + 1):  # the first round compiles or loads the cache: not timed
        for mode, eng in engines.items():
            run = run_model(model, mdef, opts, wl, eng, preset)
            work[mode] = Work.of(run, wl)
            if k > 0:
                times[mode].append(run.wall_s)
    return times, work


@dataclass(frozen=True)
class Work:
    """What a run modelled, per request: the engine's steps, the ring operations it ran and
    priced (the ten of ``vbench.models.interface``) and the line transfers the line tracker
    counted (misses and invalidations, both sides). Polling costs more per request than
    sleeping where it models more of these: a ring that publishes each completion alone makes
    a polling driver reap, and look again, once per request."""

    steps: float
    operations: float
    lines: float

    @classmethod
    def of(cls, run, wl) -> Work:
        """From a run's result row (``vbench.simulation.summarize``) and its engine state."""
        from vbench.counters import OPS
        from vbench.simulation import summarize

        row = summarize(run, wl)
        per = 1.0 / run.requests
        return cls(
            steps=int(run.state["steps"][0]) * per,
            operations=sum(row[f"ops_{op}"] for op in OPS) * per,
            lines=row["lines_per_req"] + row["invalidations_per_req"],
        )


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall seconds of ``cmd``; an ``{out}`` in it becomes a fresh folder each time
    (``vbench run`` refuses to write into a folder that already holds a run)."""
    ts = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            run = [arg.replace("{out}", f"{tmp}/out") for arg in cmd]
            t0 = time.perf_counter()
            subprocess.run(run, cwd=ROOT, check=True, capture_output=True)
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    from vbench.models import registry

    print(
        f"simulator: 1 segment, batch 32, closed loop 64 in flight, {a.requests:,} requests, "
        f"line tracker on; M simulated req/s, median [min-max] of {a.repeats}; polling/sleeping "
        "is the ratio of the median costs per request; then what each mode modelled per request, "
        "sleeping/polling (exact: the run is deterministic): the engine's steps, the ring "
        "operations run, the shared lines transferred; per op: polling/sleeping cost per ring "
        "operation"
    )
    for name in registry():
        times, work = sim_times(name, a.requests, a.repeats)
        rates = {mode: [a.requests / t / 1e6 for t in ts] for mode, ts in times.items()}
        cells = [
            f"{mode} {statistics.median(r):6.2f} [{min(r):5.2f}-{max(r):5.2f}]"
            for mode, r in rates.items()
        ]
        ratio = statistics.median(times["polling"]) / statistics.median(times["sleeping"])
        sleeping, polling = work["sleeping"], work["polling"]
        per_op = ratio * sleeping.operations / polling.operations
        print(
            f"  {name:14s} " + "  ".join(cells) + f"  polling/sleeping {ratio:4.2f}"
            f"  steps {sleeping.steps:.2f}/{polling.steps:.2f}"
            f"  ops {sleeping.operations:.2f}/{polling.operations:.2f}"
            f"  lines {sleeping.lines:.2f}/{polling.lines:.2f}  per op {per_op:4.2f}"
        )
    if a.quick:
        return
    exe = [sys.executable, "-m", "vbench.cli"]
    print(f"vbench --help: {wall(exe + ['--help'], 5):.3f} s (median of 5)")
    wall(exe + ["run", "configs/default.toml", "-q", "--out", "{out}"], 1)  # warm
    t = wall(exe + ["run", "configs/default.toml", "-q", "--jobs", "2", "--out", "{out}"], 3)
    print(f"warm vbench run configs/default.toml --jobs 2: {t:.2f} s (median of 3)")


if __name__ == "__main__":
    main()
