"""Pods through the client API (shared network, separate filesystems, removal), CPU and pids
limits through the CLI, and the python bootstrap image serving on a published port."""

from __future__ import annotations

import os

from tests.runtime.daemon.conftest import SUBNET_PREFIX

from .conftest import CGROUP_PARENT, netns_handles
from .test_containers import fetch, free_port, wait_for


def test_pod_members_share_localhost_but_not_files_and_delete_removes_all(daemon):
    client = daemon.client
    dirs, handles = daemon.container_dirs(), netns_handles()
    pod = client.create_pod("web", namespace="tests", uid="uid-1")
    try:
        assert pod["state"] == "ready" and pod["ip"].startswith(SUBNET_PREFIX)
        assert len(netns_handles() - handles) == 1
        server = client.create(
            "busybox", pod=pod["id"], name="pod-server",
            cmd=["sh", "-c", ("mkdir /www && echo served-in-pod > /www/index.html && "
                              "exec httpd -f -p 127.0.0.1:8080 -h /www")])
        client.start(server)
        other = client.create("busybox", pod=pod["id"], name="pod-client",
                              cmd=["sleep", "1000"])
        client.start(other)
        assert set(client.pod(pod["id"])["containers"]) == {server, other}

        fetched = wait_for(lambda: _exec_ok(client, other, [
            "wget", "-qO-", "http://127.0.0.1:8080/index.html"]), what="httpd in the pod")
        assert fetched == b"served-in-pod\n"
        # Same network namespace, but each member has its own root filesystem.
        assert client.exec_collect(other, ["ls", "/www"])[0] != 0
        assert client.exec_collect(server, ["cat", "/www/index.html"]) == (0, b"served-in-pod\n")
        assert client.exec_collect(other, ["hostname"])[1] == b"web\n"
    finally:
        client.remove_pod(pod["id"])
    assert all(p["id"] != pod["id"] for p in client.pods())
    assert {c["Id"] for c in client.containers(all=True)}.isdisjoint({server, other})
    assert daemon.container_dirs() == dirs
    assert netns_handles() == handles


def _exec_ok(client, container: str, cmd: list[str]) -> bytes | None:
    code, output = client.exec_collect(container, cmd)
    return output if code == 0 else None


def cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> str:
    """A cgroup file of the container's init process, as the host sees it (v1 or v2)."""
    with open(f"/proc/{pid}/cgroup") as source:
        entries = [line.rstrip("\n").split(":", 2) for line in source]
    for _, controllers, path in entries:
        if controller in controllers.split(","):
            mount = f"/sys/fs/cgroup/{controllers}"
            if not os.path.isdir(mount):
                mount = f"/sys/fs/cgroup/{controller}"
            with open(os.path.join(mount + path, v1_name)) as value:
                return value.read().strip()
    unified = next(path for hierarchy, _, path in entries if hierarchy == "0")
    with open(os.path.join("/sys/fs/cgroup" + unified, v2_name)) as value:
        return value.read().strip()


def test_cpus_and_pids_limits_show_in_inspect_and_in_the_cgroup(daemon, remove_after):
    remove_after.append("limited")
    result = daemon.cli("run", "-d", "--name", "limited", "--cpus", "0.5", "--pids", "12",
                        "busybox", "sleep", "1000")
    assert result.returncode == 0, result.stderr
    inspected = daemon.inspect("limited")
    assert not inspected["Warnings"], inspected["Warnings"]
    assert inspected["HostConfig"]["NanoCpus"] == 500_000_000
    assert inspected["HostConfig"]["PidsLimit"] == 12
    pid = inspected["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as source:
        assert CGROUP_PARENT in source.read()
    quota = cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max")
    period = cgroup_file(pid, "cpu", "cpu.cfs_period_us", "cpu.max")
    if " " in quota:                 # v2: "QUOTA PERIOD" in one file
        quota, period = quota.split()
    assert int(quota) == int(period) // 2
    assert cgroup_file(pid, "pids", "pids.max", "pids.max") == "12"


def test_pids_limit_stops_a_fork_loop(daemon):
    result = daemon.cli("run", "--rm", "--pids", "8", "busybox", "sh", "-c",
                        "i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done; "
                        "echo loop-done")
    # The shell gives up at the first failed fork; the 20 sleeps never all start.
    assert "can't fork" in result.stderr, result.stderr
    assert result.returncode != 0 and "loop-done" not in result.stdout


def test_python_image_serves_http_on_a_published_port(daemon, remove_after, tmp_path):
    remove_after.append("pyweb")
    (tmp_path / "index.html").write_text("hello from python\n")
    port = free_port()
    result = daemon.cli("run", "-d", "--name", "pyweb", "-p", f"{port}:8000", "-v",
                        f"{tmp_path}:/srv:ro", "python:3.11", "python3", "-m", "http.server",
                        "8000", "--directory", "/srv")
    assert result.returncode == 0, result.stderr
    body = wait_for(lambda: fetch(f"http://127.0.0.1:{port}/index.html"), timeout=30,
                    what="python3 -m http.server")
    assert body == "hello from python\n"
    # The server logs the request after answering it; the log reaches the daemon through the
    # container's monitor, so it may come a moment after the body.
    wait_for(lambda: "GET /index.html" in daemon.cli("logs", "pyweb").stderr, timeout=30,
             what="the request in the container's log")
