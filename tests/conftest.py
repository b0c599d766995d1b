"""Shared helpers: small workloads and one-call model runs for the tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vbench.costs import Preset, load_preset
from vbench.models import get_model
from vbench.simulation import EngineSpec, ModelRun, run_model
from vbench.workload import WorkloadSpec, generate

SPLIT_OPTION_SETS: list[dict[str, Any]] = (
    [
        {"event_idx": e, "indirect": i, "publish": p, "avail_event": a, "used_batch": u}
        for e in (True, False)
        for i in (True, False)
        for p in ("add", "kick")
        for a in ("vhost", "qemu")
        for u in (1, 3)
    ]
    + [
        {"event_idx": e, "in_order": o, "reap": r, "used_batch": u}
        for e in (True, False)
        for o in (True, False)
        for r in ("napi", "get_buf", "delayed")
        for u in (1, 4)
    ]
    + [{"tx_timer_ns": 150_000.0, "event_idx": e, "napi_budget": 2} for e in (True, False)]
    + [
        {"lookahead": w, "event_idx": e, "indirect": i}
        for w in (1, 8)
        for e in (True, False)
        for i in (True, False)
    ]
)
IOQ_OPTION_SETS: list[dict[str, Any]] = [
    {"sg": s, "txmitigation": t, "eoi": e}
    for s in ("pool", "flat")
    for t in (1, 10)
    for e in ("linux", "windows")
]
ALL_MODELS: list[tuple[str, dict[str, Any]]] = [("virtio-split", o) for o in SPLIT_OPTION_SETS] + [
    ("vbus-ioq", o) for o in IOQ_OPTION_SETS
]


def simulate(
    model: str,
    opts: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    engine: dict[str, Any] | None = None,
    seed: int = 1,
    preset: str | Preset = "kvm-modern",
) -> ModelRun:
    mdef = get_model(model)
    wl = generate(WorkloadSpec.model_validate(workload or {}), seed)
    return run_model(
        model,
        mdef,
        mdef.options(**(opts or {})),
        wl,
        EngineSpec(**(engine or {})),
        load_preset(preset) if isinstance(preset, str) else preset,
    )


def layout_json(model: str, queue_size: int) -> dict[str, Any]:
    """``vbench layout MODEL --queue-size N --format json``, run as a user runs it (a fresh
    process from the project's root), parsed; a failing command fails the test with its
    stderr."""
    r = subprocess.run(
        [sys.executable, "-m", "vbench.cli", "layout", model, "--queue-size", str(queue_size)]
        + ["--format", "json"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


PING_PONG: dict[str, Any] = {"requests": 300, "arrival": {"kind": "closed", "in_flight": 1}}


def assert_ping_pong(model: str, opts: dict[str, Any], segments: int, **workload: Any) -> ModelRun:
    """One request of ``segments`` segments in flight at a time (``workload``: more of the
    workload, e.g. its priority classes), both sides sleeping when idle: every request takes
    exactly one kick, one interrupt and one device wakeup, and nobody wakes for nothing
    (shared by every ring's tests, so each ring is held to it). The run, for more checks."""
    wl = dict(PING_PONG, segments={"kind": "fixed", "count": segments}, **workload)
    run = simulate(model, opts, wl, {"batch": 1})
    c = counters(run)
    n = PING_PONG["requests"]
    assert c["requests"] == n
    assert c["kicks"] == n
    assert c["interrupts"] == n
    assert c["interrupts_delivered"] == n
    assert c["spurious_device_wakeups"] == 0
    assert c["spurious_driver_wakeups"] == 0
    assert c["device_wakeups"] == n
    return run


def counters(run: ModelRun) -> dict[str, int]:
    from vbench.counters import COUNTERS

    return dict(zip(COUNTERS, (int(v) for v in run.counters), strict=True))


def error_line(stderr: str, *, only: bool = True) -> str:
    """The ``vbench: error:`` line a failed command printed: the only line on stderr (default),
    or the last one (``only=False``: after a progress line or a note). Never a traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert lines, "nothing on stderr"
    if only:
        assert len(lines) == 1, f"want exactly one line on stderr, got:\n{stderr}"
    assert lines[-1].startswith("vbench: error: "), stderr
    return lines[-1]


@pytest.fixture
def sim():
    return simulate


@pytest.fixture(scope="session", autouse=True)
def _compiled_engines(request):
    """On a whole-suite run, compile every model's simulation engine and native loops first,
    two processes at a time (the library's own :func:`vbench.sweep.warm_up`): a cold numba cache
    then costs the suite about half the compile time. A run of a few tests skips it."""
    if len(request.session.items) < 100:
        return
    from vbench.config import plan
    from vbench.models import registry
    from vbench.sweep import warm_up

    raw = {
        "name": "warm-up",
        "workload": {"requests": 8, "arrival": {"kind": "closed", "in_flight": 8}},
        "models": [{"model": name} for name in registry()],
        "sweep": {"product": {"engine.kind": ["sim", "native"]}},
    }
    warm_up(plan(None, raw=raw), jobs=2)
