"""Smoke test: every file, unit and directory create placed is on each host with its mode.

The list comes from what the phases declare they own (provisioner.phases.owned); one probe per
host reads the mode of every path at once.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from provisioner.verify.checks import CheckResult

CHECK = "files in place"


def stat_command(paths: list[str]) -> str:
    """Prints `MODE PATH` for each of `paths` that exists (read-only)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    return f'for p in {quoted}; do [ -e "$p" ] && echo "$(stat -c %a "$p") $p"; done; true'


def parse_stat(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        mode, _, path = line.partition(" ")
        if path:
            found[path] = mode
    return found


def expected_modes(share: Any) -> dict[str, str | None]:
    """Path -> mode it must have (None: only that it exists) for a host's HostShare."""
    wanted: dict[str, str | None] = {f.path: f.mode for f in share.files}
    wanted.update({u.path: None for u in share.units})
    wanted.update({d: None for d in (*share.directories, *share.data_dirs)})
    return wanted


def judge(host: str, wanted: Mapping[str, str | None], probe_output: str) -> CheckResult:
    found = parse_stat(probe_output)
    missing = [p for p in wanted if p not in found]
    wrong = [f"{p} is {found[p]}, not {m}" for p, m in wanted.items()
             if m is not None and p in found and found[p] != m]
    if not missing and not wrong:
        return CheckResult(CHECK, host, True, f"{len(wanted)} paths present with their modes")
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + wrong
    return CheckResult(CHECK, host, False, "; ".join(problems))


def file_checks(session: Any, shares: Mapping[str, Any], hosts: list[Any]) -> list[CheckResult]:
    """One result per host that owns anything, from one probe per host."""
    hosts = [h for h in hosts if expected_modes(shares[h.name])]
    if not hosts:
        return []
    paths = sorted({p for h in hosts for p in expected_modes(shares[h.name])})
    results = session.run(stat_command(paths), hosts)
    return [judge(h.name, expected_modes(shares[h.name]), results[h.name].stdout) for h in hosts]
