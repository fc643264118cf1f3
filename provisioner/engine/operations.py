"""This project's own pyinfra operations, for what pyinfra's built-in ones do not cover.

Each reads a fact first and yields commands only when the host differs, like pyinfra's own.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
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
