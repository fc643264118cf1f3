"""This project's own pyinfra operations, for what pyinfra's built-in ones do not cover.

Each reads a fact first and yields commands only when the host differs, like pyinfra's own.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.facts.server import Command


@operation()
def venv_from_wheelhouse(venv: str, marker: str, wheelhouse: str, project_wheel: str, digest: str):
    """A virtualenv at `venv` holding exactly the wheelhouse identified by `digest`.

    The digest is written last into `marker` (a file inside the venv), so an interrupted
    install is redone.
    """
    current = host.get_fact(Command, command=f"cat {shlex.quote(marker)} 2>/dev/null || true")
    if (current or "").strip() == digest:
        return
    q_venv, q_wh = shlex.quote(venv), shlex.quote(wheelhouse)
    yield f"test -x {q_venv}/bin/python || python3 -m venv {q_venv}"
    yield (
        f"{q_venv}/bin/pip install --quiet --disable-pip-version-check --no-index "
        f"--find-links {q_wh} --upgrade {q_wh}/{shlex.quote(project_wheel)}"
    )
    # The project's version does not change with every edit; force this one wheel in.
    yield (
        f"{q_venv}/bin/pip install --quiet --disable-pip-version-check --no-index --no-deps "
        f"--force-reinstall {q_wh}/{shlex.quote(project_wheel)}"
    )
    yield f"echo {shlex.quote(digest)} > {shlex.quote(marker)}"


@operation()
def venv_from_layers(venv: str, layers_dir: str, deps: tuple[str, str, str],
                     project: tuple[str, str], marker: str, deps_marker: str, digest: str,
                     unpack_project: list[str], unpack_both: list[str]):
    """A virtualenv at `venv` unpacked from ready layers (provisioner.phases.venvpack).

    `deps` is (local tarball, remote name, digest) of the dependency layer and `project` the
    (local tarball, remote name) of the project layer. One fact reads both markers; a layer
    is uploaded and unpacked only when its marker differs (with `unpack_both` or
    `unpack_project`), so a changed project ships a few megabytes and leaves the dependencies
    alone.
    """
    markers = host.get_fact(Command, command=(
        f'printf "project=%s\\ndeps=%s\\n" "$(cat {shlex.quote(marker)} 2>/dev/null)" '
        f'"$(cat {shlex.quote(deps_marker)} 2>/dev/null)"'))
    found = dict(line.partition("=")[::2] for line in (markers or "").splitlines())
    deps_local, deps_name, deps_digest = deps
    with_deps = found.get("deps", "").strip() != deps_digest
    if not with_deps and found.get("project", "").strip() == digest:
        return
    # The directory keeps the current layers only (a wheelhouse or older layers go).
    keep = " ".join(f"! -name {shlex.quote(name)}" for name in (deps_name, project[1]))
    yield (f"mkdir -p {shlex.quote(layers_dir)} && find {shlex.quote(layers_dir)} -mindepth 1 "
           f"-maxdepth 1 {keep} -exec rm -rf {{}} +")
    if with_deps:
        yield FileUploadCommand(deps_local, f"{layers_dir}/{deps_name}")
    yield FileUploadCommand(project[0], f"{layers_dir}/{project[1]}")
    yield from (unpack_both if with_deps else unpack_project)
