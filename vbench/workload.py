"""One shared, deterministic workload: the requests every ring model of a sweep point serves.

The vbus vs virtio comparison is only fair if both rings see exactly the same requests: the
same arrival instants, sizes, scatter-gather shapes, priorities and directions. So the workload
is generated once per sweep point, as plain numpy arrays (one per field, the form the jitted
engine consumes), and handed unchanged to every model. :meth:`Workload.fingerprint` lets a run
record and later prove that pairing.

Each field is drawn from its own child random streams of the seed (one per chunk of
:data:`CHUNK` requests, so a huge run is drawn piece by piece). Changing one distribution
(say the size mix) therefore leaves every other field of the same seed bit-identical, so a
sweep over one parameter varies that parameter and nothing else.

Validation lives in the pydantic specs on purpose: the config loader turns a
``pydantic.ValidationError`` into one user-facing line, so nothing here catches it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vbench.errors import ConfigError

#: Driver -> device data (TX-like): the device only reads the request's buffers.
DEVICE_READS = 0
#: Device -> driver data (RX-like): the device writes the request's buffers.
DEVICE_WRITES = 1

#: Upper bound on any byte count in a spec. Far above what the simulated guest memory allows
#: (the simulation refuses oversize requests with its own message); it only keeps sums of
#: sizes safely inside int64.
MAX_BYTES = 1 << 40

#: The vbus prio convention allows at most this many priority classes.
MAX_CLASSES = 8

# Child-stream indices (the first spawn key; the chunk number is the second): one per field,
# fixed forever, so a field's draws never depend on how another field is configured. Appending
# a new stream is safe; reordering is not.
_S_ARRIVAL, _S_SIZE, _S_SEGMENTS, _S_PRIO, _S_DIRECTION = range(5)

_NS_PER_S = 1e9
_NS_PER_US = 1e3


class ArrivalSpec(BaseModel):
    """When requests become ready.

    ``closed``: every request is ready at t=0 and the engine keeps at most ``in_flight`` of them
    outstanding (a saturating sender). ``poisson``: open loop at ``rate`` requests/s.
    ``onoff``: bursty open loop, Poisson at ``rate`` during exponentially long ON periods and
    silent during exponentially long OFF periods; bursts are where notification suppression and
    batching differ most between the rings.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["closed", "poisson", "onoff"] = "closed"
    in_flight: int = Field(64, ge=1, description="closed loop: cap on requests in flight")
    rate: float = Field(
        1e6, gt=0, allow_inf_nan=False, description="requests/s (onoff: during ON periods)"
    )
    on_us: float = Field(50.0, gt=0, allow_inf_nan=False, description="onoff: mean ON length")
    off_us: float = Field(200.0, ge=0, allow_inf_nan=False, description="onoff: mean OFF length")


class SizeSpec(BaseModel):
    """Bytes per request: one fixed size, a uniform integer range, or a weighted mix."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["fixed", "uniform", "mix"] = "fixed"
    bytes: int = Field(1500, ge=1, le=MAX_BYTES, description="fixed: bytes per request")
    low: int = Field(64, ge=1, le=MAX_BYTES, description="uniform: smallest size, inclusive")
    high: int = Field(1500, ge=1, le=MAX_BYTES, description="uniform: largest size, inclusive")
    values: list[int] = Field(
        default_factory=lambda: [64, 576, 1500], min_length=1, description="mix: sizes"
    )
    weights: list[float] = Field(
        default_factory=lambda: [0.5, 0.1, 0.4],
        min_length=1,
        description="mix: relative frequency of each value (normalised)",
    )

    @field_validator("values")
    @classmethod
    def _values_in_range(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if not 1 <= x <= MAX_BYTES]
        if bad:
            raise ValueError(f"every size must be between 1 and {MAX_BYTES} bytes, got {bad[0]}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights_valid(cls, w: list[float]) -> list[float]:
        return _check_shares(w, "weights")

    @model_validator(mode="after")
    def _consistent(self) -> SizeSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if len(self.weights) != len(self.values):
            raise ValueError(
                f"weights has {len(self.weights)} entries but values has {len(self.values)}: "
                "give one weight per value"
            )
        return self


class SegmentsSpec(BaseModel):
    """Scatter-gather segments per request: a fixed count or a uniform integer range.

    Segment count drives descriptor-chain length (virtio) or SG-pool use (vbus), independently
    of the byte count; a request never gets more segments than bytes (clamped at generation).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["fixed", "range"] = "fixed"
    count: int = Field(1, ge=1, description="fixed: segments per request")
    low: int = Field(1, ge=1, description="range: fewest segments, inclusive")
    high: int = Field(4, ge=1, description="range: most segments, inclusive")

    @model_validator(mode="after")
    def _consistent(self) -> SegmentsSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class PrioritySpec(BaseModel):
    """Priority classes and the share of requests in each.

    Class number is the priority, higher = more urgent (the vbus prio convention); a ring
    without priorities simply ignores it, which is exactly the difference being measured.
    """

    model_config = ConfigDict(extra="forbid")
    classes: int = Field(1, ge=1, le=MAX_CLASSES, description="number of priority classes")
    shares: list[float] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        description="fraction of requests in class k (normalised)",
    )

    @field_validator("shares")
    @classmethod
    def _shares_valid(cls, s: list[float]) -> list[float]:
        return _check_shares(s, "shares")

    @model_validator(mode="after")
    def _consistent(self) -> PrioritySpec:
        if len(self.shares) != self.classes:
            raise ValueError(
                f"shares has {len(self.shares)} entries but classes = {self.classes}: "
                "give one share per class"
            )
        return self


class WorkloadSpec(BaseModel):
    """Everything that defines a workload; together with a seed it fixes every array."""

    model_config = ConfigDict(extra="forbid")
    requests: int = Field(10000, ge=1, description="number of requests")
    arrival: ArrivalSpec = Field(default_factory=ArrivalSpec)
    size: SizeSpec = Field(default_factory=SizeSpec)
    segments: SegmentsSpec = Field(default_factory=SegmentsSpec)
    priority: PrioritySpec = Field(default_factory=PrioritySpec)
    direction: Literal["device-reads", "device-writes"] = "device-reads"
    write_share: float | None = Field(
        None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="if set: probability a request is device-writes, overriding direction",
    )

    @field_validator("size", "segments", "arrival", mode="before")
    @classmethod
    def _shorthand(cls, v: object, info: object) -> object:
        """``size = 1500``, ``segments = 4`` and ``arrival = "poisson"`` for the common cases."""
        name = getattr(info, "field_name", "")
        if isinstance(v, bool):
            return v
        if name == "size" and isinstance(v, int):
            return {"kind": "fixed", "bytes": v}
        if name == "segments" and isinstance(v, int):
            return {"kind": "fixed", "count": v}
        if name == "arrival" and isinstance(v, str):
            return {"kind": v}
        return v


def _check_shares(values: list[float], name: str) -> list[float]:
    """Shares are relative weights: each must be finite and >= 0, and they must not all be 0."""
    for x in values:
        if not np.isfinite(x) or x < 0:
            raise ValueError(f"every entry of {name} must be a finite number >= 0, got {x}")
    if sum(values) <= 0:
        raise ValueError(f"{name} must not all be zero")
    return values


@dataclass(frozen=True)
class Workload:
    """The generated requests, one read-only array per field, index = request number.

    Arrays are read-only so no model can alter what the next model of the same sweep point
    sees: the pairing holds by construction, and :meth:`fingerprint` can prove it afterwards.
    """

    arrival_ns: np.ndarray  # float64, non-decreasing; all 0.0 for a closed loop
    size: np.ndarray  # int64 bytes, >= 1
    segments: np.ndarray  # int64, 1 <= segments <= size
    prio: np.ndarray  # int64 class, 0 .. classes-1 (higher = more urgent)
    direction: np.ndarray  # int8, DEVICE_READS or DEVICE_WRITES
    in_flight_cap: int  # closed loop: the cap; open loops: 0 = no cap
    classes: int

    def __len__(self) -> int:
        return int(self.arrival_ns.shape[0])

    @property
    def max_segments(self) -> int:
        """Longest scatter-gather list: sizes descriptor tables and SG pools."""
        return int(self.segments.max())

    @property
    def max_size(self) -> int:
        """Largest request: checked against the simulated guest's per-request data window."""
        return int(self.size.max())

    @property
    def total_bytes(self) -> int:
        """All payload bytes: the numerator of throughput."""
        return int(self.size.sum(dtype=np.int64))

    def fingerprint(self) -> str:
        """A SHA-256 over every array (name, dtype and the hash of its bytes) plus the count,
        cap and classes: see :func:`fingerprint_of`."""
        digests = [
            hashlib.sha256(np.ascontiguousarray(getattr(self, f)).tobytes()).digest()
            for f in FIELDS
        ]
        return fingerprint_of(digests, len(self), self.in_flight_cap, self.classes)


#: The workload's arrays, in the order every consumer takes them.
FIELDS = ("arrival_ns", "size", "segments", "prio", "direction")
_DTYPES = ("<f8", "<i8", "<i8", "<i8", "|i1")


def fingerprint_of(digests: list[bytes], n: int, cap: int, classes: int) -> str:
    """The workload fingerprint from the SHA-256 of each array's bytes (in :data:`FIELDS`
    order). Two runs whose fingerprints match consumed bit-identical workloads, which is what
    makes their comparison paired; names and dtypes are hashed too so that a layout change
    cannot collide with equal raw bytes. Per-array hashes let a run that draws its workload
    chunk by chunk compute the same fingerprint as one that holds it whole."""
    h = hashlib.sha256()
    for name, dt, d in zip(FIELDS, _DTYPES, digests, strict=True):
        h.update(f"{name}:{dt}:{n};".encode())
        h.update(d)
    h.update(f"cap:{cap};classes:{classes}".encode())
    return h.hexdigest()


#: Requests per generation chunk. Request i's fields are drawn from the streams of chunk
#: ``i // CHUNK`` (one child stream per field and chunk), so any chunk can be drawn on its own:
#: a run of 10^8 requests never holds more than a window of them, and the first k requests of a
#: workload do not depend on how many follow. Part of the workload's definition: fixed forever.
CHUNK = 1 << 16


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


class WorkloadStream:
    """The workload of ``spec`` and ``seed`` as a sequence of chunks, drawn on demand.

    The carry between chunks (the last arrival instant) is the only state; :meth:`arrays`
    returns requests ``lo .. hi-1`` and must be called with consecutive, increasing ranges.
    """

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        self.spec = spec
        self.seed = _check_seed(seed)
        self.n = spec.requests
        self.in_flight_cap = spec.arrival.in_flight if spec.arrival.kind == "closed" else 0
        self.classes = spec.priority.classes
        self._chunk = -1
        self._data: tuple[np.ndarray, ...] = ()
        self._t_end = 0.0  # the last arrival instant of the chunks drawn so far

    def _rng(self, field: int, chunk: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(field, chunk)))

    def _draw(self, k: int) -> tuple[np.ndarray, ...]:
        """All CHUNK requests of chunk ``k`` (the last one is drawn whole, then cut: a chunk's
        draws never depend on the workload's length)."""
        if k != self._chunk + 1:
            raise ValueError(f"chunks are drawn in order: asked for {k} after {self._chunk}")
        s, m = self.spec, CHUNK
        gaps = _gaps(s.arrival, m, self._rng(_S_ARRIVAL, k))
        if gaps is None:
            arrival = np.zeros(m, dtype=np.float64)
        else:
            # sequential sums from the carry: the same floats as one cumsum over all chunks
            arrival = np.cumsum(np.concatenate(([self._t_end], gaps)))[1:]
            self._t_end = float(arrival[-1])
        size = _sizes(s.size, m, self._rng(_S_SIZE, k))
        segments = np.minimum(_segments(s.segments, m, self._rng(_S_SEGMENTS, k)), size)
        prio = _categorical(self._rng(_S_PRIO, k), s.priority.shares, m)
        direction = _directions(s, m, self._rng(_S_DIRECTION, k))
        self._chunk = k
        self._data = (arrival, size, segments, prio, direction)
        return self._data

    def chunks(self):
        """Yield (lo, arrays of requests lo .. lo+len-1) chunk by chunk, the last one cut."""
        for k in range(-(-self.n // CHUNK)):
            lo = k * CHUNK
            arrays = self._draw(k)
            hi = min(self.n, lo + CHUNK)
            yield lo, tuple(a[: hi - lo] for a in arrays)


def generate(spec: WorkloadSpec, seed: int) -> Workload:
    """Draw the workload for ``spec`` from ``seed``; same spec and seed give identical arrays.

    This materialises every request; :class:`WorkloadStream` draws the same requests chunk by
    chunk for runs too large to hold (``vbench.simulation`` picks one or the other)."""
    stream = WorkloadStream(spec, seed)
    parts = [arrays for _lo, arrays in stream.chunks()]
    arrays = tuple(np.concatenate([p[f] for p in parts]) for f in range(5))
    for a in arrays:
        a.setflags(write=False)
    arrival, size, segments, prio, direction = arrays
    return Workload(
        arrival_ns=arrival,
        size=size,
        segments=segments,
        prio=prio,
        direction=direction,
        in_flight_cap=stream.in_flight_cap,
        classes=stream.classes,
    )


def _gaps(spec: ArrivalSpec, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Inter-arrival gaps in ns (None for a closed loop: every request is ready at t=0 and
    the engine's in-flight cap paces the loop)."""
    if spec.kind == "closed":
        return None
    gaps = rng.exponential(_NS_PER_S / spec.rate, n)
    if spec.kind == "onoff":
        gaps = gaps + _off_time(gaps, spec, rng)
    return gaps


def _off_time(on_gaps: np.ndarray, spec: ArrivalSpec, rng: np.random.Generator) -> np.ndarray:
    """OFF time that falls inside each inter-arrival gap of an on/off source.

    Why this is exact and O(n) whatever the period lengths: measured in ON time only, arrivals
    are a Poisson process at ``rate``, and because ON lengths are exponential, the ON->OFF
    switches are an independent Poisson process of rate ``1/on`` on the same axis (memoryless).
    So an ON-time gap ``g`` contains ``K ~ Poisson(g/on)`` switches, each followed by one OFF
    period, and the wall-clock gap is ``g`` plus a sum of ``K`` exponential OFF lengths, i.e.
    ``Gamma(K, off)``. The source starts ON at t=0, matching the first gap. This avoids
    materialising the periods, which for short ON periods and a low rate could be billions.
    """
    switches = rng.poisson(on_gaps / (spec.on_us * _NS_PER_US))
    off_mean_ns = spec.off_us * _NS_PER_US
    busy = switches > 0
    off = np.zeros_like(on_gaps)
    if off_mean_ns > 0 and busy.any():
        off[busy] = rng.gamma(switches[busy].astype(np.float64), off_mean_ns)
    return off


def _sizes(spec: SizeSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Bytes per request (int64, >= 1)."""
    if spec.kind == "fixed":
        return np.full(n, spec.bytes, dtype=np.int64)
    if spec.kind == "uniform":
        return rng.integers(spec.low, spec.high, size=n, dtype=np.int64, endpoint=True)
    values = np.asarray(spec.values, dtype=np.int64)
    return values[_categorical(rng, spec.weights, n)]


def _segments(spec: SegmentsSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Segments per request before clamping to the size (int64, >= 1)."""
    if spec.kind == "fixed":
        return np.full(n, spec.count, dtype=np.int64)
    return rng.integers(spec.low, spec.high, size=n, dtype=np.int64, endpoint=True)


def _directions(spec: WorkloadSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-request data direction (int8)."""
    if spec.write_share is None:
        code = DEVICE_WRITES if spec.direction == "device-writes" else DEVICE_READS
        return np.full(n, code, dtype=np.int8)
    writes = rng.random(n) < spec.write_share
    return np.where(writes, DEVICE_WRITES, DEVICE_READS).astype(np.int8)


def _categorical(rng: np.random.Generator, weights: list[float], n: int) -> np.ndarray:
    """Indices 0..len(weights)-1 drawn with the (unnormalised) weights, int64.

    A single category draws nothing, so a one-class workload leaves its stream untouched.
    Trailing zero weights add exactly 0.0 to the cumulative sum, so after dividing by the total
    they sit at exactly 1.0 and a uniform draw in [0, 1) can never select a zero-weight class.
    """
    if len(weights) == 1:
        return np.zeros(n, dtype=np.int64)
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum /= cum[-1]
    return np.searchsorted(cum, rng.random(n), side="right").astype(np.int64)
