"""dns/server: DNS over UDP and TCP (asyncio), answering the cluster zone from ``answer`` and
everything else through the ``Forwarder``; plain-HTTP /health (8080), /ready (8181) and /metrics
(9153) with CoreDNS's metric names. UDP answers larger than the client allows are truncated (TC)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from .answer import answer
from .forward import Forwarder
from .zone import Zone

log = logging.getLogger("provisioner-dns")
ANSWER_CACHE_SIZE = 20000


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("coredns_dns_requests_total", "Counter of DNS requests made per "
                                "zone, protocol and family.", ["server", "zone", "proto", "type"],
                                registry=r)
        self.responses = Counter("coredns_dns_responses_total", "Counter of response status "
                                 "codes.", ["server", "zone", "rcode", "plugin"], registry=r)
        self.duration = Histogram("coredns_dns_request_duration_seconds", "Histogram of the time "
                                  "(in seconds) each request took.", ["server", "zone", "type"],
                                  buckets=(0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016,
                                           0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048),
                                  registry=r)
        self.cache_hits = Counter("coredns_cache_hits_total", "The count of cache hits.",
                                  ["server", "type"], registry=r)
        self.cache_misses = Counter("coredns_cache_misses_total", "The count of cache misses.",
                                    ["server"], registry=r)


class DnsServer:
    def __init__(self, zone: Callable[[], Zone], forwarder: Forwarder, server_name: str):
        self.zone = zone
        self.forwarder = forwarder
        self.server_name = server_name
        self.metrics = Metrics()
        # Cluster answers as wire bytes, by the query's shape, for the zone they came from: a
        # repeated question costs a dictionary lookup and the id put back.
        self._answers: dict[tuple, bytes] = {}
        self._answers_zone: Zone | None = None

    async def handle(self, wire: bytes, proto: str) -> bytes | None:
        started = time.perf_counter()
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        qtype = dns.rdatatype.to_text(query.question[0].rdtype)
        zone = self.zone()
        if zone is not self._answers_zone:
            self._answers, self._answers_zone = {}, zone
        limit = 65535 if proto == "tcp" else max(512, query.payload if query.edns >= 0 else 512)
        question = query.question[0]
        shape = (question.name.to_text(), question.rdtype, question.rdclass, query.flags,
                 query.edns, limit)
        cached = self._answers.get(shape)
        if cached is not None:
            self._count(zone.domain, proto, qtype, cached[3] & 0x0F, "kubernetes", started)
            return query.id.to_bytes(2, "big") + cached[2:]
        response = answer(zone, query)
        plugin, zone_label = "kubernetes", zone.domain
        if response is None:
            plugin, zone_label = "forward", "."
            hits = self.forwarder.hits
            response = await self.forwarder.resolve(query)
            if self.forwarder.hits > hits:
                plugin = "cache"
                self.metrics.cache_hits.labels(self.server_name, "success").inc()
            else:
                self.metrics.cache_misses.labels(self.server_name).inc()
        self._count(zone_label, proto, qtype, response.rcode(), plugin, started)
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.additional = [], []
            response.flags |= dns.flags.TC
            wire = response.to_wire(max_size=limit)
        if plugin == "kubernetes":
            if len(self._answers) >= ANSWER_CACHE_SIZE:       # random names: start over
                self._answers.clear()
            self._answers[shape] = wire
        return wire

    def _count(self, zone: str, proto: str, qtype: str, rcode: int, plugin: str,
               started: float) -> None:
        self.metrics.requests.labels(self.server_name, zone, proto, qtype).inc()
        self.metrics.responses.labels(self.server_name, zone, dns.rcode.to_text(rcode),
                                      plugin).inc()
        self.metrics.duration.labels(self.server_name, zone, qtype).observe(
            time.perf_counter() - started)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        asyncio.ensure_future(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        try:
            wire = await self.server.handle(data, "udp")
        except Exception:                        # noqa: BLE001 - one bad query never stops us
            log.exception("answering a query from %s", addr)
            return
        if wire is not None and self.transport is not None:
            self.transport.sendto(wire, addr)


async def _tcp_client(server: DnsServer, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            header = await reader.readexactly(2)
            wire = await server.handle(await reader.readexactly(struct.unpack("!H", header)[0]),
                                       "tcp")
            if wire is None:
                break
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def listen_dns(server: DnsServer, host: str, port: int) -> list:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(server),
                                                       local_addr=(host, port))
    tcp = await asyncio.start_server(lambda r, w: _tcp_client(server, r, w), host, port)
    return [transport, tcp]


async def serve_http(host: str, routes: dict[str, Callable[[], tuple[int, bytes, str]]],
                     port: int) -> web.AppRunner:
    app = web.Application()
    for path, produce in routes.items():
        async def handler(_request, produce=produce) -> web.Response:
            status, body, content_type = produce()
            return web.Response(status=status, body=body, headers={"Content-Type": content_type})
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def metrics_body(server: DnsServer) -> tuple[int, bytes, str]:
    return 200, generate_latest(server.metrics.registry), CONTENT_TYPE_LATEST
