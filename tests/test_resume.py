"""Results survive everything: the journal, --resume, signals, unwritable folders, --verify,
and runs longer than memory (the window the engine is fed through)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import error_line
from typer.testing import CliRunner

from vbench import config, journal, simulation, sweep
from vbench.cli import app
from vbench.costs import load_preset
from vbench.metrics import describe
from vbench.models import get_model
from vbench.workload import CHUNK, WorkloadSpec, WorkloadStream, generate

ROOT = Path(__file__).resolve().parent.parent

SMALL = """
name = "small"
seed = 3
[workload]
requests = 400
arrival = { kind = "poisson", rate = 1.5e6 }
segments = { kind = "range", low = 1, high = 3 }
[engine]
batch = 4
[[models]]
model = "virtio-split"
queue_size = 64
[[models]]
model = "vbus-ioq"
queue_size = 64
[sweep.product]
"engine.batch" = [1, 4, 16]
"engine.device" = ["sleep", "poll"]
"""


def non_timing(df: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in df.columns if describe(c) is None or describe(c).kind != "timing"]
    return df[keep].reset_index(drop=True)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def failed(r, code: int) -> str:
    """The error line of a CliRunner result that must have exited with ``code``."""
    assert r.exit_code == code, (r.exit_code, r.output)
    return error_line(r.stderr, only=False)


# --- the journal -----------------------------------------------------------------------------
def test_point_key_covers_config_seed_and_version(monkeypatch):
    raw = {"workload": {"requests": 10}}
    k = journal.point_key(raw, 1)
    assert k == journal.point_key({"workload": {"requests": 10}}, 1)
    assert k != journal.point_key({"workload": {"requests": 11}}, 1)
    assert k != journal.point_key(raw, 2)
    monkeypatch.setattr(journal, "__version__", "0.0.0-other")
    assert k != journal.point_key(raw, 1)


def test_point_key_changes_when_the_code_does(tmp_path, monkeypatch):
    """A development checkout with a model edited between a run and its resume reruns it."""
    raw = {"workload": {"requests": 10}}
    k = journal.point_key(raw, 1)
    pkg = tmp_path / "vbench"
    (pkg / "models").mkdir(parents=True)
    (pkg / "journal.py").write_text("# journal")
    model = pkg / "models" / "ring.py"
    model.write_text("A = 1\n")
    monkeypatch.setattr(journal.jit, "_PKG", pkg)
    journal.code_hash.cache_clear()
    try:
        k1 = journal.point_key(raw, 1)
        model.write_text("A = 2\n")
        journal.code_hash.cache_clear()
        assert k1 != journal.point_key(raw, 1) and k1 != k
    finally:
        journal.code_hash.cache_clear()


def test_journal_round_trip_and_a_cut_line_is_ignored(tmp_path):
    j = journal.Journal.start(tmp_path / "r", {"config": {}, "config_hash": "h"}, 2)
    hist = [(0, np.array([3, 5], np.int32), np.array([7, 1], np.int64))]
    row = {"point": 0, "label": "a", "x": 1.0 / 3.0, "n": np.int64(5), "_hist": hist}
    j.append("k0", 0, [row])
    with j.path.open("a") as f:
        f.write('{"key": "k1", "point": 1, "rows": [{"lab')  # a crash mid-write
    back, info = journal.Journal.resume(tmp_path / "r")
    assert info["config_hash"] == "h"
    assert back.skipped_lines == 1
    assert back.rows_for("k1", 1) is None
    (got,) = back.rows_for("k0", 4)
    assert got["point"] == 4 and got["x"] == 1.0 / 3.0 and got["n"] == 5
    c, idx, cnt = got["_hist"][0]
    assert c == 0 and idx.tolist() == [3, 5] and cnt.tolist() == [7, 1]


def test_start_refuses_a_folder_that_holds_a_run(tmp_path):
    journal.Journal.start(tmp_path / "r", {"config": {}}, 1)
    with pytest.raises(journal.VbenchError, match="already holds a run"):
        journal.Journal.start(tmp_path / "r", {"config": {}}, 1)


# --- the CLI: resume, interruption, unwritable folders ----------------------------------------
def test_resume_after_a_failure_to_write_completes_the_same_table(small, tmp_path, monkeypatch):
    full = tmp_path / "full"
    assert cli("run", str(small), "--out", str(full), "-q").exit_code == 0
    # the disk fills up after three points: the sweep stops, keeps them, says how to go on
    real = journal.Journal.append
    calls = {"n": 0}

    def append(self, key, point, rows):
        calls["n"] += 1
        if calls["n"] > 3:
            raise journal._io_error(
                "the journal", self.path, OSError(28, "No space left on device")
            )
        real(self, key, point, rows)

    monkeypatch.setattr(journal.Journal, "append", append)
    part = tmp_path / "part"
    r = cli("run", str(small), "--out", str(part), "-q")
    line = failed(r, 1)
    assert "disk full" in line and f"vbench run --resume {part}" in line
    assert len((part / journal.JOURNAL_FILE).read_text().splitlines()) == 3
    assert json.loads((part / "meta.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(journal.Journal, "append", real)
    r = cli("run", "--resume", str(part), "-q")
    assert r.exit_code == 0, r.output
    meta = json.loads((part / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["resumed_points"] == 3
    a = pd.read_parquet(full / "results.parquet")
    b = pd.read_parquet(part / "results.parquet")
    pd.testing.assert_frame_equal(non_timing(a), non_timing(b))


def test_a_signal_during_a_journal_write_keeps_the_point_in_the_partial_table(
    small, tmp_path, monkeypatch
):
    """Ctrl-C landing while a point is journaled: the point is in the journal *and* the table
    written at the interrupt (CI once saw 12 points journaled and 11 in the table)."""
    real = journal.Journal.append
    calls = {"n": 0}

    def append(self, key, point, rows):
        real(self, key, point, rows)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # held until the point is fully recorded

    monkeypatch.setattr(journal.Journal, "append", append)
    part = tmp_path / "part"
    r = cli("run", str(small), "--out", str(part), "-q", "-j", "1")
    assert r.exit_code == 130, r.output
    journaled = {
        json.loads(ln)["point"] for ln in (part / journal.JOURNAL_FILE).read_text().splitlines()
    }
    assert journaled == {0, 1, 2}
    assert set(pd.read_parquet(part / "results.parquet")["point"]) == journaled


@pytest.mark.parametrize(
    "sig,exc", [(signal.SIGTERM, journal.Interrupted), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_handler_run_inside_the_block_is_deferred_to_its_end(sig, exc):
    """The race CI hit twice: a signal that arrived just before the block has its Python
    handler run at the next bytecode, inside it. Calling the current handler there, as Python
    would, must not raise until the block ends (with pthread_sigmask alone it raised at once)."""
    steps = []
    # what SIGINT had before: Python's default_int_handler, or SIG_IGN when the suite was
    # started in the background by a shell without job control (nohup ... &)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with journal.interrupt_handlers(), pytest.raises(exc), journal.signals_held():
        assert signal.getsignal(sig) is not before[sig]  # vbench's handler is in place
        signal.getsignal(sig)(sig, None)
        steps.append("the record and the table, both")
    assert steps == ["the record and the table, both"]
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_resume_errors_are_one_line(small, tmp_path):
    done = tmp_path / "done"
    assert cli("run", str(small), "--out", str(done), "-q").exit_code == 0
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("seed = 3", "seed = 4"))
    assert "different config" in failed(cli("run", str(other), "--resume", str(done)), 2)
    assert "no such results folder" in failed(cli("run", "--resume", str(tmp_path / "x")), 2)
    (tmp_path / "plain").mkdir()
    assert "no run.json" in failed(cli("run", "--resume", str(tmp_path / "plain")), 2)
    assert "already holds a run" in failed(cli("run", str(small), "--out", str(done)), 2)


def test_unwritable_or_full_results_folder_fails_before_the_sweep(small, tmp_path, monkeypatch):
    line = failed(cli("run", str(small), "--out", "/dev/null/results"), 2)
    assert "cannot write the results folder /dev/null/results" in line

    class Usage:
        free = 1024

    monkeypatch.setattr(journal.shutil, "disk_usage", lambda _p: Usage)
    line = failed(cli("run", str(small), "--out", str(tmp_path / "r")), 2)
    assert "not enough disk space" in line and "--out" in line


def test_verify_passes_on_the_simulation_and_exits_3_on_a_difference(small, tmp_path, monkeypatch):
    r = cli("run", str(small), "--verify", "--out", str(tmp_path / "v"))
    assert r.exit_code == 0, r.output
    assert "verified" in r.stderr
    digests = pd.read_parquet(tmp_path / "v" / "results.parquet")["event_digest"]
    assert digests.str.len().eq(16).all() and digests.nunique() > 1

    real = sweep.run_point
    seen: dict[int, int] = {}

    def flaky(point):
        rows = real(point)
        seen[point.index] = seen.get(point.index, 0) + 1
        if point.index == 2 and seen[point.index] == 2:
            rows[0]["event_digest"] = "0" * 16
        return rows

    monkeypatch.setattr(sweep, "run_point", flaky)
    line = failed(cli("run", str(small), "--verify", "--out", str(tmp_path / "w")), 3)
    assert "not deterministic" in line and "point 2" in line


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vbench.cli", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("sig,code,jobs", [(signal.SIGINT, 130, "1"), (signal.SIGTERM, 143, "2")])
def test_default_sweep_interrupted_then_resumed_equals_an_uninterrupted_run(
    tmp_path, sig, code, jobs
):
    """The issue's acceptance test: configs/default.toml stopped halfway by a signal, resumed."""
    args = ["configs/default.toml", "--set", "workload.requests=20000", "-q", "-j", jobs]
    raw = config.read_toml(ROOT / "configs/default.toml")
    points = len(config.expand(raw)[0])
    models = len(raw["models"])
    part = tmp_path / "part"
    p = _spawn(["run", *args, "--out", str(part)])
    journal_file = part / journal.JOURNAL_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if journal_file.exists() and len(journal_file.read_text().splitlines()) >= points // 2:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the sweep ended before it could be interrupted"
    workers = _children(p.pid)
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)  # Ctrl-C in a terminal: the whole foreground group
    else:
        os.kill(p.pid, sig)  # a service manager: the main process only
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("vbench: error: interrupted:")
    assert f"vbench run --resume {part}" in lines[-1]
    assert "Traceback" not in err
    saved = len(journal_file.read_text().splitlines())
    assert points // 2 <= saved < points
    deadline = time.monotonic() + 10  # killed workers are reaped by init: give it a moment
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    assert [w for w in workers if Path(f"/proc/{w}").exists()] == []
    partial = pd.read_parquet(part / "results.parquet")  # every finished point is readable
    assert partial["point"].nunique() == saved

    r = subprocess.run(
        [sys.executable, "-m", "vbench.cli", "run", "--resume", str(part), "-q", "-j", jobs],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    full = tmp_path / "full"
    r = subprocess.run(
        [sys.executable, "-m", "vbench.cli", "run", *args, "--out", str(full)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    a = pd.read_parquet(full / "results.parquet")
    b = pd.read_parquet(part / "results.parquet")
    assert len(a) == points * models
    pd.testing.assert_frame_equal(non_timing(a), non_timing(b))
    assert json.loads((part / "meta.json").read_text())["resumed_points"] == saved


# --- runs longer than memory -------------------------------------------------------------------
BIG = WorkloadSpec.model_validate(
    {
        "requests": 3 * CHUNK + 1234,
        "arrival": {"kind": "onoff", "rate": 2e7, "on_us": 5.0, "off_us": 60.0},
        "segments": {"kind": "range", "low": 1, "high": 4},
        "priority": {"classes": 2, "shares": [0.7, 0.3]},
    }
)


def test_the_stream_draws_the_same_requests_as_the_whole_workload():
    whole = generate(BIG, 5)
    parts = list(WorkloadStream(BIG, 5).chunks())
    assert [lo for lo, _ in parts] == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]
    for f, name in enumerate(("arrival_ns", "size", "segments", "prio", "direction")):
        joined = np.concatenate([a[f] for _, a in parts])
        assert joined.tobytes() == getattr(whole, name).tobytes(), name
    # request i does not depend on how many follow it (every kind, onoff included)
    short = generate(BIG.model_copy(update={"requests": 1000}), 5)
    assert short.arrival_ns.tobytes() == whole.arrival_ns[:1000].tobytes()
    assert short.prio.tobytes() == whole.prio[:1000].tobytes()


@pytest.mark.parametrize("model", ["virtio-split", "vbus-ioq"])
def test_a_run_fed_through_a_small_window_equals_one_held_whole(model, monkeypatch):
    """The engine pauses when it needs requests beyond its window and resumes exactly: same
    counters, histograms, causes, event digest and workload fingerprint."""
    md = get_model(model)
    opts = md.options(queue_size=128)
    eng = simulation.EngineSpec(batch=16)
    preset = load_preset("kvm-modern")
    wl = generate(BIG, 5)
    a = simulation.run_model(model, md, opts, wl, eng, preset)
    monkeypatch.setattr(simulation, "WINDOW", 2 * CHUNK)
    b = simulation.run_model(
        model, md, opts, WorkloadStream(BIG, 5), eng, preset, simulation.needs_of(wl)
    )
    assert simulation._window_size(BIG.requests) == 2 * CHUNK
    assert (a.counters == b.counters).all()
    assert (a.hist == b.hist).all() and (a.causes == b.causes).all()
    assert a.digest == b.digest
    assert a.workload_fingerprint == b.workload_fingerprint == wl.fingerprint()
