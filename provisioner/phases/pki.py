"""Phase `pki`: the cluster's certificates exist locally and each host holds its share.

Certificates are generated once into the cluster's state directory and reused on re-runs
(provisioner.pki decides what to re-issue). Each etcd member receives its own server and
peer pair; control-plane hosts receive the cluster CA, the service-account keys and the
API server's etcd client pair. Private keys land as 0600, never printed.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pyinfra.operations import files

from provisioner.phases.context import REMOTE_PKI, ClusterContext
from provisioner.pki.cluster import Member, ensure_cluster_pki
from provisioner.spec import ClusterSpec, Host
from provisioner.workflow import Phase, PhaseOutcome

LOCAL = "local"


def host_files(spec: ClusterSpec, host: Host) -> list[tuple[str, str, bool]]:
    """(local name under pki_dir, remote path, is_secret) for everything `host` must hold."""
    wanted: list[tuple[str, str, bool]] = []
    if host.is_etcd:
        wanted += [
            ("etcd/ca.crt", f"{REMOTE_PKI}/etcd/ca.crt", False),
            (f"etcd/server-{host.name}.crt", f"{REMOTE_PKI}/etcd/server.crt", False),
            (f"etcd/server-{host.name}.key", f"{REMOTE_PKI}/etcd/server.key", True),
            (f"etcd/peer-{host.name}.crt", f"{REMOTE_PKI}/etcd/peer.crt", False),
            (f"etcd/peer-{host.name}.key", f"{REMOTE_PKI}/etcd/peer.key", True),
            ("etcd/healthcheck-client.crt", f"{REMOTE_PKI}/etcd/healthcheck-client.crt", False),
            ("etcd/healthcheck-client.key", f"{REMOTE_PKI}/etcd/healthcheck-client.key", True),
        ]
    if host.is_control_plane:
        if not host.is_etcd:
            wanted.append(("etcd/ca.crt", f"{REMOTE_PKI}/etcd/ca.crt", False))
        wanted += [
            ("ca.crt", f"{REMOTE_PKI}/ca.crt", False),
            ("ca.key", f"{REMOTE_PKI}/ca.key", True),
            ("sa.key", f"{REMOTE_PKI}/sa.key", True),
            ("sa.pub", f"{REMOTE_PKI}/sa.pub", False),
            ("apiserver-etcd-client.crt", f"{REMOTE_PKI}/apiserver-etcd-client.crt", False),
            ("apiserver-etcd-client.key", f"{REMOTE_PKI}/apiserver-etcd-client.key", True),
        ]
    return wanted


def ensure_local(spec: ClusterSpec, pki_dir: Path) -> list[str]:
    return ensure_cluster_pki(
        pki_dir,
        etcd_members=[Member(h.name, h.address) for h in spec.etcd_hosts],
        control_plane=[Member(h.name, h.address) for h in spec.control_plane_hosts],
        service_cluster_ip=str(next(spec.networking.service_cidr.hosts())),
        dns_domain=spec.networking.dns_domain,
    )


def add_host_files(spec: ClusterSpec, pki_dir: Path, session: Any, host: Host) -> None:
    """Add the operations that place `host`'s share of the PKI (private keys 0600)."""
    for directory in sorted({str(Path(r).parent) for _, r, _ in host_files(spec, host)}):
        session.op(host, f"directory {directory}", files.directory,
                   path=directory, mode="700", user="root", group="root")
    for local, remote, secret in host_files(spec, host):
        session.op(
            host,
            f"place {remote}",
            files.put,
            src=io.BytesIO((pki_dir / local).read_bytes()),
            dest=remote,
            mode="600" if secret else "644",
            user="root",
            group="root",
        )


def placed_files_probe(spec: ClusterSpec) -> str:
    """A command printing `sha256 mode owner:group path` for every PKI file any host may hold."""
    paths = sorted({remote for host in spec.hosts for _, remote, _ in host_files(spec, host)})
    quoted = " ".join(shlex.quote(p) for p in paths)
    return (f"for f in {quoted}; do test -f \"$f\" && echo \"$(sha256sum < \"$f\" | cut -d' ' -f1) "
            f"$(stat -c '%a %U:%G' \"$f\") $f\"; done; true")


def host_matches(spec: ClusterSpec, pki_dir: Path, host: Host, probe_output: str) -> bool:
    """Whether every file `host` must hold is already there with the right content and mode."""
    seen = {}
    for line in probe_output.splitlines():
        parts = line.split()
        if len(parts) == 4:
            seen[parts[3]] = tuple(parts[:3])
    for local, remote, secret in host_files(spec, host):
        wanted = (hashlib.sha256((pki_dir / local).read_bytes()).hexdigest(),
                  "600" if secret else "644", "root:root")
        if seen.get(remote) != wanted:
            return False
    return True


def run(ctx: ClusterContext) -> PhaseOutcome:
    outcome = PhaseOutcome()
    spec = ctx.spec
    with tempfile.TemporaryDirectory(prefix="provisioner-pki-") as scratch:
        pki_dir = ctx.state.pki_dir
        if ctx.dry_run:
            # Work on a copy so a dry run shows what would be issued without issuing it.
            pki_dir = Path(scratch) / "pki"
            if ctx.state.pki_dir.exists():
                shutil.copytree(ctx.state.pki_dir, pki_dir)
        for name in ensure_local(spec, pki_dir):
            outcome.add(LOCAL, f"issue {name}")
        with ctx.session() as session:
            # One round trip per host says which files already match (content, mode, owner);
            # pyinfra's per-file facts would cost a round trip for each of a dozen files.
            in_place = session.run(placed_files_probe(spec))
            for host in spec.hosts:
                if not host_matches(spec, pki_dir, host, in_place[host.name].stdout):
                    add_host_files(spec, pki_dir, session, host)
            changes = session.preview() if ctx.dry_run else session.apply()
        outcome.merge(changes.by_host)
    return outcome


PHASE = Phase("pki", "issuing certificates and placing each host's share", run)
