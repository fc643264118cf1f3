"""Security: anonymous access, health endpoints, client-certificate users under RBAC,
service-account tokens from the TokenRequest API, bootstrap tokens."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import eventually


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1/namespaces", "/openapi/v3", "/apis/apps/v1/deployments"])
def test_anonymous_requests_are_401(raw, path):
    status, _, body = raw("GET", path, cert=None)
    assert status == 401 and json.loads(body)["reason"] == "Unauthorized"


@pytest.mark.parametrize("path,text", [("/livez", "ok"), ("/readyz", "ok"), ("/healthz", "ok")])
def test_health_is_public(raw, path, text):
    status, _, body = raw("GET", path, cert=None)
    assert status == 200 and body.decode() == text


def test_readyz_verbose_lists_etcd(raw):
    status, _, body = raw("GET", "/readyz?verbose", cert=None)
    assert status == 200 and "[+]etcd ok" in body.decode() and "readyz check passed" in body.decode()


def test_version_is_public(raw):
    status, _, body = raw("GET", "/version", cert=None)
    assert status == 200 and json.loads(body)["minor"] == "37"


def test_rbac_for_a_certificate_user(cluster, raw, kubectl, ns):
    cert, key = cluster.issue_user("alice", ("devs",))
    raw.contexts.pop("alice", None)
    ctx = raw.ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    ctx.load_cert_chain(str(cert), str(key))
    raw.contexts["alice"] = ctx
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/pods", cert="alice")
    assert status == 403
    assert json.loads(body)["message"] == (f'pods is forbidden: User "alice" cannot list resource "pods" '
                                           f'in API group "" in the namespace "{ns}"')
    status, _, _ = raw("GET", "/api", cert="alice")
    assert status == 200  # discovery is open to every authenticated user
    kubectl("create", "rolebinding", "devs-view", "--clusterrole=view", "--group=devs", "-n", ns)
    # the authorizer caches roles for a second
    assert eventually(lambda: raw("GET", f"/api/v1/namespaces/{ns}/pods", cert="alice")[0] == 200)
    status, _, _ = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cert="alice",
                       body={"metadata": {"name": "x"}})
    assert status == 403
    status, _, _ = raw("GET", "/api/v1/namespaces/default/pods", cert="alice")
    assert status == 403


def test_service_account_tokens(raw, kubectl, ns):
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    token = kubectl("create", "token", "robot", "-n", ns).stdout.strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    status, _, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None,
                          headers={"Authorization": f"Bearer {token}"})
    assert status == 403 and f'User "system:serviceaccount:{ns}:robot"' in json.loads(body)["message"]
    kubectl("create", "rolebinding", "robot-view", "--clusterrole=view", f"--serviceaccount={ns}:robot", "-n", ns)
    assert eventually(lambda: raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None,
                                  headers={"Authorization": f"Bearer {token}"})[0] == 200)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None,
                       headers={"Authorization": f"Bearer {tampered}"})
    assert status == 401
    kubectl("delete", "serviceaccount", "robot", "-n", ns)
    status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None,
                       headers={"Authorization": f"Bearer {token}"})
    assert status == 401  # tokens die with their service account


def test_bootstrap_tokens(raw, kubectl):
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-abcdef, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: abcdef
  token-secret: 0123456789abcdef
  usage-bootstrap-authentication: "true"
""")
    auth = {"Authorization": "Bearer abcdef.0123456789abcdef"}
    status, _, body = raw("GET", "/api/v1/namespaces/kube-system/secrets", cert=None, headers=auth)
    assert status == 403 and 'User "system:bootstrap:abcdef"' in json.loads(body)["message"]
    status, _, _ = raw("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests", cert=None, headers=auth)
    assert status == 200  # system:bootstrappers may file CSRs (default system:node-bootstrapper binding)
    status, _, _ = raw("GET", "/api/v1/namespaces", cert=None,
                       headers={"Authorization": "Bearer abcdef.wrongwrongwrongw"})
    assert status == 401


def test_default_cluster_roles_exist(kubectl):
    names = {i["metadata"]["name"] for i in kubectl.json("get", "clusterroles")["items"]}
    assert {"cluster-admin", "system:kube-scheduler", "system:kube-controller-manager", "system:node",
            "system:node-proxier", "view", "edit", "admin"} <= names


def _bootstrap_token(kubectl, extra: str) -> dict:
    """A bootstrap token Secret with a random id (and `extra` stringData lines); its auth header."""
    import os

    token_id = os.urandom(3).hex()
    kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Secret
metadata: {{name: bootstrap-token-{token_id}, namespace: kube-system}}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: "{token_id}"
  token-secret: "0123456789abcdef"
  usage-bootstrap-authentication: "true"
{extra}""")
    return {"Authorization": f"Bearer {token_id}.0123456789abcdef"}


@pytest.mark.parametrize("groups", ["system:masters", "system:bootstrappers:x,system:masters",
                                    "system:bootstrappers:", "system:nodes", "system:bootstrappers:Upper"])
def test_bootstrap_token_cannot_carry_other_groups(raw, kubectl, groups):
    auth = _bootstrap_token(kubectl, f'  auth-extra-groups: "{groups}"\n')
    status, _, _ = raw("GET", "/api/v1/namespaces/kube-system/secrets", cert=None, headers=auth)
    assert status == 401  # the whole token is refused, not just the group


def test_bootstrap_token_with_bootstrapper_groups(raw, kubectl):
    auth = _bootstrap_token(kubectl, '  auth-extra-groups: "system:bootstrappers:kubeadm:default-node-token"\n')
    status, _, body = raw("GET", "/api/v1/namespaces/kube-system/secrets", cert=None, headers=auth)
    assert status == 403 and 'User "system:bootstrap:' in json.loads(body)["message"]


@pytest.mark.parametrize("expiration,status", [("2001-01-01T00:00:00Z", 401), ("2001-01-01T00:00:00", 401),
                                               ("not-a-date", 401), ("2999-01-01T00:00:00Z", 200)])
def test_bootstrap_token_expiration(raw, kubectl, expiration, status):
    auth = _bootstrap_token(kubectl, f'  expiration: "{expiration}"\n')
    got, _, _ = raw("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests", cert=None, headers=auth)
    assert got == status


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_service_account_token_for_another_audience_is_refused(raw, kubectl, ns):
    kubectl("create", "serviceaccount", "bob", "-n", ns)
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    default = kubectl("create", "token", "bob", "-n", ns).stdout.strip()
    assert _claims(default)["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None, headers=bearer(default))
    assert status == 403  # authenticated as bob, who may do nothing
    vault = kubectl("create", "token", "bob", "-n", ns, "--audience=vault").stdout.strip()
    status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None, headers=bearer(vault))
    assert status == 401
    both = kubectl("create", "token", "bob", "-n", ns, "--audience=vault",
                   "--audience=https://kubernetes.default.svc.cluster.local").stdout.strip()
    status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None, headers=bearer(both))
    assert status == 403


def test_api_audiences_flag(cluster, raw, kubectl, ns):
    from tests.conftest import free_port

    from .conftest import Raw, another_apiserver

    kubectl("create", "serviceaccount", "carol", "-n", ns)
    port = free_port()
    with another_apiserver(cluster, port, cluster.apiserver_command(port) + ["--api-audiences", "api.example,other"]):
        second = Raw(cluster)
        second.port = port
        path = f"/api/v1/namespaces/{ns}/serviceaccounts/carol/token"
        status, _, body = second("POST", path, body={"spec": {}})
        assert status == 201
        token = json.loads(body)["status"]["token"]
        assert _claims(token)["aud"] == ["api.example", "other"]  # TokenRequest defaults to the API audiences
        bearer = {"Authorization": f"Bearer {token}"}
        status, _, _ = second("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None, headers=bearer)
        assert status == 403
        status, _, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None, headers=bearer)
        assert status == 401  # the first server's audience is still the issuer
        issuer_token = kubectl("create", "token", "carol", "-n", ns).stdout.strip()
        status, _, _ = second("GET", f"/api/v1/namespaces/{ns}/configmaps", cert=None,
                              headers={"Authorization": f"Bearer {issuer_token}"})
        assert status == 401
