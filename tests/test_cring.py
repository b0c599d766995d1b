"""The C ring yardsticks of benchmarks/cring/ (split, in-order split, packed): each builds with
gcc, completes every buffer polling and sleeping with either guest loop (ringtest's, or -l's
rounds as vbench's protocol), notifies only when sleeping (polling with -k, only where its
checks find a notification due), and refuses what it cannot run.
benchmarks/native_bench.py --vs-c measures vbench against them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# benchmarks/ is not a package: load native_bench.py from its path (nothing added to sys.path)
_SPEC = importlib.util.spec_from_file_location(
    "native_bench", Path(__file__).resolve().parent.parent / "benchmarks" / "native_bench.py"
)
native_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(native_bench)

PROGRAMS = ("split_ring", "inorder_ring", "packed_ring")
BUFFERS = 20_000

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="gcc not found: the C rings cannot be built"
)


@pytest.fixture(scope="module")
def exes(tmp_path_factory) -> dict[str, Path]:
    return native_bench.build_c_rings(tmp_path_factory.mktemp("cring"), PROGRAMS)


def _cpus() -> tuple[int, int]:
    """Two allowed CPUs for guest and host (the same one twice on a one-CPU machine)."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) > 1 else (cpus[0], cpus[0])


def test_every_layout_has_a_program():
    assert {prog for prog, _ in native_bench.C_LAYOUTS.values()} == set(PROGRAMS)


@pytest.mark.parametrize("like_vbench", [False, True], ids=["ringtest-loop", "vbench-loop"])
@pytest.mark.parametrize("mode", ["poll", "sleep"])
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("prog", PROGRAMS)
def test_runs_complete_every_buffer(exes, prog, batch, mode, like_vbench):
    """Both guest loops (ringtest's, and -l's rounds as vbench's protocol) complete every
    buffer in both modes: no lost wakeup, the token check passing. Polling like vbench adds -k:
    a split side then notifies once (its first check covers index 0), a packed one never."""
    queue = 16
    if mode == "poll" and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two polling threads need two CPUs")
    out = native_bench.run_c_ring(
        exes[prog], BUFFERS, queue, batch, mode, _cpus(), timeout=60, like_vbench=like_vbench
    )
    assert out["ring"] == prog
    assert (out["buffers"], out["queue"], out["batch"], out["mode"]) == (
        BUFFERS,
        queue,
        batch,
        mode,
    )
    assert out["buffers_per_s"] > 0 and out["seconds"] > 0
    if mode == "poll":
        checked = 1 if like_vbench and prog != "packed_ring" else 0
        assert out["kicks"] == out["calls"] == checked
    else:
        assert 0 < out["kicks"] <= BUFFERS
        assert 0 < out["calls"] <= BUFFERS


@pytest.mark.parametrize(
    ("prog", "notifications"), [("split_ring", 2), ("inorder_ring", 2), ("packed_ring", 0)]
)
def test_polling_with_k_checks_for_notifications(exes, prog, notifications):
    """-k (native_bench's default): polling, the guest still makes its kick check after every
    batch and the host its call check, as vbench's protocol does. Polling peers never move a
    split ring's event indexes from 0 and keep a packed ring's notifications disabled. So a
    split side notifies exactly when what it publishes since its last check includes index 0
    mod 2^16: at the start and, in 70 000 buffers, once after the u16 wrap, whenever its
    checks fall (the intervals between checks partition the indexes)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two polling threads need two CPUs")
    out = native_bench.run_c_ring(exes[prog], 70_000, 16, 4, "poll", _cpus(), timeout=60)
    assert (out["kicks"], out["calls"]) == (notifications, notifications)
    plain = native_bench.run_c_ring(
        exes[prog], 70_000, 16, 4, "poll", _cpus(), timeout=60, like_vbench=False
    )
    assert (plain["kicks"], plain["calls"]) == (0, 0)


@pytest.mark.parametrize("loop", [[], ["-l"]], ids=["ringtest-loop", "vbench-loop"])
@pytest.mark.parametrize("prog", PROGRAMS)
def test_a_corrupted_buffer_aborts(exes, prog, loop):
    done = subprocess.run(
        [str(exes[prog]), "-n", "5000", "-q", "16", "-b", "4", "-s", "-c", "1234", *loop],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "lost, duplicated or corrupted buffer" in done.stderr


@pytest.mark.parametrize(
    ("mode", "like_vbench", "flags"),
    [
        ("poll", True, ["-l", "-k"]),
        ("sleep", True, ["-l", "-s"]),
        ("poll", False, []),
        ("sleep", False, ["-s"]),
    ],
)
def test_the_c_guest_runs_vbenchs_loop_unless_asked_for_ringtests(
    monkeypatch, mode, like_vbench, flags
):
    """--vs-c's C guests run vbench's protocol (-l, and -k when polling); --c-as-ringtest's
    run ringtest's loop and its polling."""
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="ring=split_ring buffers=10\n")

    monkeypatch.setattr(native_bench.subprocess, "run", fake_run)
    out = native_bench.run_c_ring("ring", 10, 16, 4, mode, (0, 1), like_vbench=like_vbench)
    assert out == {"ring": "split_ring", "buffers": 10}
    assert seen == [["ring", "-n", "10", "-q", "16", "-b", "4", *flags, "-g", "0", "-h", "1"]]


@pytest.mark.parametrize("prog", PROGRAMS)
def test_a_batch_larger_than_the_queue_is_refused(exes, prog):
    done = subprocess.run(
        [str(exes[prog]), "-n", "100", "-q", "8", "-b", "16"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        done.stderr.strip()
        == f"{prog}: error: batch must be 0 < batch <= queue (queue 8, batch 16)"
    )


@pytest.mark.parametrize(("prog", "ok"), [("split_ring", False), ("packed_ring", True)])
def test_queue_sizes(exes, prog, ok):
    """A split ring needs a power of two; a packed one takes any size up to 2^15."""
    done = subprocess.run(
        [str(exes[prog]), "-n", "2000", "-q", "12", "-b", "3", "-s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stderr
    if not ok:
        assert "power of two" in done.stderr


def test_c_point_line_format():
    pt = {
        "layout": "packed",
        "mode": "poll",
        "batch": 32,
        "runs": 5,
        "ratio": 0.5,
        "c_median": 20.0,
        "vbench_median": 10.0,
        "load": 0.034,
    }
    assert native_bench.format_c_point(pt) == (
        "vbench/C packed poll b32: 0.50 (median of 5, C 20.00 M/s, vbench 10.00 M/s, load 3 %)"
    )


def test_other_load_is_a_share():
    assert 0.0 <= native_bench.other_load(0.1) <= 1.0
