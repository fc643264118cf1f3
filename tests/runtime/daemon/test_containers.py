"""The daemon and CLI with real containers: run, ps, inspect, logs, exec, stop/start/rm, ports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request

from tests.conftest import free_port as shared_free_port
from tests.runtime.daemon.conftest import SUBNET_PREFIX


def wait_for(predicate, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_detached_then_ps_inspect_exec_stop_start_rm(daemon, remove_after):
    remove_after.append("life")
    result = daemon.cli("run", "-d", "--name", "life", "-e", "GREETING=hello", "busybox",
                        "sh", "-c", "echo started; echo $GREETING > /tmp/g; sleep 1000")
    assert result.returncode == 0, result.stderr
    container_id = result.stdout.strip()
    assert len(container_id) == 64 and int(container_id, 16) >= 0

    ps = daemon.cli("ps")
    header, *rows = ps.stdout.splitlines()
    assert re.split(r"\s{2,}", header) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                           "STATUS", "PORTS", "NAMES"]
    row = next(row for row in rows if row.endswith("life"))
    assert row.startswith(container_id[:12]) and "Up " in row

    inspected = json.loads(daemon.cli("inspect", "life").stdout)[0]
    assert inspected["Id"] == container_id and inspected["Name"] == "/life"
    assert inspected["State"]["Running"] is True and inspected["State"]["Pid"] > 0
    assert inspected["NetworkSettings"]["IPAddress"].startswith(SUBNET_PREFIX)
    assert "GREETING=hello" in inspected["Config"]["Env"]

    wait_for(lambda: "started" in daemon.cli("logs", "life").stdout, what="log line")
    execd = daemon.cli("exec", "-e", "EXTRA=x", "life", "sh", "-c",
                       'echo "$GREETING $EXTRA $(cat /tmp/g)"; exit 7')
    assert execd.returncode == 7
    assert execd.stdout == "hello x hello\n"

    assert daemon.cli("stop", "-t", "1", "life").returncode == 0
    stopped = json.loads(daemon.cli("inspect", "life").stdout)[0]["State"]
    assert stopped["Status"] == "exited" and stopped["Running"] is False
    assert "life" not in daemon.cli("ps").stdout
    assert "Exited (" in daemon.cli("ps", "-a").stdout

    assert daemon.cli("start", "life").returncode == 0
    assert json.loads(daemon.cli("inspect", "life").stdout)[0]["State"]["Running"] is True
    # The container's writes survive a restart, as with Docker.
    assert daemon.cli("exec", "life", "cat", "/tmp/g").stdout == "hello\n"

    refused = daemon.cli("rm", "life")
    assert refused.returncode == 1 and "is running" in refused.stderr
    assert daemon.cli("rm", "-f", "life").returncode == 0
    assert container_id not in daemon.container_dirs()
    gone = daemon.cli("inspect", "life")
    assert gone.returncode == 1 and gone.stderr.startswith("Error: ")


def test_logs_follow_streams_new_lines_and_ends_with_the_container(daemon, remove_after):
    remove_after.append("ticker")
    assert daemon.cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
                      "i=0; while [ $i -lt 400 ]; do echo tick$i; i=$((i+1)); sleep 0.05; "
                      "done").returncode == 0
    follower = subprocess.Popen(
        ["python3", "-m", "provisioner.components.runtime.cli", "--socket", daemon.socket,
         "logs", "-f", "ticker"], stdout=subprocess.PIPE, text=True)
    try:
        first = follower.stdout.readline()
        assert first.startswith("tick")
        before = int(first[4:])
        existing = len(daemon.cli("logs", "ticker").stdout.splitlines())
        # Lines written after `logs -f` started arrive through it.
        seen = [follower.stdout.readline() for _ in range(existing + 5)]
        assert max(int(line[4:]) for line in seen) >= existing
        assert before == 0
        daemon.cli("stop", "-t", "1", "ticker")
        follower.stdout.read()
        assert follower.wait(timeout=20) == 0
    finally:
        follower.kill()
        follower.wait()


def test_run_rm_in_the_foreground_passes_output_and_exit_code(daemon):
    before = daemon.container_dirs()
    result = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 42")
    assert result.returncode == 42
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert daemon.container_dirs() == before


def host_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))      # no packet sent: picks the outgoing address
        return probe.getsockname()[0]


def test_published_port_forwards_from_localhost_and_the_host_address(daemon, remove_after,
                                                                     tmp_path):
    remove_after.append("web")
    (tmp_path / "index.html").write_text("hello from the container\n")
    port = free_port()
    result = daemon.cli("run", "-d", "--name", "web", "-p", f"{port}:80", "-v",
                        f"{tmp_path}:/var/www:ro", "busybox", "httpd", "-f", "-p", "80",
                        "-h", "/var/www")
    assert result.returncode == 0, result.stderr
    for address in ("127.0.0.1", host_address()):
        body = wait_for(lambda address=address: fetch(f"http://{address}:{port}/index.html"),
                        what=address)
        assert body == "hello from the container\n"
    row = next(line for line in daemon.cli("ps").stdout.splitlines() if line.endswith("web"))
    assert f"0.0.0.0:{port}->80/tcp" in row


def free_port() -> int:
    return shared_free_port(address="0.0.0.0")


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_memory_limit_oom_kill_shows_in_inspect(daemon, remove_after):
    remove_after.append("hog")
    result = daemon.cli("run", "-d", "--name", "hog", "--memory", "16m", "busybox", "sh", "-c",
                        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
    assert result.returncode == 0, result.stderr
    assert daemon.cli("wait", "hog", timeout=60).returncode == 0
    state = json.loads(daemon.cli("inspect", "hog").stdout)[0]
    assert state["HostConfig"]["Memory"] == 16 * 1024 * 1024
    if state["Warnings"]:
        raise AssertionError(f"cgroups not writable here: {state['Warnings']}")
    assert state["State"]["OOMKilled"] is True
    assert state["State"]["ExitCode"] == 137


def test_short_lived_containers_always_report_their_exit_code(daemon):
    """The exit code the shim records survives the daemon reading the state as the shim ends."""
    client = daemon.client
    codes = []
    for number in range(40):
        container = client.create("busybox", cmd=["sh", "-c", f"exit {number % 7 + 1}"],
                                  network="none")
        client.start(container)
        codes.append(client.wait(container)["exit_code"])
        client.remove(container)
    assert codes == [number % 7 + 1 for number in range(40)]
