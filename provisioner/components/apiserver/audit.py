"""The audit log: --audit-policy-file and --audit-log-path/-maxage/-maxbackup/-maxsize.

As kube-apiserver: an audit.k8s.io/v1 Policy's first matching rule (by user, group, verb,
resource, namespace, non-resource URL) sets the level of a request's events: None (no event),
Metadata (who, what, when, result), Request (and the request body) or RequestResponse (and the
response body). Events are written as JSON lines, one per stage (RequestReceived, then
ResponseComplete), unless the policy or the rule omits the stage.

Secrets stay out of the log: a request about secrets (or a service-account token) is logged at
Metadata at most, unless the matching rule names `secrets` (or `serviceaccounts/token`) in its
resources explicitly; a catch-all rule never logs their values.

The middleware runs inside server.py's authenticating middleware (the user is known); request
bodies come from limits.read_body, which keeps what it read on the request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from aiohttp import web

from . import protobuf, requestinfo
from .errors import ApiError
from .limits import BODY_KEY

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# resources whose bodies carry secret values: only a rule naming them logs their bodies
SECRET_RESOURCES = {("", "secrets"), ("", "serviceaccounts/token")}


# policy -------------------------------------------------------------------------------------
@dataclass
class Rule:
    level: str
    users: list[str] = field(default_factory=list)
    user_groups: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)  # [{group, resources, resourceNames}]
    namespaces: list[str] = field(default_factory=list)
    non_resource_urls: list[str] = field(default_factory=list)
    omit_stages: list[str] = field(default_factory=list)

    def matches(self, user: str, groups: list[str], info: requestinfo.RequestInfo) -> bool:
        if self.users and user not in self.users:
            return False
        if self.user_groups and not set(groups) & set(self.user_groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if info.is_resource:
            if self.non_resource_urls:
                return False
            if self.namespaces and info.namespace not in self.namespaces:
                return False
            return not self.resources or any(_group_resource_matches(gr, info) for gr in self.resources)
        if self.namespaces or self.resources:
            return False
        return not self.non_resource_urls or any(
            info.path == u or (u.endswith("*") and info.path.startswith(u[:-1])) for u in self.non_resource_urls)

    def names_explicitly(self, group: str, resource: str) -> bool:
        return any(gr.get("group", "") == group and resource in (gr.get("resources") or [])
                   for gr in self.resources)


def _group_resource_matches(gr: dict, info: requestinfo.RequestInfo) -> bool:
    if gr.get("group", "") != info.group:
        return False
    names = gr.get("resourceNames") or []
    if names and info.name not in names:
        return False
    wanted = gr.get("resources") or []
    if not wanted:
        return True
    full = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    for r in wanted:
        if r in (full, "*") or (r == f"{info.resource}/*" and info.subresource) or \
                (r.startswith("*/") and r[2:] == info.subresource):
            return True
    return False


@dataclass
class Policy:
    rules: list[Rule]
    omit_stages: list[str] = field(default_factory=list)
    omit_managed_fields: bool = False

    def decide(self, user: str, groups: list[str], info: requestinfo.RequestInfo) -> tuple[str, Rule | None]:
        for rule in self.rules:
            if rule.matches(user, groups, info):
                return rule.level, rule
        return "None", None


RULE_FIELDS = {"level": "level", "users": "users", "userGroups": "user_groups", "verbs": "verbs",
               "resources": "resources", "namespaces": "namespaces", "nonResourceURLs": "non_resource_urls",
               "omitStages": "omit_stages", "omitManagedFields": None}


def load_policy(path: str) -> Policy:
    """The Policy in `path`; ValueError naming the file and field for anything malformed."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--audit-policy-file {path}: {exc}") from None

    def bad(where: str, what: str) -> ValueError:
        return ValueError(f"--audit-policy-file {path}: {where}: {what}")

    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or \
            doc.get("apiVersion") not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise bad("kind", "expected an audit.k8s.io/v1 Policy")
    rules = []
    for i, raw in enumerate(doc.get("rules") or []):
        if not isinstance(raw, dict):
            raise bad(f"rules[{i}]", "must be a mapping")
        unknown = set(raw) - set(RULE_FIELDS)
        if unknown:
            raise bad(f"rules[{i}].{sorted(unknown)[0]}", "unknown field")
        if raw.get("level") not in LEVELS:
            raise bad(f"rules[{i}].level", f"must be one of {', '.join(LEVELS)}, got {raw.get('level')!r}")
        for stage in raw.get("omitStages") or []:
            if stage not in STAGES:
                raise bad(f"rules[{i}].omitStages", f"unknown stage {stage!r}")
        for j, gr in enumerate(raw.get("resources") or []):
            if not isinstance(gr, dict):
                raise bad(f"rules[{i}].resources[{j}]", "must be a mapping with group and resources")
        rules.append(Rule(**{attr: raw[key] for key, attr in RULE_FIELDS.items() if attr and key in raw}))
    for stage in doc.get("omitStages") or []:
        if stage not in STAGES:
            raise bad("omitStages", f"unknown stage {stage!r}")
    return Policy(rules, list(doc.get("omitStages") or []), bool(doc.get("omitManagedFields")))


# log file -----------------------------------------------------------------------------------
class AuditLog:
    """JSON lines to a file (0600) rotated as kube-apiserver's: by size, backups named with the
    time of rotation, at most `maxbackup` kept and none older than `maxage` days. "-" is stdout."""

    def __init__(self, path: str, maxsize_mb: int = 0, maxbackup: int = 0, maxage_days: int = 0):
        self.path = path
        self.maxsize = maxsize_mb * 1024 * 1024
        self.maxbackup, self.maxage = maxbackup, maxage_days
        self.out: TextIO = sys.stdout if path == "-" else self._open()

    def _open(self) -> TextIO:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")

    def write(self, event: dict) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        if self.path != "-" and self.maxsize and self.out.tell() + len(line) > self.maxsize:
            self._rotate()
        self.out.write(line)
        self.out.flush()

    def _rotate(self) -> None:
        self.out.close()
        base, ext = os.path.splitext(self.path)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        os.replace(self.path, f"{base}-{stamp}{ext}")
        self._prune(base, ext)
        self.out = self._open()

    def _prune(self, base: str, ext: str) -> None:
        directory, stem = os.path.split(base)
        backups = sorted(p for p in Path(directory or ".").glob(f"{stem}-*{ext}"))
        cutoff = time.time() - self.maxage * 86400
        for i, p in enumerate(reversed(backups)):  # newest first
            if (self.maxbackup and i >= self.maxbackup) or (self.maxage and p.stat().st_mtime < cutoff):
                p.unlink(missing_ok=True)

    def close(self) -> None:
        if self.out is not sys.stdout:
            self.out.close()


# flags --------------------------------------------------------------------------------------
@dataclass
class AuditOptions:
    policy_file: str | None = None
    log_path: str | None = None
    maxage: int = 0
    maxbackup: int = 0
    maxsize: int = 0


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audit-policy-file", help="audit.k8s.io/v1 Policy deciding what is logged")
    p.add_argument("--audit-log-path", help='file for audit events as JSON lines ("-": standard output)')
    p.add_argument("--audit-log-maxage", type=int, default=0, help="days to keep rotated audit logs")
    p.add_argument("--audit-log-maxbackup", type=int, default=0, help="rotated audit logs to keep")
    p.add_argument("--audit-log-maxsize", type=int, default=0, help="megabytes before the audit log is rotated")


def options(args: argparse.Namespace) -> AuditOptions:
    return AuditOptions(args.audit_policy_file, args.audit_log_path, args.audit_log_maxage,
                        args.audit_log_maxbackup, args.audit_log_maxsize)


# events -------------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_body(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _request_object(request: web.Request) -> Any:
    """The request body as JSON, whichever encoding the client sent it in."""
    raw = request.get(BODY_KEY)
    if raw and request.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
        try:
            return protobuf.decode(raw)
        except Exception:  # undecodable: the request was refused on its own terms
            return None
    return _json_body(raw)


def _strip_managed_fields(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) and "managedFields" in obj["metadata"]:
        obj = dict(obj, metadata={k: v for k, v in obj["metadata"].items() if k != "managedFields"})
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        obj = dict(obj, items=[_strip_managed_fields(i) for i in obj["items"]])
    return obj


class Auditor:
    def __init__(self, policy: Policy, log: AuditLog):
        self.policy, self.log = policy, log

    @classmethod
    def from_options(cls, opts: AuditOptions | None) -> Auditor | None:
        """kube-apiserver audits only with both a policy and somewhere to write."""
        if opts is None or not opts.policy_file or not opts.log_path:
            return None
        return cls(load_policy(opts.policy_file), AuditLog(opts.log_path, opts.maxsize, opts.maxbackup, opts.maxage))

    def _level(self, user: str, groups: list[str], info: requestinfo.RequestInfo) -> tuple[str, list[str]]:
        level, rule = self.policy.decide(user, groups, info)
        omit = list(self.policy.omit_stages) + (rule.omit_stages if rule else [])
        key = (info.group, f"{info.resource}/{info.subresource}" if info.subresource else info.resource)
        if key in SECRET_RESOURCES and level in ("Request", "RequestResponse") and \
                not (rule and rule.names_explicitly(*key)):
            level = "Metadata"  # secret values only where a rule asks for them by name
        return level, omit

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        user, groups = request.get("user", ("system:anonymous", ["system:unauthenticated"]))
        info = requestinfo.parse(request)
        level, omit = self._level(user, list(groups), info)
        if level == "None":
            return await handler(request)
        event = self._event(request, info, user, list(groups), level)
        if "RequestReceived" not in omit:
            received = dict(event, stage="RequestReceived", stageTimestamp=_now())
            self.log.write({k: received[k] for k in EVENT_ORDER if k in received})
        code, body = 500, None
        try:
            resp = await handler(request)
            code = resp.status
            body = getattr(resp, "body", None) if isinstance(resp, web.Response) else None
            if not resp.prepared:
                resp.headers.setdefault("Audit-Id", event["auditID"])
            return resp
        except ApiError as exc:
            code, body = exc.code, json.dumps(exc.status()).encode()
            raise
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            if "ResponseComplete" not in omit:
                self.log.write(self._complete(event, request, level, code, body))

    def _event(self, request: web.Request, info: requestinfo.RequestInfo, user: str, groups: list[str],
               level: str) -> dict:
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": str(uuid.uuid4()),
            "stage": "", "requestURI": request.path_qs, "verb": info.verb,
            "user": {"username": user, "groups": groups}, "sourceIPs": [request.remote or ""],
            "userAgent": request.headers.get("User-Agent", "")}
        if info.is_resource:
            ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name,
                   "apiGroup": info.group, "apiVersion": info.version, "subresource": info.subresource}
            event["objectRef"] = {k: v for k, v in ref.items() if v}  # Go's omitempty
        event["requestReceivedTimestamp"] = _now()
        return event

    def _complete(self, event: dict, request: web.Request, level: str, code: int, body: bytes | None) -> dict:
        out = dict(event, stage="ResponseComplete")
        response = _json_body(body)
        status: dict[str, Any] = {"metadata": {}, "code": code}
        if isinstance(response, dict) and response.get("kind") == "Status":
            status.update({k: response[k] for k in ("status", "message", "reason", "details") if k in response})
            status["code"] = code
        out["responseStatus"] = status
        requested = _request_object(request)
        meta = requested.get("metadata") if isinstance(requested, dict) else None
        if "objectRef" in out and isinstance(meta, dict) and not out["objectRef"].get("name") and meta.get("name"):
            # as kube-apiserver: a create's objectRef names the object the body asks for
            ref = dict(out["objectRef"], name=meta["name"])
            out["objectRef"] = {k: ref[k] for k in ("resource", "namespace", "name", "apiGroup", "apiVersion",
                                                     "subresource") if ref.get(k)}
        if level in ("Request", "RequestResponse"):
            if requested is not None:
                out["requestObject"] = _strip_managed_fields(requested) if self.policy.omit_managed_fields \
                    else requested
        if level == "RequestResponse" and response is not None:
            out["responseObject"] = _strip_managed_fields(response) if self.policy.omit_managed_fields else response
        out["stageTimestamp"] = _now()
        out["annotations"] = {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"}
        return {k: out[k] for k in EVENT_ORDER if k in out}


# the field order of kube-apiserver's audit.k8s.io/v1 Event
EVENT_ORDER = ("kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs",
               "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
               "requestReceivedTimestamp", "stageTimestamp", "annotations")


