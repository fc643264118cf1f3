"""Which resources the API server serves, from its discovery documents (/api/v1, /apis/...).

The namespace controller needs every namespaced resource it can delete; the garbage collector
every resource it can list and watch; the manager whether a controller's resources exist at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.components.api.client import Client


@dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


async def served(client: Client) -> list[ApiResource]:
    """Top-level resources (no subresources) of every group's preferred version."""
    versions = [("", "v1", "/api/v1")]
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        pref = (g.get("preferredVersion") or {}).get("version") or g["versions"][0]["version"]
        versions.append((g["name"], pref, f"/apis/{g['name']}/{pref}"))
    out = []
    for group, version, url in versions:
        doc = await client.request("GET", url)
        for r in doc.get("resources") or []:
            if "/" in r["name"]:
                continue
            out.append(ApiResource(group, version, r["name"], r.get("kind", ""), bool(r.get("namespaced")),
                                   frozenset(r.get("verbs") or ())))
    return out
