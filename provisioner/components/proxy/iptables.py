"""proxy/iptables: the proxier's door to iptables: restore a payload (--noflush, waiting for the
xtables lock), list kube-proxy's chains, make sure the built-in chains jump to ours, check the
canary chain. Errors carry iptables' own message and the failing line of the payload."""

from __future__ import annotations

import re
import subprocess

from .rules import BUILTIN_JUMPS, CANARY, SERVICE_CHAIN_PREFIXES

LOCK_WAIT = "5"


class IptablesError(Exception):
    pass


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise IptablesError(f"{argv[0]}: {error}") from None


def restore(payload: str) -> None:
    done = _run(["iptables-restore", "-w", LOCK_WAIT, "--noflush"], payload)
    if done.returncode != 0:
        message = done.stderr.strip()
        failing = re.search(r"line:? (\d+)", message)
        if failing:
            lines = payload.splitlines()
            number = int(failing.group(1))
            if 0 < number <= len(lines):
                message += f" (line {number}: {lines[number - 1]})"
        raise IptablesError(f"iptables-restore failed: {message}")


def service_chains() -> set[str]:
    """kube-proxy's per-service nat chains that exist now (for the full sync's clean-up)."""
    done = _run(["iptables-save", "-t", "nat"])
    if done.returncode != 0:
        raise IptablesError(f"iptables-save failed: {done.stderr.strip()}")
    return {line[1:].split()[0] for line in done.stdout.splitlines()
            if line.startswith(":") and line[1:].startswith(SERVICE_CHAIN_PREFIXES)}


def ensure_base() -> None:
    """Our top-level chains exist, the built-in chains jump to them, the canaries are set."""
    payload = ["*filter", *(f":{c} - [0:0]" for c in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES",
                                                       "KUBE-FORWARD", "KUBE-NODEPORTS",
                                                       "KUBE-PROXY-FIREWALL", CANARY)),
               "COMMIT", "*nat", *(f":{c} - [0:0]" for c in ("KUBE-SERVICES", "KUBE-NODEPORTS",
                                                             "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
                                                             CANARY)),
               "COMMIT", "*mangle", f":{CANARY} - [0:0]", "COMMIT"]
    # Declaring a chain in restore flushes it: only the top chains whose content every sync
    # rewrites anyway, and the empty canaries.
    restore("\n".join(payload) + "\n")
    for table, chain, rule in BUILTIN_JUMPS:
        if _run(["iptables", "-w", LOCK_WAIT, "-t", table, "-C", chain, *rule]).returncode != 0:
            done = _run(["iptables", "-w", LOCK_WAIT, "-t", table, "-I", chain, "1", *rule])
            if done.returncode != 0:
                raise IptablesError(f"iptables -t {table} -I {chain}: {done.stderr.strip()}")


def canary_present() -> bool:
    """False when someone flushed or deleted our chains (the sign to do a full sync)."""
    return _run(["iptables", "-w", LOCK_WAIT, "-t", "mangle", "-n", "-L", CANARY]).returncode == 0
