"""Kinds served at a second group/version from another kind's storage: events.k8s.io/v1 Event.

kube-apiserver stores one Event and serves it as core/v1 and as events.k8s.io/v1, converting on
the way in and out. Here the request's Req.res is the stored resource (core Event) and
Req.view the one the client addressed; rest.py converts bodies in (to_internal) and out
(to_external), patches are applied to the client's view (patching.py), and everything else is
the stored kind's ordinary path. Field renames (events.k8s.io/v1 <- core/v1):
regarding <- involvedObject, note <- message, reportingController <- reportingComponent,
deprecatedSource <- source, deprecatedFirstTimestamp <- firstTimestamp,
deprecatedLastTimestamp <- lastTimestamp, deprecatedCount <- count.
"""

from __future__ import annotations

from typing import Callable

from .registry import BY_KIND, Resource

RENAMES = (("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
           ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
           ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"))
SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def _events_to_core(obj: dict) -> dict:
    out = {"apiVersion": "v1", "kind": "Event"}
    for key in SAME:
        if key in obj:
            out[key] = obj[key]
    for ext, core in RENAMES:
        if key_present(obj, ext):
            out[core] = obj[ext]
    return out


def _core_to_events(obj: dict) -> dict:
    out = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": obj.get("metadata", {})}
    for key in SAME[1:]:
        if obj.get(key) not in (None, "", 0):
            out[key] = obj[key]
    for ext, core in RENAMES:
        if obj.get(core) not in (None, "", 0, {}):
            out[ext] = obj[core]
    return out


def key_present(obj: dict, key: str) -> bool:
    return key in obj and obj[key] is not None


# (group, version, kind) addressed -> (stored resource's (group, kind), in, out)
CONVERSIONS: dict[tuple[str, str, str], tuple[tuple[str, str], Callable[[dict], dict], Callable[[dict], dict]]] = {
    ("events.k8s.io", "v1", "Event"): (("", "Event"), _events_to_core, _core_to_events),
}


def stored_as(res: Resource) -> Resource | None:
    conv = CONVERSIONS.get((res.group, res.version, res.kind))
    return BY_KIND[conv[0]] if conv else None


def to_internal(view: Resource | None, obj: dict) -> dict:
    conv = CONVERSIONS.get((view.group, view.version, view.kind)) if view else None
    return conv[1](obj) if conv and isinstance(obj, dict) else obj


def to_external(view: Resource | None, obj: dict) -> dict:
    conv = CONVERSIONS.get((view.group, view.version, view.kind)) if view else None
    if not conv or not isinstance(obj, dict) or obj.get("kind") != "Event" or obj.get("apiVersion") != "v1":
        return obj
    return conv[2](obj)


def events_v1_causes(obj: dict) -> list[tuple[str, str]]:
    """What kube-apiserver requires of an Event written through events.k8s.io/v1."""
    causes = []
    for field in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(field):
            causes.append((field, "Required value"))
    if obj.get("type") not in (None, "Normal", "Warning"):
        causes.append(("type", f'Unsupported value: "{obj.get("type")}": supported values: "Normal", "Warning"'))
    if len(obj.get("note") or "") > 1024:
        causes.append(("note", "Too long: may not be more than 1024 bytes"))
    return causes
