"""The runtime's Docker Engine API driven by the real docker CLI (the client binary alone)."""

from __future__ import annotations

import json

from .conftest import wait_until


def test_version_negotiates_with_the_daemon(engine):
    result = engine.cli("version", "--format", "{{json .Server}}")
    assert result.returncode == 0, result.stderr
    server = json.loads(result.stdout)
    assert server["ApiVersion"] == "1.43" and server["Os"] == "linux"


def test_run_attached_removes_and_passes_the_exit_code(engine):
    result = engine.cli("run", "--rm", "--name", "cli-rm", "busybox",
                        "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "to-stdout\n" and result.stderr == "to-stderr\n"
    listed = engine.cli("ps", "-a", "--filter", "name=cli-rm", "--format", "{{.Names}}")
    assert listed.returncode == 0 and listed.stdout == ""


def test_detached_container_ps_logs_exec_stop_rm(engine, remove_after):
    remove_after.append("cli-web")
    started = engine.cli("run", "-d", "--name", "cli-web", "-e", "COLOUR=blue",
                         "-l", "role=web", "--restart", "unless-stopped", "busybox",
                         "sh", "-c", "echo ready; sleep 300")
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    listed = engine.cli("ps", "--filter", "label=role=web", "--format",
                        "{{.ID}} {{.Names}} {{.Status}}")
    assert listed.stdout.split()[:3] == [container_id[:12], "cli-web", "Up"]
    # "Up" says the container runs, not that its shell has written its line yet
    logs = wait_until(lambda: (r := engine.cli("logs", "cli-web")).stdout and r,
                      what="the container's output")
    assert logs.returncode == 0 and logs.stdout == "ready\n"
    executed = engine.cli("exec", "cli-web", "sh", "-c", "echo $COLOUR; exit 4")
    assert executed.returncode == 4 and executed.stdout == "blue\n"
    inspected = engine.cli("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}} "
                           "{{.State.Running}}", "cli-web")
    assert inspected.stdout.strip() == "unless-stopped true"
    assert engine.cli("stop", "-t", "1", "cli-web").returncode == 0
    status = engine.cli("ps", "-a", "--filter", "name=cli-web", "--format", "{{.Status}}")
    assert status.stdout.startswith("Exited (137)")
    assert engine.cli("rm", "cli-web").returncode == 0
    missing = engine.cli("rm", "cli-web")
    assert missing.returncode == 1
    assert "No such container: cli-web" in missing.stderr


def test_images_tag_rmi_and_pull(engine):
    images = engine.cli("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "busybox:latest" in images.stdout.split()
    assert engine.cli("tag", "busybox", "cli-tagged:1").returncode == 0
    assert "cli-tagged:1" in engine.cli("images", "--format",
                                        "{{.Repository}}:{{.Tag}}").stdout.split()
    removed = engine.cli("rmi", "cli-tagged:1")
    assert removed.returncode == 0 and "Untagged: cli-tagged:1" in removed.stdout
    registry = engine.mirror.host
    engine.runtime.tag_image("busybox", f"{registry}/cli/busybox:1")
    list(engine.runtime.push(f"{registry}/cli/busybox:1"))
    engine.runtime.remove_image(f"{registry}/cli/busybox:1")
    pulled = engine.cli("pull", f"{registry}/cli/busybox:1")
    assert pulled.returncode == 0, pulled.stderr
    assert f"{registry}/cli/busybox:1" in pulled.stdout
    failed = engine.cli("pull", f"{registry}/cli/absent:1")
    assert failed.returncode == 1 and "absent" in failed.stderr
    assert engine.cli("rmi", f"{registry}/cli/busybox:1").returncode == 0
