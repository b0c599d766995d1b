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

import copy
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vbench.errors import ConfigError, did_you_mean


def _dym(word: str, options: list[str]) -> str:
    """A suggestion, or else the valid keys: a config key has few enough to list."""
    return did_you_mean(word, options, list_all=True)


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
)
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
    """sha256 of the canonical JSON form of the config as run."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


# --- reading ------------------------------------------------------------------------------------
def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} not found: give the path to a .toml sweep config")
    if p.is_dir():
        raise ConfigError(f"{p} is a directory: give the path to a .toml sweep config")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p}: TOML syntax error: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} cannot be read: {e}") from None


def parse_value(text: str) -> Any:
    """A --set value: any TOML value (number, bool, list, inline table), else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _model_entry(raw: dict[str, Any], label: str, key: str) -> dict[str, Any]:
    labels = [_label_of(m) for m in raw.get("models", [])]
    for m in raw.get("models", []):
        if _label_of(m) == label:
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
            raise ConfigError(f"bad key {key!r}: use models.<label>.<option>")
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
    msg = e["msg"]
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
    from vbench.costs import load_preset, override
    from vbench.models import get_model
    from vbench.simulation import EngineSpec, check_model
    from vbench.workload import WorkloadSpec

    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{_dym(unknown[0], list(TOP_KEYS))}")
    seed = raw.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{where}: seed must be a whole number >= 0 (got {seed!r})")
    try:
        wspec = WorkloadSpec.model_validate(raw.get("workload", {}))
    except ValidationError as e:
        raise ConfigError(pydantic_line(e, f"{where}: workload", WorkloadSpec)) from None
    try:
        espec = EngineSpec.model_validate(raw.get("engine", {}))
    except ValidationError as e:
        raise ConfigError(pydantic_line(e, f"{where}: engine", EngineSpec)) from None
    preset = load_preset(str(raw.get("preset", "kvm-modern")))
    costs = raw.get("costs", {})
    if not isinstance(costs, dict):
        raise ConfigError(f"{where}: costs must be a table of figure = value")
    for k, v in costs.items():
        preset = override(preset, k, v)
    entries = raw.get("models")
    if not entries or not isinstance(entries, list):
        raise ConfigError(
            f'{where}: no models: add at least one [[models]] table with model = "..."'
        )
    needs = needs_for(wspec)  # what the rings must hold: the worst case the workload can ask
    models, labels = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "model" not in entry:
            raise ConfigError(f'{where}: models[{i}] needs model = "<name>"')
        opts = {k: v for k, v in entry.items() if k not in ("model", "label")}
        mdef = get_model(str(entry["model"]))
        label = str(entry.get("label", mdef.name))
        if label in labels:
            raise ConfigError(
                f'{where}: two models labelled {label!r}: give each a unique label = "..."'
            )
        labels.add(label)
        try:
            o = mdef.options.model_validate(opts)
        except ValidationError as e:
            raise ConfigError(pydantic_line(e, f"{where}: models.{label}", mdef.options)) from None
        check_model(mdef, o, needs, espec.batch, f"{where}: models.{label}")
        models.append((label, mdef, o))
    return wspec, espec, models, preset, seed


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


def expand(raw: dict[str, Any]) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[str]]:
    """The sweep's points as (params, raw config of the point), product axes then the zip axis."""
    sweep = raw.get("sweep", {}) or {}
    if not isinstance(sweep, dict):
        raise ConfigError("sweep must be a table with product = {...} and/or zip = {...}")
    bad = [k for k in sweep if k not in SWEEP_KEYS]
    if bad:
        raise ConfigError(f"unknown key 'sweep.{bad[0]}'{_dym(bad[0], list(SWEEP_KEYS))}")
    product = sweep.get("product", {}) or {}
    zipped = sweep.get("zip", {}) or {}
    groups = zipped if isinstance(zipped, list) else [zipped] if zipped else []
    axes: list[list[dict[str, Any]]] = []
    for key, values in product.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.product.{key} must be a non-empty list of values")
        axes.append([{key: v} for v in values])
    zip_keys: list[str] = []
    for group in groups:  # each zip group is one axis: its lists move together
        if not isinstance(group, dict) or not group:
            raise ConfigError("sweep.zip must be a table of equal-length lists (or a list of them)")
        lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if any(n <= 0 for n in lengths.values()) or len(set(lengths.values())) != 1:
            detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise ConfigError(f"sweep.zip lists must be non-empty and of one length (got {detail})")
        n = next(iter(lengths.values()))
        axes.append([{k: group[k][i] for k in group} for i in range(n)])
        zip_keys += list(group)
    base = {k: v for k, v in raw.items() if k != "sweep"}
    points = []
    for combo in itertools.product(*axes) if axes else [()]:
        params: dict[str, Any] = {}
        for d in combo:
            params.update(d)
        r = copy.deepcopy(base)
        for k, v in params.items():
            set_key(r, k, v)
        points.append((params, r))
    swept = list(product) + zip_keys
    return points, swept


def plan(
    path: str | Path | None, sets: list[str] | None = None, raw: dict[str, Any] | None = None
) -> Plan:
    """Read, override, expand and validate a config; raises ConfigError with one line."""
    if raw is None:
        if path is None:
            raise ConfigError("no config given: pass a .toml file such as configs/default.toml")
        raw = read_toml(path)
    raw = copy.deepcopy(raw)
    for s in sets or []:
        if "=" not in s:
            raise ConfigError(f"--set {s!r}: use --set key=value, e.g. --set engine.batch=32")
        k, v = s.split("=", 1)
        set_key(raw, k.strip(), parse_value(v.strip()))
    where = str(path) if path else "config"
    pts, swept = expand(raw)
    points = []
    for i, (params, r) in enumerate(pts):
        label = f"{where}" if len(pts) == 1 else f"{where} (point {i}: {_fmt(params)})"
        wspec, espec, models, preset, seed = _validate_point(r, label)
        points.append(Point(i, params, r, seed, wspec, espec, models, preset))
    name = str(raw.get("name") or (Path(path).stem if path else "run"))
    return Plan(name, where, raw, points, swept)


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
