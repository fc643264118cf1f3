"""Pod security settings seen from inside real containers: seccomp profiles, pod sysctls (and
the SysctlForbidden rejection), user namespaces (hostUsers: false) and procMount."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from .conftest import pod_manifest, wait_for

SLEEP = ["sleep", "3600"]


def running_ids(api, namespace, name, count):
    """The runtime ids of the pod's containers by name, once all `count` of them run."""
    def check():
        statuses = api.read_namespaced_pod(name, namespace).status.container_statuses or []
        if len(statuses) == count and all(s.state.running for s in statuses):
            return {s.name: s.container_id.split("://")[1] for s in statuses}
        return None
    return wait_for(check, 90, what=f"pod {name} running")


def sh(kubelet, container_id, script):
    code, out = kubelet.runtime.client.exec_collect(container_id, ["sh", "-c", script])
    return code, out.decode(errors="replace")


def test_seccomp_profiles_and_safe_sysctls(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest(
        "seccomp", kubelet.node,
        [{"name": "default", "image": "busybox:latest", "command": SLEEP},
         {"name": "unconfined", "image": "busybox:latest", "command": SLEEP,
          "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
        securityContext={"seccompProfile": {"type": "RuntimeDefault"},
                         "sysctls": [{"name": "net.ipv4.tcp_fin_timeout", "value": "33"}]}))
    ids = running_ids(api, namespace, "seccomp", 2)
    code, out = sh(kubelet, ids["default"], "grep Seccomp: /proc/self/status")
    assert out.split() == ["Seccomp:", "2"], out
    code, out = sh(kubelet, ids["default"], "unshare -U true")
    assert code != 0, out                     # the default profile refuses new user namespaces
    code, out = sh(kubelet, ids["unconfined"], "grep Seccomp: /proc/self/status")
    assert out.split() == ["Seccomp:", "0"], out
    code, out = sh(kubelet, ids["unconfined"], "unshare -U true")
    assert code == 0, out
    for container_id in ids.values():         # pod sysctls apply to every container
        assert sh(kubelet, container_id, "cat /proc/sys/net/ipv4/tcp_fin_timeout")[1] == "33\n"


def test_a_pod_asking_for_an_unsafe_sysctl_is_rejected(api, kubelet, namespace):
    api.create_namespaced_pod(namespace, pod_manifest(
        "unsafe", kubelet.node, [{"name": "main", "image": "busybox:latest", "command": SLEEP}],
        securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}))
    pod = wait_for(lambda: (p := api.read_namespaced_pod("unsafe", namespace)).status.phase ==
                   "Failed" and p, 60, what="the pod rejected")
    assert pod.status.reason == "SysctlForbidden"
    assert pod.status.message == 'Pod was rejected: forbidden sysctl: "kernel.msgmax" ' \
                                 'not allowlisted'
    assert not pod.status.container_statuses
    events = api.list_namespaced_event(namespace).items
    assert "SysctlForbidden" in {e.reason for e in events}


@pytest.fixture
def foreign_file():
    """A host file only a host user outside any pod's id range may read."""
    directory = f"/tmp/kubelet-security-{uuid.uuid4().hex[:8]}"
    os.makedirs(directory)
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "secret")
    with open(path, "w") as out:
        out.write("host secret\n")
    os.chmod(path, 0o600)
    os.chown(path, 200000, 200000)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_host_users_false_runs_the_pod_as_unprivileged_host_ids(api, kubelet, namespace,
                                                                foreign_file):
    volume = {"name": "host", "hostPath": {"path": foreign_file, "type": "Directory"}}
    mount = [{"name": "host", "mountPath": "/host"}]
    api.create_namespaced_pod(namespace, pod_manifest(
        "userns", kubelet.node,
        [{"name": "default", "image": "busybox:latest", "command": SLEEP, "volumeMounts": mount},
         {"name": "unmasked", "image": "busybox:latest", "command": SLEEP,
          "securityContext": {"procMount": "Unmasked"}}],
        hostUsers=False, volumes=[volume]))
    api.create_namespaced_pod(namespace, pod_manifest(
        "host-users", kubelet.node,
        [{"name": "main", "image": "busybox:latest", "command": SLEEP, "volumeMounts": mount}],
        volumes=[volume]))
    ids = running_ids(api, namespace, "userns", 2)
    host_ids = running_ids(api, namespace, "host-users", 1)

    code, out = sh(kubelet, ids["default"], "id -u; cat /proc/self/uid_map")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "0", out           # root inside...
    inside, outside, size = lines[1].split()
    assert (inside, size) == ("0", "65536") and int(outside) >= 65536, out   # ...not on the host
    pid = kubelet.runtime.client.inspect(ids["default"])["State"]["Pid"]
    with open(f"/proc/{pid}/status") as status:
        uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
    assert all(int(uid) == int(outside) for uid in uids)

    code, out = sh(kubelet, ids["default"], "cat /host/secret")
    assert code != 0 and "Permission denied" in out, out
    code, out = sh(kubelet, host_ids["main"], "cat /host/secret")   # host root may
    assert (code, out) == (0, "host secret\n")

    # every container of the pod shares one id block
    assert sh(kubelet, ids["unmasked"], "cat /proc/self/uid_map")[1] == \
        sh(kubelet, ids["default"], "cat /proc/self/uid_map")[1]
    # procMount: Default mounts /proc/sys read-only (and masks paths), Unmasked leaves /proc be
    masked = "grep -c ' /proc/sys proc ro,' /proc/mounts"
    assert int(sh(kubelet, ids["default"], masked)[1]) >= 1
    assert int(sh(kubelet, ids["unmasked"], masked)[1]) == 0


def test_localhost_profiles_come_from_the_kubelets_seccomp_directory(api, kubelet, namespace):
    directory = kubelet.root_dir / "seccomp" / "test"
    directory.mkdir(parents=True, exist_ok=True)
    name = f"no-mkdir-{uuid.uuid4().hex[:8]}.json"
    (directory / name).write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], '
        '"action": "SCMP_ACT_ERRNO"}]}')
    api.create_namespaced_pod(namespace, pod_manifest(
        "localhost", kubelet.node,
        [{"name": "main", "image": "busybox:latest", "command": SLEEP,
          "securityContext": {"seccompProfile": {"type": "Localhost",
                                                 "localhostProfile": f"test/{name}"}}},
         {"name": "escape", "image": "busybox:latest", "command": SLEEP,
          "securityContext": {"seccompProfile": {"type": "Localhost",
                                                 "localhostProfile": "../../etc/x.json"}}}]))

    def refused():
        statuses = api.read_namespaced_pod("localhost", namespace).status.container_statuses
        by_name = {s.name: s for s in statuses or []}
        escape = by_name.get("escape")
        return escape and escape.state.waiting and by_name["main"].state.running and by_name
    by_name = wait_for(refused, 90, what="main running, escape refused")
    waiting = by_name["escape"].state.waiting
    assert waiting.reason == "CreateContainerConfigError"
    assert "localhostProfile '../../etc/x.json' must be a relative path inside " \
           f"{kubelet.root_dir}/seccomp" in waiting.message
    container_id = by_name["main"].container_id.split("://")[1]
    code, out = sh(kubelet, container_id, "grep Seccomp: /proc/self/status; mkdir /made")
    assert out.splitlines()[0].split() == ["Seccomp:", "2"] and code != 0, out
    assert sh(kubelet, container_id, "touch /file")[0] == 0     # the rest is allowed
