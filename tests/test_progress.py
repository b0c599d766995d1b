"""``vbench run``'s progress where stderr is not a terminal (CI logs, pipes): plain lines, each
stamped with the time since the command started, naming each model as it compiles and each
point as it finishes (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from vbench.cli import app
from vbench.progress import RunView

GOOD = Path(__file__).resolve().parent / "bad_inputs" / "good.toml"
STAMP = r"\[\d+:\d\d\] "


def test_plain_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["run", str(GOOD), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    stamped = [ln for ln in lines if re.match(STAMP, ln)]
    text = "\n".join(stamped)
    assert re.search(STAMP + r"good: 1 points × models = 2 runs, 1 job\(s\)", text)
    assert re.search(STAMP + r"compiling virtio-split \(sim\)", text)
    assert re.search(STAMP + r"compiling vbus-ioq \(sim\)", text)
    assert re.search(STAMP + r"point 1 of 1 done", text)
    assert "\x1b[" not in r.stderr  # no escape codes, no bar redrawn in a log
    assert stamped.index(next(s for s in stamped if "compiling virtio" in s)) < len(stamped) - 1


def test_quiet_prints_no_progress(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["run", str(GOOD), "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.stderr
    assert not any(re.match(STAMP, ln) for ln in r.stderr.splitlines())


def test_a_long_sweep_prints_about_every_five_percent(capsys) -> None:
    view = RunView(plain=True)
    plan = SimpleNamespace(name="long", points=[None] * 1000)
    view.starting(plan, 2000, 1, None)
    with view.running(1000) as on_point:
        assert on_point is not None
        for i in range(1000):
            on_point(i, SimpleNamespace() if i == 500 else None)
    lines = capsys.readouterr().err.splitlines()
    points = [ln for ln in lines if "done" in ln]
    assert 20 <= len(points) <= 22  # every 50 points, and the failure
    assert points[-1].endswith("point 1000 of 1000 done")
    assert any("(point 500 failed)" in ln for ln in points)
