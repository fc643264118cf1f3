"""Daemon restart keeps containers; bad requests get one clear error and leave nothing behind."""

from __future__ import annotations

import json
import socket

from .conftest import netns_handles
from .test_containers import wait_for


def test_daemon_restart_keeps_a_running_container_with_state_and_logs(daemon, remove_after):
    remove_after.append("survivor")
    assert daemon.cli("run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                      "echo before; sleep 1000").returncode == 0
    pid = json.loads(daemon.cli("inspect", "survivor").stdout)[0]["State"]["Pid"]
    assert daemon.stop() == 0
    daemon.start()
    state = json.loads(daemon.cli("inspect", "survivor").stdout)[0]["State"]
    assert state["Running"] is True and state["Pid"] == pid
    # (its first line may come after inspect says it runs)
    assert wait_for(lambda: daemon.cli("logs", "survivor").stdout, what="its log") == "before\n"
    assert daemon.cli("exec", "survivor", "echo", "after").stdout == "after\n"
    assert daemon.cli("stop", "-t", "1", "survivor").returncode == 0


def test_bad_requests_fail_clearly_and_leave_nothing(daemon, remove_after, tmp_path):
    remove_after.append("taken")
    assert daemon.cli("run", "-d", "--name", "taken", "busybox", "sleep", "1000").returncode == 0
    dirs, handles = daemon.container_dirs(), netns_handles()
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = {
            "is already in use by container": ["--name", "taken", "busybox", "true"],
            "no such image: nosuchimage": ["nosuchimage", "true"],
            f"{port}": ["-p", f"{port}:80", "busybox", "true"],
            "does not exist": ["-v", f"{tmp_path}/missing:/data", "busybox", "true"],
        }
        for expected, args in cases.items():
            result = daemon.cli("run", "-d", *args)
            assert result.returncode == 125, (args, result.stderr)
            assert result.stderr.startswith("Error: ") and expected in result.stderr, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
            assert daemon.container_dirs() == dirs and netns_handles() == handles


def test_no_daemon_says_so(tmp_path, daemon):
    result = daemon.cli("--socket", str(tmp_path / "none.sock"), "ps")
    assert result.returncode == 1
    assert "cannot reach the runtime daemon" in result.stderr
