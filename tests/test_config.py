"""Sweep configs: expansion, overrides and one-line errors for every kind of mistake."""

from __future__ import annotations

import pytest

from vbench.config import expand, parse_value, plan, set_key
from vbench.errors import ConfigError

BASE = {
    "name": "t",
    "seed": 3,
    "workload": {"requests": 100},
    "engine": {"batch": 4},
    "models": [
        {"model": "virtio-split", "queue_size": 64},
        {"model": "vbus-ioq", "label": "ioq", "queue_size": 64},
    ],
}


def with_sweep(**sweep):
    return {**BASE, "sweep": sweep}


def test_product_and_zip_expand_in_order():
    raw = with_sweep(
        product={"engine.batch": [1, 2, 4], "workload.segments": [1, 3]},
        zip={"workload.priority.classes": [1, 2], "workload.priority.shares": [[1.0], [0.5, 0.5]]},
    )
    points, swept = expand(raw)
    assert len(points) == 3 * 2 * 2
    assert swept == [
        "engine.batch",
        "workload.segments",
        "workload.priority.classes",
        "workload.priority.shares",
    ]
    params = [p for p, _ in points]
    assert params[0] == {
        "engine.batch": 1,
        "workload.segments": 1,
        "workload.priority.classes": 1,
        "workload.priority.shares": [1.0],
    }
    assert params[-1]["engine.batch"] == 4 and params[-1]["workload.priority.classes"] == 2
    # the zip group moves together
    assert all(len(p["workload.priority.shares"]) == p["workload.priority.classes"] for p in params)


def test_model_options_are_sweepable_by_label():
    raw = with_sweep(
        product={"models.virtio-split.event_idx": [True, False], "models.ioq.txmitigation": [1, 5]}
    )
    p = plan(None, raw=raw)
    assert len(p.points) == 4
    opts = [(pt.models[0][2].event_idx, pt.models[1][2].txmitigation) for pt in p.points]
    assert opts == [(True, 1), (True, 5), (False, 1), (False, 5)]


def test_set_overrides_before_expansion():
    p = plan(None, ["engine.batch=8", "workload.requests=50", 'models.ioq.sg="flat"'], raw=BASE)
    pt = p.points[0]
    assert pt.engine.batch == 8 and pt.workload.requests == 50
    assert pt.models[1][2].sg == "flat"
    assert p.raw["engine"]["batch"] == 8  # the config as run records the override


def test_parse_value_takes_toml_values_and_falls_back_to_strings():
    assert parse_value("3") == 3 and parse_value("2.5") == 2.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("poll") == "poll"


def test_costs_override_a_preset_figure():
    p = plan(None, ["costs.exit_ns=1234"], raw=BASE)
    assert p.points[0].preset.value("exit_ns") == 1234


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda r: r["engine"].update(bach=3), "unknown key 'bach' (did you mean 'batch'?)"),
        (lambda r: r["workload"].update(sizee=3), "did you mean 'size'"),
        (lambda r: r.update(enigne={}), "did you mean 'engine'"),
        (lambda r: r["engine"].update(batch=128), "batch = 128 is larger than the ring"),
        (lambda r: r["models"][0].update(queue_size=100), "not a power of two"),
        (lambda r: r["models"][0].update(evnt_idx=True), "did you mean 'event_idx'"),
        (lambda r: r["models"][0].update(model="virtio-splat"), "unknown model 'virtio-splat'"),
        (lambda r: r["models"][1].update(label="virtio-split"), "two models labelled"),
        (lambda r: r["workload"].update(priority={"classes": 2, "shares": [1.0]}), "workload"),
        (lambda r: r.update(preset="kvm-1999"), "preset 'kvm-1999' not found"),
        (lambda r: r.update(seed=-1), "seed must be"),
        (lambda r: r.update(models=[]), "no models"),
    ],
)
def test_mistakes_end_in_one_line(mutate, needle):
    import copy

    raw = copy.deepcopy(BASE)
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        plan(None, raw=raw)
    msg = str(e.value)
    assert needle in msg
    assert "\n" not in msg


def test_chain_longer_than_queue_without_indirect_is_refused():
    raw = {**BASE, "workload": {"requests": 10, "segments": 100}}
    raw["models"] = [{"model": "virtio-split", "queue_size": 64, "indirect": False}]
    with pytest.raises(ConfigError, match="longer than the queue"):
        plan(None, raw=raw)


def test_a_bad_point_is_named():
    raw = with_sweep(product={"engine.batch": [4, 256]})
    with pytest.raises(ConfigError, match=r"point 1: engine.batch=256"):
        plan(None, raw=raw)


def test_bad_sweep_shapes():
    with pytest.raises(ConfigError, match="one length"):
        expand(with_sweep(zip={"engine.batch": [1, 2], "seed": [1]}))
    with pytest.raises(ConfigError, match="non-empty list"):
        expand(with_sweep(product={"engine.batch": 4}))
    with pytest.raises(ConfigError, match="did you mean 'product'"):
        expand(with_sweep(prodcut={}))


def test_set_key_errors():
    raw = {"models": [{"model": "vbus-ioq"}]}
    with pytest.raises(ConfigError, match="no model labelled"):
        set_key(raw, "models.nope.txmitigation", 3)
    with pytest.raises(ConfigError, match="not a config section"):
        set_key(raw, "engin.batch", 3)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        plan(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        plan(bad)


def test_shipped_configs_validate(tmp_path, monkeypatch):
    """Every shipped config validates. One that names the machine's own "calibrated" preset
    fails on a machine that has not run vbench calibrate, with the line that says so, and
    validates once the preset is there (any preset file of that name will do here)."""
    import shutil
    from pathlib import Path

    import pytest

    from vbench.costs import calibrated_path
    from vbench.errors import ConfigError

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    root = Path(__file__).resolve().parent.parent / "configs"
    files = sorted(root.glob("*.toml"))
    assert files
    needs_calibration = []
    for f in files:
        if 'preset = "calibrated"' in f.read_text():
            needs_calibration.append(f)
            with pytest.raises(ConfigError, match="vbench calibrate"):
                plan(f)
            continue
        assert plan(f).points
    assert needs_calibration  # configs/validate.toml
    dest = calibrated_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).resolve().parent.parent / "vbench/presets/kvm-modern.toml", dest)
    for f in needs_calibration:
        assert plan(f).points


def test_several_zip_groups_are_separate_axes():
    raw = {
        **BASE,
        "sweep": {
            "zip": [
                {"engine.batch": [1, 2], "workload.requests": [10, 20]},
                {"models.virtio-split.event_idx": [True, False]},
            ]
        },
    }
    points, swept = expand(raw)
    assert len(points) == 4
    assert swept == ["engine.batch", "workload.requests", "models.virtio-split.event_idx"]
    assert all(p["workload.requests"] == 10 * p["engine.batch"] for p, _ in points)


# --- [report] metrics -----------------------------------------------------------------------------
def test_report_metrics_are_accepted_and_leave_the_config_hash_alone():
    """[report] says how results are shown: a config with one is the same config (same hash:
    its baseline and a run to resume still match), and configs/ci.toml keeps its baseline's."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    raw = {**BASE, "report": {"metrics": ["kicks_per_req", "lat_p99_ns"]}}
    assert plan(None, raw=raw).config_hash == plan(None, raw=BASE).config_hash
    baseline = json.loads((root / "results/baseline/meta.json").read_text())
    assert plan(root / "configs/ci.toml").config_hash == baseline["config_hash"]


def test_shipped_configs_declare_headline_metrics_their_runs_produce():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for name, first in (("default", "lat_p99_ns"), ("priority", "c1_lat_p99_ns")):
        p = plan(root / f"configs/{name}.toml")
        assert p.raw["report"]["metrics"][0] == first


@pytest.mark.parametrize(
    "report, needle",
    [
        ({"metrics": ["lat_p99"]}, "unknown metric 'lat_p99'"),
        ({"metrics": ["c1_lat_p99_ns"]}, "(did you mean 'c0_lat_p99_ns'?)"),
        ({"metrics": ["measured_requests_per_s"]}, "unknown metric 'measured_requests_per_s'"),
        ({"metrics": ["point"]}, "unknown metric 'point'"),
        ({"metrics": ["kicks_per_req", "kicks_per_req"]}, "lists 'kicks_per_req' twice"),
        ({"metrics": []}, "report.metrics must be a non-empty list"),
        ({"metrics": "lat_p99_ns"}, "report.metrics must be a non-empty list"),
        ({"metrics": [1]}, "report.metrics must be a non-empty list"),
        ({}, "report.metrics must be a non-empty list"),
        ({"metric": ["lat_p99_ns"]}, "unknown key 'report.metric' (did you mean 'metrics'?)"),
        (["lat_p99_ns"], "report must be a table"),
    ],
)
def test_bad_report_is_one_line(report, needle):
    with pytest.raises(ConfigError) as e:
        plan(None, raw={**BASE, "report": report})
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_report_is_not_swept_and_can_be_set():
    raw = {**BASE, "sweep": {"product": {"report.metrics": [["lat_p99_ns"], ["kicks_per_req"]]}}}
    with pytest.raises(ConfigError, match="not what runs"):
        plan(None, raw=raw)
    p = plan(None, ["report.metrics=['kicks_per_req']"], raw=BASE)
    assert p.raw["report"] == {"metrics": ["kicks_per_req"]}
