"""Runs an ordered list of phases with --only/--skip, printing progress and each phase's time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from provisioner.errors import EXIT_USAGE, ProvisionerError
from provisioner.workflow.output import Printer
from provisioner.workflow.phase import Phase, PhaseOutcome


class PhaseSelectionError(ProvisionerError):
    """--only/--skip name an unknown phase or leave none: a bad command line (exit 2)."""

    exit_code = EXIT_USAGE


def select_phases(
    phases: Sequence[Phase], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[Phase]:
    """The phases to run, in workflow order; unknown names are a usage error."""
    known = [p.name for p in phases]
    for option, names in (("--only", only), ("--skip", skip)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise PhaseSelectionError(
                f"{option}: unknown phase {', '.join(unknown)}; phases are: {', '.join(known)}"
            )
    selected = [p for p in phases if (not only or p.name in only) and p.name not in skip]
    if not selected:
        raise PhaseSelectionError("--only/--skip leave no phase to run")
    return selected


def run_phases(
    phases: Sequence[Phase], ctx: Any, printer: Printer, *, dry_run: bool = False
) -> dict[str, PhaseOutcome]:
    """Run phases in order; stop at the first failure, naming the phase in the error."""
    outcomes: dict[str, PhaseOutcome] = {}
    started = time.monotonic()
    for phase in phases:
        printer.phase_start(phase.name, phase.title)
        phase_started = time.monotonic()
        try:
            outcome = phase.run(ctx)
        except ProvisionerError as exc:
            raise exc.wrap(f"phase {phase.name}") from exc
        for host, descriptions in outcome.changes.items():
            for description in descriptions:
                verb = "would" if dry_run else "changed:"
                printer.host(phase.name, host, f"{verb} {description}")
        for note in outcome.notes:
            printer.note(phase.name, note)
        printer.phase_end(phase.name, outcome.change_count, time.monotonic() - phase_started, dry_run)
        outcomes[phase.name] = outcome
    total = sum(o.change_count for o in outcomes.values())
    printer.summary(total, time.monotonic() - started, dry_run)
    return outcomes
