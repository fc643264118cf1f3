"""Namespaces, service accounts, the root CA bundle, the garbage collector and pod GC, seen through
the API with the shared controller manager running."""

from __future__ import annotations

import json

from .conftest import eventually


def exists(kubectl, *args: str) -> bool:
    return kubectl("get", *args, "-o", "name", check=False).returncode == 0


def test_every_namespace_gets_default_account_and_root_ca(kubectl, ns, cluster):
    eventually(lambda: exists(kubectl, "sa", "default", "-n", ns), what="default ServiceAccount")
    cm = eventually(lambda: exists(kubectl, "cm", "kube-root-ca.crt", "-n", ns) and
                    kubectl.json("get", "cm", "kube-root-ca.crt", "-n", ns), what="kube-root-ca.crt")
    assert cm["data"]["ca.crt"] == (cluster.pki / "ca.crt").read_text()
    # both come back when deleted
    kubectl("delete", "sa", "default", "-n", ns)
    kubectl("delete", "cm", "kube-root-ca.crt", "-n", ns)
    eventually(lambda: exists(kubectl, "sa", "default", "-n", ns), what="default ServiceAccount again")
    eventually(lambda: exists(kubectl, "cm", "kube-root-ca.crt", "-n", ns), what="kube-root-ca.crt again")
    # an edited bundle is put back
    kubectl("patch", "cm", "kube-root-ca.crt", "-n", ns, "--type=merge", "-p", '{"data":{"ca.crt":"x"}}')
    eventually(lambda: kubectl.json("get", "cm", "kube-root-ca.crt", "-n", ns)["data"]["ca.crt"] != "x",
               what="bundle restored")


def test_deleting_a_namespace_deletes_its_content(kubectl, kcm):
    kubectl("create", "namespace", "doomed-ns")
    kubectl("create", "deployment", "web", "-n", "doomed-ns", "--image=nginx", "--replicas=2")
    kubectl("create", "configmap", "cfg", "-n", "doomed-ns", "--from-literal=a=b")
    eventually(lambda: len(kubectl.json("get", "pods", "-n", "doomed-ns")["items"]) == 2, what="2 pods")
    kubectl("delete", "namespace", "doomed-ns", "--wait=false")
    eventually(lambda: not exists(kubectl, "namespace", "doomed-ns"), timeout=60, what="namespace gone")


def owned_configmap(name: str, owner: dict | None, block: bool = False, finalizers=None) -> str:
    meta: dict = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]
    if finalizers:
        meta["finalizers"] = finalizers
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}})


def test_background_deletion_removes_dependents(kubectl, ns):
    kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=2")
    eventually(lambda: len(kubectl.json("get", "pods", "-n", ns)["items"]) == 2, what="2 pods")
    kubectl("delete", "deployment", "web", "-n", ns)
    eventually(lambda: not kubectl.json("get", "rs", "-n", ns)["items"], what="ReplicaSet collected")
    eventually(lambda: not kubectl.json("get", "pods", "-n", ns)["items"], what="pods collected")


def test_dependent_with_one_owner_left_only_loses_the_dangling_reference(kubectl, ns):
    a = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-", input=owned_configmap("a", None)).stdout)
    b = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-", input=owned_configmap("b", None)).stdout)
    dep = json.loads(owned_configmap("dep", a))
    dep["metadata"]["ownerReferences"].append(dict(dep["metadata"]["ownerReferences"][0], name="b",
                                                   uid=b["metadata"]["uid"]))
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(dep))
    kubectl("delete", "cm", "a", "-n", ns)
    eventually(lambda: [r["name"] for r in kubectl.json("get", "cm", "dep", "-n", ns)["metadata"]
                        .get("ownerReferences", [])] == ["b"], what="reference to a removed")


def test_foreground_deletion_waits_for_blocking_dependents(kubectl, ns):
    owner = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-",
                               input=owned_configmap("owner", None)).stdout)
    kubectl("apply", "-n", ns, "-f", "-", input=owned_configmap("child", owner, block=True,
                                                                  finalizers=["example.com/slow"]))
    kubectl("delete", "cm", "owner", "-n", ns, "--cascade=foreground", "--wait=false")
    # the child is being deleted, and holds its owner while it exists
    eventually(lambda: kubectl.json("get", "cm", "child", "-n", ns)["metadata"].get("deletionTimestamp"),
               what="child deleted first")
    assert exists(kubectl, "cm", "owner", "-n", ns)
    kubectl("patch", "cm", "child", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: not exists(kubectl, "cm", "owner", "-n", ns), what="owner gone after its child")


def test_orphan_deletion_keeps_dependents(kubectl, ns):
    owner = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-",
                               input=owned_configmap("owner", None)).stdout)
    kubectl("apply", "-n", ns, "-f", "-", input=owned_configmap("child", owner))
    kubectl("delete", "cm", "owner", "-n", ns, "--cascade=orphan", "--wait=false")
    eventually(lambda: not exists(kubectl, "cm", "owner", "-n", ns), what="owner gone")
    child = kubectl.json("get", "cm", "child", "-n", ns)
    assert not child["metadata"].get("ownerReferences")


def test_podgc_removes_pods_of_vanished_nodes(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray"},
        "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox"}]}}))
    eventually(lambda: not exists(kubectl, "pod", "stray", "-n", ns), what="orphaned pod collected")


def test_legacy_token_secret_is_filled_and_authenticates(kubectl, ns, cluster):
    import base64

    kubectl("create", "serviceaccount", "robot", "-n", ns)
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}}))
    data = eventually(lambda: kubectl.json("get", "secret", "robot-token", "-n", ns).get("data", {}).get("token")
                      and kubectl.json("get", "secret", "robot-token", "-n", ns)["data"], what="a token")
    assert base64.b64decode(data["namespace"]).decode() == ns
    assert base64.b64decode(data["ca.crt"]).decode() == (cluster.pki / "ca.crt").read_text()
    token = base64.b64decode(data["token"]).decode()
    who = kubectl("auth", "whoami", "--token", token, "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:robot"
    kubectl("delete", "serviceaccount", "robot", "-n", ns)
    eventually(lambda: not exists(kubectl, "secret", "robot-token", "-n", ns), what="token secret removed")


def test_claim_in_use_is_kept_until_its_pod_goes(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}))
    eventually(lambda: "kubernetes.io/pvc-protection" in kubectl.json("get", "pvc", "data", "-n", ns)["metadata"]
               .get("finalizers", []), what="the protection finalizer")
    kubectl("delete", "pvc", "data", "-n", ns, "--wait=false")
    assert kubectl.json("get", "pvc", "data", "-n", ns)["metadata"].get("deletionTimestamp")
    kubectl("delete", "pod", "user", "-n", ns)
    eventually(lambda: not exists(kubectl, "pvc", "data", "-n", ns), what="the claim gone with its last user")


def test_generic_ephemeral_volume_gets_a_claim_owned_by_its_pod(kubectl, ns):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "scratch"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "tmp", "ephemeral": {"volumeClaimTemplate": {
                     "metadata": {"labels": {"kind": "scratch"}},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]}}))
    claim = eventually(lambda: exists(kubectl, "pvc", "scratch-tmp", "-n", ns) and
                       kubectl.json("get", "pvc", "scratch-tmp", "-n", ns), what="the claim")
    assert claim["metadata"]["ownerReferences"][0]["name"] == "scratch"
    assert claim["metadata"]["labels"] == {"kind": "scratch"}


def test_custom_resources_are_collected_too(kubectl, ns):
    """A resource defined after the manager started is found by rediscovery (within 30 s)."""
    import os
    # the collector is running before the resource exists: it collects an ordinary dependent first
    first = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-", input=owned_configmap("first", None)).stdout)
    kubectl("apply", "-n", ns, "-f", "-", input=owned_configmap("first-child", first))
    kubectl("delete", "cm", "first", "-n", ns)
    eventually(lambda: not exists(kubectl, "cm", "first-child", "-n", ns), what="the collector at work")
    group = f"gc{os.urandom(3).hex()}.example.com"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}))
    owner = json.loads(kubectl("apply", "-n", ns, "-o", "json", "-f", "-", input=owned_configmap("owner", None)).stdout)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    eventually(lambda: kubectl("apply", "-n", ns, "-f", "-", check=False, input=json.dumps({
        "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w", "ownerReferences": [ref]}}))
        .returncode == 0, what="the custom resource served")
    kubectl("delete", "cm", "owner", "-n", ns)
    eventually(lambda: not exists(kubectl, f"widgets.{group}", "w", "-n", ns), timeout=90,
               what="the widget collected with its owner")
    kubectl("delete", "crd", f"widgets.{group}", "--wait=false")
