"""Phase `pki`: the cluster's certificate table is issued locally and each host holds its share.

`pki/certs` issues into the cluster's state directory what is missing or stale (reused on
re-runs; provisioner.pki.cluster decides); `pki/place` puts each host's share of the table,
as every phase declared it, in place (private keys 0600, never printed or diffed).

This phase owns the authorities and the credentials no component phase owns yet; a component
declares its own certificates in its module (see etcd.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pyinfra.operations import files

from provisioner.engine.archive import FileContent, file_probe, in_place, parse_file_probe
from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.owned import REMOTE_PKI, Owned
from provisioner.pki.cluster import ensure_certificates, stale_certificates
from provisioner.pki.table import (
    ALL_HOSTS,
    Authority,
    Certificate,
    PlacedFile,
    SigningKey,
    host_files,
)
from provisioner.spec import Host
from provisioner.workflow import Phase, Plan

LOCAL = "local"
CONTROL_PLANE = ("control-plane",)


CERTIFICATES = (
    Authority("etcd/ca", "etcd-ca", f"{REMOTE_PKI}/etcd/ca", roles=("etcd", *CONTROL_PLANE)),
    # Every kubelet verifies clients with the CA; only control-plane hosts sign with its key.
    Authority("ca", "kubernetes", f"{REMOTE_PKI}/ca", roles=(ALL_HOSTS,), key_roles=CONTROL_PLANE),
    SigningKey("sa", f"{REMOTE_PKI}/sa", roles=CONTROL_PLANE),
    Certificate("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client",
                remote=f"{REMOTE_PKI}/apiserver-etcd-client", roles=CONTROL_PLANE),
    Certificate("admin", "ca", "kubernetes-admin", organizations=("system:masters",)),
)


def placed_files_probe(paths: list[str]) -> str:
    """A command describing each of `paths` on a host (engine.archive.file_probe)."""
    return file_probe(paths)


def mismatched(pki_dir: Path, wanted: list[PlacedFile], probe_output: str) -> list[PlacedFile]:
    """The files of `wanted` not already on the host with the right content, mode and owner."""
    found = parse_file_probe(probe_output)
    return [f for f in wanted
            if not in_place(found, f.remote, (pki_dir / f.local).read_bytes(), f.mode)]


def add_host_files(pki_dir: Path, session, host: Host, wanted: list[PlacedFile]) -> None:
    """pyinfra operations that place `wanted` on `host` (directories 0700, keys 0600): what
    the plain pyinfra deploys in roles/ run. The phase itself writes a host's files in one
    round trip (write_host_files); the operations read facts per file."""
    for directory in sorted({str(Path(f.remote).parent) for f in wanted}):
        session.op(host, f"directory {directory}", files.directory,
                   path=directory, mode="700", user="root", group="root")
    for placed in wanted:
        session.put(host, f"place {placed.remote}", placed.remote,
                    (pki_dir / placed.local).read_bytes(), mode=placed.mode, show=False)


def write_host_files(pki_dir: Path, session, wrong: dict[str, list[PlacedFile]]) -> dict[str, list[str]]:
    """Place each host's mismatched files (keys 0600, directories 0700) in one round trip per
    host; the changes made, per host."""
    session.place_files({
        host: [FileContent(f.remote, (pki_dir / f.local).read_bytes(), f.mode) for f in placed]
        for host, placed in wrong.items()}, "certificates")
    return {host: [f"place {f.remote}" for f in placed] for host, placed in wrong.items()}


def issue(ctx: ClusterContext, plan: Plan) -> None:
    rows = ctx.owned.certificates
    stale = stale_certificates(ctx.state.pki_dir, rows, ctx.spec)
    if stale:
        plan.then(lambda: {LOCAL: [f"issue {n}" for n in ensure_certificates(ctx.state.pki_dir,
                                                                               rows, ctx.spec)]},
                  would=[(LOCAL, f"issue {name}") for name in stale])


def not_issued(pending: list[PlacedFile]) -> None:
    """A real run reaching files that are not issued: `pki/certs` was skipped."""
    names = ", ".join(sorted({f.local.rsplit(".", 1)[0] for f in pending}))
    raise ProvisionerError(f"certificates {names} are not issued yet; run `--only pki` (its "
                           "certs sub-phase issues them) rather than `--only pki/place` alone")


def place(ctx: ClusterContext, plan: Plan) -> None:
    spec, pki_dir = ctx.spec, ctx.state.pki_dir
    rows = ctx.owned.certificates
    # In a real run `pki/certs` has issued everything; in a dry run, what it would issue is
    # not on disk yet, and placing it is a change only the dry run reports.
    stale = set(stale_certificates(pki_dir, rows, spec))
    shares = {h.name: host_files(rows, spec, h) for h in spec.hosts}
    paths = sorted({f.remote for share in shares.values() for f in share})
    if not paths:
        return
    # One round trip per host says which files already match (content, mode, owner);
    # pyinfra's per-file facts would cost a round trip for each of a dozen files.
    in_place = plan.session.run(placed_files_probe(paths))
    wrong: dict[str, list[PlacedFile]] = {}
    for host in spec.hosts:
        ready = [f for f in shares[host.name] if f.local.rsplit(".", 1)[0] not in stale]
        pending = [f for f in shares[host.name] if f not in ready]
        if pending:
            plan.then(functools.partial(not_issued, pending),
                      would=[(host.name, f"place {f.remote}") for f in pending])
        wrong[host.name] = mismatched(pki_dir, ready, in_place[host.name].stdout)
    wrong = {host: placed for host, placed in wrong.items() if placed}
    if wrong:
        plan.then(functools.partial(write_host_files, pki_dir, plan.session, wrong),
                  would=[(host, f"place {f.remote}") for host, placed in wrong.items()
                         for f in placed])


PHASE = Phase(
    "pki", "issuing certificates and placing each host's share",
    phases=(
        Phase("certs", "issuing the certificate table into local state", issue),
        Phase("place", "placing each host's share of the certificates", place),
    ),
    owns=Owned(certificates=CERTIFICATES),
)
