"""Generic ordered phases: plan, run or preview them in order, with --only/--skip, run-if,
sub-phases and a clean-up order for delete; each phase is timed and reported.

Nothing here knows about Kubernetes or etcd; the phases themselves live in provisioner.phases.
"""

from provisioner.workflow.output import Printer
from provisioner.workflow.phase import Phase, PhaseOutcome, walk
from provisioner.workflow.plan import Plan
from provisioner.workflow.runner import (
    PhaseSelectionError,
    Selected,
    cleanup_phases,
    run_phases,
    select_phases,
)

__all__ = ["Phase", "PhaseOutcome", "PhaseSelectionError", "Plan", "Printer", "Selected",
           "cleanup_phases", "run_phases", "select_phases", "walk"]
