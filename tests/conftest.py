"""Helpers every suite shares: a free port for a process the test starts, a DevCluster on such ports."""

from __future__ import annotations

from pathlib import Path

from provisioner.dev import free_port

__all__ = ["dev_cluster", "free_port"]


def dev_cluster(root: Path, **options):
    """A DevCluster whose etcd and API server ports are chosen here, by free_port, so a suite's
    restarts and second servers can name them before the cluster starts."""
    from provisioner.dev import DevCluster

    return DevCluster(root, **{"etcd_port": free_port(), "api_port": free_port(), **options})
