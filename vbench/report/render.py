"""The report as ``report.html`` (one self-contained file: figures embedded as PNG data URIs,
inline CSS, no network, readable on a phone, printable) and ``report.md`` (figures linked as
files in ``figures/``).

Figures are numbered in order of first appearance; every conclusion ends with its experiment
and a link to its figure's anchor, e.g. "(E1, fig. 3)", and its robustness from E5.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vbench.report.conclusions import Conclusion
from vbench.report.sections import Section

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:auto;
padding:0 1rem 3rem;line-height:1.5;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#555}
.conclusion{background:#f4f8ff;border-left:4px solid #36c;padding:.4rem .7rem;margin:.5rem 0}
.robust{display:block;font-size:.88rem;color:#555}
.note{background:#fff6e0;border-left:4px solid #e90;padding:.4rem .7rem}
.answer{background:#eefaf0;border-left:4px solid #3a3;padding:.2rem .8rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .4rem;text-align:left;vertical-align:top}
@media (max-width:40rem){body{padding:0 .5rem}h1{font-size:1.3rem}table{font-size:.72rem}}
@media print{body{max-width:none}a{color:inherit;text-decoration:none}
figure,.conclusion,table{break-inside:avoid}h2{break-after:avoid}}
"""


@dataclass
class Report:
    """Everything the report says, ready to render."""

    title: str
    intro: str
    fairness: list[str]
    answers: list[tuple[str, list[str], list[Conclusion]]]  # (question, prose, conclusions)
    sections: list[tuple[str, list[Section]]]  # (part title, sections)
    provenance: dict[str, str]
    provenance_tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)  # figure key -> number

    def number_figures(self) -> None:
        for _part, sections in self.sections:
            for section in sections:
                for figure in section.figures:
                    self.numbers.setdefault(figure.key, len(self.numbers) + 1)


def _link(conclusion: Conclusion, numbers: dict[str, int], markdown: bool) -> str:
    number = numbers.get(conclusion.figure, 0)
    if markdown:
        return f"({conclusion.experiment}, [fig. {number}](#fig-{conclusion.figure}))"
    return (
        f'({html.escape(conclusion.experiment)}, <a href="#fig-{conclusion.figure}">'
        f"fig. {number}</a>)"
    )


def conclusion_html(conclusion: Conclusion, numbers: dict[str, int]) -> str:
    return (
        f'<p class="conclusion" data-key="{html.escape(conclusion.key)}">'
        f"{html.escape(conclusion.text)} {_link(conclusion, numbers, False)}."
        f'<span class="robust">Robustness: {html.escape(conclusion.robustness)}.</span></p>'
    )


def conclusion_markdown(conclusion: Conclusion, numbers: dict[str, int]) -> str:
    return (
        f"- {conclusion.text} {_link(conclusion, numbers, True)}. "
        f"*Robustness: {conclusion.robustness}.*"
    )


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which vbench does not depend on)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def _table_html(caption: str, table: pd.DataFrame) -> str:
    body = table.to_html(index=False, border=0, escape=True, na_rep="n/a")
    return f'<div class="scroll"><p><b>{html.escape(caption)}</b></p>{body}</div>'


def _figure_html(figure: Any, number: int) -> str:
    data = base64.b64encode(Path(figure.path).read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{figure.key}"><img alt="{html.escape(figure.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>Fig. {number}.</b> '
        f"{html.escape(figure.title)}. {html.escape(figure.caption)}</figcaption></figure>"
    )


def _section_html(section: Section, numbers: dict[str, int]) -> list[str]:
    out = [f'<h3 id="{section.key}">{html.escape(section.title)}</h3>']
    out += [f"<p>{html.escape(p)}</p>" for p in section.prose]
    out += [f'<p class="note">{html.escape(n)}</p>' for n in section.notes]
    out += [_figure_html(f, numbers[f.key]) for f in section.figures]
    out += [conclusion_html(c, numbers) for c in section.conclusions]
    out += [_table_html(caption, table) for caption, table in section.tables]
    return out


def to_html(report: Report) -> str:
    """The whole report as one HTML document."""
    report.number_figures()
    numbers = report.numbers
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1><p>{html.escape(report.intro)}</p>",
        "<h2 id='answers'>The two answers</h2>",
    ]
    for question, text, found in report.answers:
        parts.append(f'<div class="answer"><h3>{html.escape(question)}</h3>')
        parts += [f"<p>{html.escape(p)}</p>" for p in text]
        parts += [conclusion_html(c, numbers) for c in found]
        parts.append("</div>")
    parts.append("<h2 id='fairness'>Fairness rules</h2><ul>")
    parts += [f"<li>{html.escape(rule)}</li>" for rule in report.fairness]
    parts.append("</ul>")
    for part, sections in report.sections:
        parts.append(f"<h2>{html.escape(part)}</h2>")
        for section in sections:
            parts += _section_html(section, numbers)
    parts.append("<h2 id='provenance'>Provenance</h2><ul>")
    parts += [
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in report.provenance.items()
    ]
    parts.append("</ul>")
    parts += [_table_html(caption, table) for caption, table in report.provenance_tables]
    parts.append("</body></html>")
    return "\n".join(parts)


def _section_markdown(section: Section, numbers: dict[str, int]) -> list[str]:
    out = [f"### {section.title}", ""]
    for paragraph in section.prose + [f"> {n}" for n in section.notes]:
        out += [paragraph, ""]
    for figure in section.figures:
        number = numbers[figure.key]
        out += [
            f'<a id="fig-{figure.key}"></a>',
            f"![Fig. {number}. {figure.title}](figures/{Path(figure.path).name})",
            "",
            f"*Fig. {number}. {figure.title}. {figure.caption}*",
            "",
        ]
    out += [conclusion_markdown(c, numbers) for c in section.conclusions] + [""]
    for caption, table in section.tables:
        out += [f"**{caption}**", "", markdown_table(table), ""]
    return out


def to_markdown(report: Report) -> str:
    """The report as Markdown, figures linked in ``figures/``."""
    report.number_figures()
    numbers = report.numbers
    out = [f"# {report.title}", "", report.intro, "", "## The two answers", ""]
    for question, text, found in report.answers:
        out += [f"### {question}", ""] + [p + "\n" for p in text]
        out += [conclusion_markdown(c, numbers) for c in found] + [""]
    out += ["## Fairness rules", ""] + [f"- {rule}" for rule in report.fairness] + [""]
    for part, sections in report.sections:
        out += [f"## {part}", ""]
        for section in sections:
            out += _section_markdown(section, numbers)
    out += ["## Provenance", ""] + [f"- **{k}**: {v}" for k, v in report.provenance.items()]
    out.append("")
    for caption, table in report.provenance_tables:
        out += [f"**{caption}**", "", markdown_table(table), ""]
    return "\n".join(out)
