"""runtime: how the CLI prints: tables, ages ("5 minutes ago"), sizes, streamed output."""

from __future__ import annotations

import sys
from datetime import UTC, datetime


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["   ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def ago(text: str) -> str:
    from .daemon.views import human_duration, parse_time

    moment = parse_time(text)
    if moment is None:
        return ""
    if moment.timestamp() <= 0:
        return "N/A"      # as Docker shows a zero time: bootstrap images are dated at the epoch
    return f"{human_duration((datetime.now(UTC) - moment).total_seconds())} ago"


def human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def emit(event: dict) -> None:
    data = event["data"].encode("utf-8", "surrogateescape")
    target = sys.stderr if event.get("stream") == "stderr" else sys.stdout
    target.buffer.write(data)
    target.buffer.flush()
