"""The install phase: which hosts need the wheelhouse, and the virtualenv operation itself run
for real on this machine (pyinfra's local connector, a scratch directory, a tiny wheel)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from provisioner.engine.operations import venv_from_wheelhouse
from provisioner.engine.session import CommandResult
from provisioner.phases.install import hosts_to_install, wheelhouse_digest
from tests.unit.engine.test_session import HOST, session


def tiny_wheel(directory: Path, version: str) -> Path:
    """A minimal pure-Python wheel of a package `tinypkg` whose VERSION is `version`."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"tinypkg-{version}.dist-info"
    members = {
        "tinypkg/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    members[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*members, f"{info}/RECORD"])
    path = directory / f"tinypkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def install(venv: Path, wheelhouse: Path, wheel: Path, digest: str, *, apply: bool):
    with session() as s:
        s.op(HOST, "virtualenv", venv_from_wheelhouse, venv=str(venv),
             marker=str(venv / ".marker"), wheelhouse=str(wheelhouse), project_wheel=wheel.name,
             digest=digest)
        return s.apply() if apply else s.preview()


def test_the_virtualenv_holds_exactly_the_wheelhouse_and_is_redone_for_a_new_digest(tmp_path):
    wheelhouse, venv = tmp_path / "wheelhouse", tmp_path / "venv"
    wheel = tiny_wheel(wheelhouse, "1.0")

    assert install(venv, wheelhouse, wheel, "d1", apply=False).count == 1
    assert not venv.exists()
    assert install(venv, wheelhouse, wheel, "d1", apply=True).count == 1
    assert (venv / ".marker").read_text().strip() == "d1"
    version = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import tinypkg; print(tinypkg.VERSION)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.strip() == "1.0"
    assert install(venv, wheelhouse, wheel, "d1", apply=False).count == 0

    wheel.unlink()
    wheel = tiny_wheel(wheelhouse, "1.1")
    assert install(venv, wheelhouse, wheel, "d2", apply=True).count == 1
    version = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import tinypkg; print(tinypkg.VERSION)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.strip() == "1.1"


def test_only_hosts_without_this_wheelhouse_are_installed():
    found = {"cp1": CommandResult(True, "abc\n", ""), "cp2": CommandResult(True, "old\n", ""),
             "cp3": CommandResult(True, "", "")}
    assert hosts_to_install(found, "abc") == ["cp2", "cp3"]


def test_the_wheelhouse_digest_follows_each_wheel(tmp_path):
    tiny_wheel(tmp_path, "1.0")
    first = wheelhouse_digest(tmp_path)
    assert wheelhouse_digest(tmp_path) == first
    tiny_wheel(tmp_path, "2.0")
    assert wheelhouse_digest(tmp_path) != first
