"""The runtime's Docker API: build (docker-py and the docker CLI), top, stats, prune, events."""

from __future__ import annotations

import io
import tarfile
import time

import docker
import pytest

from .conftest import wait_until


def _context(files: dict[str, str]) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, text in files.items():
            payload = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload))
    data.seek(0)
    return data


DOCKERFILE = ('FROM busybox\nARG WHO=world\nCOPY note /note\n'
              'RUN echo "hello $WHO" > /greeting\nCMD ["cat", "/greeting", "/note"]\n')


def test_build_from_a_tar_context_with_progress(client):
    image, progress = client.images.build(
        fileobj=_context({"Dockerfile": DOCKERFILE, "note": "a note\n"}), custom_context=True,
        tag="dpy-built:1", buildargs={"WHO": "docker-py"})
    lines = [entry["stream"] for entry in progress if "stream" in entry]
    assert lines[0].startswith("Step 1/5 : FROM busybox")
    assert "dpy-built:1" in image.tags
    assert client.containers.run("dpy-built:1", remove=True) == b"hello docker-py\na note\n"
    with pytest.raises(docker.errors.BuildError) as failed:
        client.images.build(fileobj=_context({"Dockerfile": "FROM busybox\nRUN exit 7\n"}),
                            custom_context=True)
    assert "exit code 7" in str(failed.value)
    client.images.remove("dpy-built:1")


def test_docker_cli_build(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "note").write_text("from the cli\n")
    built = engine.cli("build", "-t", "cli-built:1", "--build-arg", "WHO=cli", str(tmp_path))
    assert built.returncode == 0, built.stderr
    assert "Successfully tagged cli-built:1" in built.stdout
    ran = engine.cli("run", "--rm", "cli-built:1")
    assert ran.stdout == "hello cli\nfrom the cli\n"
    assert engine.cli("rmi", "cli-built:1").returncode == 0


def test_top_and_stats(client, remove_after):
    remove_after.append("dpy-top")
    container = client.containers.run("busybox", ["sh", "-c", "sleep 301 & exec sleep 300"],
                                      name="dpy-top", detach=True, mem_limit="32m")
    processes = wait_until(lambda: len(container.top()["Processes"]) == 2 and
                           container.top()["Processes"], what="both processes")
    commands = sorted(row[-1] for row in processes)
    assert commands == ["sleep 300", "sleep 301"]
    stats = container.stats(stream=False)
    assert stats["memory_stats"]["limit"] == 32 * 1024 * 1024
    assert stats["memory_stats"]["usage"] > 0 and stats["pids_stats"]["current"] == 2
    assert stats["cpu_stats"]["system_cpu_usage"] > stats["precpu_stats"]["system_cpu_usage"]
    streamed = container.stats(stream=True, decode=True)
    assert next(streamed)["name"] == "/dpy-top"
    streamed.close()


def test_prune_removes_stopped_containers_and_dangling_images(engine, client, remove_after):
    remove_after.append("dpy-keep")
    keep = client.containers.run("busybox", ["sleep", "300"], name="dpy-keep", detach=True)
    done = client.containers.run("busybox", ["true"], detach=True)
    done.wait(timeout=60)
    pruned = client.containers.prune()
    assert done.id in pruned["ContainersDeleted"] and keep.id not in pruned["ContainersDeleted"]
    assert keep.id in {c.id for c in client.containers.list()}
    # an image built without a tag is dangling: prune takes it, tagged images stay
    image, _ = client.images.build(
        fileobj=_context({"Dockerfile": "FROM busybox\nRUN echo dangling > /d\n"}),
        custom_context=True, nocache=True)
    assert image.tags == []
    assert {"Deleted": image.id} in client.images.prune()["ImagesDeleted"]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image.id)
    assert "busybox:latest" in client.images.get("busybox").tags


def test_events_report_a_containers_life(client):
    since = time.time() - 1
    container = client.containers.run("busybox", ["sh", "-c", "exit 2"], detach=True,
                                      labels={"watch": "me"})
    container.wait(timeout=60)
    container.remove()          # at once: the exit's `die` must not be lost to the remove
    running = client.containers.run("busybox", ["sleep", "600"], detach=True)
    running.remove(force=True)

    def actions(of):
        seen = [event["Action"] for event in client.events(
            since=since, until=time.time(), decode=True,
            filters={"container": of.id, "type": "container"})]
        return seen if "destroy" in seen else None

    seen = wait_until(lambda: actions(container), what="the container's events")
    assert seen == ["create", "start", "die", "destroy"]
    # Docker's rm -f of a running container: kill (signal 9), die, destroy
    assert wait_until(lambda: actions(running), what="rm -f's events") == \
        ["create", "start", "kill", "die", "destroy"]
    die = next(event for event in client.events(since=since, until=time.time(), decode=True,
                                                filters={"event": "die", "label": "watch=me"}))
    assert die["Actor"]["Attributes"]["exitCode"] == "2" and die["id"] == container.id


def test_save_load_and_history(engine, client, tmp_path):
    client.images.get("busybox").tag("dpy-saved", "1")
    tarball = tmp_path / "saved.tar"
    with open(tarball, "wb") as out:
        for chunk in client.api.get_image("dpy-saved:1"):
            out.write(chunk)
    with tarfile.open(tarball) as archive:
        assert "manifest.json" in archive.getnames()
    client.images.remove("dpy-saved:1")
    with open(tarball, "rb") as source:
        loaded = client.images.load(source.read())
    assert "dpy-saved:1" in loaded[0].tags
    # the docker CLI: save -o and load -i
    saved = engine.cli("save", "-o", str(tmp_path / "cli.tar"), "dpy-saved:1")
    assert saved.returncode == 0, saved.stderr
    assert engine.cli("rmi", "dpy-saved:1").returncode == 0
    reloaded = engine.cli("load", "-i", str(tmp_path / "cli.tar"))
    assert reloaded.returncode == 0 and "Loaded image: dpy-saved:1" in reloaded.stdout
    built, _ = client.images.build(
        fileobj=_context({"Dockerfile": "FROM busybox\nRUN echo layered > /l\n"}),
        custom_context=True, tag="dpy-history:1")
    steps = [row["CreatedBy"] for row in client.api.history("dpy-history:1")]
    assert any("echo layered" in step for step in steps)
    shown = engine.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "dpy-history:1")
    assert "echo layered" in shown.stdout
    for tag in ("dpy-saved:1", "dpy-history:1"):
        client.images.remove(tag)
