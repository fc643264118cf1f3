"""Builds through the daemon: a cancelled build stops its RUN step's container, a daemon killed
mid-build sweeps it on its next start, and symlinks in the context are sent and copied as links."""

from __future__ import annotations

import glob
import os
import subprocess
import time

from provisioner.components.runtime.container import api as core

from .conftest import CLI


def _context(tmp_path, dockerfile: str) -> str:
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    return str(context)


def _start_sleeping_build(daemon, context: str) -> tuple[subprocess.Popen, str, int]:
    """The CLI building `RUN sleep 300`, once its step container runs `sleep 300` (a container
    the state says is running may not have exec'd its command yet): (cli, state dir, pid)."""
    cli = subprocess.Popen([*CLI, "--socket", daemon.socket, "build", "--no-cache", context],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for state_dir in glob.glob(os.path.join(daemon.root, "tmp", "build-*")):
            try:
                current = core.state(state_dir)
            except Exception:  # noqa: BLE001 - not started yet
                continue
            if current.status == "running" and current.pid and _is_sleep(current.pid):
                return cli, state_dir, current.pid
        time.sleep(0.1)
    cli.kill()
    raise AssertionError(f"the RUN step never ran: {daemon.log()[-2000:]}")


def _gone(state_dir: str, pid: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not os.path.exists(state_dir) and not _is_sleep(pid):
            return True
        time.sleep(0.1)
    return False


def _is_sleep(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().split(b"\0")[:2] == [b"sleep", b"300"]
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_cancelled_build_stops_and_deletes_its_run_container(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nRUN sleep 300\n")
    cli, state_dir, pid = _start_sleeping_build(daemon, context)
    cli.kill()
    cli.wait()
    assert _gone(state_dir, pid)
    assert "cancelling its build" in daemon.log()


def test_a_daemon_killed_mid_build_sweeps_the_step_container_on_start(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nRUN sleep 300 # killed daemon\n")
    cli, state_dir, pid = _start_sleeping_build(daemon, context)
    daemon.process.kill()
    daemon.process.wait()
    cli.wait(timeout=30)
    assert _is_sleep(pid)            # the shim outlived the daemon
    daemon.start()
    assert not os.path.exists(state_dir) and not _is_sleep(pid)
    assert "removed build step container" in daemon.log()


def test_context_symlinks_are_copied_as_links_and_followed_only_inside(daemon, tmp_path,
                                                                        remove_after):
    context = _context(tmp_path, "FROM busybox\nCOPY . /ctx\n")
    os.symlink("/etc/passwd", os.path.join(context, "absolute"))
    os.symlink("../outside", os.path.join(context, "escaping"))
    os.symlink("/etc", os.path.join(context, "etc-dir"))
    built = daemon.cli("build", "-t", "with-links", context)
    assert built.returncode == 0, built.stderr + built.stdout
    remove_after.append("links")
    run = daemon.cli("run", "--name", "links", "--network", "none", "with-links", "sh", "-c",
                     "for l in absolute escaping etc-dir; do readlink /ctx/$l; done")
    assert run.stdout == "/etc/passwd\n../outside\n/etc\n", run.stderr

    (tmp_path / "context" / "Dockerfile").write_text("FROM busybox\nCOPY etc-dir/passwd /\n")
    followed = daemon.cli("build", context)
    assert followed.returncode == 1
    assert "Dockerfile:2: source 'etc-dir/passwd' resolves outside the build context" \
        in followed.stderr

    (tmp_path / "context" / "Dockerfile").write_text("FROM busybox\nCOPY /etc/passwd /\n")
    absolute = daemon.cli("build", context)
    assert absolute.returncode == 1
    assert "source '/etc/passwd' not found in the build context" in absolute.stderr
    assert daemon.root not in absolute.stderr
    daemon.cli("rmi", "with-links")
