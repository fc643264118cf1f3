"""`provisioner certs check-expiration`: the certificate table with when each issued file expires.

Laid out as kubeadm's `certs check-expiration`: leaf certificates first with their CA, then the
authorities; read from the operator's copy in the cluster's local state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provisioner.pki.cluster import Expiration, expirations
from provisioner.pki.table import Row


def residual(left: dt.timedelta | None) -> str:
    if left is None:
        return "not issued"
    if left <= dt.timedelta(0):
        return "<invalid>"
    if left.days >= 365:
        return f"{left.days // 365}y"
    if left.days >= 1:
        return f"{left.days}d"
    return f"{int(left.total_seconds() // 3600)}h"


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _when(entry: Expiration) -> str:
    return entry.expires.strftime("%b %d, %Y %H:%M UTC") if entry.expires else "-"


def expiration_table(pki_dir: Path, table: Sequence[Row], spec: Any,
                     now: dt.datetime | None = None,
                     also: Sequence[tuple[Sequence[Row], Any]] = ()) -> str:
    """`also`: more (rows, spec) pairs issued from the same PKI directory, as the registry's
    certificates are (for a spec narrowed to the hosts they are for); an authority listed twice
    is listed once."""
    now = now or dt.datetime.now(dt.timezone.utc)
    entries = expirations(pki_dir, table, spec)
    for rows, narrowed in also:
        seen = {e.name for e in entries}
        entries += [e for e in expirations(pki_dir, rows, narrowed) if e.name not in seen]
    leaves = [["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"]]
    leaves += [[e.name, _when(e), residual(e.residual(now)), e.authority]
               for e in entries if e.authority]
    authorities = [["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME"]]
    authorities += [[e.name, _when(e), residual(e.residual(now))]
                    for e in entries if not e.authority]
    return _columns(leaves) + "\n\n" + _columns(authorities)
