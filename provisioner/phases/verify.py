"""Phase `verify`: the smoke tests pass; the last phase of `create cluster`.

`smoke_tests` is shared with `provisioner verify`: what the workflow declares it owns is on
every host with its mode, then the etcd checks. `require_created` is the one check that there
is a cluster to test at all: without its local certificates every smoke test would fail for no
reason the user can act on.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.control_plane import ENCRYPTION_PREFIX
from provisioner.phases.kubeconfig import admin_client
from provisioner.pki.table import Authority
from provisioner.verify import CheckResult, etcd_checks
from provisioner.verify.cluster import cluster_checks
from provisioner.verify.etcd import Etcdctl
from provisioner.verify.files import file_checks
from provisioner.verify.registry import registry_checks
from provisioner.workflow import Phase, Plan


def require_created(ctx: ClusterContext) -> None:
    """Raise (exit 1) unless the cluster's local state holds the authorities create issues."""
    authorities = [row for row in ctx.owned.certificates if isinstance(row, Authority)]
    if not all((ctx.state.pki_dir / f"{row.name}.crt").exists() for row in authorities):
        raise ProvisionerError(
            f"no local state for cluster {ctx.spec.name!r} in {ctx.state.root}; run "
            f"`provisioner create cluster -f {ctx.spec.source}` first"
        )


def smoke_tests(ctx: ClusterContext, workloads: bool = True) -> list[CheckResult]:
    spec = ctx.spec
    require_created(ctx)
    owned = ctx.owned
    shares = {host.name: owned.share(spec, host) for host in spec.hosts}

    def host_checks() -> list[CheckResult]:
        with ctx.session() as session:
            found = file_checks(session, shares, list(spec.hosts))
        return found + etcd_checks(spec, ctx.state.pki_dir) + registry_checks(spec, ctx.state.pki_dir)

    # The files and etcd are checked while the Kubernetes checks wait for pods: they read
    # different things. Results keep this order.
    with ThreadPoolExecutor(max_workers=1) as background:
        on_hosts = background.submit(host_checks)
        kubernetes = kubernetes_checks(ctx, workloads) if spec.control_plane_hosts else []
        return on_hosts.result() + kubernetes


def kubernetes_checks(ctx: ClusterContext, workloads: bool = True) -> list[CheckResult]:
    """The cluster as kubectl users see it (provisioner.verify.cluster)."""
    spec = ctx.spec
    etcd = Etcdctl(spec, ctx.state.pki_dir)

    def read_raw(key: str) -> bytes | None:
        for host in spec.etcd_hosts:
            answer = etcd(host, "get", key, "-w", "json")
            if answer.returncode == 0:
                kvs = json.loads(answer.stdout).get("kvs") or []
                return base64.b64decode(kvs[0]["value"]) if kvs else None
        return None

    schedulable = {h.name: h.address for h in spec.hosts
                   if h.is_worker or (h.is_control_plane and not spec.worker_hosts)}
    return cluster_checks(
        admin_client(ctx), ctx.state.admin_kubeconfig,
        node_names=[h.name for h in spec.hosts if h.is_control_plane or h.is_worker],
        control_plane=[h.name for h in spec.control_plane_hosts], schedulable=schedulable,
        dns_domain=spec.networking.dns_domain, read_raw=read_raw,
        encryption_prefix=ENCRYPTION_PREFIX, workloads=workloads)


def failure_summary(results: list[CheckResult]) -> str | None:
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    return (f"{len(failed)} of {len(results)} smoke tests failed: "
            + "; ".join(f"{r.check} [{r.target}]" for r in failed))


def run_smoke_tests(ctx: ClusterContext, workloads: bool = True) -> None:
    from provisioner.errors import VerifyFailedError

    results = smoke_tests(ctx, workloads)
    for result in results:
        ctx.printer.note("verify", result.line())
    failed = failure_summary(results)
    if failed:
        raise VerifyFailedError(failed)
    ctx.printer.note("verify", f"all {len(results)} smoke tests passed")


def plan_smoke_tests(ctx: ClusterContext, plan: Plan) -> None:
    # Only reads, but in a dry run the cluster may not exist yet. A run that changed nothing
    # has nothing new to prove: the quick checks say the cluster still stands (files, etcd,
    # nodes Ready, the control plane), and the workload checks, which start pods, are left to
    # `provisioner verify`.
    workloads = plan.earlier_changes > 0
    if not workloads:
        plan.note("no change made, so the workload smoke tests are skipped (`provisioner verify` runs "
                  "them all)")
    plan.then(lambda: run_smoke_tests(ctx, workloads), title="smoke tests")


PHASE = Phase("verify", "running smoke tests", plan_smoke_tests)
