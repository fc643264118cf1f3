"""Fixtures for the image store tests: stores in tmp dirs and small images made from trees."""

from __future__ import annotations

import os

import pytest

from provisioner.components.runtime.images.layers import diff_upper_dir
from provisioner.components.runtime.images.store import Image, ImageStore


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(str(tmp_path / "root-a"))


@pytest.fixture
def other_store(tmp_path) -> ImageStore:
    return ImageStore(str(tmp_path / "root-b"))


def write_tree(root: str, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(content)


def make_image(store: ImageStore, tmp_dir: str, layers: list[dict[str, str]],
               tags: list[str], config: dict | None = None) -> Image:
    """An image whose layers hold the given {path: content} files."""
    made = []
    for number, files in enumerate(layers):
        tree = os.path.join(tmp_dir, f"tree-{number}")
        write_tree(tree, files)
        tar = os.path.join(tmp_dir, f"layer-{number}.tar")
        diff_upper_dir(tree, tar)
        made.append(store.add_layer(tar))
    default = {"config": {"Cmd": ["/bin/sh"]}, "created": "2024-01-01T00:00:00Z"}
    return store.commit(config or default, made, tags)


@pytest.fixture
def plain_registry(tmp_path):
    from .registry_fixtures import start_registry
    os.makedirs(tmp_path / "registry-plain")
    registry = start_registry(str(tmp_path / "registry-plain"))
    yield registry
    registry.stop()


@pytest.fixture
def tls_registry(tmp_path):
    from .registry_fixtures import start_registry
    os.makedirs(tmp_path / "registry-tls")
    registry = start_registry(str(tmp_path / "registry-tls"), tls=True)
    yield registry
    registry.stop()




@pytest.fixture
def basic_registry(tmp_path):
    from .registry_fixtures import start_registry, write_htpasswd
    directory = tmp_path / "registry-basic"
    os.makedirs(directory)
    registry = start_registry(str(directory), htpasswd=write_htpasswd(str(directory)))
    yield registry
    registry.stop()
