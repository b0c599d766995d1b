"""Sweep configs: TOML in, a validated list of points out.

A config names the models with their options, the workload, the engine, the cost preset and a
sweep: a cartesian ``product`` of lists and ``zip`` groups of equal-length lists (each group
one axis of the product), over any value of the config addressed by a dotted key::

    engine.batch               workload.segments          workload.priority.shares
    models.<label>.<option>    costs.<figure>             seed / preset

``--set key=value`` overrides any value the same way before the sweep is expanded. Every point
is validated before anything runs, so a typo or an impossible combination costs nothing: it
ends with one line naming the key and the fix (:class:`~vbench.errors.ConfigError`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vbench.errors import ConfigError, did_you_mean


def _dym(word: str, options: list[str]) -> str:
    """A suggestion, or else the valid keys: a config key has few enough to list."""
    return did_you_mean(word, options, list_all=True)


def check_section(section: Any, name: str, keys: Iterable[str], example: str, where: str) -> None:
    """A config section (``[report]``, ``[cluster]``) is a table of known keys: else one line
    naming the problem, with ``example`` and the nearest known key."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: {name} must be a table: {example} (got {section!r})")
    known = list(keys)
    bad = [k for k in section if k not in known]
    if bad:
        raise ConfigError(f"{where}: unknown key '{name}.{bad[0]}'{_dym(bad[0], known)}")


TOP_KEYS = (
    "name",
    "description",
    "seed",
    "preset",
    "costs",
    "workload",
    "engine",
    "models",
    "sweep",
    "report",
)
#: sections that say how results are shown, not what runs: outside the config hash, not swept
PRESENTATION_KEYS = ("report",)
REPORT_KEYS = ("metrics",)
SWEEP_KEYS = ("product", "zip")


@dataclass
class Point:
    """One sweep point: its index, the swept values that define it and the validated specs."""

    index: int
    params: dict[str, Any]
    raw: dict[str, Any]
    seed: int = 0
    workload: Any = None  # WorkloadSpec
    engine: Any = None  # EngineSpec
    models: list[tuple[str, Any, Any]] = field(default_factory=list)  # (label, ModelDef, options)
    preset: Any = None  # Preset


@dataclass
class Plan:
    """A whole run: the config as run (after --set), its hash and every validated point."""

    name: str
    source: str
    raw: dict[str, Any]
    points: list[Point]
    swept: list[str]

    @property
    def config_hash(self) -> str:
        return config_hash(self.raw)


def config_hash(raw: dict[str, Any]) -> str:
    """sha256 of the canonical JSON form of the config as run, less its presentation
    (``[report]``): choosing which metrics a table shows changes no result, so a baseline or a
    run to resume stays the same config."""
    ran = {k: v for k, v in raw.items() if k not in PRESENTATION_KEYS}
    return hashlib.sha256(json.dumps(ran, sort_keys=True, default=str).encode()).hexdigest()


# --- reading ------------------------------------------------------------------------------------
def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} not found: give the path to a .toml sweep config")
    if p.is_dir():
        raise ConfigError(f"{p} is a directory: give the path to a .toml sweep config")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"config file {p} cannot be read ({e.strerror or e}): check its permissions"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {p}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}): "
            "save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(toml_error_line(f"config file {p}", e, text)) from None


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def toml_error_line(where: str, err: tomllib.TOMLDecodeError, text: str) -> str:
    """``<where>, line L, column C: TOML syntax error: <what> (the line: ...): fix the syntax there``.

    tomllib puts the position at the end of its message; a person looks for it first."""
    msg = str(err)
    m = _AT.search(msg)
    if not m:  # "(at end of document)"
        what = msg.replace("(at end of document)", "").strip()
        return f"{where}, at the end: TOML syntax error: {what}: fix the syntax there"
    line, col = int(m.group(1)), int(m.group(2))
    what = msg[: m.start()].strip()
    lines = text.splitlines()
    shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    quoted = f" (the line reads {shown[:80]!r})" if shown else ""
    return f"{where}, line {line}, column {col}: TOML syntax error: {what}{quoted}: fix the syntax there"


def parse_value(text: str) -> Any:
    """A --set value: any TOML value (number, bool, list, inline table), else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _model_entry(raw: dict[str, Any], label: str, key: str) -> dict[str, Any]:
    entries = raw.get("models", [])
    if not isinstance(entries, list):
        raise ConfigError(f'{key}: models must be a list of [[models]] tables with model = "..."')
    labels = [_label_of(m) for m in entries]
    for m in entries:
        if _label_of(m) == label and isinstance(m, dict):
            return m
    raise ConfigError(f"{key}: no model labelled {label!r}{_dym(label, labels)}")


def _label_of(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "?"
    return str(entry.get("label", entry.get("model", "?")))


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key in the raw config (``models.<label>.<opt>`` finds the model by label)."""
    parts = key.split(".")
    if not parts or not all(parts):
        raise ConfigError(f"bad key {key!r}: use a dotted path such as engine.batch")
    head = parts[0]
    if head not in TOP_KEYS:
        raise ConfigError(
            f"unknown key {key!r}: {head!r} is not a config section{_dym(head, list(TOP_KEYS))}"
        )
    if head == "sweep":
        if len(parts) < 3 or parts[1] not in SWEEP_KEYS:
            raise ConfigError(f"bad key {key!r}: use sweep.product.<key> or sweep.zip.<key>")
        raw.setdefault("sweep", {}).setdefault(parts[1], {})[".".join(parts[2:])] = value
        return
    if head == "models":
        if len(parts) != 3:
            raise ConfigError(f"bad key {key!r}: use models.<label>.<option> (a label has no dots)")
        _model_entry(raw, parts[1], key)[parts[2]] = value
        return
    node = raw
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        elif not isinstance(nxt, dict):
            # shorthand values (segments = 4) become their table form when deepened
            nxt = node[p] = _expand_shorthand(p, nxt)
        node = nxt
    node[parts[-1]] = value


def _expand_shorthand(name: str, value: Any) -> dict[str, Any]:
    if name == "segments" and isinstance(value, int):
        return {"kind": "fixed", "count": value}
    if name == "size" and isinstance(value, int):
        return {"kind": "fixed", "bytes": value}
    if name == "arrival" and isinstance(value, str):
        return {"kind": value}
    raise ConfigError(f"cannot set a key below {name!r}: it is {value!r}, not a table")


# --- validation ---------------------------------------------------------------------------------
def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def pydantic_line(exc: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    """One line for the first problem of a pydantic error, with did-you-mean for typos."""
    errs = exc.errors()
    e = errs[0]
    loc = _loc(e["loc"])
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    if e["type"] == "extra_forbidden":
        name = str(e["loc"][-1])
        known = _known_fields(model, e["loc"][:-1]) if model else []
        hint = _dym(name, known) if known else ""
        return f"{where}: unknown key {loc!r}{hint}{more}"
    msg = str(e["msg"]).removeprefix("Value error, ")
    value = e.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) and value is not None else ""
    return f"{where}: {loc}: {msg}{shown}{more}"


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    m: Any = model
    for p in loc:
        f = getattr(m, "model_fields", {}).get(p)
        if f is None:
            return []
        ann = f.annotation
        m = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if m is None:
            return []
    return list(getattr(m, "model_fields", {}))


def _validate_point(raw: dict[str, Any], where: str) -> tuple[Any, Any, list, Any, int]:
    from vbench.simulation import EngineSpec
    from vbench.workload import WorkloadSpec

    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{_dym(unknown[0], list(TOP_KEYS))}")
    _check_name(raw, where)
    seed = raw.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{where}: seed must be a whole number >= 0 (got {seed!r})")
    try:
        wspec = WorkloadSpec.model_validate(raw.get("workload", {}), strict=True)
    except ValidationError as e:
        raise ConfigError(pydantic_line(e, f"{where}: workload", WorkloadSpec)) from None
    try:
        espec = EngineSpec.model_validate(raw.get("engine", {}), strict=True)
    except ValidationError as e:
        raise ConfigError(pydantic_line(e, f"{where}: engine", EngineSpec)) from None
    preset = _validate_preset(raw, where)
    entries = raw.get("models")
    if isinstance(entries, dict):
        raise ConfigError(
            f"{where}: models is one table: write each model as [[models]], with double brackets"
        )
    if not entries or not isinstance(entries, list):
        raise ConfigError(
            f'{where}: no models: add at least one [[models]] table with model = "..."'
        )
    _check_shares_sum(wspec.priority.shares, where)
    native = espec.kind == "native"
    if native:
        from vbench.native.runner import native_problem

        problem = native_problem(None, wspec.arrival.kind == "closed", "")
        if problem:
            raise ConfigError(f"{where}: {problem}")
    needs = needs_for(wspec)  # what the rings must hold: the worst case the workload can ask
    models: list[tuple[str, Any, Any]] = []
    for i, entry in enumerate(entries):
        taken = {label for label, _, _ in models}
        point = (needs, espec.batch, native)
        models.append(_validate_model(entry, (where, i), point, taken))
    return wspec, espec, models, preset, seed


def _validate_preset(raw: dict[str, Any], where: str) -> Any:
    """The point's cost preset, by name or path, with its ``[costs]`` overrides applied."""
    from vbench.costs import load_preset, override

    preset_name = raw.get("preset", "kvm-modern")
    if not isinstance(preset_name, str) or not preset_name:
        raise ConfigError(
            f'{where}: preset must be a name such as "kvm-modern" or a path to a preset .toml '
            f"(got {preset_name!r})"
        )
    costs = raw.get("costs", {})
    if not isinstance(costs, dict):
        raise ConfigError(f"{where}: costs must be a table of figure = value")
    with _located(where):
        preset = load_preset(preset_name)
        for k, v in costs.items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise ConfigError(f"costs.{k} must be a number of the figure's unit (got {v!r})")
            preset = override(preset, str(k), v)
    return preset


def _validate_model(
    entry: Any, where: tuple[str, int], point: tuple[Any, int, bool], taken: set[str]
) -> tuple[str, Any, Any]:
    """One ``[[models]]`` entry as (label, model definition, validated options). ``where``:
    the point's place in the config and the entry's index; ``point``: what the point asks of
    it (the rings' needs, the batch, whether the run is native); ``taken``: the labels of the
    entries before it."""
    from vbench.models import get_model
    from vbench.simulation import check_model

    point_where, index = where
    place = f"{point_where}: models[{index}]"
    needs, batch, native = point
    if not isinstance(entry, dict) or "model" not in entry:
        raise ConfigError(f'{place} needs model = "<name>"')
    opts = {k: v for k, v in entry.items() if k not in ("model", "label")}
    with _located(place):
        mdef = get_model(entry["model"])
    label = entry.get("label", mdef.name)
    if not isinstance(label, str) or not label or "." in label:
        raise ConfigError(
            f"{place}: label must be a string without dots (keys read "
            f'models.<label>.<option>), e.g. label = "fast" (got {label!r})'
        )
    if label in taken:
        raise ConfigError(
            f'{point_where}: two models labelled {label!r}: give each a unique label = "..."'
        )
    named = f"{point_where}: models.{label}"
    try:
        options = mdef.options.model_validate(opts, strict=True)
    except ValidationError as e:
        raise ConfigError(pydantic_line(e, named, mdef.options)) from None
    check_model(mdef, options, needs, batch, named)
    if native:
        from vbench.native.runner import native_problem

        problem = native_problem(options, True, label)
        if problem:
            raise ConfigError(f"{named}: {problem}")
    return label, mdef, options


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def _check_name(raw: dict[str, Any], where: str) -> None:
    """``name`` names the results folder (results/runs/<name>-<time>): one plain word, so it
    can neither nest folders nor climb out of results/runs; ``description`` is text."""
    name = raw.get("name")
    if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise ConfigError(
            f"{where}: name must be one word of letters, digits and . _ + - (it names the "
            f'results folder), e.g. name = "batch-sweep" (got {name!r})'
        )
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise ConfigError(
            f'{where}: description must be text, e.g. description = "..." (got {description!r})'
        )


def _check_shares_sum(shares: list[float], where: str) -> None:
    """Priority shares are each class's fraction of the requests: they must sum to 1. The
    workload would normalise any weights, but shares that do not sum to 1 mean a user meant
    something else (a percentage, a forgotten class), so the config is refused instead."""
    total = math.fsum(shares)
    if abs(total - 1.0) > 1e-9:
        scaled = [round(x / total, 4) for x in shares] if total > 0 else shares
        raise ConfigError(
            f"{where}: workload.priority.shares = {shares} sum to {total:g}, not 1: give each "
            f"class's fraction of the requests (e.g. {scaled})"
        )


@contextlib.contextmanager
def _located(where: str) -> Iterator[None]:
    """Prefix a ConfigError raised by a library call (a preset, a model name) with the place in
    the config it came from, so the one line says which file and which point to fix."""
    try:
        yield
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def needs_for(wspec: Any) -> Any:
    """Worst case the workload can ask for, from its spec (a sample could miss the maximum)."""
    from vbench.models.interface import Needs

    seg = wspec.segments
    max_seg = seg.count if seg.kind == "fixed" else seg.high
    sz = wspec.size
    max_size = {"fixed": sz.bytes, "uniform": sz.high, "mix": max(sz.values)}[sz.kind]
    return Needs(
        max_segments=max(1, min(max_seg, max_size)),
        max_size=max_size,
        classes=wspec.priority.classes,
    )


def expand(
    raw: dict[str, Any], where: str = "config"
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[str]]:
    """The sweep's points as (params, raw config of the point), product axes then the zip axis.

    ``where`` (the config file) starts every error line."""
    sweep = raw.get("sweep", {}) or {}
    if not isinstance(sweep, dict):
        raise ConfigError(
            f"{where}: sweep must be a table with product = {{...}} and/or zip = {{...}}"
        )
    bad = [k for k in sweep if k not in SWEEP_KEYS]
    if bad:
        raise ConfigError(f"{where}: unknown key 'sweep.{bad[0]}'{_dym(bad[0], list(SWEEP_KEYS))}")
    product = sweep.get("product", {}) or {}
    if not isinstance(product, dict):
        raise ConfigError(
            f'{where}: sweep.product must be a table of key = [values], e.g. "engine.batch" = [1, 16]'
        )
    zipped = sweep.get("zip", {}) or {}
    groups = zipped if isinstance(zipped, list) else [zipped] if zipped else []
    axes: list[list[dict[str, Any]]] = []
    seen: dict[str, str] = {}
    for key, values in product.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: sweep.product.{key} must be a non-empty list of values "
                f"(got {values!r}): an empty grid has no point to run"
            )
        _check_axis_key(key, "sweep.product", seen, where)
        _check_distinct([[v] for v in values], f"sweep.product.{key}", where)
        axes.append([{key: v} for v in values])
    zip_keys: list[str] = []
    for group in groups:  # each zip group is one axis: its lists move together
        if not isinstance(group, dict) or not group:
            raise ConfigError(
                f"{where}: sweep.zip must be a table of equal-length lists (or a list of them)"
            )
        lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if any(n <= 0 for n in lengths.values()) or len(set(lengths.values())) != 1:
            detail = ", ".join(f"{k}: {n if n >= 0 else 'not a list'}" for k, n in lengths.items())
            raise ConfigError(
                f"{where}: sweep.zip lists must be non-empty and of one length (got {detail})"
            )
        for key in group:
            _check_axis_key(key, "sweep.zip", seen, where)
        n = next(iter(lengths.values()))
        _check_distinct([[group[k][i] for k in group] for i in range(n)], "sweep.zip", where)
        axes.append([{k: group[k][i] for k in group} for i in range(n)])
        zip_keys += list(group)
    base = {k: v for k, v in raw.items() if k != "sweep"}
    points = []
    for combo in itertools.product(*axes) if axes else [()]:
        params: dict[str, Any] = {}
        for d in combo:
            params.update(d)
        r = copy.deepcopy(base)
        with _located(f"{where}: sweep"):
            for k, v in params.items():
                set_key(r, k, v)
        points.append((params, r))
    swept = list(product) + zip_keys
    return points, swept


def _check_axis_key(key: str, place: str, seen: dict[str, str], where: str) -> None:
    """A swept key names a value of the config, once: not the sweep itself, not two axes."""
    if key.split(".")[0] == "sweep":
        raise ConfigError(
            f"{where}: {place}.{key}: the sweep cannot sweep itself: name a value such as "
            "engine.batch"
        )
    if key.split(".")[0] in PRESENTATION_KEYS:
        raise ConfigError(
            f"{where}: {place}.{key}: [report] says how the results are shown, not what runs: "
            "set it once, outside the sweep"
        )
    if key in seen:
        raise ConfigError(
            f"{where}: {key} is swept twice ({seen[key]} and {place}): sweep each key once"
        )
    seen[key] = place


def _check_distinct(rows: list[list[Any]], place: str, where: str) -> None:
    """The values of one axis, each once: a repeated value would run the same points twice."""
    shown: set[str] = set()
    for row in rows:
        text = json.dumps(row, sort_keys=True, default=str)
        if text in shown:
            value = row[0] if len(row) == 1 else row
            raise ConfigError(f"{where}: {place} lists {value!r} twice: give each value once")
        shown.add(text)


def plan(
    path: str | Path | None, sets: list[str] | None = None, raw: dict[str, Any] | None = None
) -> Plan:
    """Read, override, expand and validate a config; raises ConfigError with one line."""
    if raw is None:
        if path is None:
            raise ConfigError("no config given: pass a .toml file such as configs/default.toml")
        raw = read_toml(path)
    raw = copy.deepcopy(raw)
    raw.pop("cluster", None)  # where the points run (vbench.cluster), not what they compute
    for s in sets or []:
        if "=" not in s:
            raise ConfigError(f"--set {s!r}: use --set key=value, e.g. --set engine.batch=32")
        k, v = s.split("=", 1)
        with _located(f"--set {s!r}"):
            set_key(raw, k.strip(), parse_value(v.strip()))
    where = str(path) if path else "config"
    pts, swept = expand(raw, where)
    if raw.get("sweep"):  # the base values too: one the sweep overrides may still be a mistake
        base = {k: v for k, v in raw.items() if k != "sweep"}
        _validate_point(base, f"{where} (the values outside [sweep])")
    points = []
    for i, (params, r) in enumerate(pts):
        label = f"{where}" if len(pts) == 1 else f"{where} (point {i}: {_fmt(params)})"
        wspec, espec, models, preset, seed = _validate_point(r, label)
        points.append(Point(i, params, r, seed, wspec, espec, models, preset))
    _check_report(raw, points, where)
    name = str(raw.get("name") or (Path(path).stem if path else "run"))
    return Plan(name, where, raw, points, swept)


_EXAMPLES = ("lat_p99_ns", "requests_per_s", "c1_lat_p99_ns", "measured_requests_per_s")


def _check_report(raw: dict[str, Any], points: list[Point], where: str) -> None:
    """``[report] metrics``: a non-empty list of metrics the config's runs produce, each once
    (a simulated run's figures, per-class ones up to its classes; a native run's measured_*)."""
    from vbench.metrics import metric_names

    if "report" not in raw:
        return
    report = raw["report"]
    example = 'e.g. [report] metrics = ["lat_p99_ns", "requests_per_s"]'
    check_section(report, "report", REPORT_KEYS, example, where)
    metrics = report.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(
            f"{where}: report.metrics must be a non-empty list of metric names, {example} "
            f"(got {metrics!r})"
        )
    native = [p.engine.kind == "native" for p in points]
    classes = max(p.workload.priority.classes for p in points)
    known = metric_names(classes, simulated=not all(native), native=any(native))
    for m in metrics:
        if m not in known:
            examples = [e for e in _EXAMPLES if e in known]
            hint = did_you_mean(m, known) or f" (e.g. {', '.join(examples)})"
            raise ConfigError(
                f"{where}: report.metrics: unknown metric {m!r}: not a column of this config's "
                f"results{hint}"
            )
    _check_distinct([[m] for m in metrics], "report.metrics", where)


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
