"""Progress bars for the long CLI jobs (backtest, bulk import, report batches, demo backfill), drawn with Rich.

The bar goes to stderr, so stdout keeps only the command's result (a JSON line a script reads stays clean JSON),
and it is drawn only for a person: not when stderr is not a terminal (a pipe, a log file, CI), and not when the
command was asked for `--json` (a script is the reader then, even in a terminal). A quiet bar costs nothing and
is used in the same way, so callers never branch on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class Bar:
    """One task of a Rich Progress: advance it by hand, or let it follow an iterable or a factory."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    @property
    def shown(self) -> bool:
        """True when the bar is drawn (a terminal, no --json)."""
        return not self._progress.disable

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def total(self, total: float | None) -> None:
        """Set or change the total (a job that learns its size once it has started)."""
        self._progress.update(self._task, total=total)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, advancing by one after each has been handled."""
        for item in items:
            yield item
            self.advance()

    def tracked(self, items: list[T]) -> list[T]:
        """A copy of `items` that advances the bar by one after each item, each time it is iterated.

        For an engine that takes lists and offers no callback (registry import): its loop over the list drives
        the bar, and it cannot tell the difference.
        """
        return _TrackedList(items, self)

    def counting(self, factory: Callable[[], T]) -> Callable[[], T]:
        """`factory`, advancing by one at each call: a job that calls a factory once per step needs no hook."""

        def call() -> T:
            self.advance()
            return factory()

        return call


class _TrackedList(list[T]):
    def __init__(self, items: Iterable[T], bar: Bar) -> None:
        super().__init__(items)
        self._bar = bar

    def __iter__(self) -> Iterator[T]:
        return self._bar.track(list.__iter__(self))


def stderr_console() -> Console:
    return Console(stderr=True)


@contextmanager
def progress(description: str, total: float | None = None, *, as_json: bool = False,
             console: Console | None = None) -> Iterator[Bar]:
    """A bar named `description` on stderr for the duration of the block; quiet with `as_json` or without a TTY."""
    console = console or stderr_console()
    bar = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=as_json or not console.is_terminal, transient=False,
    )
    with bar:
        yield Bar(bar, bar.add_task(description, total=total))
