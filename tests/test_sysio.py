"""The native engine's kernel interface: eventfd counter semantics, bounded waits, pinning."""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np
import pytest
from numba import njit

from vbench.native import sysio


@pytest.fixture
def efd():
    fd = sysio.eventfd()
    yield fd
    sysio.close(fd)


@njit(nogil=True)
def _signal_times(fd: int, n: int) -> int:
    """Signal ``n`` times from nopython code; the sum of the return codes (0 if all worked)."""
    total = 0
    for _ in range(n):
        total += sysio.efd_signal(fd)
    return total


@njit(nogil=True)
def _wait_into(fd: int, timeout_ns: int, out: np.ndarray) -> None:
    out[1] = sysio.efd_wait(fd, timeout_ns)
    out[0] = sysio.monotonic_ns()


def test_empty_eventfd_reads_zero(efd: int) -> None:
    assert sysio.efd_take(efd) == 0


def test_two_signals_coalesce_into_one_read_of_two(efd: int) -> None:
    assert sysio.efd_signal(efd) == 0
    assert sysio.efd_signal(efd) == 0
    assert sysio.efd_take(efd) == 2
    assert sysio.efd_take(efd) == 0  # the read reset the counter


def test_signals_from_jitted_code_count(efd: int) -> None:
    assert _signal_times(efd, 5) == 0
    assert sysio.efd_wait(efd, 1_000_000) == 5


def test_wait_times_out_with_zero(efd: int) -> None:
    t0 = sysio.monotonic_ns()
    assert sysio.efd_wait(efd, 2_000_000) == 0
    waited = sysio.monotonic_ns() - t0
    assert waited >= 2_000_000  # it did sleep the timeout, not return at once


def test_zero_timeout_only_polls(efd: int) -> None:
    assert sysio.efd_wait(efd, 0) == 0
    sysio.efd_signal(efd)
    assert sysio.efd_wait(efd, 0) == 1


def test_wait_wakes_on_signal_from_another_thread(efd: int) -> None:
    out = np.zeros(2, dtype=np.int64)
    _wait_into(efd, 1, out)  # compile before the thread starts
    out[:] = 0
    th = threading.Thread(target=_wait_into, args=(efd, 5_000_000_000, out))
    th.start()
    sent = sysio.monotonic_ns()
    assert sysio.efd_signal(efd) == 0
    th.join(timeout=10)
    assert not th.is_alive()
    assert out[1] == 1
    # woke after the signal was sent, and by it: well before the 5 s timeout
    assert sent <= out[0] < sent + 4_000_000_000


def test_errors_come_back_as_negative_errno() -> None:
    # fd 2**30 is not open: EBADF (9) for every call, never an exception or a hang
    bad = 1 << 30
    assert sysio.efd_signal(bad) == -9
    assert sysio.efd_take(bad) == -9
    assert sysio.efd_wait(bad, 1_000_000) == -9
    assert sysio.efd_wait(-1, 1_000_000_000) == -9  # negative fd: no silent full-timeout sleep


def test_monotonic_ns_matches_the_os_clock() -> None:
    a = sysio.monotonic_ns()
    b = __import__("time").monotonic_ns()
    c = sysio.monotonic_ns()
    assert a <= b + 1_000 and b <= c + 1_000 and c >= a


def test_pinning_works_or_there_is_no_pair() -> None:
    pair = sysio.cpu_pair()
    allowed = set(sysio.allowed_cpus())
    if pair is None:
        assert len(allowed) < 2
        return
    a, b = pair
    assert a != b and {a, b} <= allowed

    seen: dict[str, object] = {}

    def body() -> None:
        before = sysio.pin_current_thread(b)
        seen["mask"] = os.sched_getaffinity(0)
        seen["cpu"] = ctypes.CDLL(None).sched_getcpu()
        seen["before"] = before

    th = threading.Thread(target=body)
    th.start()
    th.join()
    assert seen["mask"] == {b}
    assert seen["cpu"] == b
    assert seen["before"] == allowed
    assert os.sched_getaffinity(0) == allowed  # the test's own thread was left alone


def test_pinning_to_a_missing_cpu_is_a_user_error() -> None:
    from vbench.errors import VbenchError

    def body(box: list[BaseException]) -> None:
        try:
            sysio.pin_current_thread(10_000)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box.append(exc)

    box: list[BaseException] = []
    th = threading.Thread(target=body, args=(box,))
    th.start()
    th.join()
    assert len(box) == 1 and isinstance(box[0], VbenchError)
    assert "engine.native.pin = false" in str(box[0])
