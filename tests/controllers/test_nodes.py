"""Node objects standing in for kubelets: pod CIDRs, Ready=Unknown and taints after the grace
period (6 s in the shared controller manager), taint-based eviction, recovery on a heartbeat."""

from __future__ import annotations

import ipaddress
import json
import os
import time

from .conftest import eventually


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def heartbeat(core, name: str, status: str = "True") -> None:
    core.patch_node_status(name, {"status": {"conditions": [
        {"type": "Ready", "status": status, "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": stamp(), "lastTransitionTime": stamp()}]}})


def taints(kubectl, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in kubectl.json("get", "node", name).get("spec", {}).get("taints", [])}


def test_nodes_get_distinct_pod_cidrs(kubectl, kcm):
    names = [f"ipam-{i}-{os.urandom(2).hex()}" for i in range(3)]
    for n in names:
        kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}))
    cidrs = eventually(lambda: (lambda cs: cs if all(cs) else None)(
        [kubectl.json("get", "node", n).get("spec", {}).get("podCIDR") for n in names]), what="pod CIDRs")
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.ip_network("10.244.0.0/16")) for n in nets)
    assert len(set(nets)) == 3
    assert kubectl.json("get", "node", names[0])["spec"]["podCIDRs"] == [cidrs[0]]
    eventually(lambda: kubectl.json("get", "node", names[0])["metadata"].get("annotations", {})
               .get("node.alpha.kubernetes.io/ttl") == "0", what="the ttl annotation of a small cluster")
    for n in names:
        kubectl("delete", "node", n)


def test_silent_node_becomes_unknown_tainted_and_its_pods_evicted(kubectl, core, ns):
    node = f"quiet-{os.urandom(2).hex()}"
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    heartbeat(core, node)

    def pod(name: str, tolerations: list) -> None:
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "tolerations": tolerations,
                     "containers": [{"name": "c", "image": "busybox"}]}}))
    unreachable = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    pod("brief", [dict(unreachable, tolerationSeconds=2)])
    pod("forever", [unreachable])
    core.patch_namespaced_pod_status("forever", ns, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp()}]}})
    assert taints(kubectl, node) == set()

    def unknown():
        ready = next(c for c in kubectl.json("get", "node", node)["status"]["conditions"] if c["type"] == "Ready")
        return ready if ready["status"] == "Unknown" else None
    ready = eventually(unknown, timeout=30, what="Ready=Unknown after the grace period")
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    eventually(lambda: taints(kubectl, node) == {("node.kubernetes.io/unreachable", "NoExecute"),
                                                  ("node.kubernetes.io/unreachable", "NoSchedule")},
               what="unreachable taints")

    def deleting(name: str) -> bool:
        p = kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
        return p.returncode != 0 or bool(json.loads(p.stdout)["metadata"].get("deletionTimestamp"))
    eventually(lambda: deleting("brief"), timeout=20, what="pod evicted after tolerationSeconds")

    def ready(name: str) -> str:
        conds = kubectl.json("get", "pod", name, "-n", ns).get("status", {}).get("conditions", [])
        return next((c["status"] for c in conds if c["type"] == "Ready"), "")
    eventually(lambda: ready("forever") == "False", what="pods of the lost node marked not ready")
    assert not deleting("forever")
    # a NoExecute taint the pod does not tolerate evicts it at once
    kubectl("taint", "node", node, "example.com/drain=now:NoExecute")
    eventually(lambda: deleting("forever"), what="intolerant pod evicted")

    heartbeat(core, node)  # the kubelet is back
    eventually(lambda: taints(kubectl, node) == {("example.com/drain", "NoExecute")},
               what="unreachable taints removed, the user's kept")
    kubectl("delete", "pod", "--all", "-n", ns, "--grace-period=0", "--force")
    kubectl("delete", "node", node)


def test_not_ready_and_unschedulable_taints(kubectl, core, kcm):
    node = f"sick-{os.urandom(2).hex()}"
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    heartbeat(core, node, "False")
    eventually(lambda: ("node.kubernetes.io/not-ready", "NoExecute") in taints(kubectl, node), what="not-ready taint")
    kubectl("cordon", node)
    eventually(lambda: ("node.kubernetes.io/unschedulable", "NoSchedule") in taints(kubectl, node),
               what="unschedulable taint")
    kubectl("delete", "node", node)
