"""Failures around the server: an internal error (etcd unreachable) answers a generic 500 with a
request id while the log keeps the details; `provisioner dev apiserver` killed with SIGKILL
takes its etcd with it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

from .conftest import Raw, eventually


def test_internal_error_hides_details_but_logs_them(cluster, tmp_path):
    port, dead_etcd = free_port(), f"https://127.0.0.1:{free_port()}"
    cmd = [dead_etcd if arg == cluster.etcd_url else arg for arg in cluster.apiserver_command(port)]
    log = tmp_path / "apiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        raw = Raw(cluster)
        raw.port = port

        def live() -> bool:
            try:
                return raw("GET", "/livez", cert=None)[0] == 200
            except OSError:
                return False
        assert eventually(live, 30)
        status, headers, body = raw("GET", "/api/v1/namespaces/default/configmaps")
        assert status == 500
        status_obj = json.loads(body)
        assert status_obj["reason"] == "InternalError"
        match = re.fullmatch(r"Internal error occurred: an unexpected error; request id ([0-9a-f-]{36}) "
                             r"\(the API server's log has the details\)", status_obj["message"])
        assert match, status_obj["message"]
        assert headers["Audit-Id"] == match.group(1)
        assert eventually(lambda: match.group(1) in log.read_text())
        text = log.read_text()
        assert "StatusCode.UNAVAILABLE" in text and dead_etcd.split("//")[1] in text
    finally:
        proc.terminate()
        proc.wait(10)


def _children(pid: int) -> list[int]:
    return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _name(pid: int) -> str:
    return open(f"/proc/{pid}/comm").read().strip()


def test_dev_apiserver_killed_with_sigkill_takes_etcd_along(tmp_path):
    dev = subprocess.Popen([str(Path(sys.prefix) / "bin" / "provisioner"), "dev", "apiserver", "--dir",
                            str(tmp_path / "dev")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        assert eventually(lambda: (tmp_path / "dev" / "admin.conf").exists() or dev.poll() is not None, 60)
        children = _children(dev.pid)
        assert sorted(_name(pid) for pid in children) == ["etcd", "python"]  # etcd and the API server
        dev.send_signal(signal.SIGKILL)
        dev.wait(10)
        for pid in children:
            assert eventually(lambda: not _alive(pid), 15), f"{_name(pid)} ({pid}) outlived dev apiserver"
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
