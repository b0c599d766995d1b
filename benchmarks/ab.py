"""A/B speed of the simulator between source trees, interleaved, with a check that they agree.

Each tree (a checkout or ``git worktree`` of vbench) runs in a process of its own with its own
numba cache; the trees take turns run by run, so the machine's load falls on all alike. For each
model and mode it prints M simulated req/s, median [min-max] over the rounds, the last tree's
ratio to the first (the median of the rounds' paired ratios, [min-max]), and whether their event
digests and counters are the same::

    git worktree add /tmp/before <commit>
    python benchmarks/ab.py /tmp/before . --models virtio-packed,vbus-prio --modes sleeping

The workload is bench.py's: 1 segment, batch 32, closed loop 64 in flight, line tracker on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

MODES = {"sleeping": ("sleep", "interrupt"), "polling": ("poll", "poll")}


def worker(requests: int) -> None:
    """Serve ``MODEL MODE`` lines from stdin with one JSON line each (wall, digest, counters)."""
    from bench import bench_workload

    from vbench.costs import load_preset
    from vbench.models import get_model
    from vbench.simulation import EngineSpec, run_model

    workload = bench_workload(requests)
    preset = load_preset("kvm-modern")
    for line in sys.stdin:
        model, mode = line.split()
        mdef = get_model(model)
        device, driver = MODES[mode]
        engine = EngineSpec(batch=32, device=device, driver=driver)
        run = run_model(model, mdef, mdef.options(queue_size=256), workload, engine, preset)
        answer = {"wall": run.wall_s, "digest": run.digest, "counters": run.counters.tolist()}
        print(json.dumps(answer), flush=True)


def start(tree: str, requests: int) -> subprocess.Popen:
    key = hashlib.sha1(str(Path(tree).resolve()).encode()).hexdigest()[:12]
    env = dict(os.environ, PYTHONPATH=tree, NUMBA_CACHE_DIR=f"/tmp/vbench-ab-cache-{key}")
    command = [sys.executable, __file__, "--worker", "--requests", str(requests)]
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument(
        "--models", default="virtio-split,virtio-packed,virtio-mq,vbus-ioq,vbus-prio"
    )
    parser.add_argument("--modes", default="sleeping,polling")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.requests)
    procs = [start(tree, args.requests) for tree in args.trees]
    cases = [(m, mode) for m in args.models.split(",") for mode in args.modes.split(",")]
    speed: dict[tuple, list[float]] = {}
    first: dict[tuple, tuple] = {}
    for round_ in range(args.rounds + 1):  # round 0 compiles or loads the caches: not timed
        for model, mode in cases:
            for i, proc in enumerate(procs):
                proc.stdin.write(f"{model} {mode}\n")
                proc.stdin.flush()
                out = json.loads(proc.stdout.readline())
                if round_ == 0:
                    first[(model, mode, i)] = (out["digest"], out["counters"])
                else:
                    speed.setdefault((model, mode, i), []).append(args.requests / out["wall"] / 1e6)
    for model, mode in cases:
        cells = []
        for i in range(len(procs)):
            v = speed[(model, mode, i)]
            cells.append(f"{statistics.median(v):6.2f} [{min(v):5.2f}-{max(v):5.2f}]")
        last, base = speed[(model, mode, len(procs) - 1)], speed[(model, mode, 0)]
        same = all(first[(model, mode, i)] == first[(model, mode, 0)] for i in range(len(procs)))
        # the ratio of each round's pair, then their median: a drift in the machine's speed
        # between rounds falls on both runs of a pair alike
        paired = sorted(b / a for a, b in zip(base, last, strict=True))
        print(
            f"{model:14s} {mode:8s} " + "  ".join(cells),
            f"last/first {statistics.median(paired):.3f} [{paired[0]:.3f}-{paired[-1]:.3f}]",
            "same" if same else "DIFFERENT",
        )


if __name__ == "__main__":
    main()
