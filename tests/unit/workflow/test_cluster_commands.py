"""Exit codes and messages of the cluster commands, through the real `provisioner` command.

Nothing here reaches a host: each case fails before the first SSH connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioner.phases import CREATE_PHASES
from provisioner.workflow import walk
from tests.unit.spec.keys import write_private_key

PROVISIONER = Path(sys.executable).parent / "provisioner"
PHASES = ", ".join(path for path, _ in walk(CREATE_PHASES))


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    key = write_private_key(tmp_path / "id_test")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "exits"},
        "spec": {"ssh": {"key": str(key)},
                 "hosts": [{"name": "cp1", "address": "192.0.2.1",
                            "roles": ["control-plane", "etcd"]}]},
    }))
    return path


def provisioner(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVISIONER_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([str(PROVISIONER), *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("selection, message", [
    (["--only", "bogus"], f"--only: unknown phase bogus; phases are: {PHASES}"),
    (["--skip", "pki/nope"], f"--skip: unknown phase pki/nope; phases are: {PHASES}"),
    (["--only", "pki", "--skip", "pki"], "--only/--skip leave no phase to run"),
])
def test_a_bad_phase_selection_is_a_usage_error(selection, message, spec_file, tmp_path):
    result = provisioner(tmp_path, "create", "cluster", "-f", str(spec_file), *selection)
    assert result.returncode == 2, result.stderr
    assert f"Error: {message}" in result.stderr
    assert "Usage: " in result.stderr


def test_verify_create_only_verify_and_check_expiration_agree_when_nothing_was_created(spec_file, tmp_path):
    expected = (f"no local state for cluster 'exits' in {tmp_path}/state/clusters/exits; "
                f"run `provisioner create cluster -f {spec_file}` first")

    verify = provisioner(tmp_path, "verify", "-f", str(spec_file))
    create = provisioner(tmp_path, "create", "cluster", "-f", str(spec_file), "--only", "verify")
    expiry = provisioner(tmp_path, "certs", "check-expiration", "-f", str(spec_file))

    assert (verify.returncode, verify.stderr) == (1, f"ERROR: {expected}\n")
    assert (expiry.returncode, expiry.stderr) == (1, f"ERROR: {expected}\n")
    assert create.returncode == 1, create.stderr
    assert create.stderr == f"ERROR: phase verify: {expected}\n"
    assert "smoke tests failed" not in create.stdout + create.stderr
