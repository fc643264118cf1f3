"""A fresh etcd + API server and a real kube-scheduler process per test (nodes are cluster-wide,
so tests must not see each other's), with Node objects standing in for kubelets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.dev import DevCluster
from tests.conftest import dev_cluster, free_port

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
SCHEDULER = str(Path(sys.prefix) / "bin" / "kube-scheduler")


def eventually(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {result!r})")
        time.sleep(0.1)


class Env:
    def __init__(self, cluster: DevCluster, root: Path):
        self.cluster = cluster
        self.root = root
        self.env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), HOME=str(root), KUBECACHEDIR=str(root / "kc"))
        self.procs: list[subprocess.Popen] = []
        self.identity: Path | None = None

    # -- kubectl ------------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=self.env,
                              timeout=60)
        if check and proc.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def apply(self, *objs: dict) -> None:
        self.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def pod(self, name: str, ns: str = "default") -> dict:
        return self.get("pod", name, "-n", ns)

    def node_of(self, name: str, ns: str = "default") -> str | None:
        return self.pod(name, ns)["spec"].get("nodeName")

    def wait_bound(self, name: str, ns: str = "default", timeout: float = 30) -> str:
        return eventually(lambda: self.node_of(name, ns), timeout, f"pod {name} bound")

    def events(self, name: str, ns: str = "default") -> list[dict]:
        return [e for e in self.get("events", "-n", ns)["items"] if e["involvedObject"]["name"] == name]

    def failed_message(self, name: str, ns: str = "default", timeout: float = 30) -> str:
        def msg():
            cond = [c for c in self.pod(name, ns)["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
            return cond and cond[0]["status"] == "False" and cond[0]["message"]
        return eventually(msg, timeout, f"pod {name} marked unschedulable")

    # -- processes ----------------------------------------------------------------------------
    def scheduler(self, *args: str, port: int | None = None, wait: bool = True) -> subprocess.Popen:
        port = port or free_port()
        log = open(self.root / f"scheduler-{len(self.procs)}.log", "ab")
        if self.identity is None:  # the scheduler's own identity, so its RBAC role is exercised too
            self.identity = self.cluster.user_kubeconfig("system:kube-scheduler")
        proc = subprocess.Popen([SCHEDULER, "--kubeconfig", str(self.identity), "--secure-port", str(port),
                                 "--bind-address", "127.0.0.1", *args], stdout=log, stderr=subprocess.STDOUT)
        proc.port = port
        self.procs.append(proc)
        if wait:
            import ssl
            import urllib.request
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

            def ready():
                assert proc.poll() is None, f"kube-scheduler exited {proc.returncode}: {self.logs()}"
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=2) as r:
                        return r.status == 200
                except OSError:
                    return False
            eventually(ready, 30, "kube-scheduler ready")
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.root.glob("scheduler-*.log")))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def node(name: str, cpu: str = "4", memory: str = "32Gi", pods: int = 110, labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, images: list | None = None) -> dict:
    cap = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"capacity": cap, "allocatable": cap, "images": images or [],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str | None = None, memory: str | None = None, ns: str = "default", **spec) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    labels = spec.pop("labels", {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": requests}}], **spec}}


@pytest.fixture
def env(tmp_path):
    cluster = dev_cluster(tmp_path / "cluster")
    cluster.start()
    e = Env(cluster, tmp_path)
    yield e
    e.stop()
    cluster.stop()
