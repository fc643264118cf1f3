"""Runs an ordered list of phases: --only/--skip by path, run-if, dry run, clean-up order.

Each selected phase with a plan is planned into a `Plan`; a real run applies its operations
and then runs its actions, a dry run previews the operations (with a unified diff of each
rendered file that would change) and lists the actions it would take. Progress and each phase's
time go to the printer; an error is wrapped once with the phase's path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.errors import EXIT_USAGE, ProvisionerError
from provisioner.workflow.output import Printer
from provisioner.workflow.phase import Phase, PhaseOutcome, PlanFunction, walk
from provisioner.workflow.plan import Plan


class PhaseSelectionError(ProvisionerError):
    """--only/--skip name an unknown phase or leave none: a bad command line (exit 2)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Selected:
    """A phase chosen to run, with its path and the phases above it (their run-if gates it)."""

    path: str
    phase: Phase
    parents: tuple[Phase, ...]


def _covers(name: str, path: str) -> bool:
    return path == name or path.startswith(name + "/")


def select_phases(
    phases: Sequence[Phase], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[Selected]:
    """The phases with a plan to run, in workflow order; unknown names are a usage error.

    A name selects a phase and everything below it: `--only control-plane` runs all its
    sub-phases, `--only control-plane/apiserver` just that one."""
    entries = walk(phases)
    known = [path for path, _ in entries]
    for option, names in (("--only", only), ("--skip", skip)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise PhaseSelectionError(
                f"{option}: unknown phase {', '.join(unknown)}; phases are: {', '.join(known)}"
            )
    by_path = dict(entries)
    selected = []
    for path, phase in entries:
        if phase.plan is None:
            continue
        if only and not any(_covers(n, path) for n in only):
            continue
        if any(_covers(n, path) for n in skip):
            continue
        ancestors = path.split("/")[:-1]
        parents = tuple(by_path["/".join(ancestors[: i + 1])] for i in range(len(ancestors)))
        selected.append(Selected(path, phase, parents))
    if not selected:
        raise PhaseSelectionError("--only/--skip leave no phase to run")
    return selected


def cleanup_phases(
    phases: Sequence[Phase], default: Callable[[Phase], PlanFunction | None]
) -> list[Phase]:
    """The workflow `delete` runs: every phase's clean-up, in reverse order (sub-phases too).

    A phase without its own `cleanup` gets `default(phase)` (None: nothing to undo)."""
    reversed_phases = []
    for phase in reversed(phases):
        children = tuple(cleanup_phases(phase.phases, default))
        undo = phase.cleanup or default(phase)
        if undo is None and not children:
            continue
        reversed_phases.append(Phase(phase.name, f"undoing: {phase.title}", plan=undo,
                                     phases=children, run_if=phase.run_if, hosts=phase.hosts))
    return reversed_phases


def _run_one(selected: Selected, ctx: Any, dry_run: bool, earlier_changes: int) -> PhaseOutcome:
    phase = selected.phase
    outcome = PhaseOutcome()
    plan = Plan(ctx, list(phase.hosts(ctx)) if phase.hosts else None,
                earlier_changes=earlier_changes)
    try:
        assert phase.plan is not None
        phase.plan(ctx, plan)
        if plan.connected:
            changes = plan.session.preview() if dry_run else plan.session.apply()
            outcome.merge(changes.by_host)
            outcome.details.update(changes.details)
        for then in plan.actions:
            if dry_run:
                for host, description in then.would:
                    outcome.add(host, description)
                if not then.would and then.title:
                    outcome.notes.append(f"skipped in a dry run: {then.title}")
                continue
            made = then.action()
            for host, descriptions in (made or {}).items():
                for description in descriptions:
                    outcome.add(host, description)
    finally:
        plan.close()
    outcome.notes[:0] = plan.notes
    return outcome


def run_phases(
    phases: Sequence[Selected], ctx: Any, printer: Printer, *, dry_run: bool = False
) -> dict[str, PhaseOutcome]:
    """Run selected phases in order; stop at the first failure, naming the phase in the error."""
    outcomes: dict[str, PhaseOutcome] = {}
    started = time.monotonic()
    for selected in phases:
        path = selected.path
        gates = [p for p in (*selected.parents, selected.phase) if p.run_if is not None]
        if not all(p.run_if(ctx) for p in gates):
            printer.note(path, "skipped: not needed for this cluster")
            continue
        printer.phase_start(path, selected.phase.title)
        phase_started = time.monotonic()
        try:
            outcome = _run_one(selected, ctx, dry_run,
                               sum(o.change_count for o in outcomes.values()))
        except ProvisionerError as exc:
            raise exc.wrap(f"phase {path}") from exc
        for host, descriptions in outcome.changes.items():
            for description in descriptions:
                verb = "would" if dry_run else "changed:"
                printer.host(path, host, f"{verb} {description}")
                printer.details(outcome.details.get((host, description), []))
        for note in outcome.notes:
            printer.note(path, note)
        printer.phase_end(path, outcome.change_count, time.monotonic() - phase_started, dry_run)
        outcomes[path] = outcome
    total = sum(o.change_count for o in outcomes.values())
    printer.summary(total, time.monotonic() - started, dry_run)
    return outcomes
