"""The report's experiments: which shipped config each one runs, how ``--quick`` shrinks it, and
running it through the library behind ``vbench run`` with its journal, so that running
``vbench report`` again with the same ``--out`` reuses every finished point.

Each experiment is a config under ``configs/report/`` that ``vbench run`` runs alone. The
report never edits a config: ``--quick`` and ``--preset`` become ``--set`` overrides applied to
it (fewer requests, fewer values on the product axes), so the quick report runs the very
configs the full one does, only smaller.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vbench

#: Where the report's configs ship (beside the package in a checkout).
CONFIG_DIR = Path(vbench.__file__).resolve().parent.parent / "configs" / "report"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Experiment:
    """One experiment: its key (E1, P1...), config file, and its ``--quick`` reduction."""

    key: str
    config: str
    title: str
    quick: dict[str, Any] = field(default_factory=dict)
    follows_preset: bool = True  # E7 keeps kvm-2009: it is the 2009 row
    native: bool = False

    @property
    def path(self) -> Path:
        return CONFIG_DIR / self.config

    @property
    def slug(self) -> str:
        return self.config.removesuffix(".toml")


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("E1", "e1-anatomy.toml", "per-request anatomy", {"workload.requests": 10000}),
    Experiment(
        "E2",
        "e2-notifications.toml",
        "notifications",
        {
            "workload.requests": 8000,
            "sweep.product.engine.batch": [1, 64],
            "sweep.product.workload.arrival.in_flight": [8, 256],
        },
    ),
    Experiment(
        "E3",
        "e3-scatter-gather.toml",
        "scatter/gather",
        {"workload.requests": 8000, "sweep.product.workload.segments": [1, 4, 16, 64]},
    ),
    Experiment("E4", "e4-capacity.toml", "capacity", {"workload.requests": 10000}),
    Experiment(
        "E6",
        "e6-native.toml",
        "the native engine",
        # three short repetitions rather than one long one: E6's robustness is its spread
        {"workload.requests": 20000, "engine.native.repetitions": 3},
        native=True,
    ),
    Experiment("E7", "e7-history.toml", "history", {"workload.requests": 10000}, False),
    Experiment(
        "P1-2",
        "p1-two-classes.toml",
        "priority, two classes",
        {
            "workload.requests": 10000,
            "sweep.product.workload.priority.shares": [[0.95, 0.05], [0.5, 0.5]],
        },
    ),
    Experiment(
        "P1-3",
        "p1-three-classes.toml",
        "priority, three classes",
        {
            "workload.requests": 10000,
            "sweep.product.workload.priority.shares": [[0.9, 0.05, 0.05]],
        },
    ),
    Experiment("P2a", "p2-saturated.toml", "saturated device", {"workload.requests": 10000}),
    Experiment("P2b", "p2-ring-full.toml", "ring full", {"workload.requests": 10000}),
    Experiment("P2c", "p2-busy-guest.toml", "busy guest", {"workload.requests": 10000}),
    Experiment(
        "E8",
        "e8-lost-wakeups.toml",
        "lost wakeups",
        {"workload.requests": 50000, "sweep.product.seed": [1, 2, 3, 4, 5, 6, 7, 8]},
        native=True,
    ),
)

#: E8 where the native engine cannot run: its simulated half only.
SIM_ONLY = {"sweep.product.engine.kind": ["sim"]}

#: E5's sensitivity runs: the experiments whose verdicts it tests, each reduced to the points
#: its conclusions are read at (one, or E1's two batch sizes), which keeps the cases of every
#: cost figure's range affordable; E2, E4 and E7 whole, since their conclusions read a whole
#: sweep (a count of points, a knee, a history).
SENSITIVITY: dict[str, dict[str, Any]] = {
    # E1's conclusions are read at batch 1 and at batch 64
    "E1": {"sweep.product.engine.batch": [1, 64], "sweep.product.workload.segments": [1]},
    "E2": {},  # the whole sweep: its count of winning points is read over every point
    "E3": {"sweep.product.workload.segments": [64]},
    "E4": {},  # the whole rate sweep: the maximum sustainable rate is read off all of it
    "E7": {},  # every step of the history, under its own preset (kvm-2009) and its ranges
    "P1-2": {
        "sweep.product.workload.priority.shares": [[0.95, 0.05]],
        "sweep.product.workload.arrival.rate": [2.0e6],
    },
    "P1-3": {
        "sweep.product.workload.priority.shares": [[0.9, 0.05, 0.05]],
        "sweep.product.workload.arrival.rate": [2.0e6],
    },
    "P2a": {"sweep.product.workload.arrival.rate": [5.0e6]},
    "P2b": {"sweep.product.workload.arrival.in_flight": [256]},
    "P2c": {"sweep.product.workload.arrival.rate": [0.55e6]},
}


@dataclass(frozen=True)
class Sizing:
    """How big a report is: ``quick`` applies each experiment's reduction; ``requests``
    (tests) caps every experiment's requests; ``preset`` replaces the configs' preset."""

    quick: bool = False
    requests: int | None = None
    preset: str | None = None


def overrides(
    experiment: Experiment, sizing: Sizing, extra: dict[str, Any] | None = None
) -> list[str]:
    """The ``--set`` overrides that size ``experiment`` for this report."""
    chosen: dict[str, Any] = dict(experiment.quick) if sizing.quick else {}
    chosen.update(extra or {})
    if sizing.requests is not None:
        chosen["workload.requests"] = sizing.requests
    if sizing.preset and experiment.follows_preset:
        chosen["preset"] = sizing.preset
    return [f"{key}={_toml(value)}" for key, value in chosen.items()]


def _toml(value: Any) -> str:
    """A value as TOML (what ``--set`` parses)."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def native_possible() -> str | None:
    """None when the native engine can run here, else why not (it needs two CPUs)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cpus or 1) < 2:
        return f"this machine gives vbench {cpus} CPU: the native engine needs two"
    return None


def folder_for(experiment: Experiment, sets: list[str], runs: Path) -> Path:
    """The experiment's results folder under ``runs``: named by its config and a hash of the
    config as run, so another sizing never resumes into the wrong folder."""
    from vbench.config import plan

    digest = plan(experiment.path, sets).config_hash[:10]
    return runs / f"{experiment.slug}-{digest}"


def run(
    experiment: Experiment,
    sizing: Sizing,
    runs: Path,
    *,
    jobs: int = 1,
    cluster: str | None = None,
    say: Say = lambda _m: None,
    extra: dict[str, Any] | None = None,
    failures_count: bool = False,
) -> Any:
    """Run (or resume, or reuse) one experiment; its :class:`~vbench.results.ResultSet`.
    ``failures_count`` (E8): a failed point is a result (a run that lost a wakeup), so the
    sweep's failures are kept in its meta.json rather than raised."""
    from vbench import results
    from vbench.commands import run_sweep
    from vbench.exits import Stop

    sets = overrides(experiment, sizing, extra)
    folder = folder_for(experiment, sets, runs)
    meta = folder / "meta.json"
    done = {"complete", "failed"} if failures_count else {"complete"}
    if meta.is_file() and results.load(folder).meta.get("status") in done:
        say(f"{experiment.key}: reusing {folder}")
        return results.load(folder)
    resume = folder if (folder / "run.json").is_file() else None
    say(f"{experiment.key} ({experiment.title}): {'resuming' if resume else 'running'} {folder}")
    try:
        run_sweep(
            experiment.path,
            sets,
            jobs=jobs,
            out=None if resume else folder,
            resume=resume,
            cluster=None if experiment.native else cluster,
        )
    except Stop:
        if not (failures_count and meta.is_file()):
            raise
        if results.load(folder).meta.get("status") != "failed":
            raise
    return results.load(folder)


def trials(result: Any, experiment: Experiment) -> Any:
    """E8's runs, one row per point: ``engine``, ``model``, ``barrier``, ``seed`` and the
    failure message (None: completed), from the config the folder ran and its failures (both
    in its meta.json)."""
    import pandas as pd

    from vbench.config import plan

    meta = result.meta
    failed = {f["point"]: f["error"] for f in meta.get("failures", [])}
    ran = set(result.table["point"]) if "point" in result.table.columns else set()
    rows = []
    ran_plan = (  # the config as it ran (meta.json keeps it), not the file as it is now
        plan(experiment.path, raw=meta["config"])
        if isinstance(meta.get("config"), dict)
        else plan(experiment.path, list(meta.get("overrides", [])))
    )
    for point in ran_plan.points:
        if point.index not in ran and point.index not in failed:
            continue  # never ran (an interrupted sweep)
        params = point.params
        rows.append(
            {
                "engine": params.get("engine.kind", point.engine.kind),
                "model": params.get("models.vbus.model", point.models[0][1].name),
                "barrier": params.get("models.vbus.signal_barrier", "wmb"),
                "seed": point.seed,
                "message": failed.get(point.index),
            }
        )
    return pd.DataFrame(rows, columns=["engine", "model", "barrier", "seed", "message"])


def sensitivity(
    experiment: Experiment, sizing: Sizing, runs: Path, *, jobs: int = 1, say: Say = lambda _m: None
) -> Any:
    """E5 on one experiment: ``vbench sensitivity``'s cases table (reused when its folder
    already holds one for the same config as run)."""
    import pandas as pd

    from vbench.commands import run_sensitivity

    sets = overrides(experiment, sizing, SENSITIVITY[experiment.key])
    folder = folder_for(experiment, sets, runs)
    folder = folder.with_name("e5-sensitivity-" + folder.name)
    cases = folder / "findings.csv"
    if cases.is_file():
        say(f"E5 on {experiment.key}: reusing {folder}")
        return pd.read_csv(folder / "cases.csv")
    say(f"E5 (sensitivity) on {experiment.key}: {folder}")
    run_sensitivity(experiment.path, sets, jobs=jobs, out=folder, say=lambda m: say(f"E5: {m}"))
    return pd.read_csv(folder / "cases.csv")
