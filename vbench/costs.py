"""Cost presets: the figures that turn counted events into time.

The simulation only counts events (exits, line transfers, interrupts, wakes); what each event
costs is a separate, swappable model. A result is only as trustworthy as its costs, so every
figure travels with a provenance tag (``M`` measured and published, ``D`` derived from measured
figures, ``E`` an engineering estimate) and a source, and both end up in a run's ``meta.json``.

Presets are TOML files. The builtins ship inside the package (``vbench/presets``); a user may
point at their own file of the same format. Every problem with a preset is reported as a
one-line :class:`~vbench.errors.ConfigError` that names the problem and the fix.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vbench.counters import OPS
from vbench.errors import ConfigError

#: Figure names in the order the jitted engine reads them from :meth:`Preset.vector`.
#: Changing the order silently changes every simulated time, so it is part of the API.
COST_FIELDS: tuple[str, ...] = (
    "line_transfer_ns",
    "exit_ns",
    "user_space_exit_factor",
    "irq_exits",
    "irq_handler_ns",
    "irq_send_ns",
    "wake_ns",
    "vcpu_wake_ns",
    "full_barrier_ns",
    "copy_ns_per_byte",
    "line_invalidate_ns",
)

#: Unit of each figure. The unit is implied by the name (so a file cannot contradict it); this
#: table spells it out for reports.
UNITS: dict[str, str] = {
    name: (
        "ns/byte"
        if name.endswith("_ns_per_byte")
        else "ns"
        if name.endswith("_ns")
        else "count"
        if name.endswith("_exits")
        else "factor"
    )
    for name in COST_FIELDS
}

_TAGS = ("M", "D", "E")
_FIGURE_KEYS = ("value", "tag", "source")


class Figure(BaseModel):
    """One cost figure with its provenance, so guesses stay visibly guesses; optionally the
    range it is known to span (``low``..``high``, with ``range_source`` saying where that range
    comes from), over which ``vbench sensitivity`` tests whether a verdict holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # strict: a quoted "30" or a boolean in a TOML file is a mistake, not a number to coerce.
    value: float = Field(strict=True, ge=0.0, allow_inf_nan=False)
    tag: Literal["M", "D", "E"]
    source: str = Field(min_length=1)
    low: float | None = Field(None, strict=True, ge=0.0, allow_inf_nan=False)
    high: float | None = Field(None, strict=True, ge=0.0, allow_inf_nan=False)
    range_source: str | None = Field(None, min_length=1)

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, v: str) -> str:
        """A whitespace-only source carries no provenance; reject it like an empty one."""
        if not v.strip():
            raise ValueError("must name where the figure comes from")
        return v

    @model_validator(mode="after")
    def _range_brackets_value(self) -> Figure:
        """A range is both ends around the value, with its own provenance, or nothing."""
        given = (self.low is not None, self.high is not None, self.range_source is not None)
        if any(given) and not all(given):
            raise ValueError("a range needs low, high and range_source together")
        if self.low is not None and not (self.low <= self.value <= self.high):
            raise ValueError(
                f"low {self.low} <= value {self.value} <= high {self.high} does not hold"
            )
        return self

    @property
    def has_range(self) -> bool:
        return self.low is not None


class OpCosts(BaseModel):
    """The CPU work of each model's ten ring operations (``ns[model][op]``, nanoseconds, op
    names of :data:`vbench.counters.OPS`): the accessors, the private state and the decisions
    an operation runs besides its line transfers and barriers, which the other figures price.

    One provenance for the table (it is measured, or estimated, as one experiment: ``vbench
    calibrate`` times every operation on one thread, the arena in one core's cache); its range
    is a common factor (``low_factor``..``high_factor`` times every entry), over which ``vbench
    sensitivity`` varies the whole table as the one figure ``op_costs``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: Literal["M", "D", "E"]
    source: str = Field(min_length=1)
    low_factor: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    high_factor: float = Field(ge=1.0, allow_inf_nan=False)
    range_source: str = Field(min_length=1)
    ns: dict[str, dict[str, float]]

    @field_validator("ns")
    @classmethod
    def _every_op_priced(cls, ns: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Each model lists exactly the ten operations, each a finite figure >= 0, stored in
        :data:`OPS` order (the order of the engine's vector)."""
        for model, table in ns.items():
            wrong = sorted(set(table) ^ set(OPS))
            if wrong:
                raise ValueError(
                    f"op_costs.ns.{model}: operations {', '.join(wrong)} missing or unknown; "
                    f"list exactly {', '.join(OPS)}"
                )
            for op, value in table.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"op_costs.ns.{model}.{op}: {value!r} is not a number")
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"op_costs.ns.{model}.{op}: {value} must be finite, >= 0")
        return {m: {op: float(t[op]) for op in OPS} for m, t in ns.items()}

    def scaled(self, factor: float) -> OpCosts:
        """Every operation's figure times ``factor`` (sensitivity's one knob for the table)."""
        ns = {m: {op: v * factor for op, v in t.items()} for m, t in self.ns.items()}
        return self.model_copy(update={"ns": ns})


#: the native engine's own work per request besides the ring operations (payload fill and
#: completion check on the driver's side, payload check on the device's, latency stamps), as
#: ``vbench calibrate`` measures it: a validation run prices it (see docs/calibration.md)
HARNESS_FIELDS: tuple[str, ...] = ("driver_ns", "device_ns")


class Preset(BaseModel):
    """A complete, validated cost model: exactly the figures the engine needs, no more; the
    ring operations' own CPU work (``op_costs``, absent: not priced) and the native engine's
    per-request work (``harness``, only in a calibrated preset) beside them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    figures: dict[str, Figure]
    op_costs: OpCosts | None = None
    harness: dict[str, Figure] | None = None

    @field_validator("harness")
    @classmethod
    def _harness_fields(cls, harness: dict[str, Figure] | None) -> dict[str, Figure] | None:
        if harness is not None and set(harness) != set(HARNESS_FIELDS):
            raise ValueError(f"harness: give exactly {', '.join(HARNESS_FIELDS)}")
        return harness

    @field_validator("figures")
    @classmethod
    def _exact_figure_set(cls, figures: dict[str, Figure]) -> dict[str, Figure]:
        """Reject unknown names (typos would otherwise be silently ignored) and missing ones."""
        valid = ", ".join(COST_FIELDS)
        unknown = [n for n in figures if n not in COST_FIELDS]
        if unknown:
            parts = []
            for n in unknown:
                close = difflib.get_close_matches(n, COST_FIELDS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                parts.append(f"'{n}'{hint}")
            raise ValueError(f"unknown figure {', '.join(parts)}; valid figures are {valid}")
        missing = [n for n in COST_FIELDS if n not in figures]
        if missing:
            raise ValueError(
                f"missing figure {', '.join(repr(n) for n in missing)}; "
                f"add a [figures.<name>] table for each of {valid}"
            )
        # Store in engine order so iteration, provenance and meta.json read the same way.
        return {n: figures[n] for n in COST_FIELDS}

    def vector(self) -> np.ndarray:
        """The figures as a float64 array in :data:`COST_FIELDS` order, for the jitted engine."""
        return np.array([self.figures[n].value for n in COST_FIELDS], dtype=np.float64)

    def value(self, name: str) -> float:
        """One figure's value; an unknown name is a user error (it comes from --set or config)."""
        _check_name(name)
        return self.figures[name].value

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Value, tag and source of every figure, for meta.json, so results cite their costs
        (the operation table and the harness figures under ``op_costs`` and ``harness_*``)."""
        out = {n: f.model_dump(exclude_none=True) for n, f in self.figures.items()}
        if self.op_costs is not None:
            out["op_costs"] = self.op_costs.model_dump()
        for name, figure in (self.harness or {}).items():
            out[f"harness_{name}"] = figure.model_dump(exclude_none=True)
        return out

    def op_vector(self, model: str) -> np.ndarray:
        """The model's ten operation costs in :data:`OPS` order, for the engine; zeros when the
        preset prices no operations. A table that lacks the model is a one-line error."""
        if self.op_costs is None:
            return np.zeros(len(OPS), dtype=np.float64)
        table = self.op_costs.ns.get(model)
        if table is None:
            raise ConfigError(
                f"preset '{self.name}' prices the ring operations of "
                f"{', '.join(self.op_costs.ns)} but not of {model}: add an "
                f'[op_costs.ns."{model}"] table (vbench calibrate measures every model)'
            )
        return np.array([table[op] for op in OPS], dtype=np.float64)


#: The knob that scales a preset's whole operation table (``costs.op_costs_factor = 2`` doubles
#: every operation's cost): the one "figure" by which sensitivity varies the table.
OP_COSTS_FACTOR = "op_costs_factor"


def _check_name(name: str) -> None:
    """Raise a one-line ConfigError for a figure name that is not in :data:`COST_FIELDS`."""
    if name in COST_FIELDS or name == OP_COSTS_FACTOR:
        return
    known = (*COST_FIELDS, OP_COSTS_FACTOR)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"unknown cost figure '{name}'{hint}: use one of {', '.join(known)}")


def _presets_dir() -> Any:
    """The packaged presets folder, found through importlib.resources so zipped installs work."""
    return resources.files("vbench").joinpath("presets")


def builtin_presets() -> list[str]:
    """Names (file stems) of the presets shipped with the package, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _presets_dir().iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def _one_line(text: str) -> str:
    """Collapse whitespace so a message always prints as a single line."""
    return " ".join(text.split())


def _describe_error(err: dict[str, Any]) -> str:
    """Turn one pydantic error into 'dotted.location: what is wrong' in plain words."""
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "literal_error":
        msg = f"must be one of {', '.join(_TAGS)}"
    elif kind == "extra_forbidden":
        if len(err["loc"]) == 3 and err["loc"][0] == "figures":
            allowed = ", ".join(_FIGURE_KEYS)
            msg = f"unknown key (a figure has only {allowed}; the unit follows from its name)"
        else:
            msg = "unknown key (allowed at the top level: name, description, [figures.*])"
    elif kind == "missing":
        msg = "is required"
    elif kind in ("float_type", "float_parsing"):
        msg = "must be a number"
    elif kind == "string_too_short" and loc.endswith("source"):
        msg = "must name where the figure comes from"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
    return f"{loc}: {msg}" if loc else msg


def _validation_message(exc: ValidationError) -> str:
    """Flatten a pydantic ValidationError into one line (first few problems, then a count)."""
    errors = exc.errors()
    shown = "; ".join(_describe_error(e) for e in errors[:3])
    if len(errors) > 3:
        shown += f"; and {len(errors) - 3} more"
    return _one_line(shown)


def _parse(data: bytes, label: str) -> Preset:
    """Parse and validate TOML bytes; ``label`` names the origin in error messages."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends in "(at line N, column M)".
        raise ConfigError(
            _one_line(f"{label}: invalid TOML: {exc}; fix the syntax there")
        ) from None
    try:
        return Preset.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{label}: {_validation_message(exc)}") from None


#: The preset ``vbench calibrate`` writes for this machine, found by name in the user's config
#: directory (it describes one machine, so it never ships with the package).
CALIBRATED = "calibrated"


def calibrated_path() -> Path:
    """Where the ``calibrated`` preset lives: ``$XDG_CONFIG_HOME/vbench/presets/calibrated.toml``
    (``~/.config`` when the variable is unset)."""
    import os

    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "vbench" / "presets" / f"{CALIBRATED}.toml"


def _load_calibrated() -> Preset:
    path = calibrated_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"preset 'calibrated' not found ({path} does not exist yet): "
            "run vbench calibrate on this machine first"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"preset 'calibrated' ({path}): cannot read it ({exc.strerror}); "
            "check its permissions or run vbench calibrate again"
        ) from None
    return _parse(data, f"preset 'calibrated' ({path})")


def load_preset(name_or_path: str) -> Preset:
    """Load a builtin preset by name, or a user preset from a TOML file path.

    A builtin name wins over a same-named file in the working directory, so ``kvm-2009``
    always means the shipped figures; anything with a path separator or a ``.toml`` suffix is
    treated as a path.
    """
    builtins = builtin_presets()
    if name_or_path in builtins:
        data = _presets_dir().joinpath(f"{name_or_path}.toml").read_bytes()
        return _parse(data, f"preset '{name_or_path}'")
    if name_or_path == CALIBRATED:
        return _load_calibrated()

    path = Path(name_or_path)
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path
    names = ", ".join(builtins)
    if not path.exists():
        if looks_like_path:
            raise ConfigError(
                f"preset file {name_or_path} not found: check the path, "
                f"or use a builtin preset ({names})"
            )
        raise ConfigError(
            f"preset '{name_or_path}' not found: use one of {names} "
            "or a path to a preset .toml file"
        )
    if not path.is_file():
        raise ConfigError(f"preset file {name_or_path} is not a file: give a preset .toml file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"preset file {name_or_path}: cannot read it ({exc.strerror}); check its permissions"
        ) from None
    return _parse(data, f"preset file {name_or_path}")


def override(preset: Preset, name: str, value: float) -> Preset:
    """A copy of ``preset`` with one figure's value replaced (e.g. from ``--set``), or with
    its operation table scaled (``name`` :data:`OP_COSTS_FACTOR`, ``value`` the factor).

    The tag is kept, but the source is rewritten to say the user overrode it, so meta.json never
    attributes a user's number to a publication; the figure's range is kept when it still holds
    the new value.
    """
    _check_name(name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"override {name}={value!r}: must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"override {name}={value!r}: must be a finite number >= 0")
    if name == OP_COSTS_FACTOR:
        if preset.op_costs is None:
            raise ConfigError(
                f"override {name}: preset '{preset.name}' prices no ring operations "
                "(no [op_costs] table) to scale; use a preset that has one"
            )
        return preset.model_copy(update={"op_costs": preset.op_costs.scaled(number)})
    old = preset.figures[name]
    figures = dict(preset.figures)
    # the stated range stays while it still brackets the new value (sensitivity varies it there)
    kept = old.has_range and old.low <= number <= old.high
    span = {"low": old.low, "high": old.high, "range_source": old.range_source} if kept else {}
    figures[name] = Figure(
        value=number, tag=old.tag, source=f"overridden by user: {old.source}", **span
    )
    return preset.model_copy(update={"figures": figures})
