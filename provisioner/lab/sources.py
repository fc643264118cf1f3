"""Which Debian mirror the lab's roots are debootstrapped from: the operator's own.

Place: asked by rootfs.py (and so by the Vagrant box build) when a root must be built. No host is
written into the code: the mirror is, in order, the `--mirror` flag of `lab up`, the
`PROVISIONER_LAB_MIRROR` environment variable, or the first Debian archive this machine's apt
already uses for the wanted suite (`/etc/apt/sources.list` and `sources.list.d/`, one-line and
deb822 formats). Parsing is pure (text in, entries out) so it is tested without this machine's
files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError

ENV_VAR = "PROVISIONER_LAB_MIRROR"
APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[AptSource]:
    """`deb [options] URI SUITE COMPONENT...` lines (sources.list format)."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue  # deb-src and anything else is not a binary archive
        words = line[4:].split()
        if words and words[0].startswith("["):
            # Options end at the word closing the bracket: `[arch=amd64 signed-by=...]`.
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            found.append(AptSource(words[0], (words[1],), tuple(words[2:])))
    return found


def parse_deb822(text: str) -> list[AptSource]:
    """Stanzas of `Types:`, `URIs:`, `Suites:`, `Components:` (the .sources format)."""
    found = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            found.append(AptSource(uri, suites, components))
    return found


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key = None
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last_key = {}, None
            continue
        if raw[0].isspace() and last_key:  # a folded continuation line
            current[last_key] += " " + raw.strip()
            continue
        key, _, value = raw.partition(":")
        last_key = key.strip().lower()
        current[last_key] = value.strip()
    return stanzas


def pick_mirror(sources: list[AptSource], suite: str) -> str | None:
    """The first archive serving `suite` itself (not -updates or -security) with `main`."""
    for source in sources:
        if suite in source.suites and "main" in source.components:
            return source.uri.rstrip("/")
    return None


def apt_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    found: list[AptSource] = []
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(parts.iterdir())
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".list":
            found += parse_one_line(text)
        elif path.suffix == ".sources":
            found += parse_deb822(text)
    return found


def debian_mirror(suite: str, override: str | None = None, apt_dir: Path = APT_DIR) -> str:
    """The mirror to debootstrap `suite` from; a clear error when none can be found."""
    if override:
        return override.rstrip("/")
    configured = os.environ.get(ENV_VAR)
    if configured:
        return configured.rstrip("/")
    mirror = pick_mirror(apt_sources(apt_dir), suite)
    if mirror is None:
        raise ProvisionerError(
            f"no Debian mirror for {suite} in this machine's apt sources ({apt_dir}); "
            f"pass `lab up --mirror URL` or set {ENV_VAR}"
        )
    return mirror
