"""dns/forward: names outside the cluster go to the upstream resolvers (the node's resolv.conf by
default), tried in order over UDP (TCP when truncated); answers are cached for their TTL, at most
``max_ttl`` (30 s, as kubeadm's CoreDNS), negative answers for the SOA minimum, at most the same.
When no upstream answers, the client gets SERVFAIL at once, never silence."""

from __future__ import annotations

import time
from collections import OrderedDict

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

MAX_ENTRIES = 10000


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf") -> list[str]:
    found = []
    try:
        with open(path) as source:
            for line in source:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    found.append(parts[1])
    except OSError:
        pass
    return found


def parse_upstream(text: str) -> tuple[str, int]:
    """"1.2.3.4", "1.2.3.4:5353", "[::1]:53" -> (address, port)."""
    if text.startswith("["):
        address, _, port = text[1:].partition("]:")
        return address.rstrip("]"), int(port or 53)
    if text.count(":") == 1:
        address, port = text.split(":")
        return address, int(port)
    return text, 53


class Forwarder:
    def __init__(self, upstreams: list[str], max_ttl: int = 30, timeout: float = 2.0):
        self.upstreams = [parse_upstream(u) for u in upstreams]
        self.max_ttl = max_ttl
        self.timeout = timeout
        self.cache: OrderedDict[tuple, tuple[float, dns.message.Message]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.failures = 0

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        key = (question.name.to_text().lower(), question.rdtype, question.rdclass)
        cached = self.cache.get(key)
        if cached and cached[0] > time.monotonic():
            self.hits += 1
            self.cache.move_to_end(key)
            return _with_id(cached[1], query)
        self.misses += 1
        for address, port in self.upstreams:
            try:
                reply = await dns.asyncquery.udp(_plain(query), address, port=port,
                                                 timeout=self.timeout)
                if reply.flags & dns.flags.TC:
                    reply = await dns.asyncquery.tcp(_plain(query), address, port=port,
                                                     timeout=self.timeout)
            except (dns.exception.DNSException, OSError):
                continue
            if reply.rcode() not in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                self._store(key, reply)
            return _with_id(reply, query)
        self.failures += 1
        failure = dns.message.make_response(query)
        failure.set_rcode(dns.rcode.SERVFAIL)
        return failure

    def _store(self, key: tuple, reply: dns.message.Message) -> None:
        ttls = [rrset.ttl for rrset in reply.answer] or \
            [getattr(rrset[0], "minimum", rrset.ttl) for rrset in reply.authority if len(rrset)]
        ttl = min([self.max_ttl, *ttls])
        if ttl <= 0:
            return
        self.cache[key] = (time.monotonic() + ttl, reply)
        self.cache.move_to_end(key)
        while len(self.cache) > MAX_ENTRIES:
            self.cache.popitem(last=False)


def _plain(query: dns.message.Message) -> dns.message.Message:
    """The question alone, asked with recursion (our own id; the client's is put back after)."""
    forwarded = dns.message.make_query(query.question[0].name, query.question[0].rdtype,
                                       query.question[0].rdclass)
    return forwarded


def _with_id(reply: dns.message.Message, query: dns.message.Message) -> dns.message.Message:
    copy = dns.message.from_wire(reply.to_wire())
    copy.id = query.id
    return copy
