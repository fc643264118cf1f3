"""`docker cp` through the runtime's Docker API: archive get/put on a running container, with
paths (and symlinks) resolved inside the container, never on the host."""

from __future__ import annotations

import io
import os
import tarfile

import docker
import pytest

from .conftest import wait_until


def _read_single(chunks) -> tuple[str, bytes]:
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))
    member = archive.getmembers()[0]
    return member.name, archive.extractfile(member).read()


def test_copy_in_and_out_with_docker_py_and_the_cli(engine, client, remove_after, tmp_path):
    remove_after.append("dpy-cp")
    container = client.containers.run(
        "busybox", ["sh", "-c", "echo mine > /marker; ln -s / /tmp/up; exec sleep 300"],
        name="dpy-cp", detach=True)
    wait_until(lambda: container.exec_run(["test", "-L", "/tmp/up"]).exit_code == 0,
               what="the container's files")
    chunks, stat = container.get_archive("/marker")
    assert stat["name"] == "marker" and stat["size"] == 5
    assert _read_single(chunks) == ("marker", b"mine\n")
    # an absolute symlink in the container points into the container's root, not the host's
    assert not os.path.exists("/marker")
    chunks, _ = container.get_archive("/tmp/up/marker")
    assert _read_single(chunks)[1] == b"mine\n"
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        member = tarfile.TarInfo("sent.txt")
        member.size = 5
        archive.addfile(member, io.BytesIO(b"sent\n"))
    assert container.put_archive("/root", payload.getvalue()) is True
    assert container.exec_run(["cat", "/root/sent.txt"]).output == b"sent\n"
    with pytest.raises(docker.errors.NotFound):
        container.get_archive("/no/such/file")
    # the docker CLI's cp, both ways
    (tmp_path / "from-host").write_text("host side\n")
    assert engine.cli("cp", str(tmp_path / "from-host"), "dpy-cp:/tmp/").returncode == 0
    assert container.exec_run(["cat", "/tmp/from-host"]).output == b"host side\n"
    copied = engine.cli("cp", "dpy-cp:/marker", str(tmp_path / "out"))
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "out").read_text() == "mine\n"
