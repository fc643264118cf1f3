"""cni/iptables: the few iptables calls the plugins make (nat table), waiting for the xtables lock,
idempotent: a rule is appended only when ``-C`` does not find it, deleted only when it does."""

from __future__ import annotations

import subprocess

from .protocol import IO_FAILURE, CniFailure


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True,
                          check=False)
    if check and done.returncode != 0:
        raise CniFailure(IO_FAILURE, f"iptables {' '.join(args)}: {done.stderr.strip()}")
    return done


def exists(table: str, chain: str, rule: list[str]) -> bool:
    return run("-t", table, "-C", chain, *rule, check=False).returncode == 0


def ensure_rule(table: str, chain: str, rule: list[str], position: int | None = None) -> None:
    if not exists(table, chain, rule):
        if position is None:
            run("-t", table, "-A", chain, *rule)
        else:
            run("-t", table, "-I", chain, str(position), *rule)


def delete_rule(table: str, chain: str, rule: list[str]) -> None:
    while exists(table, chain, rule):
        run("-t", table, "-D", chain, *rule)


def ensure_chain(table: str, chain: str) -> None:
    if run("-t", table, "-n", "-L", chain, check=False).returncode != 0:
        run("-t", table, "-N", chain, check=False)


def delete_chain(table: str, chain: str) -> None:
    if run("-t", table, "-n", "-L", chain, check=False).returncode == 0:
        run("-t", table, "-F", chain)
        run("-t", table, "-X", chain)
