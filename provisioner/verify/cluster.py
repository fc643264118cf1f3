"""Smoke tests of the Kubernetes cluster, as a user would check it with kubectl.

Every node of the spec Ready; the control plane's pods Running and /readyz ok; Secrets encrypted
at rest in etcd; then a workload in a namespace of its own: a Deployment of two web servers
(the offline python:3.11 image serving HTTP) spread over the nodes, its logs, exec into it,
port-forward to it, a NodePort Service answering on every node address, its ClusterIP and its
DNS name answering from a pod, and pod-to-pod traffic across hosts. The namespace is deleted
afterwards, whatever happened.

Streaming checks (exec, port-forward) run the real kubectl against the admin kubeconfig, as a
user would; the rest goes through the provisioner's API client.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provisioner.kube.apiclient import ApiClient, ApiError
from provisioner.verify.checks import CheckResult

WEB_PORT = 8080
READY_TIMEOUT = 240.0
WEB_IMAGE = "python:3.11"


def kubectl_binary() -> str:
    local = Path(sys.prefix) / "bin" / "kubectl"
    return str(local) if local.exists() else (shutil.which("kubectl") or "kubectl")


class Kubectl:
    def __init__(self, kubeconfig: Path):
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([kubectl_binary(), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, check=False)


def _poll(check: Callable[[], object], timeout: float, interval: float = 1.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (ApiError, OSError):
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def check_nodes(client: ApiClient, names: list[str]) -> list[CheckResult]:
    def all_ready():
        nodes = {n["metadata"]["name"]: n for n in client.items("/api/v1/nodes")}
        return nodes if all(name in nodes and _ready(nodes[name]) for name in names) else None

    nodes = _poll(all_ready, READY_TIMEOUT) or {
        n["metadata"]["name"]: n for n in client.items("/api/v1/nodes")}
    results = []
    for name in names:
        node = nodes.get(name)
        if node is None:
            results.append(CheckResult("node Ready", name, False, "not registered"))
            continue
        ready = next((c for c in node["status"].get("conditions", []) if c["type"] == "Ready"),
                     {})
        results.append(CheckResult("node Ready", name, _ready(node),
                                   ready.get("message") or ready.get("reason") or "no status"))
    return results


def check_control_plane(client: ApiClient, hosts: list[str]) -> list[CheckResult]:
    results = []
    for host in hosts:
        for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            pod = client.get(f"/api/v1/namespaces/kube-system/pods/{component}-{host}")
            phase = (pod or {}).get("status", {}).get("phase", "missing")
            results.append(CheckResult(f"{component} Running", host, phase == "Running", phase))
    try:
        client.request("GET", "/readyz")
        results.append(CheckResult("API server /readyz", "cluster", True, "ok"))
    except ApiError as error:
        results.append(CheckResult("API server /readyz", "cluster", False, str(error)))
    return results


def check_encryption(client: ApiClient, namespace: str,
                     read_raw: Callable[[str], bytes | None], prefix: str) -> CheckResult:
    name = "smoke-secret"
    client.request("POST", f"/api/v1/namespaces/{namespace}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
        "data": {"value": base64.b64encode(b"hunter2").decode()}})
    raw = read_raw(f"/registry/secrets/{namespace}/{name}")
    if raw is None:
        return CheckResult("Secrets encrypted at rest", "cluster", False,
                           "could not read the Secret from etcd")
    ok = raw.startswith(prefix.encode()) and b"hunter2" not in raw
    detail = (f"stored value begins with {prefix}" if ok
              else f"stored value begins with {raw[:24]!r}")
    return CheckResult("Secrets encrypted at rest", "cluster", ok, detail)


def web_objects(namespace: str, replicas: int, nodes: list[str]) -> list[tuple[str, dict]]:
    """The smoke Deployment and its Service. Its pods go to `nodes` only and spread over them
    (maxSkew 1 per host): created while the nodes may still be coming up, they wait for the
    nodes rather than pile onto the first one Ready."""
    labels = {"app": "smoke-web"}
    container = {
        "name": "web", "image": WEB_IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "-u", "-m", "http.server", str(WEB_PORT)],
        "ports": [{"containerPort": WEB_PORT, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": WEB_PORT}, "periodSeconds": 1},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "smoke-web", "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [container],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [{
                             "key": "kubernetes.io/hostname", "operator": "In",
                             "values": sorted(nodes)}]}]}}},
                     "topologySpreadConstraints": [{
                         "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "DoNotSchedule",
                         "labelSelector": {"matchLabels": labels}}]}}}}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "smoke-web", "namespace": namespace},
        "spec": {"type": "NodePort", "selector": labels,
                 "ports": [{"name": "http", "port": 80, "targetPort": WEB_PORT}]}}
    return [(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment),
            (f"/api/v1/namespaces/{namespace}/services", service)]


def http_get(url: str, timeout: float = 5) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except OSError:
        return None


def in_pod_fetch(kubectl: Kubectl, namespace: str, pod: str, url: str) -> subprocess.CompletedProcess:
    code = (f"import urllib.request; r = urllib.request.urlopen({url!r}, timeout=5); "
            "print('HTTP', r.status)")
    return kubectl("-n", namespace, "exec", pod, "--", "python3", "-c", code, timeout=60)


def check_workload(client: ApiClient, kubectl: Kubectl, namespace: str, nodes: dict[str, str],
                   dns_domain: str) -> list[CheckResult]:
    """nodes: name -> address of the schedulable nodes."""
    results: list[CheckResult] = []
    replicas = max(2, min(len(nodes), 3))
    for path, obj in web_objects(namespace, replicas, list(nodes)):
        client.request("POST", path, obj)

    def available():
        deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/smoke-web")
        return (deployment or {}).get("status", {}).get("availableReplicas", 0) >= replicas

    rolled = bool(_poll(available, READY_TIMEOUT, interval=0.5))
    pods = [p for p in client.items(f"/api/v1/namespaces/{namespace}/pods",
                                    labelSelector="app=smoke-web")
            if p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP")]
    spread = sorted({p["spec"].get("nodeName", "") for p in pods})
    wanted_spread = min(len(nodes), replicas)
    results.append(CheckResult(
        "Deployment rolls out", "cluster", rolled and len(spread) >= wanted_spread,
        f"{len(pods)}/{replicas} pods ready on {', '.join(spread) or 'no node'}"))
    if not pods:
        return results
    first = pods[0]["metadata"]["name"]
    service = client.get(f"/api/v1/namespaces/{namespace}/services/smoke-web") or {}
    node_port = service.get("spec", {}).get("ports", [{}])[0].get("nodePort")
    client_pod = pods[0]
    remote = next((p for p in pods if p["spec"]["nodeName"] != client_pod["spec"]["nodeName"]),
                  None)
    cluster_ip = service.get("spec", {}).get("clusterIP")
    targets = [("ClusterIP answers from a pod", f"http://{cluster_ip}:80/"),
               ("Service name resolves in a pod",
                f"http://smoke-web.{namespace}.svc.{dns_domain}:80/")]
    if remote is not None:
        targets.append(("pod to pod across hosts",
                        f"http://{remote['status']['podIP']}:{WEB_PORT}/"))
    # The checks below only read and each waits on its own (a kubectl, a poll): side by side,
    # verify takes as long as the slowest, not the sum. Results keep this order.
    with ThreadPoolExecutor(max_workers=4 + len(nodes) + len(targets)) as pool:
        streaming = pool.submit(check_exec_and_logs, kubectl, namespace, first)
        forward = pool.submit(check_port_forward, kubectl, namespace, first)
        node_ports = [pool.submit(check_node_port, name, address, node_port)
                      for name, address in sorted(nodes.items())]
        from_pod = [pool.submit(check_from_pod, kubectl, namespace, client_pod, check, url)
                    for check, url in targets]
        results += streaming.result()
        results.append(forward.result())
        results += [future.result() for future in node_ports + from_pod]
    return results


def check_exec_and_logs(kubectl: Kubectl, namespace: str, pod: str) -> list[CheckResult]:
    """exec fetches a page inside the pod, so the server's log then holds that request."""
    served = kubectl("-n", namespace, "exec", pod, "--", "python3", "-c",
                     f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{WEB_PORT}/')")
    logs = kubectl("-n", namespace, "logs", pod)
    return [CheckResult("kubectl logs", pod, "GET / HTTP" in logs.stdout,
                        "request logged" if "GET / HTTP" in logs.stdout
                        else (logs.stderr or logs.stdout or "empty").strip()[:120]),
            CheckResult("kubectl exec", pod, served.returncode == 0,
                        "ran python3 in the pod" if served.returncode == 0
                        else served.stderr.strip()[:160])]


def check_node_port(name: str, address: str, node_port: int | None) -> CheckResult:
    answer = _poll(lambda: http_get(f"http://{address}:{node_port}/"), 60)
    return CheckResult("NodePort answers", name, bool(answer),
                       f"{address}:{node_port} {answer or 'no answer'}")


def check_from_pod(kubectl: Kubectl, namespace: str, client_pod: dict, check: str,
                   url: str) -> CheckResult:
    pod = client_pod["metadata"]["name"]
    result = _poll(lambda: (r := in_pod_fetch(kubectl, namespace, pod, url)).returncode == 0
                   and r, 60, interval=2)
    detail = f"{url} from {client_pod['spec']['nodeName']}"
    if not result:
        last = in_pod_fetch(kubectl, namespace, pod, url)
        detail += f": {(last.stderr or last.stdout).strip().splitlines()[-1:]}"
    return CheckResult(check, "cluster", bool(result), detail)


def check_port_forward(kubectl: Kubectl, namespace: str, pod: str) -> CheckResult:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    process = subprocess.Popen([kubectl_binary(), "-n", namespace, "port-forward", f"pod/{pod}",
                                f"{local}:{WEB_PORT}"], env=kubectl.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answer = _poll(lambda: http_get(f"http://127.0.0.1:{local}/"), 30, interval=0.5)
    finally:
        process.terminate()
        try:
            _, errors = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
    return CheckResult("kubectl port-forward", pod, bool(answer),
                       answer or (errors or "no answer").strip()[:160])


def check_metrics(client: ApiClient, kubectl: Kubectl, names: list[str],
                  timeout: float = 120.0) -> CheckResult:
    """`kubectl top nodes` lists every node: metrics-server answers through the aggregation layer
    (its first figures need two scrapes). The wait polls the metrics API itself, a request each
    half second; kubectl, a process each time, runs once the figures are there."""
    deadline = time.monotonic() + timeout

    def served() -> bool:
        listing = client.get("/apis/metrics.k8s.io/v1beta1/nodes") or {}
        return set(names) <= {item["metadata"]["name"] for item in listing.get("items") or []}

    def listed() -> set[str] | None:
        result = kubectl("top", "nodes", timeout=30)
        seen = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
        return seen if result.returncode == 0 and set(names) <= seen else None

    _poll(served, timeout, interval=0.5)
    seen = _poll(listed, max(deadline - time.monotonic(), 0), interval=1.0)
    if seen:
        return CheckResult("kubectl top nodes", "cluster", True, f"{len(names)} node(s) with CPU and memory")
    last = kubectl("top", "nodes", timeout=30)
    return CheckResult("kubectl top nodes", "cluster", False,
                       (last.stderr or last.stdout).strip()[-300:] or "not every node listed")


def smoke_namespace() -> str:
    return f"provisioner-smoke-{secrets.token_hex(3)}"


def cluster_checks(client: ApiClient, kubeconfig: Path, *, node_names: list[str],
                   control_plane: list[str], schedulable: dict[str, str], dns_domain: str,
                   read_raw: Callable[[str], bytes | None], encryption_prefix: str,
                   workloads: bool = True) -> list[CheckResult]:
    """Every check; `workloads=False` keeps the quick ones (nodes Ready, the control plane's
    pods and /readyz) and leaves out those that run pods, Secrets and Services."""
    kubectl = Kubectl(kubeconfig)
    if not workloads:
        return check_nodes(client, node_names) + check_control_plane(client, control_plane)
    namespace = smoke_namespace()
    # Waited for beside the workload checks, whose pods wait for the nodes anyway: the nodes
    # becoming Ready (right after a create, their network agents are starting) and
    # metrics-server's first figures (two scrapes). Results keep this order.
    with ThreadPoolExecutor(max_workers=2) as background:
        nodes = background.submit(check_nodes, client, node_names)
        metrics = background.submit(check_metrics, client, kubectl, node_names)
        client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": namespace}})
        try:
            encryption = check_encryption(client, namespace, read_raw, encryption_prefix)
            workload = check_workload(client, kubectl, namespace, schedulable, dns_domain)
        finally:
            client.delete(f"/api/v1/namespaces/{namespace}")
        return (nodes.result() + check_control_plane(client, control_plane)
                + [encryption, *workload, metrics.result()])
