"""runtime/images: image references as Docker spells them.

`busybox` means `docker.io/library/busybox:latest`; `localhost:5000/web:1` names a registry by its
first component (it has a dot or a port, or is `localhost`); `name@sha256:<hex>` pins a manifest.
The store keeps the familiar spelling (`busybox:latest`, `localhost:5000/web:1`) as tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# docker.io is an alias; its API lives here.
DOCKER_HUB_API_HOST = "registry-1.docker.io"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    registry: str          # "docker.io", "localhost:5000"
    repository: str        # "library/busybox", "web"
    tag: str | None
    digest: str | None     # "sha256:<hex>"

    @property
    def familiar_name(self) -> str:
        """The repository as people write it: no docker.io, no library/."""
        if self.registry == DEFAULT_REGISTRY:
            if self.repository.startswith("library/"):
                return self.repository[len("library/"):]
            return self.repository
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse `[registry/]repo[:tag][@sha256:hex]`; a missing tag and digest means `:latest`."""
    original = text
    if not text or text != text.strip():
        raise InvalidReference(
            f"invalid image reference {original!r}: empty or surrounded by spaces")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(
                f"invalid image reference {original!r}: digest must be sha256: and 64 hex digits")
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid image reference {original!r}: bad tag {tag!r}")
    parts = text.split("/")
    registry = DEFAULT_REGISTRY
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"
                           or first != first.lower()):
        if not _DOMAIN.match(first):
            raise InvalidReference(f"invalid image reference {original!r}: bad registry {first!r}")
        registry = first
        parts = parts[1:]
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    for component in parts:
        if not _COMPONENT.match(component):
            raise InvalidReference(
                f"invalid image reference {original!r}: {component!r} is not a valid repository "
                "name component (lowercase letters, digits, and . _ - separators)")
    repository = "/".join(parts)
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        repository = f"library/{repository}"
    if len(repository) > 255:
        raise InvalidReference(f"invalid image reference {original!r}: repository name too long")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest)


def normalize_tag(text: str) -> str:
    """The familiar `name:tag` the store records for a tag reference; digests are refused."""
    ref = parse_reference(text)
    if ref.digest:
        raise InvalidReference(f"cannot tag with a digest reference {text!r}; use name:tag")
    return str(ref)
