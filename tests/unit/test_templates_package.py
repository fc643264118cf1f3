"""Templates ship with the package: the built wheel, installed into a fresh virtualenv, renders
every template from there (not from this checkout). Its other data (the API server's derived
schemas) ships too."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import jinja2
import markupsafe

REPO = Path(__file__).resolve().parents[2]

RENDER_ALL = """
import json, provisioner.templates as t
print(json.dumps({"module": t.__file__, "rendered": {
    name: t.render(name, **{v: f"<{v}>" for v in t.variables(name)}) for name in t.names()}}))
"""


def run(*command: str, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_installed_wheel_renders_every_template(tmp_path):
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
        str(tmp_path / "dist"), str(REPO), cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("provisioner-*.whl"))
    assert "provisioner/components/apiserver/schemas_generated.json" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
        "--quiet", "--no-deps", "--no-index", str(wheel), cwd=tmp_path)
    # Only the template engine comes from here; the project itself must come from the wheel.
    engine = tmp_path / "engine"
    engine.mkdir()
    for package in (jinja2, markupsafe):
        (engine / package.__name__).symlink_to(Path(package.__file__).parent)

    found = json.loads(run(str(venv / "bin" / "python"), "-c", RENDER_ALL, cwd=tmp_path,
                           env={"PYTHONPATH": str(engine), "PATH": "/usr/bin:/bin"}))

    assert found["module"].startswith(str(venv))
    shipped = sorted(p.name for p in (REPO / "provisioner" / "templates").glob("*.j2"))
    assert shipped and sorted(found["rendered"]) == shipped
    unit = found["rendered"]["etcd.service.j2"]
    assert "<etcd_binary>" in unit and "<data_dir>" in unit
