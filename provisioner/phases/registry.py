"""Phase `registry`: the first control-plane host serves images to every node.

Users add their own images by `provisioner images push` (or `images load`). The registry is
Debian's docker-registry, shipped from the operator (it links only libc) and run under systemd
on the first control-plane host, TLS only, on `spec.registry.port` (5000): its serving
certificate is signed by the cluster CA, and any client must present a certificate the cluster
CA signed (`http.tls.clientcas`): nodes, and the admin on the operator. Every node's container
runtime finds the CA and its own client certificate in Docker's certs.d layout under its root
(`certs.d/<address>:<port>/ca.crt`, `client.cert`, `client.key`), so pods name images as
`<address>:<port>/<name>:<tag>`.

`registry/certs` issues the certificates into local state and places them (one round trip per
host, as `pki/place`); `registry/serve` places the binary, the configuration and the unit.
`spec.registry.enabled: false` removes all of it on the next run, as `delete cluster` does.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path

from pyinfra.operations import files

from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.delete import remove_owned
from provisioner.phases.kubeconfig import CLUSTER_CA, NODES, node_hosts
from provisioner.phases.owned import REMOTE_ROOT, DataDir, File, Owned, Unit
from provisioner.phases.pki import (
    CERTIFICATES,
    mismatched,
    placed_files_probe,
    write_host_files,
)
from provisioner.phases.runtime import RUNTIME_ROOT
from provisioner.phases.units import run_unit
from provisioner.pki.certs import CertKeyPair
from provisioner.pki.cluster import ensure_certificates, stale_certificates
from provisioner.pki.table import Authority, Certificate, PlacedFile, Subject
from provisioner.spec import ClusterSpec, Host
from provisioner.templates import render
from provisioner.workflow import Phase, Plan

LOCAL_BINARY = "/usr/bin/docker-registry"  # Debian's docker-registry on the operator
BINARY = f"{REMOTE_ROOT}/registry/docker-registry"
CONFIG_DIR = "/etc/provisioner-registry"
CONFIG = f"{CONFIG_DIR}/config.yml"
SERVING = f"{CONFIG_DIR}/pki/registry"  # .crt and .key
STORAGE = "/var/lib/provisioner/registry"
CERTS_D = f"{RUNTIME_ROOT}/certs.d"


def serves(spec: ClusterSpec, host: Host) -> bool:
    """`host` runs the registry (the first control-plane host, while the spec enables it)."""
    return spec.registry_host is not None and spec.registry_host.name == host.name


def trusts(spec: ClusterSpec, host: Host) -> bool:
    """`host`'s runtime holds the registry's CA and a client certificate (every node)."""
    return spec.registry_host is not None


def certs_d(spec: ClusterSpec) -> str:
    """The runtime's certs.d directory for the registry, named `address:port` as Docker's."""
    return f"{CERTS_D}/{spec.registry_endpoint}"


UNIT = Unit("provisioner-registry.service", ("control-plane",), only=serves)
OWNS = Owned(
    files=(
        File(BINARY, ("control-plane",), mode="755", only=serves),
        File(CONFIG, ("control-plane",), only=serves),
        File(f"{SERVING}.crt", ("control-plane",), only=serves),
        File(f"{SERVING}.key", ("control-plane",), mode="600", secret=True, only=serves),
        File(lambda s: f"{certs_d(s)}/ca.crt", NODES, only=trusts),
        File(lambda s: f"{certs_d(s)}/client.cert", NODES, only=trusts),
        File(lambda s: f"{certs_d(s)}/client.key", NODES, mode="600", secret=True, only=trusts),
    ),
    units=(UNIT,),
    data_dirs=(DataDir(STORAGE, ("control-plane",), only=serves),),
)

# Issued into the cluster's local PKI directory by this phase, not by `pki` (the table places
# files at fixed paths on every host of a role; these go to one host, or under a directory
# named after the registry's address).
CA = next(row for row in CERTIFICATES if isinstance(row, Authority) and row.name == "ca")


def _registry_names(subject: Subject) -> list[str]:
    return [subject.host.name, subject.host.address]


SERVING_ROW = Certificate("registry-serving", "ca", lambda s: s.host.name, sans=_registry_names,
                          usages=("server",), roles=("control-plane",), per_host=True)
CLIENT_ROW = Certificate("registry-client", "ca",
                         lambda s: f"provisioner-registry-client:{s.host.name}",
                         usages=("client",), roles=NODES, per_host=True)


def issuing(spec: ClusterSpec) -> list[tuple[tuple, ClusterSpec]]:
    """(rows, spec) pairs to issue: the serving certificate for the registry's host alone, a
    client certificate for every node."""
    host = spec.registry_host
    if host is None:
        return []
    return [((CA, SERVING_ROW), dataclasses.replace(spec, hosts=(host,))),
            ((CA, CLIENT_ROW), spec)]


def placed(spec: ClusterSpec, host: Host) -> list[PlacedFile]:
    """The certificate files `host` holds for the registry (local name under the PKI dir)."""
    wanted = []
    if serves(spec, host):
        name = SERVING_ROW.local_name(Subject(spec, host))
        wanted += [PlacedFile(f"{name}.crt", f"{SERVING}.crt", False),
                   PlacedFile(f"{name}.key", f"{SERVING}.key", True)]
    if trusts(spec, host) and host in node_hosts(spec):
        name = CLIENT_ROW.local_name(Subject(spec, host))
        wanted += [PlacedFile("ca.crt", f"{certs_d(spec)}/ca.crt", False),
                   PlacedFile(f"{name}.crt", f"{certs_d(spec)}/client.cert", False),
                   PlacedFile(f"{name}.key", f"{certs_d(spec)}/client.key", True)]
    return wanted


def _differing(ctx: ClusterContext, plan: Plan) -> dict[str, list[PlacedFile]]:
    """Each host's registry certificate files not on it as issued (one probe per host)."""
    pki_dir = ctx.state.pki_dir
    shares = {h.name: placed(ctx.spec, h) for h in ctx.spec.hosts}
    hosts = [h for h in ctx.spec.hosts if shares[h.name]]
    paths = sorted({f.remote for h in hosts for f in shares[h.name]})
    found = plan.session.run(placed_files_probe(paths), hosts) if hosts else {}
    wrong = {h.name: mismatched(pki_dir, shares[h.name], found[h.name].stdout) for h in hosts}
    return {name: files_ for name, files_ in wrong.items() if files_}


def _issue_and_place(ctx: ClusterContext, plan: Plan) -> dict[str, list[str]]:
    """Issue what is stale, then place what differs on each host (after issuing, so a new
    certificate is placed in the same run)."""
    pki_dir = ctx.state.pki_dir
    if not CertKeyPair.exists(pki_dir, CA.name):  # never a CA of its own: `pki` issues it
        raise ProvisionerError(f"the cluster CA is not issued yet ({pki_dir}/{CA.name}.crt); run "
                               "`--only pki` first")
    issued = [name for rows, spec in issuing(ctx.spec)
              for name in ensure_certificates(pki_dir, rows, spec)]
    wrong = _differing(ctx, plan)
    changes = write_host_files(pki_dir, plan.session, wrong) if wrong else {}
    if issued:
        changes.setdefault("local", []).extend(f"issue {name}" for name in issued)
    return changes


def plan_certs(ctx: ClusterContext, plan: Plan) -> None:
    pki_dir = ctx.state.pki_dir
    stale = [name for rows, spec in issuing(ctx.spec)
             for name in stale_certificates(pki_dir, rows, spec) if name != CA.name]
    would = [("local", f"issue {name}") for name in stale]
    if not stale:  # a dry run compares what is placed; stale ones would be placed anyway
        would += [(name, f"place {f.remote}") for name, wrong in _differing(ctx, plan).items()
                  for f in wrong]
        if not would:
            return
    plan.then(functools.partial(_issue_and_place, ctx, plan), would=would)


def config_for(spec: ClusterSpec, host: Host) -> str:
    return render("provisioner-registry.yml.j2", cluster=spec.name, storage=STORAGE,
                  address=host.address, port=spec.registry.port, certificate=f"{SERVING}.crt",
                  key=f"{SERVING}.key", client_ca=CLUSTER_CA)


@functools.lru_cache(maxsize=1)
def binary_digest() -> str:
    digest = hashlib.sha256()
    with open(LOCAL_BINARY, "rb") as binary:
        for block in iter(lambda: binary.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_serve(ctx: ClusterContext, plan: Plan) -> None:
    host = ctx.spec.registry_host
    assert host is not None  # run_if
    if not os.access(LOCAL_BINARY, os.X_OK):
        raise ProvisionerError(
            f"{LOCAL_BINARY} is missing on this machine: install Debian's docker-registry "
            "(apt-get install docker-registry) or set spec.registry.enabled: false")
    session = plan.session
    config = config_for(ctx.spec, host)
    serving = Path(ctx.state.pki_dir) / f"{SERVING_ROW.local_name(Subject(ctx.spec, host))}.crt"
    # The unit names a digest of what the registry reads at start, so one condition restarts
    # it when any of them changes.
    digest = hashlib.sha256(config.encode() + (serving.read_bytes() if serving.exists() else b"")
                            + binary_digest().encode()).hexdigest()[:16]
    session.op(host, f"directory {STORAGE}", files.directory, path=STORAGE, mode="700",
               user="root", group="root")
    session.op(host, f"docker-registry {BINARY}", files.put, src=LOCAL_BINARY,
                        dest=BINARY, mode="755", user="root", group="root", create_remote_dir=True)
    session.put(host, f"registry configuration {CONFIG}", CONFIG, config, mode="644")
    run_unit(session, host, UNIT, render(
        "provisioner-registry.service.j2", cluster=ctx.spec.name, binary=BINARY, config=CONFIG,
        config_digest=digest))


def cleanup_registry(ctx: ClusterContext, plan: Plan) -> None:
    """Remove what the registry placed, wherever it would be with the registry enabled."""
    spec = ctx.spec
    if not spec.registry.enabled:
        spec = dataclasses.replace(spec, registry=dataclasses.replace(spec.registry, enabled=True))
    remove_owned(OWNS)(dataclasses.replace(ctx, spec=spec), plan)


def enabled(ctx: ClusterContext) -> bool:
    return ctx.spec.registry_host is not None


PHASE = Phase(
    "registry", "serving images to every node from the first control-plane host",
    phases=(
        Phase("certs", "issuing and placing the registry's certificates", plan_certs,
              run_if=enabled),
        Phase("serve", "running docker-registry on the first control-plane host", plan_serve,
              run_if=enabled, hosts=lambda ctx: [ctx.spec.registry_host]),
        Phase("remove", "removing the disabled registry", cleanup_registry,
              run_if=lambda ctx: not ctx.spec.registry.enabled),
    ),
    owns=OWNS, cleanup=cleanup_registry,
)
