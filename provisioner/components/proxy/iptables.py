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


BASE_CHAINS = {
    "filter": ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
               "KUBE-PROXY-FIREWALL", CANARY),
    "nat": ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", CANARY),
    "mangle": (CANARY,),
}


def ensure_base() -> None:
    """Our top-level chains exist, the built-in chains jump to them, the canaries are set.

    Only missing chains are created: declaring an existing chain to iptables-restore flushes it,
    and a restarted kube-proxy must not cut Services off until its first sync."""
    payload = []
    for table, chains in BASE_CHAINS.items():
        done = _run(["iptables-save", "-t", table])
        if done.returncode != 0:
            raise IptablesError(f"iptables-save -t {table}: {done.stderr.strip()}")
        have = {line[1:].split()[0] for line in done.stdout.splitlines() if line.startswith(":")}
        missing = [chain for chain in chains if chain not in have]
        if missing:
            payload += [f"*{table}", *(f":{chain} - [0:0]" for chain in missing), "COMMIT"]
    if payload:
        restore("\n".join(payload) + "\n")
    for table, chain, rule in BUILTIN_JUMPS:
        if _run(["iptables", "-w", LOCK_WAIT, "-t", table, "-C", chain, *rule]).returncode != 0:
            done = _run(["iptables", "-w", LOCK_WAIT, "-t", table, "-I", chain, "1", *rule])
            if done.returncode != 0:
                raise IptablesError(f"iptables -t {table} -I {chain}: {done.stderr.strip()}")


def canary_present() -> bool:
    """False when someone flushed or deleted our chains (the sign to do a full sync)."""
    return _run(["iptables", "-w", LOCK_WAIT, "-t", "mangle", "-n", "-L", CANARY]).returncode == 0
