"""The install phase: what a host's probe says, and both ways of filling the virtualenv run for
real on this machine (pyinfra's local connector, a scratch directory, tiny wheels): pip from the
wheelhouse on the host, and ready layers built here and unpacked there."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from provisioner.engine.operations import venv_from_layers, venv_from_wheelhouse
from provisioner.phases import venvpack
from provisioner.phases.install import PROBE, parse_probe, wheelhouse_digest
from tests.unit.engine.test_session import HOST, session


def tiny_wheel(directory: Path, version: str, name: str = "tinypkg",
               requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel of a package `name` whose VERSION is `version`, with a
    console script `<name>-version` printing it, requiring `requires`."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    members = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n\ndef main():\n    print(VERSION)\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {line}\n" for line in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[console_scripts]\n{name}-version = {name}:main\n",
    }
    members[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*members, f"{info}/RECORD"])
    path = directory / f"{name}-{version}-py3-none-any.whl"
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


@pytest.mark.parametrize("installed, expected", [
    ("abc", ("abc", "3.11")),
    (None, ("", "3.11")),        # nothing installed yet
])
def test_a_probe_gives_the_installed_digest_and_the_hosts_python(tmp_path, installed, expected):
    marker = tmp_path / "marker"
    if installed is not None:
        marker.write_text(installed + "\n")
    probe = PROBE.replace("/opt/provisioner/venv/.provisioner-wheelhouse",
                                        str(marker))
    out = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True).stdout
    digest, python = parse_probe(out)
    assert (digest, python.split()[0]) == expected
    assert python == venvpack.operator_python()   # this machine's python3 is the operator's


@pytest.mark.parametrize("script, expected", [
    (b"#!/tmp/build/bin/python3\nimport sys\n", b"#!/opt/v/bin/python\nimport sys\n"),
    (b"#!/bin/sh\n'''exec' \"/very/long/path/bin/python\" \"$0\" \"$@\"\n' '''\nimport sys\n",
     b"#!/opt/v/bin/python\nimport sys\n"),
    (b"#!/bin/sh\necho hi\n", b"#!/bin/sh\necho hi\n"),        # a shell script stays
    (b"\x7fELF\x02\x01", b"\x7fELF\x02\x01"),                   # so does a binary
])
def test_console_scripts_are_made_to_run_with_the_hosts_virtualenv_python(script, expected):
    assert venvpack.retarget_script(script, "/opt/v/bin/python") == expected


def unpack_layers(venv: Path, layers, digest: str, *, apply: bool):
    deps, project = layers
    common = dict(venv=str(venv), deps=deps, project=project, remote_dir=str(venv.parent / "up"),
                  deps_marker=str(venv / ".deps"), marker=str(venv / ".marker"), digest=digest)
    with session() as s:
        s.op(HOST, "virtualenv", venv_from_layers, venv=str(venv),
             layers_dir=str(venv.parent / "up"), deps=(str(deps.path), deps.name, deps.digest),
             project=(str(project.path), project.name), marker=str(venv / ".marker"),
             deps_marker=str(venv / ".deps"), digest=digest,
             unpack_project=venvpack.unpack_commands(**{**common, "deps": None}),
             unpack_both=venvpack.unpack_commands(**common))
        return s.apply() if apply else s.preview()


def run_script(venv: Path, name: str) -> str:
    return subprocess.run([str(venv / "bin" / name)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_ready_layers_make_a_working_virtualenv_and_only_a_changed_layer_is_unpacked(tmp_path):
    wheelhouse, cache, venv = tmp_path / "wheelhouse", tmp_path / "cache", tmp_path / "venv"
    tiny_wheel(wheelhouse, "1.0")
    tiny_wheel(wheelhouse, "1.0", name="provisioner", requires=("tinypkg",))  # the project's
    layers = venvpack.build_layers(wheelhouse, cache, str(venv))
    assert [layer.kind for layer in layers] == ["deps", "project"]

    assert unpack_layers(venv, layers, "d1", apply=False).count == 1
    assert not venv.exists()
    assert unpack_layers(venv, layers, "d1", apply=True).count == 1
    # The scripts run with the host's virtualenv python, built for its own interpreter.
    assert run_script(venv, "tinypkg-version") == "1.0"
    assert run_script(venv, "provisioner-version") == "1.0"
    assert (venv / "pyvenv.cfg").exists()
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == sorted(layer.name for layer in layers)
    assert unpack_layers(venv, layers, "d1", apply=True).count == 0

    # A new project: its layer alone is unpacked over the dependencies already there.
    (wheelhouse / "provisioner-1.0-py3-none-any.whl").unlink()
    tiny_wheel(wheelhouse, "1.1", name="provisioner", requires=("tinypkg",))
    (venv / "lib" / "deps-still-here").write_text("")
    new_layers = venvpack.build_layers(wheelhouse, cache, str(venv))
    assert new_layers[0] == layers[0] and new_layers[1] != layers[1]
    assert unpack_layers(venv, new_layers, "d2", apply=True).count == 1
    assert run_script(venv, "provisioner-version") == "1.1"
    assert (venv / "lib" / "deps-still-here").exists()
    assert (venv / ".marker").read_text().strip() == "d2"
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == sorted(
        layer.name for layer in new_layers)   # the old project layer is gone

    # Drift: a removed virtualenv is unpacked again, dependencies and all.
    subprocess.run(["rm", "-rf", str(venv)], check=True)
    assert unpack_layers(venv, new_layers, "d2", apply=True).count == 1
    assert run_script(venv, "tinypkg-version") == "1.0"


def test_the_wheelhouse_digest_follows_each_wheel(tmp_path):
    tiny_wheel(tmp_path, "1.0")
    first = wheelhouse_digest(tmp_path)
    assert wheelhouse_digest(tmp_path) == first
    tiny_wheel(tmp_path, "2.0")
    assert wheelhouse_digest(tmp_path) != first


def test_the_hosts_dependency_layer_leaves_out_what_only_the_operator_runs(tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    project = tiny_wheel(wheelhouse, "1.0", name="provisioner", requires=(
        "hostlib>=1", "pyinfra>=3", "jinja2", "winonly; sys_platform == 'win32'"))
    deps = [tiny_wheel(wheelhouse, "1.0", name="hostlib", requires=("sharedlib[fast]",)),
            tiny_wheel(wheelhouse, "1.0", name="sharedlib", requires=("speedup; extra == 'fast'",
                                                                      "unused; extra == 'docs'")),
            tiny_wheel(wheelhouse, "1.0", name="speedup"),
            tiny_wheel(wheelhouse, "1.0", name="unused"),
            tiny_wheel(wheelhouse, "1.0", name="winonly"),
            tiny_wheel(wheelhouse, "3.0", name="pyinfra", requires=("gevent",)),
            tiny_wheel(wheelhouse, "1.0", name="gevent"),
            tiny_wheel(wheelhouse, "1.0", name="jinja2", requires=("markupsafe",)),
            tiny_wheel(wheelhouse, "1.0", name="markupsafe")]
    kept = venvpack.host_dependencies([project], deps)
    assert sorted(w.name.split("-")[0] for w in kept) == ["hostlib", "sharedlib", "speedup"]


def test_host_code_imports_only_what_the_hosts_layer_holds():
    """Every third-party module provisioner/components imports comes from a distribution the
    hosts' dependency layer keeps (reachable from the project's requirements but OPERATOR_ONLY)."""
    import ast
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    import provisioner.components

    kept: set[str] = set()
    todo = [Requirement(line) for line in metadata.requires("provisioner")
            if not Requirement(line).marker]           # the test extra is not shipped
    todo = [req for req in todo if venvpack.canonicalize_name(req.name) not in venvpack.OPERATOR_ONLY]
    while todo:
        req = todo.pop()
        name = venvpack.canonicalize_name(req.name)
        if name in kept or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        kept.add(name)
        todo += [Requirement(line) for line in metadata.requires(name) or []]
    providers = metadata.packages_distributions()
    imported = set()
    for path in Path(provisioner.components.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {module for module in imported if module in providers and module != "provisioner"}
    assert {"aiohttp", "pyroute2", "yaml"} <= third_party
    missing = {module for module in third_party
               if not any(venvpack.canonicalize_name(d) in kept for d in providers[module])}
    assert not missing, f"host code imports {missing}, which the hosts' virtualenv leaves out"
