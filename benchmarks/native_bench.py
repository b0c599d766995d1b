"""Native throughput: each model on two real threads, queue 256, batch 32, 256 in flight.

ringtest's experiment (configs/ringtest.toml) at one point, per model, in polling mode (both
sides spin) and sleeping mode (eventfd kick and call, 500 + 500 cycle exit emulation): the
median of the measured repetitions with min and max, in millions of requests per second.
Run from the repository root:

    python benchmarks/native_bench.py                 # 200k requests x 7 repetitions
    python benchmarks/native_bench.py --quick         # 50k x 5

:func:`native_figures` returns the figures (one dict per model and mode) for other benchmarks
(the C ring comparison in benchmarks/cring/ sets its own figures beside these). The machine is
shared and noisy: read medians, and the spread, not bests.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

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
) -> list[dict[str, Any]]:
    """Measured M requests/s of each model and mode: median, min, max over ``repetitions``
    runs (after one warm-up), with the per-request kick and interrupt rates (medians).

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
            native={"repetitions": repetitions, "warmup": 1, "timeout_s": 20},
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


def c_ring_comparison(buffers: int = 1_000_000, runs: int = 5) -> dict[str, Any] | None:
    """vbench's native virtio-split beside a plain C split ring (benchmarks/cring/split_ring.c)
    in ringtest's polling experiment: pinned guest and host threads, queue 256, batch 32, 256
    in flight. Builds the C program with gcc, then alternates C run, vbench run (so a change
    in the machine's load hits both), ``runs`` times each. Returns the buffers/s medians, mins,
    maxes and the ratio vbench/C, or None (with a note) where gcc or a second CPU is missing."""
    import re
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from vbench.native import sysio

    gcc = shutil.which("gcc")
    pair = sysio.cpu_pair()
    if gcc is None or pair is None:
        print(f"  C ring: skipped ({'no gcc' if gcc is None else 'one CPU only'})")
        return None
    src = Path(__file__).resolve().parent / "cring" / "split_ring.c"
    c_rates: list[float] = []
    v_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = str(Path(tmp) / "split_ring")
        subprocess.run([gcc, "-O2", "-pthread", "-o", exe, str(src)], check=True)
        cmd = [exe, "-n", str(buffers), "-q", "256", "-b", "32"]
        cmd += ["-g", str(pair[0]), "-h", str(pair[1])]
        for _ in range(runs):
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
            m = re.search(r"buffers_per_s=([0-9.]+)", done.stdout)
            assert m, done.stdout
            c_rates.append(float(m.group(1)) / 1e6)
            fig = native_figures(buffers, 1, ("virtio-split",), ("poll",))[0]
            if "error" in fig:
                print(f"  C ring: vbench run failed: {fig['error']}")
                return None
            v_rates.append(fig["mreq_s_median"])
    c, v = statistics.median(c_rates), statistics.median(v_rates)
    return {
        "c_median": c,
        "c_min": min(c_rates),
        "c_max": max(c_rates),
        "vbench_median": v,
        "vbench_min": min(v_rates),
        "vbench_max": max(v_rates),
        "ratio": v / c,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="50k requests, 5 repetitions")
    a = ap.parse_args()
    n, reps = (50_000, 5) if a.quick else (a.requests, a.repeats)
    print(
        f"native: queue 256, batch 32, 256 in flight, 16-byte buffers, {n:,} requests per run; "
        f"median [min, max] of {reps} runs after 1 warm-up"
    )
    for f in native_figures(n, reps):
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
        f"({n:,} buffers, {reps} alternating runs each):"
    )
    cmp = c_ring_comparison(n, reps)
    if cmp:
        print(
            f"  C {cmp['c_median']:.2f} M buf/s [{cmp['c_min']:.2f}, {cmp['c_max']:.2f}]  "
            f"vbench {cmp['vbench_median']:.2f} [{cmp['vbench_min']:.2f}, "
            f"{cmp['vbench_max']:.2f}]  vbench/C {cmp['ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
