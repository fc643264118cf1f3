"""Helpers every suite shares: a free port for a process the test starts, a DevCluster on such ports."""

from __future__ import annotations

from pathlib import Path

from provisioner.dev import free_port

__all__ = ["dev_cluster", "free_port"]


def dev_cluster(root: Path, **options):
    """A DevCluster whose etcd and API server listen on ports from free_port (its own defaults
    come from bind(0), in the ephemeral range; an API server restarted on its port is then open to
    a client's reconnect taking that port, even by connecting to itself)."""
    from provisioner.dev import DevCluster

    return DevCluster(root, **{"etcd_port": free_port(), "api_port": free_port(), **options})
