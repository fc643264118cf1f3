"""Which hosts `remove-nodes` takes out: workers the running cluster had and the spec dropped."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioner.phases.remove_nodes import _evictable, removed_workers
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings

SSH = SSHSettings(user="root", port=22, key=Path("/k"))
RUNNING = {"spec": {"hosts": [
    {"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]},
    {"name": "w1", "address": "10.0.0.21", "roles": ["worker"]},
    {"name": "w2", "address": "10.0.0.22", "roles": ["worker"]},
    {"name": "e3", "address": "10.0.0.23", "roles": ["etcd", "worker"]},
]}}


def context(*names: str) -> SimpleNamespace:
    hosts = tuple(Host(h["name"], h["address"], tuple(h["roles"]), SSH)
                  for h in RUNNING["spec"]["hosts"] if h["name"] in names)
    spec = ClusterSpec(name="lab", source=Path("/c.yaml"), hosts=hosts,
                       networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                                             ipaddress.ip_network("10.96.0.0/12")),
                       etcd=EtcdSettings(), artifacts=Artifacts())
    return SimpleNamespace(spec=spec)


def test_a_dropped_worker_is_removed_with_the_specs_ssh_settings():
    [gone] = removed_workers(context("cp1", "w1", "e3"), RUNNING)
    assert (gone.name, gone.address, gone.roles, gone.ssh) == ("w2", "10.0.0.22", ("worker",), SSH)


def test_nothing_is_removed_for_an_unchanged_spec_or_a_cluster_not_running():
    assert removed_workers(context("cp1", "w1", "w2", "e3"), RUNNING) == []
    assert removed_workers(context("cp1"), None) == []


def test_an_etcd_member_is_never_removed_this_way():
    assert [h.name for h in removed_workers(context("cp1"), RUNNING)] == ["w1", "w2"]


@pytest.mark.parametrize("pod, evictable", [
    ({"metadata": {}, "status": {"phase": "Running"}}, True),
    ({"metadata": {"ownerReferences": [{"kind": "DaemonSet"}]}, "status": {}}, False),
    ({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}, "status": {}}, False),
    ({"metadata": {}, "status": {"phase": "Succeeded"}}, False),
])
def test_drain_leaves_daemonset_mirror_and_finished_pods_as_kubectl_drain_does(pod, evictable):
    assert _evictable(pod) is evictable
