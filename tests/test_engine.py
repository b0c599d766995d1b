"""The simulation engine over every model: protocol properties that must hold, whatever the
cost figures, and the engine's own end-of-run checks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_MODELS, assert_ping_pong, counters, simulate

from vbench.costs import load_preset
from vbench.errors import InvariantError
from vbench.memory import view
from vbench.models import get_model
from vbench.simulation import EngineSpec, run_model
from vbench.workload import WorkloadSpec, generate


def _id(p):
    return p[0] + "-" + "-".join(f"{k}={v}" for k, v in p[1].items())


@pytest.mark.parametrize("model,opts", ALL_MODELS, ids=[_id(p) for p in ALL_MODELS])
@pytest.mark.parametrize("segments", [1, 3])
def test_ping_pong_one_kick_one_interrupt(model, opts, segments):
    """One request in flight, both sides sleeping when idle: exactly one kick and one
    interrupt per request, no suppressed notifications, no spurious wakeups."""
    assert_ping_pong(model, opts, segments)


BUSY = {
    "requests": 5000,
    "arrival": {"kind": "onoff", "rate": 2e7, "on_us": 5.0, "off_us": 60.0},
    "size": {"kind": "mix", "values": [64, 1500], "weights": [0.5, 0.5]},
    "segments": {"kind": "range", "low": 1, "high": 4},
    "priority": {"classes": 2, "shares": [0.7, 0.3]},
}


@pytest.mark.parametrize(
    "model,opts",
    ALL_MODELS[::3] + ALL_MODELS[-4:],
    ids=[_id(p) for p in ALL_MODELS[::3] + ALL_MODELS[-4:]],
)
def test_every_request_completes_once_and_ring_ends_clean(model, opts):
    """run_model raises if a request is lost, duplicated, or the ring is not clean at the end;
    check the figures it reports add up too."""
    run = simulate(model, opts, BUSY, {"batch": 8})
    c = counters(run)
    assert c["requests"] == BUSY["requests"]
    assert int(run.hist.sum()) == BUSY["requests"]
    assert c["vm_exits"] >= c["kicks"]
    assert c["kicks"] + c["kicks_suppressed"] > 0
    assert 0 < c["lines_touched"] <= len(run.instance.mem) // 64


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_determinism_same_seed_same_counters(model):
    a = simulate(model, {}, BUSY, {"batch": 4}, seed=7)
    b = simulate(model, {}, BUSY, {"batch": 4}, seed=7)
    c = simulate(model, {}, BUSY, {"batch": 4}, seed=8)
    assert np.array_equal(a.counters, b.counters)
    assert np.array_equal(a.causes, b.causes)
    assert np.array_equal(a.hist, b.hist)
    assert not np.array_equal(a.counters, c.counters)


def test_event_idx_gives_no_more_kicks_than_flags_with_idle_device():
    wl = {"requests": 4000, "arrival": {"kind": "poisson", "rate": 2e5}}
    # one used.idx write and decision per completion: the suppression alone decides
    ev = counters(simulate("virtio-split", {"event_idx": True, "used_batch": 1}, wl, {"batch": 4}))
    fl = counters(simulate("virtio-split", {"event_idx": False, "used_batch": 1}, wl, {"batch": 4}))
    assert ev["kicks"] <= fl["kicks"]
    assert ev["interrupts"] <= fl["interrupts"]


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_kicks_per_request_fall_as_batch_grows(model):
    # closed loop with as many in flight as the batch: the device drains each batch and sleeps
    per_req = []
    for b in (1, 4, 16, 64):
        wl = {"requests": 6400, "arrival": {"kind": "closed", "in_flight": b}}
        c = counters(simulate(model, {}, wl, {"batch": b}))
        per_req.append(c["kicks"] / c["requests"])
    assert per_req == sorted(per_req, reverse=True)
    assert per_req[-1] < per_req[0] / 8


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_busy_polling_device_takes_no_kicks(model):
    wl = {"requests": 5000, "arrival": {"kind": "poisson", "rate": 1e6}}
    c = counters(simulate(model, {}, wl, {"batch": 1, "device": "poll"}))
    assert c["kicks"] / c["requests"] < 0.001
    sleeping = counters(simulate(model, {}, wl, {"batch": 1, "device": "sleep"}))
    assert sleeping["kicks"] > 100 * max(c["kicks"], 1)


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_polling_driver_completes_without_interrupts(model):
    wl = {"requests": 2000, "arrival": {"kind": "closed", "in_flight": 8}}
    c = counters(simulate(model, {}, wl, {"batch": 4, "driver": "poll"}))
    assert c["requests"] == 2000
    assert c["interrupts_delivered"] == 0


def test_lost_wakeup_is_detected():
    """A device mailbox left disabled means every kick is suppressed: the engine must stop
    with a lost-wakeup error rather than hang or report nonsense."""
    mdef = get_model("vbus-ioq")
    opts = mdef.options()
    wl = generate(WorkloadSpec(requests=50), 1)
    real_build = mdef.build

    def broken_build(o, needs):
        inst = real_build(o, needs)
        inst.mem[int(inst.cfg[0]["south"])] = 0  # south.enabled = 0: kicks never sent
        return inst

    broken = type(mdef)(**{**mdef.__dict__, "build": broken_build})
    with pytest.raises(InvariantError, match="lost wakeup"):
        run_model("broken", broken, opts, wl, EngineSpec(), load_preset("kvm-modern"))


def test_audit_detects_a_slot_left_with_the_device():
    run = simulate("vbus-ioq", {}, {"requests": 100})
    inst = run.instance
    mdef = get_model("vbus-ioq")
    assert mdef.audit(inst) == []
    ring = int(inst.cfg[0]["ring"])
    view(inst.mem, np.uint8)[ring + 25] = 1  # descriptor 0's sown
    assert any("owned by the device" in p for p in mdef.audit(inst))


def test_audit_detects_a_leaked_descriptor():
    run = simulate("virtio-split", {}, {"requests": 100})
    mdef = get_model("virtio-split")
    assert mdef.audit(run.instance) == []
    run.instance.drv[1] -= 1  # num_free
    assert mdef.audit(run.instance)


def test_time_breakdown_adds_up_and_presets_differ():
    wl = {"requests": 3000, "arrival": {"kind": "poisson", "rate": 3e5}}
    modern = simulate("virtio-split", {}, wl, preset="kvm-modern")
    old = simulate("virtio-split", {}, wl, preset="kvm-2009")
    # identical protocol decisions do not depend on costs only when timing is equal; at least
    # the interrupt exits must be charged under kvm-2009 (2 per interrupt) and not under modern
    co, cm = counters(old), counters(modern)
    assert co["vm_exits"] == co["kicks"] + 2 * co["interrupts_delivered"]
    assert cm["vm_exits"] == cm["kicks"]
    assert modern.causes.min() >= 0


def test_vbus_call_is_one_exit_per_request_and_no_interrupts():
    wl = {"requests": 500, "size": 256, "arrival": {"kind": "poisson", "rate": 2e5}}
    run = simulate("vbus-ioq", {"transport": "call"}, wl, {"batch": 4})
    c = counters(run)
    assert c["kicks"] == c["vm_exits"] == 500
    assert c["interrupts"] == 0 and c["interrupts_delivered"] == 0
    assert c["bytes_copied"] == 2 * 256 * 500  # parameters copied in and results copied out
    assert run.causes[7] > 0  # copies are charged


def test_windows_eoi_keeps_pending_until_the_handler_ends():
    """With the Windows policy the mailbox stays enabled during the handler, so completions
    that arrive meanwhile are merged by pending rather than by a disabled mailbox: the same
    requests complete; interrupts are not more than with the Linux policy plus spurious."""
    wl = {"requests": 3000, "arrival": {"kind": "poisson", "rate": 1e6}}
    lin = counters(simulate("vbus-ioq", {"eoi": "linux"}, wl, {"batch": 4}))
    win = counters(simulate("vbus-ioq", {"eoi": "windows"}, wl, {"batch": 4}))
    assert lin["requests"] == win["requests"] == 3000
    assert lin["interrupts"] > 0 and win["interrupts"] > 0


def test_tx_timer_batches_a_burst_into_one_kick():
    """The 2009 QEMU TX timer: a kick arms 150 us; requests arriving meanwhile ride along."""
    wl = {
        "requests": 20000,  # enough bursts that one early burst cannot decide the ratio
        "arrival": {"kind": "onoff", "rate": 5e6, "on_us": 20.0, "off_us": 400.0},
    }
    qemu_2009 = {"event_idx": False, "used_batch": 1}  # virtqueue_push per packet, no batches
    timer = counters(
        simulate("virtio-split", {**qemu_2009, "tx_timer_ns": 150_000.0}, wl, {"batch": 1})
    )
    plain = counters(simulate("virtio-split", qemu_2009, wl, {"batch": 1}))
    assert timer["requests"] == plain["requests"] == 20000
    assert timer["kicks"] < plain["kicks"] / 2
    assert timer["device_wakeups"] < plain["device_wakeups"]


PRIO_LOAD = {
    "requests": 30000,
    "arrival": {"kind": "poisson", "rate": 2e6},
    "priority": {"classes": 2, "shares": [0.8, 0.2]},
    "size": 1500,
}


def test_lookahead_serves_the_high_class_first_and_pays_for_its_reads():
    from vbench.simulation import summarize
    from vbench.workload import WorkloadSpec, generate

    wl = generate(WorkloadSpec.model_validate(PRIO_LOAD), 1)
    eng = {"batch": 16, "service_ns": 200}
    # completions published one by one, so that the order the device serves in shows
    fifo = summarize(simulate("virtio-split", {"used_batch": 1}, PRIO_LOAD, eng), wl)
    ahead = summarize(
        simulate("virtio-split", {"lookahead": 64, "used_batch": 1}, PRIO_LOAD, eng), wl
    )
    assert ahead["c1_hol_ns_per_req"] < fifo["c1_hol_ns_per_req"] / 4
    assert ahead["c1_lat_p99_ns"] < fifo["c1_lat_p99_ns"]
    assert ahead["c0_lat_p99_ns"] > fifo["c0_lat_p99_ns"]  # the low class pays
    assert ahead["desc_read"] > fifo["desc_read"]  # every entry examined is read


def test_fifo_ring_has_no_priority():
    """One FIFO queue: the high class waits behind lower-class requests (head-of-line)."""
    from vbench.simulation import summarize
    from vbench.workload import WorkloadSpec, generate

    wl = generate(WorkloadSpec.model_validate(PRIO_LOAD), 1)
    s = summarize(simulate("virtio-split", {}, PRIO_LOAD, {"batch": 16, "service_ns": 200}), wl)
    assert s["c1_hol_ns_per_req"] > 0
    assert abs(s["c1_lat_p50_ns"] - s["c0_lat_p50_ns"]) < 0.1 * s["c0_lat_p50_ns"]


BUSY_GUEST = {
    "requests": 8000,
    "arrival": {"kind": "poisson", "rate": 5.5e5},
    "priority": {"classes": 2, "shares": [0.95, 0.05]},
    "size": 1500,
}


def test_completion_work_is_charged_once_per_completion_on_the_guest():
    """``completion_ns``: the guest's work per completed request, on the guest's clock and in
    the ``driver`` cause, exactly once per completion (the synchronous call's too)."""
    from vbench.counters import CAUSES

    driver = CAUSES.index("driver")
    for model, opts in (("virtio-split", {}), ("vbus-ioq", {"transport": "call"})):
        wl = {"requests": 2000, "arrival": {"kind": "poisson", "rate": 2e5}}
        eng = {"batch": 4, "driver_ns": 100.0}
        plain = simulate(model, opts, wl, eng)
        busy = simulate(model, opts, wl, {**eng, "completion_ns": 700.0})
        assert plain.causes[driver] == pytest.approx(2000 * 100.0)
        assert busy.causes[driver] == pytest.approx(2000 * (100.0 + 700.0))
        # its latency includes the guest's work on it: every request's at least 700 ns more
        assert busy.lat_max.max() > plain.lat_max.max()


def test_busy_guest_finishes_the_completions_it_takes_first_first():
    """A guest busy with completions (each takes 1.5 us of its CPU): the order in which it
    takes them is the order in which they finish. A queue per class reaped highest first
    (virtio-mq) gives the urgent class a lower p50 than one FIFO ring, and than its own bulk
    class; with no guest work per completion the gap is what the rings' other differences
    make (measured: 3 us against 150 us)."""
    from vbench.simulation import summarize
    from vbench.workload import WorkloadSpec, generate

    wl = generate(WorkloadSpec.model_validate(BUSY_GUEST), 1)
    gaps = {}
    for work in (0.0, 1500.0):
        eng = {"batch": 16, "service_ns": 200, "completion_ns": work}
        fifo = summarize(simulate("virtio-split", {}, BUSY_GUEST, eng), wl)
        per_class = summarize(simulate("virtio-mq", {}, BUSY_GUEST, eng), wl)
        gaps[work] = fifo["c1_lat_p50_ns"] - per_class["c1_lat_p50_ns"]
        if work:
            assert per_class["c1_lat_p50_ns"] < 0.7 * per_class["c0_lat_p50_ns"]
    assert gaps[1500.0] > 0
    assert gaps[1500.0] > 5 * abs(gaps[0.0])


SATURATED = {
    "requests": 6000,
    "arrival": {"kind": "poisson", "rate": 4e6},  # far above what the device serves
    "priority": {"classes": 2, "shares": [0.9, 0.1]},
    "size": 1500,
}


@pytest.mark.parametrize("model", ["virtio-mq", "vbus-prio"])
def test_a_full_ring_stops_only_its_class_where_each_class_has_one(model):
    """A ring per class: when the bulk class's ring is full, urgent requests still go into
    theirs (a multi-queue guest stops only the full queue, Linux netif_stop_subqueue), so the
    urgent class does not wait behind the bulk backlog in the guest. With one submission queue
    for every class (the driver blocked by any full ring) it does."""
    import dataclasses

    from vbench.simulation import summarize
    from vbench.workload import WorkloadSpec, generate

    wl = generate(WorkloadSpec.model_validate(SATURATED), 1)
    mdef = get_model(model)
    opts = mdef.options(queue_size=16)
    eng = EngineSpec(batch=4, service_ns=2000.0)
    preset = load_preset("kvm-modern")
    per_class = run_model(model, mdef, opts, wl, eng, preset)
    in_order = dataclasses.replace(mdef, queue_per_class=False)
    one_queue = run_model(model, in_order, opts, wl, eng, preset)
    a, b = summarize(per_class, wl), summarize(one_queue, wl)
    assert counters(per_class)["requests"] == counters(one_queue)["requests"] == 6000
    assert counters(per_class)["ring_full_stalls"] > 0 < counters(one_queue)["ring_full_stalls"]
    assert a["c1_lat_p99_ns"] < b["c1_lat_p99_ns"] / 5
    assert a["c0_lat_p50_ns"] > 0.5 * b["c0_lat_p50_ns"]  # the bulk class still waits


def test_the_per_class_driver_with_one_class_is_the_in_order_driver(monkeypatch):
    """The per-class submission path (cursors, full flags, added marks), forced on for a
    one-class run, runs bit for bit as the in-order driver: it changes who may submit, never
    what one class does. (run_model takes the path only with several classes, so it is forced
    here through the parameter record.)"""
    from vbench import simulation

    build = simulation.engine_params

    def per_class(*args, **kwargs):
        params = build(*args, **kwargs)
        params["per_class"] = True
        return params

    mdef = get_model("virtio-mq")
    one_class = {k: v for k, v in SATURATED.items() if k != "priority"}
    wl = generate(WorkloadSpec.model_validate(one_class), 1)
    opts = mdef.options(queue_size=16)
    eng = EngineSpec(batch=4, service_ns=2000.0)
    preset = load_preset("kvm-modern")
    in_order = run_model("virtio-mq", mdef, opts, wl, eng, preset)
    monkeypatch.setattr(simulation, "engine_params", per_class)
    forced = run_model("virtio-mq", mdef, opts, wl, eng, preset)
    assert counters(in_order)["ring_full_stalls"] > 0  # the full-ring path is exercised
    assert forced.digest == in_order.digest
    assert np.array_equal(forced.counters, in_order.counters)


def test_lookahead_with_in_order_is_a_config_error():
    from vbench.config import plan
    from vbench.errors import ConfigError

    raw = {"models": [{"model": "virtio-split", "lookahead": 8, "in_order": True}]}
    with pytest.raises(ConfigError, match="IN_ORDER forbids"):
        plan(None, raw=raw)


@pytest.mark.parametrize(
    "model", ["virtio-split", "vbus-ioq", "virtio-packed", "virtio-mq", "vbus-prio"]
)
@pytest.mark.parametrize(
    "device,driver", [("poll", "poll"), ("poll", "interrupt"), ("sleep", "poll")]
)
def test_every_polling_combination_completes_on_bursts(model, device, driver):
    """Both sides polling used to starve the driver (each waited for the other, ties went to
    the device): the engine must make progress in every combination."""
    wl = {"requests": 2000, "arrival": {"kind": "onoff", "rate": 2e7, "on_us": 5.0, "off_us": 60.0}}
    c = counters(simulate(model, {}, wl, {"batch": 8, "device": device, "driver": driver}))
    assert c["requests"] == 2000
    if device == "poll":
        assert c["kicks"] <= 1
    if driver == "poll":
        assert c["interrupts_delivered"] == 0


@pytest.mark.parametrize(
    "model,opts,per_segment",
    [
        ("virtio-split", {"indirect": False}, True),
        ("virtio-split", {"indirect": True}, False),
        ("virtio-packed", {"indirect": False}, True),
        ("virtio-packed", {"indirect": True}, False),
        ("virtio-mq", {"indirect": False}, True),
        ("vbus-ioq", {"sg": "pool"}, False),
        ("vbus-ioq", {"sg": "flat"}, False),
        ("vbus-prio", {}, False),
    ],
)
def test_ring_slots_count_the_ring_entries_each_request_took(model, opts, per_segment):
    """E3's ring capacity: a chain takes one ring entry per segment (the device walks as many,
    an independent count), an indirect table, an IOQ entry or a flat copy one per request."""
    workload = {
        "requests": 3000,
        "arrival": {"kind": "closed", "in_flight": 48},
        "segments": {"kind": "range", "low": 1, "high": 6},
    }
    c = counters(simulate(model, {"queue_size": 64, **opts}, workload, {"batch": 4}))
    assert c["requests"] == 3000
    if per_segment:
        assert c["segments"] > c["requests"]  # the workload does have chains
    assert c["ring_slots"] == (c["segments"] if per_segment else c["requests"])
