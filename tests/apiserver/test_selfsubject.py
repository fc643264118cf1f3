"""`kubectl auth can-i` (SelfSubjectAccessReview, SelfSubjectRulesReview) and `kubectl auth
whoami` (SelfSubjectReview) with real kubectl, as a restricted certificate user and as admin."""

from __future__ import annotations

import json
import os

from .conftest import eventually


def _viewer(kubectl, user_kubectl, ns):
    user = "viewer-" + os.urandom(3).hex()
    kubectl("create", "rolebinding", user, "--clusterrole=view", f"--user={user}", "-n", ns)
    as_user = user_kubectl(user, ("testers",))
    assert eventually(lambda: as_user("get", "pods", "-n", ns, check=False).returncode == 0)
    return user, as_user


def test_can_i_as_a_restricted_user(kubectl, user_kubectl, ns):
    _, as_user = _viewer(kubectl, user_kubectl, ns)
    out = as_user("auth", "can-i", "delete", "secrets", "-n", ns, check=False)
    assert (out.returncode, out.stdout.strip()) == (1, "no"), out.stderr
    out = as_user("auth", "can-i", "get", "secrets", "-n", ns, check=False)
    assert (out.returncode, out.stdout.strip()) == (1, "no"), out.stderr
    out = as_user("auth", "can-i", "list", "deployments.apps", "-n", ns)
    assert out.stdout.strip() == "yes"
    out = as_user("auth", "can-i", "get", "pods", "-n", "default", check=False)
    assert out.stdout.strip() == "no"  # the binding is only in ns
    assert as_user("auth", "can-i", "get", "/healthz").stdout.strip() == "yes"
    out = as_user("auth", "can-i", "get", "/metrics", check=False)
    assert (out.returncode, out.stdout.strip()) == (1, "no")


def test_can_i_list_shows_the_rules(kubectl, user_kubectl, ns):
    _, as_user = _viewer(kubectl, user_kubectl, ns)
    out = as_user("auth", "can-i", "--list", "-n", ns).stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "[get list watch]" in lines["pods"]
    assert "deployments.apps" in lines
    assert "secrets" not in lines
    assert "selfsubjectaccessreviews.authorization.k8s.io" in lines


def test_can_i_as_admin(kubectl):
    assert kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "secrets", "-n", "kube-system").stdout.strip() == "yes"


def test_whoami(kubectl, user_kubectl, ns):
    user, as_user = _viewer(kubectl, user_kubectl, ns)
    info = json.loads(as_user("auth", "whoami", "-o", "json").stdout)
    assert info["kind"] == "SelfSubjectReview" and info["apiVersion"] == "authentication.k8s.io/v1"
    assert info["status"]["userInfo"] == {"username": user, "groups": ["testers", "system:authenticated"]}
    out = kubectl("auth", "whoami").stdout
    assert "kubernetes-admin" in out and "system:masters" in out


def test_reviews_are_create_only(raw):
    status, _, _ = raw("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert status == 405
    status, _, body = raw("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body={"spec": {}})
    assert status == 422 and json.loads(body)["reason"] == "Invalid"
