"""Phase `upload-config`: the cluster's spec in a ConfigMap, and `cluster-info` in kube-public.

As kubeadm uploads its ClusterConfiguration: `kube-system/provisioner-config` holds the cluster
spec (names, addresses, networks; never a key or a path on the operator), so anyone with access
to the cluster can see what it was made from. `kube-public/cluster-info` holds a kubeconfig with
the CA and the API endpoint, readable without credentials, which joining nodes and the
bootstrapsigner controller use.
"""

from __future__ import annotations

import base64

import yaml

from provisioner.phases.apiobjects import plan_objects
from provisioner.phases.context import ClusterContext
from provisioner.phases.kubeconfig import api_endpoint
from provisioner.spec import ClusterSpec
from provisioner.workflow import Phase, Plan

CONFIG_NAME = "provisioner-config"


def spec_document(spec: ClusterSpec) -> str:
    """The spec as YAML, without anything operator-local (ssh keys, file paths)."""
    return yaml.safe_dump({
        "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": spec.name},
        "spec": {
            "hosts": [{"name": h.name, "address": h.address, "roles": list(h.roles)}
                      for h in spec.hosts],
            "networking": {"podCIDR": str(spec.networking.pod_cidr),
                           "serviceCIDR": str(spec.networking.service_cidr),
                           "dnsDomain": spec.networking.dns_domain},
            "etcd": {"clientPort": spec.etcd.client_port, "peerPort": spec.etcd.peer_port,
                     "dataDir": spec.etcd.data_dir},
        },
    }, sort_keys=False)


def cluster_info_kubeconfig(spec: ClusterSpec, ca_pem: bytes) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "", "cluster": {
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            "server": api_endpoint(spec)}}],
        "contexts": [], "users": [], "preferences": {}, "current-context": "",
    }, sort_keys=False)


def objects(ctx: ClusterContext) -> list[dict]:
    spec = ctx.spec
    ca_pem = (ctx.state.pki_dir / "ca.crt").read_bytes()
    reader = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
              "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                           "namespace": "kube-public"},
              "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                         "resourceNames": ["cluster-info"], "verbs": ["get"]}]}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": CONFIG_NAME, "namespace": "kube-system"},
         "data": {"ClusterConfiguration": spec_document(spec)}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "cluster-info", "namespace": "kube-public"},
         "data": {"kubeconfig": cluster_info_kubeconfig(spec, ca_pem)}},
        reader,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "kubeadm:bootstrap-signer-clusterinfo"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                       "name": "system:anonymous"}]},
    ]


def plan_upload(ctx: ClusterContext, plan: Plan) -> None:
    plan_objects(ctx, plan, lambda: objects(ctx), "uploading the configuration")


PHASE = Phase("upload-config", "uploading the cluster's configuration", plan_upload,
              run_if=lambda ctx: bool(ctx.spec.control_plane_hosts), hosts=lambda ctx: [])
