"""metrics-server: scraping kubelets' /metrics/resource.

Each node's kubelet is reached at its address of the first --kubelet-preferred-address-types
type it has, on status.daemonEndpoints.kubeletEndpoint.Port (with --kubelet-use-node-status-port,
the default here) or --kubelet-port, over HTTPS: the kubelet's serving certificate is checked
against --kubelet-certificate-authority (or the cluster CA of the kubeconfig) unless
--kubelet-insecure-tls, and this server shows its own credentials (the kubeconfig's client
certificate or service-account token; the kubelet asks the API server whether it may get
nodes/metrics). All nodes are scraped concurrently, each within the scrape timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .store import NodeSample, Point

log = logging.getLogger("metrics-server.scraper")
DEFAULT_ADDRESS_TYPES = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
DEFAULT_KUBELET_PORT = 10250


@dataclass(frozen=True)
class KubeletOptions:
    address_types: tuple[str, ...] = DEFAULT_ADDRESS_TYPES
    use_node_status_port: bool = True
    port: int = DEFAULT_KUBELET_PORT
    insecure_tls: bool = False
    timeout: float = 10.0


def parse(text: str, now: float | None = None) -> NodeSample:
    """A kubelet's resource metrics as one sample (samples without a timestamp are read as now)."""
    now = time.time() if now is None else now
    node_cpu = node_memory = node_time = None
    cpu: dict[tuple[str, str, str], tuple[float, float]] = {}
    memory: dict[tuple[str, str, str], int] = {}
    start: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            ts = s.timestamp if s.timestamp is not None else now
            key = (s.labels.get("namespace", ""), s.labels.get("pod", ""), s.labels.get("container", ""))
            if s.name == "node_cpu_usage_seconds_total":
                node_cpu, node_time = float(s.value), float(ts)
            elif s.name == "node_memory_working_set_bytes":
                node_memory = int(s.value)
            elif s.name == "container_cpu_usage_seconds_total":
                cpu[key] = (float(s.value), float(ts))
            elif s.name == "container_memory_working_set_bytes":
                memory[key] = int(s.value)
            elif s.name == "container_start_time_seconds":
                start[key] = float(s.value)
    node = Point(node_time, node_cpu, node_memory) if None not in (node_cpu, node_time, node_memory) else None
    containers = {key: Point(ts, value, memory[key], start.get(key, 0.0))
                  for key, (value, ts) in cpu.items() if key in memory}
    return NodeSample(node, containers)  # type: ignore[arg-type]


def kubelet_address(node: dict, options: KubeletOptions) -> tuple[str, int] | None:
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    host = next((a["address"] for t in options.address_types for a in addresses
                 if a.get("type") == t and a.get("address")), None)
    if host is None:
        return None
    port = options.port
    if options.use_node_status_port:
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or port
    return host, int(port)


class Scraper:
    def __init__(self, ssl_context: ssl.SSLContext, token: str | None, options: KubeletOptions):
        self.options = options
        self.token = token
        self.ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=self.ssl))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def scrape(self, nodes: list[dict]) -> dict[str, NodeSample]:
        names = [(n.get("metadata") or {}).get("name", "") for n in nodes]
        results = await asyncio.gather(*(self.scrape_node(n) for n in nodes), return_exceptions=True)
        batch = {}
        for name, result in zip(names, results):
            if isinstance(result, BaseException):
                log.warning("failed to scrape node %s: %s", name, result or type(result).__name__)
            else:
                batch[name] = result
        return batch

    async def scrape_node(self, node: dict) -> NodeSample:
        where = kubelet_address(node, self.options)
        if where is None:
            raise LookupError("no address of a preferred type")
        host, port = where
        url = f"https://{'[' + host + ']' if ':' in host else host}:{port}/metrics/resource"
        timeout = aiohttp.ClientTimeout(total=self.options.timeout)
        async with self.session().get(url, timeout=timeout) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"GET {url}: {resp.status} {body.strip()[:200]}")
        return parse(body)
