"""tests/kubelet: QoS classes and pod cgroups as kubelet lays them out (cgroupfs driver).

Real pods on the session kubelet (cgroupRoot /<CGROUP_PARENT>, see conftest): the files the
kernel shows under kubepods/ prove where each pod sits and what weight and limits it got, on
cgroup v1 (cpu.shares, cpu.cfs_quota_us, memory.limit_in_bytes) or v2 (cpu.weight, cpu.max,
memory.max), whichever this host has. The kubelet's arithmetic is checked against its formulas
in table tests.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest

from provisioner.components.kubelet import podcgroups, podspec
from provisioner.components.kubelet.config import ConfigError
from provisioner.components.runtime.container import cgroups

from .conftest import CGROUP_PARENT, pod_manifest, prepare_namespace, wait_for

MODE = cgroups.mode()


# -- the arithmetic, as kubelet's cm/helpers_linux.go and cgroup_manager_linux.go ----------

@pytest.mark.parametrize("milli_cpu, shares", [(0, 2), (1, 2), (250, 256), (1000, 1024),
                                               (1500, 1536)])
def test_milli_cpu_to_shares(milli_cpu, shares):
    assert podspec.milli_cpu_to_shares(milli_cpu) == shares


@pytest.mark.parametrize("shares, weight", [(2, 1), (256, 10), (1024, 39), (262144, 10000),
                                            (10**6, 10000)])
def test_shares_to_weight_is_kubelets_linear_map(shares, weight):
    assert cgroups.shares_to_weight(shares) == weight


def _pod(containers, init=()):
    return {"metadata": {"uid": "u1"},
            "spec": {"containers": list(containers), "initContainers": list(init)}}


def _c(requests=None, limits=None):
    return {"name": "c", "resources": {"requests": requests or {}, "limits": limits or {}}}


@pytest.mark.parametrize("pod, expected, group", [
    (_pod([_c()]), {"cpu_shares": 2}, "root/kubepods/besteffort/podu1"),
    (_pod([_c({"cpu": "250m"}), _c({"cpu": "250m", "memory": "10Mi"})]), {"cpu_shares": 512},
     "root/kubepods/burstable/podu1"),
    # every container declares a memory limit: the pod's group gets their sum
    (_pod([_c({"cpu": "100m"}, {"memory": "32Mi"}), _c(limits={"memory": "32Mi"})]),
     {"cpu_shares": 102, "memory": 64 << 20}, "root/kubepods/burstable/podu1"),
    (_pod([_c(limits={"cpu": "500m", "memory": "64Mi"})]),
     {"cpu_shares": 512, "cpu_quota": 50000, "memory": 64 << 20}, "root/kubepods/podu1"),
    # an init container asking more than the containers' sum sets the pod's request
    (_pod([_c(limits={"cpu": "200m", "memory": "16Mi"})],
          [_c(limits={"cpu": "1", "memory": "16Mi"})]),
     {"cpu_shares": 1024, "cpu_quota": 100000, "memory": 16 << 20}, "root/kubepods/podu1"),
])
def test_pod_resources_and_group(pod, expected, group):
    assert podcgroups.pod_resources(pod) == expected
    assert podcgroups.pod_group("/root", pod) == group


def test_the_systemd_cgroup_driver_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match='"cgroupDriver".*use cgroupfs'):
        podcgroups.PodCgroups({"cgroupDriver": "systemd"})


# -- real pods ---------------------------------------------------------------------------

def _read(controller: str, group: str, name: str) -> str:
    top = cgroups.CGROUP_ROOT if MODE == "v2" else os.path.join(cgroups.CGROUP_ROOT, controller)
    with open(os.path.join(top, group, name)) as source:
        return source.read().strip()


def _weight(group: str) -> int:
    """The group's CPU weight expressed as v1 shares would be read (v2: cpu.weight)."""
    return int(_read("cpu", group, "cpu.weight" if MODE == "v2" else "cpu.shares"))


def _expected_weight(shares: int) -> int:
    return cgroups.shares_to_weight(shares) if MODE == "v2" else shares


def _memory_limit(group: str) -> str:
    return _read("memory", group, "memory.max" if MODE == "v2" else "memory.limit_in_bytes")


def _cpu_quota(group: str) -> int:
    if MODE == "v2":
        return int(_read("cpu", group, "cpu.max").split()[0])
    return int(_read("cpu", group, "cpu.cfs_quota_us"))


def _running(api, namespace, name):
    pod = api.read_namespaced_pod(name, namespace)
    statuses = pod.status.container_statuses or []
    if pod.status.phase == "Running" and statuses and statuses[0].state.running:
        return pod
    return None


@pytest.fixture(scope="module")
def qos_pods(api, kubelet):
    """One pod of each QoS class, Running (shared: the tests only read)."""
    namespace = f"kq-{uuid.uuid4().hex[:8]}"
    prepare_namespace(api, kubelet.cluster, namespace)
    sleep = {"image": "busybox:latest", "command": ["sleep", "3600"]}
    pods = {
        "burstable": [{"name": "main", **sleep,
                       "resources": {"requests": {"cpu": "250m", "memory": "16Mi"}}}],
        "besteffort": [{"name": "main", **sleep}],
        "guaranteed": [{"name": "main", **sleep, "resources": {
            "limits": {"cpu": "500m", "memory": "64Mi"},
            "requests": {"cpu": "500m", "memory": "64Mi"}}}],
    }
    for name, containers in pods.items():
        api.create_namespaced_pod(namespace, pod_manifest(name, kubelet.node, containers))
    running = {name: wait_for(lambda n=name: _running(api, namespace, n), 90,
                              what=f"pod {name} Running ({kubelet.log})") for name in pods}
    yield namespace, running
    for name in pods:
        api.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    api.delete_namespace(namespace)


def _groups(pod, qos_dir: str) -> tuple[str, str]:
    """(the pod's group, its container's group) relative to the hierarchy root."""
    kubepods = f"{CGROUP_PARENT}/kubepods"
    pod_group = "/".join(p for p in (kubepods, qos_dir, f"pod{pod.metadata.uid}") if p)
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    return pod_group, f"{pod_group}/{container_id}"


def test_each_pod_reports_its_qos_class(qos_pods):
    _namespace, pods = qos_pods
    assert {name: pod.status.qos_class for name, pod in pods.items()} == {
        "burstable": "Burstable", "besteffort": "BestEffort", "guaranteed": "Guaranteed"}


def test_a_burstable_pod_sits_under_kubepods_burstable_weighted_by_its_request(qos_pods):
    _namespace, pods = qos_pods
    pod_group, container_group = _groups(pods["burstable"], "burstable")
    assert _weight(container_group) == _expected_weight(256)      # 250m: 256 shares
    assert _weight(pod_group) == _expected_weight(256)
    # the burstable group's weight follows the sum of its pods' requests, this one's included
    assert _weight(f"{CGROUP_PARENT}/kubepods/burstable") >= _expected_weight(256)
    # no memory limit declared: the pod's group is as unlimited as kubepods above it
    assert _memory_limit(pod_group) == _memory_limit(f"{CGROUP_PARENT}/kubepods")


def test_a_best_effort_pod_sits_under_kubepods_besteffort_with_the_minimum_weight(qos_pods):
    _namespace, pods = qos_pods
    pod_group, container_group = _groups(pods["besteffort"], "besteffort")
    assert _weight(container_group) == _expected_weight(2)
    assert _weight(pod_group) == _expected_weight(2)
    assert _weight(f"{CGROUP_PARENT}/kubepods/besteffort") == _expected_weight(2)


def test_a_guaranteed_pod_sits_directly_under_kubepods_limited_to_its_limits(qos_pods):
    _namespace, pods = qos_pods
    pod_group, container_group = _groups(pods["guaranteed"], "")
    for group in (pod_group, container_group):
        assert _memory_limit(group) == str(64 << 20)
        assert _cpu_quota(group) == 50000
        assert _weight(group) == _expected_weight(512)


def test_a_deleted_pods_cgroup_is_removed(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest("short", kubelet.node, [
        {"name": "main", "image": "busybox:latest", "command": ["sleep", "3600"],
         "resources": {"requests": {"cpu": "100m"}}}]))
    pod = wait_for(lambda: _running(api, namespace, "short"), 90, what="pod short Running")
    pod_group, _ = _groups(pod, "burstable")
    assert _weight(pod_group) == _expected_weight(102)
    burstable = f"{CGROUP_PARENT}/kubepods/burstable"
    with_short = _weight(burstable)          # the sum of its pods' requests, this one's in it
    api.delete_namespaced_pod("short", namespace, grace_period_seconds=0)
    cpu_top = cgroups.CGROUP_ROOT if MODE == "v2" else os.path.join(cgroups.CGROUP_ROOT, "cpu")
    wait_for(lambda: not os.path.exists(os.path.join(cpu_top, pod_group)), 60,
             what=f"{pod_group} removed")
    wait_for(lambda: _weight(burstable) < with_short, 30,
             what="the burstable group's weight without the deleted pod's request")


def test_a_cpu_limit_of_290m_is_a_quota_of_29000_not_28999():
    """0.29 * 100000 is 28999.999... in floating point: the quota is rounded, not truncated."""
    group = f"{CGROUP_PARENT}/quota-{uuid.uuid4().hex[:6]}"
    try:
        cgroups.ensure_group(group, cpus=podcgroups.milli_cpu_to_quota(290) / 100000)
        assert _cpu_quota(group) == 29000
    finally:
        cgroups.remove_group(group)
        with contextlib.suppress(OSError):      # the parent too, when no session uses it
            cgroups.remove_group(CGROUP_PARENT, timeout=0)
