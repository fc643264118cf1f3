"""kubelet: registry credentials for an image pull from the pod's imagePullSecrets.

The ServiceAccount admission plugin copies the account's imagePullSecrets into pods that name
none, so the pod's list is all the kubelet reads (as kubelet does). Secrets of type
`kubernetes.io/dockerconfigjson` (`.dockerconfigjson`: `{"auths": {key: config}}`) and
`kubernetes.io/dockercfg` (`.dockercfg`: `{key: config}`) are read; other types are passed
over. A key matches an image as kubelet's keyring matches: `[scheme://]host[:port][/path]`, the
host compared label by label with `*` globs, the port equal, the path a prefix of the image's
repository; the most specific keys come first. Each matching credential is tried in turn until
a pull succeeds, then the pull without credentials when none matched. Credentials go to the
runtime in the pull request only, never into a log or an event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable

from ..runtime.client import RuntimeAPIError
from ..runtime.images.errors import ImageError
from ..runtime.images.reference import DEFAULT_REGISTRY, parse_reference

log = logging.getLogger("kubelet.pods")
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
# secret type -> (data key, whether the JSON wraps its entries in "auths")
SECRET_FORMATS = {
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson", True),
    "kubernetes.io/dockercfg": (".dockercfg", False),
}

Lookup = Callable[[str, str], Awaitable["dict | None"]]


def _split_key(key: str) -> tuple[str, str]:
    """`https://host:5000/team/` -> ("host:5000", "team"); Docker Hub's names -> docker.io."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        text = text.removeprefix(scheme)
    host, _, path = text.partition("/")
    host = host.lower()
    if host in DOCKER_HUB_ALIASES:
        host, path = DEFAULT_REGISTRY, "" if path.strip("/") == "v1" else path
    return host, path.strip("/")


def _host_matches(pattern: str, host: str) -> bool:
    pattern_name, _, pattern_port = pattern.rpartition(":") if ":" in pattern else (pattern, "", "")
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    labels, wanted = pattern_name.split("."), name.split(".")
    return (pattern_port == port and len(labels) == len(wanted)
            and all(fnmatch.fnmatchcase(label, glob) for glob, label in zip(labels, wanted)))


def _matches(key: str, registry: str, repository: str) -> bool:
    host, path = _split_key(key)
    return _host_matches(host, registry) and (
        not path or repository == path or repository.startswith(path + "/"))


def _auth_config(entry: object) -> dict | None:
    """The runtime's auth form of one entry ({"username", "password"} or identitytoken)."""
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return {"identitytoken": str(entry["identitytoken"])}
    user, password = entry.get("username"), entry.get("password")
    if not (user and password) and entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, ValueError):
            return None
    if not user or not password:
        return None
    return {"username": str(user), "password": str(password)}


def entries_of(secret: dict) -> dict[str, dict]:
    """registry key -> auth config of one pull secret; {} for other types or bad contents."""
    format_ = SECRET_FORMATS.get(secret.get("type") or "")
    if format_ is None:
        return {}
    data_key, wrapped = format_
    encoded = (secret.get("data") or {}).get(data_key)
    try:
        document = json.loads(base64.b64decode(encoded or ""))
    except (binascii.Error, ValueError):
        log.warning("image pull secret %s: %s is not base64 JSON; passed over",
                    (secret.get("metadata") or {}).get("name"), data_key)
        return {}
    entries = document.get("auths") if wrapped and isinstance(document, dict) else document
    if not isinstance(entries, dict):
        return {}
    found = {}
    for key, entry in entries.items():
        config = _auth_config(entry)
        if config is not None:
            found[str(key)] = config
    return found


async def credentials_for(pod: dict, image: str, lookup: Lookup) -> tuple[list[dict], list[str]]:
    """(auth configs matching `image`, most specific first; names of secrets not found)."""
    try:
        reference = parse_reference(image)
    except ImageError:
        return [], []          # the pull itself says what is wrong with the name
    matched: list[tuple[str, dict]] = []
    missing = []
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        name = ref.get("name") if isinstance(ref, dict) else None
        if not name:
            continue
        try:
            secret = await lookup("Secret", name)
        except Exception as error:  # noqa: BLE001 - an unreadable secret is a missing one
            log.warning("image pull secret %s could not be read: %s", name, error)
            secret = None
        if secret is None:
            missing.append(name)
            continue
        matched += [(key, config) for key, config in entries_of(secret).items()
                    if _matches(key, reference.registry, reference.repository)]
    # kubelet's keyring: keys in reverse lexical order, so longer (more specific) paths first
    matched.sort(key=lambda item: _split_key(item[0]), reverse=True)
    unique: list[dict] = []
    for _, config in matched:
        if config not in unique:
            unique.append(config)
    return unique, missing


def _drain(events) -> None:
    for _ in events:
        pass


async def pull(runtime, image: str, auths: list[dict]) -> None:
    """Pull with each credential in turn (anonymously when there is none); the last error."""
    error: RuntimeAPIError | None = None
    for auth in auths or [None]:
        try:
            await asyncio.to_thread(_drain, runtime.client.pull(image, auth=auth))
            return
        except RuntimeAPIError as failed:
            error = failed
    assert error is not None
    raise error
