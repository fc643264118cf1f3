"""Phase `verify`: the smoke tests pass; the last phase of `create cluster`.

`smoke_tests` is shared with `provisioner verify`: what the workflow declares it owns is on
every host with its mode, then the etcd checks. `require_created` is the one check that there
is a cluster to test at all: without its local certificates every smoke test would fail for no
reason the user can act on.
"""

from __future__ import annotations

from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.pki.table import Authority
from provisioner.verify import CheckResult, etcd_checks
from provisioner.verify.files import file_checks
from provisioner.workflow import Phase, Plan


def require_created(ctx: ClusterContext) -> None:
    """Raise (exit 1) unless the cluster's local state holds the authorities create issues."""
    authorities = [row for row in ctx.owned.certificates if isinstance(row, Authority)]
    if not all((ctx.state.pki_dir / f"{row.name}.crt").exists() for row in authorities):
        raise ProvisionerError(
            f"no local state for cluster {ctx.spec.name!r} in {ctx.state.root}; run "
            f"`provisioner create cluster -f {ctx.spec.source}` first"
        )


def smoke_tests(ctx: ClusterContext) -> list[CheckResult]:
    spec = ctx.spec
    require_created(ctx)
    owned = ctx.owned
    shares = {host.name: owned.share(spec, host) for host in spec.hosts}
    with ctx.session() as session:
        results = file_checks(session, shares, list(spec.hosts))
    return results + etcd_checks(spec, ctx.state.pki_dir)


def failure_summary(results: list[CheckResult]) -> str | None:
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    return (f"{len(failed)} of {len(results)} smoke tests failed: "
            + "; ".join(f"{r.check} [{r.target}]" for r in failed))


def run_smoke_tests(ctx: ClusterContext) -> None:
    from provisioner.errors import VerifyFailedError

    results = smoke_tests(ctx)
    for result in results:
        ctx.printer.note("verify", result.line())
    failed = failure_summary(results)
    if failed:
        raise VerifyFailedError(failed)
    ctx.printer.note("verify", f"all {len(results)} smoke tests passed")


def plan_smoke_tests(ctx: ClusterContext, plan: Plan) -> None:
    # Only reads, but in a dry run the cluster may not exist yet.
    plan.then(lambda: run_smoke_tests(ctx), title="smoke tests")


PHASE = Phase("verify", "running smoke tests", plan_smoke_tests)
