"""tests/runtime/daemon: a real daemon process on a temporary root and socket, with its own bridge
(prtd<N>, 10.198.<N>.0/24, N from the test process) so it runs beside other runtime tests and
beside another test session on the same machine. The daemon starts on an empty root
and adds its bootstrap images (busybox, python:3.11) itself, as on a fresh machine."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from provisioner.components.runtime.client import RuntimeClient
from provisioner.components.runtime.net import Network
from provisioner.components.runtime.paths import netns_dir

_SESSION = 20 + os.getpid() % 200     # 20..219: clear of fixed test bridges such as prtd9
BRIDGE = f"prtd{_SESSION}"
SUBNET_PREFIX = f"10.198.{_SESSION}."
SUBNET = f"{SUBNET_PREFIX}0/24"
CGROUP_PARENT = "provisioner-runtime-daemon-tests"
CLI = [sys.executable, "-m", "provisioner.components.runtime.cli"]


class Daemon:
    def __init__(self, root: str, socket: str):
        self.root = root
        self.socket = socket
        self.process: subprocess.Popen | None = None
        self.client = RuntimeClient(socket, timeout=120)
        self.log_path = os.path.join(os.path.dirname(root), "daemon.log")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, *self.command()], stdout=log,
                                            stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log()}")
            try:
                self.client.version()
                return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        raise RuntimeError(f"daemon did not start: {self.log()}")

    def command(self) -> list[str]:
        """The daemon's command line after the Python executable."""
        return [*CLI[1:], "daemon", "--root", self.root, "--socket", self.socket, "--bridge",
                BRIDGE, "--subnet", SUBNET, "--cgroup-parent", CGROUP_PARENT]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as source:
            return source.read()

    def cli(self, *args: str, timeout: float = 120, **options) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "--socket", self.socket, *args], capture_output=True,
                              text=True, timeout=timeout, check=False, **options)

    def inspect(self, name: str) -> dict:
        result = self.cli("inspect", name)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]

    def container_dirs(self) -> set[str]:
        return set(os.listdir(os.path.join(self.root, "containers")))


def netns_handles() -> set[str]:
    try:
        return set(os.listdir(netns_dir()))
    except FileNotFoundError:
        return set()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    base = tmp_path_factory.mktemp("runtime-daemon")
    root = str(base / "root")
    daemon = Daemon(root, str(base / "runtime.sock"))
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
        Network(bridge=BRIDGE, subnet=SUBNET,
                state_dir=os.path.join(root, "network")).teardown_all()
        _remove_cgroup_parent()
        shutil.rmtree(base, ignore_errors=True)


def _remove_cgroup_parent() -> None:
    """The emptied parent cgroup, in every v1 hierarchy (the core makes it in all) or in v2."""
    base = "/sys/fs/cgroup"
    for top in [base, *(os.path.join(base, name) for name in os.listdir(base))]:
        path = os.path.join(top, CGROUP_PARENT)
        if os.path.isdir(path) and not os.path.islink(top):
            with contextlib.suppress(OSError):
                os.rmdir(path)


@pytest.fixture
def remove_after(daemon):
    """Names of containers a test creates; removed (forced) when it ends, pass or fail."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Exception):      # already gone
            daemon.client.remove(name, force=True)
