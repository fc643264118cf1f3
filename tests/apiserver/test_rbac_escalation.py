"""RBAC escalation prevention, with real kubectl as a restricted client-certificate user: a user
allowed to write roles and bindings cannot grant more than they hold, unless given `bind` or
`escalate`. Pure rule-coverage cases are checked directly on escalation.not_held."""

from __future__ import annotations

import os

from provisioner.components.apiserver.escalation import not_held
from provisioner.components.apiserver.rbac import rule

from .conftest import eventually

BINDER_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: binder, namespace: {ns}}}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings, roles]
  verbs: [create, get, list, update, patch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
"""


def _restricted_user(kubectl, user_kubectl, ns, extra_rules: str = ""):
    """A fresh user who may create rolebindings and roles in `ns` (and read configmaps)."""
    user = "esc-" + os.urandom(3).hex()
    kubectl("apply", "-f", "-", input=BINDER_ROLE.format(ns=ns) + extra_rules)
    kubectl("create", "rolebinding", f"{user}-binder", "--role=binder", f"--user={user}", "-n", ns)
    as_user = user_kubectl(user)
    assert eventually(lambda: as_user("get", "configmaps", "-n", ns, check=False).returncode == 0)
    return user, as_user


def test_binding_oneself_to_cluster_admin_is_forbidden(kubectl, user_kubectl, ns):
    kubectl("create", "secret", "generic", "vault", "--from-literal=k=v", "-n", ns)
    user, as_user = _restricted_user(kubectl, user_kubectl, ns)
    out = as_user("create", "rolebinding", "pwn", "--clusterrole=cluster-admin", f"--user={user}", "-n", ns,
                  check=False)
    assert out.returncode != 0
    assert (f'rolebindings.rbac.authorization.k8s.io "pwn" is forbidden: user "{user}" '
            f'(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:'
            in out.stderr), out.stderr
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in out.stderr
    assert kubectl("get", "rolebinding", "pwn", "-n", ns, check=False).returncode != 0
    out = as_user("delete", "secret", "vault", "-n", ns, check=False)
    assert out.returncode != 0 and "forbidden" in out.stderr
    assert kubectl("get", "secret", "vault", "-n", ns).returncode == 0


def test_binding_a_role_whose_rules_one_holds_is_allowed(kubectl, user_kubectl, ns):
    kubectl("create", "role", "cm-reader", "--verb=get", "--resource=configmaps", "-n", ns)
    kubectl("create", "role", "secret-reader", "--verb=get", "--resource=secrets", "-n", ns)
    user, as_user = _restricted_user(kubectl, user_kubectl, ns)
    as_user("create", "rolebinding", "ok", "--role=cm-reader", "--user=bob", "-n", ns)
    out = as_user("create", "rolebinding", "no", "--role=secret-reader", "--user=bob", "-n", ns, check=False)
    assert out.returncode != 0
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in out.stderr, out.stderr
    out = as_user("create", "rolebinding", "ghost", "--role=missing", "--user=bob", "-n", ns, check=False)
    assert out.returncode != 0 and 'roles.rbac.authorization.k8s.io "missing" not found' in out.stderr


def test_bind_verb_allows_binding_a_role_one_does_not_hold(kubectl, user_kubectl, ns):
    extra = """- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames: [edit]
"""
    user, as_user = _restricted_user(kubectl, user_kubectl, ns, extra)
    as_user("create", "rolebinding", "editors", "--clusterrole=edit", "--user=bob", "-n", ns)
    out = as_user("create", "rolebinding", "admins", "--clusterrole=admin", "--user=bob", "-n", ns, check=False)
    assert out.returncode != 0 and "attempting to grant RBAC permissions not currently held" in out.stderr


def test_roles_cannot_grant_more_than_held_on_create_or_update(kubectl, user_kubectl, ns):
    user, as_user = _restricted_user(kubectl, user_kubectl, ns)
    as_user("create", "role", "mine", "--verb=get", "--resource=configmaps", "-n", ns)
    out = as_user("create", "role", "wide", "--verb=delete", "--resource=secrets", "-n", ns, check=False)
    assert out.returncode != 0
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}' in out.stderr, out.stderr
    # the same escalation through an update (a JSON patch adding a rule) is refused as well
    out = as_user("patch", "role", "mine", "-n", ns, "--type=json", "-p",
                  '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],'
                  '"verbs":["get"]}}]', check=False)
    assert out.returncode != 0 and "attempting to grant RBAC permissions not currently held" in out.stderr
    rules = kubectl.json("get", "role", "mine", "-n", ns)["rules"]
    assert [r["resources"] for r in rules] == [["configmaps"]]


def test_escalate_verb_allows_writing_wider_roles(kubectl, user_kubectl, ns):
    extra = """- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [escalate]
"""
    user, as_user = _restricted_user(kubectl, user_kubectl, ns, extra)
    as_user("create", "role", "wide", "--verb=delete", "--resource=secrets", "-n", ns)
    assert kubectl.json("get", "role", "wide", "-n", ns)["rules"][0]["resources"] == ["secrets"]


def test_rule_coverage():
    held = [rule(["get", "list"], [""], ["pods", "*/status"]), rule(["*"], ["apps"], ["deployments"]),
            rule(["get"], [""], ["secrets"]) | {"resourceNames": ["a"]}, rule(["get"], urls=["/logs/*"])]
    assert not_held(held, [rule(["get"], [""], ["pods", "services/status"])]) == []
    assert not_held(held, [rule(["delete", "patch"], ["apps"], ["deployments"])]) == []
    assert not_held(held, [rule(["get"], [""], ["secrets"]) | {"resourceNames": ["a"]}]) == []
    assert not_held(held, [rule(["get"], urls=["/logs/x"])]) == []
    assert not_held(held, [rule(["get"], [""], ["secrets"])]) == [  # all names > one name
        {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]
    assert not_held(held, [rule(["*"], [""], ["pods"])]) == [  # "*" is covered only by "*"
        {"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}]
    assert not_held(held, [rule(["get"], urls=["/metrics"])]) == [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]
