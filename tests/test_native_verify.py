"""engine.native.verify and engine.native.stamp: each verify mode still fails a run with the
faults it is meant to see, and sampled latency stamps agree with full stamping.

What each verify mode sees (docs/native.md, "Correctness under real concurrency"): a lost or a
duplicated buffer in every mode (the driver's completion checks and pool slots); a corrupted
payload in "full", in "sample" only on a sampled request, never in "off" (no payload written)
nor in "ring" (no payload slot at all: what a C ring does, for comparing with one).
"""

from __future__ import annotations

import os

import pytest

from vbench.costs import load_preset
from vbench.errors import InvariantError
from vbench.histogram import bucket_of, percentiles
from vbench.models import get_model
from vbench.native import loops, runner
from vbench.native.runner import Hooks, run_point
from vbench.simulation import PERCENTILES, EngineSpec
from vbench.workload import WorkloadSpec, generate

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="a native run needs two CPUs"
)

N = 3000
SAMPLE_EVERY = 8
FAULT = 200  # the request every fault hits (far from the run's end: its slot is reused)


def _wl(n: int = N):
    spec = WorkloadSpec(
        requests=n,
        arrival={"kind": "closed", "in_flight": 64},
        size={"kind": "mix", "values": [8, 64, 200], "weights": [0.3, 0.4, 0.3]},
        segments={"kind": "range", "low": 1, "high": 3},
    )
    return generate(spec, 7)


def _eng(verify: str = "full", stamp: str = "all") -> EngineSpec:
    native = {"repetitions": 1, "warmup": 0, "timeout_s": 10.0, "verify": verify}
    native |= {"stamp": stamp, "sample_every": SAMPLE_EVERY}
    return EngineSpec(batch=8, device="poll", driver="poll", kind="native", native=native)


def _run(verify: str, hooks: Hooks):
    md = get_model("virtio-split")
    models = [("virtio-split", md, md.options(queue_size=64))]
    return run_point(models, _wl(), _eng(verify), load_preset("kvm-modern"), hooks=hooks)


def _sampled(chosen: bool) -> int:
    """A request after FAULT that the verify sample takes (or does not take)."""
    taken = set(loops.chosen_requests(N, SAMPLE_EVERY - 1).tolist())
    return next(r for r in range(FAULT, N) if (r in taken) == chosen)


def test_the_sample_takes_about_one_request_in_sample_every():
    taken = loops.chosen_requests(80_000, SAMPLE_EVERY - 1)
    assert abs(len(taken) / 80_000 - 1 / SAMPLE_EVERY) < 0.01
    assert len(loops.chosen_requests(100, 0)) == 100 and len(loops.chosen_requests(100, -1)) == 0


@pytest.mark.parametrize("verify", ["full", "sample", "off", "ring"])
def test_a_lost_buffer_fails_every_mode(verify):
    with pytest.raises(InvariantError, match=rf"lost buffer\) \(request {FAULT}\)$"):
        _run(verify, Hooks(lose_request=FAULT))


@pytest.mark.parametrize("verify", ["full", "sample", "off", "ring"])
def test_a_duplicated_buffer_fails_every_mode(verify):
    with pytest.raises(InvariantError, match=rf"completed twice \(request {FAULT}\)$"):
        _run(verify, Hooks(duplicate_request=FAULT))


@pytest.mark.parametrize("verify", ["full", "sample"])
def test_a_corrupted_payload_fails_where_the_mode_checks_it(verify):
    request = _sampled(True)
    with pytest.raises(InvariantError, match=rf"checksum mismatch.*\(request {request}\)$"):
        _run(verify, Hooks(corrupt_request=request))


@pytest.mark.parametrize(
    "verify,chosen", [("sample", False), ("off", True), ("off", False), ("ring", True)]
)
def test_a_corrupted_payload_is_not_seen_where_the_mode_skips_it(verify, chosen):
    """The modes' stated blind spot: a payload nobody wrote or checked."""
    rows = _run(verify, Hooks(corrupt_request=_sampled(chosen)))
    assert rows[0]["measured_requests"] == N


def test_sampled_latency_percentiles_match_full_stamping():
    """One run stamps every request into a shadow histogram and the sampled ones into the
    row's: on 40 000 requests (about 5 000 sampled) p50 and p90 fall within two buckets (1/64
    wide each): one in 5 of 5 runs at first, two once in CI on the loaded 2-core VM. p99 is not held to that: on the shared 2-core VM it sits on the
    scheduler's tail, and was 0 to 47 buckets apart in repeated runs (sampling error where the
    distribution has a gap); the tolerance is stated in docs/native.md."""
    n = 40_000
    md = get_model("virtio-split")
    wl = _wl(n)
    hooks = Hooks(shadow_latency=True)
    nspc = runner._tsc_ns_per_cycle()
    runner.compile_loops(md, md.options(queue_size=64), wl, _eng(stamp="sample"))
    run = runner.run_once(
        "virtio-split", md, md.options(queue_size=64), wl, _eng(stamp="sample"), nspc, hooks
    )
    sampled, every = run.hist.sum(axis=0), run.shadow_hist.sum(axis=0)
    assert int(every.sum()) == n
    assert abs(int(sampled.sum()) - n / SAMPLE_EVERY) < 0.02 * n
    qs = [q for _, q in PERCENTILES]
    got, want = percentiles(sampled, qs), percentiles(every, qs)
    apart = {
        tag: abs(bucket_of(g) - bucket_of(w))
        for (tag, _), g, w in zip(PERCENTILES, got, want, strict=True)
    }
    assert apart["p50"] <= 2 and apart["p90"] <= 2, (got, want)
