"""kubelet: a pod's /etc/resolv.conf and /etc/hosts, as kubelet writes them.

resolv.conf by dnsPolicy (pkg/kubelet/network/dns): ClusterFirst uses the cluster DNS with the
search path <ns>.svc.<domain> svc.<domain> <domain> plus the host's, and ndots:5; Default copies
the host's; None takes only dnsConfig; ClusterFirstWithHostNet is ClusterFirst for host-network
pods (which otherwise get Default). dnsConfig is merged in. Limits: 3 nameservers, 32 search
domains, 2,048 characters of search path.
"""

from __future__ import annotations

MAX_NAMESERVERS = 3
MAX_SEARCH = 32
MAX_SEARCH_CHARS = 2048


def parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    nameservers, search, options = [], [], []
    for line in text.splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return nameservers, search, options


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    merged: dict[str, str | None] = {}
    for option in base:
        name, _, value = option.partition(":")
        merged[name] = value or None
    for option in extra:
        merged[option["name"]] = option.get("value")
    return [name if value is None else f"{name}:{value}" for name, value in merged.items()]


def resolv_conf(pod: dict, host_resolv: str, cluster_dns: list[str], domain: str) -> str:
    spec = pod["spec"]
    namespace = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_ns, host_search, host_options = parse_resolv(host_resolv)
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and not cluster_dns:
        policy = "Default"        # no cluster DNS configured: kubelet falls back to the host's
    if policy == "ClusterFirst":
        nameservers = list(cluster_dns)
        search = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_search]
        options = ["ndots:5"]
    elif policy == "None":
        nameservers, search, options = [], [], []
    else:
        nameservers, search, options = host_ns, host_search, host_options
    config = spec.get("dnsConfig") or {}
    nameservers = list(dict.fromkeys([*nameservers, *(config.get("nameservers") or [])]))
    search = list(dict.fromkeys([*search, *(config.get("searches") or [])]))
    options = _merge_options(options, config.get("options") or [])
    nameservers = nameservers[:MAX_NAMESERVERS]
    search = search[:MAX_SEARCH]
    while search and len(" ".join(search)) > MAX_SEARCH_CHARS:
        search.pop()
    lines = [f"nameserver {server}" for server in nameservers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict, pod_ips: list[str], domain: str) -> str:
    spec = pod["spec"]
    hostname = spec.get("hostname") or pod["metadata"]["name"]
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if spec.get("subdomain"):
        fqdn = f"{hostname}.{spec['subdomain']}.{pod['metadata'].get('namespace', 'default')}" \
               f".svc.{domain}"
        names = f"{fqdn}\t{hostname}"
    else:
        names = hostname
    for ip in pod_ips:
        lines.append(f"{ip}\t{names}")
    if spec.get("hostAliases"):
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for alias in spec["hostAliases"]:
            lines.append(f"{alias['ip']}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"
