"""Tests for cost presets: builtins are complete and sourced, bad user files fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vbench.costs import (
    COST_FIELDS,
    builtin_presets,
    load_preset,
    override,
)
from vbench.errors import ConfigError

BUILTINS = ["kvm-2009", "kvm-modern"]


def _write_preset(path: Path, figures: dict[str, float], **extra_keys: str) -> Path:
    lines = ['name = "mine"', 'description = "test preset"']
    for name, value in figures.items():
        lines += [f"[figures.{name}]", f"value = {value!r}", 'tag = "E"', 'source = "test"']
        for key, text in extra_keys.items():
            lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _all_figures() -> dict[str, float]:
    return {name: float(i + 1) for i, name in enumerate(COST_FIELDS)}


def test_builtin_presets_are_listed() -> None:
    assert builtin_presets() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_preset_is_complete_and_sourced(name: str) -> None:
    preset = load_preset(name)
    assert preset.name == name
    assert preset.description
    assert list(preset.figures) == list(COST_FIELDS)
    for field, fig in preset.figures.items():
        assert fig.tag in ("M", "D", "E"), field
        assert fig.source.strip(), field
        assert fig.value >= 0.0, field
    prov = preset.provenance()
    assert list(prov) == [*COST_FIELDS, "op_costs"]  # the operation table cited with the rest
    assert all(
        set(prov[n]) == {"value", "tag", "source", "low", "high", "range_source"}
        for n in COST_FIELDS
    )
    assert prov["op_costs"]["tag"] == "E" and prov["op_costs"]["source"].strip()


def test_builtin_figures_match_the_reference() -> None:
    old, new = load_preset("kvm-2009"), load_preset("kvm-modern")
    assert (old.value("exit_ns"), old.figures["exit_ns"].tag) == (680.0, "M")
    assert (new.value("line_transfer_ns"), new.figures["line_transfer_ns"].tag) == (50.0, "M")
    assert old.value("irq_exits") == 2.0 and new.value("irq_exits") == 0.0
    assert 350.0 <= new.value("exit_ns") <= 700.0


@pytest.mark.parametrize("name", BUILTINS)
def test_vector_is_in_cost_fields_order(name: str) -> None:
    preset = load_preset(name)
    vec = preset.vector()
    assert vec.dtype == np.float64 and vec.shape == (len(COST_FIELDS),)
    assert list(vec) == [preset.value(f) for f in COST_FIELDS]


def test_vector_order_follows_cost_fields_not_file_order(tmp_path: Path) -> None:
    figures = dict(reversed(list(_all_figures().items())))
    preset = load_preset(str(_write_preset(tmp_path / "p.toml", figures)))
    assert list(preset.vector()) == [float(i + 1) for i in range(len(COST_FIELDS))]


def test_unknown_preset_name_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_preset("kvm-2010")
    msg = str(err.value)
    assert "\n" not in msg
    assert "kvm-2010" in msg
    for name in BUILTINS:
        assert name in msg


def test_missing_preset_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_preset(str(tmp_path / "nope.toml"))
    assert "nope.toml" in str(err.value) and "\n" not in str(err.value)


def test_user_preset_file_loads(tmp_path: Path) -> None:
    preset = load_preset(str(_write_preset(tmp_path / "p.toml", _all_figures())))
    assert preset.name == "mine"
    assert preset.value("exit_ns") == 2.0


def test_typo_in_figure_name_is_reported(tmp_path: Path) -> None:
    figures = _all_figures()
    figures["exit_nss"] = figures.pop("exit_ns")
    with pytest.raises(ConfigError) as err:
        load_preset(str(_write_preset(tmp_path / "typo.toml", figures)))
    msg = str(err.value)
    assert "\n" not in msg
    assert "exit_nss" in msg and "typo.toml" in msg
    assert "exit_ns'" in msg  # the suggestion / list of valid names


def test_missing_figure_is_reported(tmp_path: Path) -> None:
    figures = _all_figures()
    del figures["wake_ns"]
    with pytest.raises(ConfigError) as err:
        load_preset(str(_write_preset(tmp_path / "short.toml", figures)))
    assert "wake_ns" in str(err.value) and "\n" not in str(err.value)


def test_bad_tag_is_reported_on_one_line(tmp_path: Path) -> None:
    path = _write_preset(tmp_path / "x.toml", _all_figures())
    path.write_text(path.read_text().replace('tag = "E"', 'tag = "X"', 1))
    with pytest.raises(ConfigError) as err:
        load_preset(str(path))
    msg = str(err.value)
    assert "\n" not in msg
    assert "figures.line_transfer_ns.tag: must be one of M, D, E" in msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("value = 1.0", "value = -1.0", "figures.line_transfer_ns.value"),
        ("value = 1.0", 'value = "1.0"', "must be a number"),
        ('source = "test"', 'source = ""', "figures.line_transfer_ns.source"),
        ('tag = "E"', 'tag = "E"\nunit = "ns"', "figures.line_transfer_ns.unit: unknown key"),
    ],
)
def test_bad_figure_fields_are_reported(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _write_preset(tmp_path / "x.toml", _all_figures())
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_preset(str(path))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[figures.exit_ns\nvalue = 1\n')
    with pytest.raises(ConfigError) as err:
        load_preset(str(path))
    msg = str(err.value)
    assert "\n" not in msg and "broken.toml" in msg and "line 2" in msg


def test_override_replaces_value_and_marks_source() -> None:
    base = load_preset("kvm-2009")
    changed = override(base, "exit_ns", 123.0)
    assert changed.value("exit_ns") == 123.0
    assert changed.figures["exit_ns"].tag == base.figures["exit_ns"].tag
    assert changed.figures["exit_ns"].source == (
        "overridden by user: " + base.figures["exit_ns"].source
    )
    assert base.value("exit_ns") == 680.0  # original untouched
    assert changed.vector()[COST_FIELDS.index("exit_ns")] == 123.0


def test_override_unknown_name_raises() -> None:
    with pytest.raises(ConfigError) as err:
        override(load_preset("kvm-2009"), "exit_nss", 1.0)
    assert "exit_nss" in str(err.value) and "\n" not in str(err.value)


def test_override_negative_value_raises() -> None:
    with pytest.raises(ConfigError):
        override(load_preset("kvm-2009"), "exit_ns", -5.0)


def test_value_of_unknown_name_raises() -> None:
    with pytest.raises(ConfigError):
        load_preset("kvm-modern").value("nope")


def test_a_figure_range_must_bracket_its_value_and_say_where_it_comes_from() -> None:
    from pydantic import ValidationError

    from vbench.costs import Figure

    ok = Figure(value=50.0, tag="M", source="s", low=17.0, high=185.0, range_source="r")
    assert ok.has_range and (ok.low, ok.high) == (17.0, 185.0)
    assert not Figure(value=1.0, tag="E", source="s").has_range
    for bad in (
        {"low": 60.0, "high": 185.0, "range_source": "r"},  # low above the value
        {"low": 17.0, "high": 40.0, "range_source": "r"},  # high below it
        {"low": 17.0, "high": 185.0},  # no provenance for the range
        {"low": 17.0},  # one end only
    ):
        with pytest.raises(ValidationError):
            Figure(value=50.0, tag="M", source="s", **bad)


@pytest.mark.parametrize("name", ["kvm-modern", "kvm-2009"])
def test_shipped_presets_state_a_range_for_every_figure(name: str) -> None:
    """vbench sensitivity varies each figure across its stated range: every shipped figure
    has one, and provenance (meta.json) carries it."""
    preset = load_preset(name)
    for figure_name, figure in preset.figures.items():
        assert figure.has_range, figure_name
        assert figure.range_source.strip(), figure_name
    assert {"low", "high", "range_source"} <= set(preset.provenance()["line_transfer_ns"])
