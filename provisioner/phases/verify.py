"""Phase `verify`: the smoke tests pass; the last phase of `create cluster`.

`require_created` is the one check, shared with `provisioner verify`, that there is a cluster
to test at all: without its local certificates every smoke test would fail for no reason the
user can act on.
"""

from __future__ import annotations

from provisioner.errors import ProvisionerError, VerifyFailedError
from provisioner.phases.context import ClusterContext
from provisioner.spec import ClusterSpec
from provisioner.state import ClusterState
from provisioner.verify import etcd_checks
from provisioner.workflow import Phase, PhaseOutcome


def require_created(spec: ClusterSpec, state: ClusterState) -> None:
    """Raise (exit 1) unless the cluster's local state holds the certificates create issues."""
    if not (state.pki_dir / "etcd" / "ca.crt").exists():
        raise ProvisionerError(
            f"no local state for cluster {spec.name!r} in {state.root}; run "
            f"`provisioner create cluster -f {spec.source}` first"
        )


def run(ctx: ClusterContext) -> PhaseOutcome:
    outcome = PhaseOutcome()
    if ctx.dry_run:
        outcome.notes.append("skipped in a dry run (it only reads, but the cluster may not exist yet)")
        return outcome
    require_created(ctx.spec, ctx.state)
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
