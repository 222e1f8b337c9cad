"""Repeated warnings collapsed into one summary line per kind, for every CLI command.

A command such as ``evaluate`` can warn dozens of times the same way (a zero-shot AUC
undefined for each class without positives, a probe skipped for each rare class).
:func:`collapsed_warnings` shows the first warning of each kind where it happens and, when the
command ends, one line per kind that repeated: ``N more like this: <the first one>``.

Two warnings are of the same kind when they come from the same ``warnings.warn`` call site
(location and category, as ``logging.captureWarnings`` formats them), or, for log records,
the same logger and message template with its numbers blanked. Only WARNING-level records are
collapsed; progress (INFO) and errors always show.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: ``warnings.formatwarning``'s prefix: ``FILE:LINE: Category: message``.
_WARNING_PREFIX = re.compile(r"(?P<site>.+?:\d+): (?P<category>\w+): (?P<text>.*)")
_NUMBER = re.compile(r"\d+(\.\d+)?")
#: Longest excerpt of the first warning repeated in its summary line.
EXCERPT = 120


@dataclass
class _Kind:
    first: str
    repeats: int = 0


class RepeatFilter(logging.Filter):
    """A handler filter that passes the first WARNING record of each kind and counts the rest
    (one instance may sit on several handlers: a record is counted once)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[tuple[str, ...], _Kind] = {}
        # the last record and whether it passed (held, so its identity is not reused)
        self._last: tuple[logging.LogRecord | None, bool] = (None, True)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        if self._last[0] is record:  # the same record at the next handler
            return self._last[1]
        key, text = kind_of(record)
        kind = self.kinds.get(key)
        if kind is None:
            self.kinds[key] = _Kind(text)
        else:
            kind.repeats += 1
        self._last = (record, kind is None)
        return kind is None

    def summary(self) -> list[str]:
        """One line per kind that repeated, in order of first appearance."""
        return [f"{kind.repeats} more like this: {_excerpt(kind.first)}"
                for kind in self.kinds.values() if kind.repeats]  # fmt: skip


def kind_of(record: logging.LogRecord) -> tuple[tuple[str, ...], str]:
    """A WARNING record's kind (see the module notes) and its text (without the source line
    that ``captureWarnings`` appends)."""
    message = record.getMessage()
    if record.name == "py.warnings":
        match = _WARNING_PREFIX.match(message.splitlines()[0] if message else "")
        if match:
            return ("py.warnings", match["site"], match["category"]), match["text"]
    return (record.name, _NUMBER.sub("#", str(record.msg))), message


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


@contextmanager
def collapsed_warnings(
    logger: logging.Logger | None = None, summary_logger: str = "clip2clinic"
) -> Iterator[RepeatFilter]:
    """Within the block, ``logger``'s handlers (default: the root logger's) show only the first
    warning of each kind; on leaving, each kind that repeated gets one summary line, logged as
    a warning on ``summary_logger``."""
    handlers = list((logger or logging.getLogger()).handlers)
    repeats = RepeatFilter()
    for handler in handlers:
        handler.addFilter(repeats)
    try:
        yield repeats
    finally:
        for handler in handlers:
            handler.removeFilter(repeats)
        for line in repeats.summary():
            logging.getLogger(summary_logger).warning("%s", line)
