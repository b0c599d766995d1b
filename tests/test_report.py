"""vbench report: conclusions follow the data, the report renders whole, a browser shows it.

The rendering tests build one small report (every experiment but the native one, 300
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
    keys = {e.key for e in EXPERIMENTS if not e.native} | {"E5"}
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
