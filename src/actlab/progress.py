"""Progress of long library work (decoding 130k images, downloads) without printing.

Library code calls :func:`progress_bar`; by default it logs at most ten lines per task.
The CLI installs a rich progress bar with :func:`set_progress_factory`, so a user at a
terminal sees a live bar and a log file gets a few lines.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, "int | None"], contextlib.AbstractContextManager[Advance]]


@contextlib.contextmanager
def logging_progress(description: str, total: int | None) -> Iterator[Advance]:
    """Log the start, every 10% and the end of a task."""
    done = 0
    next_report = 0.1

    def advance(amount: int = 1) -> None:
        nonlocal done, next_report
        done += amount
        if total and done / total >= next_report:
            log.info("%s: %d%%", description, int(100 * done / total))
            next_report += 0.1

    log.info("%s ...", description)
    yield advance
    log.info("%s: done", description)


_factory: ProgressFactory = logging_progress


def set_progress_factory(factory: ProgressFactory | None) -> None:
    """Install a progress display (``None`` restores logging)."""
    global _factory
    _factory = factory or logging_progress


def progress_bar(description: str, total: int | None) -> contextlib.AbstractContextManager[Advance]:
    """``with progress_bar("decoding", n) as advance: ... advance(1)``."""
    return _factory(description, total)
