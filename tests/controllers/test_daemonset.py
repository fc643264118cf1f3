"""DaemonSets on Node objects standing in for kubelets: one pod per eligible node, node selectors,
taints, the tolerations and node affinity DaemonSet pods get, and a rolling update."""

from __future__ import annotations

import json
import os

from .conftest import FakeKubelet, eventually


def add_node(kubectl, name: str, labels: dict, taints: list | None = None) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints or []}}))


def ds_pods(kubectl, ns: str) -> list[dict]:
    return [p for p in kubectl.json("get", "pods", "-n", ns)["items"] if not p["metadata"].get("deletionTimestamp")]


def pod_node(pod: dict) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return terms["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]


def test_daemonset_runs_one_pod_per_eligible_node_and_rolls(kubectl, core, ns):
    tag = os.urandom(3).hex()
    pool = {"pool": f"ds-{tag}"}
    add_node(kubectl, f"ds-a-{tag}", pool)
    add_node(kubectl, f"ds-b-{tag}", pool)
    add_node(kubectl, f"ds-tainted-{tag}", pool,
             [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    add_node(kubectl, f"ds-other-{tag}", {"pool": "elsewhere"})
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"nodeSelector": pool,
                                       "containers": [{"name": "c", "image": "agent:1"}]}}}}))
    pods = eventually(lambda: (lambda ps: ps if len(ps) == 2 else None)(ds_pods(kubectl, ns)), what="2 daemon pods")
    assert sorted(pod_node(p) for p in pods) == [f"ds-a-{tag}", f"ds-b-{tag}"]
    tolerations = {(t["key"], t["effect"]) for t in pods[0]["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerations
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerations
    assert pods[0]["metadata"]["labels"]["controller-revision-hash"]

    with FakeKubelet(core, ns):
        kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s", timeout=90)
        ds = kubectl.json("get", "ds", "agent", "-n", ns)
        assert (ds["status"]["desiredNumberScheduled"], ds["status"]["numberReady"]) == (2, 2)
        kubectl("set", "image", "ds/agent", "c=agent:2", "-n", ns)
        kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s", timeout=90)
        images = eventually(lambda: (lambda ps: ps if len(ps) == 2 else None)(
            [p["spec"]["containers"][0]["image"] for p in ds_pods(kubectl, ns)]), what="2 pods after the update")
        assert images == ["agent:2", "agent:2"]
        history = kubectl("rollout", "history", "ds/agent", "-n", ns).stdout.split()
        assert "1" in history and "2" in history
        kubectl("rollout", "undo", "ds/agent", "-n", ns)
        kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s", timeout=90)
        eventually(lambda: [p["spec"]["containers"][0]["image"] for p in ds_pods(kubectl, ns)] == ["agent:1"] * 2,
                   what="undone to agent:1")
        revisions = {r["metadata"]["name"]: r["revision"] for r in kubectl.json("get", "controllerrevisions",
                                                                                  "-n", ns)["items"]}
        assert sorted(revisions.values()) == [2, 3]  # the first template came back as revision 3

    # a label change moves eligibility: the node leaving the pool loses its pod
    kubectl("label", "node", f"ds-b-{tag}", "pool=elsewhere", "--overwrite")
    eventually(lambda: [pod_node(p) for p in ds_pods(kubectl, ns)] == [f"ds-a-{tag}"], what="pod only on a")
    for n in ("a", "b", "tainted", "other"):
        kubectl("delete", "node", f"ds-{n}-{tag}")
