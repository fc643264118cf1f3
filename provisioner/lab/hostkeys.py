"""Lab hosts keep their SSH identity across rebuilds: host keys and subnet outlive `lab down`.

Place: used by both providers when they create a host. A cluster pins each host's SSH key on
first contact (provisioner/engine/hostkeys.py), so a lab rebuilt with fresh keys would make the
next `create cluster` refuse every host as "SSH host key changed". Instead each lab host gets
its keys from `<state root>/lab-hostkeys/<lab>/<host>/`, generated on the operator machine the
first time and kept when the lab is taken down, and a lab asks for the subnet it had before, so
`lab up`, `lab down`, `lab up` brings back the same hosts at the same addresses with the same
keys. A real host whose key changes still fails the pin: nothing here touches known_hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from provisioner.errors import ProvisionerError

KEY_TYPES = ("ed25519", "ecdsa", "rsa")


def store(state_root: Path, lab: str) -> Path:
    return state_root / "lab-hostkeys" / lab


def ensure(state_root: Path, lab: str, host: str) -> Path:
    """The directory holding `ssh_host_<type>_key[.pub]` for one host, generated when missing."""
    directory = store(state_root, lab) / host
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for key_type in KEY_TYPES:
        private = directory / f"ssh_host_{key_type}_key"
        if private.exists() and private.with_suffix(".pub").exists():
            continue
        private.unlink(missing_ok=True)
        private.with_suffix(".pub").unlink(missing_ok=True)
        command = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"root@{host}",
                   "-f", str(private)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ProvisionerError(f"generating the SSH host keys of lab host {host} failed",
                                   command=" ".join(command),
                                   output=result.stdout + result.stderr)
    return directory


def install(source: Path, etc_ssh: Path) -> None:
    """Copy a host's keys into an /etc/ssh directory (private 0600, public 0644)."""
    etc_ssh.mkdir(parents=True, exist_ok=True)
    for key_type in KEY_TYPES:
        for suffix, mode in (("", 0o600), (".pub", 0o644)):
            name = f"ssh_host_{key_type}_key{suffix}"
            shutil.copyfile(source / name, etc_ssh / name)
            os.chmod(etc_ssh / name, mode)


def last_subnet(state_root: Path, lab: str) -> int | None:
    try:
        return int((store(state_root, lab) / "subnet").read_text())
    except (OSError, ValueError):
        return None


def remember_subnet(state_root: Path, lab: str, index: int) -> None:
    path = store(state_root, lab) / "subnet"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(f"{index}\n")
