"""Generic ordered phases: run them in order, honour --only/--skip, time and report each.

Nothing here knows about Kubernetes or etcd; the phases themselves live in provisioner.phases.
"""

from provisioner.workflow.output import Printer
from provisioner.workflow.phase import Phase, PhaseOutcome
from provisioner.workflow.runner import PhaseSelectionError, run_phases, select_phases

__all__ = ["Phase", "PhaseOutcome", "PhaseSelectionError", "Printer", "run_phases",
           "select_phases"]
