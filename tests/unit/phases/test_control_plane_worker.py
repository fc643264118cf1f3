"""A host that is both control plane and worker (a one-machine cluster, or a small one that
runs workloads on its control plane too): its kubelet has its credentials from `kubeconfig`, so
it does not join by TLS bootstrap, holds no bootstrap kubeconfig, and neither verify's file
check nor delete expects one there."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from provisioner.phases import CREATE_PHASES
from provisioner.phases.join import BOOTSTRAP_KUBELET_CONF, joining_hosts
from provisioner.phases.owned import ownership
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

SSH = SSHSettings(user="root", port=22, key=Path("/k"))


def spec() -> ClusterSpec:
    return ClusterSpec(
        name="lab", source=Path("/c.yaml"),
        hosts=(Host("both", "10.0.0.11", ("control-plane", "etcd", "worker"), SSH),
               Host("w1", "10.0.0.21", ("worker",), SSH)),
        networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                              ipaddress.ip_network("10.96.0.0/12")),
        etcd=EtcdSettings(), artifacts=Artifacts())


def test_only_plain_workers_join_and_hold_the_bootstrap_kubeconfig():
    cluster = spec()
    assert [h.name for h in joining_hosts(cluster)] == ["w1"]
    owned = ownership(CREATE_PHASES)
    both, worker = (owned.share(cluster, h) for h in cluster.hosts)
    assert BOOTSTRAP_KUBELET_CONF in [f.path for f in worker.files]
    assert BOOTSTRAP_KUBELET_CONF not in [f.path for f in both.files]
    # Its kubelet credentials are the control plane's: kubelet.conf with a client certificate.
    assert "/etc/kubernetes/kubelet.conf" in [f.path for f in both.files]
