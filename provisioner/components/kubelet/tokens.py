"""kubelet: service-account tokens for projected volumes, bound to their pod and refreshed.

As kubelet's token manager: a TokenRequest bound to the pod (boundObjectRef), kept until 80% of
its granted lifetime (or 24 h) has passed, then requested again; the volume refresh writes the
new token with the atomic writer, so a running pod always reads a valid one.
"""

from __future__ import annotations

import datetime as dt
import time

from ..api.client import Client

MAX_AGE_SECONDS = 24 * 3600


class TokenManager:
    def __init__(self, client: Client | None):
        self.client = client
        self._tokens: dict[tuple, tuple[str, float]] = {}    # key -> (token, refresh at)

    async def get(self, pod: dict, service_account: str, audience: str, seconds: int) -> str:
        meta = pod["metadata"]
        key = (meta["uid"], service_account, audience, seconds)
        cached = self._tokens.get(key)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        if self.client is None:
            raise OSError("no API server: service-account tokens need a kubeconfig")
        spec: dict = {"expirationSeconds": max(int(seconds), 600),
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                         "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        result = await self.client.create(
            "", "v1", f"serviceaccounts/{service_account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            ns=meta.get("namespace", "default"))
        status = result["status"]
        ttl = spec["expirationSeconds"]
        if status.get("expirationTimestamp"):
            expires = dt.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
            ttl = max((expires - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0)
        self._tokens[key] = (status["token"], time.monotonic() + min(ttl * 0.8, MAX_AGE_SECONDS))
        return status["token"]

    def forget(self, pod_uid: str) -> None:
        for key in [key for key in self._tokens if key[0] == pod_uid]:
            del self._tokens[key]
