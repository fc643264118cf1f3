"""Phase `etcd`: every etcd host runs a member of one etcd cluster, TLS-only with client certs.

A fresh cluster is bootstrapped with every member listed up front. When some members already
hold data, the cluster exists: each new host is first added with `etcdctl member add` on a
healthy member, then started with `initial-cluster-state=existing`, one host at a time so the
quorum never depends on a member that is still joining. A member's unit carries a digest of
its certificates, so re-issued certificates restart it and nothing else does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shlex
import time
from collections.abc import Sequence

from pyinfra.operations import files

from provisioner.engine.session import Session
from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.owned import REMOTE_PKI, REMOTE_VENV, DataDir, Directory, File, Owned, Unit
from provisioner.phases.units import run_unit
from provisioner.pki.table import Certificate, Subject
from provisioner.spec import ClusterSpec, Host
from provisioner.templates import render
from provisioner.verify.etcd import etcdctl_tls_flags
from provisioner.workflow import Phase, Plan

ETCD = ("etcd",)
ETCD_BINARY = f"{REMOTE_VENV}/bin/etcd"
ETCDCTL_BINARY = f"{REMOTE_VENV}/bin/etcdctl"
ETCD_PKI = f"{REMOTE_PKI}/etcd"
CONFIG_DIR = "/etc/etcd"
INITIAL_ENV = f"{CONFIG_DIR}/initial-cluster.env"
UNIT = Unit("etcd.service", ETCD)
METRICS_PORT = 2381
HEALTH_TIMEOUT_SECONDS = 90


def member_names(subject: Subject) -> list[str]:
    """A member's certificates name it, its address and loopback."""
    return [subject.host.name, "localhost", subject.host.address, "127.0.0.1", "::1"]


OWNS = Owned(
    certificates=tuple(
        Certificate(f"etcd/{kind}", "etcd/ca", lambda s: s.host.name, sans=member_names,
                    usages=("server", "client"), roles=ETCD, remote=f"{ETCD_PKI}/{kind}",
                    per_host=True)
        for kind in ("server", "peer")
    ) + (
        Certificate("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client",
                    organizations=("system:masters",), roles=ETCD,
                    remote=f"{ETCD_PKI}/healthcheck-client"),
    ),
    files=(File(INITIAL_ENV, ETCD, mode="600"),),
    directories=(Directory(CONFIG_DIR, ETCD, mode="700"),),
    units=(UNIT,),
    data_dirs=(DataDir(lambda spec: spec.etcd.data_dir, ETCD),),
)


def etcdctl(spec: ClusterSpec, *args: str, endpoint: str | None = None) -> str:
    """An etcdctl command line run on an etcd host, authenticated as the healthcheck client.

    Every word is shell-quoted: member names and URLs come from the spec.
    """
    endpoint = endpoint or f"https://127.0.0.1:{spec.etcd.client_port}"
    words = [ETCDCTL_BINARY, f"--endpoints={endpoint}", *etcdctl_tls_flags(ETCD_PKI),
             "--command-timeout=10s", *args]
    return "ETCDCTL_API=3 " + shlex.join(words)


def render_unit(spec: ClusterSpec, host: Host, certs_digest: str) -> str:
    return render(
        "etcd.service.j2",
        cluster=spec.name,
        name=host.name,
        address=host.address,
        client_port=spec.etcd.client_port,
        peer_port=spec.etcd.peer_port,
        metrics_port=METRICS_PORT,
        data_dir=spec.etcd.data_dir,
        config_dir=CONFIG_DIR,
        pki=ETCD_PKI,
        etcd_binary=ETCD_BINARY,
        certs_digest=certs_digest,
    )


def render_initial_env(spec: ClusterSpec, host: Host, members: Sequence[tuple[str, str]], state: str) -> str:
    return render(
        "etcd-initial-cluster.env.j2",
        name=host.name,
        initial_cluster=",".join(f"{name}={url}" for name, url in members),
        initial_state=state,
        token=f"provisioner-{spec.name}",
    )


def certs_digest(ctx: ClusterContext, host: Host) -> str:
    digest = hashlib.sha256()
    pki = ctx.state.pki_dir / "etcd"
    for name in ("ca.crt", f"server-{host.name}.crt", f"peer-{host.name}.crt"):
        path = pki / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def has_data_command(spec: ClusterSpec) -> str:
    """Prints yes when the member's data directory holds data (the cluster exists)."""
    return f"test -d {shlex.quote(spec.etcd.data_dir + '/member')} && echo yes || echo no"


def has_data(session: Session, spec: ClusterSpec) -> dict[str, bool]:
    results = session.run(has_data_command(spec))
    return {name: r.stdout.strip() == "yes" for name, r in results.items()}


def member_list(session: Session, spec: ClusterSpec, via: Host) -> list[dict]:
    output = session.check(via, etcdctl(spec, "member", "list", "-w", "json"), "listing etcd members")
    return json.loads(output).get("members", [])


def configure(ctx: ClusterContext, session: Session, host: Host, first_start_env: str | None) -> None:
    """Add the operations for one member's config, data directory and unit (`session` is an
    engine Session, or the roles' DirectOperations)."""
    spec = ctx.spec
    session.op(host, f"directory {CONFIG_DIR}", files.directory,
               path=CONFIG_DIR, mode="700", user="root", group="root")
    session.op(host, f"directory {spec.etcd.data_dir}", files.directory,
               path=spec.etcd.data_dir, mode="700", user="root", group="root")
    if first_start_env is not None:
        session.put(host, "initial cluster settings", INITIAL_ENV, first_start_env, mode="600")
    run_unit(session, host, UNIT, render_unit(spec, host, certs_digest(ctx, host)))


def wait_healthy(session: Session, spec: ClusterSpec, hosts: Sequence[Host]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    pending = list(hosts)
    last: dict[str, str] = {}
    while pending:
        results = session.run(etcdctl(spec, "endpoint", "health"), pending)
        pending = [h for h in pending if not results[h.name].ok]
        last = {h.name: (results[h.name].stderr or results[h.name].stdout).strip() for h in pending}
        if not pending:
            return
        if time.monotonic() > deadline:
            detail = "; ".join(f"{name}: {msg.splitlines()[-1] if msg else 'no answer'}" for name, msg in last.items())
            raise ProvisionerError(
                f"etcd did not become healthy on {', '.join(last)} within {HEALTH_TIMEOUT_SECONDS}s "
                f"({detail}); see `journalctl -u {UNIT.name}` on those hosts"
            )
        time.sleep(2)  # between polls, up to the deadline


def plan_members(ctx: ClusterContext, plan: Plan) -> None:
    spec = ctx.spec
    members = list(spec.etcd_hosts)
    session = plan.session
    data = has_data(session, spec)
    existing = [h for h in members if data[h.name]]
    joining = [h for h in members if not data[h.name]]

    if not existing:
        # Bootstrap: everyone starts together with the full member list.
        initial = [(h.name, spec.etcd_peer_url(h)) for h in members]
        for host in members:
            configure(ctx, session, host, render_initial_env(spec, host, initial, "new"))
        plan.then(lambda: wait_healthy(session, spec, members), title="waiting for etcd health")
        return

    for host in existing:
        configure(ctx, session, host, None)
    if not joining:
        plan.then(lambda: wait_healthy(session, spec, list(existing)),
                  title="waiting for etcd health")
    # With members to join, health is proven by each join's own wait: a member added by an
    # interrupted run but never started leaves the running members without quorum until it
    # starts, so waiting for them first would never end.
    for host in joining:
        plan.then(functools.partial(join, ctx, host, existing),
                  would=[(host.name, "add as a new etcd member and start it")])


MEMBER_ADD_RETRY_SECONDS = 60


def add_member(session: Session, spec: ClusterSpec, via: Host, name: str, url: str) -> None:
    """`member add`, retried while etcd calls the cluster unhealthy: it refuses to grow until
    every started member has been connected for a few seconds (its strict reconfiguration
    check), which a member that just joined has not."""
    command = etcdctl(spec, "member", "add", name, f"--peer-urls={url}")
    deadline = time.monotonic() + MEMBER_ADD_RETRY_SECONDS
    while True:
        result = session.run_one(via, command)
        if result.ok:
            return
        output = result.stderr or result.stdout
        if "unhealthy cluster" not in output or time.monotonic() > deadline:
            raise ProvisionerError(f"adding etcd member {name} on {via.name} failed",
                                   command=command, output=output)
        time.sleep(2)  # between polls, up to the deadline


def join(ctx: ClusterContext, host: Host, existing: list[Host]) -> dict[str, list[str]]:
    """Add `host` to the running cluster through a healthy member, then start it; it counts as
    existing for the next host to join."""
    spec = ctx.spec
    via = existing[0]
    with ctx.session([via, host]) as session:
        url = spec.etcd_peer_url(host)
        try:
            current = member_list(session, spec, via)
        except ProvisionerError:
            # Member lists need quorum (etcd 3.5): an earlier run added this member and stopped
            # before starting it. Starting it now, as below, restores the quorum.
            current = None
        if current is not None and not any(url in m.get("peerURLs", []) for m in current):
            add_member(session, spec, via, host.name, url)
        # Not read back from the cluster: until this member starts, a cluster that just grew to
        # an even size may have no quorum to answer. Members are named after their hosts.
        initial = [(h.name, spec.etcd_peer_url(h)) for h in existing] + [(host.name, url)]
        configure(ctx, session, host, render_initial_env(spec, host, initial, "existing"))
        changes = session.apply()
        changes.add(host.name, "joined the etcd cluster")
        wait_healthy(session, spec, [host])
    existing.append(host)
    return changes.by_host


PHASE = Phase("etcd", "running one etcd member on every etcd host", plan_members,
              run_if=lambda ctx: bool(ctx.spec.etcd_hosts), hosts=lambda ctx: ctx.spec.etcd_hosts,
              owns=OWNS)
