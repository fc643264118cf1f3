"""tests/kubelet: ONE real etcd + API server (DevCluster), ONE real runtime daemon on its own
root, socket, bridge (pkub<N>) and subnet (10.213.<N>.0/24), and ONE kubelet process for the
session; tests that only read share them. Tests drive the cluster with the official client."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from provisioner.components.runtime.client import RuntimeClient
from provisioner.components.runtime.net import Network
from provisioner.dev import DevCluster, terminate
from tests.conftest import dev_cluster, free_port

_SESSION = 20 + os.getpid() % 200
BRIDGE = f"pkub{_SESSION}"
SUBNET = f"10.213.{_SESSION}.0/24"
CGROUP_PARENT = f"provisioner-kubelet-tests-{_SESSION}"
NODE = f"kubelet-test-{_SESSION}"


def wait_for(check, timeout: float = 60, interval: float = 0.2, what: str = "condition",
             alive: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `check` until it returns something truthy; its last value or an AssertionError, at
    once (with the end of `log`) if the process `alive` has exited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"waiting for {what}: {alive.args[0]} exited with "
                                 f"{alive.returncode}\n{tail}")
        try:
            last = check()
        except Exception as error:  # noqa: BLE001 - not there yet
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class RuntimeDaemon:
    def __init__(self, base: Path):
        self.base = base
        self.root = str(base / "root")
        self.socket = str(base / "runtime.sock")
        self.client = RuntimeClient(self.socket, timeout=120)
        self.log = base / "runtime.log"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provisioner.components.runtime.cli", "daemon", "--root",
             self.root, "--socket", self.socket, "--bridge", BRIDGE, "--subnet", SUBNET,
             "--cgroup-parent", CGROUP_PARENT,
             # pods on this session's own bridge, whatever CNI configuration the host has
             # installed (a distribution's conflist would otherwise be picked up by "auto")
             "--pod-network", "bridge"], stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.client.version(), 60, what="the runtime daemon",
                 alive=self.process, log=self.log)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            for pod in self.client.pods():
                self.client.remove_pod(pod["id"])
            for container in self.client.containers(all=True):
                self.client.remove(container["Id"], force=True)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        Network(bridge=BRIDGE, subnet=SUBNET,
                state_dir=os.path.join(self.root, "network")).teardown_all()
        for top in ["/sys/fs/cgroup", *(os.path.join("/sys/fs/cgroup", d)
                                         for d in os.listdir("/sys/fs/cgroup"))]:
            remove_cgroup_tree(os.path.join(top, CGROUP_PARENT))


def remove_cgroup_tree(path: str) -> None:
    """A cgroup and the groups below it (the kubelets' kubepods/...), deepest first."""
    if not os.path.isdir(path):
        return
    for directory, _subdirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


class KubeletProcess:
    """A kubelet process with its own root dir, static pod dir and port."""

    def __init__(self, base: Path, runtime: RuntimeDaemon, cluster: DevCluster | None,
                 node: str = NODE, extra_config: str = "", bootstrap: Path | None = None):
        self.base = base
        self.runtime = runtime
        self.cluster = cluster
        self.node = node
        self.port = free_port()
        self.root_dir = base / "kubelet"
        self.manifests = base / "manifests"
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.log = base / "kubelet.log"
        self.config = base / "kubelet-config.yaml"
        ca = f"    clientCAFile: {cluster.pki / 'ca.crt'}\n" if cluster else ""
        self.config.write_text(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            f"staticPodPath: {self.manifests}\nport: {self.port}\nclusterDNS: [10.96.0.10]\n"
            f"clusterDomain: cluster.local\nauthentication:\n  x509:\n{ca or '    {}'}\n"
            f"cgroupRoot: /{CGROUP_PARENT}\n{extra_config}")
        self.kubeconfig = None
        self.bootstrap = bootstrap
        if bootstrap is not None:            # TLS bootstrap writes this kubeconfig
            self.kubeconfig = base / "kubelet.conf"
        elif cluster is not None:
            self.kubeconfig = cluster.user_kubeconfig(f"system:node:{node}", ("system:nodes",))

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "provisioner.components.kubelet.main", "--config",
               str(self.config), "--root-dir", str(self.root_dir), "--hostname-override",
               self.node, "--node-ip", "127.0.0.1", "--container-runtime-endpoint",
               f"unix://{self.runtime.socket}", "--node-labels", "test.provisioner.io/role=kubelet"]
        if self.kubeconfig:
            cmd += ["--kubeconfig", str(self.kubeconfig)]
        if self.bootstrap:
            cmd += ["--bootstrap-kubeconfig", str(self.bootstrap), "--cert-dir",
                    str(self.base / "pki")]
        return cmd

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=open(self.log, "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        terminate(self.process, grace=30)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = dev_cluster(tmp_path_factory.mktemp("kubelet-api"))
    c.write_pki()
    c.extra_args += c.kubelet_client_args()       # the API server proxies logs/exec to kubelets
    c.start(fresh_pki=False)
    yield c
    c.stop()


@pytest.fixture(scope="session")
def runtime(tmp_path_factory):
    base = Path(f"/tmp/kubelet-tests-{uuid.uuid4().hex[:8]}")
    base.mkdir()
    daemon = RuntimeDaemon(base)
    daemon.start()
    yield daemon
    daemon.stop()
    if not os.environ.get("KUBELET_TESTS_KEEP"):     # set it to read the logs after a run
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def kubelet(cluster, runtime):
    process = KubeletProcess(runtime.base / "node", runtime, cluster)
    process.start()
    api = core_api(cluster)
    wait_for(lambda: node_ready(api, process.node), 60, what=f"node {process.node} Ready "
             f"({process.log})", alive=process.process, log=process.log)
    yield process
    process.stop()


def node_ready(api, name: str) -> bool:
    node = api.read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def core_api(cluster: DevCluster) -> k8s.CoreV1Api:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


@pytest.fixture(scope="session")
def api(cluster) -> k8s.CoreV1Api:
    return core_api(cluster)


def prepare_namespace(api, cluster: DevCluster, name: str) -> None:
    """A namespace with what the controller manager adds to every namespace (pods mount both
    through the kube-api-access volume the API server injects); no controller manager runs
    in these tests."""
    api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    with contextlib.suppress(k8s.ApiException):
        api.create_namespaced_config_map(name, k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="kube-root-ca.crt"),
            data={"ca.crt": (cluster.pki / "ca.crt").read_text()}))
    with contextlib.suppress(k8s.ApiException):
        api.create_namespaced_service_account(name, k8s.V1ServiceAccount(
            metadata=k8s.V1ObjectMeta(name="default")))


@pytest.fixture
def namespace(api, cluster):
    name = f"kt-{uuid.uuid4().hex[:8]}"
    prepare_namespace(api, cluster, name)
    yield name
    with contextlib.suppress(Exception):
        for pod in api.list_namespaced_pod(name).items:
            api.delete_namespaced_pod(pod.metadata.name, name, grace_period_seconds=0)
        api.delete_namespace(name)


def pod_manifest(name: str, node: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": containers,
                     "terminationGracePeriodSeconds": 2, **spec}}
