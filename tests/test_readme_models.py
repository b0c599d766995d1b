"""The README's models table against the models' own definitions (issue 15): every model has a
row, and the row names every option the model takes and no other, so the table cannot drift
from what `vbench models` lists."""

from __future__ import annotations

import re
from pathlib import Path

from vbench.models import registry

README = Path(__file__).resolve().parent.parent / "README.md"


def _models_table() -> dict[str, str]:
    """model name -> its options cell, from the README's `| model | what it is | options |`."""
    rows, inside = {}, False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("| model | what it is | options |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            break
        m = re.match(r"\| `([^`]+)` \|.*\| (.*) \|$", line) if inside else None
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def _options_named(cell: str, rows: dict[str, str]) -> set[str]:
    names = set(re.findall(r"`([a-z_]+)`", cell))
    if "the split options" in cell:  # virtio-mq: one split ring per queue
        names |= _options_named(rows["virtio-split"], rows)
    return names


def test_every_model_has_a_row_naming_exactly_its_options() -> None:
    rows = _models_table()
    models = registry()
    assert set(rows) == set(models)
    for name, definition in models.items():
        options = set(definition.options.model_fields)
        named = _options_named(rows[name], rows) & (options | _all_options(models))
        assert options - named == set(), f"README's {name} row misses {options - named}"
        assert named - options == set(), f"README's {name} row names {named - options}"


def _all_options(models: dict) -> set[str]:
    return {o for d in models.values() for o in d.options.model_fields}


def test_every_option_explains_itself_in_its_definition() -> None:
    missing = [
        f"{name}.{option}"
        for name, definition in registry().items()
        for option, field in definition.options.model_fields.items()
        if not field.description
    ]
    assert missing == []


def test_models_table_fits_120_columns_with_every_what_filled() -> None:
    """`vbench models` in a 120-column terminal: no line wider, no cell cut to "…", and every
    option's row (its first line) carries its explanation."""
    from rich.console import Console

    from vbench.render import models_table

    console = Console(width=120, record=True, force_terminal=False, color_system=None)
    console.print(models_table(registry()))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 120
    assert "…" not in "\n".join(lines)
    options = {o for d in registry().values() for o in d.options.model_fields}
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    first_lines = [r for r in rows if len(r) == 4 and r[1] in options]
    assert len(first_lines) == sum(len(d.options.model_fields) for d in registry().values())
    assert [r[1] for r in first_lines if not r[3]] == []
