"""dns/answer: one query for the cluster zone (or a reverse name of it) -> one response. Pure.

Names: ``dns-version.<zone>`` (TXT 1.1.0), ``<svc>.<ns>.svc.<zone>``, ``<host>.<svc>.<ns>.svc.<zone>``,
``_<port>._<proto>.<svc>.<ns>.svc.<zone>``, ``<a-b-c-d>.<ns>.pod.<zone>`` (any dashed address, as
CoreDNS's ``pods insecure``), PTR for Service and endpoint addresses. A name that exists without the
asked type answers NOERROR with no records (NODATA), a missing one NXDOMAIN; both carry the zone's
SOA. ``None`` means not ours: the caller forwards it.
"""

from __future__ import annotations

import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .zone import Zone

TTL = 5
SCHEMA_VERSION = "1.1.0"


def _rrset(name: str, rdtype: str, *texts: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, TTL, "IN", rdtype, *texts)


def _soa(zone: Zone) -> dns.rrset.RRset:
    return _rrset(zone.domain, "SOA", f"ns.dns.{zone.domain} hostmaster.{zone.domain} "
                  "1 7200 1800 86400 5")


def _addresses(name: str, addresses: list[str], qtype: int) -> list[dns.rrset.RRset]:
    family = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(qtype)
    if family is None:
        return []
    chosen = [a for a in addresses if ipaddress.ip_address(a).version == family]
    return [_rrset(name, dns.rdatatype.to_text(qtype), *chosen)] if chosen else []


def _lookup(zone: Zone, name: str, qtype: int) -> tuple[bool, list, list]:
    """(exists, answer rrsets, additional rrsets) for a name under the zone."""
    labels = name[: -len(zone.domain)].rstrip(".").split(".") if name != zone.domain else []
    if labels == ["dns-version"]:
        return True, ([_rrset(name, "TXT", f'"{SCHEMA_VERSION}"')]
                      if qtype == dns.rdatatype.TXT else []), []
    if len(labels) >= 2 and labels[-1] == "svc":
        service = zone.services.get(".".join(labels[-3:]) + "." + zone.domain) \
            if len(labels) >= 3 else None
        if len(labels) == 2:
            return labels[0] in zone.namespaces, [], []
        if service is None:
            return False, [], []
        if len(labels) == 3:
            if service.cname:
                return True, [_rrset(name, "CNAME", service.cname)], []
            return True, _addresses(name, service.addresses, qtype), []
        if len(labels) == 4:
            host = service.hosts.get(labels[0])
            return host is not None, _addresses(name, host or [], qtype), []
        if len(labels) == 5 and labels[0].startswith("_") and labels[1].startswith("_"):
            targets = service.srv.get(f"{labels[0]}.{labels[1]}")
            if not targets:
                return False, [], []
            if qtype != dns.rdatatype.SRV:
                return True, [], []
            weight = max(1, 100 // len(targets))
            answer = [_rrset(name, "SRV", *(f"0 {weight} {port} {target}"
                                            for port, target in targets))]
            extra = []
            for target in dict.fromkeys(target for _, target in targets):
                addresses = service.addresses if target == service.name else \
                    service.hosts.get(target.split(".")[0], [])
                extra += _addresses(target, addresses, dns.rdatatype.A)
            return True, answer, extra
        return False, [], []
    if len(labels) == 3 and labels[-1] == "pod":
        try:
            address = ipaddress.IPv4Address(labels[0].replace("-", "."))
        except ValueError:
            return False, [], []
        return True, _addresses(name, [str(address)], qtype), []
    if labels in ([], ["svc"], ["pod"]) or (len(labels) == 2 and labels[-1] == "pod"):
        answer = [_soa(zone)] if not labels and qtype == dns.rdatatype.SOA else []
        return True, answer, []
    return False, [], []


def answer(zone: Zone, query: dns.message.Message) -> dns.message.Message | None:
    if not query.question:
        return None
    question = query.question[0]
    name = question.name.to_text().lower()
    qtype = question.rdtype
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if name.endswith(".in-addr.arpa.") or name.endswith(".ip6.arpa."):
        target = zone.ptr.get(name)
        if target is None:
            return None
        if qtype == dns.rdatatype.PTR:
            response.answer.append(_rrset(name, "PTR", target))
        return response
    if name != zone.domain and not name.endswith("." + zone.domain):
        return None
    exists, records, extra = _lookup(zone, name, qtype)
    response.answer.extend(records)
    response.additional.extend(extra)
    if not records:
        response.authority.append(_soa(zone))
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
    return response
