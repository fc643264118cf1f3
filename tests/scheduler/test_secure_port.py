"""kube-scheduler's secure port delegates authentication (client certificates, TokenReview) and
authorization (SubjectAccessReview) to the API server, with real credentials: service account tokens
from `kubectl create token`, RBAC on the non-resource URL /metrics, and client certificates."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from .conftest import eventually


def https_get(url: str, token: str | None = None, cert: tuple[str, str] | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the scheduler's self-signed certificate
    if cert:
        ctx.load_cert_chain(*cert)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_need_rbac_and_health_answers_anyone(env):
    identity = str(env.cluster.user_kubeconfig("system:kube-scheduler"))
    sched = env.scheduler("--authentication-kubeconfig", identity, "--authorization-kubeconfig", identity,
                          "--leader-elect=false")
    base = f"https://127.0.0.1:{sched.port}"
    env.kubectl("create", "serviceaccount", "prometheus")
    env.kubectl("create", "serviceaccount", "nosy")
    env.kubectl("create", "clusterrole", "metrics-reader", "--verb=get", "--non-resource-url=/metrics")
    env.kubectl("create", "clusterrolebinding", "prometheus-metrics", "--clusterrole=metrics-reader",
                "--serviceaccount=default:prometheus")
    scraper = env.kubectl("create", "token", "prometheus").stdout.strip()
    nosy = env.kubectl("create", "token", "nosy").stdout.strip()
    eventually(lambda: env.kubectl("auth", "can-i", "get", "/metrics", "--as=system:serviceaccount:default:prometheus",
                                   check=False).stdout.strip() == "yes", 30, "the API server to see the grant")

    assert https_get(base + "/healthz") == (200, "ok")
    assert https_get(base + "/readyz")[0] == 200
    status, body = https_get(base + "/metrics")
    assert status == 403
    assert json.loads(body)["message"] == 'forbidden: User "system:anonymous" cannot get path "/metrics"'
    status, body = https_get(base + "/metrics", token=nosy)
    assert status == 403 and 'User "system:serviceaccount:default:nosy"' in json.loads(body)["message"]
    assert https_get(base + "/metrics", token="not-a-token")[0] == 401
    # a grant takes effect within seconds (the API server's RBAC view and this port's cache of denials)
    status, body = eventually(lambda: (lambda r: r[0] == 200 and r)(https_get(base + "/metrics", token=scraper)),
                              30, "the service account with RBAC on /metrics to read it")
    assert "scheduler_pending_pods" in body
    # client certificates: system:masters always; another user only once RBAC says so
    admin = (str(env.cluster.pki / "admin.crt"), str(env.cluster.pki / "admin.key"))
    assert https_get(base + "/metrics", cert=admin)[0] == 200
    cert, key = env.cluster.issue_user("grafana", ("dashboards",))
    assert https_get(base + "/metrics", cert=(str(cert), str(key)))[0] == 403
    env.kubectl("create", "clusterrolebinding", "dashboards-metrics", "--clusterrole=metrics-reader",
                "--group=dashboards")
    eventually(lambda: https_get(base + "/metrics", cert=(str(cert), str(key)))[0] == 200, 30,
               "the grant seen once the cached denial expires")
