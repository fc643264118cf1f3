"""`dev cluster`'s aggregation layer and metrics-server, so `kubectl top` works on it.

The API server shows the front-proxy client certificate the dev PKI issued (the cluster's table)
with the --proxy-client-* / --requestheader-* flags; metrics-server runs as a process on loopback with
its own client certificate (user system:metrics-server, bound to the same roles as the cluster
add-on) and the cluster table's `metrics-server` serving certificate (for
metrics-server.kube-system.svc, from the cluster CA), and reaches the API server's aggregator
through a selector-less `metrics-server` Service in kube-system whose Endpoints name its port.
The CA flags are left out on purpose: it reads kube-system/extension-apiserver-authentication,
as in a cluster. Used by provisioner/dev.py (DevNodeCluster).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from provisioner.kube.addons import metrics_api_service, metrics_server_rbac

METRICS_USER = "system:metrics-server"
RESOLUTION = "2s"  # a dev cluster answers `kubectl top` within seconds of starting


def front_proxy_args(pki: Path) -> list[str]:
    """The API server flags for the front-proxy CA and client the dev PKI issued (dev_pki.py)."""
    return ["--proxy-client-cert-file", str(pki / "front-proxy-client.crt"),
            "--proxy-client-key-file", str(pki / "front-proxy-client.key"),
            "--requestheader-client-ca-file", str(pki / "front-proxy-ca.crt"),
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-"]


def objects(port: int, ca_pem: bytes) -> list[dict]:
    """RBAC for the metrics-server user, its Service and Endpoints on loopback, the APIService."""
    meta = {"name": "metrics-server", "namespace": "kube-system", "labels": {"k8s-app": "metrics-server"}}
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": METRICS_USER}
    return metrics_server_rbac(subject) + [
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                      "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]},
        metrics_api_service(base64.b64encode(ca_pem).decode())]


def start(cluster, port: int) -> list[str]:  # noqa: ANN001 - a provisioner.dev.DevNodeCluster
    """Write metrics-server's credentials and objects; return its command line."""
    from provisioner.kube.apiclient import ApiClient, Credentials
    api = cluster.api
    pki = api.pki
    kubeconfig = api.user_kubeconfig(METRICS_USER)
    client = ApiClient(Credentials(api.server, str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key")))
    for obj in objects(port, (pki / "ca.crt").read_bytes()):
        client.ensure(obj)
    return [sys.executable, "-m", "provisioner.components.metricsserver.main", "--kubeconfig", str(kubeconfig),
            "--secure-port", str(port), "--bind-address", "127.0.0.1",
            "--tls-cert-file", str(pki / "metrics-server.crt"),
            "--tls-private-key-file", str(pki / "metrics-server.key"),
            "--kubelet-preferred-address-types", "InternalIP", f"--metric-resolution={RESOLUTION}"]
