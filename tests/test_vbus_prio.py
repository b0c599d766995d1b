"""vbus with one IOQ per class and event queues: notification counts, clean ends, and what the
"as designed" event queues (one per class, highest first) change against "as shipped" (one)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import counters, simulate

from vbench.models import get_model
from vbench.models.interface import Needs
from vbench.models.vbus_prio import DRV_OPEN_COUNT
from vbench.simulation import summarize
from vbench.workload import WorkloadSpec, generate

MODEL = "vbus-prio"


def _prio(classes: int, shares: list[float] | None = None) -> dict[str, Any]:
    return {"classes": classes, "shares": shares or [1.0] * classes}


@pytest.mark.parametrize("eventq", ["shipped", "designed"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("sg", ["pool", "flat"])
def test_ping_pong_one_kick_one_interrupt(eventq: str, classes: int, sg: str) -> None:
    """One request in flight, both sides sleeping: each request costs exactly one kick (its
    class IOQ's south signal) and one MSI (its signal's event raising its event queue's signal)."""
    n = 300
    wl = {
        "requests": n,
        "arrival": {"kind": "closed", "in_flight": 1},
        "segments": {"kind": "fixed", "count": 2},
        "priority": _prio(classes),
    }
    run = simulate(MODEL, {"eventq": eventq, "sg": sg}, wl, {"batch": 1})
    c = counters(run)
    assert c["requests"] == n
    assert c["kicks"] == n
    assert c["interrupts"] == n
    assert c["interrupts_delivered"] == n
    assert c["interrupts_suppressed"] == 0
    assert c["spurious_device_wakeups"] == 0
    assert c["spurious_driver_wakeups"] == 0
    assert c["device_wakeups"] == n
    # every class was really exercised
    assert all(int(run.hist[k].sum()) > 0 for k in range(classes))


BURSTY = {
    "requests": 5000,
    "arrival": {"kind": "onoff", "rate": 2e7, "on_us": 5.0, "off_us": 60.0},
    "size": {"kind": "mix", "values": [64, 1500], "weights": [0.5, 0.5]},
    "segments": {"kind": "range", "low": 1, "high": 4},
    "priority": _prio(3, [0.5, 0.3, 0.2]),
}


@pytest.mark.parametrize("eventq", ["shipped", "designed"])
@pytest.mark.parametrize("sg", ["pool", "flat"])
@pytest.mark.parametrize(
    "engine",
    [{"batch": 8}, {"batch": 8, "driver": "poll"}, {"batch": 8, "device": "poll"}],
    ids=["sleep-irq", "poll-driver", "poll-device"],
)
def test_bursty_multiclass_completes_and_ends_clean(eventq: str, sg: str, engine: dict) -> None:
    """Small IOQs (ring-full stalls) and an event queue just big enough for one event per
    signal: run_model raises on a lost, duplicated or unreaped request or an unclean audit."""
    opts = {"eventq": eventq, "sg": sg, "queue_size": 8, "eventq_size": 3}
    run = simulate(MODEL, opts, BURSTY, engine)
    c = counters(run)
    assert c["requests"] == BURSTY["requests"]
    assert c["ring_full_stalls"] > 0
    assert [int(run.hist[k].sum()) for k in range(3)] == [
        int(x) for x in np.bincount(_workload(BURSTY).prio, minlength=3)
    ]
    assert _mdef().audit(run.instance) == []
    if engine.get("driver") == "poll":
        assert c["interrupts_delivered"] == 0


def _mdef():
    return get_model(MODEL)


def _workload(spec: dict, seed: int = 1):
    return generate(WorkloadSpec.model_validate(spec), seed)


def test_audit_sees_an_ioq_left_open_and_a_pending_signal() -> None:
    run = simulate(MODEL, {}, dict(BURSTY, requests=200), {"batch": 4})
    inst = run.instance
    inst.drv[DRV_OPEN_COUNT] = 1  # pretend the guest left an IOQ open
    north = int(inst.cfg[1]["vp_north"])
    inst.mem[north + 1] = 1  # q0's north mailbox: pending
    problems = " ".join(_mdef().audit(inst))
    assert "left open" in problems
    assert "q0: north signal still pending" in problems


def test_one_class_shipped_and_designed_are_the_same_system() -> None:
    wl = dict(BURSTY, priority=_prio(1))
    a = simulate(MODEL, {"eventq": "shipped"}, wl, {"batch": 8})
    b = simulate(MODEL, {"eventq": "designed"}, wl, {"batch": 8})
    assert np.array_equal(a.counters, b.counters)
    assert np.array_equal(a.causes, b.causes)
    assert np.array_equal(a.hist, b.hist)


def test_designed_raises_one_msi_per_vector() -> None:
    """Two classes signalled at once reach two event queues: two MSIs as designed, one (the
    second merged by the shared event queue's pending bit) as shipped."""
    ship = counters(simulate(MODEL, {"eventq": "shipped"}, BURSTY, {"batch": 8}))
    des = counters(simulate(MODEL, {"eventq": "designed"}, BURSTY, {"batch": 8}))
    assert des["interrupts"] > ship["interrupts"]
    assert ship["interrupts"] == ship["interrupts_delivered"]


# Loaded but stable (the device serves ~1.9 M req/s): completions pile up between interrupt
# handler runs, so the order the guest reaps them in shows in the latencies.
LOADED = {
    "requests": 20000,
    "arrival": {"kind": "poisson", "rate": 1.5e6},
    "priority": _prio(2, [0.8, 0.2]),
    "size": 1500,
}
LOADED_ENGINE = {"batch": 16, "service_ns": 300}


def test_priority_effect_designed_serves_class_1_first() -> None:
    """prio orders notifications, not requests: as designed the guest reaps the high class's
    completions first within a handler run. The device and the kicks are unchanged, so the gain
    is bounded by one handler run's reap time: a few per cent at the median."""
    wl = _workload(LOADED)
    rows = {
        ev: summarize(simulate(MODEL, {"eventq": ev}, LOADED, LOADED_ENGINE), wl)
        for ev in ("shipped", "designed")
    }
    ship, des = rows["shipped"], rows["designed"]
    print(
        f"class-1 p99: shipped {ship['c1_lat_p99_ns']:.0f} ns, designed {des['c1_lat_p99_ns']:.0f}"
        f" ns; p50: shipped {ship['c1_lat_p50_ns']:.0f}, designed {des['c1_lat_p50_ns']:.0f}"
    )
    # measured over seeds 1-6: the median gains 2.4-6.3 % in every one, the p99 moves either
    # way (-4.8 % to +4.9 %): the tail is set by the interrupt path, not by the reap order
    assert des["c1_lat_p99_ns"] <= 1.10 * ship["c1_lat_p99_ns"]
    assert des["c1_lat_p50_ns"] < ship["c1_lat_p50_ns"]
    assert des["requests"] == ship["requests"] == LOADED["requests"]
    # what it costs: a second vector means a second MSI whenever both classes signal at once
    assert des["interrupts"] > ship["interrupts"]


def test_check_refuses_a_batch_larger_than_a_queue_and_a_small_eventq() -> None:
    mdef = _mdef()
    needs = Needs(max_segments=1, max_size=1500, classes=4)
    assert "queue_size" in (mdef.check(mdef.options(queue_size=8), needs, 16) or "")
    msg = mdef.check(mdef.options(eventq_size=3), needs, 1)
    assert msg is not None and "eventq_size" in msg and "\n" not in msg
    assert mdef.check(mdef.options(eventq_size=4), needs, 1) is None


@pytest.mark.parametrize("eventq,evqs", [("shipped", 1), ("designed", 3)])
def test_layout_areas_line_aligned_per_queue(eventq: str, evqs: int) -> None:
    mdef = _mdef()
    lay = mdef.layout(
        mdef.options(queue_size=64, eventq=eventq), Needs(max_segments=2, max_size=1500, classes=3)
    )
    names = [a.name for a in lay.areas]
    for k in range(3):
        assert f"q{k}.ioq" in names and f"q{k}.sg_pool" in names
    assert [n for n in names if n.startswith("evq")] == [
        f"evq{e}.{part}" for e in range(evqs) for part in ("ioq", "events")
    ]
    for a in lay.areas:
        assert a.offset % 64 == 0, a.name
    ends = sorted((a.offset, a.offset + a.size) for a in lay.areas)
    assert all(e0 <= s1 for (_, e0), (s1, _) in zip(ends, ends[1:], strict=False))
    assert lay.area("evq0.events").size == 144 * 1024


def test_cli_layout_json() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vbench.cli",
            "layout",
            MODEL,
            "--queue-size",
            "64",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    d = json.loads(out)
    assert d["model"] == MODEL
    assert d["queue_size"] == 64
    names = [a["name"] for a in d["areas"]]
    assert names == ["q0.ioq", "q0.sg_pool", "evq0.ioq", "evq0.events"]
    assert d["total_bytes"] >= 56 + 32 * 64 + 56 + 32 * 1024 + 144 * 1024
