"""Phase `control-plane`: static pod manifests for the API server, controller manager, scheduler.

One sub-phase per component (`--only control-plane/apiserver`), as kubeadm's `init phase
control-plane` has. The kubelet (`kubelet-start`) runs whatever is in the manifest directory, so
a changed manifest is the whole upgrade story: the kubelet replaces the pod. The API server
encrypts Secrets at rest with an AES-CBC key kept in the cluster's local state.
"""

from __future__ import annotations

import base64
import os

import yaml
from pyinfra.operations import files

from provisioner.kube.staticpods import (
    ControlPlanePaths,
    ControlPlaneSettings,
    kube_apiserver,
    kube_controller_manager,
    kube_scheduler,
)
from provisioner.phases.context import ClusterContext
from provisioner.phases.etcd import ETCD_PKI
from provisioner.phases.kubeconfig import (
    CONTROL_PLANE,
    CONTROLLER_MANAGER_CONF,
    KUBERNETES_DIR,
    SCHEDULER_CONF,
)
from provisioner.phases.owned import REMOTE_PKI, Directory, File, Owned
from provisioner.phases.runtime import host_image
from provisioner.pki.certs import write_private_file
from provisioner.pki.table import Authority, Certificate
from provisioner.spec import Host
from provisioner.workflow import Phase, Plan

MANIFESTS_DIR = f"{KUBERNETES_DIR}/manifests"
ENCRYPTION_CONFIG = f"{KUBERNETES_DIR}/encryption-config.yaml"
ENCRYPTION_KEY_FILE = "encryption-key"   # in the local state's pki directory
ENCRYPTION_PREFIX = "k8s:enc:aescbc:v1:key1:"
PATHS = ControlPlanePaths(pki_dir=REMOTE_PKI, etcd_ca=f"{ETCD_PKI}/ca.crt",
                          controller_manager_conf=CONTROLLER_MANAGER_CONF,
                          scheduler_conf=SCHEDULER_CONF, encryption_config=ENCRYPTION_CONFIG)


def manifest(component: str) -> str:
    return f"{MANIFESTS_DIR}/{component}.yaml"


def settings(ctx: ClusterContext, host: Host) -> ControlPlaneSettings:
    spec = ctx.spec
    return ControlPlaneSettings(
        advertise_address=host.address,
        etcd_servers=tuple(spec.etcd_client_url(h) for h in spec.etcd_hosts),
        service_cidr=str(spec.networking.service_cidr), pod_cidr=str(spec.networking.pod_cidr),
        cluster_name=spec.name, dns_domain=spec.networking.dns_domain)


def encryption_config(key: bytes) -> str:
    """kube-apiserver's EncryptionConfiguration: Secrets with aescbc (key1), identity to read
    what was written before encryption was on."""
    return yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": ["secrets"], "providers": [
            {"aescbc": {"keys": [{"name": "key1", "secret": base64.b64encode(key).decode()}]}},
            {"identity": {}}]}],
    }, sort_keys=False)


def encryption_key(ctx: ClusterContext) -> bytes:
    """The cluster's 32-byte encryption key, made once and kept (0600) in local state."""
    path = ctx.state.pki_dir / ENCRYPTION_KEY_FILE
    if not path.exists():
        write_private_file(path, base64.b64encode(os.urandom(32)))
    return base64.b64decode(path.read_bytes())


def _put_manifest(plan: Plan, host: Host, component: str, pod: dict) -> None:
    plan.session.op(host, f"directory {MANIFESTS_DIR}", files.directory, path=MANIFESTS_DIR,
                    mode="700", user="root", group="root")
    plan.session.put(host, f"static pod {component}", manifest(component),
                     yaml.safe_dump(pod, sort_keys=False), mode="600")


def plan_apiserver(ctx: ClusterContext, plan: Plan) -> None:
    key = encryption_key(ctx)
    for host in ctx.spec.control_plane_hosts:
        plan.session.put(host, "encryption configuration", ENCRYPTION_CONFIG,
                         encryption_config(key), mode="600", show=False)
        _put_manifest(plan, host, "kube-apiserver",
                      kube_apiserver(host_image(plan, host), PATHS, settings(ctx, host)))


def plan_controller_manager(ctx: ClusterContext, plan: Plan) -> None:
    for host in ctx.spec.control_plane_hosts:
        _put_manifest(plan, host, "kube-controller-manager", kube_controller_manager(
            host_image(plan, host), PATHS, settings(ctx, host)))


def plan_scheduler(ctx: ClusterContext, plan: Plan) -> None:
    for host in ctx.spec.control_plane_hosts:
        _put_manifest(plan, host, "kube-scheduler", kube_scheduler(host_image(plan, host), PATHS))


def apiserver_names(subject) -> list[str]:
    """The API server's serving names: in-cluster DNS, the first service IP, every
    control-plane host, so clients inside and outside the cluster can verify it."""
    spec = subject.spec
    names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
             f"kubernetes.default.svc.{spec.networking.dns_domain}", "localhost",
             str(next(spec.networking.service_cidr.hosts())), "127.0.0.1"]
    for host in spec.control_plane_hosts:
        names += [host.name, host.address]
    return names


OWNS = Owned(
    certificates=(
        Certificate("apiserver", "ca", "kube-apiserver", sans=apiserver_names, usages=("server",),
                    roles=CONTROL_PLANE, remote=f"{REMOTE_PKI}/apiserver"),
        Certificate("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client",
                    organizations=("system:masters",), roles=CONTROL_PLANE,
                    remote=f"{REMOTE_PKI}/apiserver-kubelet-client"),
        Authority("front-proxy-ca", "front-proxy-ca", f"{REMOTE_PKI}/front-proxy-ca",
                  roles=CONTROL_PLANE),
        Certificate("front-proxy-client", "front-proxy-ca", "front-proxy-client",
                    roles=CONTROL_PLANE, remote=f"{REMOTE_PKI}/front-proxy-client"),
    ),
    files=(File(ENCRYPTION_CONFIG, CONTROL_PLANE, mode="600", secret=True),
           *(File(manifest(c), CONTROL_PLANE, mode="600") for c in
             ("kube-apiserver", "kube-controller-manager", "kube-scheduler"))),
    directories=(Directory(MANIFESTS_DIR, CONTROL_PLANE, mode="700"),),
)

_ON_CONTROL_PLANE = {"run_if": lambda ctx: bool(ctx.spec.control_plane_hosts),
                     "hosts": lambda ctx: ctx.spec.control_plane_hosts}
PHASE = Phase(
    "control-plane", "writing the control plane's static pod manifests", owns=OWNS,
    phases=(
        Phase("apiserver", "kube-apiserver's static pod and encryption at rest", plan_apiserver,
              **_ON_CONTROL_PLANE),
        Phase("controller-manager", "kube-controller-manager's static pod",
              plan_controller_manager, **_ON_CONTROL_PLANE),
        Phase("scheduler", "kube-scheduler's static pod", plan_scheduler, **_ON_CONTROL_PLANE),
    ),
    **_ON_CONTROL_PLANE,
)
