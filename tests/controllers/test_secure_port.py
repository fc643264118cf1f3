"""kube-controller-manager's secure port delegates authentication (client certificates, TokenReview)
and authorization (SubjectAccessReview) to the API server, with real credentials. The instance under
test is a standby beside the shared controller manager: it serves its port without leading."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from tests.conftest import free_port

from .conftest import eventually, start_kcm


def https_get(url: str, token: str | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # a self-signed serving certificate
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def test_metrics_need_rbac_and_health_answers_anyone(cluster, kcm, kubectl, ns, tmp_path):
    identity = str(cluster.user_kubeconfig("system:kube-controller-manager"))
    port = free_port()
    proc = start_kcm(cluster, tmp_path / "kcm.log", "--secure-port", str(port), "--bind-address", "127.0.0.1",
                     "--authentication-kubeconfig", identity, "--authorization-kubeconfig", identity,
                     "--controllers=serviceaccount")
    try:
        base = f"https://127.0.0.1:{port}"
        eventually(lambda: https_get(base + "/healthz") == (200, "ok"), what="the secure port")
        kubectl("create", "serviceaccount", "scraper", "-n", ns)
        kubectl("create", "serviceaccount", "nosy", "-n", ns)
        kubectl("create", "clusterrole", f"metrics-{ns}", "--verb=get", "--non-resource-url=/metrics")
        kubectl("create", "clusterrolebinding", f"metrics-{ns}", f"--clusterrole=metrics-{ns}",
                f"--serviceaccount={ns}:scraper")
        scraper = kubectl("create", "token", "scraper", "-n", ns).stdout.strip()
        nosy = kubectl("create", "token", "nosy", "-n", ns).stdout.strip()

        status, body = https_get(base + "/metrics")
        assert status == 403
        assert json.loads(body)["message"] == 'forbidden: User "system:anonymous" cannot get path "/metrics"'
        assert https_get(base + "/metrics", token=nosy)[0] == 403
        assert https_get(base + "/metrics", token="not-a-token")[0] == 401
        status, body = eventually(lambda: (lambda r: r[0] == 200 and r)(https_get(base + "/metrics", token=scraper)),
                                  what="the service account with RBAC on /metrics to read it")
        assert "leader_election_master_status" in body
    finally:
        proc.terminate()
        proc.wait(10)
        kubectl("delete", "clusterrole,clusterrolebinding", f"metrics-{ns}", check=False)
