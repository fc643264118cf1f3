"""The horizontal pod autoscaler end to end on `provisioner dev cluster` (etcd, the API server with the
aggregation layer, the scheduler, the controller manager, the runtime, a kubelet and metrics-server):
a Deployment whose pod burns CPU scales up under `kubectl autoscale`, seen with real kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from provisioner.dev import DevNodeCluster

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")


def wait_for(check, timeout: float, what: str, describe=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {describe() if describe else last!r}")


@pytest.fixture(scope="module")
def dev():
    root = Path(f"/tmp/hpa-dev-{uuid.uuid4().hex[:8]}")
    cluster = DevNodeCluster(root, node_name=f"hpa-node-{os.getpid() % 10000}", log=lambda _: None)
    cluster.start()
    yield cluster
    cluster.stop()
    subprocess.run(["rm", "-rf", str(root)], check=False)


def kubectl(dev, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", str(dev.api.kubeconfig), *args], capture_output=True,
                          text=True, timeout=60)


def test_a_cpu_burning_deployment_scales_up(dev):
    ns = f"hpa-{uuid.uuid4().hex[:6]}"
    assert kubectl(dev, "create", "namespace", ns).returncode == 0
    made = kubectl(dev, "create", "deployment", "burn", "-n", ns, "--image=busybox:latest", "--",
                   "sh", "-c", "while :; do :; done")
    assert made.returncode == 0, made.stderr
    # 20m requested, up to 100m used: far above the 50% target even on a busy machine
    assert kubectl(dev, "set", "resources", "deployment", "burn", "-n", ns, "--requests=cpu=20m",
                   "--limits=cpu=100m").returncode == 0
    auto = kubectl(dev, "autoscale", "deployment", "burn", "-n", ns, "--cpu=50%", "--min=1", "--max=3")
    assert auto.returncode == 0, auto.stderr

    def hpa() -> dict:
        return json.loads(kubectl(dev, "get", "hpa", "burn", "-n", ns, "-o", "json").stdout or "{}")
    # the metrics pipeline needs a sample window after the pod is Ready, then one HPA sync; how far
    # it scales depends on the CPU the pod gets on this machine, so: more than one replica
    scaled = wait_for(lambda: (h := hpa()) and (h.get("status") or {}).get("desiredReplicas", 0) >= 2 and h,
                      240, "the HPA to scale up", describe=hpa)
    current = scaled["status"]["currentMetrics"][0]["resource"]
    assert current["name"] == "cpu" and current["current"]["averageUtilization"] > 50
    conditions = {c["type"]: c for c in scaled["status"]["conditions"]}
    assert (conditions["ScalingActive"]["status"], conditions["ScalingActive"]["reason"]) == \
        ("True", "ValidMetricFound")
    assert conditions["AbleToScale"]["status"] == "True"
    wanted = scaled["status"]["desiredReplicas"]
    wait_for(lambda: json.loads(kubectl(dev, "get", "deployment", "burn", "-n", ns, "-o", "json").stdout)
             ["spec"]["replicas"] >= wanted, 60, f"the Deployment scaled to {wanted}")
    row = kubectl(dev, "get", "hpa", "burn", "-n", ns, "--no-headers").stdout.split()
    assert row[1] == "Deployment/burn" and row[2] == "cpu:" and row[3].endswith("%/50%"), row
    events = json.loads(kubectl(dev, "get", "events", "-n", ns, "-o", "json").stdout)["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert any(m.startswith("New size: ") and "cpu resource utilization (percentage of request) above target" in m
               for m in rescales), rescales
    kubectl(dev, "delete", "namespace", ns, "--wait=false")
