"""Where a cluster's local state lives on the operator machine.

One directory per cluster holds its certificates, pinned SSH host keys, the wheelhouse shipped
to hosts and the record of the last run. The root is `~/.local/state/provisioner`, or
`$PROVISIONER_STATE_DIR` when set (tests and CI point it at a temporary directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError


def state_root() -> Path:
    configured = os.environ.get("PROVISIONER_STATE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path("~/.local/state/provisioner").expanduser()


@dataclass(frozen=True)
class ClusterState:
    """The paths of one cluster's local state; directories are created private (0700)."""

    root: Path

    @classmethod
    def for_cluster(cls, name: str) -> "ClusterState":
        return cls(state_root() / "clusters" / name)

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def wheelhouse_dir(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.conf"

    def ensure(self) -> "ClusterState":
        for directory in (self.root, self.pki_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise ProvisionerError(
                    f"cannot create the local state directory {directory} ({exc.strerror}); "
                    "set PROVISIONER_STATE_DIR to a writable directory"
                ) from None
        return self
