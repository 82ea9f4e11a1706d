"""Progress reporting on long work: rich bars on a terminal, silent in library use by default.

Two consoles: :data:`console` (stderr) for progress, logs, warnings and errors, and
:data:`results` (stdout) for what a command produces (tables, lists, paths, summaries), so
that ``retain models list | grep churn`` sees the results only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = [
    "ProgressReporter",
    "console",
    "null_progress",
    "progress_bar",
    "results",
    "step_printer",
]

#: Progress, logs, warnings and errors.
console = Console(stderr=True)
#: Results of a command: tables, lists, paths, summaries.
results = Console()


class ProgressReporter(Protocol):
    """What long-running functions call: ``step(description)`` once per unit of work."""

    def __call__(self, description: str, advance: float = 1.0) -> None: ...


def null_progress(description: str, advance: float = 1.0) -> None:
    """A reporter that reports nothing (the default for library calls)."""


@contextmanager
def progress_bar(title: str, total: float) -> Iterator[ProgressReporter]:
    """Show a rich progress bar with ``total`` steps; yield the reporter that advances it."""
    with Progress(
        TextColumn("[bold]{task.fields[title]}[/bold]"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=total, title=title)

        def report(description: str, advance: float = 1.0) -> None:
            bar.update(task, advance=advance, description=description)

        yield report
        bar.update(task, completed=total, description="done")


def step_printer(title: str) -> ProgressReporter:
    """A reporter for work of unknown length: one line per step with the seconds elapsed."""
    started = time.perf_counter()

    def report(description: str, advance: float = 1.0) -> None:
        elapsed = time.perf_counter() - started
        console.print(f"  [dim]{title} {elapsed:6.1f}s[/dim] {description}", highlight=False)

    return report
