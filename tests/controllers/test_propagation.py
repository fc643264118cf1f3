"""DELETE's propagation policy through real kubectl and the official Python client, with the
shared controller manager's garbage collector doing the rest: `--cascade=orphan` keeps the
dependents (without their owner reference), `--cascade=foreground` keeps the owner until its
dependents are gone, Background (kubectl's default) removes the owner at once; a core/v1
ReplicationController deleted with no policy orphans its pods, as kube-apiserver does."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException

from .conftest import eventually
from .test_lifecycle import exists


def _deployment(kubectl, ns: str, name: str = "web") -> str:
    kubectl("create", "deployment", name, "-n", ns, "--image=nginx", "--replicas=2")
    rs = eventually(lambda: kubectl.json("get", "rs", "-n", ns)["items"], what="a ReplicaSet")
    eventually(lambda: len(kubectl.json("get", "pods", "-n", ns)["items"]) == 2, what="2 pods")
    return rs[0]["metadata"]["name"]


def test_cascade_orphan_keeps_the_replicaset_without_its_owner(kubectl, ns):
    rs = _deployment(kubectl, ns)
    kubectl("delete", "deployment", "web", "-n", ns, "--cascade=orphan")
    eventually(lambda: not exists(kubectl, "deployment", "web", "-n", ns), what="deployment gone")
    kept = eventually(lambda: (lambda r: not r["metadata"].get("ownerReferences") and r)(
        kubectl.json("get", "rs", rs, "-n", ns)), what="owner reference removed from the ReplicaSet")
    assert kept["metadata"]["name"] == rs
    assert len(kubectl.json("get", "pods", "-n", ns)["items"]) == 2


def test_cascade_foreground_keeps_the_owner_until_its_dependents_are_gone(kubectl, ns):
    rs = _deployment(kubectl, ns)
    # A finalizer of our own holds the ReplicaSet, so the owner's wait can be seen.
    kubectl("patch", "rs", rs, "-n", ns, "--type=merge", "-p",
            '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "deployment", "web", "-n", ns, "--cascade=foreground", "--wait=false")
    owner = kubectl.json("get", "deployment", "web", "-n", ns)
    assert owner["metadata"]["deletionTimestamp"]
    assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    eventually(lambda: kubectl.json("get", "rs", rs, "-n", ns)["metadata"].get("deletionTimestamp"),
               what="the ReplicaSet deleted first")
    assert exists(kubectl, "deployment", "web", "-n", ns)
    kubectl("patch", "rs", rs, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: not exists(kubectl, "deployment", "web", "-n", ns),
               what="the Deployment gone after its ReplicaSet")


def test_background_is_kubectls_default_and_removes_the_owner_at_once(kubectl, ns):
    rs = _deployment(kubectl, ns)
    kubectl("delete", "deployment", "web", "-n", ns, "--wait=false")
    assert not exists(kubectl, "deployment", "web", "-n", ns)
    eventually(lambda: not exists(kubectl, "rs", rs, "-n", ns), what="ReplicaSet collected")


def test_a_replication_controller_orphans_its_pods_by_default(core, kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
        "spec": {"replicas": 1, "selector": {"app": "legacy"}, "template": {
            "metadata": {"labels": {"app": "legacy"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    pod = eventually(lambda: kubectl.json("get", "pods", "-n", ns)["items"], what="a pod")[0]
    core.delete_namespaced_replication_controller("legacy", ns)  # no DeleteOptions at all
    eventually(lambda: not exists(kubectl, "rc", "legacy", "-n", ns), what="rc gone")
    kept = eventually(lambda: (lambda p: not p["metadata"].get("ownerReferences") and p)(
        kubectl.json("get", "pod", pod["metadata"]["name"], "-n", ns)), what="pod orphaned")
    assert kept["metadata"]["uid"] == pod["metadata"]["uid"]


@pytest.mark.parametrize("body, message", [
    ({"propagationPolicy": "Sideways"},
     'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": '
     'supported values: "Foreground", "Background", "Orphan", "nil"'),
    ({"propagationPolicy": "Orphan", "orphanDependents": True},
     'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Orphan": '
     "orphanDependents and deletionPropagation cannot be both set"),
])
def test_bad_delete_options_are_refused_and_nothing_is_deleted(core, kubectl, ns, body, message):
    from kubernetes import client

    kubectl("create", "configmap", "keep", "-n", ns, "--from-literal=a=b")
    with pytest.raises(ApiException) as refused:
        core.delete_namespaced_config_map("keep", ns, body=client.V1DeleteOptions(
            propagation_policy=body["propagationPolicy"],
            orphan_dependents=body.get("orphanDependents")))
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == message
    assert exists(kubectl, "cm", "keep", "-n", ns)
