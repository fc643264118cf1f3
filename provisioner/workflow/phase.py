"""A phase: a small named step of a workflow that plans what it ensures and reports what changed.

A phase never looks at --dry-run. It supplies a `plan` that reads facts and records work (pyinfra
operations in `plan.session`, and actions of its own with `plan.then`); the runner either shows
that work (dry run) or applies it. A phase may instead hold sub-phases, addressable as
`parent/child` by --only and --skip; `run_if` gates a phase (and all below it) on the context;
`cleanup` is what `delete` runs for it, in reverse workflow order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.workflow.plan import Plan


@dataclass
class PhaseOutcome:
    """What a phase did (or, in a dry run, would do): change descriptions per host."""

    changes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Lines shown under one change (a unified diff of a rendered file), keyed (host, change).
    details: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, host: str, description: str) -> None:
        self.changes.setdefault(host, []).append(description)

    def merge(self, by_host: dict[str, list[str]]) -> None:
        for host, descriptions in by_host.items():
            for description in descriptions:
                self.add(host, description)

    @property
    def change_count(self) -> int:
        return sum(len(v) for v in self.changes.values())


PlanFunction = Callable[[Any, Plan], None]


@dataclass(frozen=True)
class Phase:
    """`name` is what --only/--skip take (`parent/child` for a sub-phase).

    plan(ctx, plan): read facts, record operations and actions; never change anything itself.
    phases: sub-phases run in order instead of (after) this phase's own plan.
    run_if(ctx): False skips the phase and its sub-phases (e.g. no host has the role).
    hosts(ctx): the hosts `plan.session` connects to (default: every host of the context).
    cleanup(ctx, plan): what `delete` does for this phase; phases that own things on hosts get
        the workflow's default clean-up (remove what they own) when they give none.
    owns: what the phase places on hosts (provisioner.phases.owned.Owned); opaque here.
    """

    name: str
    title: str
    plan: PlanFunction | None = None
    phases: tuple["Phase", ...] = ()
    run_if: Callable[[Any], bool] | None = None
    hosts: Callable[[Any], Sequence[Any]] | None = None
    cleanup: PlanFunction | None = None
    owns: Any = None

    def __post_init__(self) -> None:
        if "/" in self.name:
            raise ValueError(f"phase name {self.name!r} must not contain '/'")
        if self.plan is None and not self.phases:
            raise ValueError(f"phase {self.name!r} needs a plan or sub-phases")

    def walk(self, prefix: str = "") -> list[tuple[str, "Phase"]]:
        """(path, phase) for this phase and every phase below it, in run order."""
        path = f"{prefix}/{self.name}" if prefix else self.name
        found = [(path, self)]
        for child in self.phases:
            found += child.walk(path)
        return found


def walk(phases: Sequence[Phase]) -> list[tuple[str, Phase]]:
    """(path, phase) for every phase of a workflow, parents before their sub-phases."""
    return [entry for phase in phases for entry in phase.walk()]
