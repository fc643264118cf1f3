"""metrics-server on a real one-machine cluster (`dev cluster`: etcd, the API server with the
aggregation layer, the scheduler, the controller manager, the runtime, a kubelet and
metrics-server behind v1beta1.metrics.k8s.io), driven with real kubectl as a user would."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from provisioner.dev import DevNodeCluster

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")


def wait_for(check, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")  # noqa: TRY003


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    root = Path(f"/tmp/metrics-dev-{uuid.uuid4().hex[:8]}")
    cluster = DevNodeCluster(root, node_name=f"metrics-node-{os.getpid() % 10000}", log=lambda _: None)
    cluster.start()
    wait_for(lambda: kubectl(cluster, "get", "apiservice", "v1beta1.metrics.k8s.io", "-o",
                             'jsonpath={.status.conditions[?(@.type=="Available")].status}').stdout == "True",
             60, "v1beta1.metrics.k8s.io Available")
    yield cluster
    cluster.stop()
    subprocess.run(["rm", "-rf", str(root)], check=False)


def kubectl(dev, *args, kubeconfig=None):
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig or dev.api.kubeconfig), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def workload(dev):
    """A namespace with one running pod labelled app=metrics-probe."""
    ns = f"metrics-{uuid.uuid4().hex[:6]}"
    assert kubectl(dev, "create", "namespace", ns).returncode == 0
    created = kubectl(dev, "run", "probe", "-n", ns, "--image=busybox:latest", "--labels=app=metrics-probe",
                      "--restart=Never", "--", "sh", "-c", "exec sleep 3600")
    assert created.returncode == 0, created.stderr
    wait_for(lambda: kubectl(dev, "get", "pod", "probe", "-n", ns, "-o", "jsonpath={.status.phase}").stdout
             == "Running", 240, "the pod Running")
    return ns


def test_kubectl_top_nodes_lists_the_node(dev):
    top = wait_for(lambda: (r := kubectl(dev, "top", "nodes")).returncode == 0 and r, 60, "kubectl top nodes")
    header, *rows = top.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert [row.split()[0] for row in rows] == [dev.node_name]
    name, cpu, cpu_percent, memory, memory_percent = rows[0].split()
    assert cpu.endswith("m") and memory.endswith("Mi") and int(memory[:-2]) > 0
    raw = json.loads(kubectl(dev, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert raw["kind"] == "NodeMetricsList" and raw["items"][0]["metadata"]["name"] == dev.node_name
    assert raw["items"][0]["usage"]["cpu"].endswith("n") and raw["items"][0]["window"].endswith("s")
    listed = kubectl(dev, "get", "nodemetrics")
    assert listed.stdout.split()[:4] == ["NAME", "CPU", "MEMORY", "WINDOW"] and dev.node_name in listed.stdout
    apiservice = json.loads(kubectl(dev, "get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json").stdout)
    assert apiservice["status"]["conditions"][0]["status"] == "True"


def test_kubectl_top_pods_by_namespace_label_and_name(dev, workload):
    ns = workload
    top = wait_for(lambda: (r := kubectl(dev, "top", "pods", "-n", ns)).returncode == 0 and "probe" in r.stdout
                   and r, 60, "the pod in kubectl top pods")
    assert top.stdout.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    every = kubectl(dev, "top", "pods", "-A")
    assert any(line.split()[:2] == [ns, "probe"] for line in every.stdout.splitlines()), every.stdout
    labelled = kubectl(dev, "top", "pods", "-n", ns, "-l", "app=metrics-probe", "--containers")
    assert labelled.returncode == 0 and labelled.stdout.splitlines()[1].split()[:2] == ["probe", "probe"]
    none = kubectl(dev, "top", "pods", "-n", ns, "-l", "app=absent")
    assert "probe" not in none.stdout
    pod = json.loads(kubectl(dev, "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/probe").stdout)
    assert pod["kind"] == "PodMetrics" and pod["metadata"]["labels"]["app"] == "metrics-probe"
    assert [c["name"] for c in pod["containers"]] == ["probe"]
    assert pod["containers"][0]["usage"]["memory"].endswith("Ki")
    listed = kubectl(dev, "get", "podmetrics", "-n", ns)
    assert listed.stdout.split()[:4] == ["NAME", "CPU", "MEMORY", "WINDOW"] and "probe" in listed.stdout
    missing = kubectl(dev, "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/nope")
    assert missing.returncode != 0 and 'podmetrics.metrics.k8s.io "' in missing.stderr


def test_users_need_rbac_for_the_metrics_api(dev):
    nobody = dev.api.user_kubeconfig("metrics-nobody")
    refused = kubectl(dev, "top", "nodes", kubeconfig=nobody)
    assert refused.returncode != 0
    assert 'cannot list resource "nodes" in API group "metrics.k8s.io"' in refused.stderr
    reader = dev.api.user_kubeconfig("metrics-reader")
    bound = kubectl(dev, "create", "clusterrolebinding", "metrics-reader-test",
                    "--clusterrole=system:aggregated-metrics-reader", "--user=metrics-reader")
    assert bound.returncode == 0, bound.stderr
    # (kubectl top nodes also lists core Nodes, which this role does not grant: read the API itself)
    nodes = wait_for(lambda: (r := kubectl(dev, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes",
                                           kubeconfig=reader)).returncode == 0 and json.loads(r.stdout), 30,
                     "the metrics API as a reader")
    assert [n["metadata"]["name"] for n in nodes["items"]] == [dev.node_name]


def _metrics_server_port(dev) -> int:
    args = dev.procs["metrics-server"].args
    return int(args[args.index("--secure-port") + 1])


def _direct(dev, path: str, cert: str | None, headers: dict | None = None) -> tuple[int, str]:
    """A request straight to metrics-server (not through the API server)."""
    pki = dev.api.pki
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.check_hostname = False  # its certificate names the Service, this request goes to 127.0.0.1
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    request = urllib.request.Request(f"https://127.0.0.1:{_metrics_server_port(dev)}{path}",
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_metrics_server_trusts_only_the_front_proxy_for_user_headers(dev):
    dev.api.issue_user("metrics-direct-nobody")
    as_admin = {"X-Remote-User": "kubernetes-admin", "X-Remote-Group": "system:masters"}
    nodes = "/apis/metrics.k8s.io/v1beta1/nodes"
    assert _direct(dev, "/healthz", None) == (200, "ok")
    assert _direct(dev, nodes, None)[0] == 401
    assert _direct(dev, nodes, "front-proxy-client", as_admin)[0] == 200
    status, body = _direct(dev, nodes, "front-proxy-client", {"X-Remote-User": "metrics-direct-nobody"})
    assert status == 403 and 'User "metrics-direct-nobody" cannot list' in json.loads(body)["message"]
    # a client certificate of the cluster CA is its own user: the headers it sends are ignored
    status, body = _direct(dev, nodes, "user-metrics-direct-nobody", as_admin)
    assert status == 403 and 'User "metrics-direct-nobody"' in json.loads(body)["message"]
