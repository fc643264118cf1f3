"""runtime/images: registry authentication (the registry client's helper).

A registry answers 401 with `WWW-Authenticate`. For `Bearer realm=...,service=...,scope=...` the
client asks the token endpoint (with basic credentials when it has some) and retries with the
token; for `Basic` it retries with the credentials. Tokens are cached per scope.

Credentials whose user is `<token>` carry an identity token (an OAuth2 refresh token, what a
registry's token service hands out at login): it is exchanged at the token endpoint with a POST
(`grant_type=refresh_token`), as Docker does, and cannot serve a `Basic` registry.
"""

from __future__ import annotations

import base64
import re

import aiohttp

from .errors import RegistryError

IDENTITY_TOKEN_USER = "<token>"
CLIENT_ID = "provisioner-runtime"
_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y"` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


def basic_header(credentials: tuple[str, str]) -> str:
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Authenticator:
    """Authorization headers for one registry host, learnt from its 401 challenges."""

    def __init__(self, host: str, credentials: tuple[str, str] | None):
        self.host = host
        self.credentials = credentials
        self._scheme: str | None = None
        self._params: dict[str, str] = {}
        self._tokens: dict[str, str] = {}

    def header(self, scope: str) -> dict[str, str]:
        if self._scheme == "basic" and self.credentials:
            return {"Authorization": basic_header(self.credentials)}
        if self._scheme == "bearer" and scope in self._tokens:
            return {"Authorization": "Bearer " + self._tokens[scope]}
        return {}

    async def handle_challenge(self, session: aiohttp.ClientSession, header: str | None,
                               scope: str) -> None:
        """Learn from a 401; raises RegistryError when retrying cannot help."""
        if not header:
            raise RegistryError(f"registry {self.host} refused the request (401) "
                                "without saying how to authenticate")
        scheme, params = parse_challenge(header)
        self._scheme, self._params = scheme, params
        if scheme == "basic":
            if not self.credentials or self.credentials[0] == IDENTITY_TOKEN_USER:
                raise RegistryError(f"registry {self.host} answered 401 Unauthorized: it "
                                    "requires a user name and password; log in first or pass "
                                    "credentials")
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host} asks for unsupported authentication "
                                f"{header!r}")
        self._tokens[scope] = await self._fetch_token(session, params, scope)

    async def _fetch_token(self, session: aiohttp.ClientSession, params: dict[str, str],
                           scope: str) -> str:
        query = {"service": params.get("service", "")} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        headers = {"Authorization": basic_header(self.credentials)} if self.credentials else {}
        realm = params["realm"]
        if self.credentials and self.credentials[0] == IDENTITY_TOKEN_USER:
            form = {**query, "grant_type": "refresh_token", "client_id": CLIENT_ID,
                    "refresh_token": self.credentials[1]}
            request = session.post(realm, data=form)
        else:
            request = session.get(realm, params=query, headers=headers)
        try:
            async with request as response:
                if response.status in (401, 403):
                    raise RegistryError(
                        f"token service {realm} of registry {self.host} refused "
                        f"{'the given credentials' if self.credentials else 'anonymous access'} "
                        f"({response.status} {response.reason}); check the user name and password")
                if response.status != 200:
                    raise RegistryError(f"token service {realm} of registry {self.host} "
                                        f"answered {response.status}")
                body = await response.json(content_type=None)
        except aiohttp.ClientError as error:
            raise RegistryError(f"cannot reach token service {realm} of registry {self.host}: "
                                f"{error}") from error
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service {realm} of registry {self.host} sent no token")
        return token
