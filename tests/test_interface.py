"""vbench.models.interface: a model module's operations are bound by their names."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from vbench.models import registry
from vbench.models.interface import OPS, implement


def _module(**attrs: object) -> types.ModuleType:
    module = types.ModuleType("a_model")
    module.__dict__.update(attrs)
    return module


def test_every_model_defines_every_operation_by_name() -> None:
    """Each registered model's module has a jitted function for each of the ten operations."""
    for model in registry().values():
        module = sys.modules[model.build.__module__]
        for name in OPS:
            assert hasattr(getattr(module, name, None), "py_func"), (module.__name__, name)


def test_implement_names_the_missing_operations() -> None:
    dtype = np.dtype([("not_a_model", np.int64)])
    with pytest.raises(TypeError, match=r"a_model does not define kick_needed, .*enable_kicks"):
        implement(dtype, _module(add=None))


def test_implement_refuses_an_operation_that_is_not_jitted() -> None:
    dtype = np.dtype([("not_a_model", np.int64)])
    plain = {name: (lambda cfg, mem, st, ctr, io: 0) for name in OPS}
    with pytest.raises(TypeError, match=r"a_model\.add, a_model\.kick_needed, .* not jitted"):
        implement(dtype, _module(**plain))
