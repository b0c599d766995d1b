"""vbench report: conclusions follow the data, the report renders whole, a browser shows it.

The rendering tests build one small report (every experiment but E6, the native one, 300
requests per point, the quick grids) once for the module; the conclusion tests hand the pure
conclusion functions made-up tables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from vbench.report import conclusions as C
from vbench.report import robustness as R
from vbench.report.build import ANSWER_KEYS, build_report
from vbench.report.experiments import EXPERIMENTS, Sizing, overrides
from vbench.report.robustness import robustness_words


def _two_models(first_lines: float, second_lines: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"point": 0, "engine.batch": 64, "label": "vbus-ioq", "lines_per_req": first_lines},
            {
                "point": 0,
                "engine.batch": 64,
                "label": "virtio-split",
                "lines_per_req": second_lines,
            },
        ]
    )


def _compare(table: pd.DataFrame) -> C.Conclusion:
    return C.compare(
        table,
        "lines_per_req",
        "vbus-ioq",
        "virtio-split",
        {"engine.batch": 64},
        key="k",
        experiment="E1",
        figure="e1-anatomy",
    )


def test_conclusion_reverses_with_the_data() -> None:
    ahead = _compare(_two_models(3.0, 2.0))
    behind = _compare(_two_models(2.0, 3.0))
    assert "virtio-split has the lower cache lines moved per request" in ahead.text
    assert "1.50x virtio-split's" in ahead.text
    assert "vbus-ioq has the lower cache lines moved per request" in behind.text
    assert "1.50x vbus-ioq's" in behind.text
    assert ahead.extra["best"] == "virtio-split" and behind.extra["best"] == "vbus-ioq"


def test_capacity_conclusion_reverses() -> None:
    rate = "workload.arrival.rate"
    rows = []
    for label, knee in (("virtio-split", 3e6), ("vbus-ioq", 2e6)):
        for r in (1e6, 2e6, 3e6):
            p99 = 10_000.0 if r <= knee else 900_000.0
            rows.append({"label": label, rate: r, "requests_per_s": r, "lat_p99_ns": p99})
    table = pd.DataFrame(rows)
    first = C.capacity(table, "vbus-ioq", "virtio-split", 50_000.0, "e4")
    assert "virtio-split has the higher maximum sustainable rate: 3 M req/s" in first.text
    swapped = table.assign(
        label=table["label"].map({"virtio-split": "vbus-ioq", "vbus-ioq": "virtio-split"})
    )
    second = C.capacity(swapped, "vbus-ioq", "virtio-split", 50_000.0, "e4")
    assert "vbus-ioq has the higher maximum sustainable rate: 3 M req/s" in second.text


def test_robustness_names_the_figure_that_flips() -> None:
    rows = []
    for case, figure, value, vbus in (
        ("base", "", 0.0, 3.0),
        ("line_transfer_ns low", "line_transfer_ns", 17.0, 1.0),
    ):
        for label, lines in (("vbus-ioq", vbus), ("virtio-split", 2.0)):
            rows.append(
                {
                    "case": case,
                    "case_figure": figure,
                    "case_value": value,
                    "point": 0,
                    "engine.batch": 64,
                    "label": label,
                    "lines_per_req": lines,
                }
            )
    cases = pd.DataFrame(rows)
    claim = _compare(_two_models(3.0, 2.0)).claim
    assert robustness_words([cases], claim) == "flips when line_transfer_ns is at its low end (17)"
    steady = cases[cases["case"] == "base"]
    assert robustness_words([steady], claim).startswith("holds for every cost in range")


def _capacity_rows(knees: dict[str, float], **case: object) -> list[dict[str, object]]:
    """An E4 sweep (1-3 M req/s) where each label's p99 stays under the bound up to its knee."""
    rate = "workload.arrival.rate"
    rows = []
    for label, knee in knees.items():
        for r in (1e6, 2e6, 3e6):
            p99 = 10_000.0 if r <= knee else 900_000.0
            rows.append({"label": label, rate: r, "requests_per_s": r, "lat_p99_ns": p99, **case})
    return rows


def test_capacity_robustness_follows_the_cases() -> None:
    """E4's verdict recomputed in every case of E5: a case where the knees swap flips it."""
    base = {"case": "base", "case_figure": "", "case_end": "base", "case_value": float("nan")}
    low = {"case": "wake_ns low", "case_figure": "wake_ns", "case_end": "low", "case_value": 2e3}
    high = {
        "case": "line_transfer_ns high",
        "case_figure": "line_transfer_ns",
        "case_end": "high",
        "case_value": 185.0,
    }
    knees = {"virtio-split": 3e6, "vbus-ioq": 2e6}
    table = pd.DataFrame(_capacity_rows(knees))
    claim = C.capacity(table, "vbus-ioq", "virtio-split", 50_000.0, "e4").claim
    steady = pd.DataFrame(_capacity_rows(knees, **base) + _capacity_rows(knees, **low))
    tables = [R.capacity_cases(steady, 50_000.0)]
    assert robustness_words(tables, claim) == "holds for every cost in range (2 cases of E5)"
    swapped = {"virtio-split": 1e6, "vbus-ioq": 2e6}
    flipping = pd.DataFrame(_capacity_rows(knees, **base) + _capacity_rows(swapped, **high))
    words = robustness_words([R.capacity_cases(flipping, 50_000.0)], claim)
    assert words == "flips when line_transfer_ns is at its high end (185)"


def _e2_cases(kicks_by_case: dict[str, float]) -> pd.DataFrame:
    """Two points, virtio and vbus, one case per entry: vbus's kicks per request at point 1."""
    rows = []
    for case, vbus_kicks in kicks_by_case.items():
        figure, _, end = case.rpartition(" ")
        for point in (0, 1):
            for label, kicks in (("virtio", 0.5), ("vbus", vbus_kicks if point else 1.0)):
                rows.append(
                    {
                        "case": case,
                        "case_figure": figure,
                        "case_end": end,
                        "case_value": 45_000.0,
                        "point": point,
                        "label": label,
                        "kicks_per_req": kicks,
                        "interrupts_per_req": 0.0,
                    }
                )
    return pd.DataFrame(rows)


def _vbus_wins(table: pd.DataFrame) -> tuple[int, int]:
    wide = table.pivot_table(index="point", columns="label", values="kicks_per_req")
    return int((wide["vbus"] < wide["virtio"]).sum()), len(wide)


def test_count_robustness_says_identical_only_when_it_is() -> None:
    metrics = ["kicks_per_req", "interrupts_per_req"]
    same = _e2_cases({"base": 0.25, "wake_ns high": 0.25})
    assert R.wins_robustness(same, _vbus_wins, metrics, 1) == (
        "a count: identical at every cost in range (2 cases of E5)"
    )
    moved = _e2_cases({"base": 0.25, "wake_ns high": 0.3})  # counts move, vbus still wins
    words = R.wins_robustness(moved, _vbus_wins, metrics, 1)
    assert words.startswith("holds for every cost in range (2 cases of E5): the counts")
    lost = _e2_cases({"base": 0.25, "wake_ns high": 0.75})  # vbus's win at point 1 is lost
    assert R.wins_robustness(lost, _vbus_wins, metrics, 1) == (
        "changes when wake_ns is at its high end (45000): 0 of 2 points won"
    )
    assert R.wins_robustness(lost, _vbus_wins, metrics, 2).startswith("not assessed")


def test_native_spread_is_the_spread_over_repetitions() -> None:
    rows = [
        {"engine": "native", "engine.device": "poll", "rep": rep, "label": label, **v}
        for rep, (a, b) in enumerate([(2.0, 1.0), (1.5, 1.0), (0.9, 1.0)])
        for label, v in (
            ("virtio-split", {"measured_requests_per_s": a}),
            ("vbus-ioq", {"measured_requests_per_s": b}),
        )
    ]
    words = C.native_spread(pd.DataFrame(rows), "virtio-split", "vbus-ioq", {})
    assert "over 3 repetitions the native ratio ranged 0.90x to 2.00x" in words
    assert words.endswith("the same order in 2 of 3")
    one = C.native_spread(pd.DataFrame(rows[:2]), "virtio-split", "vbus-ioq", {})
    assert "from 1 repetition, so its spread is not known" in one


def test_history_robustness_names_the_case_that_changes_the_story() -> None:
    steps = ["2009", "vhost", "event index"]
    rows = []
    for case, virtio in (("base", [3.0, 1.5, 1.2]), ("exit_ns high", [3.0, 2.9, 1.2])):
        figure, _, end = case.rpartition(" ")
        for point, value in enumerate(virtio):
            for label, v in (("virtio", value), ("vbus-ioq", 2.0)):
                rows.append(
                    {
                        "case": case,
                        "case_figure": figure,
                        "case_end": end,
                        "case_value": 2000.0,
                        "point": point,
                        "label": label,
                        "time_total_ns_per_req": v,
                    }
                )
    cases = pd.DataFrame(rows)
    args = ("virtio", "vbus-ioq", "time_total_ns_per_req", steps)
    steady = cases[cases["case"] == "base"]
    assert R.history_robustness(steady, *args) == "holds for every cost in range (1 cases of E5)"
    assert R.history_robustness(cases, *args) == (
        "changes when exit_ns is at its high end (2000): the step that moved it most is "
        "'event index'"
    )


STALL = (
    "vbus: native run stalled: no completion of all 20000 requests within "
    "engine.native.timeout_s = 5 s: driver asleep waiting for an interrupt (call eventfd) with "
    "256 requests outstanding (100 completed), device asleep waiting for a kick (kick eventfd)"
)


def _trials(lost_natively: int) -> pd.DataFrame:
    rows = []
    for engine in ("native", "sim"):
        for barrier in ("wmb", "mb"):
            for seed in range(4):
                lost = engine == "native" and barrier == "wmb" and seed < lost_natively
                message = STALL if lost else None
                rows.append(
                    {
                        "engine": engine,
                        "model": "vbus-prio",
                        "barrier": barrier,
                        "seed": seed,
                        "outcome": C.run_outcome(message),
                    }
                )
    return pd.DataFrame(rows)


def test_run_outcome_reads_the_failure() -> None:
    assert C.run_outcome(STALL) == "lost wakeup"
    assert C.run_outcome("lost wakeup: requests outstanding but neither side...") == "lost wakeup"
    assert C.run_outcome("a request completed twice") == "other failure"
    assert C.run_outcome(None) == C.run_outcome(float("nan")) == "completed"


@pytest.mark.parametrize(
    "lost,start",
    [
        (
            3,
            "Natively on this machine, with the shipped wmb 3 of 4 vbus-prio runs ended in a "
            "lost wakeup (requests outstanding, both sides asleep), with the full barrier 0 of "
            "4; in the simulation, none of 8 runs did, with either barrier",
        ),
        (
            0,
            "Natively on this machine, none of 8 runs ended in a lost wakeup (requests "
            "outstanding, both sides asleep), with either barrier; in the simulation, none of 8 "
            "runs did",
        ),
    ],
)
def test_lost_wakeup_sentence_follows_the_data(lost: int, start: str) -> None:
    said = C.lost_wakeups(_trials(lost), "e8-lost-wakeups")
    assert said.value == lost
    assert said.text.startswith(start)


def test_lost_wakeup_sentence_without_native_runs() -> None:
    sim_only = C.lost_wakeups(_trials(1).query("engine == 'sim'"), "e8-lost-wakeups")
    assert sim_only.text.startswith("In the simulation, none of 8 runs ended in a lost wakeup")


def test_e8_trials_follow_the_config_as_it_ran() -> None:
    """E8's runs are read from the folder's meta.json (config as run, failures), not from the
    config file as it is now (which may have other seeds, hence other point numbers)."""
    from types import SimpleNamespace

    from vbench.config import plan
    from vbench.report.experiments import trials

    e8 = next(e for e in EXPERIMENTS if e.key == "E8")
    ran = plan(e8.path, ["sweep.product.seed=[1, 2]"])
    lost = next(
        p.index
        for p in ran.points
        if p.params["engine.kind"] == "native" and p.params["models.vbus.signal_barrier"] == "wmb"
    )
    result = SimpleNamespace(
        meta={"config": ran.raw, "failures": [{"point": lost, "error": STALL}]},
        table=pd.DataFrame({"point": [p.index for p in ran.points if p.index != lost]}),
    )
    runs = trials(result, e8)
    assert len(runs) == len(ran.points) == 16
    runs["outcome"] = [C.run_outcome(m) for m in runs["message"]]
    failed = runs[runs["outcome"] == "lost wakeup"]
    assert failed[["engine", "barrier"]].values.tolist() == [["native", "wmb"]]
    assert (runs["outcome"] == "completed").sum() == 15


def test_quick_reduction_is_overrides_of_the_shipped_config() -> None:
    e1 = next(e for e in EXPERIMENTS if e.key == "E1")
    assert e1.path.is_file()
    sets = overrides(e1, Sizing(quick=True, preset="kvm-2009"))
    assert "workload.requests=10000" in sets and 'preset="kvm-2009"' in sets


class _Page(HTMLParser):
    """What the tests check in report.html: title, figure anchors, images, conclusions."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.ids, self.images, self.links = "", set(), [], []
        self.conclusions: list[dict[str, object]] = []
        self._in_title = False
        self._conclusion: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._in_title = tag == "title"
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "a" and (a.get("href") or "").startswith("#fig-"):
            self.links.append(a["href"][1:])
            if self._conclusion is not None:
                self._conclusion["links"].append(a["href"][1:])
        if tag == "p" and a.get("class") == "conclusion":
            self._conclusion = {"text": "", "links": []}

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag == "p" and self._conclusion is not None:
            self.conclusions.append(self._conclusion)
            self._conclusion = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._conclusion is not None:
            self._conclusion["text"] += data


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    # E8 too (its native half on 300 requests a run; simulated only where there is one CPU)
    keys = {e.key for e in EXPERIMENTS if not e.native} | {"E5", "E8"}
    build_report(out, Sizing(quick=True, requests=300), only=keys, jobs=1)
    return out


def test_small_report_renders_whole(small_report: Path) -> None:
    page = _Page()
    page.feed((small_report / "report.html").read_text())
    assert page.title.startswith("vbench report")
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    figure_ids = {i for i in page.ids if i.startswith("fig-")}
    assert len(figure_ids) == len(page.images)
    assert set(page.links) <= figure_ids, "a link points at a figure that is not embedded"
    assert len(page.conclusions) >= 10
    for conclusion in page.conclusions:
        assert re.search(r"\d", str(conclusion["text"])), conclusion
        assert conclusion["links"], f"no figure link: {conclusion['text']}"
    assert "Robustness:" in str(page.conclusions[0]["text"])
    html_text = (small_report / "report.html").read_text()
    for keys in ANSWER_KEYS.values():  # the two answers lead with their headline conclusions
        for key in keys:
            assert f'data-key="{key}"' in html_text, key
    assert "Not run" in (small_report / "report.html").read_text()  # E6 says why it is absent
    markdown = (small_report / "report.md").read_text()
    for name in re.findall(r"\]\(figures/([^)]+)\)", markdown):
        assert (small_report / "figures" / name).is_file()
    assert (small_report / "runs").is_dir()


def test_report_resumes_its_folder(small_report: Path) -> None:
    said: list[str] = []
    build_report(
        small_report, Sizing(quick=True, requests=300), only={"E1"}, jobs=1, say=said.append
    )
    assert any("reusing" in line for line in said)


def test_headless_chromium_shows_the_report(small_report: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does)")
    page = (small_report / "report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1280,6000", page],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "<title>vbench report" in dom
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 6000 * 0.9
    assert float(pixels[..., :3].std()) > 0.02, "the screenshot is blank"


def test_cases_tables_get_the_derived_columns_their_inputs_allow():
    """E5's cases tables answer conclusions on derived columns (notifications, ring-full stalls
    per request) only where the inputs are there: a table without them is left as it was."""
    import pandas as pd

    from vbench.report.conclusions import with_derived

    full = pd.DataFrame(
        {
            "kicks_per_req": [0.5],
            "interrupts_per_req": [0.25],
            "ring_full_stalls": [3],
            "requests": [12],
        }
    )
    out = with_derived(full)
    assert out["notifications_per_req"].tolist() == [0.75]
    assert out["ring_full_stalls_per_req"].tolist() == [0.25]
    bare = pd.DataFrame({"max_sustainable_rate": [1e6]})
    assert list(with_derived(bare).columns) == ["max_sustainable_rate"]
