"""The vbus models' ``signal_barrier`` option: shm-signal's store-then-check with wmb (as
AlacrityVM's lib/shm_signal.c ships) or with a full barrier.

The simulation's steps are atomic, so the choice changes only which barrier is counted and
charged. Natively it decides whether a run can lose a wakeup: with ``wmb`` the store
and the following load of the peer's flag may be reordered by x86 (tests/test_litmus.py), and a
sleeping vbus-prio run stalls, as does, now and then, a polling run of either (docs/native.md,
"A finding"); with ``mb`` it must never stall."""

from __future__ import annotations

import pytest
from conftest import counters, simulate

from vbench.costs import load_preset
from vbench.models import get_model
from vbench.native.runner import run_point
from vbench.simulation import EngineSpec
from vbench.workload import WorkloadSpec, generate

VBUS = ["vbus-ioq", "vbus-prio"]
WL = {
    "requests": 4000,
    "arrival": {"kind": "closed", "in_flight": 64},
    "size": 64,
    "segments": 1,
}


@pytest.mark.parametrize("device,driver", [("sleep", "interrupt"), ("poll", "poll")])
@pytest.mark.parametrize("model", VBUS)
def test_mb_turns_each_store_then_check_wmb_into_a_full_barrier(model, device, driver):
    eng = {"device": device, "driver": driver, "batch": 8}
    a = counters(simulate(model, {"signal_barrier": "wmb"}, WL, eng))
    b = counters(simulate(model, {"signal_barrier": "mb"}, WL, eng))
    assert a["requests"] == b["requests"] == WL["requests"]
    full_a, full_b = a["mb_driver"] + a["mb_device"], b["mb_driver"] + b["mb_device"]
    # at least one full barrier per inject (and one per enable / end of a wakeup)
    assert full_b - full_a >= b["signal_injects"] > 0
    # the barriers themselves are replaced, not added: the total stays (when the runs agree)
    if a["signal_injects"] == b["signal_injects"] and a["kicks"] == b["kicks"]:
        assert full_a + a["wmb"] == full_b + b["wmb"]


def test_the_option_is_off_by_default_and_validated():
    for model in VBUS:
        assert get_model(model).options().signal_barrier == "wmb"  # as vbus shipped
    with pytest.raises(ValueError, match="signal_barrier"):
        get_model("vbus-ioq").options(signal_barrier="full")


@pytest.mark.parametrize("device,driver", [("sleep", "interrupt"), ("poll", "poll")])
@pytest.mark.parametrize("model", VBUS)
def test_with_a_full_barrier_a_native_run_never_stalls(model, device, driver):
    """The configuration that stalled natively in every long run tried (sleeping, batch 32,
    the whole queue in flight), and polling, where a lost signal at the end of a run leaves the
    last completions unreaped (about 1 run in 20 as shipped, 2026-12-07): with ``mb`` every
    repetition completes and checks out."""
    n = 50_000
    spec = WorkloadSpec(requests=n, arrival={"kind": "closed", "in_flight": 256}, size=16)
    md = get_model(model)
    eng = EngineSpec(
        batch=32,
        device=device,
        driver=driver,
        kind="native",
        native={"repetitions": 3, "warmup": 0, "timeout_s": 20.0},
    )
    models = [(model, md, md.options(queue_size=256, signal_barrier="mb"))]
    rows = run_point(models, generate(spec, 3), eng, load_preset("kvm-modern"))
    assert [r["measured_requests"] for r in rows] == [n, n, n]
    for r in rows:
        assert r["measured_kicks"] == r["measured_kicks_received"]
        assert r["measured_interrupts"] == r["measured_interrupts_received"]
