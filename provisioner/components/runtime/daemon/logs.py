"""runtime/daemon: reading the per-container CRI-format log files the shim writes.

Each line is `<RFC 3339 time> <stdout|stderr> <P|F> <text>`: `P` marks a piece of a longer line
that continues on the next entry, `F` a line's end. The shim rotates by size, renaming
`container.log` to `container.log.1` (older ones `.2`, ...), so a full read starts with the
oldest rotated file, and follow mode notices the rename and reopens the new file.
"""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass


@dataclass
class LogEntry:
    time: str
    stream: str      # "stdout" | "stderr"
    data: bytes      # with the line's newline when the entry ends a line


def parse_line(line: bytes) -> LogEntry | None:
    """One CRI log line; None for a line that does not parse (a torn write at a crash)."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    text = parts[3] if len(parts) == 4 else b""
    if parts[2] == b"F":
        text += b"\n"
    elif parts[2] != b"P":
        return None
    return LogEntry(parts[0].decode(), parts[1].decode(), text)


def rotated_files(log_path: str) -> list[str]:
    """The rotated files of a log, oldest first."""
    numbered = []
    for path in glob.glob(glob.escape(log_path) + ".*"):
        suffix = path[len(log_path) + 1:]
        if suffix.isdigit():
            numbered.append((int(suffix), path))
    return [path for _, path in sorted(numbered, reverse=True)]


def _entries_of(path: str) -> Iterator[LogEntry]:
    try:
        with open(path, "rb") as source:
            for line in source:
                entry = parse_line(line)
                if entry is not None:
                    yield entry
    except FileNotFoundError:
        return


def read_all(log_path: str, tail: int | None = None) -> list[LogEntry]:
    """Every entry (or the last `tail` lines) across the rotated files and the current one."""
    entries: list[LogEntry] = []
    for path in [*rotated_files(log_path), log_path]:
        entries.extend(_entries_of(path))
    return entries if tail is None else _last_lines(entries, tail)


def _last_lines(entries: list[LogEntry], count: int) -> list[LogEntry]:
    """The entries making up the last `count` whole lines (partial pieces stay with their line)."""
    if count <= 0:
        return []
    lines_seen = 0
    index = len(entries)
    while index > 0:
        entry = entries[index - 1]
        if entry.data.endswith(b"\n"):
            if lines_seen == count:
                break
            lines_seen += 1
        index -= 1
    return entries[index:]


async def follow(log_path: str, still_running: Callable[[], bool], tail: int | None = None,
                 poll_seconds: float = 0.1) -> AsyncIterator[LogEntry]:
    """Existing entries, then new ones as the shim writes them, until the container has exited
    and the file is drained. A rotation (the path now names a new file) is followed."""
    history: list[LogEntry] = []
    for path in rotated_files(log_path):
        history.extend(_entries_of(path))
    source, inode = _open(log_path)
    pending = b""
    last_look = False
    try:
        if source:
            # Read what is there through the handle we keep, so nothing falls between the two.
            pending = source.read()
            *lines, pending = pending.split(b"\n")
            history.extend(entry for entry in map(parse_line, lines) if entry is not None)
        for entry in (history if tail is None else _last_lines(history, tail)):
            yield entry
        while True:
            chunk = source.read(65536) if source else b""
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    entry = parse_line(line)
                    if entry is not None:
                        yield entry
                continue
            current_inode = _inode(log_path)
            if current_inode is not None and current_inode != inode:
                # Rotated (or created): what the old file held was read above; start the new one.
                if source:
                    source.close()
                source, inode = _open(log_path)
                pending = b""
                continue
            if last_look:
                return
            if not still_running():
                # One more read: the last lines may have landed between the read above and the
                # exit check (the shim records the exit only after writing them)
                last_look = True
                continue
            await asyncio.sleep(poll_seconds)
    finally:
        if source:
            source.close()


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _open(path: str):
    try:
        source = open(path, "rb")    # noqa: SIM115 - the caller keeps it open while following
    except FileNotFoundError:
        return None, None
    return source, os.fstat(source.fileno()).st_ino
