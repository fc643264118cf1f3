"""tests/network: CNI, kube-proxy, DNS and the network agent on real namespaces, veths, bridges and
iptables. Everything global is named per test session (N from the pytest process): bridges
`cnr<N>`/`cnp<N>`, subnets 10.196.<N>.0/24 and 10.195.<N>.0/24, a runtime daemon of its own with
its CNI configuration, plugin and cache directories under the session's temporary directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from provisioner.components.runtime.net import Network
from provisioner.dev import DevCluster
from tests.conftest import dev_cluster
from tests.runtime.daemon.conftest import CGROUP_PARENT, CLI, Daemon

SESSION = 20 + os.getpid() % 200
REFERENCE_BRIDGE = f"cnr{SESSION}"
REFERENCE_SUBNET = f"10.196.{SESSION}.0/24"
OWN_BRIDGE = f"cnp{SESSION}"
OWN_SUBNET = f"10.195.{SESSION}.0/24"
FALLBACK_BRIDGE = f"cnf{SESSION}"          # the daemon's own bridge (plain containers)
FALLBACK_SUBNET = f"10.194.{SESSION}.0/24"
REFERENCE_PLUGINS = "/usr/lib/cni"         # Debian's containernetworking-plugins
KUBECTL = os.path.join(sys.prefix, "bin", "kubectl")
OWN_PLUGIN_TYPES = ("provisioner-bridge", "provisioner-host-local", "provisioner-portmap",
                    "provisioner-loopback")


@pytest.fixture(scope="session", autouse=True)
def _require_root():
    assert os.geteuid() == 0, "the network tests need root (bridges, namespaces, iptables)"


class CniDaemon(Daemon):
    """A runtime daemon whose pods get their network through CNI from directories of the test."""

    def __init__(self, base: str):
        super().__init__(os.path.join(base, "root"), os.path.join(base, "runtime.sock"))
        self.conf_dir = os.path.join(base, "net.d")
        self.bin_dir = os.path.join(base, "bin")
        self.cache_dir = os.path.join(base, "cache")
        for directory in (self.conf_dir, self.bin_dir):
            os.makedirs(directory, exist_ok=True)
        script = os.path.join(os.path.dirname(sys.executable), "provisioner-cni")
        for plugin in OWN_PLUGIN_TYPES:             # installed as an operator would: links
            os.symlink(script, os.path.join(self.bin_dir, plugin))

    def command(self) -> list[str]:
        return [*CLI[1:], "daemon", "--root", self.root, "--socket", self.socket,
                "--bridge", FALLBACK_BRIDGE, "--subnet",
                FALLBACK_SUBNET, "--cgroup-parent", CGROUP_PARENT, "--pod-network", "cni",
                "--cni-conf-dir", self.conf_dir, "--cni-cache-dir", self.cache_dir,
                "--cni-bin-dir", f"{self.bin_dir}:{REFERENCE_PLUGINS}"]

    def sandbox_netns(self) -> list[str]:
        """Pods' netns handles this daemon holds (its network state's endpoint records)."""
        endpoints = os.path.join(self.root, "network", FALLBACK_BRIDGE, "endpoints")
        with contextlib.suppress(FileNotFoundError):
            return sorted(os.listdir(endpoints))
        return []

    def use_network(self, conflist: dict) -> None:
        """Install one network configuration list (the only one) in the daemon's net.d."""
        for name in os.listdir(self.conf_dir):
            os.unlink(os.path.join(self.conf_dir, name))
        with open(os.path.join(self.conf_dir, "10-test.conflist"), "w") as sink:
            json.dump(conflist, sink)


@pytest.fixture(scope="session")
def cni_daemon(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("cni-runtime"))
    daemon = CniDaemon(base)
    daemon.start()
    yield daemon
    try:
        for pod in daemon.client.pods():
            daemon.client.remove_pod(pod["id"])
        for container in daemon.client.containers(all=True):
            daemon.client.remove(container["Id"], force=True)
    finally:
        if daemon.process.poll() is None:
            daemon.stop()
        Network(bridge=FALLBACK_BRIDGE, subnet=FALLBACK_SUBNET,
                state_dir=os.path.join(daemon.root, "network")).teardown_all()
        for bridge in (REFERENCE_BRIDGE, OWN_BRIDGE):
            subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pods(cni_daemon):
    """Pod sandboxes a test creates (ids); removed when it ends, pass or fail."""
    created: list[str] = []
    yield created
    for pod_id in created:
        with contextlib.suppress(Exception):
            cni_daemon.client.remove_pod(pod_id)


def wait_for(predicate, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True,
                          check=False).returncode == 0


def bridge_ports(bridge: str) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(os.listdir(f"/sys/class/net/{bridge}/brif"))
    return []


@pytest.fixture(scope="session")
def api(tmp_path_factory):
    """One real etcd + API server on loopback for the kube-proxy and DNS tests."""
    cluster = dev_cluster(tmp_path_factory.mktemp("network-api"))
    cluster.start()
    yield cluster
    cluster.stop()


def kubectl(api: DevCluster, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": str(api.kubeconfig)}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
