"""Session fixtures for the controller-manager suite: ONE real etcd + API server and ONE real
`kube-controller-manager` process (all controllers kubeadm enables) shared by every test that only
watches what the controllers do; a unique namespace per test; `kubelet`, a stand-in that reports
pods Running and Ready through the API as a kubelet would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioner.dev import DevCluster, die_with_parent
from tests.apiserver.conftest import Kubectl
from tests.conftest import dev_cluster

KCM = str(Path(sys.prefix) / "bin" / "kube-controller-manager")


def eventually(check, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll `check` until it returns a truthy value; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def start_kcm(cluster: DevCluster, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([KCM, "--kubeconfig", str(cluster.kubeconfig), "--secure-port", "0",
                             "--leader-elect-retry-period", "500ms", *args],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = dev_cluster(tmp_path_factory.mktemp("controllers"))
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def kcm(cluster):
    """The shared controller manager, as kubeadm runs it."""
    ca = cluster.pki / "ca"
    proc = start_kcm(cluster, cluster.root / "logs" / "kcm.log", "--controllers=*,bootstrapsigner,tokencleaner",
                     "--root-ca-file", str(cluster.pki / "ca.crt"),
                     "--cluster-signing-cert-file", f"{ca}.crt", "--cluster-signing-key-file", f"{ca}.key",
                     "--allocate-node-cidrs", "--cluster-cidr", "10.244.0.0/16",
                     "--service-account-private-key-file", str(cluster.pki / "sa.key"),
                     "--node-monitor-grace-period", "6s", "--node-monitor-period", "1s")
    yield proc
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def kubectl(cluster, tmp_path_factory):
    return Kubectl(cluster, tmp_path_factory.mktemp("kubectl-home"))


@pytest.fixture(scope="session")
def core(cluster):
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))


@pytest.fixture(scope="session")
def apps(cluster):
    from kubernetes import client, config

    return client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))


@pytest.fixture
def ns(kubectl, kcm, request):
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") + "-" + os.urandom(2).hex()
    kubectl("create", "namespace", name)
    return name


class FakeKubelet:
    """Reports every pod of a namespace Running and Ready (as a kubelet would once containers
    start) while running; finishes graceful deletions of pods bound to a node."""

    def __init__(self, core, namespace: str):
        self.core, self.namespace = core, namespace
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "FakeKubelet":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)

    def _loop(self) -> None:
        from kubernetes.client.rest import ApiException

        while not self.stop.is_set():
            try:
                self.ready_all()
            except ApiException:
                pass
            self.stop.wait(0.2)

    def ready_all(self) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for p in self.core.list_namespaced_pod(self.namespace).items:
            if p.metadata.deletion_timestamp:
                if p.spec.node_name:
                    self.core.delete_namespaced_pod(p.metadata.name, self.namespace, grace_period_seconds=0)
                continue
            if p.status.phase != "Running":
                self.core.patch_namespaced_pod_status(p.metadata.name, self.namespace, {"status": {
                    "phase": "Running", "podIP": "10.244.0.%d" % (hash(p.metadata.name) % 250 + 2),
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}})


@pytest.fixture
def kubelet(core, ns):
    with FakeKubelet(core, ns) as k:
        yield k
