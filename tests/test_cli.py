"""The command line as a person uses it: real processes, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import error_line

from vbench.layout import ioq_layout, split_layout

ROOT = Path(__file__).resolve().parent.parent


def vbench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=env,
    )


@pytest.mark.parametrize(
    "model,ref",
    [("virtio-split", split_layout(256)), ("vbus-ioq", ioq_layout(256, 1, eventq_size=1024))],
)
def test_layout_json(model, ref):
    r = vbench("layout", model, "--queue-size", "256", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["total_bytes"] == ref.size
    assert [a["name"] for a in d["areas"]] == [a.name for a in ref.areas]
    assert {"model", "queue_size", "line_bytes", "total_bytes", "areas", "structs"} <= d.keys()


def test_layout_table_lists_fields():
    r = vbench("layout", "virtio-split", "-n", "8")
    assert r.returncode == 0
    for word in ("used_event", "avail_event", "vring_desc", "total"):
        assert word in r.stdout


def one_line_error(r: subprocess.CompletedProcess, code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return error_line(r.stderr)


def test_layout_errors():
    assert "unknown model" in one_line_error(vbench("layout", "virtio-splot"))
    assert "power of two" in one_line_error(vbench("layout", "virtio-split", "-n", "100"))


TINY = """
name = "tiny"
seed = 2
[workload]
requests = 300
segments = 2
[engine]
batch = 4
[[models]]
model = "virtio-split"
queue_size = 64
[[models]]
model = "vbus-ioq"
queue_size = 64
[sweep.product]
"engine.batch" = [1, 8]
"""


def test_run_writes_tidy_results_and_meta(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    r = vbench(
        "run",
        str(cfg),
        "--out",
        str(out),
        "--jobs",
        "2",
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout  # NO_COLOR honoured
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 2 * 2 and set(df["label"]) == {"virtio-split", "vbus-ioq"}
    assert df.groupby("point")["workload_fingerprint"].nunique().eq(1).all()  # paired
    assert pd.read_csv(out / "results.csv").shape == df.shape
    meta = json.loads((out / "meta.json").read_text())
    for key in (
        "config",
        "config_hash",
        "seed",
        "versions",
        "git",
        "machine",
        "started",
        "finished",
    ):
        assert key in meta
    assert meta["status"] == "complete" and meta["seed"] == 2
    assert {"python", "numba", "numpy"} <= meta["versions"].keys()
    assert "results:" in r.stderr and "results:" not in r.stdout  # diagnostics on stderr


@pytest.mark.parametrize(
    "text,needle",
    [
        (TINY.replace("batch = 4", "bach = 4"), "did you mean 'batch'"),
        (TINY.replace("batch = 4", "batch = 400"), "larger than the ring"),
        (TINY + "\n[bogus]\n", "unknown key 'bogus'"),
    ],
)
def test_run_config_errors_are_one_line_exit_2(tmp_path, text, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text.replace('"engine.batch" = [1, 8]', '"seed" = [1]'))
    assert needle in one_line_error(vbench("run", str(cfg), "--out", str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_run_missing_file_and_bad_set(tmp_path):
    assert "not found" in one_line_error(vbench("run", str(tmp_path / "none.toml")))
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY)
    assert "use --set key=value" in one_line_error(vbench("run", str(cfg), "--set", "engine.batch"))


def test_help_is_quick_and_lists_commands():
    r = vbench("--help")
    assert r.returncode == 0
    for cmd in ("run", "layout", "models", "presets"):
        assert cmd in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "--jobs", "0"], "Invalid value for '--jobs'"),
        (["layout"], "Missing argument 'model'"),
        (["nosuch"], "No such command 'nosuch'"),
        (["run", "--no-such-option"], "No such option"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, needle):
    """click's own usage errors get the same one line as vbench's (no usage box)."""
    line = one_line_error(vbench(*args))
    assert line.startswith("vbench: error: ") and needle in line and "--help" in line


def _env(**extra: str) -> dict[str, str]:
    return {"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **extra}


def test_run_summary_piped_is_csv_in_config_order(tmp_path):
    """Piped, the summary is machine-readable (CSV, full width, every figure in its own
    unit), the models in the config's order (virtio-split first, not alphabetical)."""
    import io

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    r = vbench("run", str(cfg), "--out", str(tmp_path / "o"), env=_env())
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    assert df["label"].tolist() == ["virtio-split", "vbus-ioq"] * 2
    assert {"point", "engine.batch", "lat_p99_ns", "requests_per_s", "kicks_per_req"} <= set(df)
    tsv = vbench("run", str(cfg), "--out", str(tmp_path / "t"), "-f", "tsv", env=_env())
    assert tsv.stdout.splitlines()[0].startswith("point\tengine.batch\tlabel")
    bad = vbench("run", str(cfg), "--out", str(tmp_path / "b"), "-f", "xml")
    assert "--format 'xml'" in one_line_error(bad)


@pytest.mark.parametrize("config", ["default", "priority"])
def test_run_table_of_shipped_configs_fits_120_columns(tmp_path, config):
    """`vbench run` of a shipped config in a 120-column terminal: no line wider, a number in
    every cell (rich's "…" marks a crushed one), the load's kind in the caption."""
    args = ["run", f"configs/{config}.toml", "--set", "workload.requests=400", "-f", "table"]
    r = vbench(*args, "--out", str(tmp_path / "o"), env=_env(COLUMNS="120"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 120, max(lines, key=len)
    assert "…" not in r.stdout
    assert "open loop" in r.stdout and "achieved throughput" in r.stdout
    header = r.stdout.split("┏", 1)[1].split("┡")[0]
    if config == "priority":
        assert "c1 p99 µs" in r.stdout and "c1 HoL µs/req" in r.stdout
        assert header.index("fifo") < header.index("lookahead") < header.index("shipped")
    else:
        assert header.index("virtio-split") < header.index("vbus-ioq")  # config order
        assert "shares" not in header  # the priority axis no model uses is gone


def test_default_config_sweeps_nothing_its_models_ignore():
    from vbench import config

    plan = config.plan(ROOT / "configs/default.toml")
    assert not any(k.startswith("workload.priority") for k in plan.swept)
