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
