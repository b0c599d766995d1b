"""The protocol written once (vbench.protocol) and its two clocks: both engines bind every hook,
a clock missing one is refused, and the simulation's parameter record is what the preset says."""

from __future__ import annotations

import types

import numpy as np
import pytest

from vbench import engine, protocol
from vbench.costs import COST_FIELDS, load_preset
from vbench.native import loops, runner
from vbench.simulation import EngineSpec

LINE_BYTES = 64


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


def _lines(record: np.ndarray) -> set[int]:
    """The 64-byte cache lines an array's bytes lie on."""
    start = record.ctypes.data
    return set(range(start // LINE_BYTES, (start + record.nbytes - 1) // LINE_BYTES + 1))


def test_native_state_records_fill_whole_lines():
    """Each side's state record is written by one thread only: the record fills whole cache
    lines, and the two records the runner allocates (as run_once does) start on lines of their
    own, so the threads never share a line through them (false sharing would skew timings)."""
    assert loops.STATE.itemsize % LINE_BYTES == 0
    driver, device = runner._Side(), runner._Side()
    for side in (driver, device):
        assert side.state.dtype == loops.STATE
        assert side.state.ctypes.data % LINE_BYTES == 0
    assert driver.state.ctypes.data // LINE_BYTES != device.state.ctypes.data // LINE_BYTES
    assert not _lines(driver.state) & _lines(device.state)
