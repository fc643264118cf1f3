"""Deciding from one probe per host whether its share of the certificate table is in place."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioner.phases import CREATE_PHASES
from provisioner.phases.owned import ownership
from provisioner.phases.pki import mismatched, placed_files_probe
from provisioner.pki.cluster import ensure_certificates
from provisioner.pki.table import host_files
from provisioner.spec import load_cluster
from tests.unit.spec.keys import write_private_key

TABLE = ownership(CREATE_PHASES).certificates


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


def probe_lines(pki: Path, share, **override: tuple[str, str, str]) -> str:
    """What the probe prints on a host holding exactly its files, with some lines overridden."""
    lines = []
    for placed in share:
        fields = (hashlib.sha256((pki / placed.local).read_bytes()).hexdigest(), placed.mode,
                  "root root")
        fields = override.get(placed.remote, fields)
        if fields:
            lines.append(" ".join((*fields, placed.remote)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("remote, fields, expected", [
    (None, None, []),
    ("/etc/kubernetes/pki/etcd/server.key", ("SAME", "644", "root root"), ["server.key"]),
    ("/etc/kubernetes/pki/ca.crt", ("0" * 64, "644", "root root"), ["ca.crt"]),  # other content
    ("/etc/kubernetes/pki/sa.pub", ("SAME", "644", "nobody root"), ["sa.pub"]),  # other owner
    ("/etc/kubernetes/pki/sa.key", (), ["sa.key"]),  # missing
])
def test_only_files_not_exactly_in_place_are_placed(spec, tmp_path, remote, fields, expected):
    pki = tmp_path / "pki"
    ensure_certificates(pki, TABLE, spec)
    share = host_files(TABLE, spec, spec.hosts[0])
    override = {}
    if remote:
        local = next(p.local for p in share if p.remote == remote)
        digest = hashlib.sha256((pki / local).read_bytes()).hexdigest()
        override[remote] = tuple(digest if f == "SAME" else f for f in fields)
    wrong = mismatched(pki, share, probe_lines(pki, share, **override))
    assert [Path(p.remote).name for p in wrong] == expected


def test_keys_are_private_and_each_member_gets_its_own_pair(spec):
    share = {p.remote: p for p in host_files(TABLE, spec, spec.hosts[0])}
    assert share["/etc/kubernetes/pki/etcd/server.key"].local == "etcd/server-cp1.key"
    assert {p.mode for p in share.values() if p.remote.endswith(".key")} == {"600"}
    assert {p.mode for p in share.values() if not p.remote.endswith(".key")} == {"644"}
    # A worker holds the cluster CA's certificate (its kubelet verifies clients) and its
    # kubelet's serving pair, issued for it alone; never a CA key.
    worker = [p.remote for p in host_files(TABLE, spec, spec.hosts[1])]
    assert worker == ["/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/pki/kubelet.crt",
                      "/var/lib/kubelet/pki/kubelet.key"]
    assert host_files(TABLE, spec, spec.hosts[1])[2].local == f"kubelet-serving-{spec.hosts[1].name}.key"


def test_the_probe_reports_existing_files_through_a_real_shell(tmp_path):
    present = tmp_path / "ca crt"
    present.write_text("x\n")
    output = subprocess.run(["sh", "-c", placed_files_probe([str(present), str(tmp_path / "gone")])],
                            capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(b"x\n").hexdigest()
    assert output.split()[0] == digest and output.strip().endswith(str(present))
    assert "gone" not in output
