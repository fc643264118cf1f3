"""The components image: built on a host from the project's installed (non-editable) virtualenv,
it runs the project's code and the host's iptables in a container; an unchanged virtualenv is not
built again, a changed one is."""

from __future__ import annotations

import glob
import subprocess
import sys

import pytest

from provisioner.components.runtime.images.bootstrap import PYTHON
from provisioner.components.runtime.images.component import ensure_component_image
from provisioner.components.runtime.images.store import ImageStore

REPO = __file__.rsplit("/tests/", 1)[0]
TAG = "provisioner/components:under-test"


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory) -> str:
    """A virtualenv holding this project as hosts get it: a wheel, not an editable install."""
    work = tmp_path_factory.mktemp("component-venv")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work),
                    REPO], check=True, capture_output=True)
    venv = work / "venv"
    # Hosts make theirs with the system python, which the python:3.11 base image carries too.
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    wheel = glob.glob(str(work / "provisioner-*.whl"))[0]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index", wheel],
                   check=True, capture_output=True)
    return str(venv)


def test_the_image_runs_the_projects_code_and_the_hosts_iptables(daemon, installed_venv):
    image, changed = ensure_component_image(ImageStore(daemon.root), installed_venv, TAG)
    assert changed and TAG in image.tags
    code = daemon.cli("run", "--rm", "--network", "host", TAG, "python", "-c",
                      "import provisioner.components.runtime.paths as p; print(p.DEFAULT_ROOT)")
    assert code.returncode == 0, code.stderr
    assert code.stdout.strip() == "/var/lib/provisioner/runtime"
    tables = daemon.cli("run", "--rm", "--network", "host", TAG, "iptables-save", "--version")
    assert tables.returncode == 0, tables.stderr
    assert tables.stdout.startswith("iptables-save v")


def test_an_unchanged_venv_is_not_built_again_and_a_changed_one_is(daemon, installed_venv):
    store = ImageStore(daemon.root)
    first, _ = ensure_component_image(store, installed_venv, TAG)
    again, changed = ensure_component_image(store, installed_venv, TAG)
    assert not changed and again.id == first.id
    extra = glob.glob(f"{installed_venv}/lib/python3*/site-packages")[0] + "/extra-1.0.dist-info"
    subprocess.run(["mkdir", "-p", extra], check=True)
    try:
        rebuilt, changed = ensure_component_image(store, installed_venv, TAG)
        assert changed and rebuilt.id != first.id
    finally:
        subprocess.run(["rm", "-rf", extra], check=True)


def test_a_directory_that_is_not_a_virtualenv_is_refused_by_name(daemon, tmp_path):
    from provisioner.components.runtime.images.errors import ImageError

    with pytest.raises(ImageError, match=f"{tmp_path} is not a virtualenv"):
        ensure_component_image(ImageStore(daemon.root), str(tmp_path), TAG)
