"""`dev cluster`'s Service networking: kube-proxy, cluster DNS and the network agent on this host.

DevNodeCluster(network=True) (provisioner/dev.py) runs, after its node is Ready:
- kube-proxy (iptables mode) for the dev service range, clusterCIDR the dev bridge's subnet, as
  user system:kube-proxy (bound to system:node-proxier by the API server's bootstrap policy);
- provisioner-dns for cluster.local, bound to the bridge gateway on a free port, reached by pods
  through a selector-less `kube-dns` Service at 10.96.0.10 (the kubelet's clusterDNS) whose
  Endpoints name that address and port (the endpointslice mirroring controller makes the slices);
- provisioner-netagent enforcing NetworkPolicies for the node's pods (it writes no CNI config and
  no masquerade rule: the runtime daemon's bridge network does both).

kube-proxy and the agent write the host's global KUBE-* and PROV-NP-* chains, so one networked dev
cluster per machine: NetworkLock (an flock on LOCK_PATH, released when its process dies) refuses a
second one, and remove_rules() deletes every chain and jump they made when the cluster stops (kube-
proxy leaves its rules in place on SIGTERM by design). Chains left by a dev cluster that died are
removed by the next one; chains of something else (no dev cluster named in the lock file) make it
refuse rather than delete them.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import yaml

LOCK_PATH = Path("/run/provisioner-dev-network.lock")
CLUSTER_DNS_IP = "10.96.0.10"       # the dev kubelet config's clusterDNS
CLUSTER_DOMAIN = "cluster.local"
PROXY_USER = "system:kube-proxy"
DNS_USER = "system:provisioner-dns"
AGENT_USER = "system:provisioner-netagent"
TABLES = ("nat", "filter", "mangle")
PREFIXES = ("KUBE-", "PROV-NP-")    # kube-proxy's chains, the agent's policy chains


def _chains() -> dict[str, list[str]]:
    """table -> our chains that exist now."""
    found = {}
    for table in TABLES:
        saved = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True,
                               check=False).stdout
        found[table] = [line[1:].split()[0] for line in saved.splitlines()
                        if line.startswith(":") and line[1:].startswith(PREFIXES)]
    return found


def leftover_chains() -> list[str]:
    """`table/chain` of every KUBE-* or PROV-NP-* chain on this host (none once a dev cluster stopped)."""
    return [f"{table}/{chain}" for table, chains in _chains().items() for chain in chains]


def remove_rules() -> None:
    """Delete the built-in chains' jumps to our chains, then flush and delete our chains."""
    for table in TABLES:
        saved = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True,
                               check=False).stdout
        for line in saved.splitlines():     # "-A FORWARD ... -j KUBE-FORWARD" from a built-in chain
            parts = line.split()
            if line.startswith("-A ") and not parts[1].startswith(PREFIXES) and \
                    "-j" in parts and parts[parts.index("-j") + 1].startswith(PREFIXES):
                subprocess.run(["iptables", "-w", "5", "-t", table, "-D", *shlex.split(line[3:])],
                               capture_output=True, check=False)
    chains = _chains()
    for table, names in chains.items():
        for verb in ("-F", "-X"):           # all flushed first: chains jump to each other
            for chain in names:
                subprocess.run(["iptables", "-w", "5", "-t", table, verb, chain],
                               capture_output=True, check=False)


class NetworkLock:
    """One networked dev cluster per machine; the lock file names the holder's directory."""

    def __init__(self, root: Path):
        self.root = root
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown directory"
            os.close(fd)
            raise click.ClickException(
                f"another dev cluster with networking runs on this machine ({holder}): kube-proxy "
                "rules are global, so stop it first, or start this one with --no-network "
                f"(lock {LOCK_PATH})") from None
        previous = os.read(fd, 4096).decode(errors="replace").strip()
        left = leftover_chains()
        if left and not previous:
            os.close(fd)
            raise click.ClickException(
                f"this machine already has kube-proxy or network-policy chains ({', '.join(left[:4])}"
                f"{'...' if len(left) > 4 else ''}) that no dev cluster made: another kube-proxy "
                "runs here; stop it, or start the dev cluster with --no-network")
        if left:                            # a dev cluster that died without stopping
            remove_rules()
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(self.root).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)        # cleaned up: the next one has nothing to remove
            os.close(self.fd)
            self.fd = None


def _gateway(subnet: str) -> str:
    return str(ipaddress.IPv4Network(subnet).network_address + 1)


def _role_and_binding(name: str, rules: list[dict], user: str) -> list[dict]:
    rbac = "rbac.authorization.k8s.io/v1"
    return [{"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules},
            {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": name},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": name},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": user}]}]


READ = ["get", "list", "watch"]
# the same grants as the cluster add-ons' ClusterRoles (provisioner.kube.addons)
DNS_RULES = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]}]
AGENT_RULES = [{"apiGroups": [""], "resources": ["nodes", "pods", "namespaces"], "verbs": READ},
               {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                "verbs": READ},
               {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
                "verbs": ["create", "patch", "update"]}]


def objects(dns_address: str, dns_port: int) -> list[dict]:
    """RBAC for the DNS and agent users, the kube-dns Service and its Endpoints on the gateway."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    meta = {"name": "kube-dns", "namespace": "kube-system", "labels": labels}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    return [
        *_role_and_binding("provisioner:dev-dns", DNS_RULES, DNS_USER),
        *_role_and_binding("provisioner:dev-netagent", AGENT_RULES, AGENT_USER),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"clusterIP": CLUSTER_DNS_IP,
                  "ports": [{"name": n, "port": 53, "protocol": p, "targetPort": dns_port}
                            for n, p in ports]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
         "subsets": [{"addresses": [{"ip": dns_address}],
                      "ports": [{"name": n, "port": dns_port, "protocol": p} for n, p in ports]}]}]


def commands(cluster, free_port) -> dict[str, list[str]]:  # noqa: ANN001 - a dev.DevNodeCluster
    """Write the objects and kube-proxy's config; return the three processes' command lines."""
    from provisioner.components.runtime.net import Network
    from provisioner.kube.apiclient import ApiClient, Credentials
    api = cluster.api
    pki = api.pki
    # The runtime daemon sets its bridge up at its first pod; done now (the same idempotent
    # code) the DNS server can bind the gateway, and the bridge's FORWARD jump is in place
    # before the agent's, which it inserts first so policies see pod-to-pod traffic.
    Network.load(bridge=cluster.bridge, subnet=cluster.subnet,
                 state_dir=str(cluster.root / "runtime" / "root" / "network"))
    gateway = _gateway(cluster.subnet)
    dns_port = free_port("udp", "tcp", address=gateway)  # the DNS server binds both, there
    client = ApiClient(Credentials(api.server, str(pki / "ca.crt"), str(pki / "admin.crt"),
                                   str(pki / "admin.key")))
    for obj in objects(gateway, dns_port):
        client.ensure(obj)
    config = cluster.root / "kube-proxy-config.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(api.user_kubeconfig(PROXY_USER))},
        "hostnameOverride": cluster.node_name, "clusterCIDR": cluster.subnet,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "iptables": {"syncPeriod": "30s", "minSyncPeriod": "1s"}}))
    return {
        "kube-proxy": [sys.executable, "-m", "provisioner.components.proxy.main",
                       "--config", str(config)],
        # on the bridge gateway only: pods reach it, the outside does not (no open resolver)
        "dns": [sys.executable, "-m", "provisioner.components.dns.main",
                "--kubeconfig", str(api.user_kubeconfig(DNS_USER)),
                "--cluster-domain", CLUSTER_DOMAIN, "--bind-address", gateway,
                "--dns-port", str(dns_port), "--health-port", str(free_port()),
                "--ready-port", str(free_port()), "--metrics-port", str(free_port())],
        "netagent": [sys.executable, "-m", "provisioner.components.netagent.main",
                     "--kubeconfig", str(api.user_kubeconfig(AGENT_USER)),
                     "--node-name", cluster.node_name, "--cni-conf-dir", "",
                     "--healthz-bind-address", f"127.0.0.1:{free_port()}"],
    }
