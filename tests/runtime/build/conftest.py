"""Fixtures for the build tests: a store with the bootstrap busybox image, a builder whose RUN
steps run in real containers (the container core), and build contexts in tmp dirs."""

from __future__ import annotations

import os

import pytest

from provisioner.components.runtime.build.builder import Builder
from provisioner.components.runtime.build.runstep import container_run_step
from provisioner.components.runtime.images.bootstrap import ensure_bootstrap_images
from provisioner.components.runtime.images.store import ImageStore

CGROUP_PARENT = "provisioner-runtime-buildtest"


@pytest.fixture
def store(tmp_path) -> ImageStore:
    if os.geteuid() != 0:
        pytest.fail("the build tests need root (containers for RUN, overlay whiteouts)")
    store = ImageStore(str(tmp_path / "root"))
    ensure_bootstrap_images(store)
    return store


@pytest.fixture
def run_step(tmp_path):
    work = tmp_path / "run-steps"
    work.mkdir()
    yield container_run_step(str(work), cgroup_parent=CGROUP_PARENT)
    assert os.listdir(work) == [], "a RUN step left its container state behind"


@pytest.fixture
def builder(store, run_step) -> Builder:
    return Builder(store, run_step)


@pytest.fixture
def context(tmp_path):
    """context({path: content}) -> a build context directory."""
    directory = tmp_path / "context"

    def make(files: dict[str, str]) -> str:
        directory.mkdir(exist_ok=True)
        for name, content in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return str(directory)

    return make


def read_in_image(store, image, path: str) -> str | None:
    """The file at `path` as the image's merged root shows it (topmost layer wins)."""
    from provisioner.components.runtime.build.steps import find_in_layers
    found = find_in_layers(store.layer_dirs(image), path)
    return open(found).read() if found else None


@pytest.fixture(scope="session", autouse=True)
def remove_build_test_cgroups():
    """The per-step cgroups go with their containers; their parent goes at the end."""
    import glob
    yield
    parents = glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}") + \
        glob.glob(f"/sys/fs/cgroup/{CGROUP_PARENT}")
    leftovers = []
    for parent in sorted(parents, key=len, reverse=True):
        try:
            os.rmdir(parent)
        except OSError:
            leftovers.append(parent)
    assert leftovers == [], f"build steps left cgroups behind: {leftovers}"
