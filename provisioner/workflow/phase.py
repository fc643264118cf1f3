"""A phase: a small named step of a workflow that ensures something and reports what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PhaseOutcome:
    """What a phase did (or, in a dry run, would do): change descriptions per host."""

    changes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, host: str, description: str) -> None:
        self.changes.setdefault(host, []).append(description)

    def merge(self, by_host: dict[str, list[str]]) -> None:
        for host, descriptions in by_host.items():
            for description in descriptions:
                self.add(host, description)

    @property
    def change_count(self) -> int:
        return sum(len(v) for v in self.changes.values())


@dataclass(frozen=True)
class Phase:
    """`name` is what --only/--skip take; `run(ctx)` ensures the phase's state.

    `run` receives the workflow's context object and returns a PhaseOutcome. When the context
    says dry_run, it must change nothing and report what it would change.
    """

    name: str
    title: str
    run: Callable[[Any], PhaseOutcome]
