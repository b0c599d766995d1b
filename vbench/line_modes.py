"""Each native repetition against the simulation priced at the line-transfer mode it ran in.

Why: on a virtual machine the host moves the vCPUs, so a cache-line transfer between the two
CPUs takes about 30 ns in one placement and about 185 ns in another, and native throughput
moves 3-5x with it. A simulation priced at one preset figure for every repetition compares
half of them with a machine they never ran on. Every native repetition records a short
ping-pong probe before and after it (``line_probe_before_ns``, ``line_probe_after_ns``); this
module turns the probes into modes and re-simulates each point at the figure of every mode its
repetitions saw.

- **The modes** are those of all the run's probes pooled (:func:`probe_modes`): the modes of
  :mod:`vbench.native.modes` where there are enough probes for its tests, else, for a small
  run, a split at the widest gap when its two sides differ by :data:`MIN_RATIO` or more.
  A mode's figure is the median of its probes.
- **A repetition's mode** (:func:`rep_modes`) is the mode nearest (on a log scale) to both of
  its probes; where before and after fall in different modes the host moved the vCPUs during
  the run, for an unknown part of it, so the repetition is "mixed": it is shown, but compared
  with no simulation (any single price would be a guess). One probe missing: the other decides.
  No probe at all (an unpinned run, a result older than the probes): "unprobed", compared with
  the simulation as it was run.
- **The price** (:func:`priced_at`): ``line_transfer_ns`` set to the mode's figure and
  ``line_invalidate_ns`` scaled by the same factor (every shipped and calibrated preset ties
  it to the transfer: an upgrade from Shared waits on the same path, without the data).
- **Re-simulated**, not re-priced: in this simulator time feeds back into the counts (a slower
  line lets more requests pile up behind a kick, which changes how many later kicks are
  suppressed), so the point is run again, with the preset the result set recorded.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from vbench.costs import Preset, override
from vbench.errors import VbenchError
from vbench.native.modes import MIN_RATIO, MIN_SAMPLES, Mode, find_modes

PROBES = ("line_probe_before_ns", "line_probe_after_ns")
MIXED = "mixed"
UNPROBED = "unprobed"
#: builtin preset the plan is validated with when the recorded one replaces it afterwards
_STAND_IN = "kvm-modern"


def probe_modes(values: np.ndarray) -> list[Mode]:
    """The line-transfer modes of a run's probes, by value (empty: no probe). Many probes:
    :func:`vbench.native.modes.find_modes`; fewer than it needs to split (a short run), the
    widest gap of the sorted sample splits it when its sides are :data:`MIN_RATIO` apart."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.sort(v[np.isfinite(v) & (v > 0)])
    if v.size >= MIN_SAMPLES:
        return find_modes(v)
    if v.size == 0:
        return []
    if v.size >= 2:
        gaps = np.diff(np.log(v))
        cut = int(np.argmax(gaps)) + 1
        if gaps[cut - 1] >= math.log(MIN_RATIO):
            return [_mode(v[:cut], v.size), _mode(v[cut:], v.size)]
    return [_mode(v, v.size)]


def _mode(side: np.ndarray, total: int) -> Mode:
    """A mode of a few probes: their median, share, 5th and 95th percentiles."""
    low, value, high = np.percentile(side, [5, 50, 95])
    return Mode(float(value), side.size / total, float(low), float(high), int(side.size))


def mode_name(mode: Mode) -> str:
    """How a mode reads in a table: ``30.4 ns``, ``185 ns``."""
    return f"{mode.value:.0f} ns" if mode.value >= 100 else f"{mode.value:.3g} ns"


def nearest(modes: list[Mode], probe: float) -> Mode | None:
    """The mode nearest to one probe on a log scale (None for a missing probe)."""
    if not modes or not (math.isfinite(probe) and probe > 0):
        return None
    return min(modes, key=lambda m: abs(math.log(probe / m.value)))


def classify(modes: list[Mode], before: float, after: float) -> Mode | str:
    """One repetition's mode from its two probes: the mode both fall in (or the one probe
    taken), :data:`MIXED` where they disagree, :data:`UNPROBED` where neither was taken."""
    a, b = nearest(modes, before), nearest(modes, after)
    if a is None and b is None:
        return UNPROBED
    if a is not None and b is not None and a != b:
        return MIXED
    return a if a is not None else b  # type: ignore[return-value]


def has_probes(table: pd.DataFrame) -> bool:
    """Whether any row carries a line probe (native results from before the probes do not)."""
    return all(c in table.columns for c in PROBES) and bool(
        np.isfinite(table[list(PROBES)].to_numpy(dtype=float)).any()
    )


def rep_modes(table: pd.DataFrame, modes: list[Mode]) -> list[Mode | str]:
    """Each row's mode (:func:`classify`), in row order; every row unprobed without probes."""
    if not all(c in table.columns for c in PROBES):
        return [UNPROBED] * len(table)
    before = table[PROBES[0]].to_numpy(dtype=float)
    after = table[PROBES[1]].to_numpy(dtype=float)
    return [classify(modes, float(b), float(a)) for b, a in zip(before, after, strict=True)]


def priced_at(preset: Preset, line_ns: float) -> Preset:
    """The preset with its line transfer at ``line_ns`` and the invalidation scaled alike
    (their ratio kept: the presets tie the two, see the module docstring)."""
    transfer = preset.value("line_transfer_ns")
    invalidate = preset.value("line_invalidate_ns")
    scaled = invalidate * line_ns / transfer if transfer > 0 else line_ns
    return override(override(preset, "line_transfer_ns", line_ns), "line_invalidate_ns", scaled)


def recorded_preset(meta: dict[str, Any]) -> Preset | None:
    """The preset a result set's simulation ran with, rebuilt from its meta.json (so a later
    ``vbench calibrate`` does not change what the comparison re-simulates); None where meta
    holds no single complete preset."""
    presets = meta.get("presets") or {}
    if len(presets) != 1:
        return None
    (name, prov), *_ = presets.items()
    figures = {k: v for k, v in prov.items() if k != "op_costs" and not k.startswith("harness_")}
    harness = {k.removeprefix("harness_"): v for k, v in prov.items() if k.startswith("harness_")}
    try:
        return Preset.model_validate(
            {
                "name": name,
                "figures": figures,
                "op_costs": prov.get("op_costs"),
                "harness": harness or None,
            }
        )
    except ValueError:
        return None


def varies_costs(meta: dict[str, Any]) -> bool:
    """Whether the result set's sweep moves the preset or a cost figure (then no one preset
    priced every point)."""
    swept = [str(k) for k in meta.get("swept") or []]
    return any(k == "preset" or k.startswith("costs.") for k in swept)


def recorded_line_ns(meta: dict[str, Any]) -> float:
    """The line figure the result set's simulation ran at (NaN: unknown, or swept)."""
    preset = None if varies_costs(meta) else recorded_preset(meta)
    return preset.value("line_transfer_ns") if preset is not None else math.nan


class Resimulator:
    """Re-runs a result set's simulated points at a line figure, each (point, model, figure)
    once. Built from the config the result set recorded (meta.json), priced with the preset
    it recorded where one preset served every point; ``notes`` says where it could not."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.notes: list[str] = []
        self.points: dict[int, Any] = {}
        self._cache: dict[tuple[int, str, float], dict[str, Any]] = {}
        raw = meta.get("config")
        if not isinstance(raw, dict) or not raw.get("models"):
            self.notes.append(
                "meta.json records no config: the simulation is shown as it was run, at the "
                "preset's line figure"
            )
            return
        self._plan(raw, meta)

    def _plan(self, raw: dict[str, Any], meta: dict[str, Any]) -> None:
        """The sim points of the recorded config, each with the recorded preset if usable."""
        from vbench.config import plan

        preset = None if varies_costs(meta) else recorded_preset(meta)
        raw = copy.deepcopy(raw)
        if preset is not None:  # the recorded preset holds the overrides already
            raw["preset"] = _STAND_IN
            raw.pop("costs", None)
        else:
            self.notes.append(
                "re-simulated with the presets as they are now (meta.json holds no single "
                "preset for every point)"
            )
        try:
            points = plan(None, raw=raw).points
        except VbenchError as exc:
            self.notes.append(f"cannot re-simulate the recorded config ({exc}): shown as run")
            return
        for p in points:
            if p.engine.kind == "sim":
                self.points[p.index] = (
                    p if preset is None else dataclasses.replace(p, preset=preset)
                )

    def line_ns(self, index: int) -> float:
        """The line figure the point's simulation was run at (NaN: point unknown)."""
        p = self.points.get(index)
        return p.preset.value("line_transfer_ns") if p is not None else math.nan

    def row(self, index: int, label: str, line_ns: float) -> dict[str, Any] | None:
        """The simulated row of one model at one point with the line at ``line_ns`` (None:
        the point or the model is not in the recorded config)."""
        from vbench.sweep import run_point

        p = self.points.get(index)
        models = [m for m in p.models if m[0] == label] if p is not None else []
        if not models:
            return None
        key = (index, label, float(line_ns))
        if key not in self._cache:
            point = dataclasses.replace(p, preset=priced_at(p.preset, line_ns), models=models)
            self._cache[key] = run_point(point)[0]
        return self._cache[key]
