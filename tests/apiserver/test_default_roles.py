"""The default user-facing roles (view, edit, admin) grant what Kubernetes' do, checked with real
kubectl as certificate users bound to them in a namespace; default roles get missing rules back on start."""

from __future__ import annotations

import json
import os

from tests.conftest import free_port

from .conftest import another_apiserver, eventually


def _bound_user(kubectl, user_kubectl, ns, role):
    user = f"{role}-" + os.urandom(3).hex()
    kubectl("create", "rolebinding", user, f"--clusterrole={role}", f"--user={user}", "-n", ns)
    as_user = user_kubectl(user)
    assert eventually(lambda: as_user("get", "pods", "-n", ns, check=False).returncode == 0)
    return user, as_user


def test_view_reads_workloads_but_not_secrets(kubectl, user_kubectl, ns):
    kubectl("create", "secret", "generic", "db", "--from-literal=password=hunter2", "-n", ns)
    kubectl("create", "configmap", "settings", "--from-literal=a=b", "-n", ns)
    _, as_user = _bound_user(kubectl, user_kubectl, ns, "view")
    for resource in ("pods", "configmaps", "deployments", "services", "jobs", "endpointslices"):
        as_user("get", resource, "-n", ns)
    for args in (("get", "secrets"), ("get", "secret", "db"), ("get", "secrets", "-w", "--request-timeout=10s")):
        out = as_user(*args, "-n", ns, check=False)
        assert out.returncode != 0 and "cannot" in out.stderr and '"secrets"' in out.stderr, out.stderr
    out = as_user("create", "configmap", "x", "-n", ns, check=False)
    assert out.returncode != 0 and "forbidden" in out.stderr


def test_edit_writes_workloads_and_secrets_but_not_rbac_or_endpoints(kubectl, user_kubectl, ns):
    _, as_user = _bound_user(kubectl, user_kubectl, ns, "edit")
    as_user("create", "secret", "generic", "db", "--from-literal=password=hunter2", "-n", ns)
    assert as_user.json("get", "secret", "db", "-n", ns)["data"] == {"password": "aHVudGVyMg=="}
    as_user("create", "deployment", "web", "--image=busybox", "-n", ns)
    as_user("scale", "deployment", "web", "--replicas=2", "-n", ns)
    for args in (("create", "rolebinding", "rb", "--clusterrole=view", "--user=bob"),
                 ("create", "role", "r", "--verb=get", "--resource=pods")):
        out = as_user(*args, "-n", ns, check=False)
        assert out.returncode != 0 and "forbidden" in out.stderr, out.stderr
    out = as_user("apply", "-n", ns, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}))
    assert out.returncode != 0 and "forbidden" in out.stderr, out.stderr


def test_admin_delegates_within_what_it_holds(kubectl, user_kubectl, ns):
    _, as_user = _bound_user(kubectl, user_kubectl, ns, "admin")
    as_user("create", "rolebinding", "viewers", "--clusterrole=view", "--user=bob", "-n", ns)
    as_user("create", "role", "pod-reader", "--verb=get", "--resource=pods", "-n", ns)
    out = as_user("create", "rolebinding", "root", "--clusterrole=cluster-admin", "--user=bob", "-n", ns,
                  check=False)
    assert out.returncode != 0 and "attempting to grant RBAC permissions not currently held" in out.stderr


def test_a_server_start_gives_default_roles_back_missing_rules_and_keeps_additions(cluster, kubectl):
    original = kubectl.json("get", "clusterrole", "view")
    assert original["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    extra = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
    edited = original["rules"][1:] + [extra]      # one default rule lost, one rule of our own
    kubectl("patch", "clusterrole", "view", "--type=merge", "-p", json.dumps({"rules": edited}))
    port = free_port()
    try:
        # ready means its bootstrap (default RBAC included) is done
        with another_apiserver(cluster, port, cluster.apiserver_command(port)):
            rules = kubectl.json("get", "clusterrole", "view")["rules"]
            assert original["rules"][0] in rules   # given back
            assert extra in rules                  # an administrator's addition stays
            assert all(r in rules for r in original["rules"])
    finally:
        kubectl("patch", "clusterrole", "view", "--type=merge", "-p", json.dumps({"rules": original["rules"]}))


def test_a_default_role_marked_autoupdate_false_is_left_alone(cluster, kubectl):
    original = kubectl.json("get", "clusterrole", "view")
    kubectl("annotate", "clusterrole", "view", "--overwrite", "rbac.authorization.kubernetes.io/autoupdate=false")
    kubectl("patch", "clusterrole", "view", "--type=merge", "-p", json.dumps({"rules": original["rules"][1:]}))
    port = free_port()
    try:
        with another_apiserver(cluster, port, cluster.apiserver_command(port)):
            assert kubectl.json("get", "clusterrole", "view")["rules"] == original["rules"][1:]
    finally:
        kubectl("annotate", "clusterrole", "view", "--overwrite", "rbac.authorization.kubernetes.io/autoupdate=true")
        kubectl("patch", "clusterrole", "view", "--type=merge", "-p", json.dumps({"rules": original["rules"]}))
