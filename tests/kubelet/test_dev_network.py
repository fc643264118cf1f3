"""`dev cluster` with networking (DevNodeCluster(network=True), provisioner/devnetwork.py): kube-proxy,
cluster DNS and the network agent on this host, driven with real kubectl. A pod reaches a ClusterIP
Service backed by another pod, by address and by its cluster.local name through the kube-dns Service
at 10.96.0.10; a default-deny NetworkPolicy cuts it off and deleting it lets traffic back; a second
networked dev cluster is refused with one message; after stop no KUBE-* or PROV-NP-* chain is left."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import pytest

from provisioner import devnetwork
from provisioner.dev import DevNodeCluster

from .conftest import wait_for

KUBECTL = str(Path(sys.prefix) / "bin" / "kubectl")
NS = f"devnet-{uuid.uuid4().hex[:6]}"
DENY_ALL = f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-all, namespace: {NS}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
"""


def _start_when_free(cluster: DevNodeCluster) -> None:
    """Another engineer's networked dev cluster may hold the machine's lock: wait for it."""
    deadline = time.monotonic() + 600
    while True:
        try:
            return cluster.start()
        except click.ClickException as error:
            if "another dev cluster with networking" not in error.message or \
                    time.monotonic() > deadline:
                raise
        time.sleep(1)


@pytest.fixture(scope="module")
def dev():
    root = Path(f"/tmp/kubelet-devnet-{uuid.uuid4().hex[:8]}")
    cluster = DevNodeCluster(root, node_name=f"devnet-{os.getpid() % 10000}", network=True,
                             log=lambda _: None)
    _start_when_free(cluster)
    try:
        kubectl(cluster, "create", "namespace", NS)
        kubectl(cluster, "run", "web", "-n", NS, "--image=busybox:latest", "--labels=app=web",
                "--restart=Never", "--", "sh", "-c",
                "echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
        kubectl(cluster, "run", "client", "-n", NS, "--image=busybox:latest",
                "--restart=Never", "--", "sh", "-c", "exec sleep 3600")
        kubectl(cluster, "expose", "pod", "web", "-n", NS, "--port=80", "--target-port=8080")
        for pod in ("web", "client"):
            wait_for(lambda pod=pod: kubectl(cluster, "get", "pod", pod, "-n", NS, "-o",
                                             "jsonpath={.status.phase}") == "Running",
                     240, what=f"pod {pod} Running")
        yield cluster
    finally:
        if cluster.procs or cluster.api.procs:      # the last test stops it itself
            cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def kubectl(cluster: DevNodeCluster, *args: str, stdin: str | None = None,
            check: bool = True) -> str:
    done = subprocess.run([KUBECTL, "--kubeconfig", str(cluster.api.kubeconfig), *args],
                          input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def fetch(cluster: DevNodeCluster, url: str) -> str | None:
    """The body the client pod gets for GET url (None when it cannot connect or resolve);
    through busybox nc: busybox wget crashes on some hosts."""
    host, port = (url.split("//")[1].rstrip("/").split(":") + ["80"])[:2]
    done = subprocess.run([KUBECTL, "--kubeconfig", str(cluster.api.kubeconfig), "exec", "-n", NS,
                           "client", "--", "sh", "-c",
                           f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} {port}'],
                          capture_output=True, text=True, timeout=60)
    head, _, body = done.stdout.partition("\n\n")       # text=True made \r\n newlines
    return body.strip() if done.returncode == 0 and head.startswith("HTTP/1.") else None


def test_pod_reaches_a_cluster_ip_service_backed_by_another_pod(dev):
    cluster_ip = kubectl(dev, "get", "service", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    assert cluster_ip.startswith("10.96.")
    assert wait_for(lambda: fetch(dev, f"http://{cluster_ip}/") == "hello-from-web", 60,
                    what="the Service answering through kube-proxy")


def test_pod_resolves_service_names_through_cluster_dns(dev):
    resolv = kubectl(dev, "exec", "-n", NS, "client", "--", "cat", "/etc/resolv.conf")
    assert f"nameserver {devnetwork.CLUSTER_DNS_IP}" in resolv
    assert kubectl(dev, "get", "service", "kube-dns", "-n", "kube-system", "-o",
                   "jsonpath={.spec.clusterIP}") == devnetwork.CLUSTER_DNS_IP
    cluster_ip = kubectl(dev, "get", "service", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    answer = wait_for(lambda: (r := subprocess.run(
        [KUBECTL, "--kubeconfig", str(dev.api.kubeconfig), "exec", "-n", NS, "client", "--",
         "nslookup", f"web.{NS}.svc.cluster.local"], capture_output=True, text=True,
        timeout=60)).returncode == 0 and cluster_ip in r.stdout and r.stdout, 60,
        what="an answer from the cluster DNS")
    assert devnetwork.CLUSTER_DNS_IP in answer          # the server that answered
    assert wait_for(lambda: fetch(dev, f"http://web.{NS}.svc.cluster.local/") == "hello-from-web",
                    60, what="the Service by name")


def test_default_deny_network_policy_blocks_the_service_until_deleted(dev):
    cluster_ip = kubectl(dev, "get", "service", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    url = f"http://{cluster_ip}/"
    assert wait_for(lambda: fetch(dev, url) == "hello-from-web", 60, what="traffic before")
    kubectl(dev, "apply", "-f", "-", stdin=DENY_ALL)
    try:
        wait_for(lambda: fetch(dev, url) is None, 60, what="the policy to cut traffic off")
    finally:
        kubectl(dev, "delete", "networkpolicy", "deny-all", "-n", NS)
    assert wait_for(lambda: fetch(dev, url) == "hello-from-web", 60, what="traffic after")


def test_a_second_networked_dev_cluster_is_refused(dev, tmp_path):
    other = DevNodeCluster(tmp_path / "second", network=True, log=lambda _: None)
    with pytest.raises(click.ClickException) as refused:
        other.start()
    assert "another dev cluster with networking runs on this machine" in refused.value.message
    assert str(dev.root) in refused.value.message and "--no-network" in refused.value.message
    assert not other.procs and not other.api.procs          # nothing was started


def test_stop_removes_every_chain_it_made(dev):
    assert any(chain.endswith("/KUBE-SERVICES") for chain in devnetwork.leftover_chains())
    dev.stop()
    assert devnetwork.leftover_chains() == []
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert "KUBE-" not in rules and "PROV-NP-" not in rules
