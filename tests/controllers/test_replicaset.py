"""ReplicaSets and ReplicationControllers: replicas kept, orphans adopted, pods that stop matching
released, deleted pods replaced; status counts ready pods."""

from __future__ import annotations

import json

from .conftest import FakeKubelet, eventually


def rs(kubectl, ns: str, replicas: int = 3) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "front"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "front"}},
                 "template": {"metadata": {"labels": {"app": "front"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))


def pods(kubectl, ns: str) -> list[dict]:
    return [p for p in kubectl.json("get", "pods", "-n", ns)["items"] if not p["metadata"].get("deletionTimestamp")]


def test_adopts_orphans_releases_strays_and_replaces_deleted(kubectl, ns):
    kubectl("run", "orphan", "-n", ns, "--image=nginx", "--labels=app=front")
    rs(kubectl, ns, 3)
    found = eventually(lambda: (lambda ps: ps if len(ps) == 3 else None)(pods(kubectl, ns)), what="3 pods")
    orphan = next(p for p in found if p["metadata"]["name"] == "orphan")
    assert orphan["metadata"]["ownerReferences"][0]["name"] == "front"  # adopted, so only 2 were created
    kubectl("label", "pod", "orphan", "-n", ns, "app=elsewhere", "--overwrite")
    eventually(lambda: not kubectl.json("get", "pod", "orphan", "-n", ns)["metadata"].get("ownerReferences"),
               what="the relabelled pod released")
    eventually(lambda: len([p for p in pods(kubectl, ns) if p["metadata"]["labels"].get("app") == "front"]) == 3,
               what="a replacement for the released pod")
    victim = next(p for p in pods(kubectl, ns) if p["metadata"]["labels"].get("app") == "front")
    kubectl("delete", "pod", victim["metadata"]["name"], "-n", ns)
    eventually(lambda: len([p for p in pods(kubectl, ns) if p["metadata"]["labels"].get("app") == "front"]) == 3
               and victim["metadata"]["name"] not in [p["metadata"]["name"] for p in pods(kubectl, ns)],
               what="the deleted pod replaced")
    kubectl("scale", "rs", "front", "-n", ns, "--replicas=1")
    eventually(lambda: len([p for p in pods(kubectl, ns) if p["metadata"]["labels"].get("app") == "front"]) == 1,
               what="scaled to 1")


def test_status_counts_ready_replicas(kubectl, core, ns):
    rs(kubectl, ns, 2)
    with FakeKubelet(core, ns):
        status = eventually(lambda: (lambda s: s if s.get("readyReplicas") == 2 else None)(
            kubectl.json("get", "rs", "front", "-n", ns).get("status", {})), what="2 ready")
    assert status["replicas"] == 2 and status["availableReplicas"] == 2 and status["fullyLabeledReplicas"] == 2


def test_replication_controller(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"},
                 "template": {"metadata": {"labels": {"app": "legacy"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    found = eventually(lambda: (lambda ps: ps if len(ps) == 2 else None)(pods(kubectl, ns)), what="2 pods")
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in found)
    eventually(lambda: kubectl.json("get", "rc", "legacy", "-n", ns).get("status", {}).get("replicas") == 2,
               what="status.replicas")
