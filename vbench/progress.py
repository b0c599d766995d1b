"""What ``vbench run`` shows while it works, with one clock started when the command starts.

On a terminal: :class:`~vbench.render.SweepView`'s spinner (naming the model that compiles)
and progress bar, whose elapsed time counts from the start, compiling included. Anywhere else
(a CI log, a pipe, a file): plain lines, one per step, each stamped with the time since the
start: the sweep's size, each model compiling, the models ready, point k of n (every point of a
short sweep, about every 5 % or 10 s of a long one), so a log never sits silent through a cold
compile. ``--quiet`` shows neither; notes and the results folder are shown either way.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vbench.commands import OnPoint
from vbench.render import SweepView

#: a long sweep's progress lines: at least this many seconds apart, unless a 5 % step is reached
PLAIN_EVERY_S = 10.0
#: a sweep of at most this many points gets a line per point
PLAIN_ALL_POINTS = 100


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


class RunView(SweepView):
    """:class:`~vbench.render.SweepView` with the clock at the command's start, and plain
    progress lines when stderr is not a terminal (``plain`` forces either)."""

    def __init__(self, quiet: bool = False, fmt: str = "auto", plain: bool | None = None):
        super().__init__(quiet, fmt)
        self.t0 = time.monotonic()
        self.plain = not sys.stderr.isatty() if plain is None else plain
        self._status: Any = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def line(self, text: str) -> None:
        """One plain progress line on stderr, stamped with the time since the start."""
        print(f"[{_clock(self.elapsed())}] {text}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self.plain:  # unwrapped: a log line is read whole, or grepped
            print(f"note: {text}", file=sys.stderr, flush=True)
        else:
            super().note(text)

    def starting(self, plan: Any, runs: int, jobs: int, resuming: Path | None) -> None:
        if self.quiet or not self.plain:
            super().starting(plan, runs, jobs, resuming)
            return
        again = f", resuming {resuming}" if resuming is not None else ""
        self.line(
            f"{plan.name}: {len(plan.points)} points × models = {runs} runs, {jobs} job(s){again}"
        )

    @contextlib.contextmanager
    def compiling(self) -> Iterator[None]:
        if self.quiet:
            yield
            return
        if self.plain:
            self.line("compiling / loading the jitted models (cached after the first run)")
            yield
            self.line("models ready")
            return
        with self.err.status("compiling / loading the jitted models…", spinner="dots") as st:
            self._status = st
            try:
                yield
            finally:
                self._status = None

    def compiling_model(self, model: str) -> None:
        if self.quiet:
            return
        if self.plain:
            self.line(f"compiling {model}")
        elif self._status is not None:
            self._status.update(f"compiling / loading the jitted models: {model}…")

    @contextlib.contextmanager
    def running(self, points: int) -> Iterator[OnPoint | None]:
        if self.quiet:
            yield None
        elif self.plain:
            yield self._plain_points(points)
        else:
            yield from self._bar(points)

    def _plain_points(self, points: int) -> OnPoint:
        done = 0
        last = [self.elapsed(), 0]  # time and step (5 % of the points) of the last line
        step = max(1, points // 20)

        def on_point(index: int, failure: Any) -> None:
            nonlocal done
            done += 1
            now = self.elapsed()
            due = (
                points <= PLAIN_ALL_POINTS
                or done == points
                or done // step > last[1]
                or now - last[0] >= PLAIN_EVERY_S
                or failure is not None
            )
            if due:
                failed = f" (point {index} failed)" if failure is not None else ""
                self.line(f"point {done} of {points} done{failed}")
                last[:] = [now, done // step]

        return on_point

    def _bar(self, points: int) -> Iterator[OnPoint]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
        )
        from rich.text import Text

        view = self

        class SinceStart(ProgressColumn):
            """Elapsed time since the command started, compiling included."""

            def render(self, task: Any) -> Text:
                return Text(_clock(view.elapsed()), style="progress.elapsed")

        columns = (TextColumn("[progress.description]{task.description}"), BarColumn())
        with Progress(*columns, MofNCompleteColumn(), SinceStart(), console=self.err) as bar:
            task = bar.add_task("points", total=points)
            yield lambda _index, _failure: bar.advance(task)
