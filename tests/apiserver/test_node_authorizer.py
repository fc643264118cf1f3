"""The Node authorizer and NodeRestriction admission with a kubelet's real credentials
(system:node:<name> in system:nodes) through real kubectl: its own Node, Lease and pods, the
secrets and configmaps those pods use, nothing of another node's."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import eventually


@pytest.fixture
def nodes(kubectl, user_kubectl, ns):
    """Two nodes, a pod bound to each; the first uses secret `mine` and configmap `mine-cm`."""
    a, b = f"na-{os.urandom(2).hex()}", f"nb-{os.urandom(2).hex()}"
    for node in (a, b):
        kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    kubectl("create", "secret", "generic", "mine", "-n", ns, "--from-literal=k=v")
    kubectl("create", "secret", "generic", "theirs", "-n", ns, "--from-literal=k=v")
    kubectl("create", "configmap", "mine-cm", "-n", ns, "--from-literal=k=v")
    for name, node, volumes in (("pod-a", a, [{"name": "s", "secret": {"secretName": "mine"}},
                                              {"name": "c", "configMap": {"name": "mine-cm"}}]),
                                ("pod-b", b, [{"name": "s", "secret": {"secretName": "theirs"}}])):
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "volumes": volumes,
                     "containers": [{"name": "c", "image": "busybox"}]}}))
    yield a, b, user_kubectl(f"system:node:{a}", ("system:nodes",))
    for node in (a, b):
        kubectl("delete", "node", node, "--wait=false")


def _denied(result, text="forbidden"):
    return result.returncode != 0 and text in result.stderr


def test_a_node_reads_its_own_objects(nodes, ns):
    a, _, kubelet = nodes
    assert kubelet.json("get", "node", a)["metadata"]["name"] == a
    assert kubelet.json("get", "pod", "pod-a", "-n", ns)["spec"]["nodeName"] == a
    assert kubelet.json("get", "secret", "mine", "-n", ns)["data"] == {"k": "dg=="}
    assert kubelet.json("get", "configmap", "mine-cm", "-n", ns)["data"] == {"k": "v"}
    pods = kubelet.json("get", "pods", "-A", f"--field-selector=spec.nodeName={a}")["items"]
    assert [p["metadata"]["name"] for p in pods] == ["pod-a"]


def test_a_node_is_refused_another_nodes_objects(nodes, ns):
    a, b, kubelet = nodes
    out = kubelet("get", "pod", "pod-b", "-n", ns, check=False)
    assert _denied(out, f'pods "pod-b" is forbidden: User "system:node:{a}" cannot get resource "pods"')
    assert f"no relationship found between node '{a}' and this object" in out.stderr
    assert _denied(kubelet("get", "secret", "theirs", "-n", ns, check=False))
    assert _denied(kubelet("get", "node", b, check=False))
    assert _denied(kubelet("get", "pods", "-A", check=False), "can only list/watch pods with spec.nodeName")
    assert _denied(kubelet("get", "secrets", "-n", ns, check=False))


def test_a_node_uses_only_its_own_lease(nodes):
    a, b, kubelet = nodes

    def lease(name):
        return json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": name, "namespace": "kube-node-lease"},
                           "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}})
    kubelet("apply", "-f", "-", input=lease(a))
    assert _denied(kubelet("apply", "-f", "-", input=lease(b), check=False))
    kubelet("delete", "lease", a, "-n", "kube-node-lease")


def test_rbac_alone_gives_nodes_nothing(kubectl):
    binding = kubectl.json("get", "clusterrolebinding", "system:node")
    assert "subjects" not in binding  # the Node authorizer grants the node rules, as in Kubernetes


def _mirror(name, node, **extra_spec):
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "annotations": {"kubernetes.io/config.mirror": "hash"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "u", "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **extra_spec}})


def test_node_restriction_on_pods(nodes, ns):
    a, b, kubelet = nodes
    kubelet("create", "-n", ns, "-f", "-", input=_mirror(f"static-{a}", a))
    plain = json.loads(_mirror("plain", a))
    del plain["metadata"]["annotations"]
    out = kubelet("create", "-n", ns, "-f", "-", input=json.dumps(plain), check=False)
    assert _denied(out, f'pod does not have "kubernetes.io/config.mirror" annotation, node "{a}" can only '
                        "create mirror pods")
    out = kubelet("create", "-n", ns, "-f", "-", input=_mirror("elsewhere", b), check=False)
    assert _denied(out, f'node "{a}" can only create pods with spec.nodeName set to itself')
    out = kubelet("create", "-n", ns, "-f", "-", check=False, input=_mirror(
        "secretive", a, volumes=[{"name": "s", "secret": {"secretName": "mine"}}]))
    assert _denied(out, f'node "{a}" can not create pods that reference secrets')
    out = kubelet("delete", "pod", "pod-b", "-n", ns, check=False)
    assert _denied(out)
    kubelet("delete", "pod", f"static-{a}", "-n", ns, "--wait=false")


def test_node_restriction_on_nodes(nodes, kubectl):
    a, b, kubelet = nodes
    out = kubelet("label", "node", a, "node-restriction.kubernetes.io/pool=x", check=False)
    assert _denied(out, "is not allowed to modify labels: node-restriction.kubernetes.io/pool")
    kubelet("label", "node", a, "example.com/zone=a")
    assert _denied(kubelet("label", "node", b, "example.com/zone=a", check=False))


def test_node_tokens_are_bound_to_its_pods(nodes, kubectl, k8s, ns):
    from kubernetes import client

    a, _, kubelet = nodes
    token = kubelet("create", "token", "default", "-n", ns, "--bound-object-kind=Pod",
                    "--bound-object-name=pod-a").stdout.strip()
    review = client.AuthenticationV1Api(k8s).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert review.status.authenticated
    extra = review.status.user.extra
    assert extra["authentication.kubernetes.io/pod-name"] == ["pod-a"]
    assert extra["authentication.kubernetes.io/node-name"] == [a]
    out = kubelet("create", "token", "default", "-n", ns, check=False)
    assert _denied(out, 'serviceaccounts "default" is forbidden: node requested token not bound to a pod')
    out = kubelet("create", "token", "default", "-n", ns, "--bound-object-kind=Pod", "--bound-object-name=pod-b",
                  check=False)
    assert _denied(out, "node requested token bound to a pod scheduled on a different node")
    kubectl("delete", "pod", "pod-a", "-n", ns, "--grace-period=0", "--force")

    def dead():
        return not client.AuthenticationV1Api(k8s).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))).status.authenticated
    assert eventually(dead)  # the token died with its pod
