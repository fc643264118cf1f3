"""Phase `addons`: kube-proxy, the network agent, cluster DNS and metrics-server, applied through the API.

One sub-phase per add-on (`--only addons/dns`). Objects are created or updated only where the
cluster does not hold them as declared, so a second run changes nothing. They name the
components image of the first control-plane host (every host builds the same tag from the same
wheelhouse).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from provisioner.kube.addons import (
    AddonSettings,
    MetricsServerCerts,
    cluster_dns,
    kube_proxy,
    metrics_server,
    network_agent,
)
from provisioner.phases.apiobjects import plan_objects
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import api_endpoint
from provisioner.phases.owned import Owned
from provisioner.phases.runtime import CNI_CONF_DIR, host_image
from provisioner.pki.table import Certificate, Subject
from provisioner.workflow import Phase, Plan


def settings(ctx: ClusterContext, plan: Plan) -> AddonSettings:
    spec = ctx.spec
    return AddonSettings(image=host_image(plan, spec.control_plane_hosts[0]),
                         api_endpoint=api_endpoint(spec), pod_cidr=str(spec.networking.pod_cidr),
                         service_cidr=str(spec.networking.service_cidr),
                         dns_domain=spec.networking.dns_domain, cni_conf_dir=CNI_CONF_DIR)


def metrics_server_names(subject: Subject) -> list[str]:
    domain = subject.spec.networking.dns_domain
    return ["metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc",
            f"metrics-server.kube-system.svc.{domain}"]


# metrics-server's serving certificate: for its Service's names, from the cluster CA (the
# APIService's caBundle); it stays on the operator and reaches the pod as a Secret
OWNS = Owned(certificates=(
    Certificate("metrics-server", "ca", "metrics-server", sans=metrics_server_names, usages=("server",)),))


def metrics_server_certs(ctx: ClusterContext) -> MetricsServerCerts:
    pki_dir = ctx.state.pki_dir
    b64 = lambda name: base64.b64encode((pki_dir / name).read_bytes()).decode()  # noqa: E731
    return MetricsServerCerts(b64("metrics-server.crt"), b64("metrics-server.key"), b64("ca.crt"))


def plan_metrics_server(ctx: ClusterContext, plan: Plan) -> None:
    chosen = settings(ctx, plan)
    plan_objects(ctx, plan, lambda: metrics_server(chosen, metrics_server_certs(ctx)), "metrics-server")


def _addon(build: Callable[[AddonSettings], list[dict]], title: str):
    def plan_addon(ctx: ClusterContext, plan: Plan) -> None:
        chosen = settings(ctx, plan)
        plan_objects(ctx, plan, lambda: build(chosen), title)
    return plan_addon


_FIRST_CONTROL_PLANE = {"run_if": lambda ctx: bool(ctx.spec.control_plane_hosts),
                        "hosts": lambda ctx: ctx.spec.control_plane_hosts[:1]}
PHASE = Phase(
    "addons", "installing the cluster add-ons", owns=OWNS,
    phases=(
        Phase("kube-proxy", "kube-proxy on every node", _addon(kube_proxy, "kube-proxy"),
              **_FIRST_CONTROL_PLANE),
        Phase("network", "the pod network agent on every node",
              _addon(network_agent, "the network agent"), **_FIRST_CONTROL_PLANE),
        Phase("dns", "cluster DNS", _addon(cluster_dns, "cluster DNS"), **_FIRST_CONTROL_PLANE),
        Phase("metrics-server", "the resource metrics API (kubectl top)", plan_metrics_server,
              **_FIRST_CONTROL_PLANE),
    ),
    **_FIRST_CONTROL_PLANE,
)
