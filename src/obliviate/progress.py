"""Rich progress bars that library code can turn off."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(
    description: str, *, total: int, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callable; draws a rich bar on a terminal when ``enabled``.

    The bar is written to stderr and is silent when stderr is not a terminal or when
    ``OBLIVIATE_NO_PROGRESS`` is set, so that logs and JSON output stay clean.
    """
    show = enabled and sys.stderr.isatty() and not os.environ.get("OBLIVIATE_NO_PROGRESS")
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
