"""A/B speed of the native engine between source trees, interleaved.

Each tree (a checkout or ``git worktree`` of vbench) runs each measurement in a fresh process
of its own (its own numba cache); the trees take turns round by round, so the machine's load
falls on all alike. Prints M requests/s, median [min-max] over the rounds, per tree, and the
last tree's ratio to the first::

    git worktree add /tmp/before <commit>
    python benchmarks/native_ab.py /tmp/before . --label virtio-packed --mode poll --batch 32

A measurement is ``native_bench.native_figures``: queue 256, as many in flight, 200k requests,
the median of 3 repetitions, ``verify = "ring"`` and sampled stamps (the engine's cheapest
honest measurement; ``--verify``/``--stamp`` change it). The first round compiles or loads the
cache and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_MEASURE = (
    "import sys; sys.path.insert(0, sys.argv[1] + '/benchmarks');"
    "from native_bench import native_figures;"
    "r = native_figures(int(sys.argv[5]), 3, (sys.argv[2],), (sys.argv[3],), 256, int(sys.argv[4]),"
    " native={'verify': sys.argv[6], 'stamp': sys.argv[7]})[0];"
    "print(r.get('mreq_s_median', 'error: ' + str(r.get('error'))))"
)


def measure(tree: str, args: argparse.Namespace) -> str:
    """One measurement in ``tree``: its figure, or the error it printed."""
    argv = [tree, args.label, args.mode, str(args.batch), str(args.requests)]
    argv += [args.verify, args.stamp]
    env = dict(os.environ, PYTHONPATH=tree)
    cmd = [sys.executable, "-c", _MEASURE, *argv]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else "error: " + out.stderr.strip()[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--label", default="virtio-split", help="a native_bench label")
    parser.add_argument("--mode", default="poll", choices=["poll", "sleep"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--verify", default="ring", choices=["full", "sample", "off", "ring"])
    parser.add_argument("--stamp", default="sample", choices=["all", "sample"])
    args = parser.parse_args()
    rates: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for round_ in range(args.rounds + 1):
        for tree in args.trees:
            figure = measure(tree, args)
            print(f"round {round_} {tree}: {figure}", file=sys.stderr, flush=True)
            if figure.startswith("error"):
                sys.exit(f"native_ab: {tree}: {figure}")
            if round_ > 0:
                rates[tree].append(float(figure))
    point = f"{args.label} {args.mode} b{args.batch}"
    for tree, xs in rates.items():
        print(f"{point} {tree}: {statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}] M req/s")
    first, last = (statistics.median(rates[t]) for t in (args.trees[0], args.trees[-1]))
    print(f"{point}: last/first {last / first:.3f} (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
