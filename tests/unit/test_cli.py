"""The CLI's contract for failures: one `ERROR:` line, documented exit codes, tracebacks only with -v.

Each case runs the CLI in its own process: the CLI patches sockets for gevent, which must not
leak into the test session.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.spec.keys import write_private_key

UNEXPECTED = """
import click, sys
from provisioner import cli

@click.command("boom")
def boom():
    raise RuntimeError("disk on fire")

cli.cli.add_command(boom)
cli.main(sys.argv[1:])
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", UNEXPECTED, *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_an_unexpected_error_is_one_line_with_a_hint_and_exit_1():
    result = run("boom")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "ERROR: RuntimeError: disk on fire"
    assert "run again with -v" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_v_the_traceback_is_shown():
    result = run("-v", "boom")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "disk on fire" in result.stderr


def write_spec(tmp_path: Path, **spec: object) -> Path:
    """A one-host cluster file (key: a real private key unless `spec` sets ssh)."""
    key = tmp_path / "id_test"
    write_private_key(key)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "c"},
        "spec": {"ssh": {"key": str(key)},
                 "hosts": [{"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]}],
                 **spec},
    }))
    return path


def test_an_unusable_state_directory_names_itself_and_the_variable(tmp_path: Path):
    spec = write_spec(tmp_path)
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("")
    provisioner = str(Path(sys.executable).parent / "provisioner")
    result = subprocess.run([provisioner, "create", "cluster", "-f", str(spec)], capture_output=True,
                            text=True, timeout=120, env={"PROVISIONER_STATE_DIR": str(not_a_dir),
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert f"cannot create the local state directory {not_a_dir}/clusters/c" in result.stderr
    assert "PROVISIONER_STATE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_odd_paths_in_a_spec_are_input_errors_with_their_field_and_exit_3(tmp_path: Path):
    spec = write_spec(tmp_path, ssh={"key": "~no-such-user-here/id"}, inventory="i" * 5000)
    provisioner = str(Path(sys.executable).parent / "provisioner")
    for command in (["validate"], ["create", "cluster"]):
        result = subprocess.run([provisioner, *command, "-f", str(spec)], capture_output=True,
                                text=True, timeout=120,
                                env={"PROVISIONER_STATE_DIR": str(tmp_path / "state"),
                                     "PATH": "/usr/bin:/bin"})
        assert result.returncode == 3, result.stderr
        assert "spec.inventory: " + "i" * 200 + "... cannot be used: File name too long" in result.stderr
        assert f"spec.ssh.key: file {tmp_path}/~no-such-user-here/id does not exist" in result.stderr
        assert "Traceback" not in result.stderr and "OSError" not in result.stderr
