"""Containers outlive what started them: the process that called api.start (the daemon) and the
monitor server that forked their monitors. Their exits are still recorded with the right code,
and a dead monitor server is replaced on the next start."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from provisioner.components.runtime.container import api, monitor_client
from provisioner.components.runtime.container.spec import Mount

from .conftest import read_log, wait_for_log

STARTER = """
import json, sys
from provisioner.components.runtime.container import api, monitor_client
from provisioner.components.runtime.container.spec import ContainerSpec
api.start(ContainerSpec.from_dict(json.loads(sys.argv[1])))
print(monitor_client.server().pid, flush=True)
sys.stdin.read()        # until killed
"""


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def _exit_on_signal_file(make_spec, tmp_path, code: int):
    """A container that logs "up", then exits with `code` once the test creates `go`."""
    shared = tmp_path / f"shared-{code}"
    shared.mkdir()
    spec = make_spec(["sh", "-c", "echo up; while [ ! -e /shared/go ]; do sleep 0.05; done; "
                                  f"echo done; exit {code}"],
                     mounts=[Mount(source=str(shared), destination="/shared")])
    return spec, shared / "go"


def _monitor_pid(spec) -> int:
    with open(os.path.join(spec.state_dir, "state.json")) as f:
        return json.load(f)["shim_pid"]


def test_a_container_outlives_the_process_that_started_it_and_its_monitor_server(
        make_spec, tmp_path):
    spec, go = _exit_on_signal_file(make_spec, tmp_path, 7)
    starter = subprocess.Popen([sys.executable, "-c", STARTER, json.dumps(spec.to_dict())],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(starter.stdout.readline())
    finally:
        starter.kill()      # the "daemon" dies without a word
        starter.wait()
    assert _gone(server_pid), "the monitor server outlived the process it served"
    wait_for_log(spec, "up")
    running = api.state(spec.state_dir)
    assert running.status == "running"
    go.touch()
    final = api.wait(spec.state_dir, 30)
    assert final.status == "exited" and final.exit_code == 7
    assert read_log(spec) == "up\ndone"


def test_a_killed_monitor_server_is_replaced_and_its_containers_keep_running(
        make_spec, tmp_path):
    first, go = _exit_on_signal_file(make_spec, tmp_path, 9)
    api.start(first)
    server_pid = monitor_client.server().pid
    monitor = _monitor_pid(first)
    assert monitor != server_pid
    os.kill(server_pid, signal.SIGKILL)
    assert _gone(server_pid)
    wait_for_log(first, "up")
    assert api.state(first.state_dir).status == "running"

    second = make_spec(["sh", "-c", "exit 4"])
    api.start(second)
    assert monitor_client.server().pid not in (None, server_pid)
    assert api.wait(second.state_dir, 30).exit_code == 4

    go.touch()
    final = api.wait(first.state_dir, 30)
    assert final.status == "exited" and final.exit_code == 9
    assert _gone(monitor), "the monitor did not end after its container"


def test_a_monitor_leads_its_own_session_and_is_named_after_its_container(make_spec):
    """Its own session: a signal to the daemon's or the server's process group never reaches
    it. Its name (all monitors share the server's command line) says whose it is."""
    spec = make_spec(["sleep", "1000"])
    api.start(spec)
    monitor = _monitor_pid(spec)
    with open(f"/proc/{monitor}/comm") as f:
        assert f.read().strip() == f"shim {spec.id}"[:15]
    with open(f"/proc/{monitor}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    group, session = int(fields[2]), int(fields[3])
    assert group == monitor and session == monitor
    assert os.getsid(monitor_client.server().pid) != session != os.getsid(0)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 64, b"\xe9\x00\x00\x00\x00"])
def test_a_request_the_server_cannot_read_fails_alone(make_spec, payload):
    """The request is refused with a reason; the server goes on serving the next start."""
    server = monitor_client.server()
    server.ensure_started()
    server_pid = server.pid
    read_fd, write_fd = os.pipe()
    try:
        server.spawn(payload, write_fd, write_fd)
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = json.loads(pipe.read())
    assert answer["error"].startswith("the monitor server could not read the request")
    spec = make_spec(["sh", "-c", "exit 5"])
    api.start(spec)
    assert api.wait(spec.state_dir, 30).exit_code == 5
    assert server.pid == server_pid
