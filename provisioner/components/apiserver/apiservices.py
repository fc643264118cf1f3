"""Remote APIServices: where each is served, whether it is Available, and what it adds to discovery.

As kube-aggregator's availability controller: every few seconds each APIService with
`spec.service` is resolved (Service, its port, a ready endpoint from its EndpointSlices or
Endpoints) and checked with `GET /apis/<group>/<version>` as `system:kube-aggregator` in
`system:masters` through the front-proxy credentials. Its Available condition says the outcome
with kube-aggregator's reasons (Passed, ServiceNotFound, ServicePortError, EndpointsNotFound,
MissingEndpoints, FailedDiscoveryCheck), written only when it changes. Available groups, with the
resources their servers listed, join /apis and aggregated discovery (discovery.REMOTE_*);
unavailable ones leave them, so clients keep working for every other group.

Started by server.py once the server has bootstrapped; the proxy itself is aggregator.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from typing import Any

import aiohttp

from . import discovery, fields
from .aggregator import AggregatorProxy, Backend, backend_ssl, url_of
from .apirequest import Req
from .errors import ApiError
from .registry import BY_KIND
from .registry import groups as local_groups

log = logging.getLogger("apiserver.aggregator")
REFRESH_SECONDS = 3.0
# While an APIService is unavailable it is checked this often: kube-aggregator reacts to its
# Service's endpoints at once, and `kubectl top` right after metrics-server starts should too
UNAVAILABLE_REFRESH_SECONDS = 0.5
CHECK_TIMEOUT = 5.0
AGGREGATOR_USER = "system:kube-aggregator"
AGGREGATOR_GROUPS = ("system:masters",)


class Unavailable(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class ApiServiceController:
    def __init__(self, registry: Any, proxy: AggregatorProxy, config: Any):
        self.registry = registry
        self.storage = registry.storage
        self.proxy = proxy
        self.config = config
        self.client_cert, self.client_key = config.proxy_client_cert, config.proxy_client_key
        self.published = False

    async def run(self, after: asyncio.Event | None = None) -> None:
        """Keep APIServices in sync; `after`: the server's bootstrap (kube-system exists then)."""
        if after is not None:
            await after.wait()
        while True:
            all_available = True
            try:
                if not self.published:
                    await publish_authentication(self.registry, self.config)
                    self.published = True
                all_available = await self.sync()
            except Exception as exc:  # noqa: BLE001 - etcd away: keep serving what is known
                log.warning("APIServices not refreshed: %s", exc)
            await asyncio.sleep(REFRESH_SECONDS if all_available else UNAVAILABLE_REFRESH_SECONDS)

    async def sync(self) -> bool:
        """Resolve and check every remote APIService; whether all of them are available."""
        objs, _, _ = await self.storage.list("apiservices", None)
        remote = [o for o in objs if (o.get("spec") or {}).get("service")]
        local = local_groups()
        backends: dict[tuple[str, str], Backend | ApiError] = {}
        resources: dict[tuple[str, str], list[dict]] = {}
        results = await asyncio.gather(*(self._check(o) for o in remote))
        for obj, (backend, listed, condition) in zip(remote, results):
            spec = obj["spec"]
            gv = (spec.get("group") or "", spec.get("version") or "")
            if gv[0] in local:  # a built-in group is never taken over
                continue
            backends[gv] = backend
            if listed is not None:
                resources[gv] = listed
            await self._write_condition(obj, *condition)
        self._publish(remote, backends, resources)
        return not any(isinstance(backend, ApiError) for backend in backends.values())

    async def _check(self, obj: dict) -> tuple[Backend | ApiError, list[dict] | None, tuple[str, str, str]]:
        try:
            backend = await self.resolve(obj)
            listed = await self.discover(backend)
        except Unavailable as exc:
            unavailable = ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
            return unavailable, None, ("False", exc.reason, exc.message)
        return backend, listed, ("True", "Passed", "all checks passed")

    async def resolve(self, obj: dict) -> Backend:
        spec = obj["spec"]
        ref = spec["service"]
        ns, name, port = ref.get("namespace") or "default", ref.get("name") or "", ref.get("port") or 443
        svc = await self.storage.get("services", ns, name)
        if svc is None:
            raise Unavailable("ServiceNotFound", f'service/{name} in "{ns}" is not present')
        ca = spec.get("caBundle")
        ssl_ctx = backend_ssl(base64.b64decode(ca) if ca else None, bool(spec.get("insecureSkipTLSVerify")),
                              self.client_cert, self.client_key)
        server_name = f"{name}.{ns}.svc"
        make = lambda host, p: Backend(spec.get("group") or "", spec.get("version") or "", host, p,  # noqa: E731
                                       server_name, ssl_ctx)
        svc_spec = svc.get("spec") or {}
        if svc_spec.get("type") == "ExternalName":
            return make(svc_spec.get("externalName", ""), port)
        svc_port = next((p for p in svc_spec.get("ports") or [] if p.get("port") == port), None)
        if svc_port is None:
            raise Unavailable("ServicePortError", f'service/{name} in "{ns}" is not listening on port {port}')
        port_name = svc_port.get("name") or ""
        found, endpoints = await self._endpoints(ns, name, port_name)
        if not found:
            raise Unavailable("EndpointsNotFound", f'cannot find endpoints for service/{name} in "{ns}"')
        if not endpoints:
            raise Unavailable("MissingEndpoints", f'endpoints for service/{name} in "{ns}" have no addresses '
                              f'with port name "{port_name}"')
        return make(*random.choice(endpoints))

    async def _endpoints(self, ns: str, name: str, port_name: str) -> tuple[bool, list[tuple[str, int]]]:
        """(any endpoints object exists, ready (address, port) pairs for the named port)."""
        slices, _, _ = await self.storage.list(
            "endpointslices", ns,
            predicate=lambda s: (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name)
        out: list[tuple[str, int]] = []
        for s in slices:
            number = next((p.get("port") for p in s.get("ports") or [] if (p.get("name") or "") == port_name), None)
            for ep in s.get("endpoints") or [] if number else []:
                if (ep.get("conditions") or {}).get("ready", True) is not False:
                    out += [(a, number) for a in ep.get("addresses") or []][:1]
        if out:
            return True, out
        legacy = await self.storage.get("endpoints", ns, name)
        for subset in (legacy or {}).get("subsets") or []:
            number = next((p.get("port") for p in subset.get("ports") or []
                           if (p.get("name") or "") == port_name), None)
            if number:
                out += [(a["ip"], number) for a in subset.get("addresses") or [] if a.get("ip")]
        return bool(slices) or legacy is not None, out

    async def discover(self, backend: Backend) -> list[dict]:
        """The backend's APIResourceList for its group/version: the discovery check."""
        path = f"/apis/{backend.group}/{backend.version}"
        url = url_of(backend, path)
        headers = [(self.proxy.names.user[0], AGGREGATOR_USER)] + \
            [(self.proxy.names.group[0], g) for g in AGGREGATOR_GROUPS] + [("Accept", "application/json")]
        try:
            async with self.proxy.session().get(url, headers=headers, ssl=backend.ssl,
                                                server_hostname=backend.server_name,
                                                timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT)) as resp:
                body = await resp.read()
                if resp.status // 100 != 2:
                    raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: "
                                      f"bad status from {url}: {resp.status}")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise Unavailable("FailedDiscoveryCheck",
                              f"failing or missing response from {url}: {exc or type(exc).__name__}") from None
        try:
            return list(json.loads(body).get("resources") or [])
        except (ValueError, AttributeError):
            raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: "
                              "the answer is not an APIResourceList") from None

    async def _write_condition(self, obj: dict, status: str, reason: str, message: str) -> None:
        conditions = (obj.get("status") or {}).get("conditions") or []
        now = next((c for c in conditions if c.get("type") == "Available"), None)
        if now and (now.get("status"), now.get("reason"), now.get("message")) == (status, reason, message):
            return
        if status == "False":
            log.info("APIService %s unavailable: %s: %s", obj["metadata"]["name"], reason, message)

        def mutate(cur: dict) -> dict:
            old = next((c for c in (cur.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Available"), {})
            changed = old.get("status") != status
            cur["status"] = {"conditions": [{
                "type": "Available", "status": status,
                "lastTransitionTime": fields.now() if changed else old.get("lastTransitionTime", fields.now()),
                "reason": reason, "message": message}]}
            return cur
        req = Req(BY_KIND[("apiregistration.k8s.io", "APIService")], None, obj["metadata"]["name"], "status",
                  user=AGGREGATOR_USER, user_agent="apiserver", groups=list(AGGREGATOR_GROUPS))
        try:
            await self.registry.update(req, mutate, precondition_rv=None)
        except ApiError as exc:
            if exc.reason != "NotFound":  # deleted meanwhile: nothing to say
                raise

    def _publish(self, remote: list[dict], backends: dict, resources: dict[tuple[str, str], list[dict]]) -> None:
        """Hand the proxy its routes, and discovery the available groups, preferred version first."""
        def priority(o: dict) -> tuple:
            spec = o["spec"]
            return (-(spec.get("groupPriorityMinimum") or 0), spec.get("group") or "",
                    -(spec.get("versionPriority") or 0))
        groups: dict[str, list[str]] = {}
        available: dict[str, list[str]] = {}
        for o in sorted(remote, key=priority):
            gv = (o["spec"].get("group") or "", o["spec"].get("version") or "")
            if gv not in backends:
                continue
            groups.setdefault(gv[0], []).append(gv[1])
            if gv in resources:
                available.setdefault(gv[0], []).append(gv[1])
        self.proxy.backends = backends
        self.proxy.groups = groups
        discovery.REMOTE_GROUPS = available
        discovery.REMOTE_AGGREGATED = [aggregated_group(g, [(v, resources[(g, v)]) for v in vs])
                                       for g, vs in available.items()]


def authentication_data(config: Any) -> dict[str, str]:
    """The ConfigMap data kube-apiserver publishes for extension API servers (metrics-server reads
    it to verify the front-proxy client and the users it names)."""
    def read(path: str | None) -> str | None:
        if not path:
            return None
        with open(path) as fh:
            return fh.read()
    data = {}
    if (client_ca := read(config.client_ca_file)) is not None:
        data["client-ca-file"] = client_ca
    if (front_proxy_ca := read(config.requestheader_client_ca_file)) is not None:
        names = config.requestheader
        data.update({
            "requestheader-client-ca-file": front_proxy_ca,
            "requestheader-allowed-names": json.dumps(list(config.requestheader_allowed_names)),
            "requestheader-username-headers": json.dumps(list(names.user)),
            "requestheader-group-headers": json.dumps(list(names.group)),
            "requestheader-extra-headers-prefix": json.dumps(list(names.extra_prefix))})
    return data


READER_ROLE = "extension-apiserver-authentication-reader"


async def publish_authentication(registry: Any, config: Any) -> None:
    """kube-system/extension-apiserver-authentication (kept as this server's flags say), and the
    Role that lets extension servers read it, as kube-apiserver bootstraps them."""
    data = authentication_data(config)
    if not data:
        return
    objects = [
        (("", "ConfigMap"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "extension-apiserver-authentication", "namespace": "kube-system"}, "data": data}),
        (("rbac.authorization.k8s.io", "Role"), {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": READER_ROLE, "namespace": "kube-system",
                         "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
                       "resourceNames": ["extension-apiserver-authentication"]}]})]
    for key, obj in objects:
        req = Req(BY_KIND[key], "kube-system", obj["metadata"]["name"], user=AGGREGATOR_USER,
                  user_agent="apiserver", groups=list(AGGREGATOR_GROUPS))

        def replace(cur: dict, obj: dict = obj) -> dict:
            for field_ in ("data", "rules"):
                if field_ in obj:
                    cur[field_] = obj[field_]
            return cur
        await registry.update(req, replace, precondition_rv=None, create_if_missing=obj)


def aggregated_group(group: str, versions: list[tuple[str, list[dict]]]) -> dict:
    """An apidiscovery.k8s.io/v2 APIGroupDiscovery from backends' legacy APIResourceLists."""
    out = []
    for version, listed in versions:
        entries: dict[str, dict] = {}
        for r in listed:
            name = r.get("name") or ""
            if "/" in name:
                continue
            entry = {"resource": name,
                     "responseKind": {"group": r.get("group", group), "version": r.get("version", version),
                                      "kind": r.get("kind", "")},
                     "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                     "singularResource": r.get("singularName") or "", "verbs": list(r.get("verbs") or [])}
            for key in ("shortNames", "categories"):
                if r.get(key):
                    entry[key] = list(r[key])
            entries[name] = entry
        for r in listed:
            parent, _, sub = (r.get("name") or "").partition("/")
            if sub and parent in entries:
                entries[parent].setdefault("subresources", []).append({
                    "subresource": sub, "verbs": list(r.get("verbs") or []),
                    "responseKind": {"group": r.get("group", group), "version": r.get("version", version),
                                     "kind": r.get("kind", "")}})
        out.append({"version": version, "resources": list(entries.values()), "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": out}
