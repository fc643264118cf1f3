"""Deciding from one probe per host whether its share of the PKI is already in place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from provisioner.phases.pki import ensure_local, host_files, host_matches, placed_files_probe
from provisioner.spec import load_cluster
from tests.unit.spec.keys import write_private_key


@pytest.fixture
def spec(tmp_path: Path):
    write_private_key(tmp_path / "id_test")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "provisioner.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "pki"},
        "spec": {"ssh": {"key": str(tmp_path / "id_test")}, "hosts": [
            {"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]},
            {"name": "w1", "address": "10.0.0.21", "roles": ["worker"]},
        ]},
    }))
    return load_cluster(str(path))


def probe_lines(spec, pki: Path, host, **override: tuple[str, str, str]) -> str:
    """What the probe prints on a host holding exactly its files, with some lines overridden."""
    lines = []
    for local, remote, secret in host_files(spec, host):
        fields = (hashlib.sha256((pki / local).read_bytes()).hexdigest(), "600" if secret else "644", "root:root")
        fields = override.get(remote, fields)
        if fields:
            lines.append(" ".join((*fields, remote)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("remote, fields, expected", [
    (None, None, True),
    ("/etc/kubernetes/pki/etcd/server.key", ("SAME", "644", "root:root"), False),  # key readable by all
    ("/etc/kubernetes/pki/ca.crt", ("0" * 64, "644", "root:root"), False),         # other content
    ("/etc/kubernetes/pki/sa.pub", ("SAME", "644", "nobody:root"), False),         # other owner
    ("/etc/kubernetes/pki/sa.key", (), False),                                     # missing
])
def test_a_host_matches_only_with_every_file_right(spec, tmp_path, remote, fields, expected):
    pki = tmp_path / "pki"
    ensure_local(spec, pki)
    cp1 = spec.hosts[0]
    override = {}
    if remote:
        local = next(name for name, r, _ in host_files(spec, cp1) if r == remote)
        digest = hashlib.sha256((pki / local).read_bytes()).hexdigest()
        override[remote] = tuple(digest if f == "SAME" else f for f in fields)
    assert host_matches(spec, pki, cp1, probe_lines(spec, pki, cp1, **override)) is expected


def test_a_host_with_no_share_matches_and_the_probe_names_every_file(spec, tmp_path):
    pki = tmp_path / "pki"
    ensure_local(spec, pki)
    worker = spec.hosts[1]
    assert host_files(spec, worker) == []
    assert host_matches(spec, pki, worker, "")
    probe = placed_files_probe(spec)
    for _, remote, _ in host_files(spec, spec.hosts[0]):
        assert remote in probe
