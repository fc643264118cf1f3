"""runtime/daemon: registry credentials saved by `provisioner-runtime login`.

They live in `<root>/auth.json`, mode 0600, keyed by registry host (`host:port`, `docker.io`),
as Docker's config.json keeps them (base64 of `user:password`). The daemon hands them to the
registry client on pull and push; they are never logged and never returned by the API.

`credentials_from` reads the credentials one request brings (Docker's auth config as in
`X-Registry-Auth`, the kubelet's pull secrets): username and password, `auth` (base64 of
`user:password`) or an `identitytoken` (an OAuth2 refresh token, carried as the user `<token>`
as Docker's credential helpers do).
"""

from __future__ import annotations

import base64
import json
import os
import threading

from .errors import BadRequest

Credentials = tuple[str, str]          # (user, password); user "<token>": an identity token
IDENTITY_TOKEN_USER = "<token>"


def registry_host(text: str) -> str:
    """`https://host:5000/` or `host:5000` -> `host:5000`; empty means Docker Hub."""
    host = text.strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.split("/", 1)[0]
    if host in ("", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    if any(char.isspace() for char in host):
        raise BadRequest(f"invalid registry {text!r}: give a host name, e.g. localhost:5000")
    return host


class CredentialStore:
    def __init__(self, root: str):
        self.path = os.path.join(root, "auth.json")
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        try:
            with open(self.path) as source:
                data = json.load(source)
        except FileNotFoundError:
            return {}
        return data.get("auths", {}) if isinstance(data, dict) else {}

    def _write(self, auths: dict[str, dict]) -> None:
        partial = f"{self.path}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"auths": auths}, out)
        os.chmod(partial, 0o600)     # an old partial file may have had other bits
        os.replace(partial, self.path)

    def all(self) -> dict[str, tuple[str, str]]:
        """registry host -> (user, password)."""
        credentials = {}
        for host, entry in self._read().items():
            user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
            credentials[host] = (user, password)
        return credentials

    def save(self, host: str, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        with self._lock:
            auths = self._read()
            auths[host] = {"auth": token}
            self._write(auths)

    def remove(self, host: str) -> bool:
        with self._lock:
            auths = self._read()
            if host not in auths:
                return False
            del auths[host]
            self._write(auths)
            return True


def credentials_from(config: object, where: str) -> Credentials | None:
    """The (user, password) of a Docker auth config; None when it holds none (an empty `{}` is
    what clients send when they have nothing). `where` names the source in error messages."""
    if not isinstance(config, dict):
        raise BadRequest(f"{where} must be a JSON object with username and password "
                         "(or identitytoken)")
    token = config.get("identitytoken")
    if token:
        if not isinstance(token, str):
            raise BadRequest(f"{where}: identitytoken must be a string")
        return IDENTITY_TOKEN_USER, token
    user, password = config.get("username"), config.get("password")
    if not user and not password and config.get("auth"):
        try:
            user, _, password = base64.b64decode(str(config["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(f"{where}: auth is not base64 of user:password") from None
    if not user and not password:
        return None
    if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
        raise BadRequest(f"{where} needs both a username and a password (strings)")
    return user, password
