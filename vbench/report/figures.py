"""The report's figures: one function per figure, a result table in, a PNG file out.

Each figure is drawn from the same tables the conclusions read, so a sentence's number can
be checked against the figure its link points to. PNG only: the HTML embeds them as data
URIs (no network, one file), the Markdown links the files in ``figures/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vbench.report.conclusions import (
    in_kernel,
    max_sustainable,
    select,
    with_notifications,
    with_stalls,
)


@dataclass(frozen=True)
class Figure:
    """A drawn figure: its key (the anchor ``fig-<key>``), title, caption and PNG file."""

    key: str
    title: str
    caption: str
    path: Path


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, folder: Path, key: str, title: str, caption: str) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return Figure(key, title, caption, path)


def layouts(maps: dict[str, dict[str, Any]], folder: Path) -> Figure:
    """Q1: each model's shared memory as a bar of its areas by offset, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(len(maps), 1, figsize=(8, 1.3 * len(maps) + 0.8))
    for ax, (model, layout) in zip(list(axes), maps.items(), strict=True):
        total = layout["total_bytes"]
        for i, area in enumerate(layout["areas"]):
            ax.broken_barh([(area["offset"], area["size"])], (0, 1), color=f"C{i % 10}")
            if area["size"] > total * 0.04:
                ax.text(
                    area["offset"] + area["size"] / 2,
                    0.5,
                    area["name"],
                    ha="center",
                    va="center",
                    fontsize=7,
                )
        ax.set_xlim(0, total)
        ax.set_yticks([])
        ax.set_title(f"{model}: {total} bytes, {layout['total_lines']} lines", fontsize=9)
    axes[-1].set_xlabel("offset in the shared region (bytes)")
    return _save(
        fig,
        folder,
        "layouts",
        "Shared memory, side by side",
        "Every area of each model's shared memory at queue size 256 (vbench layout).",
    )


def anatomy(table: pd.DataFrame, where: dict[str, Any], folder: Path) -> Figure:
    """E1: per model, cache lines per request stacked by memory area and side, and the other
    per-request counts beside them."""
    plt = _plt()
    rows = select(table, where)
    labels = list(dict.fromkeys(rows["label"]))
    columns = [
        c
        for c in rows.columns
        if c.startswith("lines_driver_per_req_") or c.startswith("lines_device_per_req_")
    ]
    used = [c for c in columns if rows[c].sum() > 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    bottom = [0.0] * len(labels)
    for i, column in enumerate(used):
        values = [float(rows.loc[rows["label"] == lbl, column].iloc[0]) for lbl in labels]
        side, area = column.removeprefix("lines_").split("_per_req_")
        left.bar(
            labels,
            values,
            bottom=bottom,
            label=f"{area} ({side})",
            color=plt.get_cmap("tab20")(i % 20),
            hatch="//" if side == "device" else None,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    left.set_ylabel("cache lines moved per request")
    left.legend(fontsize=6, ncol=2)
    left.tick_params(axis="x", rotation=30, labelsize=8)
    counts = ["desc_per_req", "kicks_per_req", "interrupts_per_req", "vm_exits_per_req"]
    barriers = (rows["mb_driver"] + rows["mb_device"] + rows["wmb"] + rows["rmb"]) / rows[
        "requests"
    ]
    width = 0.8 / (len(counts) + 1)
    for j, metric in enumerate(counts + ["barriers"]):
        values = barriers if metric == "barriers" else rows[metric]
        xs = [k + j * width for k in range(len(labels))]
        right.bar(xs, list(values), width=width, label=metric.replace("_per_req", "/req"))
    right.set_xticks([k + 0.4 for k in range(len(labels))], labels, rotation=30, fontsize=8)
    right.set_yscale("symlog", linthresh=0.01)
    right.legend(fontsize=7)
    title = "Per-request anatomy " + ", ".join(f"{k.split('.')[-1]} {v}" for k, v in where.items())
    return _save(
        fig,
        folder,
        "e1-anatomy",
        title,
        "Left: lines per request by memory area; hatched = paid by the device side. "
        "Right: descriptors, kicks, interrupts, VM exits and barriers per request.",
    )


def notifications(table: pd.DataFrame, folder: Path) -> Figure:
    """E2: kicks and interrupts per request against batch, sleeping and polling device, at
    each in-flight depth (line style)."""
    plt = _plt()
    data = with_notifications(table)
    devices = list(dict.fromkeys(data["engine.device"]))
    depths = sorted(data["workload.arrival.in_flight"].unique())
    fig, axes = plt.subplots(2, len(devices), figsize=(11, 6.5), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for col, device in enumerate(devices):
        for row, metric in enumerate(["kicks_per_req", "interrupts_per_req"]):
            ax = axes[row][col]
            for i, label in enumerate(dict.fromkeys(data["label"])):
                for d, depth in enumerate(depths):
                    rows = data[
                        (data["label"] == label)
                        & (data["engine.device"] == device)
                        & (data["workload.arrival.in_flight"] == depth)
                    ]
                    rows = rows.sort_values("engine.batch")
                    ax.plot(
                        rows["engine.batch"],
                        rows[metric],
                        styles[d % 4],
                        color=f"C{i}",
                        marker="o",
                        label=f"{label}, {depth} in flight",
                    )
            ax.set_xscale("log", base=2)
            ax.set_yscale("symlog", linthresh=0.001)
            ax.set_title(
                f"{metric.replace('_per_req', '')} per request, device {device}", fontsize=9
            )
            ax.set_xlabel("batch")
    axes[0][0].legend(fontsize=6, ncol=2)
    return _save(
        fig,
        folder,
        "e2-notifications",
        "Kicks and interrupts per request",
        "Colour = design and suppression; line style = requests in flight.",
    )


def scatter_gather(table: pd.DataFrame, folder: Path) -> Figure:
    """E3: lines, descriptors, ring entries, ring-full stalls and time per request against
    segments, in two rows (a phone shows three panels abreast at most)."""
    plt = _plt()
    data = with_stalls(table)
    metrics = [
        "lines_per_req",
        "desc_per_req",
        "ring_slots_per_req",
        "ring_full_stalls_per_req",
        "time_total_ns_per_req",
    ]
    fig, grid = plt.subplots(2, 3, figsize=(11, 6.6))
    axes = list(grid.flat)
    for ax, metric in zip(axes, metrics, strict=False):
        for i, label in enumerate(dict.fromkeys(data["label"])):
            rows = data[data["label"] == label].sort_values("workload.segments")
            ax.plot(rows["workload.segments"], rows[metric], marker="o", color=f"C{i}", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("segments per request")
        ax.set_title(metric.replace("_per_req", " / req").replace("_ns", " (ns)"), fontsize=9)
    axes[-1].axis("off")  # the sixth panel holds the legend
    axes[-1].legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=8)
    return _save(
        fig,
        folder,
        "e3-scatter-gather",
        "Scatter/gather: 1 to 64 segments",
        "Ring entries per request: how much of the ring one request occupies (a ring of "
        "queue_size entries holds queue_size / that many requests at once); ring-full stalls: "
        "what that costs at E3's requests in flight and queue size (its config).",
    )


def capacity(table: pd.DataFrame, bound_ns: float, folder: Path) -> Figure:
    """E4: p99 against the achieved rate per model, the bound, the maximum sustainable rate."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    best = max_sustainable(table, bound_ns)
    for i, label in enumerate(dict.fromkeys(table["label"])):
        rows = table[table["label"] == label].sort_values("workload.arrival.rate")
        rate = best.get(label, math.nan)
        ax.plot(
            rows["requests_per_s"] / 1e6,
            rows["lat_p99_ns"] / 1000,
            marker="o",
            color=f"C{i}",
            label=f"{label} (sustains {rate / 1e6:.3g} M req/s)",
        )
    ax.axhline(
        bound_ns / 1000, color="0.4", linestyle="--", label=f"p99 bound {bound_ns / 1000:g} µs"
    )
    ax.set_yscale("log")
    ax.set_xlabel("achieved throughput (M req/s)")
    ax.set_ylabel("p99 latency (µs)")
    ax.legend(fontsize=8)
    return _save(
        fig,
        folder,
        "e4-capacity",
        "Throughput against p99 latency",
        "Each point one offered rate (open-loop Poisson); the headline is the highest "
        "offered rate carried with p99 under the bound.",
    )


def native(table: pd.DataFrame, folder: Path) -> Figure:
    """E6: simulated and measured throughput per model, polling and sleeping."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = list(dict.fromkeys(table["label"]))
    modes = list(dict.fromkeys(table["engine.device"]))
    width = 0.8 / (2 * len(modes))
    for m, mode in enumerate(modes):
        for e, (engine, column) in enumerate(
            [("sim", "requests_per_s"), ("native", "measured_requests_per_s")]
        ):
            rows = table[(table["engine"] == engine) & (table["engine.device"] == mode)]
            values = [rows.loc[rows["label"] == lbl, column].median() / 1e6 for lbl in labels]
            xs = [k + (2 * m + e) * width for k in range(len(labels))]
            ax.bar(
                xs,
                values,
                width=width,
                label=f"{engine}, device {mode}",
                hatch="//" if engine == "native" else None,
                color=f"C{m}",
            )
    ax.set_xticks([k + 0.4 for k in range(len(labels))], labels)
    ax.set_yscale("log")
    ax.set_ylabel("throughput (M req/s)")
    ax.legend(fontsize=8)
    return _save(
        fig,
        folder,
        "e6-native",
        "Simulation beside the native engine",
        "Hatched: measured natively on this machine (median of repetitions).",
    )


def history(table: pd.DataFrame, steps: list[str], folder: Path) -> Figure:
    """E7: virtio's time per request and p99 at each step, vbus-ioq (in kernel) as a line."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, unit in zip(
        axes,
        ["time_total_ns_per_req", "lat_p99_ns"],
        ["modelled time per request (µs)", "p99 latency (µs)"],
        strict=True,
    ):
        virtio = table[table["label"] == "virtio"].sort_values("point")
        ax.bar(range(len(virtio)), virtio[metric] / 1000, color="C0", label="virtio")
        vbus = in_kernel(table, "vbus-ioq")[metric].median()
        ax.axhline(vbus / 1000, color="C3", linestyle="--", label="vbus-ioq (in kernel)")
        ax.set_xticks(range(len(virtio)), steps[: len(virtio)], rotation=25, ha="right", fontsize=7)
        ax.set_ylabel(unit)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    return _save(
        fig,
        folder,
        "e7-history",
        "From the 2009 setting to vhost + event index",
        "Each bar one step, cumulative, on the 2009 host's costs (kvm-2009).",
    )


def priority(table: pd.DataFrame, top: int, key: str, folder: Path) -> Figure:
    """P1: the most urgent class's p99 against offered rate per design, one panel per mix."""
    plt = _plt()
    shares = list(dict.fromkeys(table["workload.priority.shares"].astype(str)))
    fig, axes = plt.subplots(1, len(shares), figsize=(5 * len(shares), 4.5), squeeze=False)
    metric = f"c{top}_lat_p99_ns"
    for ax, share in zip(axes[0], shares, strict=True):
        rows = table[table["workload.priority.shares"].astype(str) == share]
        for i, label in enumerate(dict.fromkeys(rows["label"])):
            mine = rows[rows["label"] == label].sort_values("workload.arrival.rate")
            ax.plot(
                mine["workload.arrival.rate"] / 1e6,
                mine[metric] / 1000,
                marker="o",
                color=f"C{i % 10}",
                linestyle="-" if i < 10 else "--",
                label=label,
            )
        ax.set_yscale("log")
        ax.set_title(f"shares {share}", fontsize=9)
        ax.set_xlabel("offered rate (M req/s)")
    axes[0][0].set_ylabel(f"class {top} (most urgent) p99 (µs)")
    axes[0][0].legend(fontsize=6)
    return _save(
        fig,
        folder,
        key,
        f"Most urgent class's p99, {top + 1} classes",
        "Each design's most urgent class against the offered load, per traffic mix.",
    )


def where_priority_helps(parts: dict[str, tuple[pd.DataFrame, str]], folder: Path) -> Figure:
    """P2: urgent p99 per design in the three situations (saturated device, full ring, busy
    guest), each against its swept parameter."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(parts), figsize=(5 * len(parts), 4.3), squeeze=False)
    for ax, (title, (table, axis)) in zip(axes[0], parts.items(), strict=True):
        for i, label in enumerate(dict.fromkeys(table["label"])):
            mine = table[table["label"] == label].sort_values(axis)
            scale = 1e6 if axis.endswith("rate") else 1
            ax.plot(
                mine[axis] / scale,
                mine["c1_lat_p99_ns"] / 1000,
                marker="o",
                color=f"C{i}",
                label=label,
            )
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("offered rate (M req/s)" if axis.endswith("rate") else "requests in flight")
    axes[0][0].set_ylabel("urgent class p99 (µs)")
    axes[0][0].legend(fontsize=7)
    return _save(
        fig,
        folder,
        "p2-where",
        "Where priority can help",
        "Urgent-class p99 per design: device saturated, ring full, guest busy.",
    )


def lost_wakeups(trials: pd.DataFrame, folder: Path) -> Figure:
    """E8: per model and barrier, the share of runs that ended in a lost wakeup, natively and
    simulated, each bar labelled with its count of runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    groups = list(dict.fromkeys(zip(trials["model"], trials["barrier"], strict=True)))
    engines = [e for e in ("native", "sim") if (trials["engine"] == e).any()]
    width = 0.8 / max(len(engines), 1)
    for e, engine in enumerate(engines):
        for g, (model, barrier) in enumerate(groups):
            rows = trials[
                (trials["engine"] == engine)
                & (trials["model"] == model)
                & (trials["barrier"] == barrier)
            ]
            lost = int((rows["outcome"] == "lost wakeup").sum())
            share = lost / len(rows) if len(rows) else 0.0
            x = g + e * width
            ax.bar(x, share, width=width, color=f"C{e}", label=engine if g == 0 else None)
            ax.text(x, share + 0.02, f"{lost}/{len(rows)}", ha="center", fontsize=8)
    ax.set_xticks(
        [g + 0.4 - width / 2 for g in range(len(groups))], [f"{m}\n{b}" for m, b in groups]
    )
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("runs ending in a lost wakeup")
    ax.legend(fontsize=8)
    return _save(
        fig,
        folder,
        "e8-lost-wakeups",
        "Lost wakeups: the shipped wmb against the full barrier",
        "Share of runs (sleeping, batch 32, 256 in flight) that ended with requests outstanding "
        "and both sides asleep; above each bar, lost / runs.",
    )
