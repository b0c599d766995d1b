"""Fuzz the loaders: whatever a user feeds them, they load or fail with the documented error.

The config loader (:func:`vbench.config.plan`) gets random bytes, mutated copies of the shipped
configs and random dicts built from the real keys with values of any TOML type; the result
loader (:func:`vbench.results.load`) gets folders whose meta.json, results.csv and
results.parquet are random or mutated copies of a real small result. Each either succeeds or
raises :class:`~vbench.errors.VbenchError` (whose message is one line): any other exception is
a traceback a user would see. Nothing is simulated here: ``plan`` only validates.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vbench import config, results
from vbench.cli import app
from vbench.errors import VbenchError
from vbench.models import registry
from vbench.simulation import EngineSpec
from vbench.workload import ArrivalSpec, PrioritySpec, SegmentsSpec, SizeSpec, WorkloadSpec

ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEXTS = [
    (ROOT / "configs" / n).read_text() for n in ("ci.toml", "default.toml", "priority.toml")
] + [(ROOT / "tests" / "bad_inputs" / "good.toml").read_text()]

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _loads_or_fails_cleanly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``: a result, or None after a VbenchError whose message is one line."""
    try:
        return fn(*args, **kwargs)
    except VbenchError as e:
        msg = str(e)
        assert msg and "\n" not in msg.strip(), repr(msg)
        return None


# --- the config loader ------------------------------------------------------------------------
TOML_SCRAPS = list("[]{}=\",.'#\n -_0123456789aeftrux") + [
    "[[models]]\n",
    "[engine]\n",
    "[sweep.product]\n",
    '"engine.batch" = []\n',
    "= [1, 2]\n",
    "true",
    "nan",
    "inf",
    "1979-05-27",
    '"""',
    "\\u00e9",
    "\xff",
]


@st.composite
def mutated_text(draw: st.DrawFn) -> bytes:
    """A shipped config with a few random edits: cuts, insertions, duplicated lines."""
    text = draw(st.sampled_from(CONFIG_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["cut", "insert", "dup"]))
        if op == "cut":
            text = text[:i] + text[i + draw(st.integers(1, 40)) :]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(TOML_SCRAPS)) + text[i:]
        else:
            lines = text.splitlines(keepends=True)
            j = draw(st.integers(0, max(len(lines) - 1, 0)))
            text = "".join(lines[: j + 1] + lines[j:])
    return text.encode("utf-8", errors="surrogateescape")


def _tmp_toml(data: bytes) -> Path:
    d = Path(tempfile.mkdtemp(prefix="vbench-fuzz-"))
    f = d / "fuzz.toml"
    f.write_bytes(data)
    return f


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated_text()))
def test_plan_on_random_toml_text_loads_or_fails_cleanly(data: bytes) -> None:
    f = _tmp_toml(data)
    try:
        out = _loads_or_fails_cleanly(config.plan, f)
        assert out is None or isinstance(out, config.Plan)
    finally:
        shutil.rmtree(f.parent)


def _fields(model: Any) -> list[str]:
    return list(model.model_fields)


SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 3, 4, 7, 8, 16, 24, 64, 256, 4096, 65536, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(
        ["closed", "poisson", "onoff", "fixed", "mix", "range", "uniform", "sleep", "poll"]
        + ["interrupt", "add", "kick", "pool", "flat", "designed", "shipped", "kvm-2009"]
        + ["virtio-split", "vbus-ioq", "device-reads", "x.toml", "a/b"]
    ),
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _table(keys: list[str], values: Any = VALUES) -> Any:
    """A table of some of ``keys`` (and now and then a typo), each with a random value."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=10))
    return st.dictionaries(key, values, max_size=len(keys))


MODEL_NAMES = list(registry())
MODEL_OPTIONS = sorted({f for m in registry().values() for f in _fields(m.options)})
SUB_TABLES = {
    "arrival": _fields(ArrivalSpec),
    "size": _fields(SizeSpec),
    "segments": _fields(SegmentsSpec),
    "priority": _fields(PrioritySpec),
}
WORKLOAD = st.fixed_dictionaries(
    {},
    optional={
        k: (_table(SUB_TABLES[k]) | VALUES) if k in SUB_TABLES else VALUES
        for k in _fields(WorkloadSpec)
    },
)
ENGINE = _table(_fields(EngineSpec))
MODEL_ENTRY = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(MODEL_NAMES), SCALARS)},
    optional={"label": SCALARS, **{o: VALUES for o in MODEL_OPTIONS}},
)
DOTTED = (
    [f"engine.{k}" for k in _fields(EngineSpec)]
    + [f"workload.{k}" for k in _fields(WorkloadSpec)]
    + [f"workload.{t}.{k}" for t, ks in SUB_TABLES.items() for k in ks]
    + [f"models.{m}.{o}" for m in ("virtio-split", "vbus-ioq") for o in MODEL_OPTIONS[:6]]
    + ["seed", "preset", "costs.exit_ns", "nosuch.key", "models.x", "engine..batch", ""]
)
SWEEP = st.fixed_dictionaries(
    {},
    optional={
        "product": st.one_of(
            st.dictionaries(st.sampled_from(DOTTED), st.lists(VALUES, max_size=3), max_size=3),
            VALUES,
        ),
        "zip": st.one_of(
            st.dictionaries(st.sampled_from(DOTTED), st.lists(VALUES, max_size=3), max_size=2),
            st.lists(
                st.dictionaries(st.sampled_from(DOTTED), st.lists(VALUES, max_size=3)),
                max_size=2,
            ),
            VALUES,
        ),
    },
)
RAW = st.fixed_dictionaries(
    {},
    optional={
        "name": SCALARS,
        "seed": SCALARS,
        "preset": st.one_of(st.sampled_from(["kvm-2009", "kvm-modern", "nope"]), SCALARS),
        "costs": st.one_of(_table(["exit_ns", "line_transfer_ns", "wake_ns"]), VALUES),
        "workload": st.one_of(WORKLOAD, VALUES),
        "engine": st.one_of(ENGINE, VALUES),
        "models": st.one_of(st.lists(MODEL_ENTRY, max_size=3), VALUES),
        "sweep": st.one_of(SWEEP, VALUES),
    },
)
SECTIONS = ["name", "seed", "preset", "costs", "workload", "engine", "models", "sweep"]
SECTIONS += ["sweep.product", "sweep.zip", "sweep.product.engine.batch", "costs.exit_ns"]
GOOD = tomllib.loads(CONFIG_TEXTS[-1]) | {"sweep": {"product": {"engine.batch": [1, 4]}}}


@st.composite
def edited_good(draw: st.DrawFn) -> dict:
    """The valid config with a few real keys set to random values (or removed): most of these
    get past the syntax to the checks on values and combinations."""
    raw = copy.deepcopy(GOOD)
    raw["models"].append({"model": draw(st.sampled_from(MODEL_NAMES))})
    for _ in range(draw(st.integers(1, 3))):
        value = draw(VALUES)
        # a model's option, in an entry that is still a table (an earlier edit may have set
        # the whole models section to a random value, a list of numbers say)
        models = raw.get("models")
        entries = [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
        if entries and draw(st.booleans()):
            entry = draw(st.sampled_from(entries))
            entry[draw(st.sampled_from(MODEL_OPTIONS))] = value
            continue
        path = draw(st.sampled_from([k for k in DOTTED + SECTIONS if k and ".." not in k]))
        node: Any = raw
        *parents, last = path.split(".")
        if parents[:1] == ["models"]:
            continue
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            if draw(st.integers(0, 4)) == 0:
                node.pop(last, None)
            else:
                node[last] = value
    return raw


SETS = st.lists(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(DOTTED),
        st.sampled_from(["1", "0", "-3", "2.5", "true", '"x"', "[]", "[1, 2]", "{}", "nan"])
        | st.text(max_size=8),
    )
    | st.text(max_size=12),
    max_size=2,
)


@FUZZ
@given(st.one_of(RAW, edited_good(), edited_good()), SETS)
def test_plan_on_random_dicts_loads_or_fails_cleanly(raw: dict, sets: list[str]) -> None:
    out = _loads_or_fails_cleanly(config.plan, None, sets, raw=raw)
    assert out is None or isinstance(out, config.Plan)


def test_the_fuzzer_reaches_valid_plans() -> None:
    """The strategies are not all noise: near-valid inputs do produce plans."""
    assert isinstance(config.plan(None, raw=GOOD), config.Plan)
    f = _tmp_toml(CONFIG_TEXTS[-1].encode())
    assert isinstance(config.plan(f), config.Plan)
    shutil.rmtree(f.parent)


# --- the result loader ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real result folder (good.toml: 200 requests, two models, one point)."""
    out = tmp_path_factory.mktemp("fuzz") / "good"
    cfg = ROOT / "tests" / "bad_inputs" / "good.toml"
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.stderr
    return out


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "flip", "insert", "truncate"]))
        if op == "cut":
            data = data[:i] + data[i + draw(st.integers(1, 30)) :]
        elif op == "flip" and i < len(data):
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif op == "insert":
            data = (
                data[:i]
                + draw(st.sampled_from([b",", b"\n", b'"', b"x", b"\xff", b"-1"]))
                + data[i:]
            )
        else:
            data = data[:i]
    return data


@st.composite
def damaged_meta(draw: st.DrawFn, meta: dict) -> bytes:
    how = draw(st.sampled_from(["random", "keys", "bytes"]))
    if how == "random":
        return json.dumps(draw(JSON)).encode()
    if how == "keys":
        m = dict(meta)
        for key in draw(st.lists(st.sampled_from(sorted(m)), max_size=4)):
            if draw(st.booleans()):
                m.pop(key, None)
            else:
                m[key] = draw(JSON)
        return json.dumps(m).encode()
    return _mutate_bytes(draw, json.dumps(meta).encode())


@st.composite
def damaged_frame(draw: st.DrawFn, df: pd.DataFrame) -> pd.DataFrame:
    """The table edited as a person might: columns dropped, renamed, values replaced."""
    df = df.copy()
    cols = list(df.columns)
    for _ in range(draw(st.integers(1, 3))):
        c = draw(st.sampled_from(cols))
        if c not in df.columns:
            continue
        op = draw(st.sampled_from(["drop", "rename", "value", "rows"]))
        if op == "drop":
            df = df.drop(columns=c)
        elif op == "rename":
            df = df.rename(columns={c: draw(st.sampled_from([*cols, "x", ""]))})
        elif op == "value" and len(df):
            df[c] = df[c].astype(object)
            df.loc[df.index[0], c] = draw(
                st.none() | st.text(max_size=5) | st.floats() | st.integers(-5, 5)
            )
        else:
            df = df.iloc[: draw(st.integers(0, len(df)))]
    return df


@st.composite
def damaged_folder(draw: st.DrawFn, tiny: Path) -> dict[str, bytes | None]:
    """New contents (None: delete) for some of the folder's files."""
    meta = json.loads((tiny / "meta.json").read_text())
    df = pd.read_parquet(tiny / "results.parquet")
    out: dict[str, bytes | None] = {}
    for name in ("meta.json", "results.csv", "results.parquet"):
        how = draw(st.sampled_from(["keep", "keep", "delete", "bytes", "edit"]))
        if how == "delete":
            out[name] = None
        elif how == "bytes":
            out[name] = _mutate_bytes(draw, (tiny / name).read_bytes())
        elif how == "edit":
            if name == "meta.json":
                out[name] = draw(damaged_meta(meta))
            else:
                edited = draw(damaged_frame(df))
                out[name] = (
                    edited.to_csv(index=False).encode()
                    if name.endswith(".csv")
                    else _parquet_bytes(edited)
                )
    return out


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import io

    # what pyarrow cannot store (a mixed-type column, two columns of one name) is stored as
    # text, then without the duplicate
    unique = df.loc[:, ~df.columns.duplicated()]
    for attempt in (df, df.astype(str), unique.astype(str)):
        buf = io.BytesIO()
        try:
            attempt.to_parquet(buf, index=False)
            return buf.getvalue()
        except Exception:
            continue
    raise AssertionError("unreachable: a text table with unique columns is storable")


@settings(FUZZ, max_examples=200, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_results_load_on_damaged_folders_loads_or_fails_cleanly(tiny: Path, data: Any) -> None:
    from vbench import compare

    changes = data.draw(damaged_folder(tiny))
    d = Path(tempfile.mkdtemp(prefix="vbench-fuzz-")) / "r"
    try:
        shutil.copytree(tiny, d)
        for name, content in changes.items():
            if content is None:
                (d / name).unlink()
            else:
                (d / name).write_bytes(content)
        rs = _loads_or_fails_cleanly(results.load, d)
        if rs is not None:  # what loads must be usable: the readers fail only cleanly too
            _loads_or_fails_cleanly(compare.side_by_side, rs, None, None, None)
            _loads_or_fails_cleanly(compare.compare_sets, rs, rs)
    finally:
        shutil.rmtree(d.parent)
