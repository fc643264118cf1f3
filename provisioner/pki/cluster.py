"""Issuing a cluster's certificate table into one local directory, reused on re-runs.

`ensure_certificates` issues what is missing or no longer matches its row (a new member, a
changed address, an expiring certificate) and leaves everything else byte-identical, so a
second run reports no change; `stale_certificates` says the same without writing anything
(what a dry run shows). A CA that is (re-)created re-issues everything it signed.
`expirations` reads the issued files for `certs check-expiration`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.pki.certs import (
    CertKeyPair,
    issue,
    matches,
    new_ca,
    new_signing_key,
    write_signing_key,
)
from provisioner.pki.table import Authority, Certificate, Row, SigningKey, Subject, has_role


@dataclass(frozen=True)
class Wanted:
    """One certificate to hold, resolved from its row for this cluster (and host)."""

    row: Certificate
    name: str
    common_name: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def wanted_certificates(rows: Sequence[Row], spec: Any) -> list[Wanted]:
    """Every leaf certificate of the table for `spec`: per-host rows once per host."""
    wanted = []
    for row in rows:
        if not isinstance(row, Certificate):
            continue
        subjects = ([Subject(spec, h) for h in spec.hosts if has_role(h, row.roles)]
                    if row.per_host else [Subject(spec)])
        for subject in subjects:
            dns, ips = row.alt_names(subject)
            wanted.append(Wanted(row, row.local_name(subject), row.subject_name(subject), dns, ips))
    return wanted


def load_pair(pki_dir: Path, name: str) -> CertKeyPair:
    path = pki_dir / name
    return CertKeyPair.load(path.parent, path.name)


def _exists(pki_dir: Path, name: str) -> bool:
    path = pki_dir / name
    return CertKeyPair.exists(path.parent, path.name)


def _current(pki_dir: Path, want: Wanted, ca: CertKeyPair | None) -> bool:
    if ca is None or not _exists(pki_dir, want.name):
        return False
    return matches(load_pair(pki_dir, want.name), ca, common_name=want.common_name,
                   organizations=want.row.organizations, dns_names=want.dns_names,
                   ip_addresses=want.ip_addresses)


def _signing_key_present(pki_dir: Path, row: SigningKey) -> bool:
    return (pki_dir / f"{row.name}.key").exists() and (pki_dir / f"{row.name}.pub").exists()


def stale_certificates(pki_dir: Path, rows: Sequence[Row], spec: Any) -> list[str]:
    """The names `ensure_certificates` would issue now; writes nothing."""
    stale: list[str] = []
    cas: dict[str, CertKeyPair | None] = {}
    for row in rows:
        if isinstance(row, Authority):
            present = _exists(pki_dir, row.name)
            cas[row.name] = load_pair(pki_dir, row.name) if present else None
            if not present:
                stale.append(row.name)
    for want in wanted_certificates(rows, spec):
        if not _current(pki_dir, want, cas.get(want.row.ca)):
            stale.append(want.name)
    stale += [row.name for row in rows
              if isinstance(row, SigningKey) and not _signing_key_present(pki_dir, row)]
    return stale


def ensure_certificates(pki_dir: Path, rows: Sequence[Row], spec: Any) -> list[str]:
    """Issue what is missing or stale; return the names issued ([] when nothing changed)."""
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    issued: list[str] = []
    cas: dict[str, CertKeyPair] = {}
    for row in rows:
        if isinstance(row, Authority):
            if _exists(pki_dir, row.name):
                cas[row.name] = load_pair(pki_dir, row.name)
            else:
                path = pki_dir / row.name
                cas[row.name] = new_ca(row.common_name, days=row.days)
                cas[row.name].save(path.parent, path.name)
                issued.append(row.name)
    for want in wanted_certificates(rows, spec):
        ca = cas[want.row.ca]
        if _current(pki_dir, want, ca):
            continue
        pair = issue(ca, want.common_name, organizations=want.row.organizations,
                     dns_names=want.dns_names, ip_addresses=want.ip_addresses,
                     server="server" in want.row.usages, client="client" in want.row.usages,
                     days=want.row.days)
        path = pki_dir / want.name
        pair.save(path.parent, path.name)
        issued.append(want.name)
    for row in rows:
        if isinstance(row, SigningKey) and not _signing_key_present(pki_dir, row):
            write_signing_key(pki_dir, row.name, new_signing_key())
            issued.append(row.name)
    return issued


@dataclass(frozen=True)
class Expiration:
    """One issued certificate's expiry, as `certs check-expiration` lists it."""

    name: str
    authority: str  # the signing CA's name; "" for a CA itself
    expires: dt.datetime | None  # None: not issued yet

    def residual(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.expires is None else self.expires - now


def expirations(pki_dir: Path, rows: Sequence[Row], spec: Any) -> list[Expiration]:
    """Every CA and certificate of the table, with when its issued file expires."""

    def expiry(name: str) -> dt.datetime | None:
        return load_pair(pki_dir, name).cert.not_valid_after_utc if _exists(pki_dir, name) else None

    found = [Expiration(r.name, "", expiry(r.name)) for r in rows if isinstance(r, Authority)]
    found += [Expiration(w.name, w.row.ca, expiry(w.name)) for w in wanted_certificates(rows, spec)]
    return found
