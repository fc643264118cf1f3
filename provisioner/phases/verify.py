"""Phase `verify`: the smoke tests pass; the last phase of `create cluster`."""

from __future__ import annotations

from provisioner.errors import VerifyFailedError
from provisioner.phases.context import ClusterContext
from provisioner.verify import etcd_checks
from provisioner.workflow import Phase, PhaseOutcome


def run(ctx: ClusterContext) -> PhaseOutcome:
    outcome = PhaseOutcome()
    if ctx.dry_run:
        outcome.notes.append("skipped in a dry run (it only reads, but the cluster may not exist yet)")
        return outcome
    results = etcd_checks(ctx.spec, ctx.state.pki_dir)
    for result in results:
        ctx.printer.note("verify", result.line())
    failed = [r for r in results if not r.ok]
    if failed:
        raise VerifyFailedError(
            f"{len(failed)} of {len(results)} smoke tests failed: "
            + "; ".join(f"{r.check} [{r.target}]" for r in failed)
        )
    outcome.notes.append(f"all {len(results)} smoke tests passed")
    return outcome


PHASE = Phase("verify", "running smoke tests", run)
