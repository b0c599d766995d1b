"""The run summary (vbench.summary, vbench.render.summary_tables): headline metrics per
config, columns the same at every point said once, repetitions as median [min-max], models in
config order, and tables that fit the terminal however many models a config has."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from vbench import render, summary

LABELS = [
    "virtio-fifo",
    "virtio-lookahead",
    "virtio-mq",
    "virtio-mq-rr",
    "vbus-shipped",
    "vbus-designed",
    "vbus-designed-rr",
]
PRIO_RAW: dict[str, Any] = {
    "models": [{"label": lbl, "model": "x"} for lbl in LABELS],
    "workload": {"arrival": {"kind": "poisson", "rate": 1e6}},
}
SWEPT = ["workload.priority.shares", "workload.arrival.rate"]


def prio_rows() -> list[dict[str, Any]]:
    rows = []
    point = 0
    for shares in ("[0.95, 0.05]", "[0.8, 0.2]", "[0.5, 0.5]"):
        for rate in (1.0e6, 1.6e6, 2.0e6, 2.4e6):
            for i, lbl in enumerate(reversed(LABELS)):  # alphabetical is not config order
                rows.append(
                    {
                        "point": point,
                        "workload.priority.shares": shares,
                        "workload.arrival.rate": rate,
                        "label": lbl,
                        "model": "x",
                        "lat_p99_ns": 10_000.0 + 137 * point + i,
                        "requests_per_s": rate * 0.99,
                        "kicks_per_req": 0.1 + point / 100,
                        "interrupts_per_req": 0.25,  # the same everywhere
                        "c0_lat_p99_ns": 20_000.0 + 13 * point * (i + 1),
                        "c1_lat_p99_ns": 123_456.0 + 1000 * point + i,
                        "c1_hol_ns_per_req": 1500.0 * point + i,
                    }
                )
            point += 1
    return rows


def rendered(tables: list[Any], width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for t in tables:
        console.print(t)
    return console.export_text()


def test_priority_sweep_headline_is_the_priority_figures() -> None:
    s = summary.summarise(prio_rows(), SWEPT, PRIO_RAW)
    assert s.metrics[:3] == ["c1_lat_p99_ns", "c1_hol_ns_per_req", "c0_lat_p99_ns"]
    assert "lat_p99_ns" not in s.metrics  # the per-class p99 replace the overall one


def test_tables_fit_120_columns_with_a_number_in_every_cell() -> None:
    s = summary.summarise(prio_rows(), SWEPT, PRIO_RAW)
    tables = render.summary_tables(s, "priority (kvm-modern)", 120)
    for t in tables:
        assert Console(width=100_000).measure(t).maximum <= 120
    text = rendered(tables, 120)
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= 120
    assert "123.5" in text  # c1 p99 in µs, point 0, first model
    # every model appears, in config order, in the first table (headers broken at hyphens)
    header = "".join(text.split("┡")[0].split())
    assert header.index("fifo") < header.index("lookahead") < header.index("shipped")


def test_unbounded_width_gives_one_table_with_every_column() -> None:
    s = summary.summarise(prio_rows(), SWEPT, PRIO_RAW)
    (table,) = render.summary_tables(s, "t", None)
    assert len(table.columns) == 1 + 2 + len(s.columns())


def test_constant_columns_are_said_once_above_the_table() -> None:
    s = summary.summarise(prio_rows(), SWEPT, PRIO_RAW)
    assert all((lbl, "interrupts_per_req") in s.constant_cells for lbl in LABELS)
    assert all(m != "interrupts_per_req" for _, m in s.columns())
    assert any("irqs/req 0.25" in n for n in s.notes())
    one_rate = [r for r in prio_rows() if r["workload.arrival.rate"] == 1.0e6]
    s1 = summary.summarise(one_rate, SWEPT, PRIO_RAW)
    assert s1.keys == ["workload.priority.shares"]
    assert s1.notes()[0] == "every point: rate=1e+06"


def test_models_in_config_order_and_labels_of_other_configs_last() -> None:
    assert summary.config_order(["b", "z", "a"], {"models": [{"model": "a"}, {"label": "b"}]}) == [
        "a",
        "b",
        "z",
    ]
    s = summary.summarise(prio_rows(), SWEPT, PRIO_RAW)
    assert s.labels == LABELS


def test_declared_headline_wins_and_defaults_follow_the_sweep() -> None:
    cols = ["lat_p99_ns", "requests_per_s", "kicks_per_req", "interrupts_per_req", "lines_per_req"]
    declared = {"report": {"metrics": ["lines_per_req", "nope"]}}
    assert summary.headline(declared, cols, []) == ["lines_per_req"]
    assert summary.headline({}, cols, ["engine.batch"]) == list(summary.SIM_HEADLINE)
    native = ["measured_requests_per_s", "measured_kicks_per_req"]
    assert summary.headline({}, native, []) == native


def test_repetitions_read_median_min_max() -> None:
    rows = [
        {"point": 0, "label": "a", "rep": r, "measured_requests_per_s": v}
        for r, v in enumerate([3e6, 1e6, 2e6])
    ]
    raw = {"engine": {"kind": "native", "native": {"repetitions": 3}}}
    s = summary.summarise(rows, [], raw)
    assert s.cells[(0, "a", "measured_requests_per_s")] == "2.00 [1.00-3.00]"
    assert "median [min-max] over 3 repetitions" in s.caption
    df = summary.frame(rows, [], raw)
    rec = df.iloc[0]
    assert (rec["measured_requests_per_s"], rec["measured_requests_per_s_min"]) == (2e6, 1e6)
    assert rec["n"] == 3


def test_caption_says_open_or_closed_loop() -> None:
    onoff = {"workload": {"arrival": {"kind": "onoff", "rate": 20e6, "on_us": 5, "off_us": 95}}}
    assert "open loop" in summary.caption(onoff) and "1 M req/s" in summary.caption(onoff)
    assert "achieved" in summary.caption(onoff)
    assert "the swept rate" in summary.caption(PRIO_RAW, SWEPT)
    assert "closed loop" in summary.caption({})
