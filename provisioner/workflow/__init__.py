"""Generic ordered phases: run them in order, honour --only/--skip, time and report each.

Nothing here knows about Kubernetes or etcd; the phases themselves live in provisioner.phases.
"""

from provisioner.workflow.phase import Phase, PhaseOutcome
from provisioner.workflow.runner import select_phases, run_phases
from provisioner.workflow.output import Printer

__all__ = ["Phase", "PhaseOutcome", "Printer", "run_phases", "select_phases"]
