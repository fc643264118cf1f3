"""Offline images for a fresh machine: busybox and python, reproducible and idempotent."""

from __future__ import annotations

import os

from provisioner.components.runtime.images.bootstrap import ensure_bootstrap_images
from provisioner.components.runtime.images.elf import read_dynamic
from provisioner.components.runtime.images.store import ImageStore


def test_bootstrap_images_are_reproducible_and_idempotent(tmp_path):
    first_store = ImageStore(str(tmp_path / "first"))
    busybox, python = ensure_bootstrap_images(first_store)
    assert busybox.tags == ["busybox:latest"]
    assert sorted(python.tags) == ["python:3.11", "python:latest"]
    assert python.layers[0] == busybox.layers[0]          # python sits on the busybox layer
    assert python.config["config"]["Cmd"] == ["python3"]

    blobs_before = sorted(os.listdir(first_store.blobs.dir))
    again = ensure_bootstrap_images(first_store)
    assert [image.id for image in again] == [busybox.id, python.id]
    assert sorted(os.listdir(first_store.blobs.dir)) == blobs_before

    second = ensure_bootstrap_images(ImageStore(str(tmp_path / "second")))
    assert [(image.id, image.digest) for image in second] == \
        [(busybox.id, busybox.digest), (python.id, python.digest)]


def test_bootstrap_busybox_tree(tmp_path):
    store = ImageStore(str(tmp_path / "root"))
    busybox, python = ensure_bootstrap_images(store)
    [layer] = store.layer_dirs(busybox)
    assert os.readlink(os.path.join(layer, "bin", "sh")) == "/bin/busybox"
    assert os.access(os.path.join(layer, "bin", "busybox"), os.X_OK)
    assert open(os.path.join(layer, "etc", "passwd")).read().startswith("root:x:0:0:")
    assert oct(os.stat(os.path.join(layer, "tmp")).st_mode & 0o7777) == "0o1777"
    top = store.layer_dirs(python)[-1]
    assert os.path.exists(os.path.join(top, "usr", "lib", "python3.11", "http", "server.py"))
    assert not os.path.exists(os.path.join(top, "usr", "lib", "python3.11", "test"))
    interpreter, _ = read_dynamic("/usr/bin/python3.11")
    assert os.path.exists(os.path.join(top, interpreter.lstrip("/")))


def test_a_built_layer_is_kept_unpacked_exactly_as_its_blob_unpacks(tmp_path):
    """The tree a layer was packed from is kept as its unpacked form (no second unpacking at the
    first container): it must be what unpacking the blob gives, file for file."""
    from provisioner.components.runtime.images.layers import unpack_layer

    store = ImageStore(str(tmp_path / "root"))
    _busybox, python = ensure_bootstrap_images(store)
    top = python.layers[-1]
    kept = store.layer_dir(top)
    assert os.path.isdir(kept)
    unpacked = str(tmp_path / "unpacked")
    unpack_layer(store.blobs.path(top.digest), unpacked, expected_diff_id=top.diff_id)

    def listing(root: str) -> dict[str, tuple]:
        found = {}
        for directory, dirs, files in os.walk(root):
            for name in dirs + files:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                found[os.path.relpath(path, root)] = (
                    info.st_mode, info.st_uid, info.st_gid,
                    os.readlink(path) if os.path.islink(path) else
                    info.st_size if os.path.isfile(path) else None)
        return found

    assert listing(kept) == listing(unpacked)
    assert os.stat(kept).st_mode & 0o7777 == os.stat(unpacked).st_mode & 0o7777
