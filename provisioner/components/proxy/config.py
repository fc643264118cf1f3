"""proxy/config: kube-proxy's flags and the KubeProxyConfiguration subset it reads (--config).

    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    clientConnection: {kubeconfig: /var/lib/kube-proxy/kubeconfig.conf}
    hostnameOverride: node-1
    mode: iptables                      # the one mode ("" means iptables)
    clusterCIDR: 10.244.0.0/16          # pod traffic to ClusterIPs is not masqueraded
    healthzBindAddress: 0.0.0.0:10256
    metricsBindAddress: 127.0.0.1:10249
    iptables: {masqueradeAll: false, masqueradeBit: 14, syncPeriod: 30s, minSyncPeriod: 1s}

Flags given on the command line win over the file. Every problem names its field or flag.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field

import yaml

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KNOWN_FIELDS = {"apiVersion", "kind", "clientConnection", "hostnameOverride", "mode", "clusterCIDR",
                "healthzBindAddress", "metricsBindAddress", "iptables"}
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
                      r"(?:(\d+(?:\.\d+)?)ms)?$")


class ConfigError(Exception):
    pass


@dataclass
class ProxyConfig:
    kubeconfig: str = ""
    hostname_override: str = ""
    cluster_cidr: str = ""
    healthz_bind_address: str = "0.0.0.0:10256"
    metrics_bind_address: str = "127.0.0.1:10249"
    masquerade_all: bool = False
    sync_period: float = 30.0
    min_sync_period: float = 1.0
    ignored: list[str] = field(default_factory=list)   # fields of the file this proxy skips

    @property
    def node_name(self) -> str:
        return (self.hostname_override or socket.gethostname()).strip().lower()


def parse_duration(value, field: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    match = DURATION.match(str(value).strip())
    if not match or not any(match.groups()):
        raise ConfigError(f"{field}: {value!r} is not a duration (e.g. 30s, 1m0s, 500ms)")
    hours, minutes, seconds, millis = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def bind_address(value: str, field: str) -> tuple[str, int]:
    host, _, port = str(value).rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        number = int(port)
    except ValueError:
        raise ConfigError(f"{field}: {value!r} is not host:port (e.g. 0.0.0.0:10256)") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{field}: port {number} is out of range")
    return host.strip("[]"), number


def load(path: str) -> ProxyConfig:
    try:
        with open(path) as source:
            document = yaml.safe_load(source) or {}
    except OSError as error:
        raise ConfigError(f"--config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"--config {path}: expected a KubeProxyConfiguration mapping")
    if document.get("kind") != "KubeProxyConfiguration" or \
            document.get("apiVersion") != API_VERSION:
        raise ConfigError(f"--config {path}: expected apiVersion {API_VERSION}, kind "
                          f"KubeProxyConfiguration (got {document.get('apiVersion')}, "
                          f"{document.get('kind')})")
    mode = document.get("mode") or "iptables"
    if mode != "iptables":
        raise ConfigError(f"--config {path}: mode {mode!r} is not supported; use iptables")
    tables = document.get("iptables") or {}
    if int(tables.get("masqueradeBit", 14) or 14) != 14:
        raise ConfigError(f"--config {path}: iptables.masqueradeBit must be 14 (mark 0x4000)")
    config = ProxyConfig(
        kubeconfig=(document.get("clientConnection") or {}).get("kubeconfig") or "",
        hostname_override=document.get("hostnameOverride") or "",
        cluster_cidr=document.get("clusterCIDR") or "",
        healthz_bind_address=document.get("healthzBindAddress") or "0.0.0.0:10256",
        metrics_bind_address=document.get("metricsBindAddress") or "127.0.0.1:10249",
        masquerade_all=bool(tables.get("masqueradeAll")),
        sync_period=parse_duration(tables.get("syncPeriod", "30s"), "iptables.syncPeriod"),
        min_sync_period=parse_duration(tables.get("minSyncPeriod", "1s"),
                                       "iptables.minSyncPeriod"))
    config.ignored = sorted(set(document) - KNOWN_FIELDS)
    validate(config, f"--config {path}: ")
    return config


def validate(config: ProxyConfig, where: str = "") -> None:
    if config.cluster_cidr:
        try:
            ipaddress.IPv4Network(config.cluster_cidr.split(",")[0])
        except ValueError as error:
            raise ConfigError(f"{where}clusterCIDR {config.cluster_cidr!r}: {error}") from None
        config.cluster_cidr = config.cluster_cidr.split(",")[0]
    bind_address(config.healthz_bind_address, f"{where}healthzBindAddress")
    bind_address(config.metrics_bind_address, f"{where}metricsBindAddress")
    if config.sync_period <= 0:
        raise ConfigError(f"{where}iptables.syncPeriod must be positive")
