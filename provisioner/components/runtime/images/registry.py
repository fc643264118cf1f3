"""runtime/images: the OCI distribution client (pull and push), on aiohttp.

HTTPS by default, with the CAs and the client certificate of Docker's certs.d layout. Insecure
registries (localhost, 127.0.0.1, ::1, those configured, or a request marked insecure) are tried over HTTPS without certificate checks first and then over plain HTTP,
as Docker does. Blobs are verified by sha256 while they stream in; a failed pull removes the
blobs it added. Pushes skip blobs the registry has (HEAD), upload small blobs in one PUT and
large ones in PATCH chunks, then PUT the manifest with its own media type.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Callable

import aiohttp
from yarl import URL

from . import oci
from .blobs import BlobWriter
from .errors import ImageError, RegistryError
from .reference import DEFAULT_REGISTRY, Reference, parse_reference
from .registry_auth import Authenticator
from .store import Image, ImageStore, host_architecture

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
MANIFEST_ACCEPT = ", ".join([oci.OCI_MANIFEST, oci.DOCKER_MANIFEST, oci.OCI_INDEX,
                             oci.DOCKER_MANIFEST_LIST])
DEFAULT_CHUNK = 8 * 1024 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)


class RegistryClient:
    def __init__(self, store: ImageStore, *, insecure_registries: tuple[str, ...] = (),
                 credentials: dict[str, tuple[str, str]] | None = None,
                 ca_file: str | None = None, certs_dir: str | None = None,
                 chunk_size: int = DEFAULT_CHUNK, local_hosts_insecure: bool = True,
                 progress: Callable[[str], None] = lambda line: None,
                 mirrors: tuple[str, ...] = (), docker_hub_endpoint: str | None = None):
        """`credentials` maps a registry host (`host:port`) to (user, password); `certs_dir`
        holds `<host:port>/*.crt` CA files, as /etc/docker/certs.d does. Loopback registries
        count as insecure unless `local_hosts_insecure` is False. `mirrors` (URLs such as
        `https://mirror.example` or `http://127.0.0.1:5000`) are tried in order for docker.io
        pulls before `docker_hub_endpoint` (a URL; default Docker Hub's API host), as
        Docker's registry-mirrors."""
        self.store = store
        self.insecure_registries = set(insecure_registries)
        self.credentials = credentials or {}
        self.ca_file, self.certs_dir = ca_file, certs_dir
        self.chunk_size = chunk_size
        self.local_hosts_insecure = local_hosts_insecure
        self.progress = progress
        self.mirrors = tuple(_endpoint(url, "--registry-mirror") for url in mirrors)
        self.docker_hub_endpoint = (_endpoint(docker_hub_endpoint, "--default-registry")
                                    if docker_hub_endpoint else None)

    # ------------------------------------------------------------------ public

    async def pull(self, ref: str, insecure: bool = False) -> Image:
        reference = parse_reference(ref)
        endpoint = None
        if reference.registry == DEFAULT_REGISTRY:
            for mirror in self.mirrors:
                try:
                    return await self._pull_from(reference, insecure, mirror)
                except RegistryError as error:
                    # As Docker: a mirror that fails or lacks the image is passed over.
                    self.progress(f"mirror {mirror} did not serve {reference}: {error}")
            endpoint = self.docker_hub_endpoint
        return await self._pull_from(reference, insecure, endpoint)

    async def _pull_from(self, reference: Reference, insecure: bool,
                         endpoint: URL | None) -> Image:
        added: list[str] = []
        async with _Connection(self, reference, insecure, endpoint) as connection:
            try:
                return await self._pull(connection, reference, added)
            except BaseException:
                self._forget(added)
                raise

    async def push(self, ref: str, insecure: bool = False, target: str | None = None) -> str:
        """Push the local image `ref` to the registry its name points at (or, given `target`,
        under that name, as `docker tag` then `docker push` would, leaving the store as it
        is); returns the digest."""
        image = self.store.resolve(ref)
        reference = parse_reference(target or ref)
        if reference.digest:
            raise ImageError(f"cannot push to a digest reference {target or ref!r}; push a "
                             "name:tag")
        async with _Connection(self, reference, insecure) as connection:
            scope = f"repository:{reference.repository}:pull,push"
            for digest in [layer.digest for layer in image.layers] + [image.id]:
                await self._push_blob(connection, reference, digest, scope)
            manifest = self.store.manifest_bytes(image)
            response = await connection.request(
                "PUT", f"/v2/{reference.repository}/manifests/{reference.tag}", scope,
                data=manifest, headers={"Content-Type": image.manifest_media_type})
            await _expect(response, (201,), f"push of the manifest of {ref}")
            sent = response.headers.get("Docker-Content-Digest")
            if sent and sent != image.digest:
                raise RegistryError(f"registry {reference.registry} stored the manifest of {ref} "
                                    f"as {sent}, not {image.digest}")
            self.progress(f"{reference.tag}: digest: {image.digest} size: {len(manifest)}")
            return image.digest

    async def login(self, registry: str, insecure: bool = False) -> None:
        """Check this client's credentials for `registry` (host[:port]) as `docker login` does:
        the API root with them must answer 200. RegistryError says why not."""
        reference = parse_reference(f"{registry}/login-check")
        async with _Connection(self, reference, insecure) as connection:
            response = await connection.request("GET", "/v2/", "")
            status = response.status
            response.release()
        if status in (401, 403):
            raise RegistryError(f"login to registry {registry} failed: wrong user name or "
                                "password")
        if status != 200:
            raise RegistryError(f"login to registry {registry} failed: /v2/ answered {status}")

    # ------------------------------------------------------------------ pull

    async def _pull(self, connection: _Connection, reference: Reference,
                    added: list[str]) -> Image:
        scope = f"repository:{reference.repository}:pull"
        wanted = reference.digest or reference.tag
        manifest_bytes, media_type = await self._get_manifest(connection, reference, wanted, scope)
        if reference.digest and oci.sha256_digest(manifest_bytes) != reference.digest:
            raise RegistryError(f"registry sent a manifest for {reference} whose digest is "
                                f"{oci.sha256_digest(manifest_bytes)}")
        if media_type in oci.INDEX_TYPES:
            manifest_bytes, media_type = await self._pick_platform(
                connection, reference, manifest_bytes, scope)
        if media_type not in oci.MANIFEST_TYPES:
            raise RegistryError(f"{reference}: unsupported manifest type {media_type!r}")
        manifest = json.loads(manifest_bytes)
        for descriptor in [manifest["config"]] + list(manifest.get("layers", [])):
            digest = descriptor["digest"]
            if self.store.blobs.exists(digest):
                self.progress(f"{digest[7:19]}: already exists")
                continue
            await self._fetch_blob(connection, reference, digest, scope)
            added.append(digest)
            self.progress(f"{digest[7:19]}: pull complete")
        tags = [] if reference.digest else [str(reference)]
        image = self.store.add_manifest(manifest_bytes, media_type, tags)
        self.progress(f"Digest: {image.digest}")
        return image

    async def _get_manifest(self, connection: _Connection, reference: Reference, wanted: str,
                            scope: str) -> tuple[bytes, str]:
        response = await connection.request(
            "GET", f"/v2/{reference.repository}/manifests/{wanted}", scope,
            headers={"Accept": MANIFEST_ACCEPT})
        if response.status == 404:
            response.release()
            raise RegistryError(f"image {reference} not found in registry {reference.registry}")
        await _expect(response, (200,), f"pull of the manifest of {reference}")
        body = await response.read()
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            raise RegistryError(f"registry sent an unreadable manifest for {reference}") from None
        return body, document.get("mediaType") or content_type or oci.OCI_MANIFEST

    async def _pick_platform(self, connection: _Connection, reference: Reference, body: bytes,
                             scope: str) -> tuple[bytes, str]:
        index = json.loads(body)
        arch = host_architecture()
        for entry in index.get("manifests", []):
            platform = entry.get("platform", {})
            if platform.get("os", "linux") == "linux" and platform.get("architecture") == arch:
                manifest, media_type = await self._get_manifest(
                    connection, reference, entry["digest"], scope)
                if oci.sha256_digest(manifest) != entry["digest"]:
                    raise RegistryError(f"registry sent a corrupted manifest for {reference}")
                return manifest, media_type
        raise RegistryError(f"image {reference} has no manifest for linux/{arch}")

    async def _fetch_blob(self, connection: _Connection, reference: Reference, digest: str,
                          scope: str) -> None:
        response = await connection.request(
            "GET", f"/v2/{reference.repository}/blobs/{digest}", scope)
        await _expect(response, (200,), f"pull of blob {digest} of {reference}")
        with BlobWriter(self.store.blobs, digest, f"blob {digest} of {reference}") as writer:
            async for chunk in response.content.iter_chunked(1024 * 1024):
                writer.write(chunk)
            writer.commit()

    def _forget(self, added: list[str]) -> None:
        used = {digest for image in self.store.list()
                for digest in [image.digest, image.id] + [layer.digest for layer in image.layers]}
        for digest in added:
            if digest not in used:
                self.store.blobs.remove(digest)

    # ------------------------------------------------------------------ push

    async def _push_blob(self, connection: _Connection, reference: Reference, digest: str,
                         scope: str) -> None:
        path = f"/v2/{reference.repository}/blobs/{digest}"
        head = await connection.request("HEAD", path, scope)
        head.release()
        if head.status == 200:
            self.progress(f"{digest[7:19]}: layer already exists")
            return
        start = await connection.request(
            "POST", f"/v2/{reference.repository}/blobs/uploads/", scope)
        await _expect(start, (202,), f"start of the upload of blob {digest}")
        location = connection.resolve(start.headers["Location"])
        start.release()
        size = self.store.blobs.size(digest)
        blob_path = self.store.blobs.path(digest)
        if size <= self.chunk_size:
            with open(blob_path, "rb") as content:
                done = await connection.request(
                    "PUT", location.update_query(digest=digest), scope, data=content,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Length": str(size)})
        else:
            offset = 0
            with open(blob_path, "rb") as content:
                while chunk := content.read(self.chunk_size):
                    patch = await connection.request(
                        "PATCH", location, scope, data=chunk,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                                 "Content-Length": str(len(chunk))})
                    await _expect(patch, (202,), f"upload of a chunk of blob {digest}")
                    location = connection.resolve(patch.headers["Location"])
                    patch.release()
                    offset += len(chunk)
            done = await connection.request(
                "PUT", location.update_query(digest=digest), scope,
                headers={"Content-Length": "0"})
        await _expect(done, (201,), f"upload of blob {digest}")
        done.release()
        self.progress(f"{digest[7:19]}: pushed")

    # ------------------------------------------------------------------ TLS

    def ssl_context(self, host: str, verify: bool) -> ssl.SSLContext:
        """TLS for `host`: CAs from `<certs_dir>/<host>/*.crt` and, as Docker's certs.d, a
        client certificate from a `*.cert` with its matching `*.key` (the first pair by name)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.certs_dir:
            host_dir = os.path.join(self.certs_dir, host)
            if os.path.isdir(host_dir):
                names = sorted(os.listdir(host_dir))
                for name in names:
                    if name.endswith(".crt"):
                        context.load_verify_locations(os.path.join(host_dir, name))
                pairs = client_pairs(host_dir, names)
                if pairs:
                    cert, key = pairs[0]
                    try:
                        context.load_cert_chain(cert, key)
                    except (OSError, ssl.SSLError) as error:
                        raise ImageError(f"cannot use client certificate {cert} with {key}: "
                                         f"{error}") from error
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def is_insecure(self, host: str, asked: bool) -> bool:
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return (asked or host in self.insecure_registries
                or (self.local_hosts_insecure and hostname in LOCAL_HOSTS))


def client_pairs(host_dir: str, names: list[str]) -> list[tuple[str, str]]:
    """(certificate, key) paths of certs.d's client pairs: `X.cert` with `X.key`. A half pair is
    an error naming the missing file, as Docker reports it."""
    pairs = []
    for name in names:
        stem, dot, suffix = name.rpartition(".")
        partner = {"cert": "key", "key": "cert"}.get(suffix) if dot else None
        if partner is None:
            continue
        if f"{stem}.{partner}" not in names:
            what = "key" if partner == "key" else "client certificate"
            raise ImageError(f"missing {what} {os.path.join(host_dir, f'{stem}.{partner}')} for "
                             f"{os.path.join(host_dir, name)} (CA certificates end in .crt)")
        if suffix == "cert":
            pairs.append((os.path.join(host_dir, name), os.path.join(host_dir, f"{stem}.key")))
    return pairs


def _endpoint(text: str, what: str) -> URL:
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ImageError(f"invalid {what} {text!r}: use a URL such as https://mirror.example "
                         "or http://127.0.0.1:5000")
    return url


class _Connection:
    """One session to one registry: picks the scheme, carries authentication, retries a 401."""

    def __init__(self, client: RegistryClient, reference: Reference, insecure: bool,
                 endpoint: URL | None = None):
        """`endpoint` (a mirror's or Docker Hub's URL) replaces the reference's host; its
        scheme is the only one tried."""
        self.client, self.host = client, reference.api_host
        registry = reference.registry
        if endpoint is not None:
            port = f":{endpoint.explicit_port}" if endpoint.explicit_port else ""
            self.host = registry = f"{endpoint.raw_host}{port}"
        self.endpoint = endpoint
        self.insecure = client.is_insecure(registry, insecure)
        self.auth = Authenticator(registry, client.credentials.get(registry))
        self.base: URL | None = None
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> _Connection:
        attempts = [("https", self.client.ssl_context(self.host, verify=not self.insecure))]
        if self.insecure:
            attempts.append(("http", None))
        if self.endpoint is not None:
            attempts = [attempt for attempt in attempts if attempt[0] == self.endpoint.scheme] \
                or [(self.endpoint.scheme, None if self.endpoint.scheme == "http" else
                     self.client.ssl_context(self.host, verify=True))]
        errors = []
        for scheme, context in attempts:
            session = aiohttp.ClientSession(
                timeout=TIMEOUT, connector=aiohttp.TCPConnector(ssl=context if context else False))
            try:
                async with session.get(f"{scheme}://{self.host}/v2/") as response:
                    if response.status in (200, 401):
                        self.session, self.base = session, URL(f"{scheme}://{self.host}")
                        return self
                    errors.append(f"{scheme}: /v2/ answered {response.status}")
            except (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError) as error:
                errors.append(f"{scheme}: {error}")
            await session.close()
        hint = "" if self.insecure else " (for a plain-HTTP registry, mark it insecure)"
        raise RegistryError(f"cannot reach registry {self.host}: {'; '.join(errors)}{hint}")

    async def __aexit__(self, *exc_info) -> None:
        if self.session is not None:
            await self.session.close()

    def resolve(self, location: str) -> URL:
        url = URL(location)
        assert self.base is not None
        return url if url.is_absolute() else self.base.join(url)

    async def request(self, method: str, path: str | URL, scope: str,
                      **kwargs) -> aiohttp.ClientResponse:
        assert self.session is not None and self.base is not None
        url = path if isinstance(path, URL) else self.base.join(URL(path))
        headers = dict(kwargs.pop("headers", {}))
        data = kwargs.pop("data", None)
        for attempt in (1, 2):
            if attempt == 2 and hasattr(data, "seek"):
                data.seek(0)
            try:
                response = await self.session.request(
                    method, url, headers={**headers, **self.auth.header(scope)}, data=data,
                    **kwargs)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                raise RegistryError(f"registry {self.host}: {method} {url.path} failed: "
                                    f"{error}") from error
            if response.status != 401 or attempt == 2:
                return response
            challenge = response.headers.get("WWW-Authenticate")
            response.release()
            await self.auth.handle_challenge(self.session, challenge, scope)
        raise AssertionError("unreachable")


async def _expect(response: aiohttp.ClientResponse, statuses: tuple[int, ...],
                  what: str) -> None:
    if response.status in statuses:
        return
    body = await response.text()
    response.release()
    detail = body.strip()[:300]
    try:
        errors = json.loads(body).get("errors", [])
        detail = "; ".join(f"{error.get('code')}: {error.get('message')}" for error in errors)
    except (json.JSONDecodeError, AttributeError):
        pass
    if response.status in (401, 403):
        detail += " (check the credentials and the repository's access rights)"
    raise RegistryError(f"{what} failed: registry answered {response.status} {detail}")


def pull(store: ImageStore, ref: str, insecure: bool = False, **options) -> Image:
    """Synchronous pull for callers without an event loop (CLI, tests)."""
    return asyncio.run(RegistryClient(store, **options).pull(ref, insecure))


def push(store: ImageStore, ref: str, insecure: bool = False, target: str | None = None,
         **options) -> str:
    return asyncio.run(RegistryClient(store, **options).push(ref, insecure, target))
