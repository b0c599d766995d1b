"""The protocol written once (vbench.protocol) and its two clocks: both engines bind every hook,
a clock missing one is refused, and the simulation's parameter record is what the preset says."""

from __future__ import annotations

import types

import numpy as np
import pytest

from vbench import engine, protocol
from vbench.costs import COST_FIELDS, load_preset
from vbench.native import loops
from vbench.simulation import EngineSpec


@pytest.mark.parametrize("module", [engine, loops], ids=["simulation", "native"])
def test_each_engine_defines_every_hook_jitted(module):
    for name in protocol.HOOKS:
        fn = getattr(module, name, None)
        assert fn is not None, f"{module.__name__} lacks the hook {name}"
        assert hasattr(fn, "py_func"), f"{module.__name__}.{name} is not jitted"


def test_a_clock_missing_a_hook_is_refused_with_its_name():
    partial = types.ModuleType("half_a_clock")
    partial.kick = engine.kick
    dtype = np.dtype([("requests", np.int64), ("batch", np.int64), ("cap", np.int64)])
    with pytest.raises(TypeError, match="missing hooks.*request_ready"):
        protocol.implement_clock(dtype, partial)


def test_one_status_table_for_both_engines():
    """The statuses the protocol returns mean the same in both engines' reports."""
    assert engine.ST_BAD_REQUEST == loops.ST_BAD_ID == protocol.STATUS_BAD_REQUEST
    assert engine.ST_DUPLICATE == loops.ST_DUPLICATE == protocol.STATUS_DUPLICATE
    codes = [v for k, v in vars(protocol).items() if k.startswith("STATUS_") and k != "STATUS_TEXT"]
    assert len(codes) == len(set(codes))
    assert set(protocol.STATUS_TEXT) == set(codes) - {protocol.STATUS_OK, protocol.STATUS_MORE}


@pytest.mark.parametrize("user_space", [False, True])
def test_simulation_parameters_follow_the_preset(user_space):
    preset = load_preset("kvm-modern")
    costs = dict(zip(COST_FIELDS, (float(v) for v in preset.vector()), strict=True))
    spec = EngineSpec(batch=8, device="poll", device_in_user_space=user_space)
    params = engine.new_params(spec, 64, 1000, costs)[0]
    factor = costs["user_space_exit_factor"] if user_space else 1.0
    assert params["exit_ns"] == costs["exit_ns"] * factor
    assert params["irq_exits"] == int(costs["irq_exits"])
    assert params["irq_exits_ns"] == int(costs["irq_exits"]) * costs["exit_ns"]
    assert params["line_ns"] == costs["line_transfer_ns"]
    assert params["barrier_ns"] == costs["full_barrier_ns"]
    assert (params["batch"], params["cap"], params["requests"]) == (8, 64, 1000)
    assert params["device_polls"] and not params["driver_polls"]


def test_native_state_records_fill_whole_lines():
    """Each side's state record is written by one thread only: it fills whole cache lines so
    that the other side's record never shares one."""
    assert loops.STATE.itemsize % 64 == 0
