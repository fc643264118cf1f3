"""Fixtures for the container core tests: a tiny busybox root filesystem (from Debian's
busybox-static) as an image layer, and per-test container specs whose containers, cgroups and
state are cleaned up whatever the test did. Needs root."""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from provisioner.components.runtime.container import api
from provisioner.components.runtime.container.spec import ContainerSpec, Process

BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "provisioner-runtime-test"


def build_busybox_rootfs(root: str) -> None:
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    for directory in ("etc", "tmp", "root", "home/nobody", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n")


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the container core tests need root (namespaces, mounts, cgroups)")
    root = str(tmp_path_factory.mktemp("busybox-layer"))
    build_busybox_rootfs(root)
    yield root
    _remove_test_cgroup_parent()


def _remove_test_cgroup_parent() -> None:
    """The tests' cgroup parent, in every hierarchy, once the containers under it are gone."""
    bases = ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d)
                                  for d in os.listdir("/sys/fs/cgroup")]
    for base in bases:
        try:
            os.rmdir(os.path.join(base, CGROUP_PARENT))
        except OSError:
            pass


@pytest.fixture
def make_spec(tmp_path, busybox_layer):
    """make_spec(args, **fields) -> a ContainerSpec with its own state dir and log file."""
    made: list[ContainerSpec] = []

    def factory(args, env=None, user="0:0", cwd="/", capabilities=None, **fields):
        container_id = "t-" + uuid.uuid4().hex[:12]
        state_dir = str(tmp_path / container_id)
        fields.setdefault("lower_dirs", [busybox_layer])
        fields.setdefault("hostname", container_id[:12])
        fields.setdefault("log_path", os.path.join(state_dir, "container.log"))
        fields.setdefault("cgroup_parent", CGROUP_PARENT)
        os.makedirs(state_dir)
        spec = ContainerSpec(
            id=container_id, state_dir=state_dir,
            process=Process(args=list(args), env=list(env or ["PATH=/bin"]), cwd=cwd, user=user,
                            capabilities=capabilities),
            **fields)
        made.append(spec)
        return spec

    yield factory
    for spec in made:
        try:
            current = api.state(spec.state_dir)
        except Exception:
            continue
        if current.status == "running":
            api.stop(spec.state_dir, grace_seconds=0)
        api.delete(spec.state_dir)


def read_log(spec) -> str:
    """The container's output from its CRI log: the text of each record, by stream."""
    lines = []
    with open(spec.log_path) as f:
        for record in f:
            _stamp, _stream, _tag, text = record.rstrip("\n").split(" ", 3)
            lines.append(text)
    return "\n".join(lines)


def wait_for_log(spec, text: str, timeout: float = 30) -> None:
    """Until the container has logged `text` (it got that far), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(spec.log_path) and text in read_log(spec):
            return
        time.sleep(0.02)
    pytest.fail(f"container {spec.id} did not log {text!r} within {timeout}s")


def run_to_exit(spec, timeout=30):
    api.start(spec)
    final = api.wait(spec.state_dir, timeout)
    assert final.status == "exited", f"container {spec.id} still running after {timeout}s"
    return final
