"""A small async client for the API server, used by the components.

JSON over HTTPS with the identity from a kubeconfig; errors come back as ApiStatusError
carrying the server's Status (code, reason, message). Watches yield (type, object) pairs.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp

from .kubeconfig import KubeConfig
from .objects import path


class ApiStatusError(Exception):
    def __init__(self, status: dict):
        super().__init__(status.get("message", "API error"))
        self.status = status
        self.code = status.get("code", 0)
        self.reason = status.get("reason", "")


class Client:
    def __init__(self, config: KubeConfig, user_agent: str = "provisioner"):
        self.config = config
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self.session = aiohttp.ClientSession(
            base_url=config.server, headers=headers,
            connector=aiohttp.TCPConnector(ssl=config.ssl_context))

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def request(self, method: str, url: str, body: Any = None, params: dict | None = None,
                      content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, url, data=data, params=params,
                                        headers={"Content-Type": content_type}) as resp:
            text = await resp.read()
            try:
                out = json.loads(text) if text else {}
            except ValueError:
                out = {"kind": "Status", "code": resp.status, "message": text.decode(errors="replace")}
            if resp.status >= 400:
                raise ApiStatusError(out if out.get("kind") == "Status" else
                                     {"code": resp.status, "message": str(out)})
            return out

    async def get(self, group: str, version: str, plural: str, name: str, ns: str | None = None,
                  sub: str | None = None) -> dict:
        return await self.request("GET", path(group, version, plural, ns, name, sub))

    async def list(self, group: str, version: str, plural: str, ns: str | None = None,
                   **params: str) -> dict:
        return await self.request("GET", path(group, version, plural, ns), params=params or None)

    async def create(self, group: str, version: str, plural: str, obj: dict, ns: str | None = None) -> dict:
        return await self.request("POST", path(group, version, plural, ns), obj)

    async def replace(self, group: str, version: str, plural: str, obj: dict, ns: str | None = None,
                      sub: str | None = None) -> dict:
        return await self.request("PUT", path(group, version, plural, ns, obj["metadata"]["name"], sub), obj)

    async def patch(self, group: str, version: str, plural: str, name: str, patch: Any,
                    ns: str | None = None, sub: str | None = None,
                    patch_type: str = "application/merge-patch+json") -> dict:
        return await self.request("PATCH", path(group, version, plural, ns, name, sub), patch,
                                  content_type=patch_type)

    async def update_status(self, group: str, version: str, plural: str, obj: dict, ns: str | None = None) -> dict:
        """PUT the status subresource (the object's resourceVersion guards against lost updates)."""
        return await self.replace(group, version, plural, obj, ns, sub="status")

    async def patch_status(self, group: str, version: str, plural: str, name: str, patch: Any,
                           ns: str | None = None,
                           patch_type: str = "application/strategic-merge-patch+json") -> dict:
        return await self.patch(group, version, plural, name, patch, ns, "status", patch_type)

    async def bind(self, pod: dict, node: str) -> dict:
        """Bind a pod to a node through pods/binding, as the scheduler does."""
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return await self.request("POST", path("", "v1", "pods", meta["namespace"], meta["name"], "binding"), body)

    async def delete(self, group: str, version: str, plural: str, name: str, ns: str | None = None,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     uid: str | None = None) -> dict:
        """DELETE with optional DeleteOptions (grace period, propagation, a uid precondition)."""
        options: dict[str, Any] = {}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if uid:
            options["preconditions"] = {"uid": uid}
        body = dict(options, kind="DeleteOptions", apiVersion="v1") if options else None
        return await self.request("DELETE", path(group, version, plural, ns, name), body)

    async def watch(self, group: str, version: str, plural: str, ns: str | None = None,
                    resource_version: str = "", **params: str) -> AsyncIterator[tuple[str, dict]]:
        query = dict(params, watch="true", allowWatchBookmarks="true")
        if resource_version:
            query["resourceVersion"] = resource_version
        async with self.session.get(path(group, version, plural, ns), params=query,
                                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
            if resp.status >= 400:
                raise ApiStatusError(json.loads(await resp.read() or b"{}"))
            async for line in resp.content:
                if line.strip():
                    ev = json.loads(line)
                    yield ev["type"], ev["object"]
