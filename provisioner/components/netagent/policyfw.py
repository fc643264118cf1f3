"""netagent/policyfw: applies ``policy.build``'s chains in one iptables-restore transaction
(--noflush: only our PROV-NP-* chains are touched), removes our chains no longer wanted, and keeps
filter FORWARD's first rule a jump to PROV-NP-FORWARD."""

from __future__ import annotations

import subprocess

from .policy import CHAIN_PREFIX, TOP_CHAIN

JUMP = ["-m", "comment", "--comment", "provisioner network policies", "-j", TOP_CHAIN]


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False,
                          timeout=60)


def apply(chains: dict[str, list[str]]) -> None:
    saved = _run(["iptables-save", "-t", "filter"])
    existing = {line[1:].split()[0] for line in saved.stdout.splitlines()
                if line.startswith(":" + CHAIN_PREFIX)}
    stale = sorted(existing - set(chains))
    lines = ["*filter", *(f":{chain} - [0:0]" for chain in [*chains, *stale])]
    for rules in chains.values():
        lines += rules
    lines += [f"-X {chain}" for chain in stale]
    lines.append("COMMIT")
    done = _run(["iptables-restore", "-w", "5", "--noflush"], "\n".join(lines) + "\n")
    if done.returncode != 0:
        raise OSError(f"iptables-restore (network policies): {done.stderr.strip()}")
    if _run(["iptables", "-w", "5", "-C", "FORWARD", *JUMP]).returncode != 0:
        done = _run(["iptables", "-w", "5", "-I", "FORWARD", "1", *JUMP])
        if done.returncode != 0:
            raise OSError(f"iptables -I FORWARD: {done.stderr.strip()}")
