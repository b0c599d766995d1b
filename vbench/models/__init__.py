"""The model registry: every module in this package that exports ``MODEL`` is a model.

Adding a model means adding one module here; nothing else names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from vbench.errors import ConfigError, did_you_mean
from vbench.models.interface import ModelDef


@cache
def registry() -> dict[str, ModelDef]:
    """Name -> model definition, importing (and so registering) every model module."""
    out: dict[str, ModelDef] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "interface":
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        model = getattr(mod, "MODEL", None)
        if isinstance(model, ModelDef):
            out[model.name] = model
    return dict(sorted(out.items()))


def get_model(name: object) -> ModelDef:
    """The model called ``name``; a ConfigError naming the closest model (or all) otherwise."""
    models = registry()
    if not isinstance(name, str) or name not in models:
        hint = did_you_mean(name, list(models)) if isinstance(name, str) else ""
        raise ConfigError(f"unknown model {name!r}{hint}: use one of {', '.join(models)}")
    return models[name]
