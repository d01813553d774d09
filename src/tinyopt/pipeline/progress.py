"""Progress display for the stages: rich bars when a console is given, silence otherwise (tests)."""

from __future__ import annotations

import contextlib


class Progress:
    def __init__(self, console=None):
        self.progress = None
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(bar_width=30),
                                     MofNCompleteColumn(), TimeElapsedColumn(), console=console)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    @contextlib.contextmanager
    def bar(self, description: str, total: int):
        """Yield ``tick(n=1)``; the bar is completed on exit (a cached stage jumps to the end)."""
        if not self.progress:
            yield lambda n=1: None
            return
        tid = self.progress.add_task(description, total=max(total, 1))
        yield lambda n=1: self.progress.update(tid, advance=n)
        self.progress.update(tid, completed=max(total, 1))

    @contextlib.contextmanager
    def step(self, description: str):
        with self.bar(description, 1) as tick:
            yield tick
