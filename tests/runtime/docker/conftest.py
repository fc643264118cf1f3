"""tests/runtime/docker: one runtime daemon serving Docker's Engine API on its own socket, driven
by clients no one here wrote: docker-py and the docker CLI (the machine's client binary).

The daemon has its own bridge (prtk<N>, 10.197.<N>.0/24, N from the test process) and a local
registry as its --registry-mirror (Debian's docker-registry on loopback), so pulls of docker.io
names are served offline by the mirror.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import docker
import pytest

from provisioner.components.runtime.client import RuntimeClient
from provisioner.components.runtime.net import Network

from ..images.registry_fixtures import Registry, start_registry

_SESSION = 20 + os.getpid() % 200
BRIDGE = f"prtk{_SESSION}"
SUBNET = f"10.197.{_SESSION}.0/24"
CGROUP_PARENT = "provisioner-runtime-docker-tests"
DOCKER_CLI = shutil.which("docker")


class Engine:
    """The daemon process, its own API client, and its Docker socket."""

    def __init__(self, base: str, mirror: Registry):
        self.base = base
        self.root = os.path.join(base, "root")
        self.socket = os.path.join(base, "runtime.sock")
        self.docker_socket = os.path.join(base, "docker.sock")
        self.mirror = mirror
        self.runtime = RuntimeClient(self.socket, timeout=120)
        self.log_path = os.path.join(base, "daemon.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "provisioner.components.runtime.cli", "daemon",
                   "--root", self.root, "--socket", self.socket, "--bridge", BRIDGE,
                   "--subnet", SUBNET, "--cgroup-parent", CGROUP_PARENT,
                   "--registry-mirror", f"http://{self.mirror.host}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log()}")
            if os.path.exists(self.docker_socket):
                with contextlib.suppress(Exception):
                    self.runtime.version()
                    return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not start: {self.log()}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as source:
            return source.read()

    def client(self, **options) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{self.docker_socket}", timeout=120,
                                   **{"version": "auto", **options})

    def cli(self, *args: str, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
        """The docker CLI pointed at this daemon, with a config directory of its own."""
        assert DOCKER_CLI, "the docker CLI (client binary) is not installed on this machine"
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.docker_socket}",
               "DOCKER_CONFIG": os.path.join(self.base, "docker-config")}
        return subprocess.run([DOCKER_CLI, *args], capture_output=True, text=True,
                              timeout=timeout, env=env, check=False, input=input)


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("docker-api"))
    os.makedirs(os.path.join(base, "mirror"))
    mirror = start_registry(os.path.join(base, "mirror"))
    engine = Engine(base, mirror)
    engine.start()
    yield engine
    try:
        client = engine.client()
        for listed in client.api.containers(all=True):   # no inspect: one may be going away
            with contextlib.suppress(Exception):
                client.api.remove_container(listed["Id"], force=True)
    finally:
        if engine.process.poll() is None:
            engine.stop()
        mirror.stop()
        Network(bridge=BRIDGE, subnet=SUBNET,
                state_dir=os.path.join(engine.root, "network")).teardown_all()
        _remove_cgroup_parent()
        shutil.rmtree(base, ignore_errors=True)


def _remove_cgroup_parent() -> None:
    base = "/sys/fs/cgroup"
    for top in [base, *(os.path.join(base, name) for name in os.listdir(base))]:
        path = os.path.join(top, CGROUP_PARENT)
        if os.path.isdir(path) and not os.path.islink(top):
            with contextlib.suppress(OSError):
                os.rmdir(path)


@pytest.fixture
def client(engine) -> docker.DockerClient:
    client = engine.client()
    yield client
    client.close()


@pytest.fixture
def remove_after(engine):
    """Names of containers a test makes; force-removed when it ends, pass or fail."""
    names: list[str] = []
    yield names
    client = engine.client()
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)
    client.close()


def wait_until(condition, timeout: float = 60, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
