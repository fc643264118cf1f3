"""Images through the CLI: bootstrap images, build with its cache and .dockerignore, save/load,
tag/rmi, and push/pull against Debian's docker-registry on loopback."""

from __future__ import annotations

import os
import re

import pytest

from tests.runtime.images.registry_fixtures import start_registry

DOCKERFILE = """\
FROM busybox
COPY . /ctx/
RUN cat /ctx/hello.txt > /copy.txt && echo ran-step
CMD ["cat", "/copy.txt"]
"""


def image_id(daemon, ref: str) -> str:
    return daemon.inspect(ref)["Id"]


def image_tags(daemon) -> set[str]:
    rows = daemon.cli("images").stdout.splitlines()[1:]
    return {":".join(re.split(r"\s{2,}", row)[:2]) for row in rows}


def test_a_fresh_daemon_offers_busybox_and_python_and_bootstrap_is_idempotent(daemon):
    assert {"busybox:latest", "python:3.11", "python:latest"} <= image_tags(daemon)
    python_id = image_id(daemon, "python:3.11")
    busybox_id = image_id(daemon, "busybox")
    assert daemon.cli("rmi", "python:latest", "python:3.11").returncode == 0
    assert "python:3.11" not in image_tags(daemon)

    again = daemon.cli("images", "--bootstrap")
    assert again.returncode == 0, again.stderr
    assert {"busybox:latest", "python:3.11", "python:latest"} <= image_tags(daemon)
    # Made from the same host files: the same ids again.
    assert image_id(daemon, "python:3.11") == python_id
    assert image_id(daemon, "busybox") == busybox_id


def build(daemon, context, tag: str, *extra: str):
    result = daemon.cli("build", "-t", tag, *extra, str(context), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_build_cache_hits_when_unchanged_and_misses_after_a_file_change(daemon, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "hello.txt").write_text("first\n")
    (context / "notes.log").write_text("ignored\n")
    (context / ".dockerignore").write_text("*.log\n")
    try:
        first = build(daemon, context, "cached:1")
        assert "Using cache" not in first and "ran-step" in first.splitlines()
        built = image_id(daemon, "cached:1")
        assert daemon.cli("run", "--rm", "cached:1").stdout == "first\n"
        listing = daemon.cli("run", "--rm", "cached:1", "ls", "/ctx").stdout.split()
        assert "hello.txt" in listing and "notes.log" not in listing

        # Unchanged, and a change only to an ignored file: every step from the cache.
        (context / "notes.log").write_text("changed but ignored\n")
        second = build(daemon, context, "cached:1")
        assert second.count("Using cache") == 3 and "ran-step" not in second.splitlines()
        assert image_id(daemon, "cached:1") == built

        (context / "hello.txt").write_text("second\n")
        third = build(daemon, context, "cached:1")
        assert "Using cache" not in third and "ran-step" in third.splitlines()
        assert image_id(daemon, "cached:1") != built
        assert daemon.cli("run", "--rm", "cached:1").stdout == "second\n"
    finally:
        daemon.cli("rmi", "cached:1")


def test_save_then_load_gives_the_same_image_id_and_digest(daemon, tmp_path):
    assert daemon.cli("tag", "busybox", "roundtrip:v1").returncode == 0
    before = daemon.inspect("roundtrip:v1")
    archive = tmp_path / "roundtrip.tar"
    saved = daemon.cli("save", "-o", str(archive), "roundtrip:v1")
    assert saved.returncode == 0, saved.stderr
    assert archive.stat().st_size > 0 and not os.path.exists(f"{archive}.partial")

    removed = daemon.cli("rmi", "roundtrip:v1")
    assert removed.returncode == 0, removed.stderr
    assert "roundtrip:v1" not in image_tags(daemon)
    assert daemon.cli("inspect", "roundtrip:v1").returncode == 1

    loaded = daemon.cli("load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert "roundtrip:v1" in loaded.stdout
    after = daemon.inspect("roundtrip:v1")
    assert (after["Id"], after["Digest"]) == (before["Id"], before["Digest"])
    assert daemon.cli("rmi", "roundtrip:v1").returncode == 0


def test_tag_and_rmi(daemon, remove_after):
    busybox = image_id(daemon, "busybox")
    assert daemon.cli("tag", "busybox", "mine/box:2").returncode == 0
    assert image_id(daemon, "mine/box:2") == busybox
    assert "mine/box:2" in image_tags(daemon)

    remove_after.append("uses-box")
    assert daemon.cli("run", "-d", "--name", "uses-box", "mine/box:2", "sleep", "1000") \
        .returncode == 0
    # Untagging one of several names is allowed while a container uses the image.
    untagged = daemon.cli("rmi", "mine/box:2")
    assert untagged.returncode == 0, untagged.stderr
    assert "mine/box:2" not in image_tags(daemon)
    assert image_id(daemon, "busybox") == busybox

    missing = daemon.cli("rmi", "mine/box:2")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: ")
    bad = daemon.cli("tag", "busybox", "Not A Valid:Ref")
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ")


@pytest.fixture
def registry(tmp_path):
    directory = tmp_path / "registry"
    directory.mkdir()
    registry = start_registry(str(directory))
    yield registry
    registry.stop()


def test_push_then_pull_through_a_local_registry(daemon, registry):
    ref = f"{registry.host}/daemon-tests/busybox:1"
    busybox = daemon.inspect("busybox")
    assert daemon.cli("tag", "busybox", ref).returncode == 0
    pushed = daemon.cli("push", ref)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert daemon.cli("rmi", ref).returncode == 0
    assert daemon.cli("inspect", ref).returncode == 1

    pulled = daemon.cli("pull", ref)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    after = daemon.inspect(ref)
    assert (after["Id"], after["Digest"]) == (busybox["Id"], busybox["Digest"])
    assert daemon.cli("run", "--rm", ref, "echo", "pulled").stdout == "pulled\n"
    assert daemon.cli("rmi", ref).returncode == 0

    absent = daemon.cli("pull", f"{registry.host}/daemon-tests/nothing:1")
    assert absent.returncode == 1 and absent.stderr.startswith("Error: ")
