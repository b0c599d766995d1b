"""vbench sensitivity: a verdict that a figure's range can flip is reported as flipped (by that
figure), one no figure can flip as robust. The runs are faked from the case's preset so the
verdicts are hand-built; one end-to-end run of the command checks the folder it writes."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vbench import sensitivity as S
from vbench.config import plan
from vbench.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "configs/ci.toml"


def fake_run(p) -> list[dict]:
    """Two models at three points. "fast" costs 100 ns per request plus a tenth of the exit
    figure: at the preset's 500 ns it beats "steady" (160 ns), at the range's high end (700 ns)
    it does not. Their p99s are 10 and 20 us whatever the figures."""
    exit_ns = p.points[0].preset.value("exit_ns")
    rows = []
    for point in range(3):
        rows.append(
            {
                "point": point,
                "label": "fast",
                "time_total_ns_per_req": 100 + exit_ns / 10,
                "lat_p99_ns": 10_000.0,
            }
        )
        rows.append(
            {
                "point": point,
                "label": "steady",
                "time_total_ns_per_req": 160.0,
                "lat_p99_ns": 20_000.0,
            }
        )
    return rows


def test_a_verdict_one_figure_can_flip_is_reported_with_that_figure() -> None:
    todo = S.cases(plan(CI), ["exit_ns", "wake_ns"])
    assert [c.name for c in todo] == [
        "base",
        "exit_ns low",
        "exit_ns high",
        "wake_ns low",
        "wake_ns high",
    ]
    table = S.run_cases(CI, [], todo, fake_run)
    findings = {f.metric: f for f in S.assess(table)}
    time = findings["time_total_ns_per_req"]
    assert time.base == {0: 1, 1: 1, 2: 1}  # "fast" ahead at the preset's figures
    assert not time.robust and time.robust_points == 0
    assert time.flips == {"exit_ns high": [0, 1, 2]}  # 170 > 160: "steady" ahead there
    assert "exit_ns high (3 points)" in time.flip_words()
    assert math.isclose(time.ratios["base"], 150 / 160)
    p99 = findings["lat_p99_ns"]
    assert p99.robust and p99.robust_points == 3 and p99.flips == {}


def test_a_tie_is_neither_model_ahead() -> None:
    assert S.verdict(100.0, 101.0, -1) == 0  # 1 % apart: within the tie band
    assert S.verdict(100.0, 110.0, -1) == 1  # lower is better: the first is ahead
    assert S.verdict(100.0, 110.0, +1) == -1


def test_cases_refuse_an_unknown_figure_and_skip_ends_equal_to_the_value() -> None:
    with pytest.raises(ConfigError, match="not a cost figure"):
        S.cases(plan(CI), ["exit_nsx"])
    # kvm-modern's irq_exits is 0 with range 0..2: only its high end is a case
    names = [c.name for c in S.cases(plan(CI), ["irq_exits"])]
    assert names == ["base", "irq_exits high"]


def test_one_model_is_refused_with_one_line(tmp_path: Path) -> None:
    one = tmp_path / "one.toml"
    one.write_text('name = "one"\n[workload]\nrequests = 100\n[[models]]\nmodel = "virtio-split"\n')
    with pytest.raises(ConfigError, match="second"):
        S.check_comparable(plan(one))


def test_the_command_writes_cases_findings_and_tornados(tmp_path: Path) -> None:
    out = tmp_path / "sens"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vbench.cli",
            "sensitivity",
            str(CI),
            "--quick",
            "--figure",
            "exit_ns",
            "--set",
            "sweep.product.engine.batch=[16]",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    assert "case 3/3: exit_ns high = 700" in r.stderr
    cases = pd.read_csv(out / "cases.csv")
    assert set(cases["case"]) == {"base", "exit_ns low", "exit_ns high"}
    findings = pd.read_csv(out / "findings.csv")
    assert len(findings) == 2 * math.comb(cases["label"].nunique(), 2)
    assert len(list(out.glob("tornado-*.png"))) == len(findings)
    assert "vbus-ioq vs virtio-split" in r.stdout or "virtio-split vs vbus-ioq" in r.stdout
    replot = subprocess.run(
        [sys.executable, "-m", "vbench.cli", "plot", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert replot.returncode == 0, replot.stderr
    assert len(list((out / "figures").glob("tornado-*.png"))) == len(findings)


def test_an_interrupted_sensitivity_keeps_its_finished_cases() -> None:
    """Each finished case reaches on_table (the CLI writes cases.csv there) before the next
    runs: a stop in the third case leaves the first two."""
    from vbench.exits import Stop

    todo = S.cases(plan(CI), ["exit_ns"])
    kept: list[pd.DataFrame] = []
    calls = []

    def run(p):
        calls.append(p)
        if len(calls) == 3:
            raise Stop("interrupted", 130)
        return fake_run(p)

    with pytest.raises(Stop):
        S.run_cases(CI, [], todo, run, on_table=kept.append)
    assert list(kept[-1]["case"].unique()) == ["base", "exit_ns low"]
