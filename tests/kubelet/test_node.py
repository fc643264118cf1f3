"""The kubelet registers its Node as kubelet does, renews its Lease, and registers again when
the Node is deleted."""

from __future__ import annotations

import datetime as dt

from kubernetes import client as k8s

from .conftest import node_ready, wait_for


def test_node_is_registered_with_host_facts(api, kubelet):
    node = api.read_node(kubelet.node)
    labels = node.metadata.labels
    assert labels["kubernetes.io/hostname"] == kubelet.node
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"]
    assert labels["test.provisioner.io/role"] == "kubelet"         # --node-labels
    status = node.status
    for resource in ("cpu", "memory", "pods", "ephemeral-storage"):
        assert resource in status.capacity and resource in status.allocatable
    assert status.capacity["pods"] == "110"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in [a.to_dict() for a in
                                                            status.addresses]
    assert status.daemon_endpoints.kubelet_endpoint.port == kubelet.port
    info = status.node_info
    assert info.operating_system == "linux" and info.kernel_version and info.boot_id
    assert info.container_runtime_version.startswith("provisioner-runtime://")
    assert any("busybox:latest" in image.names for image in status.images)
    reasons = {c.type: (c.status, c.reason) for c in status.conditions}
    assert reasons["Ready"] == ("True", "KubeletReady")
    assert reasons["MemoryPressure"] == ("False", "KubeletHasSufficientMemory")
    assert reasons["DiskPressure"][1] in ("KubeletHasNoDiskPressure", "KubeletHasDiskPressure")
    assert reasons["PIDPressure"] == ("False", "KubeletHasSufficientPID")


def test_lease_is_renewed_in_kube_node_lease(cluster, kubelet):
    leases = k8s.CoordinationV1Api(k8s.ApiClient(_configuration(cluster)))
    first = wait_for(lambda: leases.read_namespaced_lease(kubelet.node, "kube-node-lease"), 30,
                     what="the node's lease")
    assert first.spec.holder_identity == kubelet.node
    assert first.spec.lease_duration_seconds == 40
    renewed = wait_for(lambda: (lease := leases.read_namespaced_lease(
        kubelet.node, "kube-node-lease")).spec.renew_time > first.spec.renew_time and lease,
        30, what="a lease renewal")
    gap = renewed.spec.renew_time - first.spec.renew_time
    assert dt.timedelta(seconds=5) < gap < dt.timedelta(seconds=20)


def test_a_deleted_node_is_registered_again(api, kubelet):
    old_uid = api.read_node(kubelet.node).metadata.uid
    api.delete_node(kubelet.node)
    node = wait_for(lambda: (n := api.read_node(kubelet.node)).metadata.uid != old_uid and n,
                    60, what="the node registered again")
    assert node.metadata.labels["kubernetes.io/hostname"] == kubelet.node
    wait_for(lambda: node_ready(api, kubelet.node), 60, what="the node Ready again")


def _configuration(cluster):
    from kubernetes import config as k8s_config
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    return configuration
