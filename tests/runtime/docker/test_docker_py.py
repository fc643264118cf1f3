"""The runtime's Docker Engine API driven by docker-py: system, containers, logs, exec, images."""

from __future__ import annotations

import os
import re

import docker
import pytest

from tests.conftest import free_port

from .conftest import wait_until


def _free_port() -> int:
    return free_port()


def test_ping_version_info_and_version_negotiation(engine, client):
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.43" and version["MinAPIVersion"] == "1.24"
    assert version["Os"] == "linux"
    info = client.info()
    assert info["OSType"] == "linux" and info["NCPU"] >= 1
    assert info["RegistryConfig"]["Mirrors"] == [f"http://{engine.mirror.host}"]
    # A client pinned to 1.41 is served under /v1.41/...; one asking past the maximum is told.
    assert engine.client(version="1.41").version()["ApiVersion"] == "1.43"
    with pytest.raises(docker.errors.APIError) as refused:
        engine.client(version="1.99").containers.list()
    assert refused.value.status_code == 400
    assert "Maximum supported API version is 1.43" in str(refused.value)


def test_run_returns_output_and_raises_on_failure(client):
    output = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"],
                                   remove=True, stderr=True)
    assert output == b"out\nerr\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    assert failed.value.exit_status == 3


def test_create_with_host_config(client, remove_after, tmp_path):
    (tmp_path / "greeting").write_text("hello from the host\n")
    port = _free_port()
    remove_after.append("dpy-hostconfig")
    container = client.containers.run(
        "busybox", ["sh", "-c", "cat /data/greeting; echo GREETING=$GREETING; sleep 300"],
        name="dpy-hostconfig", detach=True, environment={"GREETING": "hi"},
        volumes={str(tmp_path): {"bind": "/data", "mode": "ro"}}, ports={"80/tcp": port},
        mem_limit="64m", nano_cpus=500_000_000, labels={"app": "web"},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 4})
    wait_until(lambda: b"GREETING=hi" in container.logs(), what="the container's output")
    assert container.logs() == b"hello from the host\nGREETING=hi\n"
    container.reload()
    assert container.status == "running" and container.name == "dpy-hostconfig"
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024 and host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert host["Binds"] == [f"{tmp_path}:/data:ro"]
    assert container.ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert container.labels == {"app": "web"}
    assert "GREETING=hi" in container.attrs["Config"]["Env"]
    # the bind is read-only inside
    result = container.exec_run(["sh", "-c", "echo x > /data/new"])
    assert result.exit_code != 0 and not (tmp_path / "new").exists()


def test_lifecycle_stop_restart_kill_wait_remove(client, remove_after):
    remove_after.append("dpy-life")
    container = client.containers.run("busybox", ["sleep", "300"], name="dpy-life", detach=True)
    container.reload()
    first_start = container.attrs["State"]["StartedAt"]
    container.restart(timeout=1)
    container.reload()
    assert container.status == "running" and container.attrs["State"]["StartedAt"] != first_start
    container.kill()
    assert container.wait(timeout=60)["StatusCode"] == 137
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 137
    container.start()
    container.stop(timeout=1)
    container.reload()
    assert container.status == "exited"
    with pytest.raises(docker.errors.APIError) as not_running:
        container.kill()
    assert not_running.value.status_code == 409
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("dpy-life")


def test_remove_running_needs_force(client, remove_after):
    remove_after.append("dpy-rm")
    container = client.containers.run("busybox", ["sleep", "300"], name="dpy-rm", detach=True)
    with pytest.raises(docker.errors.APIError) as refused:
        container.remove()
    assert refused.value.status_code == 409
    container.remove(force=True)
    assert "dpy-rm" not in [c.name for c in client.containers.list(all=True)]


def test_list_with_filters(client, remove_after):
    remove_after += ["dpy-list-a", "dpy-list-b"]
    running = client.containers.run("busybox", ["sleep", "300"], name="dpy-list-a",
                                    detach=True, labels={"tier": "front"})
    exited = client.containers.run("busybox", ["true"], name="dpy-list-b", detach=True,
                                   labels={"tier": "back"})
    exited.wait(timeout=60)
    assert [c.name for c in client.containers.list(filters={"label": "tier=front"})] == \
        ["dpy-list-a"]
    assert "dpy-list-b" not in [c.name for c in client.containers.list()]
    names = {c.name for c in client.containers.list(all=True, filters={"status": "exited"})}
    assert "dpy-list-b" in names and "dpy-list-a" not in names
    assert [c.id for c in client.containers.list(all=True, filters={"name": "dpy-list-b"})] \
        == [exited.id]
    assert running.id in {c.id for c in client.containers.list(filters={"label": "tier"})}
    with pytest.raises(docker.errors.APIError):
        client.containers.list(filters={"colour": "blue"})


def test_logs_streams_tail_timestamps_and_follow(client, remove_after):
    remove_after.append("dpy-logs")
    container = client.containers.run(
        "busybox", ["sh", "-c", "for i in 1 2 3 4; do echo line$i; done; echo oops >&2"],
        name="dpy-logs", detach=True)
    container.wait(timeout=60)
    assert container.logs(stderr=False) == b"line1\nline2\nline3\nline4\n"
    assert container.logs(stdout=False) == b"oops\n"
    assert container.logs(tail=2) == b"line4\noops\n"
    stamped = container.logs(stderr=False, timestamps=True).decode().splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line\d$", line)
               for line in stamped), stamped
    # low-level: the raw stream is Docker's multiplexed frames, stderr tagged 2
    raw = client.api.logs(container.id, stdout=False, stderr=True)
    assert raw == b"oops\n"      # docker-py strips the 8-byte frame header it read
    follower = client.containers.run(
        "busybox", ["sh", "-c", "echo start; sleep 1; echo end"], detach=True)
    remove_after.append(follower.name)
    assert b"".join(follower.logs(stream=True, follow=True)) == b"start\nend\n"


def test_exec_create_start_inspect(client, remove_after):
    remove_after.append("dpy-exec")
    container = client.containers.run("busybox", ["sleep", "300"], name="dpy-exec", detach=True)
    result = container.exec_run(["sh", "-c", "echo $WHO; echo warn >&2; exit 3"],
                                environment={"WHO": "exec"}, workdir="/tmp")
    assert result.exit_code == 3 and result.output == b"exec\nwarn\n"
    out, err = container.exec_run(["sh", "-c", "pwd; echo e >&2"], workdir="/etc",
                                  demux=True).output
    assert (out, err) == (b"/etc\n", b"e\n")
    exec_id = client.api.exec_create(container.id, ["true"])["Id"]
    client.api.exec_start(exec_id)
    assert client.api.exec_inspect(exec_id)["ExitCode"] == 0


def test_restart_policy_on_failure_counts_restarts(client, remove_after):
    remove_after.append("dpy-onfailure")
    container = client.containers.run(
        "busybox", ["sh", "-c", "echo attempt; exit 3"], name="dpy-onfailure", detach=True,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})

    def gave_up():
        container.reload()
        state = container.attrs["State"]
        return container.attrs["RestartCount"] == 2 and state["Status"] == "exited" and \
            container.logs().count(b"attempt") == 3

    wait_until(gave_up, what="two restarts, then the exit")
    assert container.attrs["State"]["ExitCode"] == 3


def test_auto_remove_and_wait_removed(client):
    # It outlives the run call by a moment: a container gone before the wait arrives is a 404,
    # in Docker as here (the docker CLI waits before it starts; docker-py's run cannot).
    container = client.containers.run("busybox", ["sh", "-c", "sleep 1; exit 5"], detach=True,
                                      auto_remove=True)
    assert container.wait(condition="removed", timeout=60)["StatusCode"] == 5
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


def test_restart_keeps_an_auto_remove_container_and_stop_removes_it(client):
    container = client.containers.run("busybox", ["sleep", "600"], detach=True,
                                      auto_remove=True)
    first_start = container.attrs["State"]["StartedAt"]
    container.restart(timeout=0)
    container.reload()          # a restart's stop is not the exit AutoRemove waits for
    assert container.status == "running" and container.attrs["State"]["StartedAt"] != first_start
    container.stop(timeout=0)
    # the low-level list: containers.list() inspects each listed container, and one being
    # removed just then is a NotFound
    wait_until(lambda: container.id not in {c["Id"] for c in client.api.containers(all=True)},
               what="AutoRemove after the stop")


def test_errors_are_docker_errors(client):
    with pytest.raises(docker.errors.NotFound) as missing:
        client.containers.get("no-such-container-here")
    assert "No such container: no-such-container-here" in str(missing.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("no-such-image-here:1")
    with pytest.raises(docker.errors.APIError) as bad_policy:
        client.containers.create("busybox", restart_policy={"Name": "sometimes"})
    assert bad_policy.value.status_code == 400


def test_images_list_inspect_tag_remove(client):
    busybox = client.images.get("busybox")
    assert "busybox:latest" in busybox.tags and busybox.id.startswith("sha256:")
    assert busybox.id in {image.id for image in client.images.list()}
    assert busybox.tag("dpy-tagged", "v1") is True
    assert "dpy-tagged:v1" in client.images.get(busybox.id).tags
    assert [image.id for image in client.images.list(name="dpy-tagged")] == [busybox.id]
    deleted = client.api.remove_image("dpy-tagged:v1")
    assert deleted == [{"Untagged": "dpy-tagged:v1"}]
    assert "dpy-tagged:v1" not in client.images.get(busybox.id).tags
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("dpy-tagged:v1")


def test_pull_from_a_registry_and_through_the_mirror(engine, client):
    # Put busybox in the mirror twice: under a registry name, and as a docker.io name.
    registry = engine.mirror.host
    for target in (f"{registry}/dpy/busybox:pull", f"{registry}/library/dpy-mirrored:1"):
        engine.runtime.tag_image("busybox", target)
        list(engine.runtime.push(target))
        engine.runtime.remove_image(target)
    pulled = client.images.pull(f"{registry}/dpy/busybox", tag="pull")
    assert f"{registry}/dpy/busybox:pull" in pulled.tags
    # docker.io/library/dpy-mirrored:1 does not exist on Docker Hub: only the mirror has it
    mirrored = client.images.pull("dpy-mirrored", tag="1")
    assert "dpy-mirrored:1" in mirrored.tags
    events = list(client.api.pull(f"{registry}/dpy/missing", tag="1", stream=True,
                                  decode=True))
    assert "error" in events[-1] and "missing" in events[-1]["error"]
    for tag in (f"{registry}/dpy/busybox:pull", "dpy-mirrored:1"):
        client.images.remove(tag)


def test_restart_policy_always_survives_a_daemon_restart(engine, client, remove_after):
    remove_after.append("dpy-always")
    container = client.containers.run("busybox", ["sleep", "300"], name="dpy-always",
                                      detach=True, restart_policy={"Name": "always"})
    container.reload()
    first_pid = container.attrs["State"]["Pid"]
    engine.stop()
    os.kill(first_pid, 9)           # it dies while no daemon watches
    engine.start()
    again = engine.client()

    def running_again():
        current = again.containers.get("dpy-always")
        pid = current.attrs["State"]["Pid"]
        return current.status == "running" and pid not in (0, first_pid)

    wait_until(running_again, what="the always container started by the new daemon")
    again.close()


def test_rename(client, remove_after):
    remove_after += ["dpy-old-name", "dpy-new-name", "dpy-other"]
    container = client.containers.create("busybox", ["true"], name="dpy-old-name")
    client.containers.create("busybox", ["true"], name="dpy-other")
    container.rename("dpy-new-name")
    assert client.containers.get("dpy-new-name").id == container.id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("dpy-old-name")
    with pytest.raises(docker.errors.APIError) as taken:
        container.rename("dpy-other")
    assert taken.value.status_code == 409


def test_pause_and_unpause(engine, client, remove_after):
    remove_after.append("dpy-pause")
    container = client.containers.run(
        "busybox", ["sh", "-c", "while true; do date +%s%N > /tmp/tick; sleep 0.05; done"],
        name="dpy-pause", detach=True)
    wait_until(lambda: container.exec_run(["cat", "/tmp/tick"]).exit_code == 0,
               what="the first tick")
    container.pause()
    container.reload()
    assert container.status == "paused" and container.attrs["State"]["Paused"] is True
    listed = engine.cli("ps", "--filter", "name=dpy-pause", "--format", "{{.Status}}")
    assert listed.stdout.strip().endswith("(Paused)")
    frozen_tick = container.get_archive("/tmp/tick")[0]
    frozen = b"".join(frozen_tick)
    # nothing runs while frozen: the tick file stays as it was over several reads
    for _ in range(5):
        assert b"".join(container.get_archive("/tmp/tick")[0]) == frozen
    with pytest.raises(docker.errors.APIError):
        container.pause()
    container.unpause()
    wait_until(lambda: b"".join(container.get_archive("/tmp/tick")[0]) != frozen,
               what="ticks again after unpause")
    container.pause()
    container.stop(timeout=1)          # a paused container still stops
    container.reload()
    assert container.status == "exited"
