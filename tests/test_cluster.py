"""vbench run --cluster: a sweep on Dask gives the local pool's table, journal and resume.

The tests that start Dask (a LocalCluster, or a scheduler and workers of their own) are skipped
when the optional ``distributed`` is not installed (``pip install -e '.[cluster]'``); the
option's parsing and its error lines are checked either way.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import error_line
from test_resume import SMALL, non_timing

from vbench import cluster
from vbench.errors import VbenchError
from vbench.journal import JOURNAL_FILE

ROOT = Path(__file__).resolve().parent.parent
DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(
    not DASK, reason="distributed is not installed (pip install -e '.[cluster]')"
)

# test_resume's small sweep, 12 points of about 0.1-0.3 s each on one core: long enough to
# interrupt between two of them
SWEEP = SMALL.replace("requests = 400", "requests = 300000").replace(
    '"engine.batch" = [1, 4, 16]', '"engine.batch" = [1, 2, 4, 8, 16, 64]'
)
POINTS = 12


def vbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vbench.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def table(folder: Path) -> pd.DataFrame:
    return non_timing(pd.read_parquet(folder / "results.parquet"))


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cluster") / "sweep.toml"
    p.write_text(SWEEP)
    return p


@pytest.fixture(scope="module")
def local_table(sweep_file: Path) -> pd.DataFrame:
    """The sweep on the local pool, one process: what every cluster run must give."""
    out = sweep_file.parent / "jobs1"
    r = vbench("run", str(sweep_file), "--out", str(out), "-q", "-j", "1")
    assert r.returncode == 0, r.stderr
    df = table(out)
    assert len(df) == 2 * POINTS and df["event_digest"].str.len().eq(16).all()
    return df


# --- the option and its errors (no Dask needed) -----------------------------------------------
def test_addresses_parse_and_bad_ones_say_what_is_wanted():
    assert cluster.parse("local:3") == cluster.ClusterSpec("local:3", 3)
    assert cluster.parse("tcp://10.0.0.5:8786").workers == 0
    assert cluster.parse("tcp://[::1]:8786").address == "tcp://[::1]:8786"
    for bad in ("local:0", "local:x", "local:", "tcp://host", "host:8786", "tcp://h:99999", ""):
        with pytest.raises(VbenchError) as e:
            cluster.parse(bad)
        assert "\n" not in str(e.value)


def test_a_config_section_and_the_flag_and_jobs():
    section = {"address": "local:2", "timeout": 3}
    assert cluster.choose(None, section, "c.toml", 1) == cluster.ClusterSpec("local:2", 2, 3.0)
    assert cluster.choose("tcp://h:1", section, "c.toml", 1).timeout == 3.0  # the flag wins
    assert cluster.choose("none", section, "c.toml", 4) is None  # and can turn it off
    with pytest.raises(VbenchError, match="--jobs 2 and --cluster local:2"):
        cluster.choose("local:2", None, "c.toml", 2)
    with pytest.raises(VbenchError, match=r"c.toml's \[cluster\]"):
        cluster.choose(None, section, "c.toml", 2)
    for bad, what in [
        ({"adress": "local:2"}, "unknown key 'cluster.adress'"),
        ({"address": "local:2", "timeout": 0}, "timeout must be seconds > 0"),
        ({"timeout": 3}, "address must be a string"),
        ("local:2", "cluster must be a table"),
    ]:
        with pytest.raises(VbenchError, match=what):
            cluster.from_section(bad, "c.toml")


def _record_of(code: str, filename: str) -> logging.LogRecord:
    """The record tornado logs for an exception raised by ``code``'s ``cancel()`` as if it were
    in ``filename``."""
    scope: dict = {}
    exec(compile(code, filename, "exec"), scope)
    try:
        scope["cancel"]()
    except Exception:
        info = sys.exc_info()
    return logging.LogRecord("tornado.application", logging.ERROR, "", 0, "x", (), info)


@pytest.mark.parametrize(
    "code,filename,dropped",
    [
        # distributed.utils.sync's cancel() reading its unbound free variable
        ("def cancel():\n    return future\nfuture: int\n", "distributed/utils.py", True),
        ("def cancel():\n    return future\n", "vbench/cluster.py", False),
        ("def cancel():\n    raise ValueError\n", "distributed/utils.py", False),
        ("def other():\n    return missing\ncancel = other\n", "distributed/utils.py", False),
    ],
)
def test_only_dasks_sync_cancel_race_is_kept_off_the_log(code, filename, dropped):
    """Ctrl-C during a blocking Dask call may make distributed.utils.sync's cancel() raise a
    NameError that tornado logs with a traceback; that one record, and no other, is dropped."""
    record = _record_of(code, os.path.join("/site-packages", filename))
    assert cluster.SyncCancelRace().filter(record) is not dropped


def test_without_distributed_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(VbenchError) as e:
        cluster.require()
    assert "pip install -e '.[cluster]'" in str(e.value) and "\n" not in str(e.value)


def test_run_without_distributed_says_how_to_install_it(sweep_file, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vbench.cli import app

    monkeypatch.setitem(sys.modules, "distributed", None)
    out = tmp_path / "r"
    r = CliRunner().invoke(app, ["run", str(sweep_file), "--out", str(out), "--cluster", "local:2"])
    assert r.exit_code == 2, r.output
    assert "pip install -e '.[cluster]'" in error_line(r.stderr)
    assert not out.exists()


@pytest.mark.parametrize(
    "args,words",
    [
        (["--cluster", "local:0"], "local:N needs N ≥ 1"),
        (["--cluster", "tcp://nowhere"], "tcp://HOST:PORT"),
        (["--cluster", "local:2", "-j", "2"], "leave out --jobs"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_leave_no_folder(sweep_file, tmp_path, args, words):
    out = tmp_path / "r"
    r = vbench("run", str(sweep_file), "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    assert words in error_line(r.stderr)
    assert not out.exists()


@needs_dask
def test_an_unreachable_scheduler_is_one_line_after_the_timeout(sweep_file, tmp_path):
    cfg = tmp_path / "unreachable.toml"
    cfg.write_text(SWEEP + '\n[cluster]\naddress = "tcp://127.0.0.1:1"\ntimeout = 1\n')
    start = time.monotonic()
    r = vbench("run", str(cfg), "--out", str(tmp_path / "r"))
    assert r.returncode == 2, r.stderr
    line = error_line(r.stderr)
    assert "no scheduler answered within 1 s" in line and "dask scheduler" in line
    assert time.monotonic() - start < 20
    assert not (tmp_path / "r").exists()


# --- a LocalCluster ------------------------------------------------------------------------------
@needs_dask
def test_local_cluster_gives_the_local_table(sweep_file, local_table, tmp_path):
    out = tmp_path / "local2"
    r = vbench("run", str(sweep_file), "--out", str(out), "-q", "--cluster", "local:2")
    assert r.returncode == 0, r.stderr
    assert "cluster local:2: 2 worker(s), 2 thread(s)" in r.stderr
    pd.testing.assert_frame_equal(table(out), local_table)
    lines = (out / JOURNAL_FILE).read_text().splitlines()
    assert sorted(json.loads(ln)["point"] for ln in lines) == list(range(POINTS))
    run = json.loads((out / "run.json").read_text())
    assert "cluster" not in run["config"]  # where it ran is not what it computed


def _group(pgid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout
    return out.split()


@needs_dask
def test_ctrl_c_on_a_local_cluster_then_resume_on_it(sweep_file, local_table, tmp_path):
    """SIGINT to the process group (Ctrl-C in a terminal) halfway through: exit 130, every
    journal line whole, no process of the group left; --resume on the cluster completes it."""
    part = tmp_path / "part"
    p = subprocess.Popen(
        [sys.executable, "-m", "vbench.cli", "run", str(sweep_file), "--out", str(part), "-q"]
        + ["--cluster", "local:2"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    journal = part / JOURNAL_FILE
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and p.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert time.monotonic() - sent < 10
    assert "Traceback" not in err
    line = error_line(err, only=False)  # after the cluster's note and the partial table's
    assert "interrupted:" in line and "the cluster's workers were stopped" in line
    assert f"vbench run --resume {part} --cluster local:2" in line
    saved = [json.loads(ln) for ln in journal.read_text().splitlines()]  # every line parses
    assert 1 <= len(saved) < POINTS
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group(p.pid):
        time.sleep(0.1)
    assert _group(p.pid) == [], "a process of the sweep's group outlived it"

    r = vbench("run", "--resume", str(part), "-q", "--cluster", "local:2")
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(table(part), local_table)
    meta = json.loads((part / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["resumed_points"] == len(saved)


# --- a scheduler and workers started by hand -------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 0))
        except OSError as e:
            pytest.skip(f"cannot bind a port on 127.0.0.1 for a Dask scheduler: {e}")
        return s.getsockname()[1]


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _scheduler() -> tuple[str, subprocess.Popen]:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    proc = _dask(
        "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"
    )
    return address, proc


def _worker(address: str, *extra: str) -> subprocess.Popen:
    return _dask(
        "worker", address, "--nthreads", "1", "--nworkers", "1", "--memory-limit", "0",
        "--no-dashboard", *extra,
    )  # fmt: skip


@needs_dask
def test_a_scheduler_started_by_hand_runs_the_sweep(sweep_file, local_table, tmp_path):
    address, scheduler = _scheduler()
    procs = [scheduler, _worker(address), _worker(address)]
    try:
        out = tmp_path / "remote"
        r = vbench(
            "run", str(sweep_file), "--out", str(out), "-q", "--cluster", address, timeout=90
        )
        assert r.returncode == 0, r.stderr
        assert f"cluster {address}: " in r.stderr
        pd.testing.assert_frame_equal(table(out), local_table)
    finally:
        _stop(procs)


@needs_dask
def test_a_worker_with_other_sources_is_refused_with_one_line(sweep_file, tmp_path):
    other = tmp_path / "other_sources.py"  # as if that worker ran an edited vbench
    other.write_text("import vbench.journal\nvbench.journal.code_hash = lambda: '0' * 16\n")
    address, scheduler = _scheduler()
    procs = [scheduler, _worker(address, "--preload", str(other))]
    try:
        out = tmp_path / "refused"
        r = vbench("run", str(sweep_file), "--out", str(out), "--cluster", address, timeout=90)
        assert r.returncode == 2, r.stderr
        line = error_line(r.stderr)
        assert "runs vbench" in line and "with source 0000000000000000" in line
        assert "install this vbench on every worker" in line
        assert not out.exists()
    finally:
        _stop(procs)
