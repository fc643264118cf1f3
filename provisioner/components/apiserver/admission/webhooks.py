"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: admission by the cluster's own servers.

admissionregistration.k8s.io/v1 Mutating/ValidatingWebhookConfigurations name HTTPS endpoints
(`clientConfig.url`, or `clientConfig.service` reached at one of the Service's ready endpoint
addresses with the name `<service>.<namespace>.svc` checked against the certificate), trusted
through `caBundle`. For each write, the webhooks whose rules (operations, apiGroups,
apiVersions, resources incl. subresources, scope), namespaceSelector and objectSelector match
receive an admission.k8s.io/v1 AdmissionReview; mutating ones may answer with a JSONPatch, run
in order, and with reinvocationPolicy IfNeeded run once more when a later webhook changed the
object. A denial is kube-apiserver's `admission webhook "<name>" denied the request: ...`; a
call that fails (refused, bad TLS, timeoutSeconds exceeded, bad answer) refuses the request
with failurePolicy Fail (the default) and is skipped with Ignore.

Configurations are read through a one-second cache, so a new webhook takes effect within a
second, as kube-apiserver's informer-fed webhook manager does.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import ssl
import time
import uuid
from typing import Any

import aiohttp

from .. import patch
from ..errors import ApiError
from ..selectors import match_labels, selector_from_label_selector
from . import Attributes, Base

log = logging.getLogger("apiserver")
CONFIG_KINDS = {("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
                ("admissionregistration.k8s.io", "validatingwebhookconfigurations")}
CACHE_SECONDS = 1.0


class WebhookFailure(Exception):
    pass


def _matches_rule(rule: dict, a: Attributes) -> bool:
    def has(values: Any, wanted: str) -> bool:
        return isinstance(values, list) and ("*" in values or wanted in values)
    res = a.req.res
    if not has(rule.get("operations"), a.operation):
        return False
    if not has(rule.get("apiGroups"), res.group) or not has(rule.get("apiVersions"), res.version):
        return False
    full = f"{res.plural}/{a.sub}" if a.sub else res.plural
    resources = rule.get("resources") or []
    ok = full in resources or "*/*" in resources or (not a.sub and "*" in resources) or \
        (a.sub and f"*/{a.sub}" in resources) or (a.sub and f"{res.plural}/*" in resources)
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and res.namespaced or scope == "Namespaced" and not res.namespaced:
        return False
    return bool(ok)


def _selector_matches(selector: Any, labels: dict) -> bool:
    if not isinstance(selector, dict) or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return True  # an empty selector matches everything
    return match_labels(selector_from_label_selector(selector), labels or {})


def _labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


class _Webhooks(Base):
    plural = ""
    mutating = False

    def __init__(self, storage: Any, **options: Any):
        super().__init__(storage)
        self._cache: tuple[float, list[dict]] = (0.0, [])

    async def _hooks(self) -> list[dict]:
        now = time.monotonic()
        if now - self._cache[0] > CACHE_SECONDS:
            configs, _, _ = await self.storage.list(self.plural, None)
            hooks = []
            for cfg in sorted(configs, key=lambda c: c["metadata"]["name"]):
                for hook in cfg.get("webhooks") or []:
                    if isinstance(hook, dict):
                        hooks.append(hook)
            self._cache = (now, hooks)
        return self._cache[1]

    async def _applies(self, hook: dict, a: Attributes) -> bool:
        if a.resource in CONFIG_KINDS:
            return False  # never lock out the way to fix a broken webhook
        if not any(_matches_rule(r, a) for r in hook.get("rules") or [] if isinstance(r, dict)):
            return False
        if not (_selector_matches(hook.get("objectSelector"), _labels(a.obj))
                or (a.old is not None and _selector_matches(hook.get("objectSelector"), _labels(a.old)))):
            return False
        if a.req.res.namespaced or a.resource == ("", "namespaces"):
            if a.resource == ("", "namespaces"):
                labels = _labels(a.obj or a.old)
            else:
                ns = await self.storage.get("namespaces", None, a.req.namespace or "")
                labels = _labels(ns)
            if not _selector_matches(hook.get("namespaceSelector"), labels):
                return False
        return True

    def _review(self, a: Attributes, obj: dict | None) -> dict:
        res = a.req.res
        kind = {"group": res.group, "version": res.version, "kind": res.kind}
        if a.sub == "scale":
            kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        resource = {"group": res.group, "version": res.version, "resource": res.plural}
        request: dict[str, Any] = {
            "uid": str(uuid.uuid4()), "kind": kind, "resource": resource, "requestKind": kind,
            "requestResource": resource, "name": a.name, "operation": a.operation,
            "userInfo": {"username": a.req.user, "groups": list(a.req.groups)},
            "object": obj, "oldObject": a.old, "dryRun": a.dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{a.operation.title()}Options"}}
        if a.sub:
            request["subResource"] = request["requestSubResource"] = a.sub
        if a.req.namespace:
            request["namespace"] = a.req.namespace
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}

    async def _target(self, hook: dict) -> tuple[str, str | None]:
        """(URL to post to, host name the certificate must carry when the URL has an address)."""
        cfg = hook.get("clientConfig") or {}
        if cfg.get("url"):
            return cfg["url"], None
        svc_ref = cfg.get("service") or {}
        ns, name = svc_ref.get("namespace", ""), svc_ref.get("name", "")
        port = svc_ref.get("port") or 443
        path = svc_ref.get("path") or "/"
        svc = await self.storage.get("services", ns, name)
        if svc is None:
            raise WebhookFailure(f'service "{name}" not found')
        target: Any = port
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("port") == port:
                target = p.get("targetPort", port)
        slices, _, _ = await self.storage.list(
            "endpointslices", ns, predicate=lambda s: _labels(s).get("kubernetes.io/service-name") == name)
        for sl in slices:
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True) and ep.get("addresses"):
                    number = target
                    if isinstance(target, str):
                        number = next((p.get("port") for p in sl.get("ports") or [] if p.get("name") == target), None)
                    if isinstance(number, int):
                        host = ep["addresses"][0]
                        host = f"[{host}]" if ":" in host else host
                        return f"https://{host}:{number}{path}", f"{name}.{ns}.svc"
        raise WebhookFailure(f'no endpoints available for service "{name}"')

    async def _call(self, hook: dict, review: dict) -> dict:
        cfg = hook.get("clientConfig") or {}
        url, server_name = await self._target(hook)
        ctx = ssl.create_default_context()
        if cfg.get("caBundle"):
            try:
                ctx = ssl.create_default_context(cadata=base64.b64decode(cfg["caBundle"]).decode())
            except (ValueError, ssl.SSLError) as exc:
                raise WebhookFailure(f"invalid caBundle: {exc}") from None
        timeout = hook.get("timeoutSeconds") or 10
        try:
            # a session per call: webhooks are few and each has its own trust; nothing is left
            # open when the server stops
            async with aiohttp.ClientSession() as session, \
                    session.post(url, json=review, ssl=ctx, server_hostname=server_name,
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                if resp.status != 200:
                    raise WebhookFailure(f'Post "{url}": unexpected status {resp.status}')
                body = await resp.json(content_type=None)
        except asyncio.TimeoutError:
            raise WebhookFailure(f'Post "{url}": context deadline exceeded') from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise WebhookFailure(f'Post "{url}": {exc}') from None
        response = body.get("response") if isinstance(body, dict) else None
        if not isinstance(response, dict) or response.get("uid") != review["request"]["uid"]:
            raise WebhookFailure("expected response.uid to match the request's uid")
        return response

    async def _run(self, hook: dict, a: Attributes, obj: dict | None) -> dict | None:
        """The webhook's answer, or None when it failed and may be ignored."""
        name = hook.get("name", "")
        try:
            response = await self._call(hook, self._review(a, obj))
        except WebhookFailure as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                log.warning("failed calling webhook %s (ignored): %s", name, exc)
                return None
            raise ApiError(500, "InternalError", f'Internal error occurred: failed calling webhook "{name}": '
                           f"failed to call webhook: {exc}") from None
        a.req.warnings += [w for w in response.get("warnings") or [] if isinstance(w, str)]
        if response.get("allowed") is not True:
            raise _denied(name, response.get("status") or {})
        return response


def _denied(name: str, status: dict) -> ApiError:
    denied = f'admission webhook "{name}" denied the request'
    code = status.get("code") if isinstance(status.get("code"), int) and status.get("code", 0) >= 400 else 400
    if status.get("message"):
        message = f"{denied}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied}: {status['reason']}"
    else:
        message = f"{denied} without explanation"
    return ApiError(code, status.get("reason") or "", message, status.get("details"))


class MutatingAdmissionWebhook(_Webhooks):
    name = "MutatingAdmissionWebhook"
    plural = "mutatingwebhookconfigurations"

    async def mutate(self, a: Attributes) -> None:
        if a.obj is None:
            return
        hooks = [h for h in await self._hooks() if await self._applies(h, a)]
        seen: list[tuple[dict, dict]] = []  # (hook, object as it left that hook)
        for hook in hooks:
            await self._mutate_once(hook, a)
            seen.append((hook, copy.deepcopy(a.obj)))
        final = a.obj
        for hook, after in seen:  # reinvocation: once, for IfNeeded hooks whose view went stale
            if hook.get("reinvocationPolicy") == "IfNeeded" and after != final:
                await self._mutate_once(hook, a)

    async def _mutate_once(self, hook: dict, a: Attributes) -> None:
        response = await self._run(hook, a, a.obj)
        if not response or not response.get("patch"):
            return
        if response.get("patchType") != "JSONPatch":
            raise ApiError(500, "InternalError", f'Internal error occurred: failed calling webhook "{hook.get("name")}"'
                           f': unsupported patch type "{response.get("patchType")}"')
        try:
            ops = json.loads(base64.b64decode(response["patch"]))
            patched = patch.json_patch(copy.deepcopy(a.obj), ops)
        except (ValueError, TypeError, ApiError) as exc:
            raise ApiError(500, "InternalError", f'Internal error occurred: failed calling webhook "{hook.get("name")}"'
                           f": the patch could not be applied: {getattr(exc, 'message', exc)}") from None
        if not isinstance(patched, dict):
            raise ApiError(500, "InternalError", f'Internal error occurred: webhook "{hook.get("name")}" '
                           "returned a patch that does not leave an object")
        a.obj.clear()
        a.obj.update(patched)


class ValidatingAdmissionWebhook(_Webhooks):
    name = "ValidatingAdmissionWebhook"
    plural = "validatingwebhookconfigurations"

    async def validate(self, a: Attributes) -> None:
        hooks = [h for h in await self._hooks() if await self._applies(h, a)]
        if hooks:  # called in parallel, as kube-apiserver does; the first denial in order wins
            results = await asyncio.gather(*(self._run(h, a, a.obj) for h in hooks), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
