"""This project's own pyinfra operations, for what pyinfra's built-in ones do not cover.

Each reads a fact first and yields commands only when the host differs, like pyinfra's own.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.server import Command


@operation()
def venv_from_wheelhouse(venv: str, wheelhouse: str, project_wheel: str, digest: str):
    """A virtualenv at `venv` holding exactly the wheelhouse identified by `digest`.

    The digest is written last into a marker file, so an interrupted install is redone.
    """
    marker = f"{venv}/.provisioner-wheelhouse"  # phases.install.VENV_MARKER reads it too
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
def file_absent_unless_present(path: str, keep_if: str):
    """Remove `path` unless the host already has `keep_if` (used for one-shot bootstrap files)."""
    state = host.get_fact(
        Command,
        command=f"if test -e {shlex.quote(keep_if)}; then echo keep; elif test -e {shlex.quote(path)}; "
        "then echo remove; else echo absent; fi",
    )
    if (state or "").strip() == "remove":
        yield f"rm -f {shlex.quote(path)}"
