"""The bad-input corpus (tests/bad_inputs/cases.toml), every case run through the CLI.

Each case must end the way a person can act on: exactly one line on stderr, starting
``vbench: error:`` and saying what the manifest expects, the expected exit code, no
traceback, and nothing written. The result-folder cases damage copies of one real result
folder, made once per session from ``bad_inputs/good.toml`` (200 requests, one point).
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import error_line
from typer.testing import CliRunner

from vbench.cli import app

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES: list[dict] = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]


# --- damaged copies of a real result folder ------------------------------------------------------
def _csv_only(d: Path) -> pd.DataFrame:
    """Drop the Parquet table, so the (hand-edited) CSV is what a reader gets."""
    (d / "results.parquet").unlink()
    return pd.read_csv(d / "results.csv")


def _edit_meta(d: Path, edit: Callable[[dict], object]) -> None:
    meta = json.loads((d / "meta.json").read_text())
    out = edit(meta)
    (d / "meta.json").write_text(json.dumps(meta if out is None else out))


def _truncate(f: Path, keep: float = 0.5) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])


def _text_in_number(d: Path) -> None:
    df = _csv_only(d)
    df["kicks"] = df["kicks"].astype(object)
    df.loc[0, "kicks"] = "lots"
    df.to_csv(d / "results.csv", index=False)


def _cut_last_row(d: Path) -> None:
    _csv_only(d)
    lines = (d / "results.csv").read_text().splitlines()
    lines[-1] = ",".join(lines[-1].split(",")[:2])  # cut off mid-row, no newline
    (d / "results.csv").write_text("\n".join(lines))


def _blank_label(d: Path) -> None:
    df = _csv_only(d)
    df.loc[1, "label"] = None
    df.to_csv(d / "results.csv", index=False)


def _other_config(d: Path) -> None:
    """A result set of another config: other models (labels), another config hash."""
    df = _csv_only(d)
    df["label"] = df["label"].map({"virtio-split": "virtio-packed", "vbus-ioq": "vbus-prio"})
    df.to_csv(d / "results.csv", index=False)
    _edit_meta(d, lambda m: m.update(config_hash="0" * 64, name="other"))


def _empty_folder(d: Path) -> None:
    shutil.rmtree(d)
    d.mkdir()


def _a_file(d: Path) -> Path:
    f = d / "notes.txt"
    f.write_text("not a result folder\n")
    return f


CORRUPTIONS: dict[str, Callable[[Path], Path | None]] = {
    "good": lambda d: None,
    "no-meta": lambda d: (d / "meta.json").unlink(),
    "empty-folder": _empty_folder,
    "a-file": _a_file,
    "truncated-parquet": lambda d: _truncate(d / "results.parquet"),
    "truncated-csv": _cut_last_row,
    "no-table": lambda d: [(d / f"results.{x}").unlink() for x in ("csv", "parquet")] and None,
    "schema-bumped": lambda d: _edit_meta(d, lambda m: m.update(schema_version=99)),
    "meta-not-json": lambda d: _truncate(d / "meta.json", 0.3),
    "meta-a-list": lambda d: _edit_meta(d, lambda m: [m]),
    "meta-bad-columns": lambda d: _edit_meta(
        d, lambda m: m["columns"].update(kicks={"kind": "counter"})
    ),
    "csv-renamed-column": lambda d: (
        _csv_only(d).rename(columns={"label": "lable"}).to_csv(d / "results.csv", index=False)
    ),
    "csv-text-in-number": _text_in_number,
    "csv-no-label": lambda d: (
        _csv_only(d).drop(columns="label").to_csv(d / "results.csv", index=False)
    ),
    "csv-header-only": lambda d: _csv_only(d).head(0).to_csv(d / "results.csv", index=False),
    "csv-blank-label": _blank_label,
    "other-config": _other_config,
}


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real result folder: good.toml run once (200 requests, two models, one point)."""
    out = tmp_path_factory.mktemp("tiny") / "good"
    r = CliRunner().invoke(app, ["run", str(CORPUS / "good.toml"), "--out", str(out), "-q"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return out


def damaged(tiny: Path, kind: str, where: Path) -> Path:
    """A copy of the tiny result folder under ``where``, damaged as ``kind`` says."""
    d = where / f"results-{kind}"
    shutil.copytree(tiny, d)
    return CORRUPTIONS[kind](d) or d


def expand_args(case: dict, tmp: Path, tiny: Path | None) -> list[str]:
    subst = {"{corpus}": str(CORPUS), "{tmp}": str(tmp)}
    if "results" in case:
        assert tiny is not None
        subst["{results}"] = str(damaged(tiny, case["results"], tmp))
    if any("{good}" in a for a in case["args"]):
        assert tiny is not None and case.get("results") != "good"
        subst["{good}"] = str(damaged(tiny, "good", tmp))
    out = []
    for a in case["args"]:
        for k, v in subst.items():
            a = a.replace(k, v)
        assert "{" not in a or "=" in a, f"unknown placeholder in {a!r}"
        out.append(a)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_gives_one_clear_line(
    case: dict, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tiny = request.getfixturevalue("tiny_results") if "results" in case else None
    args = expand_args(case, tmp_path, tiny)
    r = CliRunner().invoke(app, args)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.exit_code == case["code"], (args, r.exit_code, r.stderr, r.exception)
    line = error_line(r.stderr)
    assert case["expect"] in line, f"{case['expect']!r} not in {line!r}"
    assert not (tmp_path / "out").exists(), "a failed command must not write results or figures"


def test_corpus_is_large_covered_and_consistent() -> None:
    """At least 30 cases, every bad config in the folder used, every corruption known."""
    assert len(CASES) >= 30
    assert len({c["id"] for c in CASES}) == len(CASES)
    used = " ".join(" ".join(c["args"]) for c in CASES)
    for f in CORPUS.glob("*.toml"):
        if f.name != "cases.toml":
            assert f"{{corpus}}/{f.name}" in used, f"{f.name} is in no case"
    assert {c["results"] for c in CASES if "results" in c} <= set(CORRUPTIONS)
    commands = {c["args"][0] for c in CASES}
    assert {"run", "compare", "plot", "layout", "presets", "check"} <= commands
    assert any("--set" in c["args"] for c in CASES)


def test_good_config_and_results_are_accepted(tiny_results: Path, tmp_path: Path) -> None:
    """The undamaged folder loads and compares: the cases fail for their damage alone."""
    d = damaged(tiny_results, "good", tmp_path)
    r = CliRunner().invoke(app, ["compare", str(d), "--format", "csv", "--metric", "kicks"])
    assert r.exit_code == 0, r.stderr
    assert "kicks" in r.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = ["run", str(CORPUS / "unknown_model.toml"), "--out", str(tmp_path / "o")]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 2
    assert "unknown model" in error_line(plain.stderr)
    debug = CliRunner().invoke(app, ["--debug", *args])
    from vbench.errors import ConfigError

    assert isinstance(debug.exception, ConfigError)  # re-raised, so Python prints the traceback
    assert debug.exit_code == 1
    assert "vbench: error:" not in debug.stderr


def test_unexpected_exception_is_called_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug is one line, exit 1, named as vbench's fault and pointing at --debug."""

    def boom(*_a: object, **_k: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr("vbench.costs.load_preset", boom)
    r = CliRunner().invoke(app, ["presets", "kvm-modern"])
    assert r.exit_code == 1
    line = error_line(r.stderr)
    assert re.search(r"internal error \(a vbench bug\): KeyError: .*oops.*rerun with --debug", line)


def test_unexpected_os_error_is_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError that escapes (a path, a permission) is the user's to fix: exit 2, one line."""

    def denied(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "Permission denied", "/some/preset.toml")

    monkeypatch.setattr("vbench.costs.load_preset", denied)
    r = CliRunner().invoke(app, ["presets", "kvm-modern"])
    assert r.exit_code == 2
    assert "/some/preset.toml: Permission denied" in error_line(r.stderr)


def test_a_real_process_prints_one_line_and_debug_the_traceback(tmp_path: Path) -> None:
    """The same through a real process: what a shell user sees on stderr, and its exit code."""
    import subprocess
    import sys

    def vbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "vbench.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    bad = ["run", str(CORPUS / "toml_unclosed_table.toml"), "--out", str(tmp_path / "o")]
    r = vbench(*bad)
    assert r.returncode == 2
    assert "line 5, column 8" in error_line(r.stderr)
    assert r.stdout == ""
    d = vbench("--debug", *bad)
    assert d.returncode == 1
    assert "Traceback (most recent call last)" in d.stderr and "ConfigError" in d.stderr


def _parser_errors() -> list[BaseException]:
    import json as _json

    import pandas.errors
    import pyarrow

    return [
        pandas.errors.ParserError("Error tokenizing data"),
        pyarrow.ArrowInvalid("Parquet magic bytes not found"),
        _json.JSONDecodeError("Expecting value", "x", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ]


@pytest.mark.parametrize("exc", _parser_errors(), ids=lambda e: type(e).__name__)
def test_an_escaped_parser_error_is_the_users_file(exc: BaseException) -> None:
    from vbench.errors import unexpected

    msg, code = unexpected(exc)
    assert code == 2 and "cannot be parsed" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "exc", [ValueError("x"), TypeError("y"), UnicodeEncodeError("ascii", "é", 0, 1, "no")]
)
def test_other_escaped_exceptions_are_bugs(exc: BaseException) -> None:
    from vbench.errors import unexpected

    msg, code = unexpected(exc)
    assert code == 1 and msg.startswith("internal error (a vbench bug)")


def test_jobs_beyond_use_are_capped_and_said(tmp_path: Path) -> None:
    """--jobs 100000 is not an error: the run uses what helps and says so, on stderr."""
    args = ["run", str(CORPUS / "good.toml"), "--out", str(tmp_path / "o"), "-q", "-j", "100000"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "--jobs 100000: using 1, the most that helps: the sweep has 1 point(s) to run" in said


def test_useful_jobs() -> None:
    import os

    from vbench.sweep import useful_jobs

    cpus = os.cpu_count() or 1
    assert useful_jobs(1, 10, False) == (1, None)
    assert useful_jobs(100_000, 3, False)[0] == min(3, cpus)
    n, why = useful_jobs(100_000, 10**6, False)
    assert n == cpus and why is not None and f"this machine has {cpus} CPU(s)" in why
    n, why = useful_jobs(4, 10, True)
    assert n == 1 and why is not None and "native" in why
