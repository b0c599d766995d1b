"""vbench check end to end on the real configs/ci.toml: equal on a rerun, exit 1 after a
deliberate perturbation of a model option, exit 3 when invariants fail, exit 4 without a
comparable baseline; reports always written, GitHub step summary appended.

The sweep runs once per test module (a fixture) and the perturbations reuse its plan, so the
module costs a few small sweeps once the jitted models are compiled.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vbench import check, results
from vbench import config as cfgmod
from vbench.cli import app
from vbench.compare import Policy
from vbench.models import registry

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "configs" / "ci.toml"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run of ci.toml, a rerun, and a baseline made from the first run."""
    tmp = tmp_path_factory.mktemp("gate")
    first = check.run_config(CI, 1, tmp / "first")
    second = check.run_config(CI, 1, tmp / "second")
    check.update_baseline(results.load(first), tmp / "baseline")
    return {"tmp": tmp, "first": first, "second": second, "baseline": tmp / "baseline"}


def test_rerun_is_bit_identical_and_equal_to_the_baseline(gate: dict[str, Path]) -> None:
    base = check.load_baseline(gate["baseline"])
    cur, again = results.load(gate["first"]), results.load(gate["second"])
    res = check.judge(base, again, Policy(rtol=0.01), rerun=cur)
    assert res.code == check.EXIT_OK, res.headline
    t = res.comparison.table
    assert set(t.loc[t["kind"] == "exact", "verdict"]) == {"same"}
    assert (t["kind"] == "exact").sum() > 100  # every counter of every row was compared
    # the baseline leaves timing out; the run has it
    assert "sim_seconds" in cur.table.columns
    assert "sim_seconds" not in base.table.columns


def test_baseline_csv_reads_back_exactly(gate: dict[str, Path]) -> None:
    """The committed form is CSV; every exact and modeled value must survive the round trip."""
    base = check.load_baseline(gate["baseline"])
    cur = results.load(gate["first"])
    for col in base.table.columns:
        if cur.column_meta(col)["kind"] in ("exact", "modeled"):
            a, b = base.table[col].to_numpy(), cur.table[col].to_numpy()
            assert ((a == b) | ((a != a) & (b != b))).all(), col


def test_a_perturbed_model_option_is_a_regression(gate: dict[str, Path]) -> None:
    """The same config (same hash) run with one model option changed, as a code change to that
    model's default would: exit 1, and only that model's rows fail."""
    plan = cfgmod.plan(CI, [])
    for p in plan.points:
        p.models = [
            (lbl, md, o.model_copy(update={"txmitigation": 3}) if lbl == "vbus-ioq" else o)
            for lbl, md, o in p.models
        ]
    out = check.run_config(CI, 1, gate["tmp"] / "perturbed", plan=plan)
    res = check.judge(check.load_baseline(gate["baseline"]), results.load(out), Policy(rtol=0.01))
    assert res.code == check.EXIT_REGRESSION, res.headline
    failing = res.failing
    assert set(failing["label"]) == {"vbus-ioq"}
    assert "interrupts" in set(failing["metric"])
    md, js = check.write_reports(
        res,
        gate["tmp"] / "report",
        check.load_baseline(gate["baseline"]),
        results.load(out),
        Policy(),
    )
    assert "regression" in md.read_text() and "vbus-ioq" in md.read_text()
    doc = json.loads(js.read_text())
    assert doc["exit_code"] == 1 and doc["failing"] == len(failing)


def test_an_improvement_fails_too(gate: dict[str, Path]) -> None:
    """Exact counts must be equal: fewer kicks is still a change to be accepted on purpose."""
    base = check.load_baseline(gate["baseline"])
    cur = results.load(gate["first"])
    cur.table.loc[0, "kicks"] = cur.table.loc[0, "kicks"] - 1
    res = check.judge(base, cur, Policy(rtol=0.01))
    assert res.code == check.EXIT_REGRESSION
    assert set(res.failing["verdict"]) == {"better"}


def test_a_different_config_is_incomparable(gate: dict[str, Path]) -> None:
    base = check.load_baseline(gate["baseline"])
    cur = results.load(gate["first"])
    cur.meta["config_hash"] = "0" * 16
    assert check.judge(base, cur, Policy()).code == check.EXIT_BASELINE


def test_a_rerun_that_differs_is_exit_3(gate: dict[str, Path]) -> None:
    base = check.load_baseline(gate["baseline"])
    cur, again = results.load(gate["first"]), results.load(gate["second"])
    again.table.loc[3, "interrupts"] += 1
    res = check.judge(base, again, Policy(), rerun=cur)
    assert res.code == check.EXIT_INVARIANT and "not bit-identical" in res.headline


runner = CliRunner()


def test_cli_exit_codes(
    gate: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the command: 0 equal, 4 missing baseline (report still written, step summary
    appended), 3 when a model's end-of-run invariants fail."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    ok = runner.invoke(
        app,
        [
            "check",
            "--results",
            str(gate["second"]),
            "--baseline",
            str(gate["baseline"]),
            "--report",
            str(tmp_path / "ok"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "ok" / "check.md").is_file() and (tmp_path / "ok" / "check.json").is_file()
    assert "no regression" in summary.read_text()

    missing = runner.invoke(
        app,
        [
            "check",
            "--results",
            str(gate["second"]),
            "--baseline",
            str(tmp_path / "none"),
            "--report",
            str(tmp_path / "missing"),
        ],
    )
    assert missing.exit_code == 4
    assert json.loads((tmp_path / "missing" / "check.json").read_text())["exit_code"] == 4

    # a model whose audit finds a broken invariant: the gate must say 3, not judge the run
    mdef = registry()["vbus-ioq"]
    broken = dataclasses.replace(mdef, audit=lambda inst: ["a slot still owned by the device"])
    monkeypatch.setitem(registry(), "vbus-ioq", broken)
    monkeypatch.chdir(tmp_path)  # the run's own folder lands under tmp
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    bad = runner.invoke(
        app,
        [
            "check",
            "--jobs",
            "1",
            "--no-rerun",
            "--baseline",
            str(gate["baseline"]),
            "--report",
            str(tmp_path / "bad"),
        ],
    )
    assert bad.exit_code == 3, bad.output
    # the reports are written on this failure too
    doc = json.loads((tmp_path / "bad" / "check.json").read_text())
    assert doc["exit_code"] == 3 and "invariant" in doc["headline"]
    assert "invariant" in (tmp_path / "bad" / "check.md").read_text()
