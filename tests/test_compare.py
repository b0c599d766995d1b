"""vbench compare on hand-made result sets: every verdict of every metric kind, the matching of
rows by label and parameters, the reference-model ratios, and the CLI's exit codes and formats.

The sets are written with vbench's own writer (so they carry meta.json and its column kinds)
from rows built here, where every value is known.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import vbench

from vbench import compare, results
from vbench.errors import VbenchError
from vbench.metrics import describe, kind_of


def row(label: str, batch: int, **metrics: Any) -> dict[str, Any]:
    model = {"split": "virtio-split", "ioq": "vbus-ioq"}.get(label, label)
    base = {
        "point": {1: 0, 16: 1}.get(batch, batch),
        "engine.batch": batch,
        "label": label,
        "model": model,
        "kicks": 100,
        "kicks_per_req": 0.1,
        "lat_p99_ns": 1000.0,
        "requests_per_s": 1e6,
        "sim_seconds": 0.5,
        "seed": 1,
    }
    base.update(metrics)
    return base


def make_set(
    tmp: Path,
    name: str,
    rows: list[dict[str, Any]],
    config_hash: str = "abc",
    fingerprint: str = "m1",
    models: tuple[str, ...] = ("split", "ioq"),
) -> results.ResultSet:
    meta = {
        "name": name,
        "config": {"models": [{"model": m, "label": m} for m in models]},
        "config_hash": config_hash,
        "swept": ["engine.batch"],
        "machine_fingerprint": fingerprint,
    }
    folder = results.write(tmp / name, rows, meta)
    return results.load(folder)


def verdict(cmp: compare.Comparison, label: str, batch: int, metric: str) -> str:
    t = cmp.table
    sel = t[(t["label"] == label) & (t["engine.batch"] == batch) & (t["metric"] == metric)]
    assert len(sel) == 1, sel
    return str(sel["verdict"].iloc[0])


def test_metric_kinds_and_directions() -> None:
    """The facts every comparison rests on: counts are exact, times modeled, wall time timing."""
    assert describe("kicks").kind == "exact" and describe("kicks").better == "lower"
    assert describe("requests").better == "none"
    assert describe("kicks_per_req").kind == "exact"
    assert describe("lat_p99_ns").kind == "modeled" and describe("lat_p99_ns").unit == "ns"
    assert describe("c1_lat_p99_ns").kind == "modeled"
    assert describe("requests_per_s").better == "higher"
    assert describe("c1_hol_ns_per_req").better == "lower"
    assert describe("time_exits_ns_per_req").kind == "modeled"
    assert describe("sim_seconds").kind == "timing"
    assert kind_of("engine.batch") == "param" and kind_of("label") == "id"


def test_exact_verdicts(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1), row("ioq", 1), row("split", 16)])
    cur = make_set(
        tmp_path,
        "c",
        [
            row("split", 1),  # unchanged
            row("ioq", 1, kicks=90, kicks_per_req=0.09),  # fewer kicks: better
            row("split", 16, kicks=110, kicks_per_req=0.11),  # more: worse
        ],
    )
    cmp = compare.compare_sets(base, cur, ["kicks"])
    assert verdict(cmp, "split", 1, "kicks") == "same"
    assert verdict(cmp, "ioq", 1, "kicks") == "better"
    assert verdict(cmp, "split", 16, "kicks") == "worse"
    assert cmp.counts()["worse"] == 1


def test_exact_without_direction_is_changed(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1, requests=10)])
    cur = make_set(tmp_path, "c", [row("split", 1, requests=11)])
    assert (
        verdict(compare.compare_sets(base, cur, ["requests"]), "split", 1, "requests") == "changed"
    )


def test_modeled_tolerance(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1), row("ioq", 1)])
    cur = make_set(
        tmp_path, "c", [row("split", 1, lat_p99_ns=1004.0), row("ioq", 1, requests_per_s=1.1e6)]
    )
    strict = compare.compare_sets(base, cur, ["lat_p99_ns", "requests_per_s"])
    assert verdict(strict, "split", 1, "lat_p99_ns") == "worse"  # rtol 0: any change counts
    assert verdict(strict, "ioq", 1, "requests_per_s") == "better"  # higher is better
    loose = compare.compare_sets(base, cur, ["lat_p99_ns"], policy=compare.Policy(rtol=0.01))
    assert verdict(loose, "split", 1, "lat_p99_ns") == "same"


def test_modeled_over_seeds_uses_an_interval(tmp_path: Path) -> None:
    """Several seeds per row: the change counts only if its bootstrap interval clears ±rtol."""
    rng = np.random.default_rng(3)
    base_rows = [row("split", 1, seed=s, lat_p99_ns=1000 + rng.normal(0, 5)) for s in range(12)]
    same_rows = [row("split", 1, seed=s, lat_p99_ns=1000 + rng.normal(0, 5)) for s in range(12)]
    slow_rows = [row("split", 1, seed=s, lat_p99_ns=1100 + rng.normal(0, 5)) for s in range(12)]
    base = make_set(tmp_path, "b", base_rows, models=("split",))
    p = compare.Policy(rtol=0.02)
    same = compare.compare_sets(
        base, make_set(tmp_path, "s", same_rows, models=("split",)), policy=p
    )
    slow = compare.compare_sets(
        base, make_set(tmp_path, "w", slow_rows, models=("split",)), policy=p
    )
    assert verdict(same, "split", 1, "lat_p99_ns") == "same"
    assert verdict(slow, "split", 1, "lat_p99_ns") == "worse"
    assert "CI" in str(slow.table.loc[slow.table["metric"] == "lat_p99_ns", "why"].iloc[0])


def _timing_rows(values: list[float]) -> list[dict[str, Any]]:
    return [row("split", 1, seed=i, sim_seconds=v) for i, v in enumerate(values)]


def test_timing_needs_the_same_machine(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1)], fingerprint="m1")
    cur = make_set(tmp_path, "c", [row("split", 1, sim_seconds=5.0)], fingerprint="m2")
    cmp = compare.compare_sets(base, cur, ["sim_seconds"])
    assert verdict(cmp, "split", 1, "sim_seconds") == "incomparable"
    assert cmp.counts()["worse"] == 0


def test_timing_significance_and_noise_floor(tmp_path: Path) -> None:
    """criterion-style: a change counts only if significant and outside the noise floor."""
    rng = np.random.default_rng(1)
    base = make_set(
        tmp_path, "b", _timing_rows(list(1.0 + rng.normal(0, 0.01, 10))), models=("split",)
    )
    noisy = make_set(
        tmp_path, "n", _timing_rows(list(1.02 + rng.normal(0, 0.01, 10))), models=("split",)
    )
    slow = make_set(
        tmp_path, "s", _timing_rows(list(1.3 + rng.normal(0, 0.01, 10))), models=("split",)
    )
    few = make_set(tmp_path, "f", [row("split", 1, sim_seconds=2.0)], models=("split",))
    # a 2% shift is significant with this little noise, but inside the 5% floor: same
    assert (
        verdict(compare.compare_sets(base, noisy, ["sim_seconds"]), "split", 1, "sim_seconds")
        == "same"
    )
    assert (
        verdict(compare.compare_sets(base, slow, ["sim_seconds"]), "split", 1, "sim_seconds")
        == "worse"
    )
    # one sample on a side: no test possible, so never better or worse
    assert (
        verdict(compare.compare_sets(base, few, ["sim_seconds"]), "split", 1, "sim_seconds")
        == "changed"
    )


def test_rows_match_by_label_and_parameters_not_order(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1), row("split", 16, kicks=7)])
    cur = make_set(tmp_path, "c", [row("split", 16, kicks=7, point=5), row("split", 1, point=9)])
    cmp = compare.compare_sets(base, cur, ["kicks"])
    assert set(cmp.table["verdict"]) == {"same"}


def test_rows_on_one_side_only_are_incomparable(tmp_path: Path) -> None:
    base = make_set(tmp_path, "b", [row("split", 1), row("split", 16)])
    cur = make_set(tmp_path, "c", [row("split", 1), row("split", 64)], config_hash="other")
    cmp = compare.compare_sets(base, cur, ["kicks"])
    assert verdict(cmp, "split", 16, "kicks") == "incomparable"
    assert verdict(cmp, "split", 64, "kicks") == "incomparable"
    assert not cmp.config_match and any("config hash" in n for n in cmp.notes)


def test_side_by_side_ratios_and_geomean(tmp_path: Path) -> None:
    rs = make_set(
        tmp_path,
        "one",
        [
            row("split", 1, kicks_per_req=0.5),
            row("ioq", 1, kicks_per_req=1.0),
            row("split", 16, kicks_per_req=0.25),
            row("ioq", 16, kicks_per_req=1.0),
        ],
    )
    df = compare.side_by_side(rs, ["kicks_per_req"])
    assert df.attrs["ref"] == "split"  # the first virtio model of the config
    ratios = df["ioq/split"].tolist()
    assert ratios[:2] == [2.0, 4.0]
    assert math.isclose(ratios[2], math.sqrt(8.0))  # geometric mean of 2 and 4
    assert df["engine.batch"].iloc[2] == "geomean"
    df2 = compare.side_by_side(rs, ["kicks_per_req"], ref="ioq", where=["engine.batch=16"])
    assert df2["split/ioq"].iloc[0] == 0.25


def test_selection_errors_are_one_line(tmp_path: Path) -> None:
    rs = make_set(tmp_path, "one", [row("split", 1)])
    with pytest.raises(VbenchError, match="did you mean 'kicks_per_req'"):
        compare.metrics_of(rs, ["kicks_per_rq"])
    with pytest.raises(VbenchError, match="not a metric"):
        compare.metrics_of(rs, ["engine.batch"])
    with pytest.raises(VbenchError, match="no column 'batch'"):
        compare.select(rs.table, ["batch=1"])
    with pytest.raises(VbenchError, match="no rows match"):
        compare.select(rs.table, ["engine.batch>99"])
    with pytest.raises(VbenchError, match="--ref"):
        compare.side_by_side(rs, None, ref="nope")
    with pytest.raises(VbenchError, match="--ref ''"):  # once taken for "the default"
        compare.side_by_side(rs, None, ref="")


def test_gab_json_splits_by_direction(tmp_path: Path) -> None:
    rs = make_set(tmp_path, "one", [row("split", 1)])
    out = compare.gab_json(rs, ["kicks_per_req", "requests_per_s"])
    small, big = out["customSmallerIsBetter"], out["customBiggerIsBetter"]
    assert [e["name"] for e in small] == ["split kicks_per_req [engine.batch=1]"]
    assert big[0]["unit"] == "req/s" and big[0]["value"] == 1e6
    assert {"name", "unit", "value"} <= set(small[0])


def test_cli_exit_codes_and_formats(tmp_path: Path) -> None:
    """A regression exits 1 (a comparison that exits 0 on a regression is useless in CI); JSON
    carries the versioned schema; bad input is one line and exit 2."""
    b = make_set(tmp_path, "b", [row("split", 1)]).path
    same = make_set(tmp_path, "s", [row("split", 1)]).path
    worse = make_set(tmp_path, "w", [row("split", 1, kicks=101)]).path
    ok = vbench("compare", str(b), str(same), "-m", "kicks", "-f", "json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["schema"] == compare.REPORT_SCHEMA and doc["summary"]["same"] == 1
    bad = vbench("compare", str(b), str(worse), "-m", "kicks", "-f", "csv")
    assert bad.returncode == 1
    assert "worse" in bad.stdout
    assert vbench("compare", str(b), str(worse), "-m", "kicks", "--no-fail").returncode == 0
    one = vbench("compare", str(b), "-f", "json")
    assert one.returncode == 0, one.stderr
    doc1 = json.loads(one.stdout)
    assert doc1["schema"] == compare.MODELS_SCHEMA and doc1["ref"] == "split"
    assert doc1["rows"][-1]["engine.batch"] == "geomean"
    md = vbench("compare", str(b), "-f", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("| engine.batch |")
    for args, text in [
        (("compare", str(tmp_path / "missing")), "no such results folder"),
        (("compare", str(b), "-m", "nope"), "unknown metric"),
        (("compare", str(b), "-f", "xml"), "--format"),
    ]:
        r = vbench(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_load_refuses_damaged_folders(tmp_path: Path) -> None:
    rs = make_set(tmp_path, "x", [row("split", 1)])
    (rs.path / "results.parquet").write_bytes(b"PAR1 truncated")
    (rs.path / "results.csv").unlink()
    with pytest.raises(VbenchError, match="truncated or was edited"):
        results.load(rs.path)
    meta = json.loads((rs.path / "meta.json").read_text())
    meta["schema_version"] = 99
    (rs.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(VbenchError, match="schema version 99"):
        results.load(rs.path)
    (rs.path / "meta.json").unlink()
    with pytest.raises(VbenchError, match="no meta.json"):
        results.load(rs.path)


# --- issue 15: what a person sees by default ---------------------------------------------------
def test_two_sets_show_only_changed_rows_unless_all(tmp_path: Path) -> None:
    """432 "same" rows drown the one that moved: by default only changed rows, a note saying
    how many were left out, and --all for everything (JSON always holds every row)."""
    base = make_set(tmp_path, "b", [row("split", 1), row("ioq", 1), row("split", 16)])
    cur = make_set(
        tmp_path, "c", [row("split", 1), row("ioq", 1, kicks_per_req=0.2), row("split", 16)]
    )
    report = compare.run([base.path, cur.path])
    assert set(report.table["verdict"]) == {"worse"} and len(report.table) == 1
    assert any("--all" in n for n in report.notes)
    assert report.counts["same"] > 0  # the summary line still counts them
    full = compare.run([base.path, cur.path], show_all=True)
    assert "same" in set(full.table["verdict"]) and len(full.table) > 1
    doc = compare.run([base.path, cur.path], fmt="json").document
    assert len(doc["rows"]) == len(full.table)
    r = vbench("compare", str(base.path), str(cur.path), "--no-fail")
    assert r.returncode == 0, r.stderr
    assert "worse" in r.stdout and "same" not in r.stdout
    assert "same" in vbench("compare", str(base.path), str(cur.path), "--all").stdout


def test_two_sets_list_models_in_config_order(tmp_path: Path) -> None:
    rows = [row("ioq", 1), row("split", 1), row("ioq", 16), row("split", 16)]
    base = make_set(tmp_path, "b", rows, models=("split", "ioq"))
    cur = make_set(tmp_path, "c", rows, models=("split", "ioq"))
    t = compare.compare_sets(base, cur, ["kicks"]).table
    assert t["label"].tolist() == ["split", "ioq", "split", "ioq"]


def test_priority_sweep_compares_the_priority_figures_by_default(tmp_path: Path) -> None:
    prio = {"c0_lat_p99_ns": 2000.0, "c1_lat_p99_ns": 900.0, "c1_hol_ns_per_req": 50.0}
    rows = [row("split", 1, **prio), row("ioq", 1, **prio)]
    meta = {
        "name": "p",
        "config": {"models": [{"model": "split"}, {"model": "ioq"}]},
        "swept": ["workload.priority.shares"],
    }
    for r in rows:
        r["workload.priority.shares"] = "[0.9, 0.1]"
    rs = results.load(results.write(tmp_path / "p", rows, meta))
    mets = compare.metrics_of(rs, None)
    assert mets[:3] == ["c1_lat_p99_ns", "c1_hol_ns_per_req", "c0_lat_p99_ns"]
    plain = make_set(tmp_path, "plain", [row("split", 1, **prio)], models=("split",))
    assert "c1_lat_p99_ns" not in compare.metrics_of(plain, None)  # priority not swept


def test_declared_report_metrics_come_first_in_compare(tmp_path: Path) -> None:
    """A config's [report] metrics head compare's defaults too (those present, in its order)."""
    rows = [row("split", 1, vm_exits_per_req=0.2), row("ioq", 1, vm_exits_per_req=0.3)]
    meta = {
        "name": "r",
        "config": {
            "models": [{"model": "split"}, {"model": "ioq"}],
            "report": {"metrics": ["requests_per_s", "vm_exits_per_req", "c5_lat_p99_ns"]},
        },
        "swept": ["engine.batch"],
    }
    rs = results.load(results.write(tmp_path / "r", rows, meta))
    mets = compare.metrics_of(rs, None)
    assert mets[:3] == ["requests_per_s", "vm_exits_per_req", "kicks_per_req"]
    assert len(mets) == len(set(mets))


def native_set(tmp: Path) -> results.ResultSet:
    """A native run: 3 repetitions per point and model, measured columns only."""
    rows = []
    for label, values in (("split", [3e6, 1e6, 2e6]), ("ioq", [4e6, 6e6, 5e6])):
        for rep, v in enumerate(values):
            rows.append(
                {
                    "point": 0,
                    "engine.batch": 1,
                    "label": label,
                    "model": {"split": "virtio-split", "ioq": "vbus-ioq"}[label],
                    "rep": rep,
                    "seed": 1,
                    "measured_requests_per_s": v,
                    "measured_kicks_per_req": 0.5,
                }
            )
    meta = {
        "name": "ring",
        "config": {"models": [{"model": "split"}, {"model": "ioq"}], "engine": {"kind": "native"}},
        "swept": ["engine.batch"],
    }
    return results.load(results.write(tmp / "ring", rows, meta))


def test_native_set_shows_medians_over_repetitions(tmp_path: Path) -> None:
    """A native run has no simulated figures: compare shows what it measured, each point's
    median with its min, max and n, not repetition 0."""
    rs = native_set(tmp_path)
    assert compare.metrics_of(rs, None)[0] == "measured_requests_per_s"
    df = compare.side_by_side(rs, ["measured_requests_per_s"])
    first = df.iloc[0]
    assert first["split"] == 2e6 and first["ioq"] == 5e6  # medians, not rep 0 (3e6, 4e6)
    assert (first["split min"], first["split max"], first["split n"]) == (1e6, 3e6, 3)
    assert first["ioq/split"] == 2.5
    r = vbench("compare", str(rs.path))
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    assert "2e+06 [1e+06-3e+06]" in r.stdout and "median [min-max] over 3" in r.stdout


def test_one_set_fits_120_columns_with_a_number_in_every_cell(tmp_path: Path) -> None:
    """`vbench compare RESULTS` of a 7-model priority sweep at COLUMNS=120: no line wider, no
    cell cut to "…", every model and its figures shown (values, then ratios, split by model
    where they do not fit side by side); unbounded without COLUMNS, as a pager wants."""
    import os

    from test_summary import LABELS, SWEPT, prio_rows

    rows = prio_rows()
    for r in rows:
        r.update(seed=1, lines_per_req=12.345, lat_p50_ns=8123.4)
    meta = {
        "name": "priority",
        "config": {"models": [{"label": lbl, "model": "virtio-split"} for lbl in LABELS]},
        "swept": SWEPT,
    }
    folder = results.write(tmp_path / "prio", rows, meta)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = vbench("compare", str(folder), env={**env, "COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 120
    assert "…" not in r.stdout
    headers: set[str] = set()  # each table's column titles, their broken lines joined
    for table in r.stdout.split("┏")[1:]:
        head = [line.split("┃")[1:-1] for line in table.split("┡")[0].splitlines()[1:]]
        headers |= {"".join(p.strip() for p in col) for col in zip(*head, strict=True)}
    assert set(LABELS) <= headers
    assert "123462" in r.stdout and "0.833" in r.stdout  # c1 p99 (ns), c1 HoL ratio
    for line in lines:  # every model cell of every table row holds a number (or – for none)
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) > 3:
            assert all(re.fullmatch(r"[-+0-9.e–]+", c) for c in cells[3:]), line
    wide = vbench("compare", str(folder), env=env)
    assert wide.returncode == 0 and max(map(len, wide.stdout.splitlines())) > 120
