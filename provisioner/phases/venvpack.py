"""Hosts' virtualenv built once on the operator and shipped as two tarballs (`install` uses it).

pip on every host unpacked, byte-compiled and linked the same ~50 wheels, and was most of a
create. When the operator's Python matches the hosts' (same version and machine; `install`
asks each host), the operator installs the wheelhouse once into a staging tree laid out like
the hosts' virtualenv and packs it in two layers, each named by its digest:

- `venv-deps-<digest>.tar.gz`: every dependency, byte-compiled. It changes only when a
  dependency does, so it is cached in the operator's state cache across clusters and runs.
- `venv-project-<digest>.tar.gz`: this project's own package and console scripts. It changes
  with every edit of the source, and is small.

The virtualenv's skeleton (pyvenv.cfg, the `bin/python` links, activate scripts) is not in
either layer: `python3 -m venv --without-pip` makes it on the host, for the host's own
interpreter. Console scripts are rewritten to name the host's virtualenv python, and byte code
records the host's paths, so tracebacks on hosts show the hosts' files.
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from provisioner.errors import ProvisionerError

PROJECT = "provisioner"
# The project's dependencies only the operator runs (SSH and pyinfra, templates, the spec's
# checks, Vagrant, the CLI). The hosts' dependency layer leaves them out, with whatever only
# they need (gevent, pydantic, nacl...): a quarter of the bytes every host unpacks and copies
# into the components image. Host code (provisioner/components) never imports them
# (tests/unit/phases/test_install.py checks that).
OPERATOR_ONLY = frozenset({"pyinfra", "paramiko", "jinja2", "cerberus", "python-vagrant", "click",
                           "packaging"})


@dataclass(frozen=True)
class Layer:
    """One tarball to unpack into the hosts' virtualenv; its name carries its digest."""

    kind: str  # "deps" or "project"
    digest: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def operator_python() -> str:
    """`<major>.<minor> <machine>` of the Python building the layers (hosts must say the same)."""
    return f"{sys.version_info[0]}.{sys.version_info[1]} {platform.machine()}"


def probe_python_command() -> str:
    """Prints a host's `<major>.<minor> <machine>` for its python3, as operator_python()."""
    return ("python3 -c 'import sys, platform; "
            "print(\"%d.%d %s\" % (sys.version_info[0], sys.version_info[1], platform.machine()))'")


def site_packages(version: str | None = None) -> str:
    """The virtualenv-relative site-packages directory for `<major>.<minor>`."""
    version = version or operator_python().split()[0]
    return f"lib/python{version}/site-packages"


def retarget_script(data: bytes, python: str) -> bytes:
    """A console script pip wrote for some interpreter, made to run with `python` instead.

    pip writes `#!<interpreter>` or, for long paths, a `/bin/sh` header that execs it; both
    become one `#!<python>` line. Anything else (a binary, a shell script) is returned as is.
    """
    if not data.startswith(b"#!"):
        return data
    first, _, rest = data.partition(b"\n")
    if first.strip() == b"#!/bin/sh" and rest.startswith(b"'''exec' "):
        # `'''exec' "<python>" "$0" "$@"` then `' '''`: the python body follows.
        lines = rest.split(b"\n", 2)
        if len(lines) == 3 and lines[1].strip() == b"' '''":
            return b"#!" + python.encode() + b"\n" + lines[2]
        return data
    if b"python" in first.rsplit(b"/", 1)[-1]:
        return b"#!" + python.encode() + b"\n" + rest
    return data


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ProvisionerError(what, command=" ".join(command),
                               output=(result.stderr or result.stdout)[-4000:])


def _digest(paths: list[Path], extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _install_tree(wheels: list[Path], tree: Path, venv: str) -> None:
    """`wheels` installed into `tree` as into the virtualenv `venv` (lib/... and bin/)."""
    packages = tree / site_packages()
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet",
          "--no-index", "--no-deps", "--no-compile", "--no-warn-script-location",
          "--target", str(packages), *map(str, wheels)],
         "installing the wheelhouse into the hosts' virtualenv layout")
    scripts = packages / "bin"
    if scripts.is_dir():
        (tree / "bin").mkdir(exist_ok=True)
        for script in scripts.iterdir():
            target = tree / "bin" / script.name
            if script.is_file() and not script.is_symlink():
                target.write_bytes(retarget_script(script.read_bytes(), f"{venv}/bin/python"))
                os.chmod(target, script.stat().st_mode & 0o777)
            else:
                shutil.move(str(script), target)
        shutil.rmtree(scripts)
    # Byte code as the hosts will find it: same interpreter version, host paths in tracebacks.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "-s", str(tree),
                    "-p", venv, str(packages)], capture_output=True)


def _pack(tree: Path, tarball: Path) -> None:
    partial = tarball.with_name(tarball.name + ".partial")
    _run(["tar", "--create", "--use-compress-program=gzip -1", "--numeric-owner",
          "--owner=0", "--group=0", "-C", str(tree), "-f", str(partial), "."],
         f"packing {tarball.name}")
    os.replace(partial, tarball)


def build_layer(kind: str, wheels: list[Path], cache: Path, venv: str) -> Layer:
    """The layer holding `wheels` (built unless the cache already has it)."""
    digest = _digest(wheels, f"{kind} {operator_python()} {venv}")
    tarball = cache / f"venv-{kind}-{digest}.tar.gz"
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"venv-{kind}-", dir=cache) as scratch:
            tree = Path(scratch) / "tree"
            _install_tree(wheels, tree, venv)
            _pack(tree, tarball)
        for old in cache.glob(f"venv-{kind}-*.tar.gz"):
            if kind == "project" and old != tarball:
                old.unlink(missing_ok=True)  # one project layer at a time: it changes often
    return Layer(kind, digest, tarball)


def _requirements(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist()
                        if name.count("/") == 1 and name.endswith(".dist-info/METADATA"))
        headers = email.parser.BytesParser().parsebytes(archive.read(metadata), headersonly=True)
    return [Requirement(line) for line in headers.get_all("Requires-Dist") or []]


def _distribution(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-", 1)[0])


def host_dependencies(project: list[Path], deps: list[Path]) -> list[Path]:
    """The wheels of `deps` the hosts need: the project's requirements but OPERATOR_ONLY, and
    theirs, transitively (markers evaluated for this interpreter, which the hosts' matches)."""
    by_name = {_distribution(wheel): wheel for wheel in deps}
    needed: set[str] = set()
    todo = [(req, ()) for wheel in project for req in _requirements(wheel)
            if canonicalize_name(req.name) not in OPERATOR_ONLY]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": extra})
                                              for extra in ("", *extras)):
            continue
        name = canonicalize_name(req.name)
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        todo += [(dependency, tuple(req.extras)) for dependency in _requirements(by_name[name])]
    return [wheel for wheel in deps if _distribution(wheel) in needed]


def build_layers(wheelhouse: Path, cache: Path, venv: str) -> tuple[Layer, Layer]:
    """(deps, project) layers for the wheelhouse, for a virtualenv at `venv` on hosts."""
    wheels = sorted(wheelhouse.glob("*.whl"))
    project = [w for w in wheels if w.name.startswith(f"{PROJECT}-")]
    deps = host_dependencies(project, [w for w in wheels if w not in project])
    return build_layer("deps", deps, cache, venv), build_layer("project", project, cache, venv)


def unpack_commands(venv: str, deps: Layer | None, project: Layer, remote_dir: str,
                    deps_marker: str, marker: str, digest: str) -> list[str]:
    """Shell commands unpacking uploaded layers into `venv` (deps None: only the project).

    Each marker is written last, so an interrupted unpack is redone on the next run."""
    packages = f"{venv}/{site_packages()}"
    commands = []
    if deps is not None:
        commands += [
            f"rm -rf {venv}",
            f"python3 -m venv --without-pip {venv}",
            f"tar -xzf {remote_dir}/{deps.name} -C {venv}",
            f"echo {deps.digest} > {deps_marker}",
        ]
    commands += [
        f"rm -f {marker}",
        f"rm -rf {packages}/{PROJECT} {packages}/{PROJECT}-*.dist-info",
        f"tar -xzf {remote_dir}/{project.name} -C {venv}",
        f"echo {digest} > {marker}",
    ]
    return commands
