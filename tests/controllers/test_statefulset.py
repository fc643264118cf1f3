"""StatefulSets: ordinal names in order, claims from volumeClaimTemplates, rolling update with a
partition, ControllerRevisions; pods reported ready through the API as a kubelet would."""

from __future__ import annotations

import json

from .conftest import FakeKubelet, eventually


def statefulset(kubectl, ns: str, image: str = "nginx:1.25", replicas: int = 3) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))


def pod_names(kubectl, ns: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", ns)["items"]
                  if not p["metadata"].get("deletionTimestamp"))


def test_ordered_creation_claims_and_rolling_update_with_partition(kubectl, core, ns):
    statefulset(kubectl, ns)
    eventually(lambda: kubectl.json("get", "sts", "db", "-n", ns).get("status", {}).get("replicas") == 1,
               what="status after the first pod")
    assert pod_names(kubectl, ns) == ["db-0"]  # db-1 waits for db-0 to be ready
    pod = kubectl.json("get", "pod", "db-0", "-n", ns)
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("db-0", "db")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-db-0"
    with FakeKubelet(core, ns):
        kubectl("rollout", "status", "sts/db", "-n", ns, "--timeout=60s", timeout=90)
        assert pod_names(kubectl, ns) == ["db-0", "db-1", "db-2"]
        claims = sorted(c["metadata"]["name"] for c in kubectl.json("get", "pvc", "-n", ns)["items"])
        assert claims == ["data-db-0", "data-db-1", "data-db-2"]
        kubectl("patch", "sts", "db", "-n", ns, "--type=merge", "-p", json.dumps(
            {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}}))
        kubectl("set", "image", "sts/db", "c=nginx:1.26", "-n", ns)
        kubectl("rollout", "status", "sts/db", "-n", ns, "--timeout=60s", timeout=90)

        def images():
            return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                    for p in kubectl.json("get", "pods", "-n", ns)["items"]}
        assert images() == {"db-0": "nginx:1.25", "db-1": "nginx:1.25", "db-2": "nginx:1.26"}
        kubectl("patch", "sts", "db", "-n", ns, "--type=merge", "-p",
                '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
        kubectl("rollout", "status", "sts/db", "-n", ns, "--timeout=60s", timeout=90)
        eventually(lambda: set(images().values()) == {"nginx:1.26"}, what="all updated")
    status = kubectl.json("get", "sts", "db", "-n", ns)["status"]
    assert status["currentRevision"] == status["updateRevision"]
    revisions = kubectl.json("get", "controllerrevisions", "-n", ns)["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    history = kubectl("rollout", "history", "sts/db", "-n", ns).stdout
    assert "1" in history and "2" in history
    kubectl("scale", "sts", "db", "-n", ns, "--replicas=1")
    eventually(lambda: pod_names(kubectl, ns) == ["db-0"], timeout=60, what="scaled down from the top")
    assert len(kubectl.json("get", "pvc", "-n", ns)["items"]) == 3  # claims are kept


def test_claim_retention_policy_deletes_claims(kubectl, core, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "cache"},
        "spec": {"replicas": 2, "serviceName": "cache", "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "cache"}},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                 "template": {"metadata": {"labels": {"app": "cache"}},
                              "spec": {"containers": [{"name": "c", "image": "redis"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))

    def claims() -> list[str]:
        return sorted(c["metadata"]["name"] for c in kubectl.json("get", "pvc", "-n", ns)["items"]
                      if not c["metadata"].get("deletionTimestamp"))
    eventually(lambda: claims() == ["data-cache-0", "data-cache-1"], what="2 claims")
    kubectl("scale", "sts", "cache", "-n", ns, "--replicas=1")
    eventually(lambda: claims() == ["data-cache-0"], what="the scaled-away claim deleted")
    kubectl("delete", "sts", "cache", "-n", ns)
    eventually(lambda: claims() == [], what="claims deleted with the set")
