"""Delegated authentication and authorization as a kubelet's webhook mode uses them, through the
official Python client: TokenReview (valid, foreign audience, garbage), SubjectAccessReview
(RBAC and the Node authorizer answering) and LocalSubjectAccessReview; `kubectl certificate deny`."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import eventually
from .test_subresources import _csr_pem


def _token(kubectl, ns, *extra):
    kubectl("create", "serviceaccount", "reviewer", "-n", ns)
    return kubectl("create", "token", "reviewer", "-n", ns, *extra).stdout.strip()


def test_token_review_of_a_service_account_token(k8s, kubectl, ns):
    token = _token(kubectl, ns)
    api = client.AuthenticationV1Api(k8s)
    out = api.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert out.status.authenticated is True
    assert out.status.user.username == f"system:serviceaccount:{ns}:reviewer"
    assert set(out.status.user.groups) == {"system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                           "system:authenticated"}
    sa = client.CoreV1Api(k8s).read_namespaced_service_account("reviewer", ns)
    assert out.status.user.uid == sa.metadata.uid
    assert out.status.audiences == ["https://kubernetes.default.svc.cluster.local"]


def test_token_review_checks_the_audience(k8s, kubectl, ns):
    token = _token(kubectl, ns, "--audience=vault")
    api = client.AuthenticationV1Api(k8s)
    default = api.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert not default.status.authenticated and default.status.error
    vault = api.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(
        token=token, audiences=["vault", "other"])))
    assert vault.status.authenticated and vault.status.audiences == ["vault"]


def test_token_review_of_garbage_is_unauthenticated(k8s):
    api = client.AuthenticationV1Api(k8s)
    out = api.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="not-a-token")))
    assert not out.status.authenticated and "invalid bearer token" in out.status.error


def test_token_review_needs_the_create_permission(user_kubectl, kubectl):
    as_user = user_kubectl("nobody-reviews")
    out = as_user("create", "-f", "-", "-o", "json", check=False, input=json.dumps({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}}))
    assert out.returncode != 0 and 'cannot create resource "tokenreviews"' in out.stderr


def _sar(k8s, user, groups, **attrs):
    spec = client.V1SubjectAccessReviewSpec(user=user, groups=groups,
                                            resource_attributes=client.V1ResourceAttributes(**attrs))
    return client.AuthorizationV1Api(k8s).create_subject_access_review(client.V1SubjectAccessReview(spec=spec))


def test_subject_access_review_answers_for_rbac(k8s, kubectl, ns):
    kubectl("create", "rolebinding", "sar-view", "--clusterrole=view", "--user=sar-user", "-n", ns)
    assert eventually(lambda: _sar(k8s, "sar-user", [], verb="list", resource="pods", namespace=ns).status.allowed)
    assert not _sar(k8s, "sar-user", [], verb="delete", resource="pods", namespace=ns).status.allowed
    assert not _sar(k8s, "sar-user", [], verb="list", resource="pods", namespace="default").status.allowed
    assert _sar(k8s, "anyone", ["system:masters"], verb="delete", resource="nodes").status.allowed
    url = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user="sar-user", groups=["system:authenticated"],
        non_resource_attributes=client.V1NonResourceAttributes(verb="get", path="/healthz")))
    assert client.AuthorizationV1Api(k8s).create_subject_access_review(url).status.allowed


def test_subject_access_review_answers_for_the_node_authorizer(k8s, kubectl, ns):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sar-n1"}}))
    node = ("system:node:sar-n1", ["system:nodes", "system:authenticated"])
    assert _sar(k8s, *node, verb="get", resource="nodes", name="sar-n1").status.allowed
    other = _sar(k8s, *node, verb="get", resource="nodes", name="sar-n2").status
    assert not other.allowed and "no relationship found between node 'sar-n1'" in other.reason
    assert not _sar(k8s, *node, verb="list", resource="pods").status.allowed
    scoped = client.V1ResourceAttributes(verb="list", resource="pods", field_selector=client.V1FieldSelectorAttributes(
        raw_selector="spec.nodeName=sar-n1"))
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=node[0], groups=node[1], resource_attributes=scoped))
    assert client.AuthorizationV1Api(k8s).create_subject_access_review(review).status.allowed
    kubectl("delete", "node", "sar-n1")


def test_local_subject_access_review(k8s, kubectl, ns):
    kubectl("create", "rolebinding", "lsar-edit", "--clusterrole=edit", "--user=lsar-user", "-n", ns)
    api = client.AuthorizationV1Api(k8s)

    def ask(namespace):
        return api.create_namespaced_local_subject_access_review(ns, client.V1LocalSubjectAccessReview(
            metadata=client.V1ObjectMeta(namespace=ns), spec=client.V1SubjectAccessReviewSpec(
                user="lsar-user", resource_attributes=client.V1ResourceAttributes(
                    verb="create", resource="deployments", group="apps", namespace=namespace))))
    assert eventually(lambda: ask(ns).status.allowed)
    with pytest.raises(ApiException) as err:
        ask("default")
    body = json.loads(err.value.body)
    assert err.value.status == 422 and body["details"]["causes"][0]["field"] == "spec.resourceAttributes.namespace"


def test_reviews_are_in_discovery(kubectl):
    out = kubectl("api-resources", "--api-group=authorization.k8s.io", "-o", "name").stdout.split()
    assert {"subjectaccessreviews.authorization.k8s.io", "localsubjectaccessreviews.authorization.k8s.io",
            "selfsubjectaccessreviews.authorization.k8s.io"} <= set(out)
    assert "tokenreviews.authentication.k8s.io" in kubectl(
        "api-resources", "--api-group=authentication.k8s.io", "-o", "name").stdout.split()


def test_certificate_deny(kubectl, ns):
    name = f"deny-{ns[-4:]}"
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
        "spec": {"request": _csr_pem("x"), "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"]}}))
    assert kubectl("certificate", "deny", name).stdout.strip() == \
        f"certificatesigningrequest.certificates.k8s.io/{name} denied"
    cond = kubectl.json("get", "csr", name)["status"]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in cond] == [("Denied", "True", "KubectlDeny")]
    kubectl("delete", "csr", name)
