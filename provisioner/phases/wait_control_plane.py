"""Phase `wait-control-plane`: the API server answers /readyz through the control-plane endpoint.

The kubelets started the control plane from static pods; this waits for it with a deadline. On
failure the error carries the last lines of the kubelet's journal and of the API server
container's log on each control-plane host, which is where the reason is.
"""

from __future__ import annotations

import shlex

from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import admin_client, api_endpoint
from provisioner.phases.owned import REMOTE_VENV
from provisioner.phases.runtime import RUNTIME_SOCKET
from provisioner.workflow import Phase, Plan

READY_TIMEOUT_SECONDS = 180
LOG_LINES = 15


def diagnostics_command() -> str:
    """The kubelet's last journal lines and the API server container's last log lines."""
    runtime = f"{REMOTE_VENV}/bin/provisioner-runtime --socket {RUNTIME_SOCKET}"
    container = f"{runtime} ps -a 2>/dev/null | awk '/k8s_kube-apiserver_/ {{print $1; exit}}'"
    return (f"echo '--- kubelet:'; journalctl -u kubelet --no-pager -n {LOG_LINES} 2>&1 | cut -c1-240; "
            f"id=$({container}); echo '--- kube-apiserver container:'; "
            f"if [ -n \"$id\" ]; then {runtime} logs --tail {LOG_LINES} \"$id\" 2>&1 | cut -c1-240; "
            "else echo '(no kube-apiserver container yet)'; fi")


def wait_ready(ctx: ClusterContext, plan: Plan) -> None:
    client = admin_client(ctx, timeout=5)
    try:
        client.wait_for(f"the API server at {api_endpoint(ctx.spec)} to be ready",
                        lambda: client.request("GET", "/readyz") is not None,
                        timeout=READY_TIMEOUT_SECONDS)
    except ProvisionerError as error:
        lines = []
        for name, result in plan.session.run(diagnostics_command()).items():
            lines.append(f"[{name}]")
            lines += (result.stdout or result.stderr).rstrip().splitlines()
        raise ProvisionerError(error.message, command=shlex.quote("journalctl -u kubelet"),
                               output="\n".join(lines)) from None


def plan_wait(ctx: ClusterContext, plan: Plan) -> None:
    plan.then(lambda: wait_ready(ctx, plan), title="waiting for the API server")


PHASE = Phase("wait-control-plane", "waiting for the control plane to be ready", plan_wait,
              run_if=lambda ctx: bool(ctx.spec.control_plane_hosts),
              hosts=lambda ctx: ctx.spec.control_plane_hosts)
