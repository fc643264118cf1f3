"""Phase `preflight`: every host is reachable and fit before anything is changed.

Checks, per host: Linux with os-release, python3 of the operator's minor version (wheels are
built on the operator), systemd as PID 1, the etcd ports free (or held by our own etcd) and the
registry's port on its host, clock within a few seconds of the operator's, and free disk. All problems on all hosts are reported
at once; nothing is changed on any host.
"""

from __future__ import annotations

import sys
import time

from provisioner.errors import ProvisionerError
from provisioner.phases.context import ClusterContext
from provisioner.phases.etcd import UNIT as ETCD_UNIT
from provisioner.phases.immutable import check_immutable
from provisioner.phases.registry import UNIT as REGISTRY_UNIT
from provisioner.workflow import Phase, Plan

MAX_CLOCK_SKEW_SECONDS = 30
MIN_FREE_DISK_MB = 1024

# One round trip per host: each line is `key=value`; failures of single probes are values.
PROBE = r"""
. /etc/os-release 2>/dev/null && echo "os=$ID $VERSION_ID" || echo "os="
echo "python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
echo "venv=$(python3 -c 'import venv, ensurepip' 2>/dev/null && echo yes || echo no)"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
echo "systemd_running=$(test -d /run/systemd/system && echo yes || echo no)"
echo "clock=$(date +%s)"
echo "disk_mb=$(df -Pm / | awk 'NR==2 {print $4}')"
echo "etcd_active=$(systemctl is-active {unit} 2>/dev/null)"
echo "registry_active=$(systemctl is-active {registry_unit} 2>/dev/null)"
echo "busybox=$(test -x /bin/busybox && echo yes || echo no)"
echo "iptables=$(command -v iptables-restore >/dev/null && echo yes || echo no)"
python3 - {ports} <<'PY' 2>/dev/null
import socket, sys
for port in sys.argv[1:]:
    sock = socket.socket()
    # Connections left in TIME_WAIT by a stopped etcd do not make the port busy; a listener does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", int(port)))
        print(f"port_{port}=free")
    except OSError:
        print(f"port_{port}=used")
    finally:
        sock.close()
PY
"""


def probe_command(ports: list[int]) -> str:
    return (PROBE.replace("{unit}", ETCD_UNIT.name).replace("{registry_unit}", REGISTRY_UNIT.name)
            .replace("{ports}", " ".join(map(str, ports))))


def parse_probe(stdout: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def check_host(facts: dict[str, str], *, is_etcd: bool, ports: list[int], operator_clock: float,
               is_node: bool = False, registry_port: int | None = None) -> list[str]:
    """The problems found on one host, each saying what to do. `registry_port`: the host is to
    serve the cluster's registry there."""
    problems: list[str] = []
    if is_node:
        # The container runtime's offline busybox image (pod sandboxes) is built from the host's
        # static busybox; kube-proxy and the network agent program the host's iptables.
        for fact, package in (("busybox", "busybox-static"), ("iptables", "iptables")):
            if facts.get(fact) == "no":
                problems.append(f"{package} is not installed; a node needs it "
                                f"(apt-get install {package})")
    want_python = "%d.%d" % sys.version_info[:2]
    if not facts.get("os"):
        problems.append("no /etc/os-release: not a supported Linux distribution")
    python = facts.get("python", "")
    if not python:
        problems.append("python3 is not installed; install it (apt-get install python3 python3-venv)")
    elif python != want_python:
        problems.append(
            f"python3 is {python} but the operator runs {want_python}; the wheels shipped to hosts "
            f"are built for {want_python}"
        )
    elif facts.get("venv") != "yes":
        problems.append("python3 cannot create virtualenvs; install python3-venv")
    if facts.get("init") != "systemd" or facts.get("systemd_running") != "yes":
        problems.append(
            f"systemd is not the init system (PID 1 is {facts.get('init') or 'unknown'}); "
            "this provisioner installs systemd units"
        )
    ours = facts.get("etcd_active") in ("active", "activating", "reloading")
    if is_etcd and not ours:
        used = [p for p in ports if facts.get(f"port_{p}") == "used"]
        if used:
            problems.append(
                f"port {', '.join(map(str, used))} already in use by another program; "
                "stop it or change spec.etcd ports"
            )
    registry_ours = facts.get("registry_active") in ("active", "activating", "reloading")
    if registry_port is not None and not registry_ours and facts.get(f"port_{registry_port}") == "used":
        problems.append(f"port {registry_port} already in use by another program; the cluster's "
                        "registry listens there: stop it, change spec.registry.port or set "
                        "spec.registry.enabled: false")
    try:
        skew = abs(float(facts.get("clock", "")) - operator_clock)
    except ValueError:
        problems.append("could not read the clock")
    else:
        if skew > MAX_CLOCK_SKEW_SECONDS:
            problems.append(
                f"clock is {skew:.0f}s away from the operator's; TLS and etcd need synchronised "
                "clocks (enable NTP, e.g. systemd-timesyncd)"
            )
    try:
        free = int(facts.get("disk_mb", ""))
    except ValueError:
        problems.append("could not read free disk space on /")
    else:
        if free < MIN_FREE_DISK_MB:
            problems.append(f"only {free} MiB free on /; need at least {MIN_FREE_DISK_MB} MiB")
    return problems


def probe_hosts(ctx: ClusterContext, plan: Plan) -> None:
    """Only reads: every problem is raised at once, before any phase changes anything."""
    spec = ctx.spec
    check_immutable(ctx)  # a running cluster's ranges, domain and ports stay as they are
    ports = [spec.etcd.client_port, spec.etcd.peer_port]
    registry = spec.registry_host
    if registry is not None:
        ports.append(spec.registry.port)
    session = plan.session  # connecting pins each host's key on first contact
    started = time.time()
    results = session.run(probe_command(ports))
    finished = time.time()
    problems: list[str] = []
    for host in spec.hosts:
        result = results[host.name]
        if not result.ok and not result.stdout:
            problems.append(f"host {host.name}: probe failed: {result.stderr.strip()}")
            continue
        facts = parse_probe(result.stdout)
        for problem in check_host(
            facts, is_etcd=host.is_etcd, ports=ports, operator_clock=(started + finished) / 2,
            is_node=host.is_control_plane or host.is_worker,
            registry_port=spec.registry.port if registry is not None and host.name == registry.name
            else None,
        ):
            problems.append(f"host {host.name}: {problem}")
        if not any(p.startswith(f"host {host.name}:") for p in problems):
            plan.note(f"{host.name}: ok ({facts.get('os')}, python {facts.get('python')})")
    if problems:
        raise ProvisionerError("hosts are not ready:\n  " + "\n  ".join(problems))


PHASE = Phase("preflight", "checking that every host is reachable and fit", probe_hosts)
