"""Prefixed, timed progress output: `[etcd] cp1: member started`.

Only this printer writes progress; errors are printed by the CLI. Nothing secret is ever
passed here: phases report descriptions, never file contents.
"""

from __future__ import annotations

import sys
from typing import TextIO


class Printer:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet

    def _write(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.stream, flush=True)

    def phase_start(self, name: str, title: str) -> None:
        self._write(f"[{name}] {title}")

    def host(self, phase: str, host: str, message: str) -> None:
        self._write(f"[{phase}] {host}: {message}")

    def note(self, phase: str, message: str) -> None:
        self._write(f"[{phase}] {message}")

    def details(self, lines: list[str]) -> None:
        """Lines shown under a change, indented (a dry run's diff of a rendered file)."""
        for line in lines:
            self._write(f"    {line}")

    def phase_end(self, name: str, changes: int, seconds: float, dry_run: bool) -> None:
        if changes == 0:
            summary = "no changes"
        elif dry_run:
            summary = f"{changes} change{'s' if changes != 1 else ''} would be made"
        else:
            summary = f"{changes} change{'s' if changes != 1 else ''}"
        self._write(f"[{name}] done in {seconds:.1f}s: {summary}")

    def summary(self, total_changes: int, seconds: float, dry_run: bool) -> None:
        if total_changes == 0:
            verdict = "nothing to change: every host already matches the spec"
        elif dry_run:
            verdict = f"dry run: {total_changes} change(s) would be made; nothing was changed"
        else:
            verdict = f"{total_changes} change(s) applied"
        self._write(f"{verdict} ({seconds:.1f}s)")
