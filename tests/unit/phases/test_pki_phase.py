"""The pki phase through the runner on this machine (pyinfra's local connector): a dry run of a
fresh cluster names what it would issue and place, a real `--only pki/place` without issued
certificates stops with what to run instead, and nothing is written anywhere."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

import pytest

from provisioner.errors import ProvisionerError
from provisioner.phases import CREATE_PHASES
from provisioner.phases.context import ClusterContext
from provisioner.spec import Artifacts, ClusterSpec, EtcdSettings, Host, Networking, SSHSettings
from provisioner.state import ClusterState
from provisioner.workflow import Printer, run_phases, select_phases
from tests.unit.engine.test_session import LocalSession

HERE = Host("@local", "127.0.0.1", ("control-plane", "etcd"), SSHSettings("root", 22, Path("/k")))


class LocalContext(ClusterContext):
    def session(self, hosts=None):
        return LocalSession([HERE], self.state.known_hosts)


def context(tmp_path: Path, out: io.StringIO) -> LocalContext:
    spec = ClusterSpec(name="t", source=Path("/c.yaml"), hosts=(HERE,),
                       networking=Networking(ipaddress.ip_network("10.244.0.0/16"),
                                             ipaddress.ip_network("10.96.0.0/12")),
                       etcd=EtcdSettings(), artifacts=Artifacts())
    return LocalContext(spec=spec, state=ClusterState(tmp_path / "state"), printer=Printer(out))


def test_a_dry_run_of_a_fresh_cluster_names_what_it_would_issue_and_place(tmp_path):
    out = io.StringIO()
    ctx = context(tmp_path, out)
    run_phases(select_phases(CREATE_PHASES, only=["pki"]), ctx, ctx.printer, dry_run=True)
    text = out.getvalue()
    assert "[pki/certs] local: would issue etcd/ca" in text
    assert "[pki/certs] local: would issue etcd/server-@local" in text
    assert "[pki/place] @local: would place /etc/kubernetes/pki/etcd/server.key" in text
    assert "PRIVATE KEY" not in text
    assert not (tmp_path / "state").exists()


def test_placing_without_issuing_stops_and_says_what_to_run(tmp_path):
    out = io.StringIO()
    ctx = context(tmp_path, out)
    with pytest.raises(ProvisionerError) as raised:
        run_phases(select_phases(CREATE_PHASES, only=["pki/place"]), ctx, ctx.printer)
    message = raised.value.message
    assert message.startswith("phase pki/place: certificates ")
    assert {"ca", "etcd/ca", "etcd/server-@local"} <= set(
        message.removeprefix("phase pki/place: certificates ").split(" are ")[0].split(", "))
    assert message.endswith("are not issued yet; run `--only pki` (its certs "
                                         "sub-phase issues them) rather than `--only pki/place` alone")
